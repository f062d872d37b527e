#!/usr/bin/env bash
# deps_check.sh - says which dependency of the suite is missing, before a
# test fails with a tool's own error. Reads scripts/deps.list (the list
# scripts/deps.sh installs) and checks each package's commands, Perl modules
# and files; prints "FAIL dependency: WHAT missing (package PKG); run 'make
# deps'" for each missing one, else "PASS dependencies: all present".
# Usage: bash selftests/deps_check.sh   (selftests/run.sh runs it first)
set -u
list=$(cd "$(dirname "$0")/.." && pwd)/scripts/deps.list
missing=0
miss() {	# WHAT PKG
	echo "FAIL dependency: $1 missing (package $2); run 'make deps'"
	missing=$((missing + 1))
}
while read -r pkg checks; do
	[ -n "$pkg" ] || continue
	if [ -z "$checks" ]; then
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
			miss "$pkg" "$pkg"
		continue
	fi
	for c in $checks; do
		case $c in
		perl:*)	perl -M"${c#perl:}" -e1 2>/dev/null || miss "Perl module ${c#perl:}" "$pkg" ;;
		user:*)	id "${c#user:}" >/dev/null 2>&1 || miss "system user ${c#user:}" "$pkg" ;;
		ldd:*)	[ -e "${c#ldd:}" ] && ! ldd "${c#ldd:}" 2>&1 | grep -q 'not found' ||
			miss "${c#ldd:} (or a library it loads)" "$pkg" ;;
		/*)	compgen -G "$c" >/dev/null || miss "$c" "$pkg" ;;
		*)	command -v "$c" >/dev/null || miss "command $c" "$pkg" ;;
		esac
	done
done < <(sed 's/#.*//' "$list")
# not a package: swaks looks the machine's name up at start; in the lab's
# namespaces (no network) a name only DNS knows costs it 5 s
h=$(uname -n)
if ! unshare --net timeout 3 getent hosts "$h" >/dev/null 2>&1; then
	echo "FAIL dependency: '$h' (this machine's name) missing from /etc/hosts; add '127.0.1.1 $h' there"
	missing=$((missing + 1))
fi
[ "$missing" -eq 0 ] && echo "PASS dependencies: all present"
[ "$missing" -eq 0 ]
