#!/usr/bin/env bash
# test_scenario.sh - the behaviour signals and the response ladder against
# three senders at once, with the defaults an operator gets:
#   vm1, compromised: 1,000 messages in 60 s (about 17/s), 1-3 recipients
#     each over 500 domains, 30% of them unknown at the MX, random bodies
#     (selftests/tools/smtp_blast.py). It must be refused in the kernel
#     within 10 s of its first message: the ladder's events normal ->
#     flagged -> tempfail -> refused, with reasons, then its SYNs dropped
#     (penalty_dropped grows, its connects time out, none gets through).
#   vm2, a newsletter: 10 messages/s, the same body with an unsubscribe
#     link, 200 messages x 10 recipients = its 2,000 subscribers over 400
#     domains, 1% unknown, at the same time. Nothing of it may be lost:
#     every message 250, nothing tempfailed or refused, and the MX's
#     mailbox holds each known subscriber's copy exactly once. Flagged is
#     acceptable (volume alone), tempfail or refused a failure.
#   vm3, a normal VM: a few messages through its own real Postfix during
#     the run, all delivered.
# The MX is real Postfix answering as a real MX: every domain accepted,
# unknown users refused at RCPT with 550 5.1.1.
#
# smtpguardd runs with proxy = yes, an events file and otherwise its
# defaults: no behaviour_*, ladder_* or escalation key is tuned. The only
# thing set is a rate class for the three VMs with a generous connection
# rate (1000/s, burst 1000), so that the connection rate limiter (the SYN
# bucket) decides nothing here: a refusal measured is the ladder's (the
# test checks rate_dropped stays 0).
#
# Report lines start with "# " (the times to each step, the reasons, vm2's
# step at the end); checks print PASS/FAIL.
#   bash selftests/e2e/test_scenario.sh build
# shellcheck disable=SC2317 # the functions below run through wait_for
source "$(dirname "$0")/lib.sh"
e2e_begin scenario "${1:-}" 240

BLAST=$E2E_REPO/selftests/tools/smtp_blast.py
MX4=$LAB_MX4
VM1=$(lab_vm_ip4 vm1) VM2=$(lab_vm_ip4 vm2) VM3=$(lab_vm_ip4 vm3)
# the scenario's shape
V1_COUNT=1000 V1_RATE=16.667 V1_RCPTS=1-3 V1_DOMAINS=500 V1_UNKNOWN=30 V1_PER_SESSION=5
V2_COUNT=200 V2_RATE=10 V2_RCPTS=10 V2_DOMAINS=400 V2_UNKNOWN=1 V2_PER_SESSION=20
LIMIT_MS=10000
TOK1="sgt-scenario-vm1-$$-$RANDOM" TOK2="sgt-scenario-vm2-$$-$RANDOM"

[ -f "$BLAST" ] || e2e_abort "no $BLAST"
lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
EVENTS=$LAB_DIR/events.json
# lab_up makes vm1 and vm2; vm3 is added as the hot-plug tests do
{ lab_add_vm vm3 && lab_wait_reachable vm3; } || e2e_abort "cannot add vm3"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"

# --- the MX answers like a real one: any domain is its own, an unknown
# user is refused at RCPT (550 5.1.1), and a session with many refusals is
# not slowed or cut (error limits raised; smtpd_error_sleep_time is 0).
# Debian's postfix has regexp tables without extra packages (pcre needs
# postfix-pcre).
MXETC=$LAB_DIR/postfix-mx/etc
printf '/./ OK\n' >"$MXETC/any_domain"
printf '/^unknown[0-9]*@/ 550 5.1.1 User unknown\n' >"$MXETC/rcpt_access"
postconf -c "$MXETC" -e \
	"virtual_mailbox_domains = regexp:$MXETC/any_domain" \
	"smtpd_recipient_restrictions = check_recipient_access regexp:$MXETC/rcpt_access" \
	"smtpd_soft_error_limit = 10000" "smtpd_hard_error_limit = 10000" \
	"smtpd_junk_command_limit = 10000" ||
	e2e_abort "postconf on the MX failed"
