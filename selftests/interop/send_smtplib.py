#!/usr/bin/python3
"""send_smtplib.py - one message through Python's smtplib, as a customer's
web application would send it (the interoperability matrix's Python sender).

Usage: send_smtplib.py HOST HELO FROM TO FILE [CAFILE TLSNAME]

FILE is the message in CRLF form; smtplib dot-stuffs it. With CAFILE the
session says STARTTLS first and checks the server's certificate against
CAFILE for the name TLSNAME. SMTPUTF8 is asked for when an address is not
ASCII (as smtplib's send_message does), BODY=8BITMIME when the message has
8-bit octets. Prints the server's reply to the data; exits 0 when accepted.
"""
import smtplib
import ssl
import sys


def main():
    if len(sys.argv) not in (6, 8):
        sys.exit(__doc__)
    host, helo, frm, to, path = sys.argv[1:6]
    with open(path, "rb") as f:
        data = f.read()
    s = smtplib.SMTP(timeout=60, local_hostname=helo)
    s.connect(host, 25)
    s.ehlo()
    if len(sys.argv) == 8:
        ctx = ssl.create_default_context(cafile=sys.argv[6])
        s._host = sys.argv[7]       # the name the certificate is checked for
        s.starttls(context=ctx)
        s.ehlo()
    opts = []
    if not (frm + to).isascii():
        opts.append("SMTPUTF8")
    if any(b > 127 for b in data):
        opts.append("BODY=8BITMIME")
    refused = s.sendmail(frm, [to], data, mail_options=opts)
    if refused:
        sys.exit(f"refused: {refused}")
    print("accepted:", s.noop())
    s.quit()


if __name__ == "__main__":
    main()
