#!/usr/bin/env bash
# test_cli.sh - smtpguardctl's and smtpguardd's error paths and output
# shapes: every bad argument exits 2 with one line on stderr naming what is
# wrong; config errors name the file, the line and the key; the JSON shapes
# of stats, show, top and policy list; block --for / unblock.
#   bash selftests/e2e/test_cli.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin cli "${1:-}" 120

# SG_CTL / SG_DAEMON: other builds of the binaries (run.sh passes the ASan ones)
CTL=${SG_CTL:-$LAB_BUILD/smtpguardctl}
SGD=${SG_DAEMON:-$LAB_BUILD/smtpguardd}
VM1=$(lab_vm_ip4 vm1)

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_sink 25 || e2e_abort "smtp-sink did not start"
lab_start_smtpguardd main default_action=scan || e2e_abort "smtpguardd did not start"
ROOT=$(lab_sgd_root main)

# ctl_error NAME KEYWORD-ERE ARGS...: smtpguardctl --root ROOT ARGS... exits 2
# (CTL_RC if set), prints nothing on stdout and one line on stderr that
# matches KEYWORD-ERE.
ctl_error() {
	local name=$1 kw=$2 rc out err want=${CTL_RC:-2}; shift 2
	out=$(timeout 10 "$CTL" --root "$ROOT" "$@" 2>"$LAB_DIR/ctl.err"); rc=$?
	err=$(cat "$LAB_DIR/ctl.err")
	if [ $rc -ne "$want" ]; then
		fail "$name" "'smtpguardctl $*' exited $rc, want $want (stderr: $err)"
	elif [ "$(printf '%s\n' "$err" | grep -c .)" -ne 1 ]; then
		fail "$name" "want one line on stderr, got $(printf '%s\n' "$err" | grep -c .): $err"
	elif ! printf '%s' "$err" | grep -qiE -- "$kw"; then
		fail "$name" "stderr does not name /$kw/: $err"
	elif [ -n "$out" ]; then
		fail "$name" "printed on stdout: $out"
	else
		pass "$name"
	fi
}

ctl_error "bad-prefix-octet" '10\.0\.0\.300' policy add 10.0.0.300/24 exempt
ctl_error "bad-prefix-host-bits" 'host bits|10\.0\.0\.0/24' policy add 10.0.0.1/24 exempt
ctl_error "bad-prefix-length" '/33|length|33' policy add 10.0.0.0/33 exempt
ctl_error "bad-prefix-v6" 'zz|prefix|address' policy add 2001:db8::zz/64 exempt
ctl_error "unknown-action" 'allow|action' policy add 10.0.0.0/24 allow
ctl_error "unknown-class" 'nosuchclass|class' policy add 10.0.0.0/24 scan --class nosuchclass
ctl_error "policy-del-bad-prefix" 'prefix|10\.0\.0\.300' policy del 10.0.0.300/24
ctl_error "zero-rate" 'rate|0/min' rate-class set x --conn 0/min --burst 5
ctl_error "bad-rate-unit" 'rate|5/fortnight|unit' rate-class set x --conn 5/fortnight --burst 5
ctl_error "bad-burst" 'burst' rate-class set x --conn 5/s --burst abc
ctl_error "negative-burst" 'burst' rate-class set x --conn 5/s --burst -1
ctl_error "missing-burst-value" 'burst|missing|value' rate-class set x --conn 5/s --burst
# a class's name is quoted in SMTP replies: no blank, no CR
ctl_error "rate-class-name-blank" "letters, digits, '\.', '_' and '-'" rate-class set 'bad name' --conn 5/s --burst 5
ctl_error "rate-class-name-cr" "letters, digits, '\.', '_' and '-'" rate-class set "$(printf 'bad\rname')" --conn 5/s --burst 5
ctl_error "bad-duration" 'duration|10x' block "$VM1" --for 10x
ctl_error "zero-duration" 'duration|0s' block "$VM1" --for 0s
ctl_error "bad-address-show" 'address|192\.0\.2\.300' show 192.0.2.300
ctl_error "bad-address-block" 'address|nothost' block nothost --for 10s
ctl_error "unknown-subcommand" 'frobnicate|command' frobnicate
ctl_error "unknown-policy-subcommand" 'frob|command|policy' policy frob
ctl_error "missing-args-policy-add" 'missing|needs|prefix|action' policy add
ctl_error "missing-action" 'missing|needs|action' policy add 10.0.0.0/24
ctl_error "missing-args-show" 'missing|needs|addr' show
ctl_error "missing-command" 'missing|usage|command'
ctl_error "unknown-option" 'bogus|option' stats --bogus
ctl_error "bad-top-by" 'by|bytes' top --by bytes
ctl_error "bad-top-n" '-n|count|number|abc' top -n abc
ctl_error "extra-argument" 'extra|unexpected|argument|x' stats x

