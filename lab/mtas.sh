# shellcheck shell=bash
# mtas.sh - Exim 4.96 and OpenSMTPD 6.8 as real MTAs in the namespace lab,
# on either side: a VM's MTA relaying everything to the MX, or the MX itself.
# Debian's own binaries, unpacked beside Postfix by scripts/deps_mtas.sh
# (their packages conflict with postfix) under MTA_CACHE. Source it after
# lab/lab.sh (e2e tests have both through selftests/e2e/lib.sh and this).
#
#   lab_start_vm_mta KIND VM            # KIND: exim | opensmtpd
#   lab_vm_mta_submit KIND VM FILE FROM TO
#   lab_vm_mta_wait_sent KIND VM TO TIMEOUT_S   # prints the MTA's log line
#   lab_vm_mta_log KIND VM
#   lab_start_mx_mta KIND                # on LAB_MX4:25 and [LAB_MX6]:25
#   lab_mx_mta_maildir KIND; lab_mx_mta_log KIND; lab_stop_mx_mta KIND
#   lab_stop_vm_mta KIND VM
#
# Each instance keeps its config, spool and log under LAB_DIR/KIND-NODE/.
# A VM's MTA listens on loopback port 25 only (one such MTA per VM), relays
# every message to ${LAB_VM_MTA_RELAY:-$LAB_MX4} port 25 (IPv6 when that is
# an IPv6 address) and retries a deferred message every 2 s; with
# LAB_VM_TLS_CAFILE it uses STARTTLS when offered and checks the MX's
# certificate against that CA (logging the outcome, delivering either way),
# else it never starts TLS. The MX MTA offers PIPELINING, 8BITMIME, DSN,
# SMTPUTF8 and (Exim) CHUNKING, STARTTLS with LAB_MX_TLS_CHAIN ("KEY CERT",
# lab_make_tls_ca, as lab_start_mx_postfix), accepts up to 64 MiB for
# LAB_MAIL_DOMAIN and the domains in LAB_MX_EXTRA_DOMAINS, and stores each
# message as one file in the Maildir lab_mx_mta_maildir KIND (LF line ends).
#
# Exim runs with -C (its own config file) as root, so it keeps its
# privilege to bind port 25; deliveries run as Debian-exim
# (deliver_drop_privilege), which owns the spool and the MX's Maildir.
# OpenSMTPD's spool (/var/spool/smtpd), control socket (/run/smtpd.sock) and
# helpers (/usr/libexec/opensmtpd) are built-in paths: each instance runs
# in a mount namespace of its own (unshare --mount) in which its own
# directories are bind-mounted there, and smtpctl enters it (nsenter).
# Its resolv.conf there names 127.0.0.1: the lab has no DNS, and its
# look-ups of clients fail at once instead of after a time-out; its
# /etc/hosts names the relay mx.LAB_MAIL_DOMAIN (for the certificate check).
# Its retry schedule is built in too (minutes), so a ticker in the instance
# runs `smtpctl schedule all` every 2 s; a route whose connection failed
# is still held back by OpenSMTPD itself for 15 s (built in), so its retry
# lands up to about 15 s after the MX is back (Exim's: within 2 s).
# lab_down stops them all: every process they start is in the lab's
# network namespaces, whose processes it kills.

MTA_CACHE=${MTA_CACHE:-/var/cache/smtpguard-lab/mta}
LAB_MTA_RETRY_S=${LAB_MTA_RETRY_S:-2}

lab_mta_exim_bin() { echo "$MTA_CACHE/exim4/usr/sbin/exim4"; }
lab_mta_smtpd_dir() { echo "$MTA_CACHE/opensmtpd"; }

lab__mta_base() { echo "$LAB_DIR/$1-$2"; }
lab__mta_check_kind() {
	case $1 in
	exim) [ -x "$(lab_mta_exim_bin)" ] ||
		{ lab_log "no $(lab_mta_exim_bin) (run make deps)"; return 1; } ;;
	opensmtpd) [ -x "$(lab_mta_smtpd_dir)/usr/sbin/smtpd" ] ||
		{ lab_log "no $(lab_mta_smtpd_dir)/usr/sbin/smtpd (run make deps)"; return 1; } ;;
	*) lab_log "unknown MTA '$1' (exim or opensmtpd)"; return 1 ;;
	esac
}

# lab_mta_available KIND: KIND's binaries are unpacked (0), or says what to do
lab_mta_available() { lab__mta_check_kind "$1"; }

