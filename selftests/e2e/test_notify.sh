#!/usr/bin/env bash
# test_notify.sh - what smtpguardd tells systemd (daemon/notify.c), with a
# socket of our own as NOTIFY_SOCKET (selftests/tools/notify_socket.py) and
# the daemon run as smtpguard.service runs it: the unit's capability
# bounding set (read from dist/smtpguard.service.in) and no new privileges
# (setpriv). READY=1 comes once it is up, with a STATUS=; WATCHDOG=1 every
# half WATCHDOG_USEC; a mail goes through the proxy with only those
# capabilities; SIGHUP gives RELOADING=1 with MONOTONIC_USEC= (now, on
# CLOCK_MONOTONIC), then READY=1 (also when the file is broken, with a
# status that says so); SIGTERM gives STOPPING=1 with EXTEND_TIMEOUT_USEC=
# shutdown_timeout + 30 s; every message comes from the main process.
# test_deb.sh shows the same with systemd itself, in a container.
#   bash selftests/e2e/test_notify.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin notify "${1:-}" 180

MX4=$LAB_MX4
unit=$E2E_REPO/dist/smtpguard.service.in

# the unit's CapabilityBoundingSet as setpriv's --bounding-set
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
check_match "$caps" '^\+[a-z_]+(,\+[a-z_]+)+$' "unit-bounding-set-read"

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
sock=$LAB_DIR/notify.sock
log=$LAB_DIR/notify.log
python3 "$E2E_REPO/selftests/tools/notify_socket.py" "$sock" "$log" &
listener=$!
trap 'rc=$?; kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; (exit $rc); e2e_cleanup' EXIT
wait_for 5 test -S "$sock" || e2e_abort "the notify socket $sock did not appear"

# lab_start_smtpguardd runs SG_DAEMON: this wrapper, which execs the daemon
# (its pid stays the one lab.sh records)
wrapper=$LAB_DIR/sgd-notify-wrapper.sh
cat >"$wrapper" <<EOF
#!/bin/sh
exec env NOTIFY_SOCKET=$sock WATCHDOG_USEC=1000000 setpriv --bounding-set=-all,$caps \\
	--no-new-privs -- ${SG_DAEMON:-$LAB_BUILD/smtpguardd} "\$@"
EOF
chmod +x "$wrapper"
SG_DAEMON=$wrapper lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 \
	uplink=uplink0 fail_mode=open shutdown_timeout=5s || e2e_abort "smtpguardd did not start"
pid=$(lab_sgd_pid main)

# --- ready
wait_for 5 grep -q 'READY=1' "$log"
first=$(head -n 1 "$log")
check_match "$first" "^pid=$pid READY=1\|STATUS=running: [0-9]+ interface\(s\) attached at tc, proxy up$" \
	"first-message-is-READY-with-status"
decode_caps() { capsh --decode="$(awk '/^CapBnd:/ {print $2}' "$1")" | sed 's/.*=//' | tr ',' '\n' | sort; }
# (what this test's own bounding set lacks, no child of it can have: a
# container, say, without CAP_SYS_RESOURCE)
want=$(comm -12 <(tr ',' '\n' <<<"$caps" | sed 's/^+/cap_/' | sort) <(decode_caps /proc/self/status) | xargs)
check_eq "$(decode_caps "/proc/$pid/status" | xargs)" "$want" "daemon-runs-with-the-unit-bounding-set"
check_eq "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status")" 1 "daemon-runs-with-no-new-privs"

# --- the watchdog: every 0.5 s
sleep 2
pings=$(grep -c "^pid=$pid WATCHDOG=1$" "$log")
check_range "$pings" 3 8 "watchdog-pings-every-half-interval"

# --- the proxy works with these capabilities only
check_delivered "mail-through-proxy-with-the-unit-capabilities" vm1 "$MX4"

# --- reload
n0=$(wc -l <"$log")
read -r up _ </proc/uptime
now_us=$(( ${up%.*} * 1000000 + 10#${up#*.} * 10000 ))
kill -HUP "$pid"
wait_for 10 bash -c "tail -n +$((n0 + 1)) '$log' | grep -q 'READY=1'"
after=$(tail -n +$((n0 + 1)) "$log" | grep -v 'WATCHDOG=1$')
check_match "$(sed -n 1p <<<"$after")" "^pid=$pid RELOADING=1\|MONOTONIC_USEC=[0-9]+\|STATUS=reloading" \
	"sighup-sends-RELOADING-with-MONOTONIC_USEC"
mono=$(sed -n 1p <<<"$after" | sed -n 's/.*MONOTONIC_USEC=\([0-9]*\).*/\1/p')
# CLOCK_MONOTONIC and /proc/uptime (boot time) part only across a suspend
if e2e_is_int "$mono" && [ $((mono - now_us)) -gt -10000000 ] && [ $((mono - now_us)) -lt 10000000 ]; then
	pass "MONOTONIC_USEC-is-now"
else
	fail "MONOTONIC_USEC-is-now" "MONOTONIC_USEC=$mono, uptime ${now_us} us"
fi
check_match "$(sed -n 2p <<<"$after")" "^pid=$pid READY=1\|STATUS=running; reloaded$" "reload-ends-with-READY"

# a broken file: still READY after RELOADING, the status says so
cp "$(lab_sgd_conf main)" "$LAB_DIR/conf.good"
echo "no_such_key = 1" >>"$(lab_sgd_conf main)"
n0=$(wc -l <"$log")
kill -HUP "$pid"
wait_for 10 bash -c "tail -n +$((n0 + 1)) '$log' | grep -q 'READY=1'"
after=$(tail -n +$((n0 + 1)) "$log" | grep -v 'WATCHDOG=1$')
check_match "$(sed -n 1p <<<"$after")" "^pid=$pid RELOADING=1" "broken-reload-sends-RELOADING"
check_match "$(sed -n 2p <<<"$after")" "^pid=$pid READY=1\|STATUS=running; the last reload failed" \
	"broken-reload-ends-with-READY-and-says-so"
cp "$LAB_DIR/conf.good" "$(lab_sgd_conf main)"

# --- stop
n0=$(wc -l <"$log")
lab_stop_smtpguardd main || fail "stops-on-SIGTERM" "needed SIGKILL"
check_eq "$LAB_SGD_STATUS" 0 "exit-status-0"
after=$(tail -n +$((n0 + 1)) "$log" | grep -v 'WATCHDOG=1$')
check_eq "$after" "pid=$pid STOPPING=1|EXTEND_TIMEOUT_USEC=35000000|STATUS=stopping" \
	"sigterm-sends-STOPPING-extending-by-shutdown_timeout"
check_eq "$(grep -vc "^pid=$pid " "$log")" 0 "every-message-from-the-main-process"
check_eq "$(grep -c 'telling the service manager' "$(lab_sgd_log main)")" 0 "no-notify-errors-logged"

# --- without NOTIFY_SOCKET: nothing is sent (the other tests' daemons)
n0=$(wc -l <"$log")
lab_start_smtpguardd main || e2e_abort "smtpguardd did not start again"
lab_stop_smtpguardd main
check_eq "$(wc -l <"$log")" "$n0" "no-NOTIFY_SOCKET-no-message"

e2e_finish
