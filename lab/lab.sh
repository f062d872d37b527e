# shellcheck shell=bash
# lab.sh - the network-namespace lab smtpguard's end-to-end tests, demo and
# benchmarks run in. Source it; it defines functions and sets no options.
#
#   vm1 (192.0.2.11, 2001:db8:1::11) --eth0==tap-vm1--+
#   vm2 (192.0.2.12, 2001:db8:1::12) --eth0==tap-vm2--+-- host --uplink0==eth0-- mx
#   vmN (192.0.2.1N, 2001:db8:1::1N) --eth0==tap-vmN--+   (routed)     198.51.100.25
#                                                                       2001:db8:2::25
# Every node is a network namespace named PREFIX+NODE (e.g. sgt-policy-vm1).
# The host routes: each tap carries 192.0.2.1/32 and fe80::1, and a /32 (/128)
# route per VM points at its tap, as libvirt/Proxmox routed setups do. The VMs'
# default gateway is 192.0.2.1 / fe80::1. Only documentation addresses.
#
# Usage:
#   source lab/lab.sh
#   lab_init BUILD_DIR                 # once, before the other calls
#   trap 'lab_down sgt-x-' EXIT INT TERM
#   lab_up sgt-x-                      # host, vm1, vm2, mx
#   lab_start_mx_postfix               # real Postfix on the MX (ports 25, 587)
#   lab_start_smtpguardd main refuse=rst   # daemon in the host ns, waits for "ready"
#   lab_ctl main policy add 192.0.2.11/32 exempt
#   lab_exec vm1 swaks ...
#   lab_down sgt-x-                    # idempotent; works after partial setup
#
# Never use `ip netns exec` for the daemon: it remounts /sys and hides
# /sys/fs/bpf. lab_exec enters only the network namespace (nsenter --net).

LAB_PREFIX=${LAB_PREFIX:-}
LAB_DIR=${LAB_DIR:-}
LAB_BUILD=${LAB_BUILD:-}
LAB_MX4=198.51.100.25
LAB_MX6=2001:db8:2::25
LAB_HOST_UP4=198.51.100.1
LAB_HOST_UP6=2001:db8:2::1
LAB_GW4=192.0.2.1
LAB_GW6=fe80::1
LAB_MAIL_DOMAIN=example.net
LAB_READY_TIMEOUT=${LAB_READY_TIMEOUT:-20}
source "$(dirname "${BASH_SOURCE[0]}")/milters.sh"

lab_log() { echo "lab: $*" >&2; }

# lab_init BUILD_DIR: where smtpguardd, smtpguardctl and selftests/ live.
lab_init() {
	local b=${1:-build}
	if [ ! -d "$b" ]; then
		lab_log "build directory '$b' does not exist (run make all)"
		return 1
	fi
	LAB_BUILD=$(cd "$b" && pwd)
}

