#!/usr/bin/env bash
# test_install.sh - `make install` into a DESTDIR: every file in its place
# with its mode and nothing else; the programs run from there; the BPF
# objects are BPF and bpftool reads them; the man pages render with `man
# -l`; the unit has the install's paths written in and passes `systemd-analyze
# verify` (the binary's path rewritten into DESTDIR, the man pages found by
# MANPATH); a second install keeps a changed configuration (the new one
# beside it as .new); PREFIX=/usr/local puts everything under it but the
# configuration; `make uninstall` leaves only the configuration.
#   bash selftests/package/test_install.sh BUILD_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../e2e/lib.sh
source "$repo/selftests/e2e/lib.sh"
build=${1:-}
[ -n "$build" ] || { echo "usage: bash $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$build" && pwd)
triplet=$(gcc -dumpmachine)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# install_to DESTDIR [VAR=VALUE...]: make install, its output in DESTDIR.log
install_to() {
	local dest=$1; shift
	make -s -C "$repo" BUILD="$build" DESTDIR="$dest" "$@" install >"$dest.log" 2>&1
}

# ------------------------------------------------------------ PREFIX=/usr
d=$tmp/usr
if install_to "$d" PREFIX=/usr; then pass "make-install-prefix-usr"
else fail "make-install-prefix-usr" "$(tail -n 5 "$d.log")"; exit 1; fi
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
want=$(sort <<EOF
644 /etc/smtpguard/smtpguard.conf
644 $unitdir/smtpguard.service
644 /usr/lib/$triplet/smtpguard/classifier_tc.bpf.o
644 /usr/lib/$triplet/smtpguard/classifier_xdp.bpf.o
644 /usr/lib/$triplet/smtpguard/tunnel.bpf.o
755 /usr/sbin/smtpguardctl
755 /usr/sbin/smtpguardd
644 /usr/share/doc/smtpguard/README.md
644 /usr/share/doc/smtpguard/content-rules.md
644 /usr/share/man/man5/smtpguard.conf.5
644 /usr/share/man/man8/smtpguardctl.8
644 /usr/share/man/man8/smtpguardd.8
EOF
)
got=$(cd "$d" && find . \( -type f -o -type l \) -printf '%m /%P\n' | sort)
check_eq "$got" "$want" "install-every-file-in-its-place-with-its-mode"
check_eq "$(cd "$d" && find . -type d ! -perm 755 -printf '%m /%P\n')" "" "install-directories-755"

check_ok "installed-smtpguardd-runs" "$d/usr/sbin/smtpguardd" --list-keys
check_ok "installed-config-checks" "$d/usr/sbin/smtpguardd" -c "$d/etc/smtpguard/smtpguard.conf" --check-config
check_contains "$("$d/usr/sbin/smtpguardctl" --help)" "usage: smtpguardctl" "installed-smtpguardctl-runs"
check_eq "$(grep -c '^events_file = /var/log/smtpguard/events.json$' "$d/etc/smtpguard/smtpguard.conf")" 1 \
	"installed-config-writes-events-to-the-logs-directory"
for o in "$d/usr/lib/$triplet/smtpguard/"*.bpf.o; do
	check_match "$(readelf -h "$o" 2>&1)" 'Machine:[[:space:]]+Linux BPF' "bpf-object-$(basename "$o")-is-bpf"
	check_ok "bpftool-reads-$(basename "$o")" bpftool btf dump file "$o"
done
for p in man5/smtpguard.conf.5 man8/smtpguardd.8 man8/smtpguardctl.8; do
	check_contains "$(MANWIDTH=80 man -l "$d/usr/share/man/$p" 2>&1)" "NAME" "man-l-renders-$(basename "$p")"
done

unit=$d$unitdir/smtpguard.service
check_eq "$(grep -c '@[A-Z]*@' "$unit")" 0 "unit-placeholders-replaced"
check_eq "$(sed -n 's/^ExecStart=//p' "$unit")" "/usr/sbin/smtpguardd -c /etc/smtpguard/smtpguard.conf" \
	"unit-ExecStart-is-the-installed-daemon"
