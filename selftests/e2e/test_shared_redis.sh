#!/usr/bin/env bash
# test_shared_redis.sh - three hypervisor hosts, each its own lab (host, MX,
# VMs, smtpguardd with its own bpffs root and proxy), sharing one real
# redis-server (with a password) in a namespace of its own, 203.0.113.0/24:
#
#   host a --rds0 203.0.113.11--+
#   host b --rds0 203.0.113.12--+-- br0 203.0.113.1:6379 (redis)
#   host c --rds0 203.0.113.13--+
#
# 1. a spammer with one VM on each host (192.0.2.11 on a, .12 on b, .13 on
#    c: one customer's /28, shared_prefix_v4 = 28) sends 35 messages from
#    each, 105 in all; each host alone lets 35 through (its own rate is
#    600/min, burst 100), the shared limit is 60/min: every VM is refused
#    within 10 s of the group's 61st connection, by the shared penalty;
# 1b. a tenant (acme: 192.0.2.27 on a, .39 on b, .55 on c, three /28s) is
#    one group, tenant:acme: stopped by the shared limit as one customer;
# 1c. bulk bodies: one VM on each host (192.0.2.81 on a, .82 on b, .83 on
#    c) spreads the same spam body to 24 domains: a's alone (the others not
#    yet sending) is no outbreak (1 spreading sender, the limit is more
#    than 2); once b's and c's are counted in Redis (sg:bulk:DIGEST, a field
#    a host), each host's next messages are judged an outbreak of 3 senders
#    (1 here, 2 on other hosts), in its ladder events;
# 2. a VM (192.0.2.16) refused by host a's response ladder moves to host b
#    (its tap deleted on a, made on b): b holds its penalty and step before
#    its first SYN there (how long after a set it, measured), and refuses
#    that SYN; released there by the operator, every host lets it go; blocked
#    there, every host holds the block;
# 3. Redis is killed for REDIS_OUTAGE_S (60) seconds and started again,
#    empty, while a VM on each host sends a message a second: every message
#    gets 250 and reaches its MX, no session takes longer than 3 s; the
#    penalties are enforced meanwhile (and a block made during the outage),
#    each host logs the outage once and counts it (redis_outages,
#    redis_errors, smtpguard_redis_state), then puts its state back into
#    the empty Redis and sends the counts it kept;
# 4. the script flushed (NOSCRIPT: loaded again, no outage), and Redis
#    stopped (SIGSTOP) for a while: a hung Redis is an outage after
#    redis_timeout, no session waits on it, and it is back after SIGCONT.
#   bash selftests/e2e/test_shared_redis.sh build
source "$(dirname "$0")/lib.sh"
OUTAGE=${REDIS_OUTAGE_S:-60}
e2e_begin shared_redis "${1:-}" $((360 + OUTAGE))

command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
	e2e_abort "redis-server and redis-cli are needed (make deps)"

HOSTS=(a b c)
declare -A LDIR
RNS="${E2E_PREFIX}redis"
RADDR=203.0.113.1
RDIR=$(mktemp -d /tmp/sgt-shared-redis-XXXXXX) && chmod 755 "$RDIR"
PASSWORD="sgt-$RANDOM-$RANDOM-$RANDOM"
REDIS_PID=

# use HOST: the lab functions act on that host's lab
use() { LAB_PREFIX="${E2E_PREFIX}$1-"; LAB_DIR=${LDIR[$1]}; }

shr_down() {
	local h
	if [ -n "$REDIS_PID" ]; then
		kill -KILL "$REDIS_PID" 2>/dev/null
		wait "$REDIS_PID" 2>/dev/null
	fi
	for h in "${HOSTS[@]}"; do
		[ -n "${LDIR[$h]:-}" ] || continue
		use "$h"
		lab_down "$LAB_PREFIX"
	done
	lab_kill_ns "$RNS"
	ip netns del "$RNS" 2>/dev/null
	rm -rf "$RDIR"
}
trap 'rc=$?; [ "${E2E_KEEP:-0}" = 1 ] || shr_down; (exit $rc); e2e_cleanup' EXIT

