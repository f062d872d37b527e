#!/usr/bin/env bash
# test_metrics.sh - metrics, top and doctor end to end. The metrics
# listener (metrics_listen) answers GET /metrics with the 0.0.4 text, 404
# another path, 405 another method, 400 garbage; after real proxied mail
# (one clean message, one the content engine refuses) the counters move:
# verdicts by reason, the content engine's latency histogram, steered
# SYNs; the session gauges go back to 0. Slow scrapers (a request never
# finished) do not stop another scrape, are cut at the deadline, and past
# the cap on scrapers a connection is closed at once. `smtpguardctl
# metrics` prints what the listener serves. `top` in a pseudo-terminal
# redraws every second, changes its sort column on a key and quits on q
# with the terminal restored. `doctor` finds each thing broken on purpose
# (no pins, a missing routing rule, a dead milter, an expired and an
# expiring certificate, ip_forward off, src_valid_mark with rp_filter) and
# says what to do; its exit status follows the worst finding.
#   bash selftests/e2e/test_metrics.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin metrics "${1:-}" 240

CTL=${SG_CTL:-$LAB_BUILD/smtpguardctl}
MX4=$LAB_MX4
RULES=$LAB_DIR/content.rules
LISTEN=127.0.0.1:9425
URL=http://$LISTEN/metrics

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
printf 'PILLS body /buy-cheap-pills-[0-9]+/i\n' > "$RULES"
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 uplink=uplink0 \
	content_rules="$RULES" metrics_listen="$LISTEN" escalation_rejects=100 ||
	e2e_abort "smtpguardd did not start"
lab_ctl main rate-class set many --conn 1000/s --burst 1000 >/dev/null
lab_ctl main policy add "$(lab_vm_ip4 vm1)/32" scan --class many >/dev/null ||
	e2e_abort "policy add failed"
ROOT=$(lab_sgd_root main)
CONF=$(lab_sgd_conf main)

# scrape [CURL ARGS...]: the body of GET /metrics, from the host's namespace
scrape() { lab_exec host curl -sS --max-time 5 "$@" "$URL"; }
# value TEXT SERIES: the sample's value ("" when absent)
value() { printf '%s\n' "$1" | awk -v s="$2" '$1 == s { print $2; exit }'; }

check_contains "$(cat "$(lab_sgd_log main)")" "metrics served at http://$LISTEN/metrics" \
	"listener-logged"

# --- the exposition
hdr=$(lab_exec host curl -sS --max-time 5 -D - -o /dev/null "$URL" | tr -d '\r')
check_match "$hdr" '^HTTP/1.1 200 OK' "get-200"
check_contains "$hdr" "Content-Type: text/plain; version=0.0.4" "get-content-type-0.0.4"
M0=$(scrape)
check_contains "$M0" "# TYPE smtpguard_kernel_smtp_syn_total counter" "kernel-counter-typed"
check_contains "$M0" "# HELP smtpguard_kernel_steered_total " "kernel-counter-help"
check_ge "$(value "$M0" smtpguard_proxy_listeners)" 2 "listeners-registered"
# the VMs' taps and the uplink
check_eq "$(value "$M0" smtpguard_attached_interfaces)" \
	"$(( $(lab_exec host ip -o link show | grep -cE '^[0-9]+: tap') + 1 ))" "attached-interfaces-counted"
check_contains "$M0" 'smtpguard_engine_latency_seconds_bucket{engine="content",le="+Inf"}' \
	"content-engine-histogram-listed"
check_contains "$M0" 'smtpguard_proxy_sessions{state="body"}' "sessions-by-state-listed"
# every name of the classifier's enum is exported (walked, not listed)
# (reattached and redis_* are the daemon's, kept with the proxy's counters:
# smtpguard_proxy_reattached_total, smtpguard_proxy_redis_errors_total)
missing=""
for name in $(lab_ctl main stats | awk 'NR <= 64 && $1 !~ /^(content|milter|ladder|webhook|redis)_/ && $1 !~ /@/ && $1 != "reattached" { print $1 }'); do
	printf '%s\n' "$M0" | grep -q "^smtpguard_kernel_${name}_total " || missing+=" $name"