# Address helpers: lab_vm_ip4 vm1 -> 192.0.2.11, lab_vm_ip6 vm3 -> 2001:db8:1::13
lab_vm_num() { local n=${1#vm}; echo "$n"; }
lab_vm_ip4() { echo "192.0.2.$((10 + $(lab_vm_num "$1")))"; }
lab_vm_ip6() { echo "2001:db8:1::$((10 + $(lab_vm_num "$1")))"; }
lab_ns() { echo "${LAB_PREFIX}$1"; }

# lab_exec NODE CMD...: runs CMD in NODE's network namespace (host, vm1, mx...).
lab_exec() {
	local node=$1; shift
	nsenter --net="/run/netns/${LAB_PREFIX}${node}" -- "$@"
}

lab_sysctls() {
	local ns=$1
	nsenter --net="/run/netns/$ns" -- sh -c '
		sysctl -qw net.ipv4.ip_local_port_range="1024 65000" &&
		sysctl -qw net.ipv4.tcp_tw_reuse=1 &&
		sysctl -qw net.core.somaxconn=65535 &&
		sysctl -qw net.ipv4.tcp_max_syn_backlog=65535 &&
		sysctl -qw net.ipv6.conf.all.accept_dad=0 &&
		sysctl -qw net.ipv6.conf.default.accept_dad=0 &&
		sysctl -qw net.ipv6.conf.default.accept_ra=0' ||
		{ lab_log "sysctls failed in $ns"; return 1; }
}

lab_add_ns() {
	local ns=$1
	ip netns add "$ns" || { lab_log "cannot create namespace $ns"; return 1; }
	ip -n "$ns" link set lo up
	lab_sysctls "$ns"
}

# lab_add_vm NAME [IFNAME]: creates namespace PREFIX+NAME (vm1, vm2, vm3...)
# linked to the host by tap-NAME (or IFNAME: a hypervisor's name, tap103i0,
# vnet4), and routes its addresses. Usable after lab_up (hot-plug).
lab_add_vm() {
	local vm=$1 tap=${2:-tap-$1} h v ip4 ip6
	h=$(lab_ns host); v=$(lab_ns "$vm")
	ip4=$(lab_vm_ip4 "$vm"); ip6=$(lab_vm_ip6 "$vm")
	lab_add_ns "$v" || return 1
	ip link add "$tap" netns "$h" type veth peer name eth0 netns "$v" ||
		{ lab_log "cannot create $tap"; return 1; }
	# the VM side, the host side, then the VM's v6 default route (via the
	# host's link-local fe80::1, which needs both ends up)
	{ ip -n "$v" link set eth0 up &&
	  ip -n "$v" addr add "$ip4/32" dev eth0 &&
	  ip -n "$v" route add "$LAB_GW4/32" dev eth0 scope link &&
	  ip -n "$v" route add default via "$LAB_GW4" dev eth0 &&
	  ip -n "$v" -6 addr add "$ip6/128" dev eth0 nodad &&
	  ip -n "$h" link set "$tap" up &&
	  ip -n "$h" addr add "$LAB_GW4/32" dev "$tap" &&
	  ip -n "$h" -6 addr add "$LAB_GW6/64" dev "$tap" nodad &&
	  ip -n "$h" route add "$ip4/32" dev "$tap" scope link &&
	  ip -n "$h" -6 route add "$ip6/128" dev "$tap" &&
	  ip -n "$v" -6 route add default via "$LAB_GW6" dev eth0; } ||
		{ lab_log "cannot address or route $vm"; return 1; }
}

# lab_vm_xdp_rx VM: an empty XDP program (build/bpf/empty_xdp.bpf.o) on the
# VM's own end of its veth. A veth delivers frames its peer sends with XDP_TX
# (e.g. the classifier's RST at XDP) only when it runs NAPI, which an XDP
# program turns on; a real tap device always hands them to the VM.
lab_vm_xdp_rx() {
	local vm=$1 pin rc=0
	# bpftool, not `ip link set xdp obj`: iproute2 would create
	# /sys/fs/bpf/{ip,tc,xdp}/globals. The pin goes once attached.
	pin="/sys/fs/bpf/${LAB_PREFIX}xdprx-$vm"
	rm -f "$pin"
	bpftool prog load "$LAB_BUILD/bpf/empty_xdp.bpf.o" "$pin" type xdp &&
		lab_exec "$vm" bpftool net attach xdpdrv pinned "$pin" dev eth0 || rc=1
	rm -f "$pin"
	[ $rc -eq 0 ] || lab_log "cannot load empty_xdp on $vm's eth0"
	return $rc
}

# lab_del_vm NAME: removes a VM and its tap while everything else runs.
lab_del_vm() {
	local vm=$1 v
	v=$(lab_ns "$vm")
	lab_kill_ns "$v"
	ip -n "$(lab_ns host)" link del "tap-$vm" 2>/dev/null
	ip netns del "$v" 2>/dev/null
	return 0
}

# lab_up PREFIX: host, vm1, vm2 and mx. Creates LAB_DIR (mktemp -d).
lab_up() {
	local prefix=${1:?lab_up PREFIX}
	local h m
	LAB_PREFIX=$prefix
	if ip netns list | awk '{print $1}' | grep -q "^${prefix}"; then
		lab_log "namespaces with prefix $prefix exist already; cleaning up first"
		lab_down "$prefix"
		LAB_PREFIX=$prefix
	fi
	LAB_DIR=$(mktemp -d "/tmp/sglab-${prefix}XXXXXX") || return 1
	chmod 755 "$LAB_DIR"
	h=$(lab_ns host); m=$(lab_ns mx)
	lab_add_ns "$h" || return 1
	lab_add_ns "$m" || return 1
	nsenter --net="/run/netns/$h" -- sh -c '
		sysctl -qw net.ipv4.ip_forward=1 &&
		sysctl -qw net.ipv6.conf.all.forwarding=1' ||
		{ lab_log "cannot enable forwarding"; return 1; }
	ip link add uplink0 netns "$h" type veth peer name eth0 netns "$m" ||
		{ lab_log "cannot create uplink0"; return 1; }
	{ ip -n "$h" link set uplink0 up &&
	  ip -n "$h" addr add "$LAB_HOST_UP4/24" dev uplink0 &&
	  ip -n "$h" -6 addr add "$LAB_HOST_UP6/64" dev uplink0 nodad &&
	  ip -n "$m" link set eth0 up &&
	  ip -n "$m" addr add "$LAB_MX4/24" dev eth0 &&
	  ip -n "$m" -6 addr add "$LAB_MX6/64" dev eth0 nodad &&
	  ip -n "$m" route add default via "$LAB_HOST_UP4" &&
	  ip -n "$m" -6 route add default via "$LAB_HOST_UP6"; } ||
		{ lab_log "cannot address or route the uplink"; return 1; }
	lab_add_vm vm1 || return 1
	lab_add_vm vm2 || return 1
	lab_wait_reachable vm1 || return 1
	lab_wait_reachable vm2 || return 1
}

# lab_make_bridged: turns the routed lab (after lab_up) into a bridged host,
# as Proxmox's vmbr0 or a libvirt bridge: the host's br0 has the VMs' taps
# and uplink0 as ports and an address of its own in the VMs' subnet
# (192.0.2.2, 2001:db8:1::2); the MX's namespace is also the VMs' gateway
# (192.0.2.1, fe80::1) on the same layer-2 segment. The host routes nothing.
lab_make_bridged() {
	local h m vm
	h=$(lab_ns host); m=$(lab_ns mx)
	{ nsenter --net="/run/netns/$h" -- sh -c '
		sysctl -qw net.ipv4.ip_forward=0 &&
		sysctl -qw net.ipv6.conf.all.forwarding=0' &&
	  ip -n "$h" link add br0 type bridge &&
	  ip -n "$h" link set br0 type bridge stp_state 0 forward_delay 0 &&
	  for dev in uplink0 tap-vm1 tap-vm2; do
		ip -n "$h" addr flush dev "$dev" &&
		ip -n "$h" route flush dev "$dev" 2>/dev/null
		ip -n "$h" -6 route flush dev "$dev" 2>/dev/null
		ip -n "$h" link set "$dev" master br0 || return 1
	  done &&
	  ip -n "$h" link set br0 up &&
	  ip -n "$h" addr add 192.0.2.2/24 dev br0 &&
	  ip -n "$h" -6 addr add 2001:db8:1::2/64 dev br0 nodad &&
	  ip -n "$h" route add default via "$LAB_GW4" dev br0 &&
	  ip -n "$h" -6 route add default via 2001:db8:1::1 dev br0 &&
	  ip -n "$m" route del default 2>/dev/null; ip -n "$m" -6 route del default 2>/dev/null
	  ip -n "$m" addr add "$LAB_GW4/24" dev eth0 &&
	  ip -n "$m" -6 addr add 2001:db8:1::1/64 dev eth0 nodad &&
	  ip -n "$m" -6 addr add "$LAB_GW6/64" dev eth0 nodad; } ||
		{ lab_log "cannot turn the lab into a bridged host"; return 1; }
	# the gateway's MAC was the host's tap: now a bridge port, whose MAC the
	# bridge keeps as its own, so the VMs must ask again
	for vm in vm1 vm2 mx; do
		ip -n "$(lab_ns "$vm")" neigh flush all 2>/dev/null
		ip -n "$(lab_ns "$vm")" -6 neigh flush all 2>/dev/null
	done
	for vm in vm1 vm2; do
		lab_wait_reachable "$vm" || return 1
	done
}

# lab_tcp_probe NODE ADDR PORT [TIMEOUT]: one TCP connect from NODE; prints
# and returns: "open" 0, "refused" 1 (an RST came back), "timeout" 2, or
# "error: ..." 3 (e.g. no route). Uses bash's /dev/tcp, no extra tools.
lab_tcp_probe() {
	local node=$1 addr=$2 port=$3 t=${4:-3} out rc
	out=$(lab_exec "$node" timeout "$t" bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$addr" "$port" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then echo open; return 0; fi
	case $out in
	*"Connection refused"*) echo refused; return 1 ;;
	esac
	if [ $rc -eq 124 ]; then echo timeout; return 2; fi
	echo "error: ${out##*: }"
	return 3
}

lab__reached() { [ "$1" = open ] || [ "$1" = refused ]; }

# lab_wait_reachable NODE: both address families reach the MX (a TCP probe to
# a closed port on the MX is answered with an RST).
lab_wait_reachable() {
	local node=$1
	for _ in $(seq 1 50); do
		if lab__reached "$(lab_tcp_probe "$node" "$LAB_MX4" 9 1)" &&
		   lab__reached "$(lab_tcp_probe "$node" "$LAB_MX6" 9 1)"; then
			return 0
		fi
		sleep 0.1
	done
	lab_log "$node cannot reach the MX"
	return 1
}

# Kills every process in namespace NS: TERM, then KILL after 3 s.
lab_kill_ns() {
	local ns=$1 pids
	[ -e "/run/netns/$ns" ] || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	for _ in $(seq 1 30); do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] || return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	sleep 0.2
	return 0
}

# lab_down PREFIX: stops daemons, Postfix instances and every process in the
# lab's namespaces, removes the daemons' pins, the namespaces and LAB_DIR.
# Idempotent; works after a partial lab_up and from a fresh shell.
lab_down() {
	local prefix=${1:-$LAB_PREFIX} ns d root conf
	[ -n "$prefix" ] || return 0
	local dirs=()
	[ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ] && dirs+=("$LAB_DIR")
	for d in /tmp/sglab-"${prefix}"??????; do
		[ -d "$d" ] && [ "$d" != "$LAB_DIR" ] && dirs+=("$d")
	done
	# daemons first, so that they do not chase disappearing interfaces
	for d in "${dirs[@]}"; do
		for conf in "$d"/sgd-*.conf; do
			[ -f "$conf" ] || continue
			lab__stop_pidfile "${conf%.conf}.pid"
		done
	done
	# Postfix instances
	for d in "${dirs[@]}"; do
		for conf in "$d"/postfix-*/etc; do
			[ -f "$conf/main.cf" ] || continue
			timeout 20 postfix -c "$conf" stop >/dev/null 2>&1
		done
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}"); do
		lab_kill_ns "$ns"
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${prefix}"); do
		ip netns del "$ns" 2>/dev/null || lab_log "cannot delete namespace $ns"
	done
	# pins of the daemons this lab ran (the interfaces went with the namespaces)
	for d in "${dirs[@]}"; do
		[ -f "$d/bpffs_roots" ] || continue
		while read -r root; do
			case $root in
			/sys/fs/bpf/?*)
				[ -e "$root" ] && rm -rf "$root"
				# smtpguardd's instance lock for that root
				rm -f "/run/smtpguard/$(echo "$root" | tr / _).lock"
				;;
			esac
		done <"$d/bpffs_roots"
	done
	for d in "${dirs[@]}"; do
		rm -rf "$d"
	done
	LAB_DIR=
	return 0
}

