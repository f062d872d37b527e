#!/usr/bin/env bash
# deps.sh - installs every Debian package smtpguard builds, tests, demos and
# benchmarks with: the ones scripts/deps.list names (with the reason for
# each); a no-op when all are present. selftests/deps_check.sh reads the same
# list to say which one is missing.
set -euo pipefail
list=$(dirname "$0")/deps.list
pkgs=()
while read -r p _; do
	# extract:NAME lines are scripts/deps_mtas.sh's (unpacked, not installed)
	case $p in extract:*) continue ;; esac
	[ -n "$p" ] && pkgs+=("$p")
done < <(sed 's/#.*//' "$list")
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	# the packages' own services (postfix, rspamd, clamd, freshclam) are
	# not started: the lab runs its own instances in namespaces, and a
	# system freshclam would reach for the network
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	# --no-install-recommends: what we use of a package's recommendations is
	# in deps.list in its own right (swaks's IPv6 and TLS modules)
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Exim and OpenSMTPD conflict with postfix as packages: unpacked beside it
bash "$(dirname "$0")/deps_mtas.sh"
# The lab runs private Postfix instances; a system one started by the package
# would hold port 25 in the root namespace.
if command -v postfix >/dev/null && postfix status >/dev/null 2>&1; then
	postfix stop >/dev/null 2>&1 || true
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
echo "deps: all present"
