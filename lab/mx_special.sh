# shellcheck shell=bash
# mx_special.sh - the lab's misbehaving MXes, each made of the lab's real
# Postfix MX (lab_start_mx_postfix: mail lands in lab_mx_maildir, its log is
# lab_mx_log) and one more real part in the MX's namespace:
#
#   lab_start_mx_greylist   Postfix with postgrey (Debian's) as its policy
#                           service: a (client /24, sender, recipient) seen
#                           for the first time gets postgrey's 450 at RCPT,
#                           a retry after LAB_MX_GREYLIST_DELAY_S (3) s
#                           passes. lab_mx_greylist_reset forgets them all.
#   lab_start_mx_slow       selftests/tools/mx_front.py on $LAB_MX4:25 and
#                           [$LAB_MX6]:25 in front of Postfix (port 2525):
#                           the greeting after LAB_MX_SLOW_GREET_S (20) s,
#                           each later reply LAB_MX_SLOW_REPLY_S (2) s after
#                           the one before; bytes passed unaltered.
#   lab_start_mx_dropper    the same front, cutting each message's first
#                           attempt (a reset both ways) after
#                           LAB_MX_DROP_AFTER (4096) bytes of its body, or
#                           before its end when it is shorter; later
#                           attempts of the message (its Message-ID) pass.
#                           Through smtpguard, a body shorter than that is
#                           cut as its dot comes, which smtpguard has sent
#                           (its message event: mx_reply "unknown"); a
#                           longer one before smtpguard has the dot.
#   lab_stop_mx_special     stops the front, postgrey and the Postfix MX
#                           (its mail stays); each start calls it first.
#
# The Postfix behind a front sees the front's address (198.51.100.25), not
# the VM's; port 587 is always Postfix's own. Logs: lab_mx_front_log,
# lab_mx_greylist_log. lab_down needs nothing more: the front and postgrey
# run in the MX's namespace, whose processes it kills; the Postfix MX is
# one of its postfix-*/etc instances; their files are under LAB_DIR.
#
#   source lab/lab.sh; source lab/mx_special.sh
#   lab_up sgt-x-; lab_start_mx_greylist; ...; lab_stop_mx_special

LAB_MX_BEHIND_PORT=${LAB_MX_BEHIND_PORT:-2525}
LAB_MX_POLICY_PORT=${LAB_MX_POLICY_PORT:-10023}

lab_mx_special_dir() { echo "$LAB_DIR/mx-special"; }
lab_mx_front_log() { echo "$LAB_DIR/mx-special/front.log"; }
lab_mx_greylist_log() { echo "$LAB_DIR/mx-special/postgrey.log"; }

# lab__mx_listening PORT ADDR: something listens on ADDR:PORT in the MX ns.
lab__mx_listening() {
	lab_exec mx ss -Hltn "( sport = :$1 )" 2>/dev/null | grep -qF "$2"
}

lab__mx_postfix_stop() {
	local etc="$LAB_DIR/postfix-mx/etc"
	[ -f "$etc/main.cf" ] || return 0
	lab_exec mx postfix -c "$etc" status >/dev/null 2>&1 || return 0
	lab_exec mx timeout 20 postfix -c "$etc" stop >/dev/null 2>&1
	for _ in $(seq 1 100); do
		lab_exec mx postfix -c "$etc" status >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	lab_log "the Postfix MX did not stop in 10 s"
	return 1
}

# lab__mx_spawn PIDFILE LOG CMD...: CMD in the MX's namespace, in the
# background; its own pid (nsenter execs it) in PIDFILE.
lab__mx_spawn() {
	local pf=$1 log=$2; shift 2
	nsenter --net="/run/netns/${LAB_PREFIX}mx" -- "$@" >>"$log" 2>&1 </dev/null &
	echo $! >"$pf"
}

lab_stop_mx_special() {
	local d
	[ -n "$LAB_DIR" ] || return 0
	d=$(lab_mx_special_dir)
	lab__stop_pidfile "$d/front.pid"
	lab__stop_pidfile "$d/postgrey.pid"
	lab__mx_postfix_stop
}