lab__stop_pidfile() {
	local pf=$1 pid
	[ -f "$pf" ] || return 0
	pid=$(cat "$pf" 2>/dev/null)
	rm -f "$pf"
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	lab_log "pid $pid ignored SIGTERM for 10 s; killing it"
	kill -KILL "$pid" 2>/dev/null
	return 1
}

# ---------------------------------------------------------------- MX services

# lab_start_mx_postfix: a private Postfix instance in the MX namespace, its
# own config/queue/data directories under LAB_DIR/postfix-mx. Listens on the
# MX's addresses, ports 25 and 587; accepts any recipient at example.net and
# delivers to the Maildir LAB_DIR/postfix-mx/mail/sink/ (lab_mx_count_mail);
# logs to LAB_DIR/postfix-mx/maillog (lab_mx_log). With LAB_MX_TLS_CHAIN
# ("KEY CERT", lab_make_tls_ca) it offers STARTTLS and logs TLS sessions.
# For the special MXes (lab/mx_special.sh): LAB_MX_SMTPD_PORT moves its
# SMTP service off port 25 (a front takes 25), LAB_MX_MAIN_CF_EXTRA is
# appended to main.cf (a policy service, say); both unset by default.
lab_start_mx_postfix() {
	local base="$LAB_DIR/postfix-mx" port=${LAB_MX_SMTPD_PORT:-25}
	mkdir -p "$base/etc" "$base/queue" "$base/data" "$base/mail"
	chown nobody:nogroup "$base/mail"
	chown postfix:postfix "$base/data"
	chmod 755 "$base" "$base/etc" "$base/queue"
	cat >"$base/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $base/etc
queue_directory = $base/queue
data_directory = $base/data
syslog_name = postfix-${LAB_PREFIX}mx
maillog_file = $base/maillog
maillog_file_prefixes = $LAB_DIR
myhostname = mx.$LAB_MAIL_DOMAIN
mydomain = $LAB_MAIL_DOMAIN
myorigin = \$myhostname
mydestination =
inet_interfaces = $LAB_MX4, [$LAB_MX6]
inet_protocols = all
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
virtual_mailbox_domains = $LAB_MAIL_DOMAIN
virtual_mailbox_base = $base/mail
virtual_mailbox_maps = static:sink/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
smtpd_peername_lookup = no
$(if [ -n "${LAB_MX_TLS_CHAIN:-}" ]; then
	echo "smtpd_tls_security_level = may"
	echo "smtpd_tls_chain_files = $LAB_MX_TLS_CHAIN"
	echo "smtpd_tls_loglevel = 1"
else
	echo "smtpd_tls_security_level = none"
fi)
smtp_tls_security_level = none
smtpd_banner = \$myhostname ESMTP lab MX
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_error_sleep_time = 0
default_process_limit = 200
biff = no
append_dot_mydomain = no
readme_directory = no
${LAB_MX_MAIN_CF_EXTRA:-}
EOF
	printf '%-9s inet  n       -       n       -       -       smtpd\n' \
		"$([ "$port" = 25 ] && echo smtp || echo "$port")" >"$base/etc/master.cf"
	cat >>"$base/etc/master.cf" <<'EOF'
submission inet n       -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	if ! lab_exec mx timeout 30 postfix -c "$base/etc" start >"$base/start.log" 2>&1; then
		lab_log "Postfix did not start on the MX:"
		sed 's/^/    /' "$base/start.log" >&2
		[ -f "$base/maillog" ] && tail -n 20 "$base/maillog" | sed 's/^/    /' >&2
		return 1
	fi
	for _ in $(seq 1 100); do
		if lab_exec mx ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q "$LAB_MX4" &&
		   lab_exec mx ss -Hltn "( sport = :587 )" 2>/dev/null | grep -q "$LAB_MX6"; then
			return 0
		fi
		sleep 0.1
	done
	lab_log "Postfix on the MX is not listening after 10 s"
	tail -n 20 "$base/maillog" 2>/dev/null | sed 's/^/    /' >&2
	return 1
}

