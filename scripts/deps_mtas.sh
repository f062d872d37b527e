#!/usr/bin/env bash
# deps_mtas.sh - makes Debian's own Exim (4.96, exim4-daemon-heavy) and
# OpenSMTPD (6.8) runnable beside Postfix for the lab (lab/mtas.sh). Their
# packages Conflict with postfix (all three are the mail-transport-agent), so
# they are not installed: `apt-get download` fetches the .debs, `dpkg-deb -x`
# unpacks each set into MTA_CACHE/NAME-VERSION/ (kept, and reused while the
# candidate version is the same), their shared libraries are apt-installed as
# usual (libraries do not conflict), and the system users the binaries were
# built for (Debian-exim; opensmtpd and opensmtpq) are created as the
# packages' maintainer scripts would. Idempotent; scripts/deps.sh runs it.
#   bash scripts/deps_mtas.sh          # MTA_CACHE=/var/cache/smtpguard-lab/mta
set -euo pipefail
MTA_CACHE=${MTA_CACHE:-/var/cache/smtpguard-lab/mta}

# name: the packages unpacked together (the first one's version names the dir)
declare -A SETS=(
	[exim4]="exim4-daemon-heavy exim4-base exim4-config"
	[opensmtpd]="opensmtpd"
)
# Depends that are no library: the packages' own tools, maintainer-script
# helpers, or the MTA's other halves, which are unpacked, not installed
NOT_LIBS=" exim4-base exim4-config exim4-config-2 debconf debconf-2.0 adduser ed lsb-base "
NOT_LIBS+=" cron cron-daemon anacron systemd-sysv netbase init-system-helpers "

log() { echo "deps_mtas: $*" >&2; }

# candidate NAME: the version apt would install of the set's first package
candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'
}

# unpack NAME: MTA_CACHE/NAME-VERSION/ with every package of the set, unless
# it is there (a dir is complete once .complete exists in it)
unpack() {
	local name=$1 pkgs first ver dir tmp deb
	read -r -a pkgs <<<"${SETS[$name]}"
	first=${pkgs[0]}
	ver=$(candidate "$first")
	if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		apt-get update -qq
		ver=$(candidate "$first")
	fi
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || { log "apt knows no $first"; return 1; }
	dir="$MTA_CACHE/$name-$ver"
	if [ -f "$dir/.complete" ]; then
		echo "$dir"
		return 0
	fi
	log "unpacking ${pkgs[*]} $ver into $dir"
	tmp=$(mktemp -d)
	# apt's _apt user must be able to write where it downloads
	chmod 755 "$tmp"
	( cd "$tmp" && apt-get download -qq "${pkgs[@]}" >/dev/null 2>&1 ) ||
		{ rm -rf "$tmp"; log "apt-get download ${pkgs[*]} failed"; return 1; }
	rm -rf "$dir"
	mkdir -p "$dir/DEBIAN-control"
	for deb in "$tmp"/*.deb; do
		dpkg-deb -x "$deb" "$dir"
		dpkg-deb -f "$deb" Package Version Depends >>"$dir/DEBIAN-control/$(basename "$deb" .deb)"
	done
	rm -rf "$tmp"
	touch "$dir/.complete"
	echo "$dir"
}

# libs DIR: the libraries the unpacked packages depend on (first of each
# alternative, without versions)
libs() {
	sed -n 's/^Depends: //p' "$1"/DEBIAN-control/* | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' |
		grep . | sort -u | while read -r p; do
			case $NOT_LIBS in *" $p "*) ;; *) echo "$p" ;; esac
		done
}

# user NAME GROUP HOME GECOS: a system user (and its group) as the package's
# postinst creates it
# (Debian-exim: a name adduser accepts only with --allow-bad-names)
user() {
	getent group "$2" >/dev/null || addgroup --system --quiet --allow-bad-names "$2"
	id "$1" >/dev/null 2>&1 ||
		adduser --system --quiet --allow-bad-names --home "$3" --no-create-home \
			--disabled-password --gecos "$4" --ingroup "$2" "$1"
}

mkdir -p "$MTA_CACHE"
need=()
for name in exim4 opensmtpd; do
	dir=$(unpack "$name")
	for p in $(libs "$dir"); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
	done
	ln -sfn "$(basename "$dir")" "$MTA_CACHE/$name"
done
# the users below (a minbase root may lack adduser)
command -v adduser >/dev/null || need+=(adduser)
if [ ${#need[@]} -gt 0 ]; then
	log "installing their libraries (and tools): ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for bin in "$MTA_CACHE/exim4/usr/sbin/exim4" "$MTA_CACHE/opensmtpd/usr/sbin/smtpd"; do
	if ldd "$bin" | grep -q 'not found'; then
		log "$bin misses libraries: $(ldd "$bin" | grep 'not found' | tr -s '\t\n' '  ')"
		exit 1
	fi
done
# Exim: built for user and group Debian-exim (exim4-base's postinst)
user Debian-exim Debian-exim /var/spool/exim4 "Exim mail server"
# OpenSMTPD: privilege separation as opensmtpd and opensmtpq (opensmtpd's
# postinst), chrooted in /var/lib/opensmtpd/empty. Its paths are built in:
# lab/mtas.sh bind-mounts each instance's spool, control socket and the
# unpacked helpers (libexec) over them in a mount namespace of its own, so
# their mount points must exist (the package would have made them).
user opensmtpd opensmtpd /var/lib/opensmtpd/empty "OpenSMTPD Daemon"
user opensmtpq opensmtpq /var/lib/opensmtpd/empty "OpenSMTPD queue user"
mkdir -p /var/lib/opensmtpd/empty /usr/libexec/opensmtpd /var/spool/smtpd
chmod 755 /var/lib/opensmtpd/empty
# smtpctl is setgid opensmtpq (the postinst's dpkg-statoverride): as
# sendmail it refuses to run otherwise
chown root:opensmtpq "$MTA_CACHE/opensmtpd/usr/sbin/smtpctl"
chmod 2755 "$MTA_CACHE/opensmtpd/usr/sbin/smtpctl"
echo "deps_mtas: exim $(readlink "$MTA_CACHE/exim4"), opensmtpd $(readlink "$MTA_CACHE/opensmtpd") in $MTA_CACHE"