rcli() { nsenter --net="/run/netns/$RNS" -- redis-cli -h "$RADDR" -a "$PASSWORD" --no-auth-warning "$@"; }
redis_start() {
	nsenter --net="/run/netns/$RNS" -- redis-server --bind "$RADDR" --port 6379 \
		--requirepass "$PASSWORD" --save "" --appendonly no --dir "$RDIR" \
		--logfile "$RDIR/redis.log" --daemonize no &
	REDIS_PID=$!
	wait_for 10 rcli ping
}

# ------------------------------------------------------------- setup
ip netns add "$RNS" || e2e_abort "cannot create $RNS"
ip -n "$RNS" link set lo up
ip -n "$RNS" link add br0 type bridge && ip -n "$RNS" link set br0 up &&
	ip -n "$RNS" addr add "$RADDR/24" dev br0 || e2e_abort "cannot make the redis bridge"
i=0
for h in "${HOSTS[@]}"; do
	i=$((i + 1))
	lab_up "${E2E_PREFIX}$h-" || e2e_abort "lab_up $h failed"
	LDIR[$h]=$LAB_DIR
	ip link add rds0 netns "$(lab_ns host)" type veth peer name "rds-$h" netns "$RNS" &&
		ip -n "$RNS" link set "rds-$h" master br0 up &&
		ip -n "$(lab_ns host)" link set rds0 up &&
		ip -n "$(lab_ns host)" addr add "203.0.113.1$i/24" dev rds0 ||
		e2e_abort "cannot link host $h to the redis namespace"
	lab_start_mx_postfix || e2e_abort "Postfix did not start on $h's MX"
	# the bulk scenario's 24 recipient domains are delivered too
	postconf -c "$LAB_DIR/postfix-mx/etc" -e "virtual_mailbox_domains = $LAB_MAIL_DOMAIN \
$(printf 'd%03d.example ' $(seq 0 23))" &&
		lab_exec mx timeout 30 postfix -c "$LAB_DIR/postfix-mx/etc" reload >/dev/null 2>&1 ||
		e2e_abort "Postfix on $h's MX did not take the bulk domains"
done
redis_start || e2e_abort "redis-server did not start: $(tail -n 3 "$RDIR/redis.log")"
echo "$PASSWORD" >"$RDIR/password"
chmod 600 "$RDIR/password"

# a VM's number from its address: 192.0.2.(10+N)
use a; lab_add_vm vm6 && lab_wait_reachable vm6 || e2e_abort "vm6 on a"
use b; lab_add_vm vm22 && lab_wait_reachable vm22 || e2e_abort "vm22 on b"
use c; lab_add_vm vm3 && lab_add_vm vm38 && lab_wait_reachable vm3 &&
	lab_wait_reachable vm38 || e2e_abort "vm3, vm38 on c"
use a; lab_add_vm vm54 && lab_wait_reachable vm54 || e2e_abort "vm54 on a"
# tenant acme: one VM a host, each in a /28 of its own
use a; lab_add_vm vm17 && lab_wait_reachable vm17 || e2e_abort "vm17 on a"
use b; lab_add_vm vm29 && lab_wait_reachable vm29 || e2e_abort "vm29 on b"
use c; lab_add_vm vm45 && lab_wait_reachable vm45 || e2e_abort "vm45 on c"
# bulk bodies: one VM a host, in a /28 no other scenario uses
use a; lab_add_vm vm71 && lab_wait_reachable vm71 || e2e_abort "vm71 on a"
use b; lab_add_vm vm72 && lab_wait_reachable vm72 || e2e_abort "vm72 on b"
use c; lab_add_vm vm73 && lab_wait_reachable vm73 || e2e_abort "vm73 on c"
printf 'prefix 192.0.2.27/32 acme\nprefix 192.0.2.39/32 acme\nprefix 192.0.2.55/32 acme\n' \
	>"$RDIR/tenants"
chmod 644 "$RDIR/tenants"

