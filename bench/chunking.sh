#!/usr/bin/env bash
# chunking.sh - one message, sent by DATA and by CHUNKING (BDAT), VM -> MX
# (a real Postfix that offers CHUNKING and discards what it takes), direct
# (the VM exempt: the baseline) and through smtpguard's proxy (the VM
# scanned, the content engine on): the time from connect to the MX's reply
# to the message, median of MSGS sequential sessions, for 100 KiB and 5 MiB
# messages (BDAT in 64 KiB chunks, as Exim cuts them). Rounds interleave the
# modes so that the machine's phases hit each alike. What it answers: does
# relaying the chunks as chunks (scanned on their way, the LAST withheld)
# cost more than DATA through the same proxy, and how much does each add
# to direct delivery.
#   bash bench/chunking.sh build
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lab/lab.sh"

BUILD=${1:-build}
PREFIX=sgbchunk-
MSGS=${CHUNK_MSGS:-20}
ROUNDS=${CHUNK_ROUNDS:-3}
SEND=$HERE/../selftests/tools/bdat_send.py

trap 'lab_down "$PREFIX"' EXIT
trap 'echo "chunking: interrupted" >&2; exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "chunking: must run as root" >&2; exit 1; }
lab_init "$BUILD" || exit 1
lab_up "$PREFIX" || { echo "chunking: lab_up failed" >&2; exit 1; }
lab_start_mx_postfix || { echo "chunking: the MX's Postfix did not start" >&2; exit 1; }
# what the MX takes is thrown away: the disk is not what is measured
postconf -c "$LAB_DIR/postfix-mx/etc" -e "virtual_transport = discard" "message_size_limit = 60000000" &&
	lab_exec mx timeout 30 postfix -c "$LAB_DIR/postfix-mx/etc" reload >/dev/null 2>&1
printf 'bench body /buy-cheap-pills-[0-9]+/i\n' > "$LAB_DIR/content.rules"
lab_start_smtpguardd main default_action=scan proxy=yes uplink=uplink0 \
	content_rules="$LAB_DIR/content.rules" smtp_message_size_limit=60000000 || exit 1
lab_ctl main rate-class set bench --conn 1000000/s --burst 1000000 >/dev/null
VM1=$(lab_vm_ip4 vm1)

for kib in 100 5120; do
	python3 - "$LAB_DIR/msg-$kib.eml" "$kib" <<'PY'
import sys
path, kib = sys.argv[1], int(sys.argv[2])
head = b"From: <bench@example.org>\r\nSubject: chunking bench\r\n\r\n"
line = b"a line of an ordinary message body, seventy-some octets long, and on\r\n"
with open(path, "wb") as f:
    f.write(head + line * (kib * 1024 // len(line)))
PY
done

# median_ms MODE VERB KIB: the median session time of MSGS messages
median_ms() {
	local mode=$1 verb=$2 kib=$3 out flag=
	[ "$verb" = data ] && flag=--data
	if [ "$mode" = direct ]; then
		lab_ctl main policy add "$VM1/32" exempt >/dev/null
	else
		lab_ctl main policy add "$VM1/32" scan --class bench >/dev/null
	fi
	# shellcheck disable=SC2086
	out=$(lab_exec vm1 timeout 600 python3 "$SEND" --server "$LAB_MX4" --from bench@example.org \
		--to sink@example.net --file "$LAB_DIR/msg-$kib.eml" --chunk 65536 $flag \
		--count "$MSGS" 2>&1 | grep '^TIMES ')
	[ -n "$out" ] || return 1
	echo "${out#TIMES }" | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

declare -A RUNS
for round in $(seq 1 "$ROUNDS"); do
	for kib in 100 5120; do
		for mode in direct smtpguard; do
			for verb in data bdat; do
				v=$(median_ms $mode $verb $kib) || v=NA
				RUNS[$mode-$verb-$kib]="${RUNS[$mode-$verb-$kib]:-} $v"
			done
		done
	done
	echo "# round $round done" >&2
done
steered=$(lab_ctl main stats --json 2>/dev/null | jq -r '.steered // empty' 2>/dev/null)

med() { echo "$1" | tr ' ' '\n' | grep -v '^$' | grep -v NA | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
for kib in 100 5120; do
	for verb in data bdat; do
		d=$(med "${RUNS[direct-$verb-$kib]}")
		g=$(med "${RUNS[smtpguard-$verb-$kib]}")
		echo "BENCH chunking ${kib}KiB $verb direct_ms=${d:-NA} smtpguard_ms=${g:-NA}" \
			"ratio=$(awk -v d="${d:-0}" -v g="${g:-0}" 'BEGIN { if (d > 0 && g > 0) printf "%.2f", g / d; else print "NA" }')" \
			"runs_direct=[${RUNS[direct-$verb-$kib]# }] runs_smtpguard=[${RUNS[smtpguard-$verb-$kib]# }]"
	done
	dd=$(med "${RUNS[smtpguard-data-$kib]}")
	bb=$(med "${RUNS[smtpguard-bdat-$kib]}")
	echo "BENCH chunking ${kib}KiB smtpguard_bdat_vs_data ratio=$(awk -v d="${dd:-0}" -v b="${bb:-0}" 'BEGIN { if (d > 0 && b > 0) printf "%.2f", b / d; else print "NA" }')"
done
echo "# sessions through the proxy: ${steered:-?} (${MSGS} a run, ${ROUNDS} rounds, 2 sizes, 2 verbs)"