# lab_start_vm_postfix VM: a real Postfix as the VM's MTA (a private
# instance in the VM's namespace, no listener): mail given to
# lab_vm_sendmail goes out to the MX by SMTP (relayhost [MX]), as a customer
# VM's MTA would; its log is lab_vm_log VM. With LAB_VM_TLS_CAFILE it uses
# STARTTLS when offered (security level may) and logs the TLS session:
# "Trusted" for a certificate from that CA, "Untrusted" otherwise.
lab_start_vm_postfix() {
	local vm=$1 base="$LAB_DIR/postfix-$1"
	mkdir -p "$base/etc" "$base/queue" "$base/data"
	chown postfix:postfix "$base/data"
	chmod 755 "$base" "$base/etc" "$base/queue"
	cat >"$base/etc/main.cf" <<CONF
compatibility_level = 3.6
config_directory = $base/etc
queue_directory = $base/queue
data_directory = $base/data
syslog_name = postfix-${LAB_PREFIX}$vm
maillog_file = $base/maillog
maillog_file_prefixes = $LAB_DIR
myhostname = $vm.example.org
mydomain = example.org
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [$LAB_MX4]
$(if [ -n "${LAB_VM_TLS_CAFILE:-}" ]; then
	echo "smtp_tls_security_level = may"
	echo "smtp_tls_CAfile = $LAB_VM_TLS_CAFILE"
	echo "smtp_tls_loglevel = 1"
else
	echo "smtp_tls_security_level = none"
fi)
smtp_connect_timeout = 10s
smtp_data_xfer_timeout = 20s
smtp_data_done_timeout = 20s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
queue_run_delay = 1s
alias_maps =
alias_database =
biff = no
readme_directory = no
CONF
	cat >"$base/etc/master.cf" <<'CONF'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
flush     unix  n       -       n       1000?   0       flush
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
CONF
	lab_exec "$vm" ip link set lo up 2>/dev/null
	if ! lab_exec "$vm" timeout 30 postfix -c "$base/etc" start >"$base/start.log" 2>&1; then
		lab_log "Postfix did not start in $vm:"
		sed 's/^/    /' "$base/start.log" >&2
		return 1
	fi
}

