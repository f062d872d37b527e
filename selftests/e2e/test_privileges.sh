#!/usr/bin/env bash
# test_privileges.sh - the proxy, which reads what tenants send, runs in a
# process of its own as proxy_user with no capability beyond what
# IP_TRANSPARENT needs (read from /proc, every thread); the daemon that
# loads and attaches parses no SMTP; the pins and the events file belong to
# root and the proxy user's group, whose members read them with
# smtpguardctl and cannot write them; a killed proxy comes back; a reload
# reaches it (a rotated events file is reopened); a missing or root
# proxy_user is refused with the fix.
#   bash selftests/e2e/test_privileges.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin privileges "${1:-}" 300

MX4=$LAB_MX4
VM1=$(lab_vm_ip4 vm1)
# CAP_NET_ADMIN (12) and CAP_NET_RAW (13), as /proc prints a capability set
WANT_CAPS=0000000000003000
NOBODY_UID=$(id -u nobody)
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
EVENTS=$LAB_DIR/events.json
SGD_ARGS=(default_action=scan proxy=yes proxy_workers=2 uplink=uplink0
	events_file="$EVENTS")
lab_start_smtpguardd main "${SGD_ARGS[@]}" || e2e_abort "smtpguardd did not start"
ROOT=$(lab_sgd_root main)
DAEMON=$(lab_sgd_pid main)
PROXY=$(lab_sgd_proxy_pid main)
check_match "${PROXY:-none}" '^[0-9]+$' "proxy-process-exists"

# status_field PID TID FIELD: a field of /proc/PID/task/TID/status
status_field() { awk -v f="$3:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/task/$2/status"; }