lab_exec mx timeout 20 postfix -c "$MXETC" reload >/dev/null 2>&1 || e2e_abort "postfix reload on the MX failed"
# probes from the MX's own namespace (nothing through smtpguard yet)
mx_probe() {
	lab_exec mx timeout 15 swaks --server "$MX4" --timeout 5 --helo probe.example.org \
		--from probe@example.org --to "$1" --quit-after RCPT 2>&1
}
mx_rcpt_reply() { mx_probe "$1" | awk '/-> +RCPT TO/ { getline; print; exit }'; }
mx_refuses_unknown() { mx_rcpt_reply unknown999@d999.example | grep -q '550 5.1.1'; }
wait_for 15 mx_refuses_unknown
check_match "$(mx_rcpt_reply unknown999@d999.example)" \
	'^<\*\* +550 5\.1\.1 <unknown999@d999\.example>: Recipient address rejected: User unknown' \
	"mx-refuses-unknown-user-550-5.1.1"
check_match "$(mx_rcpt_reply user999@d999.example)" '^<- +250 ' "mx-accepts-any-domain"

# --- smtpguardd: the proxy, an events file, defaults otherwise
lab_start_smtpguardd main proxy=yes uplink=uplink0 events_file="$EVENTS" ||
	e2e_abort "smtpguardd did not start"
lab_ctl main rate-class set scenario --conn 1000/s --burst 1000 --sessions 50 >/dev/null ||
	e2e_abort "rate-class set failed"
for ip in "$VM1" "$VM2" "$VM3"; do
	lab_ctl main policy add "$ip/32" scan --class scenario >/dev/null || e2e_abort "policy add $ip failed"
done
lab_start_vm_postfix vm3 || e2e_abort "Postfix did not start in vm3"

# the newsletter: one text, an unsubscribe link
cat >"$LAB_DIR/newsletter.txt" <<'EOF'
Hello from the Riverside Community Garden!

Spring planting starts this Saturday at 9 am. Bring gloves, a water
bottle and, if you have one, a trowel; seedlings and compost are on us.
Our tomato workshop moves to the greenhouse on April 12th, and the seed
swap table is open every Sunday afternoon by the tool shed.

Volunteers needed: we are looking for three people to help with the
watering rota in May. Reply to this message or sign up on the board.

Upcoming:
 - Sat 9:00   spring planting day
 - Wed 18:30  composting 101 (greenhouse)
 - Sun 14:00  seed swap

Thank you for growing with us,
The Riverside Community Garden team

You receive this newsletter because you subscribed at
https://garden.example.org/newsletter.
To unsubscribe, visit https://garden.example.org/unsubscribe?list=spring
or reply with "unsubscribe" in the subject.
EOF

PD0=$(stat_get main penalty_dropped); RD0=$(stat_get main rate_dropped)

# --- the run: vm1 and vm2 at once, vm3's MTA meanwhile
lab_exec vm1 timeout 100 python3 "$BLAST" --server "$MX4" --count "$V1_COUNT" \
	--rate "$V1_RATE" --rcpts-per-msg "$V1_RCPTS" --domains "$V1_DOMAINS" \
	--unknown-pct "$V1_UNKNOWN" --msgs-per-session "$V1_PER_SESSION" --random-bodies \
	--from "mailer@vm1.example.org" --helo vm1.example.org --token "$TOK1" --seed 11 \
	--log "$LAB_DIR/blast-vm1.json" --max-seconds 66 --timeout 10 --connect-timeout 1 \
	>"$LAB_DIR/blast-vm1.out" 2>&1 &
B1=$!
lab_exec vm2 timeout 100 python3 "$BLAST" --server "$MX4" --count "$V2_COUNT" \
	--rate "$V2_RATE" --rcpts-per-msg "$V2_RCPTS" --domains "$V2_DOMAINS" \
	--unknown-pct "$V2_UNKNOWN" --msgs-per-session "$V2_PER_SESSION" \
	--body-file "$LAB_DIR/newsletter.txt" --subject "Riverside garden news: spring planting" \
	--from "news@vm2.example.org" --helo vm2.example.org --token "$TOK2" --seed 22 \
	--log "$LAB_DIR/blast-vm2.json" --max-seconds 66 --timeout 10 --connect-timeout 2 \
	>"$LAB_DIR/blast-vm2.out" 2>&1 &