RULES=$RDIR/content.rules
echo "FORBIDDEN body /forbidden-offer-[0-9]+/" >"$RULES"
chmod 644 "$RULES"
for h in "${HOSTS[@]}"; do
	use "$h"
	lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
		refuse=rst default_conn_rate=600/min default_conn_burst=100 \
		content_rules="$RULES" escalation_rejects=2 escalation_window=1m \
		ladder_penalties="10m" ladder_dwell=1s \
		redis="tcp:$RADDR:6379" redis_password_file="$RDIR/password" \
		redis_sync_interval=1s redis_timeout=2s \
		shared_conn_rate=60/min shared_penalty=10m shared_prefix_v4=28 \
		tenants="$RDIR/tenants" events_file="${LDIR[$h]}/events.json" \
		behaviour_messages=100000 behaviour_rcpts=100000 behaviour_rcpt_domains=100000 \
		behaviour_burst=100000 ||
		e2e_abort "smtpguardd did not start on $h"
	wait_for 10 grep -q "redis tcp:$RADDR:6379: connected" "$(lab_sgd_log)" ||
		e2e_abort "host $h did not connect to redis: $(grep redis "$(lab_sgd_log)" | tail -n 2)"
done
pass hosts-connected-to-redis

MX=$LAB_MX4
# one message with swaks from HOST's VM; "START_MS VM ok|fail DURATION_MS"
send_one() {
	local h=$1 vm=$2 tag=$3 t0 r
	use "$h"
	t0=$(ms_now)
	if lab_exec "$vm" timeout 10 swaks --server "$MX" --timeout 5 --helo "$vm.example.org" \
		--from "$vm@example.org" --to "u@$LAB_MAIL_DOMAIN" \
		--header "Subject: $tag" --body "token $tag" >/dev/null 2>&1; then r=ok; else r=fail; fi
	echo "$t0 $h:$vm $r $(( $(ms_now) - t0 ))"
}

# ------------------------------------------------------------- 1. the shared limit
SPAM=$RDIR/spam.log
pids=()
for hv in a:vm1 b:vm2 c:vm3; do
	( for n in $(seq 1 35); do
		send_one "${hv%%:*}" "${hv#*:}" "spam-${hv#*:}-$n"
		sleep 0.3
	  done >>"$SPAM.${hv%%:*}" ) &
	pids+=($!)
