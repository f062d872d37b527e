#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# notify_socket.py - the service manager's end of the sd_notify protocol,
# for selftests/e2e/test_notify.sh: binds a datagram socket at PATH (what
# NOTIFY_SOCKET names) and writes each message it receives to LOG as one
# line, "pid=SENDER FIELD|FIELD|...", the sender's pid from the kernel's
# credentials (SO_PASSCRED), as systemd checks NotifyAccess=main with them.
#
#   notify_socket.py PATH LOG      (runs until killed)
import os
import socket
import struct
import sys


def main():
    path, log = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    ucred = struct.calcsize("3i")
    with open(log, "a", buffering=1) as out:
        while True:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(ucred))
            pid = "?"
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:ucred])[0]
            fields = data.decode("utf-8", "replace").strip("\n").split("\n")
            out.write("pid=%s %s\n" % (pid, "|".join(fields)))


if __name__ == "__main__":
    main()
