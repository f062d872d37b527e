#!/usr/bin/env bash
# run.sh - `make bench`: every benchmark in one run, each against a baseline
# measured in the same run. Not a test: it reports, it does not pass or fail.
# Usage: bash bench/run.sh BUILD_DIR
set -u
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "== smtpguard benchmarks ($(uname -r), $(nproc) cores, $(date -u +%FT%TZ))"
echo
echo "== per packet: BPF_PROG_TEST_RUN, ratio to an empty XDP program"
for bucket in lockfree locked; do
	echo "-- token bucket: $bucket"
	"$build"/bench/prog_run --bucket $bucket || echo "prog_run failed (exit $?)"
done
echo
echo "== forwarded bulk TCP through the host (iperf3), ratio to no filter"
bash "$here"/forwarding.sh "$build" || echo "forwarding.sh failed (exit $?)"
echo
echo "== SMTP messages/s through the proxy (smtp-source -> smtp-sink), ratio to direct"
bash "$here"/smtp_relay.sh "$build" || echo "smtp_relay.sh failed (exit $?)"
echo
echo "== CHUNKING: one message by DATA and by BDAT, direct and through the proxy (ms per message, ratio to direct)"
bash "$here"/chunking.sh "$build" || echo "chunking.sh failed (exit $?)"
echo
echo "== the shared store: msgs/s and added latency with Redis on, off and down; Redis operations per message"
bash "$here"/shared_redis.sh "$build" || echo "shared_redis.sh failed (exit $?)"
echo
echo "== scanning engines: msgs/s unscanned vs the built-in engine vs rspamd over milter, CPU and latency"
bash "$here"/scan_engines.sh "$build" || echo "scan_engines.sh failed (exit $?)"
echo
echo "== content rules: Hyperscan (the engine) vs PCRE2 on bodies"
"$build"/bench/scan_matcher || echo "scan_matcher failed (exit $?)"
echo
echo "== behaviour signals: note + assess per message at 100,000 senders, memory per sender"
"$build"/bench/scan_behaviour || echo "scan_behaviour failed (exit $?)"
echo
echo "== one session's scan and its worker's other sessions: NOOP round trips while a 1 MiB body is scanned"
"$build"/bench/scan_fairness || echo "scan_fairness failed (exit $?)"
echo
echo "== TLS: STARTTLS msgs/s and handshakes/s (passthrough, terminate), tunnel movers, ratio to direct"
bash "$here"/tls.sh "$build" || echo "tls.sh failed (exit $?)"
echo
echo "== memory per proxied session (10,000 idle, 1,000 mid-DATA; smtp_hold)"
bash "$here"/proxy_memory.sh "$build" || echo "proxy_memory.sh failed (exit $?)"
echo
echo "== attaching at scale: 500 interfaces at start, then a new VM's tap attached and its first SYN counted (target 1 s)"
bash "$here"/attach_scale.sh "$build" || echo "attach_scale.sh failed (exit $?)"