# --root where nothing is pinned
out=$(timeout 10 "$CTL" --root /sys/fs/bpf/sgt-cli-nothing-here stats 2>"$LAB_DIR/ctl.err"); rc=$?
err=$(cat "$LAB_DIR/ctl.err")
check_eq "$rc" 2 "root-nothing-pinned-exit-2"
check_eq "$(printf '%s\n' "$err" | grep -c .)" 1 "root-nothing-pinned-one-line"
check_match "$err" 'sgt-cli-nothing-here' "root-nothing-pinned-names-root"
out=$(timeout 10 "$CTL" --root "$LAB_DIR" stats 2>"$LAB_DIR/ctl.err"); rc=$?
check_eq "$rc" 2 "root-not-bpffs-exit-2"
[ -e /sys/fs/bpf/sgt-cli-nothing-here ] && fail "root-nothing-pinned-not-created" "the CLI created the directory"

# --- successful commands: exit 0, nothing on stderr
ctl_ok() {
	local name=$1 rc err; shift
	timeout 10 "$CTL" --root "$ROOT" "$@" >"$LAB_DIR/ctl.out" 2>"$LAB_DIR/ctl.err"; rc=$?
	err=$(cat "$LAB_DIR/ctl.err")
	if [ $rc -eq 0 ] && [ -z "$err" ]; then pass "$name"
	else fail "$name" "'smtpguardctl $*' exited $rc, stderr: $err"; fi
}
ctl_ok "rate-class-set" rate-class set bulk --conn 5/s --burst 3
ctl_ok "policy-add-class" policy add 10.0.0.0/24 passthrough --class bulk
ctl_ok "policy-add-v6" policy add 2001:db8:99::/48 block
ctl_ok "policy-list" policy list
ctl_ok "policy-del" policy del 2001:db8:99::/48
# not a bad argument but a change that cannot be made: exit 1
CTL_RC=1 ctl_error "policy-del-missing-entry" '2001:db8:99::/48' policy del 2001:db8:99::/48
ctl_ok "stats" stats
ctl_ok "top" top

# --- JSON shapes
st=$(timeout 10 "$CTL" --root "$ROOT" --json stats 2>&1)
check_eq "$(echo "$st" | jq -c 'keys' 2>/dev/null)" \
	'["blocked","content_flagged","content_refused","exempt","fail_closed","fail_open","fast_path","ladder_flagged","ladder_refused","ladder_tempfail","learned","malformed","milter_fault_closed","milter_fault_connect","milter_fault_negotiation","milter_fault_protocol","milter_fault_timeout","milter_messages","milter_refused","non_smtp","passthrough","penalty_dropped","rate_dropped","reattached","redis_applied","redis_errors","redis_outages","redis_syncs","redis_untracked","rst_sent","scan","smtp","smtp_syn","spoofed","state_full","steered","uplink_steered","webhook_delivered","webhook_dropped","webhook_expired"]' \
	"stats-json-keys"