lab_vm_mta_log() {
	case $1 in
	exim) echo "$(lab__mta_base exim "$2")/log/mainlog" ;;
	opensmtpd) echo "$(lab__mta_base opensmtpd "$2")/smtpd.log" ;;
	esac
}
lab_mx_mta_log() { lab_vm_mta_log "$1" mx; }
lab_mx_mta_maildir() { echo "$(lab__mta_base "$1" mx)/mail"; }

# lab__mta_wait_listen NODE PORT ADDR: up to 10 s for a listener
lab__mta_wait_listen() {
	local node=$1 port=$2 addr=$3
	for _ in $(seq 1 100); do
		lab_exec "$node" ss -Hltn "( sport = :$port )" 2>/dev/null | grep -qF "$addr" && return 0
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------- Exim

# lab__exim_conf BASE NODE ROLE: the config both roles share, then the role's
lab__exim_conf() {
	local base=$1 node=$2 role=$3 relay hosts d doms key crt
	cat <<EOF
# Exim config written by lab/mtas.sh for $node ($role)
exim_path = $(lab_mta_exim_bin)
spool_directory = $base/spool
log_file_path = $base/log/%slog
pid_file_path = $base/exim.pid
log_selector = +smtp_connection +received_recipients +delivery_size +outgoing_port \\
  +smtp_protocol_error +smtp_syntax_error +tls_peerdn +tls_certificate_verified \\
  +receive_time +deliver_time +pipelining
deliver_drop_privilege = true
keep_environment =
host_lookup =
rfc1413_hosts =
message_size_limit = 64M
smtp_accept_max = 200
timeout_frozen_after = 1h
delay_warning =
EOF
	if [ "$role" = mx ]; then
		doms=$LAB_MAIL_DOMAIN
		for d in ${LAB_MX_EXTRA_DOMAINS:-}; do doms="$doms : $d"; done
		read -r key crt <<<"${LAB_MX_TLS_CHAIN:-}"
		cat <<EOF
primary_hostname = mx.$LAB_MAIL_DOMAIN
domainlist local_domains = $doms
local_interfaces = <; $LAB_MX4 ; $LAB_MX6
daemon_smtp_ports = 25
smtp_banner = \$primary_hostname ESMTP lab MX (Exim \$version_number)
pipelining_advertise_hosts = *
accept_8bitmime = true
chunking_advertise_hosts = *
dsn_advertise_hosts = *
smtputf8_advertise_hosts = *
prdr_enable = false
acl_smtp_rcpt = acl_check_rcpt
EOF
		if [ -n "$crt" ]; then
			cat <<EOF
tls_advertise_hosts = *
tls_certificate = $base/tls/mx.crt
tls_privatekey = $base/tls/mx.key
EOF
		else
			echo "tls_advertise_hosts ="
		fi
		cat <<EOF

begin acl
acl_check_rcpt:
  accept domains = +local_domains
  deny message = relay not permitted

begin routers
sink:
  driver = accept
  domains = +local_domains
  transport = maildir_sink

begin transports
maildir_sink:
  driver = appendfile
  directory = $base/mail
  maildir_format = true
  create_directory = true
  user = Debian-exim
  group = Debian-exim
  mode = 0644
  envelope_to_add = true
  return_path_add = true

begin retry
*  *  F,1h,${LAB_MTA_RETRY_S}s
EOF
	else
		relay=${LAB_VM_MTA_RELAY:-$LAB_MX4}
		# a host list: an IPv6 address's colons doubled
		hosts=${relay//:/::}
		cat <<EOF
primary_hostname = $node.example.org
qualify_domain = $node.example.org
local_interfaces = <; 127.0.0.1 ; ::1
daemon_smtp_ports = 25
acl_smtp_rcpt = acl_check_rcpt
tls_advertise_hosts =

begin acl
acl_check_rcpt:
  accept hosts = : 127.0.0.1 : ::::1
  deny message = relay not permitted

begin routers
smarthost:
  driver = manualroute
  route_list = * $hosts
  self = send
  transport = remote_smtp
  no_more

begin transports
# Exim's own command, data and final timeouts (5, 5 and 10 min): 20 s gave
# up on the slow MX's greeting, which comes after 20 s
remote_smtp:
  driver = smtp
  port = 25
  hosts_try_chunking = *
  connect_timeout = 10s
EOF
		if [ -n "${LAB_VM_TLS_CAFILE:-}" ]; then
			cat <<EOF
  tls_verify_certificates = $LAB_VM_TLS_CAFILE
  tls_try_verify_hosts = *
  tls_verify_cert_hostnames =
EOF
		else
			echo "  hosts_avoid_tls = *"
		fi
		cat <<EOF

begin retry
*  *  F,1h,${LAB_MTA_RETRY_S}s
EOF
	fi
}

lab__start_exim() {
	local node=$1 role=$2 base exim pid
	base=$(lab__mta_base exim "$node"); exim=$(lab_mta_exim_bin)
	mkdir -p "$base/spool" "$base/log"
	chmod 755 "$base"
	if [ "$role" = mx ]; then
		mkdir -p "$base/mail"
		if [ -n "${LAB_MX_TLS_CHAIN:-}" ]; then
			local key crt
			read -r key crt <<<"$LAB_MX_TLS_CHAIN"
			mkdir -p "$base/tls"
			install -m 0640 -g Debian-exim "$key" "$base/tls/mx.key" &&
				install -m 0644 "$crt" "$base/tls/mx.crt" ||
				{ lab_log "cannot copy the MX's TLS chain ($LAB_MX_TLS_CHAIN)"; return 1; }
		fi
		chown -R Debian-exim:Debian-exim "$base/mail"
	fi
	chown -R Debian-exim:Debian-exim "$base/spool" "$base/log"
	lab__exim_conf "$base" "$node" "$role" >"$base/exim.conf"
	chmod 644 "$base/exim.conf"
	if ! lab_exec "$node" "$exim" -C "$base/exim.conf" -bV >"$base/check.log" 2>&1; then
		lab_log "Exim's config for $node is not valid:"
		sed 's/^/    /' "$base/check.log" >&2
		return 1
	fi
	lab_exec "$node" ip link set lo up 2>/dev/null
	# -bdf: the daemon in the foreground (its pid is this job's), queue
	# runs every LAB_MTA_RETRY_S s
	# (nsenter itself, not lab_exec: a function in the background is a
	# subshell, whose pid is not the daemon's)
	nsenter --net="/run/netns/${LAB_PREFIX}${node}" -- "$exim" -C "$base/exim.conf" -bdf \
		-q"${LAB_MTA_RETRY_S}s" >>"$base/daemon.out" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$base/daemon.pid"
	if [ "$role" = mx ]; then
		lab__mta_wait_listen mx 25 "$LAB_MX4" && lab__mta_wait_listen mx 25 "$LAB_MX6" && return 0
	else
		lab__mta_wait_listen "$node" 25 127.0.0.1 && return 0
	fi
	lab_log "Exim in $node is not listening after 10 s:"
	cat "$base/daemon.out" "$base/log/paniclog" 2>/dev/null | tail -n 10 | sed 's/^/    /' >&2
	return 1
}

# ------------------------------------------------------------- OpenSMTPD

lab__smtpd_conf() {
	local base=$1 node=$2 role=$3 relay d doms
	echo "# OpenSMTPD config written by lab/mtas.sh for $node ($role)"
	echo "smtp max-message-size 64M"
	echo "queue ttl 1h"
	if [ "$role" = mx ]; then
		doms="\"$LAB_MAIL_DOMAIN\""
		for d in ${LAB_MX_EXTRA_DOMAINS:-}; do doms="$doms, \"$d\""; done
		local tls=""
		if [ -n "${LAB_MX_TLS_CHAIN:-}" ]; then
			echo "pki mx.$LAB_MAIL_DOMAIN cert \"$base/tls/mx.crt\""
			echo "pki mx.$LAB_MAIL_DOMAIN key \"$base/tls/mx.key\""
			tls="tls pki mx.$LAB_MAIL_DOMAIN"
		fi
		cat <<EOF
table domains { $doms }
table sinkusers { "@" = "nobody" }
listen on $LAB_MX4 port 25 $tls hostname mx.$LAB_MAIL_DOMAIN
listen on $LAB_MX6 port 25 $tls hostname mx.$LAB_MAIL_DOMAIN
action "sink" maildir "$base/mail" virtual <sinkusers> user nobody
match from any for domain <domains> action "sink"
EOF
	else
		relay=${LAB_VM_MTA_RELAY:-$LAB_MX4}
		case $relay in *:*) relay="[$relay]" ;; esac
		local proto=smtp+notls
		# smtp://: STARTTLS when offered (opportunistic), the MX's
		# certificate checked against the CA bundle, which is
		# LAB_VM_TLS_CAFILE in this instance's mount namespace, and
		# against the relay's name: mx.LAB_MAIL_DOMAIN, the name in
		# the lab MX's certificate, which this instance's /etc/hosts
		# gives the relay's address
		if [ -n "${LAB_VM_TLS_CAFILE:-}" ]; then
			proto=smtp
			relay=mx.$LAB_MAIL_DOMAIN
		fi
		cat <<EOF
listen on lo port 25 hostname $node.example.org
action "relay" relay host $proto://$relay:25 helo $node.example.org
match from local for any action "relay"
EOF
	fi
}

lab__smtpd_pid() { cat "$(lab__mta_base opensmtpd "$1")/smtpd.pid" 2>/dev/null; }

# lab__smtpd_exec NODE CMD...: CMD in the instance's network and mount
# namespaces (where smtpctl finds its socket), under smtpd's root: entering
# a mount namespace resets the root to the namespace's own, which is not
# the one smtpd sees when the lab runs in a chroot (check-fresh)
lab__smtpd_exec() {
	local node=$1 pid; shift
	pid=$(lab__smtpd_pid "$node")
	[ -n "$pid" ] || { lab_log "no OpenSMTPD running in $node"; return 1; }
	nsenter --net="/run/netns/${LAB_PREFIX}${node}" --mount="/proc/$pid/ns/mnt" \
		--root="/proc/$pid/root" --wd="/proc/$pid/root" -- "$@"
}

lab__start_opensmtpd() {
	local node=$1 role=$2 base dir pid cafile=""
	base=$(lab__mta_base opensmtpd "$node"); dir=$(lab_mta_smtpd_dir)
	mkdir -p "$base/spool" "$base/run"
	chmod 755 "$base" "$base/run"
	chmod 711 "$base/spool"
	if [ "$role" = mx ]; then
		mkdir -p "$base/mail"
		chown nobody:nogroup "$base/mail"
		if [ -n "${LAB_MX_TLS_CHAIN:-}" ]; then
			local key crt
			read -r key crt <<<"$LAB_MX_TLS_CHAIN"
			mkdir -p "$base/tls"
			install -m 0600 "$key" "$base/tls/mx.key" &&
				install -m 0644 "$crt" "$base/tls/mx.crt" ||
				{ lab_log "cannot copy the MX's TLS chain ($LAB_MX_TLS_CHAIN)"; return 1; }
		fi
	else
		cafile=${LAB_VM_TLS_CAFILE:-}
	fi
	lab__smtpd_conf "$base" "$node" "$role" >"$base/smtpd.conf"
	# smtpd looks its clients up in the DNS: no name server in the lab
	# (127.0.0.1 answers at once with an ICMP error) makes that fail fast
	echo "nameserver 127.0.0.1" >"$base/resolv.conf"
	{ echo "127.0.0.1 localhost"; echo "::1 localhost"
	  [ "$role" = mx ] || echo "${LAB_VM_MTA_RELAY:-$LAB_MX4} mx.$LAB_MAIL_DOMAIN"; } >"$base/hosts"
	# built-in paths (the package's) bind-mounted from this instance's
	# directories, in a mount namespace that lives as long as smtpd
	# shellcheck disable=SC2016
	local setup='set -e
		mount --make-rprivate /
		mount --bind "$1/spool" /var/spool/smtpd
		mount --bind "$1/run" /run
		mount --bind "$2/usr/libexec/opensmtpd" /usr/libexec/opensmtpd
		[ -z "$3" ] || mount --bind "$3" /etc/ssl/certs/ca-certificates.crt
		mount --bind "$1/resolv.conf" /etc/resolv.conf
		mount --bind "$1/hosts" /etc/hosts
		"$2/usr/sbin/smtpd" -n -f "$1/smtpd.conf"
		echo $$ >"$1/smtpd.pid"
		exec "$2/usr/sbin/smtpd" -d -f "$1/smtpd.conf"'
	: >"$base/smtpd.log"
	lab_exec "$node" ip link set lo up 2>/dev/null
	lab_exec "$node" unshare --mount -- bash -c "$setup" smtpd "$base" "$dir" "$cafile" \
		>>"$base/smtpd.log" 2>&1 </dev/null &
	local ok=0
	if [ "$role" = mx ]; then
		lab__mta_wait_listen mx 25 "$LAB_MX4" && lab__mta_wait_listen mx 25 "$LAB_MX6" && ok=1
	else
		lab__mta_wait_listen "$node" 25 127.0.0.1 && ok=1
	fi
	if [ $ok = 0 ]; then
		lab_log "OpenSMTPD in $node is not listening after 10 s:"
		tail -n 10 "$base/smtpd.log" | sed 's/^/    /' >&2
		return 1
	fi
	pid=$(lab__smtpd_pid "$node")
	# the retry ticker: deferred mail retried every LAB_MTA_RETRY_S s
	# shellcheck disable=SC2016
	lab__smtpd_exec "$node" bash -c 'while kill -0 "$1" 2>/dev/null; do
			sleep "$2"; "$3" schedule all >/dev/null 2>&1; done' ticker \
		"$pid" "$LAB_MTA_RETRY_S" "$dir/usr/sbin/smtpctl" </dev/null >/dev/null 2>&1 &
	return 0
}

# ------------------------------------------------------------------- API

# lab_start_vm_mta KIND VM: KIND's MTA in VM, relaying to the MX (above)
lab_start_vm_mta() {
	local kind=$1 vm=$2
	lab__mta_check_kind "$kind" || return 1
	if lab_exec "$vm" ss -Hltn "( sport = :25 )" 2>/dev/null | grep -q .; then
		lab_log "port 25 on $vm's loopback is taken already (one MTA per VM)"
		return 1
	fi
	case $kind in
	exim) lab__start_exim "$vm" vm ;;
	opensmtpd) lab__start_opensmtpd "$vm" vm ;;
	esac
}

