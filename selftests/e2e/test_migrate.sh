#!/usr/bin/env bash
# test_migrate.sh - a pinned map whose definition changed between versions
# is carried over, not refused: the rate classes' map is put back as an
# older version would have made it (each value 8 bytes shorter, as before a
# field was added at its end); smtpguardd, started on it, makes the map
# anew beside it ("rate_classes:pending"), copies every entry as far as the
# old value goes, renames the new pin over the old one, and the operator's
# classes and policy are all still there and enforced. --check-upgrade sees
# the same change and leaves the pins alone.
#   bash selftests/e2e/test_migrate.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin migrate "${1:-}" 180

VM1=$(lab_vm_ip4 vm1)
lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
lab_start_smtpguardd main default_action=passthrough || e2e_abort "smtpguardd did not start"
ROOT=$(lab_sgd_root main)
lab_ctl main rate-class set slow --conn 30/min --burst 3 >/dev/null || fail rate-class-set "exit $?"
lab_ctl main rate-class set other --conn 600/min --burst 50 >/dev/null || fail rate-class-set-2 "exit $?"
lab_ctl main policy add "$VM1/32" passthrough --class slow >/dev/null || fail policy-add "exit $?"
classes_before=$(lab_ctl main rate-class list)
lab_stop_smtpguardd main || fail stop "smtpguardd did not stop"

# --- the map as an older smtpguard made it
info=$(bpftool -j map show pinned "$ROOT/rate_classes")
VALUE=$(echo "$info" | jq .bytes_value)
ENTRIES=$(echo "$info" | jq .max_entries)
OLD=$((VALUE - 8))
bpftool map create "$ROOT/old_rate" type array key 4 value "$OLD" entries "$ENTRIES" name rate_classes ||
	e2e_abort "bpftool map create failed"
bpftool -j map dump pinned "$ROOT/rate_classes" |
	jq -r --argjson n "$OLD" '.[] | select(any(.value[]; . != "0x00")) |
		"key " + (.key | join(" ")) + " value " + (.value[0:$n] | join(" "))' |
	while read -r line; do
		# shellcheck disable=SC2086 # the words are bpftool's arguments
		bpftool map update pinned "$ROOT/old_rate" $line || echo "update failed: $line" >&2
	done
mv "$ROOT/old_rate" "$ROOT/rate_classes" || e2e_abort "cannot put the older map in place"
check_eq "$(bpftool -j map show pinned "$ROOT/rate_classes" | jq .bytes_value)" "$OLD" "older-map-in-place"

# --- --check-upgrade: sees it, changes nothing
out=$(lab_exec host "${SG_DAEMON:-$LAB_BUILD/smtpguardd}" -c "$(lab_sgd_conf main)" --check-upgrade 2>&1)
check_contains "$out" "map rate_classes: its definition changed" "check-upgrade-sees-the-change"
check_eq "$(bpftool -j map show pinned "$ROOT/rate_classes" | jq .bytes_value)" "$OLD" \
	"check-upgrade-leaves-the-pin"
check_eq "$(ls "$ROOT" | grep -c pending)" 0 "check-upgrade-leaves-no-pending-pin"

# --- the daemon carries it over
lab_start_smtpguardd main || e2e_abort "smtpguardd did not start on the older map"
LOG=$(lab_sgd_log main)
check_match "$(cat "$LOG")" "map rate_classes: made anew, [0-9]+ entries carried over" \
	"entries-carried-over"
check_eq "$(bpftool -j map show pinned "$ROOT/rate_classes" | jq .bytes_value)" "$VALUE" \
	"new-definition-pinned"
check_eq "$(ls "$ROOT" | grep -c pending)" 0 "no-pending-pin-left"
check_eq "$(lab_ctl main rate-class list)" "$classes_before" "rate-classes-as-before"
check_contains "$(lab_ctl main policy list)" "$VM1/32" "policy-as-before"
# the class still decides: of 20 SYNs at once, its burst of 3 passes (a
# class lost in the move would be no limit: all 20)
drops0=$(show_get main "$VM1" syn_drops)
out=$(lab_exec vm1 timeout 10 "$LAB_BUILD/selftests/connect_burst" -r 20 -d 1 "$LAB_MX4" 25)
echo "# $out"
check_ge "$(show_get main "$VM1" syn_drops)" "$((${drops0:-0} + 15))" "carried-class-enforced"

e2e_finish
