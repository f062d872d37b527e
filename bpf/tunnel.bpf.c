/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tunnel.bpf.c - the sockmap mover of passthrough tunnels (tls_mover =
 * sockmap, proxy/tunnel_sockmap.c). Both sockets of a tunnel sit in
 * tunnel_socks, keyed by their socket cookie, and tunnel_peers names each
 * one's peer; the stream verdict sends every segment a socket receives out
 * of its peer, so the bytes of a TLS session the proxy does not terminate
 * never reach userspace.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SG_MAX_TUNNEL_SOCKETS 65536

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SG_MAX_TUNNEL_SOCKETS);
	__type(key, __u64);		/* socket cookie */
	__type(value, __u64);		/* the socket (a descriptor from userspace) */
} tunnel_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SG_MAX_TUNNEL_SOCKETS);
	__type(key, __u64);		/* socket cookie */
	__type(value, __u64);		/* its peer's cookie */
} tunnel_peers SEC(".maps");

SEC("sk_skb/stream_verdict")
int tunnel_verdict(struct __sk_buff *skb)
{
	__u64 cookie, *peer;

	/* an empty segment (a FIN) redirected would break the peer's sending
	 * side (EPIPE); it stays here, and userspace passes the end on once
	 * every byte before it has gone out */
	if (skb->len == 0)
		return SK_PASS;
	cookie = bpf_get_socket_cookie(skb);
	peer = bpf_map_lookup_elem(&tunnel_peers, &cookie);
	if (!peer)
		return SK_PASS;
	return bpf_sk_redirect_hash(skb, &tunnel_socks, peer, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
