# shellcheck shell=bash
# peers.sh - the two setups smtpguard is measured against (what a hosting
# provider would run instead), run inside the lab's host namespace so that a
# benchmark can time them in the same run as direct delivery and smtpguard:
#   ProxSMTP 1.10 as a fully transparent proxy (nft TPROXY, the MX sees the
#     VM's address); the VM keeps dialling the MX.
#   a Postfix smart host on the host's VM-side address; the VM must dial
#     peer_smarthost_target instead of the MX.
# Also counts what the lab's smtp-sink on the MX received, so a benchmark can
# wait until every message arrived (a smart host accepts faster than it
# delivers).
#
# Source it after lab/lab.sh, once lab_up has run; it sets no options:
#   source lab/lab.sh; source bench/peers.sh
#   lab_up sgx-; lab_start_mx_sink 25
#   peer_proxsmtp_start   ...  lab_exec vm1 smtp-source ... MX:25   ...  peer_proxsmtp_stop
#   peer_smarthost_start  ...  lab_exec vm1 smtp-source ... "$(peer_smarthost_target)" ...
#   until [ "$(peer_sink_count)" -ge "$want" ]; do sleep 0.1; done; peer_smarthost_stop
# Needs the Debian packages proxsmtp, postfix (smtp-source, smtp-sink) and
# nftables. While a peer is measured smtpguard must leave the VM alone
# (exempt, or not running): its classifier sees the VM's packets first.
# Whatever a start leaves behind on failure, the matching stop (or lab_down,
# which kills every process in the lab and deletes its namespaces) removes.

# Mark and routing table of the TPROXY return path; smtpguard itself uses
# fwmark 0x5347 and table 5347, so these must differ.
PEER_PROXSMTP_MARK=0x70
PEER_PROXSMTP_TABLE=170
PEER_PROXSMTP_PORT=10025
PEER_PROXSMTP_NFT_TABLE=peer_proxsmtp
PEER_VM_NET=192.0.2.0/24
PEER_READY_TIMEOUT=${PEER_READY_TIMEOUT:-10}

peer_log() { echo "peers: $*" >&2; }

# peer__need_lab: fails unless lab_up has run (its host namespace and LAB_DIR exist).
peer__need_lab() {
	if [ -z "${LAB_DIR:-}" ] || [ ! -d "$LAB_DIR" ] ||
	   [ ! -e "/run/netns/$(lab_ns host)" ]; then
		peer_log "$1: no lab (run lab_up first; LAB_DIR='${LAB_DIR:-}' prefix='${LAB_PREFIX:-}')"
		return 1
	fi
}

# peer__listening ADDR PORT [PID]: true when something in the host namespace
# (process PID, if given) listens on ADDR:PORT.
peer__listening() {
	lab_exec host ss -Hltnp "( sport = :$2 )" 2>/dev/null |
		awk -v want="$1:$2" -v pid="${3:-}" '
			$4 == want && (pid == "" || index($0, "pid=" pid ",")) { found = 1 }
			END { exit !found }'
}

# ---------------------------------------------------------------- TPROXY

# peer__tproxy_up PORT [track]: nft TPROXY in the host namespace hands every
# TCP connection from a tap-vm* interface to port 25 to a transparent
# listener on PORT. The socket rules route packets of the proxy's own
# transparent sockets (VM -> its accepted socket, MX -> its socket bound to
# the VM's address) to the local stack instead of forwarding them; the
# tproxy rule hands it new connections. "track" also makes the namespace
# track connections, for a proxy that asks SO_ORIGINAL_DST (which needs
# conntrack). (Not "ct": a keyword nft refuses as a chain name.)
# "meta mark 0": packets smtpguard's classifier already marked (its
# steering, fwmark 0x5347) are its own; leave them to its rule. The socket
# rules are limited to port 25, so no other transparent socket in the
# namespace gets this mark. peer__tproxy_down undoes it.
peer__tproxy_up() {
	local port=$1 track=
	[ "${2:-}" = track ] && track="chain track {
		type filter hook prerouting priority filter; policy accept;
		ct state new counter
	}"
	lab_exec host nft -f - <<EOF || return 1