done
wait "${pids[@]}"
sort -n "$SPAM".? >"$SPAM"
echo "# spam: $(grep -c ' ok ' "$SPAM") delivered, $(grep -c ' fail ' "$SPAM") refused of $(wc -l <"$SPAM")"
cross=$(sed -n '61p' "$SPAM" | cut -d' ' -f1)
first=$(head -n 1 "$SPAM" | cut -d' ' -f1)
echo "# spam: the group's 61st connection $((cross - first)) ms after the first"
for hv in a:vm1 b:vm2 c:vm3; do
	h=${hv%%:*}; vm=${hv#*:}
	last_ok=$(grep " $h:$vm ok " "$SPAM" | tail -n 1 | cut -d' ' -f1)
	after=$(awk -v t="$last_ok" -v w="$h:$vm" '$2 == w && $1 > t' "$SPAM" | grep -c ' ok ')
	n_ok=$(grep -c " $h:$vm ok " "$SPAM")
	echo "# spam: $h:$vm $n_ok of 35 delivered, its last $((last_ok - cross)) ms after the crossing"
	check_gt "$n_ok" 0 "spam-$h-$vm-sent-before-the-limit"
	check_le "$n_ok" 34 "spam-$h-$vm-stopped"
	check_le "$((last_ok - cross))" 10000 "spam-$h-$vm-stopped-within-10s-of-crossing"
	check_eq "$after" 0 "spam-$h-$vm-nothing-delivered-after-stopped"
	use "$h"
	check_eq "$(stat_get main rate_dropped)" 0 "spam-$h-host-alone-lets-it-through"
	check_gt "$(stat_get main penalty_dropped)" 0 "spam-$h-refused-by-the-shared-penalty"
	check_gt "$(show_get main "$(lab_vm_ip4 "$vm")" penalty_remaining_ms)" 60000 \
		"spam-$h-$vm-penalised-for-shared_penalty"
done
total_ok=$(grep -c ' ok ' "$SPAM")
check_range "$total_ok" 55 85 "spam-about-the-shared-limit-delivered"
check_ge "$(rcli zcard sg:over)" 1 "spam-group-over-in-redis"
check_eq "$(rcli zscore sg:over 192.0.2.0/28 | cut -d. -f1 | wc -c | tr -d ' ')" 14 \
	"spam-group-192.0.2.0/28-named"
ttl=$(rcli pttl sg:over)
check_range "$ttl" 1 600000 "spam-redis-key-has-a-ttl"

# ------------------------------------------------------------- 1b. a tenant's group
# acme's three VMs are in three /28s (alone, each would stay under the
# limit): counted in the tenant's group, tenant:acme, they are stopped
TSPAM=$RDIR/tenant-spam.log
pids=()
for hv in a:vm17 b:vm29 c:vm45; do
	( for n in $(seq 1 35); do
		send_one "${hv%%:*}" "${hv#*:}" "tspam-${hv#*:}-$n"
		sleep 0.3
	  done >>"$TSPAM.${hv%%:*}" ) &
	pids+=($!)
done
wait "${pids[@]}"
sort -n "$TSPAM".? >"$TSPAM"
echo "# tenant spam: $(grep -c ' ok ' "$TSPAM") delivered, $(grep -c ' fail ' "$TSPAM") refused of $(wc -l <"$TSPAM")"
for hv in a:vm17 b:vm29 c:vm45; do
	h=${hv%%:*}; vm=${hv#*:}
	check_le "$(grep -c " $h:$vm ok " "$TSPAM")" 34 "tenant-$h-$vm-stopped-by-the-tenant-group"
done
check_range "$(grep -c ' ok ' "$TSPAM")" 55 85 "tenant-about-the-shared-limit-delivered"
check_ne "$(rcli zscore sg:over tenant:acme)" "" "tenant-group-tenant:acme-over-in-redis"
check_eq "$(rcli zscore sg:over 192.0.2.16/28)" "" "tenant-no-prefix-group-for-acme's-vm"

# ------------------------------------------------------------- 1c. bulk bodies
BLAST=$E2E_REPO/selftests/tools/smtp_blast.py
cat >"$RDIR/spam.txt" <<'EOF2'
Hello friend, cheap watches and designer bags at wholesale prices, direct from
the factory with worldwide shipping in plain packaging. Visit our store at
https://shop.example.org/p/77 and use the secret coupon WATCH77 for an extra
discount on your first purchase, limited stock available now, order today and
pay nothing for delivery to any country in the world.
EOF2
chmod 644 "$RDIR/spam.txt"
# HOST VM COUNT: the spam body from VM, one recipient a message, over 24 domains.
# A sender's domains are counted exactly up to 16 a half hour, estimated
# past that (a 32-register HyperLogLog, never under 17 then): 24 takes each
# host's count through both, well past the threshold (10).
# Eight messages a session: the /28's connections stay far under the shared
# connection limit (60/min), which would refuse them.
spam() {
	use "$1"
	lab_exec "$2" timeout 60 python3 "$BLAST" --server "$MX" --count "$3" --rate 20 \
		--rcpts-per-msg 1 --domains 24 --msgs-per-session 8 --body-file "$RDIR/spam.txt" \
		--subject "Watches" --from "sales@$2.example.org" --helo "$2.example.org" \
		--token "bulk-$2" --log "$RDIR/bulk-$2.json" --max-seconds 40 --timeout 10 \
		>"$RDIR/bulk-$2.out" 2>&1
}
# HOST ADDR: the ladder's reasons for ADDR in HOST's events, one a line
ladder_why() {
	jq -r --arg a "$2" 'select(.event == "ladder" and ((.source // "") | split("/")[0]) == $a) |
		.reason // empty' "${LDIR[$1]}/events.json" 2>/dev/null
}
spam a vm71 24
check_eq "$(jq -r '.summary.rcpts_accepted // 0' "$RDIR/bulk-vm71.out" 2>/dev/null)" 24 \
	"bulk-a's-24-messages-delivered"
sleep 3	# rounds ran: a's counts are in Redis, nobody else's
spam a vm71 2
check_eq "$(ladder_why a 192.0.2.81 | grep -c 'same body')" 0 \
	"bulk-one-host's-sender-alone-is-no-outbreak"
BULK_KEY=$(rcli --scan --pattern 'sg:bulk:*' | head -n 1)
check_ne "$BULK_KEY" "" "bulk-a's-counts-in-redis"
# waited for by pid: the script's own redis-server and daemons are its jobs too
spam b vm72 24 & p1=$!; spam c vm73 24 & p2=$!; wait "$p1" "$p2"
sleep 4	# a round or more on each host: each reads the other two's counts
echo "# bulk: $BULK_KEY: $(rcli hgetall "$BULK_KEY" | tr '\n' ' ')"
check_eq "$(rcli hlen "$BULK_KEY")" 3 "bulk-one-body-one-field-a-host-in-redis"
spam a vm71 2 & p1=$!; spam b vm72 2 & p2=$!; spam c vm73 2 & p3=$!
wait "$p1" "$p2" "$p3"
for hv in a:192.0.2.81 b:192.0.2.82 c:192.0.2.83; do
	h=${hv%%:*}
	wait_for 5 sh -c "grep -q '\"source\":\"${hv#*:}[/\"].*same body' '${LDIR[$h]}/events.json'" || true
	why=$(ladder_why "$h" "${hv#*:}" | grep 'same body' | tail -n 1)
	echo "# bulk on $h: $why"
	check_contains "$why" "from 3 senders (1 here, 2 on other hosts)" \
		"bulk-outbreak-across-hosts-judged-on-$h"
done

# ------------------------------------------------------------- 2. migration
VM6=$(lab_vm_ip4 vm6)
use a
for n in 1 2; do
	send_one a vm6 "forbidden-offer-$n" >/dev/null
done
use a
wait_for 5 sh -c "[ \"\$(timeout 5 $LAB_BUILD/smtpguardctl --root $(lab_sgd_root) --json show $VM6 | jq -r .ladder)\" = refused ]" ||
	fail migrate-escalated-on-a "$(lab_ctl main show "$VM6")"
t0=$(ms_now)
use b
t1=
for _ in $(seq 1 200); do
	if [ "$(ctl_json main show "$VM6" 2>/dev/null | jq -r '.penalty_remaining_ms > 0 and .ladder == "refused"')" = true ]; then
		t1=$(ms_now)
		break
	fi
	sleep 0.02
done
if [ -n "$t1" ]; then
	echo "# migrate: host b held $VM6's penalty and step $((t1 - t0)) ms after host a set them"
	check_le "$((t1 - t0))" 3000 "migrate-penalty-on-b-within-3s"
else
	fail migrate-penalty-on-b-within-3s "b never held it: $(lab_ctl main show "$VM6" 2>&1 | head -n 3)"
fi
use b
check_contains "$(show_get main "$VM6" ladder_reason)" "another host" "migrate-b-says-where-from"
syns_before=$(show_get main "$VM6" syns)
# the VM moves: its tap goes from a, and comes on b
use a; lab_del_vm vm6
use b; lab_add_vm vm6 || fail migrate-vm-moved "lab_add_vm on b"
drops0=$(stat_get main penalty_dropped)
check_refused migrate-first-syn-on-b-refused vm6 "$MX"
syns=$(show_get main "$VM6" syns); drops=$(show_get main "$VM6" syn_drops)
echo "# migrate: on b, $VM6 sent $((syns - ${syns_before:-0})) SYNs, $drops refused"
check_gt "$syns" "${syns_before:-0}" "migrate-b-saw-its-syns"
check_eq "$drops" "$syns" "migrate-every-syn-on-b-refused-from-the-first"
check_gt "$(( $(stat_get main penalty_dropped) - drops0 ))" 0 "migrate-refused-by-the-penalty"

# the operator releases it on b: every host lets it go; blocked again on b:
# every host holds the block
use b
lab_ctl main release "$VM6" >/dev/null || fail migrate-release "release failed"
t0=$(ms_now)
use c
if wait_for 5 sh -c "[ \"\$(timeout 5 $LAB_BUILD/smtpguardctl --root $(lab_sgd_root) --json show $VM6 | jq -r '.penalty_remaining_ms == 0 and .ladder == \"normal\"')\" = true ]"; then
	echo "# release: host c let $VM6 go $(( $(ms_now) - t0 )) ms after b released it"
	pass release-on-b-reaches-c
else
	fail release-on-b-reaches-c "$(lab_ctl main show "$VM6" 2>&1 | head -n 4)"
fi
if ! wait_for 3 sh -c "[ \"\$(nsenter --net=/run/netns/$RNS redis-cli -h $RADDR -a $PASSWORD --no-auth-warning exists sg:p:$VM6)\" = 0 ]"; then
	fail release-gone-from-redis "sg:p:$VM6 = $(rcli hgetall "sg:p:$VM6" | tr '\n' ' '); $(for h in a b c; do use $h; echo "$h: $(grep -F "$VM6" "$(lab_sgd_log)" | tail -n 3)"; done)"
else
	pass release-gone-from-redis
fi
use b
lab_ctl main block "$VM6" --for 10m >/dev/null
use a
if wait_for 5 sh -c "[ \"\$(timeout 5 $LAB_BUILD/smtpguardctl --root $(lab_sgd_root) --json show $VM6 | jq -r '.penalty_remaining_ms > 500000')\" = true ]"; then
	pass block-on-b-reaches-a
else
	fail block-on-b-reaches-a "$(lab_ctl main show "$VM6" 2>&1 | head -n 4)"
fi

# ------------------------------------------------------------- 3. redis down and back
LEGIT=$RDIR/legit.log
: >"$LEGIT"
pids=()
secs=$((OUTAGE + 25))
for hv in a:vm54 b:vm22 c:vm38; do
	( end=$(( $(date +%s) + secs )); n=0
	  while [ "$(date +%s)" -lt "$end" ]; do
		n=$((n + 1))
		send_one "${hv%%:*}" "${hv#*:}" "legit-${hv#*:}-$n-$$"
		sleep 1.2
	  done >>"$LEGIT.${hv%%:*}" ) &
	pids+=($!)
done
sleep 8
kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=
t_kill=$(ms_now)
sleep 8
for h in "${HOSTS[@]}"; do
	use "$h"
	check_contains "$(lab_ctl main metrics | grep '^smtpguard_redis_state ')" \
		"smtpguard_redis_state 3" "outage-$h-state-down"
	check_ge "$(stat_get main redis_errors)" 1 "outage-$h-errors-counted"
done
# enforcement goes on: the spammer and the migrated VM still refused, and a
# block made now holds
use a; check_refused outage-spammer-still-refused-on-a vm1 "$MX"
use b; check_refused outage-migrated-still-refused-on-b vm6 "$MX"
use c; lab_ctl main block "$(lab_vm_ip4 vm38)" --for 3s >/dev/null
check_refused outage-local-block-enforced vm38 "$MX"
while [ $(( $(ms_now) - t_kill )) -lt $((OUTAGE * 1000)) ]; do sleep 0.2; done
redis_start || fail outage-redis-restarted "$(tail -n 3 "$RDIR/redis.log")"
t_back=$(ms_now)
echo "# outage: redis down $(( (t_back - t_kill) / 1000 )) s"
wait "${pids[@]}"
cat "$LEGIT".? | sort -n >"$LEGIT"
n=$(wc -l <"$LEGIT"); ok=$(grep -c ' ok ' "$LEGIT")
slow=$(awk '{ if ($4 > m) m = $4 } END { print m + 0 }' "$LEGIT")
# vm38's messages during its 3 s block were refused on purpose
blocked=$(grep ' c:vm38 fail ' "$LEGIT" | wc -l)
echo "# outage: $ok of $n messages got 250 ($blocked refused by the 3 s block), the slowest session $slow ms"
check_ge "$n" "$OUTAGE" "outage-messages-sent"
check_le "$blocked" 6 "outage-only-the-block-refused"
check_eq "$((ok + blocked))" "$n" "outage-every-message-accepted"
check_le "$slow" 3000 "outage-no-session-stalled"
# at the MX, every one
missing=0
for h in "${HOSTS[@]}"; do
	use "$h"
	want=$(grep -c ' ok ' "$LEGIT.$h")
	got=$(grep -rl "legit-" "$(lab_mx_maildir)/new" "$(lab_mx_maildir)/cur" 2>/dev/null | wc -l)
	[ "$got" -eq "$want" ] || missing=$((missing + want - got))
	echo "# outage: host $h's MX has $got of $want"
done
check_eq "$missing" 0 "outage-zero-messages-lost"
for h in "${HOSTS[@]}"; do
	use "$h"
	log=$(lab_sgd_log)
	wait_for 40 sh -c "grep -q 'is back after' '$log'" || fail "outage-$h-reconnected" "$(grep redis "$log" | tail -n 2)"
	check_eq "$(grep -c "enforcement goes on with this host's own state" "$log")" 1 \
		"outage-$h-warned-once"
	check_eq "$(stat_get main redis_outages)" 1 "outage-$h-one-outage-counted"
	check_contains "$(lab_ctl main metrics | grep '^smtpguard_redis_state ')" \
		"smtpguard_redis_state 2" "outage-$h-state-up-again"
done
# the empty Redis got the hosts' state back: the migrated VM's penalty, and
# the counts kept during the outage
wait_for 5 sh -c "[ \"\$(nsenter --net=/run/netns/$RNS redis-cli -h $RADDR -a $PASSWORD --no-auth-warning exists sg:p:$VM6)\" = 1 ]" &&
	pass outage-restarted-redis-got-penalties-back ||
	fail outage-restarted-redis-got-penalties-back "no sg:p:$VM6"
check_gt "$(rcli pttl "sg:p:$VM6")" 0 "outage-restored-key-has-a-ttl"
g=$(lab_vm_ip4 vm54 | awk -F. '{ printf "%s.%s.%s.%d/28", $1, $2, $3, int($4 / 16) * 16 }')
sum=0
for k in $(rcli --scan --pattern "sg:c:$g:*"); do sum=$((sum + $(rcli get "$k"))); done
during=$(awk -v a="$t_kill" -v b="$t_back" '$2 == "a:vm54" && $1 >= a && $1 < b' "$LEGIT" | wc -l)
echo "# outage: redis counts $sum connections of $g since its restart; $during were made while it was down"
check_ge "$sum" "$during" "outage-counts-kept-while-down-sent"
keys_no_ttl=0
for k in $(rcli --scan --pattern 'sg:*'); do
	[ "$(rcli pttl "$k")" -ge 0 ] || keys_no_ttl=$((keys_no_ttl + 1))
done
check_eq "$keys_no_ttl" 0 "every-redis-key-has-a-ttl"

# ------------------------------------------------------------- 4. the script flushed, Redis stalled
declare -A syncs0
for h in "${HOSTS[@]}"; do use "$h"; syncs0[$h]=$(stat_get main redis_syncs); done
rcli script flush >/dev/null
sleep 3
for h in "${HOSTS[@]}"; do
	use "$h"
	check_ge "$(( $(stat_get main redis_syncs) - ${syncs0[$h]:-0} ))" 2 "flush-$h-script-loaded-again"
	check_eq "$(stat_get main redis_outages)" 1 "flush-$h-no-outage"
done
# SIGSTOP: connections are accepted, nothing answers
kill -STOP "$REDIS_PID"
sleep 4
r=$(send_one a vm54 "stalled-$$")
echo "# stall: a message while Redis hangs: $r"
check_eq "$(echo "$r" | cut -d' ' -f3)" ok "stall-message-accepted"
check_le "$(echo "$r" | cut -d' ' -f4)" 3000 "stall-session-not-held"
for h in "${HOSTS[@]}"; do
	use "$h"
	check_contains "$(lab_ctl main metrics | grep '^smtpguard_redis_state ')" \
		"smtpguard_redis_state 3" "stall-$h-state-down"
	check_contains "$(grep 'enforcement goes on' "$(lab_sgd_log)" | tail -n 1)" \
		"no reply within redis_timeout" "stall-$h-says-why"
done
kill -CONT "$REDIS_PID"
for h in "${HOSTS[@]}"; do
	use "$h"
	if wait_for 20 sh -c "timeout 5 $LAB_BUILD/smtpguardctl --root $(lab_sgd_root) metrics | grep -q '^smtpguard_redis_state 2'"; then
		pass "stall-$h-back"
	else
		fail "stall-$h-back" "$(grep redis "$(lab_sgd_log)" | tail -n 2)"
	fi
	check_eq "$(stat_get main redis_outages)" 2 "stall-$h-second-outage-counted"
done

for h in "${HOSTS[@]}"; do
	use "$h"
	lab_stop_smtpguardd main >/dev/null 2>&1
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$(lab_sgd_log)"; then
		fail "sanitizer-clean-$h" "$(grep -m1 -E 'ERROR: |runtime error:' "$(lab_sgd_log)")"
	fi
done
e2e_finish