check_eq "$(echo "$st" | jq -r '[.[] | type] | unique | join(",")' 2>/dev/null)" number "stats-json-numbers"
# the interface documents both "--json CMD" and "stats --json"
st2=$(timeout 10 "$CTL" --root "$ROOT" stats --json 2>&1)
check_eq "$(echo "$st2" | jq -c 'keys' 2>/dev/null)" "$(echo "$st" | jq -c 'keys' 2>/dev/null)" "stats-trailing-json-option"
pl=$(timeout 10 "$CTL" --root "$ROOT" --json policy list 2>&1)
check_eq "$(echo "$pl" | jq -c '.[] | select(.prefix == "10.0.0.0/24")' 2>/dev/null)" \
	'{"prefix":"10.0.0.0/24","action":"passthrough","class":"bulk","tls":"passthrough","source":"transparent"}' \
	"policy-list-json-shape"
sh=$(timeout 10 "$CTL" --root "$ROOT" --json show 192.0.2.99 2>&1); rc=$?
check_eq "$rc" 0 "show-unknown-source-exit-0"
check_eq "$(echo "$sh" | jq -c '[.source, .known]' 2>/dev/null)" '["192.0.2.99",false]' "show-unknown-source-json"

# --- block --for / unblock on a live source (scan, default class)
check_eq "$(lab_tcp_probe vm1 "$LAB_MX4" 25 2)" open "connects-before-block"
ctl_ok "block-for" block "$VM1" --for 30s
sh=$(timeout 10 "$CTL" --root "$ROOT" --json show "$VM1" 2>&1)
check_eq "$(echo "$sh" | jq -c '[has("source","known","rate_class","syns","syn_drops","penalty_remaining_ms")] | all' 2>/dev/null)" \
	true "show-json-keys"
check_range "$(echo "$sh" | jq -r '.penalty_remaining_ms' 2>/dev/null)" 25000 30000 "block-for-penalty-remaining"
p0=$(stat_get main penalty_dropped)
check_eq "$(lab_tcp_probe vm1 "$LAB_MX4" 25 2)" timeout "blocked-source-refused"
check_gt "$(stat_get main penalty_dropped)" "${p0:-0}" "stats-penalty-dropped"
check_eq "$(lab_tcp_probe vm1 "$LAB_MX4" 8080 2)" refused "blocked-source-non-smtp-passes"
ctl_ok "unblock" unblock "$VM1"
check_eq "$(show_get main "$VM1" penalty_remaining_ms)" 0 "unblock-clears-penalty"
check_eq "$(lab_tcp_probe vm1 "$LAB_MX4" 25 2)" open "connects-after-unblock"
tp=$(timeout 10 "$CTL" --root "$ROOT" --json top 2>&1)
check_eq "$(echo "$tp" | jq -c '.[0] | [has("source","syns","syn_drops","rate_class")] | all' 2>/dev/null)" true "top-json-shape"