table ip $PEER_PROXSMTP_NFT_TABLE {
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		meta mark 0 iifname "tap-vm*" tcp dport 25 socket transparent 1 meta mark set $PEER_PROXSMTP_MARK accept
		meta mark 0 tcp sport 25 socket transparent 1 meta mark set $PEER_PROXSMTP_MARK accept
		meta mark 0 iifname "tap-vm*" ip saddr $PEER_VM_NET tcp dport 25 tproxy to :$port meta mark set $PEER_PROXSMTP_MARK accept
	}
	$track
}
EOF
	lab_exec host ip rule add fwmark "$PEER_PROXSMTP_MARK" lookup "$PEER_PROXSMTP_TABLE" &&
		lab_exec host ip route add local 0.0.0.0/0 dev lo table "$PEER_PROXSMTP_TABLE"
}

# peer__tproxy_down CALLER: removes what peer__tproxy_up made; 1 (with the
# reason, under CALLER's name) if something could not be removed.
peer__tproxy_down() {
	[ -e "/run/netns/$(lab_ns host)" ] || return 0
	if lab_exec host nft list table ip "$PEER_PROXSMTP_NFT_TABLE" >/dev/null 2>&1; then
		lab_exec host nft delete table ip "$PEER_PROXSMTP_NFT_TABLE" ||
			{ peer_log "$1: cannot delete nft table $PEER_PROXSMTP_NFT_TABLE"; return 1; }
	fi
	while lab_exec host ip rule del fwmark "$PEER_PROXSMTP_MARK" lookup "$PEER_PROXSMTP_TABLE" 2>/dev/null; do :; done
	lab_exec host ip route flush table "$PEER_PROXSMTP_TABLE" 2>/dev/null
	if [ -n "$(lab_exec host ip route show table "$PEER_PROXSMTP_TABLE" 2>/dev/null)" ] ||
	   lab_exec host ip rule show | grep -q "lookup $PEER_PROXSMTP_TABLE\b"; then
		peer_log "$1: routing table $PEER_PROXSMTP_TABLE or its fwmark rule is still there"
		return 1
	fi
}

# ---------------------------------------------------------------- ProxSMTP

peer__proxsmtp_dir() { echo "$LAB_DIR/proxsmtp"; }

