#!/usr/bin/env bash
# deps.sh - installs every Debian package smtpguard builds, tests, demos and
# benchmarks with; a no-op when all are present. Why each:
#   clang llvm           BPF objects (clang -target bpf)
#   libbpf-dev bpftool   maps/programs, skeletons, `bpftool map dump`
#   libxdp-dev xdp-tools XDP attach that coexists with other XDP programs
#   libelf-dev zlib1g-dev pkg-config gcc make   libbpf's link deps, the build
#   libssl-dev           the proxy's TLS (terminate), OpenSSL
#   openssl libnet-ssleay-perl libio-socket-ssl-perl   the TLS tests: a test CA
#                        (openssl req/x509), swaks --tls and perl TLS clients
#   iproute2 nftables ethtool   namespaces, veths, tc, the lab
#   postfix swaks        real MTAs in the lab (receiving MX, crafted sessions)
#   proxsmtp             a peer `make bench` measures (transparent SMTP proxy)
#   iperf3               forwarding throughput benchmark
#   jq                   tests read smtpguardctl --json output
#   qemu-system-x86 busybox-static cpio xz-utils zstd debian-archive-keyring
#                        the verifier check on Debian's 5.10, 6.1 and 6.12 kernels
#                        (selftests/kernels: a static loader in a busybox initramfs)
#   libclang-rt-14-dev   ASan/UBSan runtime for `make check`
set -euo pipefail
pkgs=(clang llvm gcc make pkg-config libbpf-dev bpftool libxdp-dev xdp-tools
      libelf-dev zlib1g-dev libssl-dev iproute2 nftables ethtool postfix swaks proxsmtp
      iperf3 libclang-rt-14-dev procps psmisc jq qemu-system-x86 busybox-static cpio
      xz-utils zstd debian-archive-keyring openssl libnet-ssleay-perl libio-socket-ssl-perl)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The lab runs private Postfix instances; a system one started by the package
# would hold port 25 in the root namespace.
if command -v postfix >/dev/null && postfix status >/dev/null 2>&1; then
	postfix stop >/dev/null 2>&1 || true
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
echo "deps: all present"