B2=$!
V3_TOKENS=()
for k in 1 2 3 4 5; do
	sleep 4
	tok="sgt-scenario-vm3-$$-$k-$RANDOM"
	V3_TOKENS+=("$tok")
	lab_vm_sendmail vm3 "$tok" "a normal message, $tok" ||
		echo "# vm3: sendmail of message $k failed" >&2
done
wait_for_exit "$B2" 90 || echo "# vm2's blast still running after 90 s" >&2
wait "$B2"; RC2=$?
wait_for_exit "$B1" 90 || echo "# vm1's blast still running" >&2
wait "$B1"; RC1=$?
check_eq "$RC1/$RC2" "0/0" "blasts-ran-to-the-end"
PD1=$(stat_get main penalty_dropped); RD1=$(stat_get main rate_dropped)

# vm3's mail, delivered (its MTA retries what was deferred: flush it)
lab_vm_flush vm3 >/dev/null 2>&1
v3_all_delivered() {
	local t
	for t in "${V3_TOKENS[@]}"; do lab_mx_find_mail "$t" >/dev/null || return 1; done
}
wait_for 30 v3_all_delivered
v3n=0
for t in "${V3_TOKENS[@]}"; do lab_mx_find_mail "$t" >/dev/null && v3n=$((v3n + 1)); done
check_eq "$v3n" "${#V3_TOKENS[@]}" "vm3-normal-mail-all-delivered"
v3_deferred=$(grep -c 'status=deferred' "$(lab_vm_log vm3)" 2>/dev/null)

# vm2's deliveries: the MX's virtual agent writes one file a recipient
V2_ACCEPTED_RCPTS=$(sed -n 's/.*"summary".*"rcpts_accepted":\([0-9]*\).*/\1/p' "$LAB_DIR/blast-vm2.json")
v2_files() { grep -rlF -- "X-Blast-Token: $TOK2" "$(lab_mx_maildir)/new" "$(lab_mx_maildir)/cur" 2>/dev/null | wc -l; }
v2_done() { [ "$(v2_files)" -ge "${V2_ACCEPTED_RCPTS:-1}" ]; }
wait_for 60 v2_done

# --- the numbers, from the blast logs, the events file and the MX's mailbox
eval "$(python3 - "$LAB_DIR" "$EVENTS" "$VM1" "$VM2" "$VM3" "$TOK2" "$(lab_mx_maildir)" <<'PY'
import collections, datetime, json, os, shlex, sys
labdir, events, vm1, vm2, vm3, tok2, maildir = sys.argv[1:8]
out = {}
def put(k, v): out[k] = "" if v is None else str(v)

def blast(path):
    recs, summ = [], {}
    try:
        with open(path) as f:
            for ln in f:
                try:
                    r = json.loads(ln)
                except ValueError:
                    continue
                if "summary" in r:
                    summ = r["summary"]
                else:
                    recs.append(r)
    except OSError:
        pass
    return recs, summ

def iso(t):
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()

ladder = collections.defaultdict(list)
try:
    with open(events) as f:
        for ln in f:
            try:
                e = json.loads(ln)
            except ValueError:
                continue
            if e.get("event") != "ladder":
                continue
            src = str(e.get("source", "")).split("/")[0]
            ladder[src].append((iso(e["time"]), e.get("from"), e.get("to"), e.get("reason", ""),
                                e.get("penalty_s", 0)))
except OSError:
    pass

