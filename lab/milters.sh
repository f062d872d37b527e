# shellcheck shell=bash
# milters.sh - the real milters of the lab: rspamd (its proxy worker as a
# milter, scanning by itself) and clamav-milter in front of clamd, each in a
# lab namespace, with a config of its own under LAB_DIR and no network out
# of the lab. Sourced by lab.sh; defines functions and sets no options.
#
#   lab_start_rspamd mx [PORT]         # 127.0.0.1:PORT (11332) in mx's namespace
#   lab_start_clamav mx [PORT]         # clamd + clamav-milter on
#                                      #   unix:$(lab_clamav_milter_sock mx)
#                                      #   (and inet:127.0.0.1:PORT if given)
#   postconf -c "$LAB_DIR/postfix-mx/etc" -e \
#       "smtpd_milters = inet:127.0.0.1:11332 unix:$(lab_clamav_milter_sock mx)"
#   lab_stop_rspamd mx; lab_stop_clamav mx   # idempotent, also after a failed start
#
# rspamd reads a config written here, not /etc/rspamd's: no Lua rules, no
# plugins, no controller, no redis, no maps; its resolver points at the
# namespace's own loopback, so a lookup fails at once instead of waiting. Its
# core still knows the GTUBE patterns (reject; with enable_test_patterns the
# YJS/ZJS ones add a header and rewrite the subject), and nothing else
# scores: a clean message gets "no action" with no symbol at all (with the
# stock rules, a lab message would collect DNS-dependent symbols and wait on
# lookups that cannot leave the lab). clamd loads one signature,
# lab_clamav_signature: the EICAR test file by MD5 and size; ClamAV calls
# it NAME.UNOFFICIAL because the database is not signed.
#
# Each daemon runs in a session of its own (setsid), its pid, which is also
# its process group, in a pidfile beside its config; a stop signals that
# group, and only the members in the lab's namespace. lab_down's
# lab_kill_ns kills whatever is left in the namespaces anyway.

LAB_RSPAMD_PORT=11332
LAB_MILTER_TIMEOUT=${LAB_MILTER_TIMEOUT:-15}
LAB_EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
LAB_GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'

lab_rspamd_dir() { echo "$LAB_DIR/rspamd-$1"; }
lab_rspamd_log() { echo "$LAB_DIR/rspamd-$1/rspamd.log"; }
lab_clamav_dir() { echo "$LAB_DIR/clamav-$1"; }
lab_clamav_milter_sock() { echo "$LAB_DIR/clamav-$1/milter.sock"; }
lab_clamav_log() { echo "$LAB_DIR/clamav-$1/clamav-milter.log"; }
# The name clamd reports for the EICAR file (in clamav-milter's reply)
lab_clamav_signature() { echo "Smtpguard.Lab.EICAR.UNOFFICIAL"; }

# lab_milter_probe NODE SOCKET [TIMEOUT]: a milter's option negotiation from
# NODE's namespace (SOCKET inet:ADDR:PORT or unix:PATH); 0 when the milter
# answers it (a listening socket alone is not enough: rspamd's main process
# binds before its worker runs), then closes with SMFIC_QUIT.
lab_milter_probe() {
	local node=$1 sock=$2 t=${3:-2}
	lab_exec "$node" timeout "$((t + 1))" perl -MIO::Socket::INET -MIO::Socket::UNIX -e '
		my ($spec, $t) = @ARGV;
		my $s;
		if ($spec =~ /^unix:(.+)$/) {
			$s = IO::Socket::UNIX->new(Peer => $1, Timeout => $t);
		} elsif ($spec =~ /^inet:([^:]+):(\d+)$/) {
			$s = IO::Socket::INET->new(PeerAddr => $1, PeerPort => $2, Timeout => $t);
		}
		$s or exit 1;
		# SMFIC_OPTNEG: version 6, every action, every protocol step
		my $optneg = "O" . pack("NNN", 6, 0x1ff, 0x1fffff);
		syswrite($s, pack("N", length $optneg) . $optneg) or exit 1;
		local $SIG{ALRM} = sub { exit 2 };
		alarm $t;
		my $got = "";
		while (length $got < 5) {
			sysread($s, $got, 5 - length $got, length $got) or exit 3;
		}
		syswrite($s, pack("N", 1) . "Q");
		exit(substr($got, 4, 1) eq "O" ? 0 : 4);
	' "$sock" "$t" 2>/dev/null
}