# --- smtpguardd's config errors: file, line and key named; no start
sgd_conf_error() {
	local name=$1 key=$2 line=$3 conf=$4 rc err; shift 4
	rc=0
	err=$(lab_exec host timeout 10 "$SGD" -c "$conf" "$@" 2>&1 </dev/null) || rc=$?
	if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
		fail "$name" "smtpguardd exited $rc, want a config error: $(echo "$err" | tail -n 2)"
		lab_exec host timeout 10 "$SGD" -c "$conf" --detach --purge >/dev/null 2>&1
		return
	fi
	if printf '%s' "$err" | grep -q '^smtpguardd: ready:'; then
		fail "$name" "smtpguardd got ready despite the error"; return
	fi
	local miss=()
	printf '%s' "$err" | grep -qF -- "$conf" || miss+=("file")
	[ -n "$line" ] && { printf '%s' "$err" | grep -qE -- "(:|line )$line([^0-9]|$)" || miss+=("line $line"); }
	printf '%s' "$err" | grep -qF -- "$key" || miss+=("key $key")
	if [ ${#miss[@]} -eq 0 ]; then pass "$name"
	else fail "$name" "message does not name ${miss[*]}: $err"; fi
}
BADROOT=/sys/fs/bpf/sgt-cli-badconf
echo "$BADROOT" >>"$LAB_DIR/bpffs_roots"
c=$LAB_DIR/bad-key.conf
printf '# test\nbpffs_root = %s\nbogus_key = 1\ninterfaces = tap*\n' "$BADROOT" >"$c"
sgd_conf_error "config-unknown-key" bogus_key 3 "$c"
c=$LAB_DIR/bad-attach.conf
printf 'bpffs_root = %s\ninterfaces = tap*\n\nattach = foo\n' "$BADROOT" >"$c"
sgd_conf_error "config-bad-attach" attach 4 "$c"
c=$LAB_DIR/bad-rate.conf
printf 'bpffs_root = %s\ndefault_conn_rate = 0/min\n' "$BADROOT" >"$c"
sgd_conf_error "config-zero-rate" default_conn_rate 2 "$c"
c=$LAB_DIR/bad-action.conf
printf 'bpffs_root = %s\ndefault_action = allow\n' "$BADROOT" >"$c"
sgd_conf_error "config-bad-action" default_action 2 "$c"
c=$LAB_DIR/proxy-no-uplink.conf
printf 'bpffs_root = %s\nproxy = yes\n' "$BADROOT" >"$c"
sgd_conf_error "config-proxy-without-uplink" uplink "" "$c"
c=$LAB_DIR/bad-steer.conf
printf 'bpffs_root = %s\nsteer_mode = sometimes\n' "$BADROOT" >"$c"
sgd_conf_error "config-bad-steer-mode" steer_mode 2 "$c"
c=$LAB_DIR/terminate-no-cert.conf
printf 'bpffs_root = %s\nproxy = no\ndefault_tls_mode = terminate\n' "$BADROOT" >"$c"
sgd_conf_error "config-terminate-without-certificate" tls_cert_file "" "$c"
c=$LAB_DIR/missing-cert.conf
printf 'bpffs_root = %s\nproxy = no\ntls_cert_file = /nonexistent/cert.pem\ntls_key_file = /nonexistent/key.pem\n' \
	"$BADROOT" >"$c"
sgd_conf_error "config-missing-certificate" /nonexistent/cert.pem "" "$c"
c=$LAB_DIR/bad-ciphers.conf
printf 'bpffs_root = %s\nproxy = no\ntls_ciphers = NO-SUCH-CIPHER\n' "$BADROOT" >"$c"
sgd_conf_error "config-bad-cipher-list" tls_ciphers "" "$c"
c=$LAB_DIR/bad-mover.conf
printf 'bpffs_root = %s\ntls_mover = pigeon\n' "$BADROOT" >"$c"
sgd_conf_error "config-bad-tls-mover" tls_mover 2 "$c"
c=$LAB_DIR/good.conf
printf 'bpffs_root = %s\ninterfaces = nomatch*\n' "$BADROOT" >"$c"
rc=0; err=$(lab_exec host timeout 10 "$SGD" -c "$c" --set attach=foo 2>&1 </dev/null) || rc=$?
check_ne "$rc" 0 "set-bad-value-fails"
check_match "$err" 'attach' "set-bad-value-names-key"
rc=0; err=$(lab_exec host timeout 10 "$SGD" -c "$LAB_DIR/no-such.conf" 2>&1 </dev/null) || rc=$?
check_ne "$rc" 0 "missing-config-fails"
check_match "$err" 'no-such\.conf' "missing-config-names-file"
check_eq "$(ls "$BADROOT" 2>/dev/null | wc -l)" 0 "config-error-pins-nothing"

e2e_finish