# lab_make_tls_ca DIR: two test CAs and a certificate from each (ECDSA
# P-256, valid 2 days): DIR/provider.{key,crt} for CN smtpguard.provider.test
# from DIR/provider-ca.crt (what tls_mode terminate shows the VMs), and
# DIR/mx.{key,crt} for mx.example.net from DIR/mx-ca.crt (the lab MX's).
lab_make_tls_ca() {
	local dir=$1 who cn
	mkdir -p "$dir"
	for who in provider mx; do
		cn=$([ "$who" = mx ] && echo "mx.$LAB_MAIL_DOMAIN" || echo smtpguard.provider.test)
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
			-subj "/CN=lab $who CA" -keyout "$dir/$who-ca.key" -out "$dir/$who-ca.crt" \
			>/dev/null 2>&1 || return 1
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
			-keyout "$dir/$who.key" -out "$dir/$who.csr" >/dev/null 2>&1 || return 1
		printf 'subjectAltName = DNS:%s\n' "$cn" >"$dir/$who.ext"
		openssl x509 -req -in "$dir/$who.csr" -CA "$dir/$who-ca.crt" \
			-CAkey "$dir/$who-ca.key" -CAcreateserial -days 2 -extfile "$dir/$who.ext" \
			-out "$dir/$who.crt" >/dev/null 2>&1 || return 1
	done
	chmod 644 "$dir"/*.key
}

# lab_vm_sendmail VM SUBJECT [BODY]: hands a message to the VM's Postfix.
lab_vm_sendmail() {
	local vm=$1 subject=$2 body=${3:-hello}
	printf 'From: %s@example.org\nTo: u@%s\nSubject: %s\n\n%s\n' "$vm" "$LAB_MAIL_DOMAIN" \
		"$subject" "$body" |
		lab_exec "$vm" timeout 20 sendmail -C "$LAB_DIR/postfix-$vm/etc" -f "$vm@example.org" \
			"u@$LAB_MAIL_DOMAIN"
}

# lab_vm_flush VM: the VM's Postfix retries its deferred mail now.
lab_vm_flush() {
	lab_exec "$1" timeout 20 postqueue -c "$LAB_DIR/postfix-$1/etc" -f
}

lab_vm_log() { echo "$LAB_DIR/postfix-$1/maillog"; }
lab_mx_log() { echo "$LAB_DIR/postfix-mx/maillog"; }
lab_mx_maildir() { echo "$LAB_DIR/postfix-mx/mail/sink"; }

# Number of messages delivered to the MX's Maildir.
lab_mx_count_mail() {
	local d
	d=$(lab_mx_maildir)
	find "$d/new" "$d/cur" -type f 2>/dev/null | wc -l
}

# lab_mx_find_mail TOKEN: path of the delivered message containing TOKEN.
lab_mx_find_mail() {
	local d f
	d=$(lab_mx_maildir)
	[ -d "$d" ] || return 1
	f=$(grep -rlF -- "$1" "$d/new" "$d/cur" 2>/dev/null | head -n 1)
	[ -n "$f" ] || return 1
	echo "$f"
}

# lab_start_mx_sink PORT [ADDR]: Postfix's smtp-sink on the MX (a fast SMTP
# listener with a deep backlog, for connection floods). ADDR defaults to the
# MX's IPv4 address; pass "[2001:db8:2::25]" style for IPv6.
lab_start_mx_sink() {
	local port=$1 addr=${2:-$LAB_MX4} tag
	tag=$(echo "$addr" | tr -c 'a-zA-Z0-9\n' _)
	lab_exec mx smtp-sink -u nobody -c "$addr:$port" 1024 \
		>"$LAB_DIR/smtp-sink-$tag-$port.log" 2>&1 &
	for _ in $(seq 1 50); do
		lab_exec mx ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	lab_log "smtp-sink on $addr:$port did not start"
	return 1
}

# lab_start_mx_iperf PORT: iperf3 server on the MX.
lab_start_mx_iperf() {
	local port=${1:-5201}
	lab_exec mx iperf3 -s -p "$port" >"$LAB_DIR/iperf3-$port.log" 2>&1 &
	for _ in $(seq 1 50); do
		lab_exec mx ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	lab_log "iperf3 server on port $port did not start"
	return 1
}

# ---------------------------------------------------------------- smtpguardd

lab_sgd_conf() { echo "$LAB_DIR/sgd-${1:-main}.conf"; }
lab_sgd_log() { echo "$LAB_DIR/sgd-${1:-main}.log"; }
lab_sgd_pidfile() { echo "$LAB_DIR/sgd-${1:-main}.pid"; }
lab_sgd_pid() { cat "$(lab_sgd_pidfile "${1:-main}")" 2>/dev/null; }
# The pid of instance NAME's proxy process (smtpguardd's child; the newest
# one while one an upgrade replaced still drains), or nothing.
lab_sgd_proxy_pid() {
	local pid
	pid=$(lab_sgd_pid "${1:-main}") || return 0
	[ -n "$pid" ] && tr ' ' '\n' <"/proc/$pid/task/$pid/children" 2>/dev/null | grep . | sort -n |
		tail -n 1
}
# "USER SYS": the CPU time (clock ticks) of instance NAME, the daemon's and
# its proxy process's together.
lab_sgd_jiffies() {
	local pid
	for pid in $(lab_sgd_pid "${1:-main}") $(lab_sgd_proxy_pid "${1:-main}"); do
		cat "/proc/$pid/stat" 2>/dev/null
	done | awk '{ u += $14; s += $15 } END { print u + 0, s + 0 }'
}
# Default pin directory of instance NAME: /sys/fs/bpf/PREFIX-without-dash-NAME
lab_sgd_default_root() { echo "/sys/fs/bpf/${LAB_PREFIX%-}-${1:-main}"; }
lab_sgd_root() {
	local conf
	conf=$(lab_sgd_conf "${1:-main}")
	sed -n 's/^bpffs_root *= *//p' "$conf" 2>/dev/null | tail -n 1
}