# lab_clamd_ping NODE SOCKET: clamd on unix socket SOCKET answers PING.
lab_clamd_ping() {
	lab_exec "$1" timeout 3 perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 1;
		syswrite($s, "zPING\0") or exit 1;
		local $/ = "\0";
		my $r = <$s>;
		exit(defined $r && $r =~ /^PONG/ ? 0 : 1);
	' "$2" 2>/dev/null
}

# A daemon's files share a base name BASE (e.g. LAB_DIR/rspamd-mx/rspamd):
# BASE.pid its pid, BASE.out its stdout and stderr, BASE.log its log.

# lab__spawn NODE BASE CMD...: CMD in NODE's namespace, in the background,
# in a session of its own (so that its pid is also its process group); its
# pid in BASE.pid before it runs. An earlier BASE.log goes to BASE.log.old.
lab__spawn() {
	local node=$1 base=$2; shift 2
	rm -f "$base.pid"
	[ -f "$base.log" ] && cat "$base.log" >>"$base.log.old" && : >"$base.log"
	lab_exec "$node" setsid sh -c 'echo $$ >"$0"; exec "$@"' "$base.pid" "$@" \
		>"$base.out" 2>&1 </dev/null &
	for _ in $(seq 1 50); do
		[ -s "$base.pid" ] && return 0
		sleep 0.02
	done
	lab_log "$1 did not start in $node"
	return 1
}

# lab__group_pids NODE PGID: the live members of process group PGID whose
# network namespace is NODE's (none if the group is gone or not the lab's).
lab__group_pids() {
	local ns pid st ino
	ns="/run/netns/${LAB_PREFIX}$1"
	ino=$(stat -L -c %i "$ns" 2>/dev/null) || return 0
	for pid in $(pgrep -g "$2" 2>/dev/null); do
		[ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "net:[$ino]" ] || continue
		# a zombie is gone for our purpose (its parent reaps it)
		st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
		[ -n "$st" ] && [ "$st" != Z ] && echo "$pid"
	done
}

# lab__pids NODE BASE: the daemon's live processes (none once it is gone).
lab__pids() {
	local pgid
	pgid=$(cat "$2.pid" 2>/dev/null)
	[ -n "$pgid" ] || return 0
	lab__group_pids "$1" "$pgid"
}

# lab__owns_port NODE BASE PORT: the daemon listens on PORT (TCP) in NODE's
# namespace (someone else on that port does not make it ready).
lab__owns_port() {
	local out pid
	out=$(lab_exec "$1" ss -Hltnp "( sport = :$3 )" 2>/dev/null)
	for pid in $(lab__pids "$1" "$2"); do
		case $out in *"pid=$pid,"*) return 0 ;; esac
	done
	return 1
}

# lab__serves NODE BASE SOCKET: the daemon answers a milter on SOCKET
# (inet:ADDR:PORT, which it must hold itself, or unix:PATH).
lab__serves() {
	case $3 in
	inet:*) lab__owns_port "$1" "$2" "${3##*:}" || return 1 ;;
	esac
	lab_milter_probe "$1" "$3"
}