# vm1
r1, s1 = blast(os.path.join(labdir, "blast-vm1.json"))
sent1 = [r for r in r1 if r["outcome"] != "skipped"]
t0 = min((r["t"] for r in sent1), default=None)
put("V1_SENT", len(sent1))
put("V1_SKIPPED", sum(1 for r in r1 if r["outcome"] == "skipped"))
oc = collections.Counter((r["outcome"], r["stage"]) for r in r1)
put("V1_OUTCOMES", " ".join("%s@%s=%d" % (o, s, n) for (o, s), n in sorted(oc.items())))
put("V1_ACCEPTED", sum(1 for r in r1 if r["outcome"] == "accepted"))
put("V1_TEMPFAIL_AT_MAIL", sum(1 for r in r1 if r["outcome"] == "tempfail" and r["stage"] == "mail"))
conn_fail = sorted(r["t"] for r in r1 if r["stage"] == "connect" and r["outcome"] != "skipped")
put("V1_CONN_FAILS", len(conn_fail))
put("V1_CONN_FAIL_KINDS", " ".join("%s=%d" % kv for kv in sorted(collections.Counter(
    r["outcome"] for r in r1 if r["stage"] == "connect").items())))
put("V1_RCPTS_SENT", s1.get("rcpts_sent"))
put("V1_RCPTS_REFUSED", s1.get("rcpts_refused"))
put("V1_ELAPSED", s1.get("elapsed"))
steps = {}
for t, fr, to, why, pen in ladder.get(vm1, []):
    steps.setdefault(to, (t, why, pen))
def ms(t):
    return None if t is None or t0 is None else int(round((t - t0) * 1000))
for name in ("flagged", "tempfail", "refused"):
    st = steps.get(name)
    put("V1_%s_MS" % name.upper(), ms(st[0]) if st else None)
    put("V1_%s_WHY" % name.upper(), st[1] if st else None)
put("V1_PENALTY_S", steps["refused"][2] if "refused" in steps else None)
put("V1_LADDER_PATH", " -> ".join(["normal"] + [to for _, _, to, _, _ in ladder.get(vm1, [])]))
put("V1_FIRST_CONN_FAIL_MS", ms(conn_fail[0]) if conn_fail else None)
# after the refusal: sessions that still connected, messages still accepted
ref_t = steps["refused"][0] if "refused" in steps else None
if ref_t is not None:
    sess = collections.defaultdict(list)
    for r in r1:
        if r["outcome"] != "skipped" and r["session"]:
            sess[r["session"]].append(r)
    late = 0
    for rs in sess.values():
        first = min(rs, key=lambda r: r["t"])
        if first["stage"] != "connect" and first["t"] > ref_t + 0.5:
            late += 1
    put("V1_CONNECTED_AFTER_REFUSAL", late)
    put("V1_ACCEPTED_AFTER_REFUSAL",
        sum(1 for r in r1 if r["outcome"] == "accepted" and r.get("t_mail", r["t"]) > ref_t + 0.5))
    put("V1_ATTEMPTS_AFTER_REFUSAL", sum(1 for r in r1 if r["outcome"] != "skipped" and r["t"] > ref_t))
else:
    for k in ("V1_CONNECTED_AFTER_REFUSAL", "V1_ACCEPTED_AFTER_REFUSAL", "V1_ATTEMPTS_AFTER_REFUSAL"):
        put(k, None)
# the first message's time, as a clock
put("V1_T0", t0)
if t0 is not None:
    put("V1_T0_ISO", datetime.datetime.fromtimestamp(t0, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3])