# lab_write_sgd_conf NAME [key=value...]: writes the instance's config file.
# Defaults: bpffs_root = lab_sgd_default_root NAME, interfaces = tap*,
# smtp_ports = 25 587, proxy = no, proxy_user = nobody (the lab's hosts
# have no smtpguard user); a key=value given replaces a default, others
# follow.
lab_write_sgd_conf() {
	local name=${1:-main}; shift
	local conf kv k v
	conf=$(lab_sgd_conf "$name")
	# proxy = no unless a test asks for it (the daemon's default is yes;
	# the lab's host has no default route to find an uplink by)
	declare -A kvs=([bpffs_root]="$(lab_sgd_default_root "$name")"
			[interfaces]='tap*' [smtp_ports]='25 587' [proxy]=no [proxy_user]=nobody)
	local order=(bpffs_root interfaces smtp_ports proxy proxy_user)
	for kv in "$@"; do
		k=${kv%%=*}; v=${kv#*=}
		k=${k%% }; v=${v## }
		[ -n "${kvs[$k]+x}" ] || order+=("$k")
		kvs[$k]=$v
	done
	{
		echo "# smtpguardd config written by lab.sh for lab ${LAB_PREFIX} instance $name"
		for k in "${order[@]}"; do
			echo "$k = ${kvs[$k]}"
		done
	} >"$conf"
	grep -qxF "${kvs[bpffs_root]}" "$LAB_DIR/bpffs_roots" 2>/dev/null ||
		echo "${kvs[bpffs_root]}" >>"$LAB_DIR/bpffs_roots"
}

# lab_start_smtpguardd [NAME [key=value...]]: writes a config (see
# lab_write_sgd_conf) when keys are given or none exists yet (a restart with
# no keys reuses the last one), starts smtpguardd in the host namespace in
# the background, waits up to LAB_READY_TIMEOUT s for "ready" in its log.
lab_start_smtpguardd() {
	local name=${1:-main}; [ $# -gt 0 ] && shift
	local conf log pid
	conf=$(lab_sgd_conf "$name"); log=$(lab_sgd_log "$name")
	if [ ! -x "$LAB_BUILD/smtpguardd" ]; then
		lab_log "no $LAB_BUILD/smtpguardd (run make all)"
		return 1
	fi
	if [ $# -gt 0 ] || [ ! -f "$conf" ]; then
		lab_write_sgd_conf "$name" "$@"
	fi
	[ -f "$log" ] && cat "$log" >>"$log.old"
	: >"$log"
	nsenter --net="/run/netns/$(lab_ns host)" -- "${SG_DAEMON:-$LAB_BUILD/smtpguardd}" -c "$conf" \
		>>"$log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$(lab_sgd_pidfile "$name")"
	for _ in $(seq 1 $((LAB_READY_TIMEOUT * 10))); do
		if grep -q '^smtpguardd: ready:' "$log" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			lab_log "smtpguardd ($name) exited with status $? before it was ready:"
			tail -n 20 "$log" | sed 's/^/    /' >&2
			rm -f "$(lab_sgd_pidfile "$name")"
			return 1
		fi
		sleep 0.1
	done
	lab_log "smtpguardd ($name) not ready after ${LAB_READY_TIMEOUT} s; its log:"
	tail -n 20 "$log" | sed 's/^/    /' >&2
	lab__stop_pidfile "$(lab_sgd_pidfile "$name")"
	return 1
}

# lab_stop_smtpguardd [NAME]: SIGTERM, waits (10 s), SIGKILL if it must.
# Returns 0 when it stopped on SIGTERM, and its exit status in LAB_SGD_STATUS.
lab_stop_smtpguardd() {
	local name=${1:-main} pf pid
	pf=$(lab_sgd_pidfile "$name")
	LAB_SGD_STATUS=
	[ -f "$pf" ] || return 0
	pid=$(cat "$pf")
	rm -f "$pf"
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			LAB_SGD_STATUS=$?
			return 0
		fi
		sleep 0.1
	done
	lab_log "smtpguardd ($name, pid $pid) ignored SIGTERM for 10 s; killing it"
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	LAB_SGD_STATUS=$?
	return 1
}

# lab_detach_smtpguardd NAME [--purge]: smtpguardd -c CONF --detach [--purge]
# in the host namespace; output appended to the instance's log.
lab_detach_smtpguardd() {
	local name=${1:-main}; shift
	lab_exec host timeout 30 "${SG_DAEMON:-$LAB_BUILD/smtpguardd}" -c "$(lab_sgd_conf "$name")" \
		--detach "$@" >>"$(lab_sgd_log "$name").detach" 2>&1
}

# lab_ctl NAME ARGS...: smtpguardctl --root <instance's root> ARGS...
lab_ctl() {
	local name=${1:-main}; shift
	timeout 20 "${SG_CTL:-$LAB_BUILD/smtpguardctl}" --root "$(lab_sgd_root "$name")" "$@"
}

# lab_sgd_attached IFACE: prints tc/xdp if a BPF program is attached to IFACE
# in the host namespace (TC ingress filter, tcx link, or XDP), else nothing.
lab_sgd_attached() {
	local ifc=$1
	if lab_exec host ip -d link show dev "$ifc" 2>/dev/null | grep -q 'prog/xdp'; then
		echo xdp
	elif lab_exec host tc filter show dev "$ifc" ingress 2>/dev/null | grep -q 'bpf'; then
		echo tc
	elif lab_exec host bpftool net show dev "$ifc" 2>/dev/null | grep -qE 'tcx/ingress|tc/ingress'; then
		echo tc
	fi
}