# lab__stop_group NODE BASE [POKE...]: SIGTERM to the daemon's processes,
# then POKE once if given (a command that wakes it up), waits (5 s), then
# SIGKILL to what is left; removes BASE.pid. 0 when none of it is left.
lab__stop_group() {
	local node=$1 base=$2 pids; shift 2
	pids=$(lab__pids "$node" "$base")
	if [ -z "$pids" ]; then
		rm -f "$base.pid"
		return 0
	fi
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	[ $# -gt 0 ] && "$@" >/dev/null 2>&1
	for _ in $(seq 1 50); do
		pids=$(lab__pids "$node" "$base")
		[ -n "$pids" ] || break
		sleep 0.1
	done
	if [ -n "$pids" ]; then
		lab_log "${base##*/} ($pids) in $node ignored SIGTERM for 5 s; killing it"
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		for _ in $(seq 1 30); do
			pids=$(lab__pids "$node" "$base")
			[ -n "$pids" ] || break
			sleep 0.1
		done
	fi
	if [ -n "$pids" ]; then
		lab_log "${base##*/} ($pids) in $node still there after SIGKILL"
		return 1
	fi
	rm -f "$base.pid"
}

# lab__wait_ready NODE BASE CMD...: polls CMD every 0.1 s for
# LAB_MILTER_TIMEOUT s while the daemon lives. On failure prints the tails
# of BASE.out and BASE.log, stops the daemon and returns 1.
lab__wait_ready() {
	local node=$1 base=$2 deadline f; shift 2
	deadline=$(($(date +%s%N) + LAB_MILTER_TIMEOUT * 1000000000))
	while :; do
		"$@" && return 0
		if [ -z "$(lab__pids "$node" "$base")" ]; then
			lab_log "${base##*/} in $node exited before it was ready"
			break
		fi
		if [ "$(date +%s%N)" -ge "$deadline" ]; then
			lab_log "${base##*/} in $node not ready after $LAB_MILTER_TIMEOUT s"
			break
		fi
		sleep 0.1
	done
	for f in "$base.out" "$base.log"; do
		[ -s "$f" ] || continue
		lab_log "$f:"
		tail -n 10 "$f" | sed 's/^/    /' >&2
	done
	lab__stop_group "$node" "$base"
	return 1
}

# ---------------------------------------------------------------- rspamd

# lab_start_rspamd NODE [PORT]: rspamd's proxy worker as a milter
# (self_scan: it scans by itself, no normal worker behind it) on
# 127.0.0.1:PORT (11332) in NODE's namespace; config, databases, run files
# and log in LAB_DIR/rspamd-NODE. Waits until it answers a milter's option
# negotiation. Runs as root with --insecure: the lab is root's, its folder
# too, and the workers then need no rights of their own to it.
lab_start_rspamd() {
	local node=${1:?lab_start_rspamd NODE [PORT]} port=${2:-$LAB_RSPAMD_PORT} dir
	dir=$(lab_rspamd_dir "$node")
	lab_stop_rspamd "$node"
	mkdir -p "$dir/db" "$dir/run" "$dir/tmp"
	# the public suffix list compiled at every start takes ~8 s (and its
	# hyperscan cache would go to /var/lib/rspamd): three suffixes will do
	printf 'com\nnet\norg\n' >"$dir/tld.dat"
	cat >"$dir/rspamd.conf" <<EOF
# rspamd config written by milters.sh for lab ${LAB_PREFIX} node $node
options {
	filters = "";			# no C modules (fuzzy_check, dkim... look things up)
	hs_cache_dir = "$dir/db";	# not /var/lib/rspamd
	tempdir = "$dir/tmp";
	url_tld = "$dir/tld.dat";
	enable_test_patterns = true;	# GTUBE YJS: add header, ZJS: rewrite subject (3.4's name
					# for what later versions call gtube_patterns = "all")
	dns {
		nameserver = ["127.0.0.1:53"];	# nothing there: refused at once
		timeout = 0.2s;
		retransmits = 1;
	}
}
logging {
	type = "file";
	filename = "$dir/rspamd.log";
	level = "info";
}
actions {
	reject = 15;
	add_header = 6;
	greylist = 4;
}
worker "rspamd_proxy" {
	bind_socket = "127.0.0.1:$port";
	milter = yes;
	timeout = 20s;
	count = 1;
	# in 3.4 self_scan belongs to an upstream, and the milter path needs a
	# default one (without it the worker aborts on the first message)
	upstream "local" {
		default = yes;
		self_scan = yes;
	}
}
EOF
	lab__spawn "$node" "$dir/rspamd" rspamd --no-fork --insecure -c "$dir/rspamd.conf" \
		--var DBDIR="$dir/db" --var RUNDIR="$dir/run" --var LOGDIR="$dir" || return 1
	lab__wait_ready "$node" "$dir/rspamd" lab__serves "$node" "$dir/rspamd" "inet:127.0.0.1:$port"
}

# lab_stop_rspamd NODE: stops rspamd and its workers (SIGKILL after 5 s).
lab_stop_rspamd() {
	local node=${1:?lab_stop_rspamd NODE}
	[ -n "$LAB_DIR" ] || return 0
	lab__stop_group "$node" "$(lab_rspamd_dir "$node")/rspamd"
}

# ---------------------------------------------------------------- ClamAV

# lab_start_clamav NODE [PORT]: clamd with a one-signature database on
# LAB_DIR/clamav-NODE/clamd.sock, and clamav-milter in front of it on
# unix:$(lab_clamav_milter_sock NODE) (mode 666: Postfix's smtpd connects as
# the postfix user), and a second one on inet:127.0.0.1:PORT if PORT is
# given (clamav-milter listens on one socket). OnInfected Reject, with a
# reply naming the signature. Both in NODE's namespace, as root (no User
# option: the folder stays root's). Waits for clamd's PONG, then for each
# milter's option negotiation.
lab_start_clamav() {
	local node=${1:?lab_start_clamav NODE [PORT]} port=${2:-} dir sock name
	dir=$(lab_clamav_dir "$node")
	lab_stop_clamav "$node"
	rm -f "$dir/clamav-milter-inet.conf"
	mkdir -p "$dir/db" "$dir/tmp"
	printf '%s' "$LAB_EICAR" >"$dir/eicar.com"
	name=$(lab_clamav_signature); name=${name%.UNOFFICIAL}
	# .hdb: MD5:size:name of a whole file (here, a decoded attachment)
	echo "$(md5sum <"$dir/eicar.com" | cut -d' ' -f1):$(stat -c %s "$dir/eicar.com"):$name" \
		>"$dir/db/smtpguard-lab.hdb"
	cat >"$dir/clamd.conf" <<EOF
# clamd config written by milters.sh for lab ${LAB_PREFIX} node $node
Foreground yes
LocalSocket $dir/clamd.sock
LocalSocketMode 600
FixStaleSocket yes
DatabaseDirectory $dir/db
TemporaryDirectory $dir/tmp
LogFile $dir/clamd.log
LogTime yes
LogVerbose no
SelfCheck 3600
MaxThreads 4
EOF
	for sock in "unix:$dir/milter.sock" ${port:+"inet:$port@127.0.0.1"}; do
		case $sock in
		unix:*) name=clamav-milter ;;
		*) name=clamav-milter-inet ;;
		esac
		cat >"$dir/$name.conf" <<EOF