# --- every thread of the proxy: the user, the group, the capabilities
threads=0; bad=""
for task in /proc/"$PROXY"/task/*; do
	tid=${task##*/}
	threads=$((threads + 1))
	uids=$(status_field "$PROXY" "$tid" Uid | tr -s '\t ' ' ')
	gids=$(status_field "$PROXY" "$tid" Gid | tr -s '\t ' ' ')
	groups=$(status_field "$PROXY" "$tid" Groups | tr -s '\t ' ' ' | sed 's/ *$//')
	for f in CapEff CapPrm CapBnd; do
		v=$(status_field "$PROXY" "$tid" $f)
		[ "$v" = "$WANT_CAPS" ] || bad+=" $tid:$f=$v"
	done
	for f in CapInh CapAmb; do
		v=$(status_field "$PROXY" "$tid" $f)
		[ "$v" = 0000000000000000 ] || bad+=" $tid:$f=$v"
	done
	[ "$uids" = "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ] || bad+=" $tid:Uid=$uids"
	[ "$gids" = "$NOGROUP_GID $NOGROUP_GID $NOGROUP_GID $NOGROUP_GID" ] || bad+=" $tid:Gid=$gids"
	[ "$groups" = "$NOGROUP_GID" ] || bad+=" $tid:Groups=$groups"
	[ "$(status_field "$PROXY" "$tid" NoNewPrivs)" = 1 ] || bad+=" $tid:NoNewPrivs"
done
check_ge "$threads" 3 "proxy-threads-seen"	# main, 2 workers
# the maps it holds: the LPM tries (BPF_MAP_TYPE_LPM_TRIE, 11) read-only:
# policy_v4, policy_v6, and src_bound (a session's interface, for its tenant)
ro=0 rw=0
for f in /proc/"$PROXY"/fdinfo/*; do
	grep -qE '^map_type:[[:space:]]+11$' "$f" 2>/dev/null || continue
	fl=$(awk '/^flags:/ { print $2 }' "$f")
	if [ $((8#$fl & 3)) = 0 ]; then ro=$((ro + 1)); else rw=$((rw + 1)); fi
done
check_eq "$ro read-only, $rw writable" "3 read-only, 0 writable" "proxy-holds-policy-and-bindings-read-only"
check_eq "${bad:-none}" none "proxy-threads-only-net-admin-net-raw-as-nobody"
# the daemon keeps what loading and attaching take, and runs no worker
check_ne "$(status_field "$DAEMON" "$DAEMON" CapEff)" "$WANT_CAPS" "daemon-keeps-its-capabilities"
# ... and no more than those: BPF, PERFMON, SYS_ADMIN, NET_ADMIN, NET_RAW,
# SYS_RESOURCE, SETUID, SETGID, SETPCAP, CHOWN, KILL
# (of those its starter had: a container's root may lack some)
own=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)
check_eq "$(status_field "$DAEMON" "$DAEMON" CapBnd)" "$(printf '%016x' $((0x$own & 0xc0012031e1)))" \
	"daemon-bounding-set-limited"
check_eq "$(ls /proc/"$DAEMON"/task | wc -l)" 1 "daemon-has-no-worker-threads"
check_contains "$(cat "$(lab_sgd_log main)")" "proxy process $PROXY runs as nobody" "proxy-start-logged"

# --- it still does its job as nobody: steered, scanned, delivered
st0=$(stat_get main steered)
check_delivered "delivered-through-unprivileged-proxy" vm1 "$MX4"
check_gt "$(stat_get main steered)" "${st0:-0}" "unprivileged-proxy-steered"
wait_for 5 grep -q '"verdict"' "$EVENTS" || true
check_contains "$(cat "$EVENTS" 2>/dev/null)" '"verdict"' "events-written-by-proxy"
check_eq "$(stat -c '%U:%G %a' "$EVENTS")" "root:nogroup 640" "events-file-root-group-0640"

# --- the pins: root's, readable by the group, not writable by it
check_eq "$(stat -c '%U:%G %a' "$ROOT")" "root:nogroup 750" "pin-dir-root-group-0750"
modes=$(stat -c '%U:%G %a' "$ROOT"/* | sort -u | tr '\n' ' ')
check_eq "$modes" "root:nogroup 640 " "pins-root-group-0640"
CTL=${SG_CTL:-$LAB_BUILD/smtpguardctl}
as_group() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
out=$(as_group "$CTL" --root "$ROOT" --json stats 2>&1)
check_match "$out" '"steered": *[1-9]' "group-member-reads-stats"
out=$(as_group "$CTL" --root "$ROOT" show "$VM1" 2>&1)
check_contains "$out" "$VM1" "group-member-reads-show"
rc=0; out=$(as_group "$CTL" --root "$ROOT" policy add 10.99.0.0/16 block 2>&1) || rc=$?
check_ne "$rc" 0 "group-member-cannot-write-policy"
check_eq "$(lab_ctl main policy list | grep -c 10.99.0.0)" 0 "group-member-policy-not-written"
rc=0; out=$(setpriv --reuid=65533 --regid=65533 --clear-groups "$CTL" --root "$ROOT" stats 2>&1) ||
	rc=$?
check_ne "$rc" 0 "others-cannot-read-pins"

# --- a reload reaches the proxy: a rotated events file is reopened
mv "$EVENTS" "$EVENTS.1"
kill -HUP "$DAEMON"
wait_for_log "$(lab_sgd_log main)" "reloaded the settings" 20 || fail reload-done "no 'reloaded the settings'"
check_eq "$(stat -c '%U:%G %a' "$EVENTS" 2>&1)" "root:nogroup 640" "reopened-events-file-root-group"
check_delivered "delivered-after-reload" vm1 "$MX4"
wait_for 5 grep -q '"verdict"' "$EVENTS" || true
check_contains "$(cat "$EVENTS" 2>/dev/null)" '"verdict"' "events-go-to-reopened-file"
check_eq "$(lab_sgd_proxy_pid main)" "$PROXY" "reload-keeps-the-proxy-process"

# --- the proxy killed: the daemon says so and starts another
kill -9 "$PROXY"
wait_for_log "$(lab_sgd_log main)" "proxy process $PROXY was killed by signal 9" 10 ||
	fail proxy-death-logged "not in the log"
respawned() { p=$(lab_sgd_proxy_pid main); [ -n "$p" ] && [ "$p" != "$PROXY" ] &&
	grep -q "proxy process $p runs as nobody" "$(lab_sgd_log main)"; }
if wait_for 10 respawned; then pass proxy-restarted; else fail proxy-restarted "no new proxy process"; fi
check_delivered "delivered-after-proxy-restart" vm1 "$MX4"
NEW=$(lab_sgd_proxy_pid main)
check_eq "$(status_field "$NEW" "$NEW" CapEff)" "$WANT_CAPS" "restarted-proxy-unprivileged"

# --- a stop: the proxy goes with the daemon
lab_stop_smtpguardd main || fail stop "smtpguardd did not stop on SIGTERM"
check_fails "proxy-gone-after-stop" kill -0 "$NEW"

# --- the daemon killed outright takes its proxy along (a change of user
# clears the parent-death signal: the proxy sets it again)
lab_start_smtpguardd main "${SGD_ARGS[@]}" || e2e_abort "smtpguardd did not restart"
DAEMON=$(lab_sgd_pid main)
PROXY=$(lab_sgd_proxy_pid main)
kill -9 "$DAEMON"
if wait_for_exit "$PROXY" 5; then pass proxy-dies-with-daemon
else fail proxy-dies-with-daemon "proxy $PROXY still runs"; kill -9 "$PROXY" 2>/dev/null; fi
rm -f "$(lab_sgd_pidfile main)"

# --- proxy_user that cannot be: named, with the fix
check_start_refused() {	# NAME WANT KEY=VALUE
	local name=$1 want=$2 rc=0 out
	lab_write_sgd_conf main "${SGD_ARGS[@]}" "$3"
	out=$(lab_exec host timeout 20 "${SG_DAEMON:-$LAB_BUILD/smtpguardd}" -c "$(lab_sgd_conf main)" \
		2>&1 </dev/null) || rc=$?
	check_ne "$rc" 0 "$name-exit"
	check_contains "$out" "$want" "$name-says-why"
}
check_start_refused proxy-user-missing "proxy_user sgt-no-such-user: no such user; create it" \
	proxy_user=sgt-no-such-user
check_start_refused proxy-user-root "proxy_user root: its uid is 0" proxy_user=root
rc=0; out=$(lab_exec host "${SG_DAEMON:-$LAB_BUILD/smtpguardd}" -c /dev/null --set 'proxy_user=a b' \
	--check-config 2>&1) || rc=$?
check_ne "$rc" 0 "proxy-user-bad-name-exit"
check_contains "$out" "'a b' is not a user name" "proxy-user-bad-name-says-why"

e2e_finish
