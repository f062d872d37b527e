# shellcheck shell=bash
# layouts.sh - the interface plumbing of each hypervisor, rebuilt in the
# network-namespace lab (source lab/lab.sh first, then this file). Each
# layout_* function builds a host (the hypervisor), an MX and two VMs, vm1
# and vm2, whose host-side interfaces carry the names and sit in the
# bridges the hypervisor gives them; IPv4 only. The VM's end is always its
# eth0 (a veth standing in for the tap device: on the host both are an
# interface whose ingress is what the VM sends), but in the macvtap
# layout, where it is a tap wired to the macvtap's /dev/tapN.
#
#   layout                   VM interface on the host       where it sits
#   libvirt_bridged          vnet0, vnet1                   br0 (with uplink0), bridged
#   libvirt_nat              vnet0, vnet1                   virbr0 192.168.122.1/24, NAT out uplink0
#   libvirt_routed           vnet0, vnet1                   virbr1 192.0.2.1/24, routed
#   proxmox                  tap100i0, tap101i0             vmbr0 (with uplink0), bridged
#   proxmox_fw               tap100i0 in fwbr100i0,         fwln100i0 in fwbr100i0 ==
#                            tap101i0 in fwbr101i0          fwpr100p0 in vmbr0 (with uplink0)
#   openstack_lb             tap<port-id>                   brq<net-id> (with uplink0), bridged
#   openstack_hybrid         tap<port-id> in qbr<port-id>   qvb<port-id> == qvo<port-id> in
#                                                           br-int (a Linux bridge here: no OVS)
#   macvtap                  macvtap0, macvtap1             on eno1 (bridge mode); the VM is a
#                                                           tap wired to /dev/tapN (tap_wire)
#
# In the bridged layouts the MX's namespace is also the VMs' gateway
# (192.0.2.1) on the same layer-2 segment, as in lab_make_bridged.
#
#   source lab/lab.sh; source lab/layouts.sh
#   lab_init build; trap 'lab_down sgt-x-' EXIT
#   layout_up sgt-x- proxmox_fw        # or any layout above
#   echo "${LAYOUT_VM_IF[vm1]} ${LAYOUT_VM_IP[vm1]}"   # tap100i0 192.0.2.11
#   layout_many_taps 500 tap-s          # 500 more VM-facing veths on the host

declare -gA LAYOUT_VM_IF=() LAYOUT_VM_IP=()
LAYOUT_NAME=
LAYOUT_LIST="libvirt_bridged libvirt_nat libvirt_routed proxmox proxmox_fw openstack_lb openstack_hybrid macvtap"

# The OpenStack names: 11 characters of the port's (network's) UUID.
LAYOUT_OS_PORT1=3f2a9c1e-7b
LAYOUT_OS_PORT2=8d04b6aa-51
LAYOUT_OS_NET=5d1e0c22-4a

lh() { ip -n "$(lab_ns host)" "$@"; }

# layout__base PREFIX: host and MX, uplink0 routed (host 198.51.100.1/24,
# MX 198.51.100.25/24 with its default route via the host); LAB_DIR.
layout__base() {
	local prefix=$1 h m
	LAB_PREFIX=$prefix
	if ip netns list | awk '{print $1}' | grep -q "^${prefix}"; then
		lab_down "$prefix"
		LAB_PREFIX=$prefix
	fi
	LAB_DIR=$(mktemp -d "/tmp/sglab-${prefix}XXXXXX") || return 1
	chmod 755 "$LAB_DIR"
	h=$(lab_ns host); m=$(lab_ns mx)
	lab_add_ns "$h" && lab_add_ns "$m" || return 1
	ip link add uplink0 netns "$h" type veth peer name eth0 netns "$m" &&
	ip -n "$h" link set uplink0 up &&
	ip -n "$h" addr add "$LAB_HOST_UP4/24" dev uplink0 &&
	ip -n "$m" link set eth0 up &&
	ip -n "$m" addr add "$LAB_MX4/24" dev eth0 &&
	ip -n "$m" -6 addr add "$LAB_MX6/64" dev eth0 nodad &&
	ip -n "$m" route add default via "$LAB_HOST_UP4" ||
		{ lab_log "cannot set up the uplink"; return 1; }
}