done
check_eq "${missing:-none}" none "every-kernel-counter-exported"
check_contains "$M0" "smtpguard_proxy_redis_errors_total 0" "redis-errors-exported"
check_contains "$M0" "smtpguard_redis_state 0" "redis-state-off-without-redis"

# --- the counters move with real mail
clean0=$(value "$M0" 'smtpguard_messages_total{verdict="accept",reason="clean"}')
content0=$(value "$M0" 'smtpguard_messages_total{verdict="reject",reason="content"}')
lat0=$(value "$M0" 'smtpguard_engine_latency_seconds_count{engine="content"}')
steer0=$(value "$M0" smtpguard_kernel_steered_total)
check_delivered "clean-message-delivered" vm1 "$MX4"
send_mail vm1 "$MX4" 25 10 --body "buy-cheap-pills-42 now"
check_match "$MAIL_OUT" "<\*\* 550 5\.7\.1 smtpguard: message refused" "pills-refused"
sessions_zero() {
	local t; t=$(scrape)
	[ "$(printf '%s\n' "$t" | awk '/^smtpguard_proxy_sessions\{/ { s += $2 } END { print s + 0 }')" = 0 ]
}
wait_for 10 sessions_zero
M1=$(scrape)
check_eq "$(value "$M1" 'smtpguard_messages_total{verdict="accept",reason="clean"}')" \
	$((clean0 + 1)) "clean-verdict-counted"
check_eq "$(value "$M1" 'smtpguard_messages_total{verdict="reject",reason="content"}')" \
	$((content0 + 1)) "content-refusal-counted"
check_eq "$(value "$M1" 'smtpguard_engine_latency_seconds_count{engine="content"}')" \
	$((lat0 + 2)) "content-latency-observed-twice"
check_eq "$(value "$M1" 'smtpguard_engine_up{engine="content"}')" 1 "content-engine-up"
check_ge "$(value "$M1" smtpguard_kernel_steered_total)" $((steer0 + 2)) "steered-syns-counted"
check_eq "$(printf '%s\n' "$M1" | awk '/^smtpguard_proxy_sessions\{/ { s += $2 } END { print s + 0 }')" 0 \
	"session-gauges-back-to-zero"
check_eq "$(value "$M1" 'smtpguard_engine_latency_seconds_bucket{engine="content",le="+Inf"}')" \
	"$(value "$M1" 'smtpguard_engine_latency_seconds_count{engine="content"}')" "inf-bucket-equals-count"

