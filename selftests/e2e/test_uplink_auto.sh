#!/usr/bin/env bash
# test_uplink_auto.sh - proxy = yes without uplink: the uplink is found from
# the default route. In a bare namespace (smtpguardd --check-config): the
# IPv4 default route's interface; IPv6's when IPv4 has none; the lowest
# metric of two; on a bridge, its ports that are not VM-facing; no default
# route, or a bridge of VM ports only, is refused with what to set. In the
# lab, routed then bridged: the daemon finds uplink0 by itself and mail is
# proxied to the MX.
#   bash selftests/e2e/test_uplink_auto.sh build
source "$(dirname "$0")/lib.sh"
e2e_begin uplinkauto "${1:-}" 180

SGD=${SG_DAEMON:-$LAB_BUILD/smtpguardd}
MX4=$LAB_MX4

lab_up "$E2E_PREFIX" || e2e_abort "lab_up failed"
lab_start_mx_postfix || e2e_abort "Postfix did not start on the MX"
P=${E2E_PREFIX}probe
ip netns add "$P" || e2e_abort "cannot create $P"
in_p() { ip -n "$P" "$@"; }
# mk NAME: an interface (a veth: this kernel may have no dummy driver)
mk() { in_p link add "$1" type veth peer name "${1}p" && in_p link set "${1}p" up; }
cat > "$LAB_DIR/probe.conf" <<EOF
bpffs_root = /sys/fs/bpf/${E2E_PREFIX}probe
interfaces = tap*
proxy = yes
EOF
# check OUT-VAR: smtpguardd --check-config in the probe namespace
check_config() { nsenter --net="/run/netns/$P" -- "$SGD" -c "$LAB_DIR/probe.conf" --check-config 2>&1; }

in_p link set lo up
out=$(check_config); rc=$?
check_eq "$rc" 2 "no-default-route-refused"
check_match "$out" "proxy = yes needs 'uplink'.*no default route.*set uplink = " \
	"no-default-route-says-what-to-set"

mk phys0 && in_p link set phys0 up && in_p addr add 10.9.0.1/24 dev phys0
mk phys1 && in_p link set phys1 up && in_p addr add 10.9.1.1/24 dev phys1
in_p -6 addr add 2001:db8:99::1/64 dev phys1 nodad
in_p -6 route add default via 2001:db8:99::fe dev phys1
out=$(check_config); rc=$?
check_eq "$rc" 0 "ipv6-default-route-accepted"
check_contains "$out" "uplink: phys1, the interface of the IPv6 default route" "ipv6-default-route-found"

in_p route add default via 10.9.0.254 dev phys0 metric 200
in_p route add default via 10.9.1.254 dev phys1 metric 100
out=$(check_config)
check_contains "$out" "uplink: phys1, the interface of the IPv4 default route" "ipv4-lowest-metric-found"
in_p route del default via 10.9.1.254 dev phys1 metric 100
out=$(check_config)
check_contains "$out" "uplink: phys0, the interface of the IPv4 default route" "ipv4-preferred-over-ipv6"

# a bridge: its physical port, not the VMs' taps
in_p link add br9 type bridge && in_p link set br9 up
mk tapx0 && in_p link set tapx0 master br9 && in_p link set tapx0 up
mk tapx1 && in_p link set tapx1 master br9 && in_p link set tapx1 up
in_p addr add 10.9.2.1/24 dev br9
in_p route del default via 10.9.0.254 dev phys0
in_p route add default via 10.9.2.254 dev br9 onlink
out=$(check_config); rc=$?
check_eq "$rc" 2 "bridge-of-vm-ports-only-refused"
check_match "$out" "bridge br9, and every port of it matches interfaces.*set uplink = " \
	"bridge-of-vm-ports-only-says-what-to-set"
mk eno9 && in_p link set eno9 master br9 && in_p link set eno9 up
out=$(check_config); rc=$?
check_eq "$rc" 0 "bridge-with-a-physical-port-accepted"
check_contains "$out" "uplink: the ports of bridge br9 (the IPv4 default route's) that are not VM-facing: eno9" \
	"bridge-physical-port-found"
# an uplink set is used as it is
out=$(nsenter --net="/run/netns/$P" -- "$SGD" -c "$LAB_DIR/probe.conf" --set uplink=phys0 --check-config 2>&1)
check_eq "$(printf '%s' "$out" | grep -c 'uplink:')" 0 "uplink-set-not-looked-for"

# --- the lab, routed: the host's default route is on uplink0
lab_exec host ip route add default via "$MX4" dev uplink0 || fail "host-default-route" "cannot add"
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 ||
	e2e_abort "smtpguardd did not start without uplink"
check_contains "$(cat "$(lab_sgd_log main)")" "uplink: uplink0, the interface of the IPv4 default route" \
	"routed-lab-uplink-found"
check_eq "$(lab_sgd_attached uplink0)" tc "routed-lab-uplink-attached"
out=$(lab_exec host "${SG_CTL:-$LAB_BUILD/smtpguardctl}" doctor -c "$(lab_sgd_conf main)")
check_match "$out" '^ok +uplink found: uplink is not set; from the routes: uplink0, ' \
	"doctor-finds-the-uplink-too"
check_match "$out" '^ok +uplink: 1 uplink interface\(s\) match, the uplink program is attached' \
	"doctor-checks-the-found-uplink-attached"
st0=$(stat_get main steered)
check_delivered "routed-lab-mail-through-the-proxy" vm1 "$MX4"
check_gt "$(stat_get main steered)" "${st0:-0}" "routed-lab-mail-steered"
lab_stop_smtpguardd main

# --- bridged: br0's ports are the taps and uplink0
lab_make_bridged || e2e_abort "the bridged host could not be set up"
lab_start_smtpguardd main default_action=scan proxy=yes proxy_workers=2 ||
	e2e_abort "smtpguardd did not start without uplink (bridged)"
check_contains "$(cat "$(lab_sgd_log main)")" "uplink: the ports of bridge br0 (the IPv4 default route's) that are not VM-facing: uplink0" \
	"bridged-lab-uplink-port-found"
st0=$(stat_get main steered)
check_delivered "bridged-lab-mail-through-the-proxy" vm1 "$MX4"
check_gt "$(stat_get main steered)" "${st0:-0}" "bridged-lab-mail-steered"

e2e_finish