# clamav-milter config written by milters.sh for lab ${LAB_PREFIX} node $node
Foreground yes
MilterSocket $sock
MilterSocketMode 666
FixStaleSocket yes
ClamdSocket unix:$dir/clamd.sock
TemporaryDirectory $dir/tmp
OnClean Accept
OnInfected Reject
OnFail Defer
RejectMsg "Rejected by clamav-milter: infected with %v"
AddHeader Replace
ReportHostname lab-$node
ReadTimeout 20
LogFile $dir/$name.log
LogTime yes
LogInfected Basic
LogClean Basic
EOF
	done
	{ lab__spawn "$node" "$dir/clamd" clamd -c "$dir/clamd.conf" &&
	  lab__wait_ready "$node" "$dir/clamd" lab_clamd_ping "$node" "$dir/clamd.sock" &&
	  lab__spawn "$node" "$dir/clamav-milter" clamav-milter -c "$dir/clamav-milter.conf" &&
	  lab__wait_ready "$node" "$dir/clamav-milter" \
		lab__serves "$node" "$dir/clamav-milter" "unix:$dir/milter.sock"; } ||
		{ lab_stop_clamav "$node"; return 1; }
	[ -n "$port" ] || return 0
	{ lab__spawn "$node" "$dir/clamav-milter-inet" clamav-milter -c "$dir/clamav-milter-inet.conf" &&
	  lab__wait_ready "$node" "$dir/clamav-milter-inet" \
		lab__serves "$node" "$dir/clamav-milter-inet" "inet:127.0.0.1:$port"; } ||
		{ lab_stop_clamav "$node"; return 1; }
}

# lab__clamav_inet_port NODE: the port of NODE's inet clamav-milter (none
# without one).
lab__clamav_inet_port() {
	sed -n 's/^MilterSocket inet:\([0-9]*\)@.*/\1/p' \
		"$(lab_clamav_dir "$1")/clamav-milter-inet.conf" 2>/dev/null
}

# lab_stop_clamav NODE: stops the clamav-milters, then clamd.
lab_stop_clamav() {
	local node=${1:?lab_stop_clamav NODE} dir rc=0
	[ -n "$LAB_DIR" ] || return 0
	dir=$(lab_clamav_dir "$node")
	# libmilter looks at its stop flag when its listener's select() returns:
	# every 5 s, or at once when a connection comes in
	lab__stop_group "$node" "$dir/clamav-milter" \
		lab_milter_probe "$node" "unix:$dir/milter.sock" 1 || rc=1
	lab__stop_group "$node" "$dir/clamav-milter-inet" \
		lab_milter_probe "$node" "inet:127.0.0.1:$(lab__clamav_inet_port "$node")" 1 || rc=1
	lab__stop_group "$node" "$dir/clamd" || rc=1
	return $rc
}