# --- other paths and methods
code() { lab_exec host curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@"; }
check_eq "$(code "http://$LISTEN/")" 404 "other-path-404"
check_eq "$(code -X POST "$URL")" 405 "post-405"
check_eq "$(lab_exec host bash -c "exec 3<>/dev/tcp/${LISTEN%:*}/${LISTEN#*:}; printf 'BLAH\r\n\r\n' >&3; head -c 12 <&3")" \
	"HTTP/1.1 400" "garbage-400"

# --- slow scrapers: 3 hold a request open; a scrape still answers at once
slowloris() {	# N SECONDS: N connections that send half a request and wait
	lab_exec host python3 -c '
import socket, sys, time
n, hold = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", 9425))
    s.sendall(b"GET /metr")
    socks.append(s)
t0 = time.time()
closed = 0
for s in socks:
    s.settimeout(max(0.1, hold - (time.time() - t0)))
    try:
        if s.recv(1) == b"":
            closed += 1
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed += 1
print("%d %.1f" % (closed, time.time() - t0))
' "$1" "$2"
}
slowloris 3 8 > "$LAB_DIR/slow.out" &
slow_pid=$!
sleep 0.5
t0=$(ms_now)
check_contains "$(scrape)" "smtpguard_proxy_listeners" "scrape-while-slow-scrapers-wait"
check_le $(( $(ms_now) - t0 )) 2000 "scrape-while-slow-scrapers-is-quick"
wait "$slow_pid"
read -r closed secs < "$LAB_DIR/slow.out"
check_eq "$closed" 3 "slow-scrapers-cut-at-the-deadline"
check_match "$secs" '^[4-6]\.' "slow-scrapers-cut-after-about-5s"
# past the cap (8), a connection is closed at once
slowloris 8 7 > "$LAB_DIR/slow.out" &
slow_pid=$!
sleep 0.5
check_eq "$(code "$URL")" 000 "over-the-cap-closed-at-once"
wait "$slow_pid"
check_eq "$(code "$URL")" 200 "after-the-deadline-served-again"

# --- smtpguardctl metrics is the same text (the kernel's non-SMTP count
# moves with any packet: left out)
same=0
for _ in 1 2 3; do
	a=$(scrape | grep -v '^smtpguard_kernel_non_smtp_total ')
	b=$("$CTL" --root "$ROOT" metrics | grep -v '^smtpguard_kernel_non_smtp_total ')
	[ "$a" = "$b" ] && { same=1; break; }
	sleep 0.5
done
check_eq "$same" 1 "ctl-metrics-equals-listener"

# --- top in a pseudo-terminal: redraws, sorts on a key, quits on q
TOP_OUT=$(python3 - "$CTL" "$ROOT" <<'EOF'
import os, pty, select, sys, time
ctl, root = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(ctl, [ctl, "--root", root, "top", "-d", "1"])
out = b""
def read_for(secs):
    global out
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                return
read_for(2.6)
frames = out.count(b"smtpguard top - ")
os.write(fd, b"d")
read_for(0.5)
sorted_drops = b"\x1b[7m     DROPS" in out
os.write(fd, b"q")
read_for(1.0)
deadline = time.time() + 3
status = None
while time.time() < deadline:
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        status = os.waitstatus_to_exitcode(st)
        break
    time.sleep(0.05)
if status is None:
    os.kill(pid, 9)
print("frames=%d drops=%d status=%s restored=%d alt=%d" % (frames, sorted_drops, status,
      out.rstrip().endswith(b"\x1b[?1049l"), b"\x1b[?1049h" in out))
EOF
)
check_match "$TOP_OUT" 'frames=([3-9]|[1-9][0-9])' "top-redraws-every-second"
check_contains "$TOP_OUT" "drops=1" "top-key-changes-the-sort-column"
check_contains "$TOP_OUT" "status=0" "top-quits-on-q"
check_contains "$TOP_OUT" "restored=1 alt=1" "top-restores-the-terminal"
# not a terminal: the one-shot list, as before
check_match "$("$CTL" --root "$ROOT" top | head -n 1)" '^SOURCE +CLASS +SYNS' "top-one-shot-when-piped"

# --- doctor
doctor() { lab_exec host "$CTL" "$@"; }
out=$(doctor doctor -c "$CONF"); rc=$?
check_match "$out" '^ok +bpffs: ' "doctor-bpffs-ok"
check_match "$out" '^ok +daemon: smtpguardd runs' "doctor-daemon-ok"
check_match "$out" '^ok +routing IPv4: ' "doctor-routing-ok"
check_match "$out" '^ok +listeners: 4 proxy listener' "doctor-listeners-ok"
check_match "$out" '^ok +bucket variant: the attached classifier uses the (lock-free|spin-locked)' \
	"doctor-bucket-variant-read-from-the-program"
check_match "$out" '^ok +descriptors: the daemon \(pid [0-9]+\) has [0-9]+ of [0-9]+' \
	"doctor-descriptors-daemon"
check_match "$out" "^ok +descriptors: the proxy \\(pid $(lab_sgd_proxy_pid main)\\) has [0-9]+ of [0-9]+" \
	"doctor-descriptors-of-the-proxy-process"
check_match "$out" '^ok +metrics: served' "doctor-metrics-listener-ok"
check_eq "$rc" "$(printf '%s\n' "$out" | grep -q '^FAIL' && echo 2 || { printf '%s\n' "$out" | grep -q '^WARN' && echo 1 || echo 0; })" \
	"doctor-exit-status-follows-the-worst"
json=$(doctor --json doctor -c "$CONF")
check_eq "$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(all(set(f) == {"level","check","found","todo"} for f in d["findings"]) and d["status"] in ("ok","warn","fail"))')" \
	True "doctor-json-shape"

# no pins
out=$(doctor doctor -c "$CONF" --root /sys/fs/bpf/sgt-metrics-nothing); rc=$?
check_match "$out" '^FAIL +bpffs: no pinned maps at /sys/fs/bpf/sgt-metrics-nothing' "doctor-no-pins-fails"
check_match "$out" '-> start smtpguardd' "doctor-no-pins-says-what-to-do"
check_eq "$rc" 2 "doctor-failure-exits-2"

# the routing rule gone
lab_exec host ip -4 rule del fwmark 0x5347 lookup 5347
out=$(doctor doctor -c "$CONF")
check_match "$out" "^FAIL +routing IPv4: no rule 'fwmark 0x5347 lookup 5347'" "doctor-missing-rule-fails"
check_match "$out" '-> restart smtpguardd .*ip -4 rule add fwmark 0x5347 lookup 5347' \
	"doctor-missing-rule-says-what-to-do"
lab_exec host ip -4 rule add fwmark 0x5347 lookup 5347

# sysctls off
lab_exec host sysctl -qw net.ipv4.ip_forward=0
lab_exec host sysctl -qw net.ipv4.conf.all.src_valid_mark=1
lab_exec host sysctl -qw net.ipv4.conf.uplink0.rp_filter=1
out=$(doctor doctor -c "$CONF"); rc=$?
check_match "$out" '^WARN +sysctl ip_forward: net.ipv4.ip_forward = 0' "doctor-ip-forward-off-warns"
check_match "$out" '-> sysctl -w net.ipv4.ip_forward=1' "doctor-ip-forward-says-what-to-do"
check_match "$out" '^FAIL +sysctl src_valid_mark: .*rp_filter on [^:]*uplink0' \
	"doctor-src-valid-mark-with-rp-filter-fails"
lab_exec host sysctl -qw net.ipv4.ip_forward=1
lab_exec host sysctl -qw net.ipv4.conf.all.src_valid_mark=0
lab_exec host sysctl -qw net.ipv4.conf.uplink0.rp_filter=0

# a dead milter, an expired and a soon expiring certificate (the doctor's
# own config: the daemon does not need them)
mkdir -p "$LAB_DIR/ca" && (
	cd "$LAB_DIR/ca" || exit 1
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=ca
	openssl req -new -newkey rsa:2048 -nodes -keyout mx.key -out mx.csr -subj /CN=mx
	: > index.txt; echo 01 > serial
	printf '[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' > ca.cnf
	openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in mx.csr -out expired.pem \
		-startdate 20200101000000Z -enddate 20210101000000Z
	openssl req -x509 -newkey rsa:2048 -nodes -keyout soon.key -out soon.pem -days 10 -subj /CN=mx
) >/dev/null 2>&1
cp "$CONF" "$LAB_DIR/doctor.conf"
printf 'milters = inet:127.0.0.1:1\ntls_cert_file = %s\ntls_key_file = %s\n' \
	"$LAB_DIR/ca/expired.pem" "$LAB_DIR/ca/mx.key" >> "$LAB_DIR/doctor.conf"
out=$(doctor doctor -c "$LAB_DIR/doctor.conf")
check_match "$out" '^FAIL +milter: inet:127.0.0.1:1 cannot be reached: Connection refused' \
	"doctor-dead-milter-fails"
check_match "$out" '-> start the milter at inet:127.0.0.1:1.*milter_default_action = tempfail' \
	"doctor-dead-milter-says-what-to-do"
check_match "$out" "^FAIL +certificate: $LAB_DIR/ca/expired.pem expired [0-9]+ day" \
	"doctor-expired-certificate-fails"
check_match "$out" '-> renew the certificate' "doctor-certificate-says-what-to-do"
sed -i "s|$LAB_DIR/ca/expired.pem|$LAB_DIR/ca/soon.pem|; s|$LAB_DIR/ca/mx.key|$LAB_DIR/ca/soon.key|; /^milters/d" \
	"$LAB_DIR/doctor.conf"
out=$(doctor doctor -c "$LAB_DIR/doctor.conf")
check_match "$out" "^WARN +certificate: $LAB_DIR/ca/soon.pem expires in (9|10) day" \
	"doctor-expiring-certificate-warns"

# the listener goes with the daemon
lab_stop_smtpguardd main >/dev/null 2>&1
check_eq "$(code "$URL")" 000 "listener-closed-at-stop"
out=$(doctor doctor -c "$CONF")
check_match "$out" '^FAIL +daemon: no smtpguardd runs' "doctor-daemon-stopped-fails"

e2e_finish