# vm2
r2, s2 = blast(os.path.join(labdir, "blast-vm2.json"))
oc2 = collections.Counter((r["outcome"], r["stage"]) for r in r2)
put("V2_OUTCOMES", " ".join("%s@%s=%d" % (o, s, n) for (o, s), n in sorted(oc2.items())))
put("V2_ACCEPTED", sum(1 for r in r2 if r["outcome"] == "accepted"))
put("V2_NOT_ACCEPTED", sum(1 for r in r2 if r["outcome"] != "accepted"))
put("V2_RCPTS_SENT", s2.get("rcpts_sent"))
put("V2_RCPTS_ACCEPTED", s2.get("rcpts_accepted"))
put("V2_RCPTS_REFUSED", s2.get("rcpts_refused"))
put("V2_RCPTS_TEMPFAILED", s2.get("rcpts_tempfailed"))
put("V2_UNKNOWN_PLANNED", sum(r.get("rcpts_unknown_planned", 0) for r in r2))
put("V2_ELAPSED", s2.get("elapsed"))
accepted = collections.Counter(a for r in r2 for a in r.get("accepted", []))
put("V2_ACCEPTED_DISTINCT", len(accepted))
put("V2_ACCEPTED_UNKNOWN", sum(1 for a in accepted if a.startswith("unknown")))
# the mailbox: each of vm2's files, its Delivered-To
delivered = collections.Counter()
files = 0
for sub in ("new", "cur"):
    d = os.path.join(maildir, sub)
    try:
        names = os.listdir(d)
    except OSError:
        continue
    for n in names:
        try:
            with open(os.path.join(d, n), "rb") as f:
                head = f.read(8192).split(b"\n\n", 1)[0].decode("utf-8", "replace")
        except OSError:
            continue
        if ("X-Blast-Token: " + tok2) not in head:
            continue
        files += 1
        for ln in head.splitlines():
            if ln.lower().startswith("delivered-to:"):
                delivered[ln.split(":", 1)[1].strip().lower()] += 1
                break
put("V2_MAIL_FILES", files)
put("V2_DELIVERED_DISTINCT", len(delivered))
put("V2_DELIVERED_TWICE", sum(1 for a, n in delivered.items() if n > 1))
put("V2_ACCEPTED_NOT_DELIVERED", sum(1 for a in accepted if a.lower() not in delivered))
put("V2_DELIVERED_NOT_ACCEPTED", sum(1 for a in delivered if a not in {x.lower() for x in accepted}))
put("V2_LADDER_PATH", " -> ".join(["normal"] + [to for _, _, to, _, _ in ladder.get(vm2, [])]))
put("V2_LADDER_WHY", "; ".join("%s: %s" % (to, why) for _, _, to, why, _ in ladder.get(vm2, [])))
put("V3_LADDER_PATH", " -> ".join(["normal"] + [to for _, _, to, _, _ in ladder.get(vm3, [])]))
for k, v in out.items():
    print("%s=%s" % (k, shlex.quote(v)))
PY
)"

# --- the report
echo "# vm1 (compromised, $V1_COUNT msgs at ${V1_RATE}/s, rcpts $V1_RCPTS over $V1_DOMAINS domains, $V1_UNKNOWN% unknown): first message at $V1_T0_ISO UTC"
echo "#   ladder: $V1_LADDER_PATH; flagged at +${V1_FLAGGED_MS} ms, tempfail at +${V1_TEMPFAIL_MS} ms, refused at +${V1_REFUSED_MS} ms (penalty ${V1_PENALTY_S} s)"
echo "#   first connection refused in the kernel (connect timed out, refuse = drop) begun at +${V1_FIRST_CONN_FAIL_MS} ms"
echo "#   flagged because: $V1_FLAGGED_WHY"
echo "#   tempfail because: $V1_TEMPFAIL_WHY"
echo "#   refused because: $V1_REFUSED_WHY"
echo "#   outcomes: $V1_OUTCOMES (skipped $V1_SKIPPED); recipients sent $V1_RCPTS_SENT, refused by the MX $V1_RCPTS_REFUSED; ran $V1_ELAPSED s"
echo "#   after the refusal: $V1_ATTEMPTS_AFTER_REFUSAL attempts, $V1_CONNECTED_AFTER_REFUSAL sessions connected, $V1_ACCEPTED_AFTER_REFUSAL messages accepted; connect failures $V1_CONN_FAILS ($V1_CONN_FAIL_KINDS); penalty_dropped $PD0 -> $PD1, rate_dropped $RD0 -> $RD1"
echo "# vm2 (newsletter, $V2_COUNT msgs x $V2_RCPTS rcpts at ${V2_RATE}/s over $V2_DOMAINS domains, $V2_UNKNOWN% unknown): outcomes $V2_OUTCOMES; ran $V2_ELAPSED s"
echo "#   recipients: sent $V2_RCPTS_SENT, accepted $V2_RCPTS_ACCEPTED, refused $V2_RCPTS_REFUSED (planned unknown $V2_UNKNOWN_PLANNED), tempfailed $V2_RCPTS_TEMPFAILED; in the MX's mailbox $V2_MAIL_FILES files, $V2_DELIVERED_DISTINCT distinct recipients"
V2_STEP=$(show_get main "$VM2" ladder)
echo "#   ladder: $V2_LADDER_PATH; at the end: ${V2_STEP:-?} ($(show_get main "$VM2" ladder_reason))"
echo "# vm3 (normal, its Postfix): $v3n of ${#V3_TOKENS[@]} delivered, $v3_deferred deferrals in its log; ladder: $V3_LADDER_PATH"