# lab__mx_wait_up PIDFILE LOG WHAT CHECK...: waits up to 10 s for CHECK to
# succeed while the process in PIDFILE lives; else logs WHAT and LOG's tail.
lab__mx_wait_up() {
	local pidfile=$1 log=$2 what=$3 pid; shift 3
	pid=$(cat "$pidfile")
	for _ in $(seq 1 100); do
		"$@" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	lab_log "$what did not start on the MX:"
	tail -n 5 "$log" | sed 's/^/    /' >&2
	return 1
}

# lab__mx_start_postgrey: postgrey on 127.0.0.1:LAB_MX_POLICY_PORT in the
# MX's namespace, its database in LAB_DIR, run as the postgrey user.
lab__mx_start_postgrey() {
	local d
	d=$(lab_mx_special_dir)
	mkdir -p "$d/postgrey-db"
	chown postgrey:postgrey "$d/postgrey-db" || return 1
	lab__mx_spawn "$d/postgrey.pid" "$(lab_mx_greylist_log)" postgrey \
		--inet="127.0.0.1:$LAB_MX_POLICY_PORT" --dbdir="$d/postgrey-db" \
		--delay="${LAB_MX_GREYLIST_DELAY_S:-3}" --auto-whitelist-clients=0 \
		--hostname="mx.$LAB_MAIL_DOMAIN"
	lab__mx_wait_up "$d/postgrey.pid" "$(lab_mx_greylist_log)" "postgrey" \
		lab__mx_listening "$LAB_MX_POLICY_PORT" 127.0.0.1
}

lab_start_mx_greylist() {
	[ -x /usr/sbin/postgrey ] || { lab_log "postgrey is not installed (make deps)"; return 1; }
	lab_stop_mx_special
	mkdir -p "$(lab_mx_special_dir)"
	lab__mx_start_postgrey || return 1
	LAB_MX_MAIN_CF_EXTRA="smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:$LAB_MX_POLICY_PORT
smtpd_policy_service_timeout = 10s" lab_start_mx_postfix
}

# lab_mx_greylist_reset: postgrey forgets every triplet (greylists anew).
lab_mx_greylist_reset() {
	local d
	d=$(lab_mx_special_dir)
	lab__stop_pidfile "$d/postgrey.pid"
	rm -rf "$d/postgrey-db"
	lab__mx_start_postgrey
}

# lab__mx_start_front ARGS...: Postfix on LAB_MX_BEHIND_PORT, mx_front.py
# with ARGS on port 25 of both MX addresses.
lab__mx_start_front() {
	local d
	lab_stop_mx_special
	d=$(lab_mx_special_dir)
	mkdir -p "$d"
	LAB_MX_SMTPD_PORT=$LAB_MX_BEHIND_PORT lab_start_mx_postfix || return 1
	lab__mx_spawn "$d/front.pid" "$d/front.out" python3 \
		"$(dirname "${BASH_SOURCE[0]}")/../selftests/tools/mx_front.py" \
		--listen "$LAB_MX4" --listen "$LAB_MX6" --port 25 \
		--upstream-port "$LAB_MX_BEHIND_PORT" --log "$(lab_mx_front_log)" "$@"
	lab__mx_wait_up "$d/front.pid" "$d/front.out" "the MX's front (mx_front.py $*)" \
		lab__mx_listening_both 25
}
lab__mx_listening_both() { lab__mx_listening "$1" "$LAB_MX4" && lab__mx_listening "$1" "$LAB_MX6"; }

lab_start_mx_slow() {
	lab__mx_start_front --greet-delay "${LAB_MX_SLOW_GREET_S:-20}" \
		--reply-delay "${LAB_MX_SLOW_REPLY_S:-2}"
}

lab_start_mx_dropper() {
	lab__mx_start_front --drop-first-data "${LAB_MX_DROP_AFTER:-4096}"
}