# peer_proxsmtp_start: proxsmtpd 1.10 (FilterCommand cat) in the host
# namespace in TransparentProxy full mode; nft TPROXY hands it every TCP
# connection from a tap-vm* interface to port 25, and it connects on to the
# address the VM dialled with the VM's own source address. Returns once it
# listens (0), or 1 with the reason on stderr after undoing what it did.
peer_proxsmtp_start() {
	local dir pid
	peer__need_lab peer_proxsmtp_start || return 1
	if ! command -v proxsmtpd >/dev/null; then
		peer_log "peer_proxsmtp_start: proxsmtpd not installed (apt-get install --no-install-recommends proxsmtp)"
		return 1
	fi
	if ! getent passwd _proxsmtp >/dev/null; then
		peer_log "peer_proxsmtp_start: no user _proxsmtp (the proxsmtp package creates it)"
		return 1
	fi
	dir=$(peer__proxsmtp_dir)
	if [ -f "$dir/proxsmtpd.pid" ]; then
		peer_log "peer_proxsmtp_start: already running (pidfile $dir/proxsmtpd.pid)"
		return 1
	fi
	# the daemon drops to _proxsmtp before it writes a message to disk
	mkdir -p "$dir/tmp" || { peer_log "peer_proxsmtp_start: cannot create $dir/tmp"; return 1; }
	chown _proxsmtp: "$dir/tmp" && chmod 700 "$dir/tmp"
	cat >"$dir/proxsmtpd.conf" <<EOF
# proxsmtpd config written by bench/peers.sh for lab ${LAB_PREFIX}
TransparentProxy: full
Listen: 0.0.0.0:$PEER_PROXSMTP_PORT
FilterCommand: cat
FilterType: pipe
MaxConnections: 256
TempDirectory: $dir/tmp
User: _proxsmtp
EOF
	if ! peer__tproxy_up "$PEER_PROXSMTP_PORT" track; then
		peer_log "peer_proxsmtp_start: cannot install the nft TPROXY table, fwmark rule or local route in $(lab_ns host)"
		peer_proxsmtp_stop
		return 1
	fi
	# -d 0: stays in the foreground, so $! is the daemon (nsenter execs it)
	nsenter --net="/run/netns/$(lab_ns host)" -- proxsmtpd -d 0 -f "$dir/proxsmtpd.conf" \
		>"$dir/proxsmtpd.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/proxsmtpd.pid"
	for _ in $(seq 1 $((PEER_READY_TIMEOUT * 10))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			peer_log "peer_proxsmtp_start: proxsmtpd exited with status $? before listening; its log ($dir/proxsmtpd.log):"
			tail -n 20 "$dir/proxsmtpd.log" | sed 's/^/    /' >&2
			peer_proxsmtp_stop
			return 1
		fi
		peer__listening 0.0.0.0 "$PEER_PROXSMTP_PORT" "$pid" && return 0
		sleep 0.1
	done
	peer_log "peer_proxsmtp_start: proxsmtpd not listening on :$PEER_PROXSMTP_PORT in $(lab_ns host) after ${PEER_READY_TIMEOUT} s; its log:"
	tail -n 20 "$dir/proxsmtpd.log" | sed 's/^/    /' >&2
	peer_proxsmtp_stop
	return 1
}

# peer__host_pids_named NAME: pids of processes called NAME in the lab's host
# namespace (so only ones this lab started).
peer__host_pids_named() {
	local pid
	for pid in $(ip netns pids "$(lab_ns host)" 2>/dev/null); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
	done
}

# peer_proxsmtp_stop: stops proxsmtpd (TERM, KILL after 5 s) and removes its
# nft table, fwmark rule, route table and temp files. Idempotent; returns 1
# only if something could not be removed.
peer_proxsmtp_stop() {
	local dir pid pids rc=0
	[ -n "${LAB_DIR:-}" ] || return 0
	dir=$(peer__proxsmtp_dir)
	if [ -f "$dir/proxsmtpd.pid" ]; then
		pid=$(cat "$dir/proxsmtpd.pid" 2>/dev/null)
		rm -f "$dir/proxsmtpd.pid"
		if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
			for _ in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				peer_log "peer_proxsmtp_stop: proxsmtpd (pid $pid) ignored SIGTERM for 5 s; killing it"
				kill -KILL "$pid" 2>/dev/null
			fi
			wait "$pid" 2>/dev/null
		fi
	fi
	# a daemon whose pidfile went missing, or filter children it left
	pids=$(peer__host_pids_named proxsmtpd)
	if [ -n "$pids" ]; then
		peer_log "peer_proxsmtp_stop: killing leftover proxsmtpd in $(lab_ns host): $pids"
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.2
	fi
	peer__tproxy_down peer_proxsmtp_stop || rc=1
	if [ -n "$(peer__host_pids_named proxsmtpd)" ]; then
		peer_log "peer_proxsmtp_stop: proxsmtpd still running in $(lab_ns host)"
		rc=1
	fi
	rm -rf "$dir/tmp"
	return $rc
}

# ---------------------------------------------------------------- bare relay

PEER_RELAY_PORT=10026

peer__relay_pidfile() { echo "$LAB_DIR/tcp_relay.pid"; }

# peer_relay_start BUILD: bench/tcp_relay (the cheapest transparent relay:
# copies bytes, reads no SMTP) behind the same nft TPROXY rules as ProxSMTP.
# Returns once it listens (0), or 1 with the reason on stderr after undoing
# what it did.
peer_relay_start() {
	local build=$1 pid
	peer__need_lab peer_relay_start || return 1
	if [ ! -x "$build/bench/tcp_relay" ]; then
		peer_log "peer_relay_start: $build/bench/tcp_relay is not built (make $build/bench/tcp_relay)"
		return 1
	fi
	if ! peer__tproxy_up "$PEER_RELAY_PORT"; then
		peer_log "peer_relay_start: cannot install the nft TPROXY table, fwmark rule or local route in $(lab_ns host)"
		peer_relay_stop
		return 1
	fi
	nsenter --net="/run/netns/$(lab_ns host)" -- "$build/bench/tcp_relay" "$PEER_RELAY_PORT" \
		>"$LAB_DIR/tcp_relay.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$(peer__relay_pidfile)"
	for _ in $(seq 1 $((PEER_READY_TIMEOUT * 10))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			peer_log "peer_relay_start: tcp_relay exited before listening: $(cat "$LAB_DIR/tcp_relay.log")"
			peer_relay_stop
			return 1
		fi
		peer__listening 0.0.0.0 "$PEER_RELAY_PORT" "$pid" && return 0
		sleep 0.1
	done
	peer_log "peer_relay_start: tcp_relay not listening on :$PEER_RELAY_PORT after ${PEER_READY_TIMEOUT} s"
	peer_relay_stop
	return 1
}

# peer_relay_stop: stops tcp_relay and removes the TPROXY rules. Idempotent.
peer_relay_stop() {
	local pid
	[ -n "${LAB_DIR:-}" ] || return 0
	if [ -f "$(peer__relay_pidfile)" ]; then
		pid=$(cat "$(peer__relay_pidfile)")
		rm -f "$(peer__relay_pidfile)"
		kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	fi
	peer__tproxy_down peer_relay_stop
}

# ---------------------------------------------------------------- smart host

peer__smarthost_dir() { echo "$LAB_DIR/postfix-smarthost"; }

# peer_smarthost_target: where a VM sends mail for the smart host (ADDR:PORT).
peer_smarthost_target() { echo "$LAB_GW4:25"; }

# peer_smarthost_start: a private Postfix instance in the host namespace on
# the host's VM-side address that relays mail from the VM network to
# [MX]:25; Postfix defaults otherwise (no TLS, no reverse lookups). Its
# directory is LAB_DIR/postfix-smarthost, which lab_down also stops.
# Returns once it listens (0), or 1 with the reason on stderr.
peer_smarthost_start() {
	local base master
	peer__need_lab peer_smarthost_start || return 1
	base=$(peer__smarthost_dir)
	master=$(cat "$base/queue/pid/master.pid" 2>/dev/null)
	master=${master//[!0-9]/}
	if [ -n "$master" ] && kill -0 "$master" 2>/dev/null; then
		peer_log "peer_smarthost_start: already running ($base, master pid $master)"
		return 1
	fi
	mkdir -p "$base/etc" "$base/queue" "$base/data" ||
		{ peer_log "peer_smarthost_start: cannot create $base"; return 1; }
	chown postfix:postfix "$base/data"
	chmod 755 "$base" "$base/etc" "$base/queue"
	# main.cf: only what makes it a smart host for the lab, plus private
	# paths and log; inet_interfaces being one address also makes it the
	# source address of the deliveries (the MX sees the host).
	cat >"$base/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $base/etc
queue_directory = $base/queue
data_directory = $base/data
syslog_name = postfix-${LAB_PREFIX}smarthost
maillog_file = $base/maillog
maillog_file_prefixes = $LAB_DIR
myhostname = smarthost.example.org
inet_interfaces = $LAB_GW4
inet_protocols = ipv4
mynetworks = $PEER_VM_NET
relayhost = [$LAB_MX4]:25
mydestination =
smtpd_peername_lookup = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
alias_maps =
alias_database =
biff = no
readme_directory = no
EOF
	# master.cf: Debian's default services, without chroot (the private
	# queue directory has no copies of /etc files to chroot into)
	cat >"$base/etc/master.cf" <<'EOF'
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	if ! lab_exec host timeout 30 postfix -c "$base/etc" start >"$base/start.log" 2>&1; then
		peer_log "peer_smarthost_start: Postfix did not start in $(lab_ns host):"
		sed 's/^/    /' "$base/start.log" >&2
		[ -f "$base/maillog" ] && tail -n 20 "$base/maillog" | sed 's/^/    /' >&2
		return 1
	fi
	master=$(cat "$base/queue/pid/master.pid" 2>/dev/null)
	master=${master//[!0-9]/}
	for _ in $(seq 1 $((PEER_READY_TIMEOUT * 10))); do
		peer__listening "$LAB_GW4" 25 "$master" && return 0
		sleep 0.1
	done
	peer_log "peer_smarthost_start: Postfix not listening on $LAB_GW4:25 after ${PEER_READY_TIMEOUT} s; its log:"
	tail -n 20 "$base/maillog" 2>/dev/null | sed 's/^/    /' >&2
	peer_smarthost_stop
	return 1
}

# peer_smarthost_queue_empty: true when the smart host holds no message
# (none incoming, active, deferred or waiting for pickup). Reads the queue
# directory, cheaper than postqueue in a polling loop. Not proof that all
# were delivered (a bounce leaves the queue too): prefer peer_sink_count.
peer_smarthost_queue_empty() {
	local q
	q=$(peer__smarthost_dir)/queue
	[ -d "$q/incoming" ] || return 0
	[ -z "$(find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" "$q/hold" \
		-type f -print -quit 2>/dev/null)" ]
}

# peer_smarthost_stop: stops the instance (postfix stop, then waits for its
# master) and deletes any message still queued. Idempotent.
peer_smarthost_stop() {
	local base master
	[ -n "${LAB_DIR:-}" ] || return 0
	base=$(peer__smarthost_dir)
	[ -f "$base/etc/main.cf" ] || return 0
	master=$(cat "$base/queue/pid/master.pid" 2>/dev/null)
	master=${master//[!0-9]/}
	if [ -n "$master" ] && kill -0 "$master" 2>/dev/null; then
		# inside the namespace: outside it, postfix finds none of
		# inet_interfaces' addresses local and exits 1 without a word
		if ! lab_exec host timeout 30 postfix -c "$base/etc" stop >"$base/stop.log" 2>&1; then
			peer_log "peer_smarthost_stop: postfix -c $base/etc stop failed in $(lab_ns host):"
			sed 's/^/    /' "$base/stop.log" >&2
			return 1
		fi
		# the master takes its children down with it
		for _ in $(seq 1 100); do
			kill -0 "$master" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$master" 2>/dev/null; then
			peer_log "peer_smarthost_stop: Postfix master (pid $master) still running 10 s after postfix stop"
			return 1
		fi
	fi
	# A next start must not deliver leftovers of this run. With Postfix
	# stopped, deleting the files is safe (postsuper would need its
	# postlogd to log). The queue tree stays for a faster restart.
	rm -rf "$base/queue/maildrop/"* "$base/queue/incoming/"* "$base/queue/active/"* \
		"$base/queue/deferred/"* "$base/queue/hold/"* "$base/queue/defer/"* \
		"$base/queue/bounce/"* "$base/queue/trace/"*
	if ! peer_smarthost_queue_empty; then
		peer_log "peer_smarthost_stop: cannot empty the queue $base/queue"
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------- MX sink

# peer__sink_file ADDR PORT: the file name stem (no suffix) lab_start_mx_sink uses.
peer__sink_file() {
	local tag
	tag=$(echo "$1" | tr -c 'a-zA-Z0-9\n' _)
	echo "$LAB_DIR/smtp-sink-$tag-$2"
}

# peer_start_mx_sink_dump PORT [ADDR]: lab_start_mx_sink that also appends
# every message to a dump file (peer_sink_client_addrs reads who sent
# them). Writing the dump slows the sink: use it to check, not to time.
peer_start_mx_sink_dump() {
	local port=$1 addr=${2:-$LAB_MX4} stem
	peer__need_lab peer_start_mx_sink_dump || return 1
	stem=$(peer__sink_file "$addr" "$port")
	# smtp-sink opens the dump after it became nobody
	mkdir -p "$stem.dump.d" && chown nobody: "$stem.dump.d"
	lab_exec mx smtp-sink -u nobody -c -D "$stem.dump.d/all" "$addr:$port" 1024 \
		>"$stem.log" 2>&1 &
	for _ in $(seq 1 50); do
		lab_exec mx ss -Hltn "( sport = :$port )" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	peer_log "peer_start_mx_sink_dump: smtp-sink on $addr:$port did not start; its output:"
	sed 's/^/    /' "$stem.log" >&2
	return 1
}

# peer_sink_count [PORT [ADDR]]: messages (DATA ends) the lab's smtp-sink on
# ADDR:PORT (default: the MX's IPv4 address, 25) has received since it
# started. smtp-sink -c writes "sess=N quit=N mesg=N" and a carriage return
# after each event, flushed; the last complete record has the total.
peer_sink_count() {
	local port=${1:-25} addr=${2:-$LAB_MX4} log tail_text last
	log=$(peer__sink_file "$addr" "$port").log
	if [ ! -f "$log" ]; then
		peer_log "peer_sink_count: no smtp-sink log $log (lab_start_mx_sink $port $addr first)"
		return 1
	fi
	tail_text=$(tail -c 256 "$log")
	case $tail_text in
	*$'\r'*) ;;
	*) echo 0; return 0 ;;	# nothing received yet
	esac
	# drop a record still being written, keep the last complete one
	tail_text=${tail_text%$'\r'*}
	last=${tail_text##*$'\r'}
	last=${last##*mesg=}
	case $last in
	'' | *[!0-9]*)
		peer_log "peer_sink_count: cannot read the counter in $log (last record '${tail_text##*$'\r'}')"
		return 1 ;;
	esac
	echo "$last"
}

# peer_sink_client_addrs [PORT [ADDR]]: "COUNT ADDRESS" for each client
# address the sink recorded (X-Client-Addr), for a sink started with
# peer_start_mx_sink_dump.
peer_sink_client_addrs() {
	local port=${1:-25} addr=${2:-$LAB_MX4} dump
	dump=$(peer__sink_file "$addr" "$port").dump.d/all
	if [ ! -f "$dump" ]; then
		peer_log "peer_sink_client_addrs: no dump $dump (peer_start_mx_sink_dump $port $addr)"
		return 1
	fi
	sed -n 's/^X-Client-Addr: //p' "$dump" | sort | uniq -c | awk '{print $1, $2}'
}