# --- vm1: refused in the kernel within 10 s, by the ladder, step by step
check_le "$V1_REFUSED_MS" "$LIMIT_MS" "vm1-ladder-refused-within-10s"
check_le "$V1_FIRST_CONN_FAIL_MS" "$LIMIT_MS" "vm1-first-connection-refused-within-10s"
check_eq "$V1_LADDER_PATH" "normal -> flagged -> tempfail -> refused" "vm1-ladder-steps-are-events"
check_match "$V1_FLAGGED_WHY" "unknown at the MX|recipient domains" "vm1-flagged-reason-names-unknown-or-domains"
check_match "$V1_TEMPFAIL_WHY" "unknown at the MX" "vm1-tempfail-reason-names-unknown-ratio"
check_match "$V1_REFUSED_WHY" "unknown at the MX" "vm1-refused-reason-names-unknown-ratio"
check_gt "$V1_TEMPFAIL_AT_MAIL" 0 "vm1-tempfail-step-451-at-mail-from"
check_gt "$((${PD1:-0} - ${PD0:-0}))" 0 "vm1-syns-dropped-penalty_dropped-grows"
check_gt "$V1_CONN_FAILS" 0 "vm1-blast-sees-connections-refused"
# the connects that failed began after the ladder's refusal (less a few ms:
# the kernel's penalty is set just before the event is written), so the
# kernel refused them for the ladder, not for anything before it
check_ge "$(( ${V1_FIRST_CONN_FAIL_MS:-0} - ${V1_REFUSED_MS:-999999} + 100 ))" 0 \
	"vm1-connections-refused-only-after-ladder-refused"
check_eq "$V1_CONNECTED_AFTER_REFUSAL" 0 "vm1-no-connection-after-refusal"
check_eq "$V1_ACCEPTED_AFTER_REFUSAL" 0 "vm1-nothing-accepted-after-refusal"
check_eq "$RD1" "${RD0:-0}" "connection-rate-limiter-dropped-nothing"
check_eq "$(show_get main "$VM1" ladder)" refused "vm1-show-says-refused"

# --- vm2: nothing lost
check_eq "$V2_ACCEPTED" "$V2_COUNT" "vm2-every-message-250"
check_eq "$V2_NOT_ACCEPTED" 0 "vm2-nothing-tempfailed-or-refused"
check_eq "$V2_RCPTS_REFUSED" "$V2_UNKNOWN_PLANNED" "vm2-only-unknown-subscribers-refused-by-mx"
check_eq "$V2_RCPTS_ACCEPTED" "$((V2_COUNT * V2_RCPTS - V2_UNKNOWN_PLANNED))" "vm2-every-known-subscriber-accepted"
check_eq "$V2_MAIL_FILES/$V2_DELIVERED_DISTINCT/$V2_DELIVERED_TWICE/$V2_ACCEPTED_NOT_DELIVERED/$V2_DELIVERED_NOT_ACCEPTED" \
	"$V2_RCPTS_ACCEPTED/$V2_RCPTS_ACCEPTED/0/0/0" "vm2-mailbox-each-known-subscriber-once"
check_match "${V2_STEP:-none}" '^(normal|flagged)$' "vm2-ladder-at-most-flagged"

# --- vm3: normal mail untouched
check_eq "$(show_get main "$VM3" ladder)" normal "vm3-ladder-normal"

e2e_finish
