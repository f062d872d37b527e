#!/usr/bin/env bash
# make-deb.sh - builds the Debian package (debian/) and checks it with
# lintian: `make deb`. The checkout's working tree (tracked files and
# untracked ones git does not ignore: what a commit of it would hold) is
# copied to OUT/src/smtpguard-VERSION and built there with
# `dpkg-buildpackage -b`, so the checkout's own build/ is never cleaned or
# mixed in. The .deb, .buildinfo and .changes land in OUT; lintian runs on
# the .changes and must report nothing but what debian/*.lintian-overrides
# documents (--fail-on error,warning; overridden tags are not failures).
#
# Usage: bash scripts/make-deb.sh [OUT]     (default build/deb)
# Prints "deb: OUT/smtpguard_VERSION_ARCH.deb" last; exits non-zero when
# the build fails or lintian complains.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
tree=$out/src/smtpguard-$version

missing=$(cd "$src" && dpkg-checkbuilddeps 2>&1) || {
	echo "deb: build dependencies missing: ${missing##*: }; run 'make deps'" >&2
	exit 1
}
rm -rf "$out/src" "$out"/smtpguard*_"$version"_*
mkdir -p "$tree"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -C "$tree" -xf -

echo "deb: dpkg-buildpackage -b in $tree (log: $out/build.log)"
if ! (cd "$tree" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log" >&2
	echo "deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
	exit 1
fi
# dpkg-buildpackage writes beside the tree
mv "$out/src"/smtpguard*_"$version"_* "$out/"
changes=$out/smtpguard_${version}_$arch.changes
deb=$out/smtpguard_${version}_$arch.deb
[ -f "$deb" ] || { echo "deb: no $deb after the build" >&2; exit 1; }

# lintian as nobody (it warns against root); the judging run, then one that
# lists the overridden tags too (whose exit status counts them)
as_nobody() { HOME=/tmp setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
# (a checkout nobody cannot read, under /root say: as ourselves)
as_nobody test -r "$changes" 2>/dev/null || as_nobody() { "$@"; }
echo "deb: lintian $changes"
rc=0
as_nobody lintian --fail-on error,warning --display-info "$changes" >"$out/lintian.log" 2>&1 || rc=$?
as_nobody lintian --display-info --show-overrides "$changes" >"$out/lintian-overrides.log" 2>&1 || true
if [ "$rc" -ne 0 ]; then
	cat "$out/lintian.log" >&2
	echo "deb: lintian complains (exit $rc; log: $out/lintian.log)" >&2
	exit 1
fi
grep -E '^[A-Z]: ' "$out/lintian-overrides.log" | grep -v '^N: ' | sed 's/^/  /' || true
rm -rf "$out/src"
echo "deb: $deb"