# lab_vm_mta_submit KIND VM FILE FROM TO: FILE (an RFC 5322 message, LF line
# ends) handed to the MTA's own local submission, its bytes as they are
# (a lone "." line does not end it)
lab_vm_mta_submit() {
	local kind=$1 vm=$2 file=$3 from=$4 to=$5 base
	base=$(lab__mta_base "$kind" "$vm")
	case $kind in
	exim)
		lab_exec "$vm" timeout 30 "$(lab_mta_exim_bin)" -C "$base/exim.conf" -oi -f "$from" \
			"$to" <"$file" ;;
	opensmtpd)
		lab__smtpd_exec "$vm" timeout 30 "$(lab_mta_smtpd_dir)/usr/sbin/sendmail" -i -f "$from" \
			"$to" <"$file" ;;
	*) lab_log "unknown MTA '$kind'"; return 1 ;;
	esac
}

# lab__vm_mta_sent_line KIND VM TO: the MTA's log line saying the message
# to TO was delivered (the MX's 250), if any
lab__vm_mta_sent_line() {
	local kind=$1 vm=$2 to=$3 log
	log=$(lab_vm_mta_log "$kind" "$vm")
	case $kind in
	exim) grep -F -- " => $to " "$log" 2>/dev/null | grep -F 'C="250' | tail -n 1 ;;
	opensmtpd) grep -F -- "to=<$to>" "$log" 2>/dev/null | grep -E 'mta delivery .*result="Ok"' |
		tail -n 1 ;;
	esac
}