check_eq "$(sed -n 's/^ExecReload=//p' "$unit" | head -n 1)" \
	"/usr/sbin/smtpguardd -c /etc/smtpguard/smtpguard.conf --check-config" "unit-ExecReload-checks-first"
check_eq "$(sed -n 's/^ExecReload=//p' "$unit" | tail -n 1)" '/bin/kill -HUP $MAINPID' "unit-ExecReload-then-SIGHUP"
for kv in Type=notify NotifyAccess=main LimitMEMLOCK=infinity ProtectSystem=strict Restart=on-failure \
	NoNewPrivileges=yes RuntimeDirectory=smtpguard LogsDirectory=smtpguard ReadWritePaths=/sys/fs/bpf; do
	check_eq "$(grep -cxF "$kv" "$unit")" 1 "unit-has-$kv"
done
# systemd-analyze verify: it wants the binary where ExecStart says and runs
# `man` for Documentation=; the unit's text is otherwise the installed one.
# (PID 1 need not be systemd: verify loads the unit itself.)
mkdir -p "$tmp/verify"
sed "s|/usr/sbin/|$d/usr/sbin/|g" "$unit" >"$tmp/verify/smtpguard.service"
out=$(MANPATH="$d/usr/share/man" systemd-analyze verify "$tmp/verify/smtpguard.service" 2>&1); rc=$?
check_eq "$rc:$out" "0:" "systemd-analyze-verify-the-unit"
# ... and it can fail: a misspelt setting is named
sed 's/^LimitNOFILE=/LimitNOFILES=/' "$tmp/verify/smtpguard.service" >"$tmp/verify/bad.service"
check_contains "$(MANPATH="$d/usr/share/man" systemd-analyze verify "$tmp/verify/bad.service" 2>&1)" \
	"LimitNOFILES" "systemd-analyze-verify-finds-a-bad-setting"

# a second install keeps a configuration the operator changed
echo "proxy_workers = 2" >>"$d/etc/smtpguard/smtpguard.conf"
changed=$(md5sum <"$d/etc/smtpguard/smtpguard.conf")
install_to "$d" PREFIX=/usr
check_eq "$(md5sum <"$d/etc/smtpguard/smtpguard.conf")" "$changed" "reinstall-keeps-a-changed-config"
check_ok "reinstall-puts-the-new-config-beside" cmp -s "$d/etc/smtpguard/smtpguard.conf.new" \
	"$build/dist/smtpguard.conf"
check_contains "$(cat "$d.log")" "kept $d/etc/smtpguard/smtpguard.conf" "reinstall-says-so"

# ------------------------------------------------------------ PREFIX=/usr/local
l=$tmp/local
if install_to "$l"; then pass "make-install-default-prefix"
else fail "make-install-default-prefix" "$(tail -n 5 "$l.log")"; fi
check_ok "local-daemon-in-usr-local-sbin" test -x "$l/usr/local/sbin/smtpguardd"
check_ok "local-bpf-objects-in-usr-local-lib-triplet" test -f "$l/usr/local/lib/$triplet/smtpguard/classifier_tc.bpf.o"
check_ok "local-unit-in-usr-local-lib-systemd" test -f "$l/usr/local/lib/systemd/system/smtpguard.service"
check_eq "$(sed -n 's/^ExecStart=//p' "$l/usr/local/lib/systemd/system/smtpguard.service")" \
	"/usr/local/sbin/smtpguardd -c /etc/smtpguard/smtpguard.conf" "local-unit-ExecStart"
check_ok "local-config-in-etc" test -f "$l/etc/smtpguard/smtpguard.conf"
check_ok "local-man-in-usr-local-share-man" test -f "$l/usr/local/share/man/man8/smtpguardd.8"

make -s -C "$repo" BUILD="$build" DESTDIR="$l" uninstall >"$l.uninstall.log" 2>&1
check_eq "$(cd "$l" && find . -type f -printf '/%P\n')" "/etc/smtpguard/smtpguard.conf" \
	"uninstall-leaves-only-the-config"

echo "# install: $E2E_PASSES passed, $E2E_FAILS failed"
[ "$E2E_FAILS" -eq 0 ]