# layout__vm VM HOSTIF ADDR/LEN GW: the VM's namespace, its eth0 linked to
# HOSTIF in the host namespace (up, no address), a default route via GW.
layout__vm() {
	local vm=$1 ifc=$2 addr=$3 gw=$4 v
	v=$(lab_ns "$vm")
	lab_add_ns "$v" || return 1
	ip link add "$ifc" netns "$(lab_ns host)" type veth peer name eth0 netns "$v" &&
	ip -n "$v" link set eth0 up &&
	ip -n "$v" addr add "$addr" dev eth0 &&
	ip -n "$v" route add default via "$gw" dev eth0 &&
	lh link set "$ifc" up ||
		{ lab_log "cannot create $vm behind $ifc"; return 1; }
	LAYOUT_VM_IF[$vm]=$ifc
	LAYOUT_VM_IP[$vm]=${addr%/*}
}

# layout__bridge NAME: a Linux bridge on the host, up, no STP, no delay.
layout__bridge() {
	lh link add "$1" type bridge &&
	lh link set "$1" type bridge stp_state 0 forward_delay 0 &&
	lh link set "$1" up || { lab_log "cannot create bridge $1"; return 1; }
}

# layout__bridged_uplink BRIDGE: uplink0 becomes a port of BRIDGE, the host
# routes nothing, and the MX is also the VMs' gateway 192.0.2.1 on the
# segment (the VMs are 192.0.2.0/24).
layout__bridged_uplink() {
	local br=$1 m
	m=$(lab_ns mx)
	lh addr flush dev uplink0 &&
	lh link set uplink0 master "$br" &&
	ip -n "$m" route del default &&
	ip -n "$m" addr add "$LAB_GW4/24" dev eth0 ||
		{ lab_log "cannot bridge uplink0 into $br"; return 1; }
}

# layout__veth_pair A B: a veth pair on the host, both ends up.
layout__veth_pair() {
	lh link add "$1" type veth peer name "$2" && lh link set "$1" up && lh link set "$2" up ||
		{ lab_log "cannot create the veth pair $1/$2"; return 1; }
}

layout__routing_host() {
	lab_exec host sysctl -qw net.ipv4.ip_forward=1
}

layout_libvirt_bridged() {
	layout__bridge br0 && layout__bridged_uplink br0 &&
	layout__vm vm1 vnet0 192.0.2.11/24 "$LAB_GW4" && lh link set vnet0 master br0 &&
	layout__vm vm2 vnet1 192.0.2.12/24 "$LAB_GW4" && lh link set vnet1 master br0
}

# libvirt's default network: virbr0 192.168.122.1/24, the host masquerades
# what leaves by the uplink (libvirt's own nftables/iptables rules do this).
layout_libvirt_nat() {
	layout__routing_host && layout__bridge virbr0 &&
	lh addr add 192.168.122.1/24 dev virbr0 &&
	layout__vm vm1 vnet0 192.168.122.11/24 192.168.122.1 && lh link set vnet0 master virbr0 &&
	layout__vm vm2 vnet1 192.168.122.12/24 192.168.122.1 && lh link set vnet1 master virbr0 &&
	lab_exec host nft -f - <<'NFT' || { lab_log "cannot install the NAT rules"; return 1; }
table ip sglab_libvirt_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 oifname "uplink0" masquerade
	}
}
NFT
}

# libvirt's routed network: virbr1 carries the VMs' gateway; the MX's side
# routes back through the host (its default route), no NAT.
layout_libvirt_routed() {
	layout__routing_host && layout__bridge virbr1 &&
	lh addr add "$LAB_GW4/24" dev virbr1 &&
	layout__vm vm1 vnet0 192.0.2.11/24 "$LAB_GW4" && lh link set vnet0 master virbr1 &&
	layout__vm vm2 vnet1 192.0.2.12/24 "$LAB_GW4" && lh link set vnet1 master virbr1
}

# Proxmox VE without its firewall: tap{VMID}i{N} straight on vmbr0.
layout_proxmox() {
	layout__bridge vmbr0 && layout__bridged_uplink vmbr0 &&
	layout__vm vm1 tap100i0 192.0.2.11/24 "$LAB_GW4" && lh link set tap100i0 master vmbr0 &&
	layout__vm vm2 tap101i0 192.0.2.12/24 "$LAB_GW4" && lh link set tap101i0 master vmbr0
}

# Proxmox VE with the firewall on the VM's NIC: the tap sits in its own
# fwbr{VMID}i{N}, linked to vmbr0 by the veth pair fwln{VMID}i{N} (in fwbr)
# == fwpr{VMID}p{N} (in vmbr0), where iptables filters the bridged frames.
layout_proxmox_fw() {
	local id n vm
	layout__bridge vmbr0 && layout__bridged_uplink vmbr0 || return 1
	for id in 100 101; do
		n=$((id - 99)); vm=vm$n
		layout__bridge "fwbr${id}i0" &&
		layout__veth_pair "fwln${id}i0" "fwpr${id}p0" &&
		lh link set "fwln${id}i0" master "fwbr${id}i0" &&
		lh link set "fwpr${id}p0" master vmbr0 &&
		layout__vm "$vm" "tap${id}i0" "192.0.2.1$n/24" "$LAB_GW4" &&
		lh link set "tap${id}i0" master "fwbr${id}i0" || return 1
	done
}

# OpenStack Neutron's linuxbridge agent: tap<port> on brq<network> with the
# provider interface (uplink0 here).
layout_openstack_lb() {
	local br="brq$LAYOUT_OS_NET"
	layout__bridge "$br" && layout__bridged_uplink "$br" &&
	layout__vm vm1 "tap$LAYOUT_OS_PORT1" 192.0.2.11/24 "$LAB_GW4" &&
	lh link set "tap$LAYOUT_OS_PORT1" master "$br" &&
	layout__vm vm2 "tap$LAYOUT_OS_PORT2" 192.0.2.12/24 "$LAB_GW4" &&
	lh link set "tap$LAYOUT_OS_PORT2" master "$br"
}

# OpenStack's OVS hybrid plug (iptables firewall driver): tap<port> in
# qbr<port>, the veth pair qvb<port> (in qbr) == qvo<port> (an OVS port of
# br-int). br-int is a Linux bridge here: this kernel has no Open vSwitch
# datapath (CONFIG_OPENVSWITCH is not set). What smtpguard sees, the tap's
# ingress on a Linux bridge (qbr), is the same.
layout_openstack_hybrid() {
	local p n=0
	layout__bridge br-int && layout__bridged_uplink br-int || return 1
	for p in "$LAYOUT_OS_PORT1" "$LAYOUT_OS_PORT2"; do
		n=$((n + 1))
		layout__bridge "qbr$p" &&
		layout__veth_pair "qvb$p" "qvo$p" &&
		lh link set "qvb$p" master "qbr$p" &&
		lh link set "qvo$p" master br-int &&
		layout__vm "vm$n" "tap$p" "192.0.2.1$n/24" "$LAB_GW4" &&
		lh link set "tap$p" master "qbr$p" || return 1
	done
}

# libvirt's <interface type='direct'> (macvtap, bridge mode): each VM has a
# macvtapN on the host's NIC (eno1 here, a veth whose far end is the MX's
# eth1, the VMs' gateway 192.0.2.1), and QEMU reads and writes the
# macvtap's /dev/tapN. tap_wire plays QEMU: it copies frames between that
# device and a tap (the guest's NIC, eth0, with the macvtap's MAC) in the
# VM's namespace. The VM's frames are transmitted on macvtapN: they cross
# its TC egress and no ingress hook of the host.
layout_macvtap() {
	local m n mac idx dev
	m=$(lab_ns mx)
	ip link add eno1 netns "$(lab_ns host)" type veth peer name eth1 netns "$m" &&
	lh link set eno1 up && ip -n "$m" link set eth1 up &&
	ip -n "$m" addr add "$LAB_GW4/24" dev eth1 ||
		{ lab_log "cannot create the NIC eno1"; return 1; }
	for n in 0 1; do
		lh link add "macvtap$n" link eno1 type macvtap mode bridge &&
		lh link set "macvtap$n" up || { lab_log "cannot create macvtap$n on eno1"; return 1; }
		mac=$(lh -o link show "macvtap$n" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
		# sysfs as the host namespace sees it (ip netns exec mounts it)
		idx=$(ip netns exec "$(lab_ns host)" cat "/sys/class/net/macvtap$n/ifindex")
		dev=$(ip netns exec "$(lab_ns host)" cat "/sys/class/net/macvtap$n/macvtap/tap$idx/dev")
		[ -n "$mac" ] && [ -n "$dev" ] &&
		mknod "$LAB_DIR/tap$idx" c "${dev%:*}" "${dev#*:}" ||
			{ lab_log "cannot make the device node of macvtap$n (tap$idx)"; return 1; }
		layout__vm_on_tap "vm$((n + 1))" "macvtap$n" "$mac" "$LAB_DIR/tap$idx" \
			"192.0.2.1$((n + 1))/24" "$LAB_GW4" || return 1
	done
}

# layout__vm_on_tap VM HOSTIF MAC CHARDEV ADDR/LEN GW: the VM's namespace
# with a tap eth0 (MAC), wired to CHARDEV by tap_wire.
layout__vm_on_tap() {
	local vm=$1 ifc=$2 mac=$3 chardev=$4 addr=$5 gw=$6 v
	v=$(lab_ns "$vm")
	lab_add_ns "$v" &&
	ip -n "$v" tuntap add dev eth0 mode tap &&
	ip -n "$v" link set eth0 address "$mac" &&
	ip -n "$v" link set eth0 up &&
	ip -n "$v" addr add "$addr" dev eth0 &&
	ip -n "$v" route add default via "$gw" dev eth0 ||
		{ lab_log "cannot create $vm's tap"; return 1; }
	"$LAB_BUILD/selftests/tap_wire" "$chardev" "/run/netns/$v" eth0 \
		>>"$LAB_DIR/tap_wire-$vm.log" 2>&1 </dev/null &
	LAYOUT_VM_IF[$vm]=$ifc
	LAYOUT_VM_IP[$vm]=${addr%/*}
}

# layout_up PREFIX LAYOUT: host, MX and vm1, vm2 in LAYOUT's plumbing; waits
# until both VMs reach the MX.
layout_up() {
	local prefix=${1:?layout_up PREFIX LAYOUT} layout=${2:?layout_up PREFIX LAYOUT} vm
	case " $LAYOUT_LIST " in
	*" $layout "*) ;;
	*) lab_log "no layout '$layout' (one of: $LAYOUT_LIST)"; return 1 ;;
	esac
	LAYOUT_VM_IF=(); LAYOUT_VM_IP=(); LAYOUT_NAME=$layout
	layout__base "$prefix" || return 1
	"layout_$layout" || { lab_log "layout $layout could not be built"; return 1; }
	for vm in vm1 vm2; do
		layout_wait_reachable "$vm" || return 1
	done
}

# layout_wait_reachable VM: a TCP probe from VM to the MX's port 9 is
# answered (open or RST).
layout_wait_reachable() {
	for _ in $(seq 1 50); do
		lab__reached "$(lab_tcp_probe "$1" "$LAB_MX4" 9 1)" && return 0
		sleep 0.1
	done
	lab_log "$1 cannot reach the MX in layout $LAYOUT_NAME"
	return 1
}

# layout_many_taps N PREFIX: N veth pairs, PREFIX0..PREFIX{N-1} on the host
# (VM-facing names), their peers eth0..eth{N-1} in one namespace of their
# own ("vms"), all up; one `ip -batch` each side.
layout_many_taps() {
	local n=$1 p=$2 i f vms
	vms=$(lab_ns vms)
	[ -e "/run/netns/$vms" ] || lab_add_ns "$vms" || return 1
	f=$(mktemp)
	for ((i = 0; i < n; i++)); do
		echo "link add $p$i type veth peer name eth$i netns $vms"
		echo "link set $p$i up"
	done >"$f"
	lh -batch "$f" || { rm -f "$f"; lab_log "cannot create $n veth pairs"; return 1; }
	for ((i = 0; i < n; i++)); do
		echo "link set eth$i up"
	done >"$f"
	ip -n "$vms" -batch "$f" || { rm -f "$f"; lab_log "cannot bring the peers up"; return 1; }
	rm -f "$f"
}