# lab_vm_mta_wait_sent KIND VM TO TIMEOUT_S: 0 (and the log line) once the
# VM's MTA logs the message to TO delivered, 1 after TIMEOUT_S
lab_vm_mta_wait_sent() {
	local kind=$1 vm=$2 to=$3 t=$4 line deadline
	deadline=$(($(date +%s) + t))
	while :; do
		line=$(lab__vm_mta_sent_line "$kind" "$vm" "$to")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

# lab_start_mx_mta KIND: KIND as the MX (above), in the MX's namespace
lab_start_mx_mta() {
	local kind=$1
	lab__mta_check_kind "$kind" || return 1
	if lab_exec mx ss -Hltn "( sport = :25 )" 2>/dev/null | grep -q .; then
		lab_log "port 25 on the MX is taken already (another MX running?)"
		return 1
	fi
	case $kind in
	exim) lab__start_exim mx mx ;;
	opensmtpd) lab__start_opensmtpd mx mx ;;
	esac
}

# lab_stop_mx_mta KIND: stops it (SIGTERM, 10 s, SIGKILL); its mail and log stay
lab_stop_mx_mta() { lab__stop_mta "$1" mx; }

# lab_stop_vm_mta KIND VM: stops the VM's MTA the same way (its queue stays;
# lab_start_vm_mta starts it again). OpenSMTPD keeps its connection to the
# MX open for more mail: a test that changes the VM's path (exempt) stops
# and starts it, so that the next message opens a new one.
lab_stop_vm_mta() { lab__stop_mta "$1" "$2"; }

lab__stop_mta() {
	local kind=$1 node=$2 base pid
	base=$(lab__mta_base "$kind" "$node")
	case $kind in
	exim) pid=$(cat "$base/daemon.pid" 2>/dev/null); rm -f "$base/daemon.pid" ;;
	opensmtpd) pid=$(lab__smtpd_pid "$node"); rm -f "$base/smtpd.pid" ;;
	*) lab_log "unknown MTA '$kind'"; return 1 ;;
	esac
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		lab_exec "$node" ss -Hltn "( sport = :25 )" 2>/dev/null | grep -q . || return 0
		sleep 0.1
	done
	lab_log "$kind in $node still listens on port 25 after it was stopped"
	return 1
}
