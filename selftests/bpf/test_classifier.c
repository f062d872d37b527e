// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * test_classifier.c - the classifier's packet tests, through BPF_PROG_TEST_RUN.
 *
 * Every case runs against both programs, smtpguard_xdp and smtpguard_tc, which
 * share one set of maps pinned below a private bpffs directory
 * (/sys/fs/bpf/sgtest-bpf-<pid>, removed at exit). Frames are built byte by
 * byte here; each case asserts the verdict, the change of every per-CPU
 * counter in the stats map and, where the source's state matters, its
 * src_state entry. Checksums of RST answers are verified by code of this file,
 * independent of the classifier's.
 *
 * Needs root. Runs in well under a second.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <smtpguard/maps.h>

#include "pinned.h"
#include "test.h"
#include "classifier_xdp.skel.h"
#include "classifier_tc.skel.h"

#define NS_PER_SEC 1000000000ULL
#define MAX_FRAME 512
#define MAX_EXT 12

/* TCP flag bits (byte 13 of the header) */
#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

#ifndef IPPROTO_HOPOPTS
#define IPPROTO_HOPOPTS 0
#endif
#ifndef IPPROTO_ROUTING
#define IPPROTO_ROUTING 43
#endif
#ifndef IPPROTO_FRAGMENT
#define IPPROTO_FRAGMENT 44
#endif
#ifndef IPPROTO_DSTOPTS
#define IPPROTO_DSTOPTS 60
#endif

/* ------------------------------------------------------------------ */
/* Frame construction                                                  */
/* ------------------------------------------------------------------ */

static const uint8_t MAC_SENDER[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t MAC_GATEWAY[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe };

struct frame_opts {
	int family;		/* 4 or 6; 0 builds an ARP request */
	int vlans;		/* VLAN tags before the ethertype (0..3) */
	uint16_t tpid[3];	/* TPID of each tag, outermost first; 0 = 0x8100 */
	const char *src, *dst;	/* addresses; NULL = DEF_SRC4/DEF_DST4 or the v6 ones */
	uint8_t ip_proto;	/* 0 = TCP; IPPROTO_UDP builds a UDP header */
	int ip_opt_words;	/* IPv4 options in 32-bit words: ihl = 5 + this */
	uint16_t frag;		/* IPv4 flags+fragment offset field, host order */
	int n_ext;		/* IPv6 extension headers, in order */
	uint8_t ext[MAX_EXT];
	uint16_t ext_frag;	/* IPv6 fragment header: offset << 3 | M */
	uint16_t sport;		/* 0 = 49152 */
	uint16_t dport;		/* 0 = 25 */
	uint8_t flags;		/* TCP flags; 0 = SYN */
	int tcp_opt_len;	/* bytes of TCP options, a multiple of 4 */
	int payload;		/* bytes after the TCP/UDP header */
	uint32_t seq;		/* 0 = 0x11223344 */
	int pad_to;		/* 0 = pad to the Ethernet minimum of 60 bytes */
};

struct frame {
	uint8_t b[MAX_FRAME];
	int len;
	int l3;			/* offset of the IP (or ARP) header */
	int l4;			/* offset of the TCP/UDP header */
	int l4_end;		/* end of the TCP header with its options */
};

#define DEF_SRC4 "203.0.113.10"
#define DEF_DST4 "198.18.0.25"
#define DEF_SRC6 "2001:db8:1::10"
#define DEF_DST6 "2001:db8:ffff::25"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The Internet checksum (RFC 1071), big-endian 16-bit words. */
static uint32_t csum_add(uint32_t sum, const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Sum of the TCP/UDP pseudo header. */
static uint32_t pseudo_sum(int family, const uint8_t *l3, uint8_t proto, uint32_t l4_len)
{
	uint32_t sum = 0;

	if (family == 4)
		sum = csum_add(sum, l3 + 12, 8);
	else
		sum = csum_add(sum, l3 + 8, 32);
	sum += proto;
	sum += l4_len >> 16;
	sum += l4_len & 0xffff;
	return sum;
}

static void parse_addr(int family, const char *s, uint8_t *out)
{
	if (inet_pton(family == 4 ? AF_INET : AF_INET6, s, out) != 1) {
		fprintf(stderr, "test_classifier: bad address in the test itself: %s\n", s);
		exit(2);
	}
}

static int ext_len(uint8_t type)
{
	switch (type) {
	case IPPROTO_HOPOPTS:
		return 16;	/* hdr ext len 1: the parser must use the field */
	case IPPROTO_AH:
		return 24;	/* payload len 4: (4 + 2) * 4 */
	default:
		return 8;
	}
}

/* Builds a valid frame (correct lengths and checksums) from opts. Tests that
 * need an inconsistent header patch the bytes afterwards at f->l3 / f->l4. */
static void make_frame(struct frame *f, const struct frame_opts *o)
{
	uint8_t *b = f->b;
	uint8_t proto = o->ip_proto ? o->ip_proto : IPPROTO_TCP;
	int off, l4_hdr, l4_len, i;
	int pad_to = o->pad_to ? o->pad_to : 60;

	memset(f, 0, sizeof(*f));
	memcpy(b, MAC_GATEWAY, 6);
	memcpy(b + 6, MAC_SENDER, 6);
	off = 12;
	for (i = 0; i < o->vlans; i++) {
		put16(b + off, o->tpid[i] ? o->tpid[i] : 0x8100);
		put16(b + off + 2, (uint16_t)(100 + i));	/* VLAN id */
		off += 4;
	}
	if (o->family == 0) {
		put16(b + off, 0x0806);
		off += 2;
		f->l3 = off;
		put16(b + off, 1);		/* Ethernet */
		put16(b + off + 2, 0x0800);
		b[off + 4] = 6;
		b[off + 5] = 4;
		put16(b + off + 6, 1);		/* request */
		memcpy(b + off + 8, MAC_SENDER, 6);
		parse_addr(4, DEF_SRC4, b + off + 14);
		parse_addr(4, DEF_DST4, b + off + 24);
		off += 28;
		f->l4 = f->l4_end = off;
		f->len = off < pad_to ? pad_to : off;
		return;
	}
	put16(b + off, o->family == 4 ? 0x0800 : 0x86dd);
	off += 2;
	f->l3 = off;

	l4_hdr = proto == IPPROTO_TCP ? 20 + o->tcp_opt_len : 8;
	l4_len = l4_hdr + o->payload;

	if (o->family == 4) {
		int ihl = 5 + o->ip_opt_words;

		b[off] = (uint8_t)(0x40 | ihl);
		put16(b + off + 2, (uint16_t)(ihl * 4 + l4_len));
		put16(b + off + 4, 0x1234);
		put16(b + off + 6, o->frag);
		b[off + 8] = 64;
		b[off + 9] = proto;
		parse_addr(4, o->src ? o->src : DEF_SRC4, b + off + 12);
		parse_addr(4, o->dst ? o->dst : DEF_DST4, b + off + 16);
		for (i = 20; i < ihl * 4; i++)
			b[off + i] = 1;			/* NOP */
		if (ihl > 5) {				/* Router Alert first */
			b[off + 20] = 148;
			b[off + 21] = 4;
		}
		put16(b + off + 10, csum_fold(csum_add(0, b + off, ihl * 4)));
		off += ihl * 4;
	} else {
		int ext_total = 0;

		for (i = 0; i < o->n_ext; i++)
			ext_total += ext_len(o->ext[i]);
		put32(b + off, 0x60012345);		/* version 6, flow label */
		put16(b + off + 4, (uint16_t)(ext_total + l4_len));
		b[off + 6] = o->n_ext ? o->ext[0] : proto;
		b[off + 7] = 64;
		parse_addr(6, o->src ? o->src : DEF_SRC6, b + off + 8);
		parse_addr(6, o->dst ? o->dst : DEF_DST6, b + off + 24);
		off += 40;
		for (i = 0; i < o->n_ext; i++) {
			int len = ext_len(o->ext[i]);

			b[off] = i + 1 < o->n_ext ? o->ext[i + 1] : proto;
			switch (o->ext[i]) {
			case IPPROTO_FRAGMENT:
				put16(b + off + 2, o->ext_frag);
				put32(b + off + 4, 0xabcdef01);	/* identification */
				break;
			case IPPROTO_AH:
				b[off + 1] = (uint8_t)(len / 4 - 2);
				put32(b + off + 4, 0x100);	/* SPI */
				put32(b + off + 8, 1);		/* sequence */
				break;
			case IPPROTO_ROUTING:
				b[off + 1] = (uint8_t)(len / 8 - 1);
				b[off + 2] = 253;		/* experimental type */
				b[off + 3] = 0;			/* segments left */
				break;
			default:				/* hop-by-hop, destination */
				b[off + 1] = (uint8_t)(len / 8 - 1);
				b[off + 2] = 1;			/* PadN */
				b[off + 3] = (uint8_t)(len - 4);
				break;
			}
			off += len;
		}
	}

	f->l4 = off;
	if (proto == IPPROTO_TCP) {
		uint8_t flags = o->flags ? o->flags : F_SYN;

		put16(b + off, o->sport ? o->sport : 49152);
		put16(b + off + 2, o->dport ? o->dport : 25);
		put32(b + off + 4, o->seq ? o->seq : 0x11223344);
		put32(b + off + 8, (flags & F_ACK) ? 0x55667788 : 0);
		b[off + 12] = (uint8_t)((5 + o->tcp_opt_len / 4) << 4);
		b[off + 13] = flags;
		put16(b + off + 14, 64240);
		for (i = 0; i < o->tcp_opt_len; i++)
			b[off + 20 + i] = 1;		/* NOP */
		if (o->tcp_opt_len >= 4) {		/* MSS 1460 first */
			b[off + 20] = 2;
			b[off + 21] = 4;
			put16(b + off + 22, 1460);
		}
		for (i = 0; i < o->payload; i++)
			b[off + l4_hdr + i] = (uint8_t)"EHLO x\r\n"[i % 8];
		f->l4_end = off + l4_hdr;
		put16(b + off + 16, csum_fold(pseudo_sum(o->family, b + f->l3, proto, l4_len) +
					      csum_add(0, b + off, l4_len)));
	} else {
		put16(b + off, o->sport ? o->sport : 49152);
		put16(b + off + 2, o->dport ? o->dport : 25);
		put16(b + off + 4, (uint16_t)l4_len);
		f->l4_end = off + 8;
		put16(b + off + 6, csum_fold(pseudo_sum(o->family, b + f->l3, proto, l4_len) +
					     csum_add(0, b + off, l4_len)));
	}
	off += l4_len;
	f->len = off < pad_to ? pad_to : off;
	if (f->len > MAX_FRAME) {
		fprintf(stderr, "test_classifier: frame too long in the test itself\n");
		exit(2);
	}
}

/* ------------------------------------------------------------------ */
/* Maps, programs, running                                             */
/* ------------------------------------------------------------------ */

static char pin_dir[64];
static struct classifier_xdp *xdp_skel;
static struct classifier_tc *tc_skel;
static int stats_fd = -1, src_state_fd = -1, settings_fd = -1, rate_fd = -1;
static int policy4_fd = -1, policy6_fd = -1;
static int ncpus;
static uint64_t *percpu_buf;

/* 1: the objects are loaded with the lock-free bucket on the coarse clock */
static __u8 lockfree_bucket;

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* the classifier's clock: bpf_ktime_get_coarse_ns() or bpf_ktime_get_ns() */
	clock_gettime(lockfree_bucket ? CLOCK_MONOTONIC_COARSE : CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* Removes every pin below our private directory, then the directory. Only
 * this program's own directory is ever touched. */
static void remove_pins(void)
{
	if (pin_dir[0])
		sg_bpffs_purge(pin_dir);
}

static void cleanup(void)
{
	classifier_tc__destroy(tc_skel);
	tc_skel = NULL;
	classifier_xdp__destroy(xdp_skel);
	xdp_skel = NULL;
	remove_pins();
	pin_dir[0] = 0;
}

static void on_signal(int sig)
{
	remove_pins();
	signal(sig, SIG_DFL);
	raise(sig);
}

enum verdict { V_PASS = 0, V_DROP, V_RST, V_OTHER, V_EINVAL };

struct prog {
	const char *name;	/* "xdp" or "tc": the prefix of every check */
	int fd;
	int xdp;
};

static const char *verdict_name(const struct prog *p, int v)
{
	static const char *xdp_names[] = { "XDP_PASS", "XDP_DROP", "XDP_TX", "other", "-EINVAL" };
	static const char *tc_names[] = { "TC_ACT_UNSPEC/OK", "TC_ACT_SHOT", "TC_ACT_REDIRECT",
					  "other", "-EINVAL" };

	return p->xdp ? xdp_names[v] : tc_names[v];
}

static int verdict_of(const struct prog *p, uint32_t retval)
{
	if (p->xdp) {
		switch (retval) {
		case XDP_PASS: return V_PASS;
		case XDP_DROP: return V_DROP;
		case XDP_TX: return V_RST;
		}
	} else {
		switch (retval) {
		case TC_ACT_UNSPEC: return V_PASS;	/* on to the next filter */
		case TC_ACT_OK: return V_PASS;
		case TC_ACT_SHOT: return V_DROP;
		case TC_ACT_REDIRECT: return V_RST;
		}
	}
	return V_OTHER;
}


/* Expected change of every counter; all others must stay unchanged. */
struct sw {
	uint64_t c[SG_STAT__COUNT];
};

#define SW(...) (&(const struct sw){ .c = { __VA_ARGS__ } })
#define S_NONE SW(0)
#define S_NON_SMTP SW([SG_STAT_NON_SMTP] = 1)
#define S_MALFORMED SW([SG_STAT_MALFORMED] = 1)
#define S_SCAN_SYN SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1)
#define S_SCAN_OTHER SW([SG_STAT_SMTP] = 1, [SG_STAT_SCAN] = 1)
#define S_SCAN_RATE SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1, \
		       [SG_STAT_RATE_DROPPED] = 1)
#define S_SCAN_PENALTY SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1, \
			  [SG_STAT_PENALTY_DROPPED] = 1)
#define S_PT_SYN SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_PASSTHROUGH] = 1)
#define S_PT_RATE SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_PASSTHROUGH] = 1, \
		     [SG_STAT_RATE_DROPPED] = 1)
#define S_EXEMPT_SYN SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_EXEMPT] = 1)
#define S_EXEMPT_OTHER SW([SG_STAT_SMTP] = 1, [SG_STAT_EXEMPT] = 1)
#define S_BLOCK_SYN SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_BLOCKED] = 1)
#define S_BLOCK_OTHER SW([SG_STAT_SMTP] = 1, [SG_STAT_BLOCKED] = 1)

static void stats_read(uint64_t *out)
{
	for (uint32_t k = 0; k < SG_STAT__COUNT; k++) {
		out[k] = 0;
		if (bpf_map_lookup_elem(stats_fd, &k, percpu_buf))
			continue;
		for (int c = 0; c < ncpus; c++)
			out[k] += percpu_buf[c];
	}
}

struct result {
	int err;		/* bpf_prog_test_run_opts()'s return, 0 or -errno */
	uint32_t retval;
	int verdict;		/* enum verdict */
	uint8_t out[MAX_FRAME];	/* the frame after the program (data_out) */
	uint32_t out_len;
	uint64_t delta[SG_STAT__COUNT];
};

static void run_len(const struct prog *p, const struct frame *f, int len, struct result *r)
{
	uint64_t before[SG_STAT__COUNT], after[SG_STAT__COUNT];
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = f->b,
		.data_size_in = (uint32_t)len,
		.data_out = r->out,
		.data_size_out = sizeof(r->out),
		.repeat = 1,
	);

	memset(r, 0, sizeof(*r));
	stats_read(before);
	r->err = bpf_prog_test_run_opts(p->fd, &opts);
	stats_read(after);
	r->retval = opts.retval;
	r->out_len = opts.data_size_out;
	r->verdict = r->err == -EINVAL ? V_EINVAL : r->err ? V_OTHER : verdict_of(p, r->retval);
	for (int k = 0; k < SG_STAT__COUNT; k++)
		r->delta[k] = after[k] - before[k];
}

static void describe_delta(const uint64_t *delta, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = 0;
	for (int k = 0; k < SG_STAT__COUNT; k++) {
		if (!delta[k])
			continue;
		used += snprintf(buf + used, len - used, "%s%s+%llu", used ? " " : "",
				 sg_stat_name((int)k), (unsigned long long)delta[k]);
		if (used >= len)
			return;
	}
	if (!used)
		snprintf(buf, len, "none");
}

static bool delta_equal(const uint64_t *delta, const struct sw *want)
{
	return memcmp(delta, want->c, sizeof(want->c)) == 0;
}

/* Two checks: the verdict, then every counter. */
static void expect_result(const struct prog *p, const struct result *r, int want,
			  const struct sw *want_stats, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void expect_result(const struct prog *p, const struct result *r, int want,
			  const struct sw *want_stats, const char *fmt, ...)
{
	char what[200], name[256], detail[400], got[160], wanted[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);

	snprintf(name, sizeof(name), "%s: %s", p->name, what);
	if (r->err)
		snprintf(detail, sizeof(detail), "BPF_PROG_TEST_RUN failed: %s", strerror(-r->err));
	else
		snprintf(detail, sizeof(detail), "got %s (%u), want %s",
			 verdict_name(p, r->verdict), r->retval, verdict_name(p, want));
	test_report(!r->err && r->verdict == want, name, detail);

	snprintf(name, sizeof(name), "%s: %s (counters)", p->name, what);
	describe_delta(r->delta, got, sizeof(got));
	describe_delta(want_stats->c, wanted, sizeof(wanted));
	snprintf(detail, sizeof(detail), "counters changed by [%s], want [%s]", got, wanted);
	test_report(!r->err && delta_equal(r->delta, want_stats), name, detail);
}

/* Builds the frame of opts, runs it and checks verdict and counters. */
static void check(const struct prog *p, const struct frame_opts *o, int want,
		  const struct sw *want_stats, const char *what, struct result *out)
{
	struct frame f;
	struct result r;

	make_frame(&f, o);
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, want, want_stats, "%s", what);
	if (out)
		*out = r;
}

/* ---- maps ---- */

static struct sg_src_key src_key(const char *addr)
{
	struct sg_src_key k;

	memset(&k, 0, sizeof(k));
	if (strchr(addr, ':')) {
		parse_addr(6, addr, k.addr);
	} else {
		k.addr[10] = 0xff;
		k.addr[11] = 0xff;
		parse_addr(4, addr, k.addr + 12);
	}
	return k;
}

static int state_get(const char *addr, struct sg_src_state *st)
{
	struct sg_src_key k = src_key(addr);

	memset(st, 0, sizeof(*st));
	return bpf_map_lookup_elem_flags(src_state_fd, &k, st, BPF_F_LOCK);
}

static void state_del(const char *addr)
{
	struct sg_src_key k = src_key(addr);

	bpf_map_delete_elem(src_state_fd, &k);
}

static int state_put(const char *addr, const struct sg_src_state *st)
{
	struct sg_src_key k = src_key(addr);

	return bpf_map_update_elem(src_state_fd, &k, st, BPF_F_LOCK);
}

static struct sg_settings base_settings(void)
{
	struct sg_settings s;

	memset(&s, 0, sizeof(s));
	s.smtp_ports[0] = 25;
	s.smtp_ports[1] = 587;
	s.default_action = SG_ACTION_SCAN;
	s.default_rate_class = SG_DEFAULT_RATE_CLASS;
	s.default_tls_mode = SG_TLS_PASSTHROUGH;
	s.default_source_mode = SG_SOURCE_TRANSPARENT;
	s.refuse_mode = SG_REFUSE_DROP;
	s.malformed_mode = SG_MALFORMED_DROP;
	/* IPv6 senders by whole address, unless a test cuts them to a prefix */
	s.v6_source_prefix = 128;
	memset(s.v6_sender_mask, 0xff, sizeof(s.v6_sender_mask));
	return s;
}

static int put_settings(const struct sg_settings *s)
{
	uint32_t zero = 0;
	int err = bpf_map_update_elem(settings_fd, &zero, s, BPF_ANY);

	if (err)
		test_report(false, "settings map update", strerror(-err));
	return err;
}

static int put_rate_class(uint32_t slot, const char *name, uint64_t interval, uint32_t burst)
{
	struct sg_rate_class rc;

	memset(&rc, 0, sizeof(rc));
	snprintf(rc.name, sizeof(rc.name), "%s", name);
	rc.conn_interval_ns = interval;
	rc.conn_burst = burst;
	return bpf_map_update_elem(rate_fd, &slot, &rc, BPF_ANY);
}

static int put_policy(const char *addr, unsigned int plen, uint8_t action, uint8_t rate_class)
{
	struct sg_policy pol = { .action = action, .rate_class = rate_class };

	if (strchr(addr, ':')) {
		struct sg_lpm_v6_key k = { .prefixlen = plen };

		parse_addr(6, addr, k.addr);
		return bpf_map_update_elem(policy6_fd, &k, &pol, BPF_ANY);
	} else {
		struct sg_lpm_v4_key k = { .prefixlen = plen };

		parse_addr(4, addr, k.addr);
		return bpf_map_update_elem(policy4_fd, &k, &pol, BPF_ANY);
	}
}

/* Rate classes and policy prefixes of the whole test. */
#define CLASS_BURST3	1	/* "burst3": one SYN per second, 3 back to back */
#define CLASS_UNNAMED	5	/* never configured: falls back to slot 0 */
#define CLASS_CONC	2	/* "conc": 1/h, burst 1000: the concurrency test */

#define BLOCK4		"192.0.2.0"		/* /24 block */
#define EXEMPT4		"198.51.100.0"		/* /25 exempt, rate class burst3 */
#define PASSTHRU4	"198.51.100.128"	/* /25 passthrough */
#define SCAN4		"100.64.0.0"		/* /24 scan, class 0 */
#define LPM_BLOCK4	"10.1.0.0"		/* /16 block ... */
#define LPM_EXEMPT4	"10.1.2.0"		/* ... with a /24 exempt inside */
#define RATE_SCAN4	"10.9.0.0"		/* /16 scan, burst3 */
#define RATE_PT4	"10.8.0.0"		/* /16 passthrough, burst3 */
#define FALLBACK4	"10.7.0.0"		/* /16 scan, unnamed class 5 */
#define FALLBACK4B	"10.7.1.0"		/* /24 scan, class 200 (out of range) */
#define BLOCK6		"2001:db8:bad::"	/* /48 block ... */
#define EXEMPT6		"2001:db8:bad:1::"	/* ... with a /64 exempt inside */
#define RATE_SCAN6	"2001:db8:5::"		/* /48 scan, burst3 */
#define CONC4		"10.6.0.0"		/* /16 scan, class conc */

#define CONC_BURST	1000

static int configure(void)
{
	struct sg_settings s = base_settings();
	int err = 0;

	err |= put_settings(&s);
	/* slot 0 "default": effectively unlimited for the tests (1 ms, burst 10^6) */
	err |= put_rate_class(SG_DEFAULT_RATE_CLASS, "default", 1000000ULL, 1000000);
	err |= put_rate_class(CLASS_BURST3, "burst3", NS_PER_SEC, 3);
	err |= put_policy(BLOCK4, 24, SG_ACTION_BLOCK, 0);
	err |= put_policy(EXEMPT4, 25, SG_ACTION_EXEMPT, CLASS_BURST3);
	err |= put_policy(PASSTHRU4, 25, SG_ACTION_PASSTHROUGH, 0);
	err |= put_policy(SCAN4, 24, SG_ACTION_SCAN, 0);
	err |= put_policy(LPM_BLOCK4, 16, SG_ACTION_BLOCK, 0);
	err |= put_policy(LPM_EXEMPT4, 24, SG_ACTION_EXEMPT, 0);
	err |= put_policy(RATE_SCAN4, 16, SG_ACTION_SCAN, CLASS_BURST3);
	err |= put_policy(RATE_PT4, 16, SG_ACTION_PASSTHROUGH, CLASS_BURST3);
	err |= put_policy(FALLBACK4, 16, SG_ACTION_SCAN, CLASS_UNNAMED);
	err |= put_policy(FALLBACK4B, 24, SG_ACTION_SCAN, 200);
	err |= put_policy(BLOCK6, 48, SG_ACTION_BLOCK, 0);
	err |= put_policy(EXEMPT6, 64, SG_ACTION_EXEMPT, 0);
	err |= put_policy(RATE_SCAN6, 48, SG_ACTION_SCAN, CLASS_BURST3);
	err |= put_rate_class(CLASS_CONC, "conc", 3600 * NS_PER_SEC, CONC_BURST);
	err |= put_policy(CONC4, 16, SG_ACTION_SCAN, CLASS_CONC);
	return err;
}

/* ------------------------------------------------------------------ */
/* Parse paths                                                         */
/* ------------------------------------------------------------------ */

static void test_parse_paths(const struct prog *p)
{
	struct sg_src_state before, after;
	char what[160];
	struct frame f;
	struct result r;

	check(p, &(struct frame_opts){ .family = 0 }, V_PASS, S_NON_SMTP,
	      "ARP request is passed as non-SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 4, .ip_proto = IPPROTO_UDP }, V_PASS,
	      S_NON_SMTP, "IPv4 UDP to port 25 is passed as non-SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 4, .dport = 80 }, V_PASS, S_NON_SMTP,
	      "IPv4 TCP SYN to port 80 is passed as non-SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 4, .dport = 80, .flags = F_ACK }, V_PASS,
	      S_NON_SMTP, "IPv4 TCP ACK to port 80 is passed as non-SMTP", NULL);

	state_get(DEF_SRC4, &before);
	check(p, &(struct frame_opts){ .family = 4, .tcp_opt_len = 20 }, V_PASS, S_SCAN_SYN,
	      "IPv4 TCP/25 SYN from an unmatched source is scanned and passed", NULL);
	ASSERT_EQ(state_get(DEF_SRC4, &after), 0,
		  p->xdp ? "xdp: SYN to 25 creates the source's src_state entry"
			 : "tc: SYN to 25 creates the source's src_state entry");
	ASSERT_EQ(after.syns - before.syns, 1,
		  p->xdp ? "xdp: src_state syns counts the SYN to 25"
			 : "tc: src_state syns counts the SYN to 25");
	ASSERT_EQ(after.rate_class, SG_DEFAULT_RATE_CLASS,
		  p->xdp ? "xdp: unmatched source uses the default rate class"
			 : "tc: unmatched source uses the default rate class");

	check(p, &(struct frame_opts){ .family = 4, .flags = F_SYN | 0x40 | 0x80 }, V_PASS,
	      S_SCAN_SYN, "IPv4 TCP/25 SYN with ECE|CWR (ECN setup) counts as a SYN", NULL);
	check(p, &(struct frame_opts){ .family = 4, .flags = F_ACK | F_PSH, .payload = 16 },
	      V_PASS, S_SCAN_OTHER, "IPv4 TCP/25 data segment is passed (not a SYN)", NULL);
	check(p, &(struct frame_opts){ .family = 4, .vlans = 1 }, V_PASS, S_SCAN_SYN,
	      "IPv4 TCP/25 SYN behind one 802.1Q tag is classified", NULL);
	check(p, &(struct frame_opts){ .family = 4, .vlans = 1, .tpid = { 0x88a8 } }, V_PASS,
	      S_SCAN_SYN, "IPv4 TCP/25 SYN behind one 802.1ad tag is classified", NULL);
	check(p, &(struct frame_opts){ .family = 4, .vlans = 2, .tpid = { 0x88a8, 0x8100 } },
	      V_PASS, S_SCAN_SYN,
	      "IPv4 TCP/25 SYN behind two tags (802.1ad + 802.1Q) is classified", NULL);
	check(p, &(struct frame_opts){ .family = 4, .vlans = 2, .tpid = { 0x8100, 0x8100 } },
	      V_PASS, S_SCAN_SYN,
	      "IPv4 TCP/25 SYN behind two 802.1Q tags is classified", NULL);
	check(p, &(struct frame_opts){ .family = 4, .vlans = 2, .dport = 80 }, V_PASS,
	      S_NON_SMTP, "IPv4 TCP/80 behind two tags is passed as non-SMTP", NULL);
	/* Only two tags are walked: the third one's TPID is taken as the ethertype. */
	check(p, &(struct frame_opts){ .family = 4, .vlans = 3 }, V_PASS, S_NON_SMTP,
	      "IPv4 TCP/25 SYN behind three tags is not parsed (passed as non-SMTP)", NULL);

	for (int words = 1; words <= 10; words++) {
		snprintf(what, sizeof(what),
			 "IPv4 TCP/25 SYN with options (ihl %d) is classified", 5 + words);
		check(p, &(struct frame_opts){ .family = 4, .ip_opt_words = words }, V_PASS,
		      S_SCAN_SYN, what, NULL);
	}
	check(p, &(struct frame_opts){ .family = 4, .vlans = 2, .ip_opt_words = 10, .dport = 80 },
	      V_PASS, S_NON_SMTP,
	      "IPv4 TCP/80 with 40 bytes of options behind two tags is non-SMTP", NULL);

	check(p, &(struct frame_opts){ .family = 4, .frag = 0x2000 }, V_PASS, S_SCAN_SYN,
	      "IPv4 first fragment (MF, offset 0) of a TCP/25 SYN is classified", NULL);
	check(p, &(struct frame_opts){ .family = 4, .frag = 185 }, V_PASS, S_NON_SMTP,
	      "IPv4 later fragment (offset 1480) is passed as non-SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 4, .frag = 0x2000 | 1 }, V_PASS, S_NON_SMTP,
	      "IPv4 later fragment (MF, offset 8) is passed as non-SMTP", NULL);

	check(p, &(struct frame_opts){ .family = 4, .dport = 587 }, V_PASS, S_SCAN_SYN,
	      "IPv4 SYN to configured port 587 is classified as SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 4, .dport = 2525 }, V_PASS, S_NON_SMTP,
	      "IPv4 SYN to unconfigured port 2525 is non-SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 4, .sport = 25, .dport = 40000 }, V_PASS,
	      S_NON_SMTP, "IPv4 SYN from source port 25 (to 40000) is non-SMTP", NULL);

	/* IPv6 */
	state_get(DEF_SRC6, &before);
	check(p, &(struct frame_opts){ .family = 6, .tcp_opt_len = 20 }, V_PASS, S_SCAN_SYN,
	      "IPv6 TCP/25 SYN from an unmatched source is scanned and passed", NULL);
	ASSERT_EQ(state_get(DEF_SRC6, &after), 0,
		  p->xdp ? "xdp: IPv6 SYN to 25 has a src_state entry"
			 : "tc: IPv6 SYN to 25 has a src_state entry");
	ASSERT_EQ(after.syns - before.syns, 1,
		  p->xdp ? "xdp: src_state syns counts the IPv6 SYN"
			 : "tc: src_state syns counts the IPv6 SYN");
	check(p, &(struct frame_opts){ .family = 6, .dport = 80 }, V_PASS, S_NON_SMTP,
	      "IPv6 TCP/80 SYN is passed as non-SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 6, .ip_proto = IPPROTO_UDP }, V_PASS,
	      S_NON_SMTP, "IPv6 UDP to port 25 is passed as non-SMTP", NULL);
	check(p, &(struct frame_opts){ .family = 6, .dport = 587, .vlans = 2,
				       .tpid = { 0x88a8 } },
	      V_PASS, S_SCAN_SYN, "IPv6 SYN to 587 behind two tags is classified", NULL);
	check(p, &(struct frame_opts){ .family = 6, .dport = 2525 }, V_PASS, S_NON_SMTP,
	      "IPv6 SYN to unconfigured port 2525 is non-SMTP", NULL);

	check(p, &(struct frame_opts){ .family = 6, .n_ext = 4, .ext_frag = 0x0001,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_ROUTING } },
	      V_PASS, S_SCAN_SYN,
	      "IPv6 SYN after hop-by-hop, dest-opts, fragment (first), routing is classified",
	      NULL);
	check(p, &(struct frame_opts){ .family = 6, .n_ext = 6, .ext_frag = 0x0001,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT,
			 IPPROTO_AH, IPPROTO_DSTOPTS } },
	      V_PASS, S_SCAN_SYN,
	      "IPv6 SYN after six extension headers incl. AH is classified", NULL);
	check(p, &(struct frame_opts){ .family = 6, .n_ext = 8,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
			 IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS } },
	      V_PASS, S_SCAN_SYN,
	      "IPv6 SYN after exactly 8 extension headers (the limit) is classified", NULL);
	check(p, &(struct frame_opts){ .family = 6, .n_ext = 9,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
			 IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
			 IPPROTO_DSTOPTS } },
	      V_DROP, S_MALFORMED,
	      "IPv6 chain of 9 extension headers is malformed and dropped", NULL);
	check(p, &(struct frame_opts){ .family = 6, .n_ext = 9, .dport = 80,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
			 IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
			 IPPROTO_DSTOPTS } },
	      V_DROP, S_MALFORMED,
	      "IPv6 chain of 9 extension headers is malformed whatever the port", NULL);
	check(p, &(struct frame_opts){ .family = 6, .n_ext = 2, .ext_frag = 185 << 3,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_FRAGMENT } },
	      V_PASS, S_NON_SMTP, "IPv6 later fragment (offset 1480) is passed as non-SMTP",
	      NULL);
	check(p, &(struct frame_opts){ .family = 6, .n_ext = 1, .ext_frag = 1 << 3 | 1,
		.ext = { IPPROTO_FRAGMENT } },
	      V_PASS, S_NON_SMTP, "IPv6 later fragment (M, offset 8) is passed as non-SMTP",
	      NULL);
	check(p, &(struct frame_opts){ .family = 6, .n_ext = 2, .ip_proto = IPPROTO_UDP,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS } },
	      V_PASS, S_NON_SMTP, "IPv6 UDP after extension headers is non-SMTP", NULL);

	/* A minimal frame without link padding (54 bytes) works too. */
	make_frame(&f, &(struct frame_opts){ .family = 4, .pad_to = 1 });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_PASS, S_SCAN_SYN,
		      "unpadded 54-byte IPv4 TCP/25 SYN is classified");
}

/* ------------------------------------------------------------------ */
/* Policy outcomes                                                     */
/* ------------------------------------------------------------------ */

static void name_check(const struct prog *p, bool ok, const char *detail, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void name_check(const struct prog *p, bool ok, const char *detail, const char *fmt, ...)
{
	char what[200], name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(name, sizeof(name), "%s: %s", p->name, what);
	test_report(ok, name, detail);
}

static void name_eq(const struct prog *p, long long got, long long want, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void name_eq(const struct prog *p, long long got, long long want, const char *fmt, ...)
{
	char what[200], detail[120];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(detail, sizeof(detail), "got %lld, want %lld", got, want);
	name_check(p, got == want, detail, "%s", what);
}

static void test_policy(const struct prog *p)
{
	struct sg_settings s;
	struct sg_src_state st;
	int i, ok;

	/* exempt: passed, never limited (its class is burst3), no state */
	state_del("198.51.100.5");
	for (i = 0, ok = 0; i < 6; i++) {
		char what[120];
		struct result r;

		snprintf(what, sizeof(what),
			 "SYN %d of 6 to 25 from exempt 198.51.100.0/25 is passed", i + 1);
		check(p, &(struct frame_opts){ .family = 4, .src = "198.51.100.5" }, V_PASS,
		      S_EXEMPT_SYN, what, &r);
		ok += r.verdict == V_PASS;
	}
	name_eq(p, ok, 6, "exempt source is never rate-limited (6 SYNs on a burst-3 class)");
	name_eq(p, state_get("198.51.100.5", &st), -ENOENT,
		"exempt source gets no src_state entry");
	check(p, &(struct frame_opts){ .family = 4, .src = "198.51.100.5", .flags = F_ACK },
	      V_PASS, S_EXEMPT_OTHER, "ACK to 25 from the exempt source is passed", NULL);

	/* passthrough: passed, counted, tracked */
	state_del("198.51.100.200");
	check(p, &(struct frame_opts){ .family = 4, .src = "198.51.100.200" }, V_PASS, S_PT_SYN,
	      "SYN to 25 from passthrough 198.51.100.128/25 is passed", NULL);
	name_eq(p, state_get("198.51.100.200", &st), 0,
		"passthrough source has a src_state entry");
	name_eq(p, (long long)st.syns, 1, "passthrough source's SYN is counted in src_state");
	check(p, &(struct frame_opts){ .family = 4, .src = "198.51.100.200", .flags = F_ACK },
	      V_PASS, SW([SG_STAT_SMTP] = 1, [SG_STAT_PASSTHROUGH] = 1),
	      "ACK to 25 from the passthrough source is passed", NULL);

	/* explicit scan */
	check(p, &(struct frame_opts){ .family = 4, .src = "100.64.0.9" }, V_PASS, S_SCAN_SYN,
	      "SYN to 25 from scan 100.64.0.0/24 is passed", NULL);

	/* block: every port-25 packet dropped, other ports untouched */
	state_del("192.0.2.7");
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.7" }, V_DROP, S_BLOCK_SYN,
	      "SYN to 25 from blocked 192.0.2.0/24 is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.7", .flags = F_ACK },
	      V_DROP, S_BLOCK_OTHER, "ACK to 25 from the blocked source is dropped too", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.7",
				       .flags = F_ACK | F_PSH, .payload = 30 },
	      V_DROP, S_BLOCK_OTHER, "data to 25 from the blocked source is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.7", .flags = F_SYN | F_ACK },
	      V_DROP, S_BLOCK_OTHER, "SYN+ACK to 25 from the blocked source is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.7", .dport = 587 },
	      V_DROP, S_BLOCK_SYN, "SYN to 587 from the blocked source is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.7", .dport = 443 },
	      V_PASS, S_NON_SMTP, "SYN to 443 from the blocked source is passed", NULL);
	/* maps.h: "syn_drops: of those, refused (rate, penalty, block)" */
	name_check(p, state_get("192.0.2.7", &st) == 0, "no src_state entry",
		   "blocked source's refused SYNs are recorded in src_state");
	name_eq(p, (long long)st.syns, 2, "blocked source's src_state syns counts its 2 SYNs");
	name_eq(p, (long long)st.syn_drops, 2,
		"blocked source's src_state syn_drops counts its 2 refused SYNs");

	/* the default for sources no prefix matches */
	check(p, &(struct frame_opts){ .family = 4, .src = "203.0.113.99" }, V_PASS, S_SCAN_SYN,
	      "SYN from an unmatched source gets default_action scan", NULL);
	s = base_settings();
	s.default_action = SG_ACTION_BLOCK;
	put_settings(&s);
	check(p, &(struct frame_opts){ .family = 4, .src = "203.0.113.99" }, V_DROP, S_BLOCK_SYN,
	      "SYN from an unmatched source with default_action block is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:77::1" }, V_DROP,
	      S_BLOCK_SYN, "IPv6 SYN from an unmatched source with default_action block is dropped",
	      NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "100.64.0.9" }, V_PASS, S_SCAN_SYN,
	      "a matched scan source is unaffected by default_action block", NULL);
	s.default_action = SG_ACTION_EXEMPT;
	put_settings(&s);
	check(p, &(struct frame_opts){ .family = 4, .src = "203.0.113.99" }, V_PASS,
	      S_EXEMPT_SYN, "SYN from an unmatched source with default_action exempt is passed",
	      NULL);
	s.default_action = SG_ACTION_PASSTHROUGH;
	put_settings(&s);
	check(p, &(struct frame_opts){ .family = 4, .src = "203.0.113.99" }, V_PASS, S_PT_SYN,
	      "SYN from an unmatched source with default_action passthrough is passed", NULL);
	/* default_rate_class applies to unmatched sources */
	s = base_settings();
	s.default_rate_class = CLASS_BURST3;
	put_settings(&s);
	state_del("203.0.113.98");
	for (i = 0; i < 3; i++) {
		char what[120];

		snprintf(what, sizeof(what),
			 "SYN %d within default_rate_class burst3 is passed", i + 1);
		check(p, &(struct frame_opts){ .family = 4, .src = "203.0.113.98" }, V_PASS,
		      S_SCAN_SYN, what, NULL);
	}
	check(p, &(struct frame_opts){ .family = 4, .src = "203.0.113.98" }, V_DROP, S_SCAN_RATE,
	      "4th SYN over default_rate_class burst3 is dropped", NULL);
	state_get("203.0.113.98", &st);
	name_eq(p, st.rate_class, CLASS_BURST3, "src_state records default_rate_class");
	s = base_settings();
	put_settings(&s);

	/* implicit TLS: a scan source's flow to 465 (one of smtp_ports) stays in
	 * the kernel as a passthrough one, counted and rate-limited */
	s.smtp_ports[2] = 465;
	s.implicit_tls_ports = 1u << 2;
	put_settings(&s);
	check(p, &(struct frame_opts){ .family = 4, .src = "100.64.0.9", .dport = 465 }, V_PASS,
	      S_PT_SYN, "SYN to implicit-TLS 465 from a scan source is a passthrough one", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "100.64.0.9", .dport = 465,
				       .flags = F_ACK }, V_PASS,
	      SW([SG_STAT_SMTP] = 1, [SG_STAT_PASSTHROUGH] = 1),
	      "ACK to implicit-TLS 465 from a scan source is a passthrough one", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "100.64.0.9" }, V_PASS, S_SCAN_SYN,
	      "SYN to 25 from the same scan source is still scanned", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.7", .dport = 465 }, V_DROP,
	      S_BLOCK_SYN, "SYN to implicit-TLS 465 from a blocked source is dropped", NULL);
	s.implicit_tls_ports = 0;
	put_settings(&s);
	check(p, &(struct frame_opts){ .family = 4, .src = "100.64.0.9", .dport = 465 }, V_PASS,
	      S_SCAN_SYN, "SYN to 465 not marked implicit TLS is scanned", NULL);
	s = base_settings();
	put_settings(&s);

	/* longest prefix wins */
	check(p, &(struct frame_opts){ .family = 4, .src = "10.1.2.3" }, V_PASS, S_EXEMPT_SYN,
	      "SYN from 10.1.2.3 (exempt /24 inside blocked /16) is passed", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "10.1.3.3" }, V_DROP, S_BLOCK_SYN,
	      "SYN from 10.1.3.3 (blocked /16, outside the exempt /24) is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "10.1.255.255" }, V_DROP, S_BLOCK_SYN,
	      "SYN from 10.1.255.255 (blocked /16) is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "10.2.0.1" }, V_PASS, S_SCAN_SYN,
	      "SYN from 10.2.0.1 (outside the /16) gets the default", NULL);

	/* IPv6 prefixes */
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:bad:2::7" }, V_DROP,
	      S_BLOCK_SYN, "IPv6 SYN from blocked 2001:db8:bad::/48 is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:bad:2::7", .flags = F_ACK },
	      V_DROP, S_BLOCK_OTHER, "IPv6 ACK to 25 from the blocked /48 is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:bad:1::7" }, V_PASS,
	      S_EXEMPT_SYN, "IPv6 SYN from exempt /64 inside the blocked /48 is passed", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:bae::1" }, V_PASS,
	      S_SCAN_SYN, "IPv6 SYN from just outside the blocked /48 gets the default", NULL);
	/* An IPv6 source in ::ffff:0:0/96 would share the IPv4 source's state
	 * (and the kernel's IPv6 input refuses it): malformed. */
	check(p, &(struct frame_opts){ .family = 6, .src = "::ffff:192.0.2.7" }, V_DROP,
	      S_MALFORMED, "IPv6 SYN from IPv4-mapped ::ffff:192.0.2.7 is malformed",
	      NULL);

	/* a policy naming an unconfigured rate class falls back to slot 0 */
	state_del("10.7.0.1");
	check(p, &(struct frame_opts){ .family = 4, .src = "10.7.0.1" }, V_PASS, S_SCAN_SYN,
	      "SYN from a source whose rate class is unnamed is passed", NULL);
	state_get("10.7.0.1", &st);
	name_eq(p, st.rate_class, SG_DEFAULT_RATE_CLASS,
		"unnamed rate class falls back to the default class in src_state");
	state_del("10.7.1.1");
	check(p, &(struct frame_opts){ .family = 4, .src = "10.7.1.1" }, V_PASS, S_SCAN_SYN,
	      "SYN from a source whose rate class is out of range is passed", NULL);
	state_get("10.7.1.1", &st);
	name_eq(p, st.rate_class, SG_DEFAULT_RATE_CLASS,
		"out-of-range rate class falls back to the default class in src_state");
}

/* ------------------------------------------------------------------ */
/* Rate limiting and penalties                                         */
/* ------------------------------------------------------------------ */

static void rate_burst(const struct prog *p, int family, const char *src, bool passthrough,
		       const char *label)
{
	const struct sw *ok = passthrough ? S_PT_SYN : S_SCAN_SYN;
	const struct sw *over = passthrough ? S_PT_RATE : S_SCAN_RATE;
	const struct sw *other = passthrough
		? SW([SG_STAT_SMTP] = 1, [SG_STAT_PASSTHROUGH] = 1) : S_SCAN_OTHER;
	struct sg_src_state st;
	char what[200];
	uint64_t t0, t1;

	state_del(src);
	t0 = now_ns();
	for (int i = 1; i <= 3; i++) {
		snprintf(what, sizeof(what), "%s SYN %d of burst 3 (1/s) is passed", label, i);
		check(p, &(struct frame_opts){ .family = family, .src = src }, V_PASS, ok, what,
		      NULL);
	}
	snprintf(what, sizeof(what), "%s SYN 4 over burst 3 (1/s) is dropped", label);
	check(p, &(struct frame_opts){ .family = family, .src = src }, V_DROP, over, what, NULL);
	snprintf(what, sizeof(what), "%s SYN 5 over burst 3 (1/s) is dropped", label);
	check(p, &(struct frame_opts){ .family = family, .src = src }, V_DROP, over, what, NULL);
	t1 = now_ns();

	snprintf(what, sizeof(what), "%s over-limit source has a src_state entry", label);
	name_check(p, state_get(src, &st) == 0, "lookup failed", "%s", what);
	snprintf(what, sizeof(what), "%s src_state syns counts all 5 SYNs", label);
	name_eq(p, (long long)st.syns, 5, what);
	snprintf(what, sizeof(what), "%s src_state syn_drops counts the 2 refused SYNs", label);
	name_eq(p, (long long)st.syn_drops, 2, what);
	snprintf(what, sizeof(what), "%s src_state rate_class is burst3's slot", label);
	name_eq(p, st.rate_class, CLASS_BURST3, what);
	snprintf(what, sizeof(what), "%s src_state first_seen <= last_seen, both in the test's time",
		 label);
	name_check(p, st.first_seen_ns >= t0 && st.first_seen_ns <= st.last_seen_ns &&
		   st.last_seen_ns <= t1, "timestamps outside [t0, t1]", "%s", what);
	/* 3 SYNs accepted at about t0: the next one is due 3 s later */
	snprintf(what, sizeof(what), "%s src_state tat_ns is about 3 s ahead", label);
	name_check(p, st.tat_ns >= t0 + 3 * NS_PER_SEC && st.tat_ns <= t1 + 3 * NS_PER_SEC,
		   "tat_ns outside [t0 + 3s, t1 + 3s]", "%s", what);
	snprintf(what, sizeof(what), "%s src_state has no penalty", label);
	name_eq(p, (long long)st.penalty_until_ns, 0, what);

	snprintf(what, sizeof(what), "%s ACK from the rate-limited source is passed", label);
	check(p, &(struct frame_opts){ .family = family, .src = src, .flags = F_ACK }, V_PASS,
	      other, what, NULL);
	snprintf(what, sizeof(what), "%s FIN+ACK from the rate-limited source is passed", label);
	check(p, &(struct frame_opts){ .family = family, .src = src, .flags = F_FIN | F_ACK },
	      V_PASS, other, what, NULL);
	snprintf(what, sizeof(what),
		 "%s SYN+ACK from the rate-limited source is passed (not a SYN)", label);
	check(p, &(struct frame_opts){ .family = family, .src = src, .flags = F_SYN | F_ACK },
	      V_PASS, other, what, NULL);
	snprintf(what, sizeof(what), "%s SYN to port 80 from the rate-limited source is passed",
		 label);
	check(p, &(struct frame_opts){ .family = family, .src = src, .dport = 80 }, V_PASS,
	      S_NON_SMTP, what, NULL);
	state_get(src, &st);
	snprintf(what, sizeof(what), "%s non-SYN packets leave src_state syns at 5", label);
	name_eq(p, (long long)st.syns, 5, what);

	/* once the bucket has refilled (tat in the past) a SYN passes again */
	st.tat_ns = now_ns() - NS_PER_SEC;
	state_put(src, &st);
	snprintf(what, sizeof(what), "%s SYN after the bucket refilled is passed", label);
	check(p, &(struct frame_opts){ .family = family, .src = src }, V_PASS, ok, what, NULL);
}

/* With v6_source_prefix 64, a VM's addresses within its /64 are one sender:
 * rotating them does not escape the bucket. */
static void test_v6_sender_prefix(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct sg_src_state st;

	s.v6_source_prefix = 64;
	memset(s.v6_sender_mask, 0, sizeof(s.v6_sender_mask));
	memset(s.v6_sender_mask, 0xff, 8);
	put_settings(&s);
	state_del("2001:db8:5:1::");
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:1::a" }, V_PASS, S_SCAN_SYN,
	      "/64 senders: SYN 1 from 2001:db8:5:1::a is passed", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:1::b" }, V_PASS, S_SCAN_SYN,
	      "/64 senders: SYN 2 from 2001:db8:5:1::b (same /64) is passed", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:1:ffff::c" }, V_PASS,
	      S_SCAN_SYN, "/64 senders: SYN 3 from 2001:db8:5:1:ffff::c (same /64) is passed",
	      NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:1::d" }, V_DROP, S_SCAN_RATE,
	      "/64 senders: SYN 4 from a fourth address of the /64 is over the burst of 3",
	      NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:2::a" }, V_PASS, S_SCAN_SYN,
	      "/64 senders: another /64 has its own bucket", NULL);
	name_check(p, state_get("2001:db8:5:1::", &st) == 0, "lookup failed",
		   "/64 senders: the state is kept under the /64");
	name_eq(p, (long long)st.syns, 4, "/64 senders: the /64's state counts all 4 SYNs");
	state_del("2001:db8:5:1::");
	state_del("2001:db8:5:2::");
	s = base_settings();
	put_settings(&s);
}

static void test_rate(const struct prog *p)
{
	struct sg_src_state st;
	const char *src = "203.0.113.50";
	uint64_t t;

	rate_burst(p, 4, "10.9.0.1", false, "scan 10.9.0.0/16:");
	rate_burst(p, 4, "10.8.0.1", true, "passthrough 10.8.0.0/16:");
	rate_burst(p, 6, "2001:db8:5::1", false, "scan 2001:db8:5::/48:");

	/* penalty in the future refuses SYNs (written under the lock) */
	state_del(src);
	memset(&st, 0, sizeof(st));
	t = now_ns();
	st.first_seen_ns = t;
	st.last_seen_ns = t;
	st.penalty_until_ns = t + 60 * NS_PER_SEC;
	name_eq(p, state_put(src, &st), 0, "penalty written to src_state with BPF_F_LOCK");
	check(p, &(struct frame_opts){ .family = 4, .src = src }, V_DROP, S_SCAN_PENALTY,
	      "SYN from a source penalised for 60 s more is dropped", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = src, .flags = F_ACK }, V_PASS,
	      S_SCAN_OTHER, "ACK from the penalised source is passed", NULL);
	state_get(src, &st);
	name_eq(p, (long long)st.syns, 1, "penalised SYN is counted in src_state syns");
	name_eq(p, (long long)st.syn_drops, 1, "penalised SYN is counted in src_state syn_drops");
	name_eq(p, (long long)st.penalty_until_ns, (long long)(t + 60 * NS_PER_SEC),
		"the classifier leaves penalty_until_ns alone");

	st.penalty_until_ns = now_ns() - NS_PER_SEC;
	state_put(src, &st);
	check(p, &(struct frame_opts){ .family = 4, .src = src }, V_PASS, S_SCAN_SYN,
	      "SYN from a source whose penalty ended 1 s ago is passed", NULL);
	state_get(src, &st);
	name_eq(p, (long long)st.syn_drops, 1, "an allowed SYN leaves syn_drops alone");

	/* a penalty also overrides an exhausted-or-not bucket on IPv6 */
	state_del("2001:db8:1::50");
	memset(&st, 0, sizeof(st));
	st.penalty_until_ns = now_ns() + 60 * NS_PER_SEC;
	state_put("2001:db8:1::50", &st);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:1::50" }, V_DROP,
	      S_SCAN_PENALTY, "IPv6 SYN from a penalised source is dropped", NULL);

	/* a penalty does not affect an exempt source (never limited) */
	state_del("198.51.100.6");
	memset(&st, 0, sizeof(st));
	st.penalty_until_ns = now_ns() + 60 * NS_PER_SEC;
	state_put("198.51.100.6", &st);
	check(p, &(struct frame_opts){ .family = 4, .src = "198.51.100.6" }, V_PASS,
	      S_EXEMPT_SYN, "SYN from an exempt source with a stale penalty is passed", NULL);
	state_del("198.51.100.6");
}

/* ------------------------------------------------------------------ */
/* refuse_mode rst                                                     */
/* ------------------------------------------------------------------ */

/* Checks that out is the RST|ACK answering the SYN in. */
static void check_rst(const struct prog *p, const struct frame *in, const struct result *r,
		      const char *label)
{
	const uint8_t *o = r->out, *i = in->b;
	int l3 = in->l3, l4 = in->l4, v4 = (i[l3] >> 4) == 4;
	uint32_t sum;
	bool ok;

	if (r->verdict != V_RST || r->out_len < (uint32_t)(l4 + 20)) {
		name_check(p, false, "no RST frame came back", "%s: RST frame returned", label);
		return;
	}
	name_eq(p, r->out_len, in->len, "%s: RST frame keeps the frame length", label);
	name_check(p, !memcmp(o, i + 6, 6) && !memcmp(o + 6, i, 6), "MACs not swapped",
		   "%s: RST swaps the MAC addresses", label);
	name_check(p, !memcmp(o + 12, i + 12, (size_t)(l3 - 12)), "VLAN tags/ethertype changed",
		   "%s: RST keeps VLAN tags and ethertype", label);
	if (v4) {
		ok = o[l3] == 0x45 && get16(o + l3 + 2) == 40 && o[l3 + 9] == IPPROTO_TCP &&
		     o[l3 + 8] > 0 && (get16(o + l3 + 6) & 0x3fff) == 0;
		name_check(p, ok, "bad version/ihl/tot_len/protocol/ttl/fragment",
			   "%s: RST IPv4 header is version 4, ihl 5, tot_len 40, TCP, unfragmented",
			   label);
		name_check(p, !memcmp(o + l3 + 12, i + l3 + 16, 4) &&
			   !memcmp(o + l3 + 16, i + l3 + 12, 4), "addresses not swapped",
			   "%s: RST swaps the IPv4 addresses", label);
		name_eq(p, csum_fold(csum_add(0, o + l3, 20)), 0, "%s: RST IPv4 header checksum verifies",
			label);
		sum = pseudo_sum(4, o + l3, IPPROTO_TCP, 20);
	} else {
		ok = (o[l3] >> 4) == 6 && get16(o + l3 + 4) == 20 && o[l3 + 6] == IPPROTO_TCP &&
		     o[l3 + 7] > 0;
		name_check(p, ok, "bad version/payload_len/nexthdr/hop_limit",
			   "%s: RST IPv6 header is version 6, payload_len 20, TCP", label);
		name_check(p, !memcmp(o + l3 + 8, i + l3 + 24, 16) &&
			   !memcmp(o + l3 + 24, i + l3 + 8, 16), "addresses not swapped",
			   "%s: RST swaps the IPv6 addresses", label);
		sum = pseudo_sum(6, o + l3, IPPROTO_TCP, 20);
	}
	name_check(p, get16(o + l4) == get16(i + l4 + 2) && get16(o + l4 + 2) == get16(i + l4),
		   "ports not swapped", "%s: RST swaps the ports", label);
	name_eq(p, get32(o + l4 + 4), 0, "%s: RST has seq 0", label);
	name_eq(p, get32(o + l4 + 8), (uint32_t)(get32(i + l4 + 4) + 1),
		"%s: RST acknowledges the SYN's seq + 1", label);
	name_eq(p, o[l4 + 12] >> 4, 5, "%s: RST has a 20-byte TCP header (doff 5)", label);
	name_eq(p, o[l4 + 13], F_RST | F_ACK, "%s: RST has exactly the flags RST|ACK", label);
	name_eq(p, csum_fold(sum + csum_add(0, o + l4, 20)), 0, "%s: RST TCP checksum verifies", label);
}

static void test_rst(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct frame f;
	struct result r;
	char label[64];

	s.refuse_mode = SG_REFUSE_RST;
	put_settings(&s);

	snprintf(label, sizeof(label), "blocked IPv4 SYN");
	make_frame(&f, &(struct frame_opts){ .family = 4, .src = "192.0.2.9", .tcp_opt_len = 20,
					     .seq = 0xfffffffe, .sport = 51234 });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_RST, SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1,
				       [SG_STAT_BLOCKED] = 1, [SG_STAT_RST_SENT] = 1),
		      "SYN from blocked 192.0.2.0/24 with refuse_mode rst is answered with an RST");
	check_rst(p, &f, &r, label);

	snprintf(label, sizeof(label), "blocked IPv4 SYN, seq wraps");
	make_frame(&f, &(struct frame_opts){ .family = 4, .src = "192.0.2.9", .seq = 0xffffffff });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_RST, SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1,
				       [SG_STAT_BLOCKED] = 1, [SG_STAT_RST_SENT] = 1),
		      "SYN with seq 0xffffffff from a blocked source is answered with an RST");
	check_rst(p, &f, &r, label);

	snprintf(label, sizeof(label), "blocked IPv4 SYN behind 2 tags");
	make_frame(&f, &(struct frame_opts){ .family = 4, .src = "192.0.2.9", .vlans = 2,
					     .tpid = { 0x88a8 }, .tcp_opt_len = 12 });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_RST, SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1,
				       [SG_STAT_BLOCKED] = 1, [SG_STAT_RST_SENT] = 1),
		      "blocked SYN behind two VLAN tags is answered with an RST");
	check_rst(p, &f, &r, label);

	snprintf(label, sizeof(label), "blocked IPv6 SYN");
	make_frame(&f, &(struct frame_opts){ .family = 6, .src = "2001:db8:bad:9::1",
					     .tcp_opt_len = 20, .seq = 12345 });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_RST, SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1,
				       [SG_STAT_BLOCKED] = 1, [SG_STAT_RST_SENT] = 1),
		      "IPv6 SYN from blocked 2001:db8:bad::/48 is answered with an RST");
	check_rst(p, &f, &r, label);

	/* over the rate: refused with an RST too */
	state_del("10.9.0.77");
	for (int i = 0; i < 3; i++) {
		snprintf(label, sizeof(label), "SYN %d within burst3 is passed in refuse_mode rst",
			 i + 1);
		check(p, &(struct frame_opts){ .family = 4, .src = "10.9.0.77" }, V_PASS,
		      S_SCAN_SYN, label, NULL);
	}
	snprintf(label, sizeof(label), "over-rate IPv4 SYN");
	make_frame(&f, &(struct frame_opts){ .family = 4, .src = "10.9.0.77", .tcp_opt_len = 8 });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_RST, SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1,
				       [SG_STAT_SCAN] = 1, [SG_STAT_RATE_DROPPED] = 1,
				       [SG_STAT_RST_SENT] = 1),
		      "SYN over the rate with refuse_mode rst is answered with an RST");
	check_rst(p, &f, &r, label);

	state_del("2001:db8:5::77");
	for (int i = 0; i < 3; i++) {
		snprintf(label, sizeof(label),
			 "IPv6 SYN %d within burst3 is passed in refuse_mode rst", i + 1);
		check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5::77" }, V_PASS,
		      S_SCAN_SYN, label, NULL);
	}
	snprintf(label, sizeof(label), "over-rate IPv6 SYN");
	make_frame(&f, &(struct frame_opts){ .family = 6, .src = "2001:db8:5::77", .vlans = 1 });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_RST, SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1,
				       [SG_STAT_SCAN] = 1, [SG_STAT_RATE_DROPPED] = 1,
				       [SG_STAT_RST_SENT] = 1),
		      "IPv6 SYN over the rate with refuse_mode rst is answered with an RST");
	check_rst(p, &f, &r, label);

	/* what is dropped rather than answered */
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.9", .payload = 20 }, V_DROP,
	      S_BLOCK_SYN, "blocked SYN with payload (TFO) is dropped, not answered", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:bad:9::1", .payload = 20 },
	      V_DROP, S_BLOCK_SYN, "blocked IPv6 SYN with payload is dropped, not answered", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.9", .ip_opt_words = 2 },
	      V_DROP, S_BLOCK_SYN, "blocked SYN with IPv4 options is dropped, not answered", NULL);
	check(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:bad:9::1", .n_ext = 1,
				       .ext = { IPPROTO_DSTOPTS } },
	      V_DROP, S_BLOCK_SYN,
	      "blocked IPv6 SYN with an extension header is dropped, not answered", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "192.0.2.9", .flags = F_ACK }, V_DROP,
	      S_BLOCK_OTHER, "blocked ACK is dropped, never answered with an RST", NULL);
	check(p, &(struct frame_opts){ .family = 4, .src = "10.9.0.77", .flags = F_ACK }, V_PASS,
	      S_SCAN_OTHER, "ACK of an over-rate source is passed in refuse_mode rst", NULL);

	s = base_settings();
	put_settings(&s);
}

/* ------------------------------------------------------------------ */
/* Malformed headers                                                   */
/* ------------------------------------------------------------------ */

enum mutation {
	M_IHL4, M_IHL0, M_TOTLEN_LT_IHL, M_V4_VERSION6, M_V6_VERSION4,
	M_DOFF4, M_DOFF0, M_DOFF_LIES_V4, M_DOFF_LIES_V6, M_V6_PAYLOAD_LT_EXT,
	M__COUNT
};

static const char *mutation_what[M__COUNT] = {
	[M_IHL4] = "IPv4 ihl 4",
	[M_IHL0] = "IPv4 ihl 0",
	[M_TOTLEN_LT_IHL] = "IPv4 tot_len 19 (below ihl * 4)",
	[M_V4_VERSION6] = "IPv4 ethertype carrying version 6",
	[M_V6_VERSION4] = "IPv6 ethertype carrying version 4",
	[M_DOFF4] = "TCP/25 doff 4",
	[M_DOFF0] = "TCP/25 doff 0",
	[M_DOFF_LIES_V4] = "IPv4 TCP/25 doff 8 but tot_len leaves 20 TCP bytes",
	[M_DOFF_LIES_V6] = "IPv6 TCP/25 doff 8 but payload_len leaves 20 TCP bytes",
	[M_V6_PAYLOAD_LT_EXT] = "IPv6 payload_len 4 below its 8-byte extension header",
};

static void make_mutated(struct frame *f, enum mutation m, uint16_t dport)
{
	int v6 = m == M_V6_VERSION4 || m == M_DOFF_LIES_V6 || m == M_V6_PAYLOAD_LT_EXT;
	struct frame_opts o = { .family = v6 ? 6 : 4, .dport = dport, .tcp_opt_len = 12 };

	if (m == M_V6_PAYLOAD_LT_EXT) {
		o.n_ext = 1;
		o.ext[0] = IPPROTO_DSTOPTS;
	}
	make_frame(f, &o);
	switch (m) {
	case M_IHL4:
		f->b[f->l3] = 0x44;
		break;
	case M_IHL0:
		f->b[f->l3] = 0x40;
		break;
	case M_TOTLEN_LT_IHL:
		put16(f->b + f->l3 + 2, 19);
		break;
	case M_V4_VERSION6:
		f->b[f->l3] = 0x65;
		break;
	case M_V6_VERSION4:
		f->b[f->l3] = (uint8_t)(0x40 | (f->b[f->l3] & 0x0f));
		break;
	case M_DOFF4:
		f->b[f->l4 + 12] = 0x40;
		break;
	case M_DOFF0:
		f->b[f->l4 + 12] = 0x00;
		break;
	case M_DOFF_LIES_V4:
		put16(f->b + f->l3 + 2, 40);
		break;
	case M_DOFF_LIES_V6:
		put16(f->b + f->l3 + 4, 20);
		break;
	case M_V6_PAYLOAD_LT_EXT:
		put16(f->b + f->l3 + 4, 4);
		break;
	default:
		break;
	}
}

static void test_malformed(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct frame f;
	struct result r;

	for (int m = 0; m < M__COUNT; m++) {
		make_mutated(&f, m, 25);
		run_len(p, &f, f.len, &r);
		expect_result(p, &r, V_DROP, S_MALFORMED,
			      "%s is malformed: dropped (malformed_mode drop)", mutation_what[m]);
	}
	/* TCP-level checks apply only to SMTP ports (the IP-level ones to all). */
	make_mutated(&f, M_DOFF4, 80);
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_PASS, S_NON_SMTP, "TCP/80 with doff 4 is passed as non-SMTP");
	make_mutated(&f, M_DOFF_LIES_V4, 80);
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_PASS, S_NON_SMTP,
		      "TCP/80 with doff beyond tot_len is passed as non-SMTP");
	make_mutated(&f, M_IHL4, 80);
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_DROP, S_MALFORMED, "TCP/80 with IPv4 ihl 4 is malformed too");
	/* A blocked source's malformed SYN is malformed, not blocked. */
	make_frame(&f, &(struct frame_opts){ .family = 4, .src = "192.0.2.9" });
	f.b[f.l4 + 12] = 0x30;
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_DROP, S_MALFORMED,
		      "blocked source's SYN with doff 3 is counted malformed");

	s.malformed_mode = SG_MALFORMED_PASS;
	put_settings(&s);
	for (int m = 0; m < M__COUNT; m++) {
		make_mutated(&f, m, 25);
		run_len(p, &f, f.len, &r);
		expect_result(p, &r, V_PASS, S_MALFORMED,
			      "%s is malformed: passed and counted (malformed_mode pass)",
			      mutation_what[m]);
	}
	make_frame(&f, &(struct frame_opts){ .family = 6, .n_ext = 9,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
			 IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS, IPPROTO_DSTOPTS,
			 IPPROTO_DSTOPTS } });
	run_len(p, &f, f.len, &r);
	expect_result(p, &r, V_PASS, S_MALFORMED,
		      "IPv6 chain of 9 extension headers is passed and counted (malformed_mode pass)");
	make_frame(&f, &(struct frame_opts){ .family = 4, .tcp_opt_len = 8 });
	run_len(p, &f, f.l4 + 10, &r);
	expect_result(p, &r, V_PASS, S_MALFORMED,
		      "IPv4 SYN cut inside the TCP header is passed and counted (malformed_mode pass)");
	/* tagged, so that test_run for skb accepts the short IP header (see below) */
	make_frame(&f, &(struct frame_opts){ .family = 4, .vlans = 1 });
	run_len(p, &f, f.l3 + 10, &r);
	expect_result(p, &r, V_PASS, S_MALFORMED,
		      "IPv4 header cut at 10 bytes is passed and counted (malformed_mode pass)");
	make_frame(&f, &(struct frame_opts){ .family = 6, .vlans = 1 });
	run_len(p, &f, f.l3 + 30, &r);
	expect_result(p, &r, V_PASS, S_MALFORMED,
		      "IPv6 header cut at 30 bytes is passed and counted (malformed_mode pass)");

	s = base_settings();
	put_settings(&s);
}

/* ------------------------------------------------------------------ */
/* Truncation                                                          */
/* ------------------------------------------------------------------ */

/*
 * The rule for a frame cut short at every length 0 .. full - 1 (malformed_mode
 * drop):
 *  - shorter than the Ethernet header (14 bytes): BPF_PROG_TEST_RUN itself
 *    refuses it with -EINVAL, the program never runs;
 *  - ends before the IP header starts (inside the Ethernet header's VLAN
 *    tags): not known to be IP, passed and counted non_smtp;
 *  - ends at or after the start of the IP header (the ethertype announced IP)
 *    but before the end of the last header (IPv4 header and options, IPv6
 *    header and extension headers, TCP header with its options, as doff
 *    says): malformed, dropped, counted malformed and nothing else.
 * Never an error from test_run for 14 bytes and more, never XDP_TX/redirect.
 *
 * One exception, of the harness and not of the classifier: BPF_PROG_TEST_RUN
 * for an skb (TC) refuses with -EINVAL an untagged IPv4 or IPv6 frame shorter
 * than Ethernet + the fixed IP header (kernel 6.18 checks skb->protocol's
 * header before running the program). Those bands are marked tc_einval; the
 * tagged frames below cover the TC program's handling of a cut IP header.
 */
struct band {
	int from, to;		/* lengths [from, to) */
	int want;		/* V_EINVAL, V_PASS or V_DROP */
	const char *what;
	bool tc_einval;		/* test_run for skb refuses these lengths */
};

static void run_bands(const struct prog *p, const struct frame *f, const char *frame_name,
		      const struct band *bands, int n)
{
	for (int b = 0; b < n; b++) {
		const struct band *bd = &bands[b];
		const struct sw *want_stats = bd->want == V_PASS ? S_NON_SMTP : S_MALFORMED;
		int want = !p->xdp && bd->tc_einval ? V_EINVAL : bd->want;
		char name[300], detail[400] = "", d[160];
		int bad = 0, first_bad = -1;

		if (bd->from >= bd->to)
			continue;
		for (int len = bd->from; len < bd->to; len++) {
			struct result r;
			bool ok;

			run_len(p, f, len, &r);
			if (want == V_EINVAL)
				ok = r.err == -EINVAL && delta_equal(r.delta, S_NONE);
			else
				ok = !r.err && r.verdict == want && delta_equal(r.delta, want_stats);
			if (ok)
				continue;
			if (!bad++) {
				first_bad = len;
				describe_delta(r.delta, d, sizeof(d));
				if (r.err && want != V_EINVAL)
					snprintf(detail, sizeof(detail), "test_run failed: %s",
						 strerror(-r.err));
				else
					snprintf(detail, sizeof(detail), "got %s, counters [%s]",
						 verdict_name(p, r.verdict), d);
			}
		}
		snprintf(name, sizeof(name), "%s: %s cut to %d..%d bytes (%s): %s", p->name,
			 frame_name, bd->from, bd->to - 1, bd->what,
			 want == V_EINVAL ? "test_run refuses it with -EINVAL"
			 : want == V_PASS ? "passed as non-SMTP"
			 : "dropped and counted malformed");
		if (bad) {
			char full[600];

			snprintf(full, sizeof(full), "%d of %d lengths wrong; first at %d bytes: %s",
				 bad, bd->to - bd->from, first_bad, detail);
			test_report(false, name, full);
		} else {
			test_report(true, name, "");
		}
	}
}

static void test_truncation(const struct prog *p)
{
	struct frame f4, f6, fp;
	struct result r;
	struct sg_settings s;

	/* IPv4 behind 802.1ad + 802.1Q, 12 bytes of IP options, 20 of TCP options */
	make_frame(&f4, &(struct frame_opts){ .family = 4, .vlans = 2, .tpid = { 0x88a8 },
					      .ip_opt_words = 3, .tcp_opt_len = 20,
					      .src = "203.0.113.60" });
	/* IPv6 behind one 802.1Q tag; hop-by-hop (16), dest-opts, routing,
	 * fragment (first); 20 bytes of TCP options */
	make_frame(&f6, &(struct frame_opts){ .family = 6, .vlans = 1, .n_ext = 4,
		.ext = { IPPROTO_HOPOPTS, IPPROTO_DSTOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT },
		.ext_frag = 0x0001, .tcp_opt_len = 20, .src = "2001:db8:1::60" });

	run_len(p, &f4, f4.len, &r);
	expect_result(p, &r, V_PASS, S_SCAN_SYN,
		      "the whole IPv4 truncation frame (2 tags, IP and TCP options) is a valid SYN");
	run_len(p, &f6, f6.len, &r);
	expect_result(p, &r, V_PASS, S_SCAN_SYN,
		      "the whole IPv6 truncation frame (tag, 4 extension headers) is a valid SYN");

	{
		/* 14 eth+tag | 18 tag | 22 IPv4 | 42 options | 54 TCP | 74 TCP options | 94 */
		const struct band b4[] = {
			{ 0, 14, V_EINVAL, "shorter than Ethernet", false },
			{ 14, f4.l3, V_PASS, "inside the VLAN tags", false },
			{ f4.l3, f4.l3 + 20, V_DROP, "inside the IPv4 header", false },
			{ f4.l3 + 20, f4.l4, V_DROP, "inside the IPv4 options", false },
			{ f4.l4, f4.l4 + 20, V_DROP, "inside the TCP header", false },
			{ f4.l4 + 20, f4.l4_end, V_DROP, "inside the TCP options", false },
		};
		const int l3 = f6.l3;
		/* 14 eth | 18 tag | 58 IPv6 | 74 hop-by-hop | 82 dest | 90 routing | 98 frag | 118 TCP | 138 */
		const struct band b6[] = {
			{ 0, 14, V_EINVAL, "shorter than Ethernet", false },
			{ 14, l3, V_PASS, "inside the VLAN tag", false },
			{ l3, l3 + 40, V_DROP, "inside the IPv6 header", false },
			{ l3 + 40, l3 + 56, V_DROP, "inside the hop-by-hop header", false },
			{ l3 + 56, l3 + 64, V_DROP, "inside the destination options", false },
			{ l3 + 64, l3 + 72, V_DROP, "inside the routing header", false },
			{ l3 + 72, f6.l4, V_DROP, "inside the fragment header", false },
			{ f6.l4, f6.l4 + 20, V_DROP, "inside the TCP header", false },
			{ f6.l4 + 20, f6.l4_end, V_DROP, "inside the TCP options", false },
		};

		if (f4.len != f4.l4_end || f6.len != f6.l4_end || f6.l4 != l3 + 80)
			test_report(false, "truncation frames have the expected layout", "");
		run_bands(p, &f4, "IPv4 2-tag SYN with options", b4, sizeof(b4) / sizeof(b4[0]));
		run_bands(p, &f6, "IPv6 SYN with 4 ext headers", b6, sizeof(b6) / sizeof(b6[0]));
	}

	/* The same rule with refuse_mode rst for a blocked source with a plain
	 * IPv4 header (an RST candidate): a cut frame is never answered. */
	s = base_settings();
	s.refuse_mode = SG_REFUSE_RST;
	put_settings(&s);
	make_frame(&fp, &(struct frame_opts){ .family = 4, .src = "192.0.2.61", .tcp_opt_len = 20 });
	run_len(p, &fp, fp.len, &r);
	expect_result(p, &r, V_RST, SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1,
				       [SG_STAT_BLOCKED] = 1, [SG_STAT_RST_SENT] = 1),
		      "the whole blocked plain IPv4 SYN is answered with an RST");
	{
		const struct band bp[] = {
			{ 0, 14, V_EINVAL, "shorter than Ethernet", false },
			{ 14, fp.l4, V_DROP, "inside the IPv4 header", true },
			{ fp.l4, fp.l4 + 20, V_DROP, "inside the TCP header", false },
			{ fp.l4 + 20, fp.l4_end, V_DROP, "inside the TCP options", false },
		};

		run_bands(p, &fp, "blocked plain IPv4 SYN, refuse_mode rst", bp,
			  sizeof(bp) / sizeof(bp[0]));
	}
	s = base_settings();
	put_settings(&s);
}

/* ------------------------------------------------------------------ */

static int print_warnings(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || level == LIBBPF_INFO)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static uint32_t map_id(int fd)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static int setup(void)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_dir);
	char path[256];
	bool shared;
	int err;

	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sgtest-bpf-%d", (int)getpid());
	remove_pins();		/* a stale directory of a dead process with our pid */
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "test_classifier: mkdir %s: %s (is bpffs mounted on /sys/fs/bpf?)\n",
			pin_dir, strerror(errno));
		pin_dir[0] = 0;
		return -1;
	}
	open_opts.pin_root_path = pin_dir;

	xdp_skel = classifier_xdp__open_opts(&open_opts);
	if (!xdp_skel) {
		fprintf(stderr, "test_classifier: opening classifier_xdp: %s\n", strerror(errno));
		return -1;
	}
	/* as the daemon does: the lock-free program, or the one built without
	 * lock-free code that kernels before 5.12 get */
	xdp_skel->rodata->sg_lockfree_bucket = lockfree_bucket;
	bpf_program__set_autoload(lockfree_bucket ? xdp_skel->progs.smtpguard_xdp_locked :
						    xdp_skel->progs.smtpguard_xdp, false);
	err = classifier_xdp__load(xdp_skel);
	if (err) {
		fprintf(stderr, "test_classifier: loading classifier_xdp: %s\n", strerror(-err));
		return -1;
	}
	tc_skel = classifier_tc__open_opts(&open_opts);
	if (!tc_skel) {
		fprintf(stderr, "test_classifier: opening classifier_tc: %s\n", strerror(errno));
		return -1;
	}
	tc_skel->rodata->sg_lockfree_bucket = lockfree_bucket;
	bpf_program__set_autoload(lockfree_bucket ? tc_skel->progs.smtpguard_tc_locked :
						    tc_skel->progs.smtpguard_tc, false);
	err = classifier_tc__load(tc_skel);
	if (err) {
		fprintf(stderr, "test_classifier: loading classifier_tc: %s\n", strerror(-err));
		return -1;
	}

	stats_fd = bpf_map__fd(xdp_skel->maps.stats);
	src_state_fd = bpf_map__fd(xdp_skel->maps.src_state);
	settings_fd = bpf_map__fd(xdp_skel->maps.settings);
	rate_fd = bpf_map__fd(xdp_skel->maps.rate_classes);
	policy4_fd = bpf_map__fd(xdp_skel->maps.policy_v4);
	policy6_fd = bpf_map__fd(xdp_skel->maps.policy_v6);

	snprintf(path, sizeof(path), "%s/%s", pin_dir, SG_MAP_SRC_STATE);
	ASSERT_EQ(access(path, F_OK), 0, "maps are pinned below the private bpffs directory");
	shared = map_id(stats_fd) && map_id(stats_fd) == map_id(bpf_map__fd(tc_skel->maps.stats)) &&
		 map_id(src_state_fd) == map_id(bpf_map__fd(tc_skel->maps.src_state)) &&
		 map_id(settings_fd) == map_id(bpf_map__fd(tc_skel->maps.settings));
	ASSERT_TRUE(shared, "XDP and TC objects share the pinned maps");

	ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0) {
		fprintf(stderr, "test_classifier: cannot count CPUs\n");
		return -1;
	}
	percpu_buf = calloc((size_t)ncpus, sizeof(uint64_t));
	if (!percpu_buf)
		return -1;
	if (configure()) {
		fprintf(stderr, "test_classifier: configuring the maps failed\n");
		return -1;
	}
	return 0;
}


/* ------------------------------------------------------------------ */
/* The source check, per-interface overflow, IPv6 keys per interface   */
/* ------------------------------------------------------------------ */

/* The process's own network namespace (made in setup_source_netns), where
 * veth pairs stand for the VMs' taps and routes for a routed host's:
 * vm1's 10.20.0.1 and 2001:db8:20::1 via sgvm1, vm2's .2 via sgvm2, and
 * 10.30.0.0/24 via sgbr, which stands for a bridge. */
#define SC_VM1_4 "10.20.0.1"
#define SC_VM2_4 "10.20.0.2"
#define SC_VM1_6 "2001:db8:20::1"
#define SC_BR_4 "10.30.0.5"
static unsigned int sc_if1, sc_if2, sc_br;
static int bound_fd = -1, attach_fd = -1, iface_fd = -1, overflow_fd = -1;

static int setup_source_netns(void)
{
	static const char *const cmds[] = {
		"ip link add sgvm1 type veth peer name sgvm1p",
		"ip link add sgvm2 type veth peer name sgvm2p",
		"ip link add sgbr type veth peer name sgbrp",
		"for d in lo sgvm1 sgvm1p sgvm2 sgvm2p sgbr sgbrp; do ip link set $d up || exit 1; done",
		"sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
		"ip addr add 10.99.0.1/32 dev sgvm1 && ip addr add 10.99.0.1/32 dev sgvm2",
		"ip route add " SC_VM1_4 "/32 dev sgvm1 && ip route add " SC_VM2_4 "/32 dev sgvm2",
		"ip -6 route add " SC_VM1_6 "/128 dev sgvm1",
		"ip route add 10.30.0.0/24 dev sgbr",
	};

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "test_classifier: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char cmd[512];

		snprintf(cmd, sizeof(cmd), "%s >/dev/null 2>&1", cmds[i]);
		if (system(cmd) != 0) {
			fprintf(stderr, "test_classifier: '%s' failed in the test's namespace\n",
				cmds[i]);
			return -1;
		}
	}
	sc_if1 = if_nametoindex("sgvm1");
	sc_if2 = if_nametoindex("sgvm2");
	sc_br = if_nametoindex("sgbr");
	bound_fd = bpf_map__fd(tc_skel->maps.src_bound);
	attach_fd = bpf_map__fd(tc_skel->maps.attachments);
	iface_fd = bpf_map__fd(tc_skel->maps.iface_state);
	overflow_fd = bpf_map__fd(tc_skel->maps.overflow_state);
	return sc_if1 && sc_if2 && sc_br ? 0 : -1;
}

/* Runs the frame as if it came in on ifindex. */
static void run_on(const struct prog *p, const struct frame *f, unsigned int ifindex,
		   struct result *r)
{
	uint64_t before[SG_STAT__COUNT], after[SG_STAT__COUNT];
	struct __sk_buff skb = { .ifindex = ifindex };
	/* data_end: the frame's length, as BPF_PROG_TEST_RUN wants it */
	struct xdp_md xdp = { .ingress_ifindex = ifindex, .data_end = (__u32)f->len };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = f->b,
		.data_size_in = (uint32_t)f->len,
		.data_out = r->out,
		.data_size_out = sizeof(r->out),
		.repeat = 1,
	);

	if (p->xdp) {
		opts.ctx_in = &xdp;
		opts.ctx_size_in = sizeof(xdp);
	} else {
		opts.ctx_in = &skb;
		opts.ctx_size_in = sizeof(skb);
	}
	memset(r, 0, sizeof(*r));
	stats_read(before);
	r->err = bpf_prog_test_run_opts(p->fd, &opts);
	stats_read(after);
	r->retval = opts.retval;
	r->out_len = opts.data_size_out;
	r->verdict = r->err == -EINVAL ? V_EINVAL : r->err ? V_OTHER : verdict_of(p, r->retval);
	for (int k = 0; k < SG_STAT__COUNT; k++)
		r->delta[k] = after[k] - before[k];
}

static void check_on(const struct prog *p, const struct frame_opts *o, unsigned int ifindex,
		     int want, const struct sw *want_stats, const char *what)
{
	struct frame f;
	struct result r;

	make_frame(&f, o);
	run_on(p, &f, ifindex, &r);
	expect_result(p, &r, want, want_stats, "%s", what);
}

#define S_SPOOFED SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SPOOFED] = 1)
#define S_SPOOFED_OTHER SW([SG_STAT_SMTP] = 1, [SG_STAT_SPOOFED] = 1)
#define S_LEARNED_SYN SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1, \
			 [SG_STAT_LEARNED] = 1)
#define S_LEARNED_OTHER SW([SG_STAT_SMTP] = 1, [SG_STAT_SCAN] = 1, [SG_STAT_LEARNED] = 1)
#define S_FULL_SYN SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1, \
		      [SG_STAT_STATE_FULL] = 1)
#define S_FULL_RATE SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1, \
		       [SG_STAT_STATE_FULL] = 1, [SG_STAT_RATE_DROPPED] = 1)

static void put_attachment(unsigned int ifindex, int bridge_port, unsigned int bridge,
			   int configured)
{
	struct sg_attachment a;

	memset(&a, 0, sizeof(a));
	snprintf(a.ifname, sizeof(a.ifname), "if%u", ifindex);
	a.bridge_port = (__u8)bridge_port;
	a.bridge_ifindex = bridge;
	a.bound_configured = (__u8)configured;
	bpf_map_update_elem(attach_fd, &ifindex, &a, BPF_ANY);
}

static void put_bound(const char *addr, unsigned int plen, unsigned int ifindex)
{
	struct sg_lpm_v6_key k;
	struct sg_bound b = { .ifindex = ifindex };
	struct sg_src_key sk = src_key(addr);

	memset(&k, 0, sizeof(k));
	memcpy(k.addr, sk.addr, 16);
	k.prefixlen = strchr(addr, ':') ? plen : 96 + plen;
	bpf_map_update_elem(bound_fd, &k, &b, BPF_ANY);
}

static uint64_t iface_spoofed(unsigned int ifindex)
{
	struct sg_iface_state is;

	return bpf_map_lookup_elem(iface_fd, &ifindex, &is) == 0 ? is.spoofed : 0;
}

static void clear_map(int fd, size_t key_size)
{
	uint8_t key[64];

	while (bpf_map_get_next_key(fd, NULL, key) == 0)
		if (bpf_map_delete_elem(fd, key))
			break;
	(void)key_size;
}

static void source_check_reset(void)
{
	struct sg_settings s = base_settings();

	put_settings(&s);
	clear_map(bound_fd, sizeof(struct sg_lpm_v6_key));
	clear_map(attach_fd, sizeof(__u32));
	clear_map(iface_fd, sizeof(__u32));
	clear_map(overflow_fd, sizeof(struct sg_overflow_key));
	state_del(SC_VM1_4);
	state_del(SC_VM2_4);
	state_del(SC_BR_4);
}

/* route: the route back to the source must leave by the interface. */
static void test_source_route(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct sg_src_state st;
	uint64_t sp;

	source_check_reset();
	s.source_check = SG_SOURCE_CHECK_ROUTE;
	put_settings(&s);
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM1_4 }, sc_if1, V_PASS,
		 S_SCAN_SYN, "route: vm1's SYN from its own address on its interface is passed");
	check_on(p, &(struct frame_opts){ .family = 6, .src = SC_VM1_6 }, sc_if1, V_PASS,
		 S_SCAN_SYN, "route: vm1's IPv6 SYN from its own address is passed");
	sp = iface_spoofed(sc_if1);
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4 }, sc_if1, V_DROP,
		 S_SPOOFED, "route: a SYN from vm2's address on vm1's interface is spoofed");
	name_eq(p, (long long)iface_spoofed(sc_if1), (long long)sp + 1,
		"route: vm1's interface counts the spoofed SYN");
	name_check(p, state_get(SC_VM2_4, &st) != 0, "vm2 has a src_state entry",
		   "route: the spoofed SYN made no state for vm2's address");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4, .flags = F_ACK },
		 sc_if1, V_DROP, S_SPOOFED_OTHER,
		 "route: a non-SYN packet with vm2's address on vm1's interface is dropped too");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.7" }, sc_if1, V_DROP,
		 S_SPOOFED, "route: a SYN from an address with no route is spoofed");
	check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:77::7" }, sc_if1, V_DROP,
		 S_SPOOFED, "route: an IPv6 SYN from an address with no route is spoofed");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4, .dport = 80 }, sc_if1,
		 V_PASS, S_NON_SMTP, "route: vm2's address to port 80 is not ours to check");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4 }, sc_if2, V_PASS,
		 S_SCAN_SYN, "route: vm2's own SYN on its interface is passed");
	name_check(p, state_get(SC_VM2_4, &st) == 0 && st.syns == 1, "wrong count",
		   "route: vm2's bucket holds its one SYN only");
	/* a bridge port: the route names the bridge */
	put_attachment(sc_if1, 1, sc_br, 0);
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_BR_4 }, sc_if1, V_PASS,
		 S_SCAN_SYN, "route: on a bridge port, a source routed to its bridge is passed");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM1_4 }, sc_if1, V_DROP,
		 S_SPOOFED, "route: on a bridge port, a source routed elsewhere is spoofed");
	s.source_check = SG_SOURCE_CHECK_OFF;
	put_settings(&s);
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.7" }, sc_if2, V_PASS,
		 S_SCAN_SYN, "off: a SYN from an address with no route is passed");
	state_del("10.77.7.7");
	source_check_reset();
}

/* bound: configured prefixes, or the first source_learn addresses. */
static void test_source_bound(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct sg_lpm_v6_key k;
	struct sg_bound b;
	struct sg_iface_state is;

	source_check_reset();
	s.source_check = SG_SOURCE_CHECK_BOUND;
	s.source_learn = 2;
	put_settings(&s);
	put_attachment(sc_if1, 1, sc_br, 1);	/* configured: learns nothing */
	put_attachment(sc_if2, 1, sc_br, 0);
	put_bound(SC_VM1_4, 32, sc_if1);
	put_bound("2001:db8:21::", 64, sc_if1);
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM1_4 }, sc_if1, V_PASS,
		 S_SCAN_SYN, "bound: a configured address on its interface is passed");
	check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:21::99" }, sc_if1, V_PASS,
		 S_SCAN_SYN, "bound: an address in a configured /64 is passed");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4 }, sc_if1, V_DROP,
		 S_SPOOFED, "bound: a configured interface learns no other address");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM1_4 }, sc_if2, V_DROP,
		 S_SPOOFED, "bound: vm1's configured address on vm2's interface is spoofed");
	check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:21::5" }, sc_if2, V_DROP,
		 S_SPOOFED, "bound: an address in vm1's configured /64 cannot be learned by vm2");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4, .flags = F_ACK }, sc_if2,
		 V_PASS, S_LEARNED_OTHER,
		 "bound: vm2's first packet (of a session begun earlier) binds its address");
	memset(&k, 0, sizeof(k));
	k.prefixlen = 128;
	memcpy(k.addr, src_key(SC_VM2_4).addr, 16);
	name_check(p, bpf_map_lookup_elem(bound_fd, &k, &b) == 0 && b.ifindex == sc_if2 &&
		   b.learned, "no learned entry", "bound: the learned entry is vm2's interface's");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4 }, sc_if2, V_PASS,
		 S_SCAN_SYN, "bound: vm2's next SYN from a learned address is passed");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4 }, sc_if1, V_DROP,
		 S_SPOOFED, "bound: vm2's learned address on vm1's interface is spoofed");
	check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:22::2" }, sc_if2, V_PASS,
		 S_LEARNED_SYN, "bound: a second address is learned (source_learn = 2)");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.8" }, sc_if2, V_DROP,
		 S_SPOOFED, "bound: a third address is over source_learn: spoofed");
	name_check(p, bpf_map_lookup_elem(iface_fd, &sc_if2, &is) == 0 && is.learned == 2,
		   "wrong count", "bound: vm2's interface counts 2 learned addresses");
	s.source_learn = 0;
	put_settings(&s);
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.9" }, sc_if2, V_DROP,
		 S_SPOOFED, "bound: source_learn = 0 learns nothing");
	/* auto: bound on bridge ports only */
	s.source_check = SG_SOURCE_CHECK_AUTO;
	s.source_learn = 8;
	put_settings(&s);
	put_attachment(sc_if2, 0, 0, 0);
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM2_4 }, sc_if2, V_PASS,
		 S_SCAN_SYN, "auto: a routed interface's own source passes by its route");
	check_on(p, &(struct frame_opts){ .family = 4, .src = SC_VM1_4 }, sc_if2, V_DROP,
		 S_SPOOFED, "auto: a routed interface's foreign source is spoofed by its route");
	put_attachment(sc_if2, 1, sc_br, 0);
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.30.0.9" }, sc_if2, V_PASS,
		 S_LEARNED_SYN, "auto: a bridge port learns a source routed to its bridge");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.30.0.9" }, sc_if1, V_DROP,
		 S_SPOOFED, "auto: that source on another port of the bridge is spoofed");
	state_del("10.30.0.9");
	state_del("2001:db8:21::");
	state_del("2001:db8:22::");
	state_del("2001:db8:21::99");
	state_del("2001:db8:22::2");
	source_check_reset();
}

/* A macvtap (attachment recorded at TC egress): the source check learns
 * (no route tells), an RST goes back by the macvtap's ingress, and a scan
 * flow the proxy cannot take there is the fail mode's. TC only. */
static void test_macvtap_egress(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	int listen_fd = -1, listeners_fd = bpf_map__fd(tc_skel->maps.listeners);
	struct sg_attachment a;
	__u32 slot = 0;
	int listening;

	source_check_reset();
	s.source_check = SG_SOURCE_CHECK_AUTO;
	s.source_learn = 2;
	put_settings(&s);
	put_attachment(sc_if1, 0, 0, 0);
	put_attachment(sc_if2, 0, 0, 0);
	for (unsigned int i = 0; i < 2; i++) {
		unsigned int ifindex = i ? sc_if2 : sc_if1;

		bpf_map_lookup_elem(attach_fd, &ifindex, &a);
		a.mode = SG_ATTACH_TC_EGRESS;
		bpf_map_update_elem(attach_fd, &ifindex, &a, BPF_ANY);
	}
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.7" }, sc_if1, V_PASS,
		 S_LEARNED_SYN, "macvtap, auto: a source with no route is learned, not spoofed");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.7" }, sc_if2, V_DROP,
		 S_SPOOFED, "macvtap, auto: that source on another macvtap is spoofed");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.7", .flags = F_ACK },
		 sc_if1, V_PASS, S_SCAN_OTHER, "macvtap: its learned source's ACK passes");

	s.default_action = SG_ACTION_BLOCK;
	s.refuse_mode = SG_REFUSE_RST;
	put_settings(&s);
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.7" }, sc_if1, V_RST,
		 SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_BLOCKED] = 1,
		    [SG_STAT_RST_SENT] = 1), "macvtap: a blocked SYN is answered with an RST");

	/* a proxy with a listener: taken at ingress, the fail mode's at egress */
	s = base_settings();
	s.source_check = SG_SOURCE_CHECK_OFF;
	s.steer_mark = 0x5347;
	s.n_workers = 1;
	s.fail_mode = SG_FAIL_OPEN;
	put_settings(&s);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	listening = listen_fd >= 0 && bind(listen_fd, (struct sockaddr *)&lo, sizeof(lo)) == 0 &&
		    listen(listen_fd, 8) == 0 &&
		    bpf_map_update_elem(listeners_fd, &slot, &listen_fd, BPF_ANY) == 0;
	if (!ASSERT_TRUE(listening, "macvtap: a listener in the listeners SOCKMAP"))
		goto cleanup;
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.8" }, sc_if1, V_PASS,
		 SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1,
		    [SG_STAT_FAIL_OPEN] = 1),
		 "macvtap, fail open: a scan SYN is not steered (no socket at egress): passed");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.8", .flags = F_ACK },
		 sc_if1, V_PASS, S_SCAN_OTHER, "macvtap: a scan flow's ACK passes uncounted");
	s.fail_mode = SG_FAIL_CLOSED;
	put_settings(&s);
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.8" }, sc_if1, V_RST,
		 SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1,
		    [SG_STAT_FAIL_CLOSED] = 1, [SG_STAT_RST_SENT] = 1),
		 "macvtap, fail closed: a scan SYN is refused with an RST");
	put_attachment(sc_if1, 0, 0, 0);	/* the same interface at ingress */
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.77.7.8" }, sc_if1, V_PASS,
		 SW([SG_STAT_SMTP] = 1, [SG_STAT_SMTP_SYN] = 1, [SG_STAT_SCAN] = 1,
		    [SG_STAT_STEERED] = 1),
		 "a tap at ingress: the same SYN goes to the listener");
	bpf_map_delete_elem(listeners_fd, &slot);
cleanup:
	if (listen_fd >= 0)
		close(listen_fd);
	state_del("10.77.7.7");
	state_del("10.77.7.8");
	source_check_reset();
}

/* A random-source flood with the table full: one interface's overflow
 * bucket drains, another interface's stays whole. */
static void test_overflow_per_interface(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct sg_src_state st;
	struct sg_src_key k;
	char src[32], what[96];
	int filled = 0;

	source_check_reset();
	put_settings(&s);
	/* fill src_state with senders of no interface */
	memset(&st, 0, sizeof(st));
	memset(&k, 0, sizeof(k));
	k.addr[0] = 0xfc;
	for (uint32_t i = 0; i < SG_MAX_SOURCES * 2 && filled < SG_MAX_SOURCES; i++) {
		memcpy(k.addr + 12, &i, 4);
		if (bpf_map_update_elem(src_state_fd, &k, &st, BPF_NOEXIST) == 0)
			filled++;
		else if (errno == E2BIG || errno == ENOMEM)
			break;
	}
	for (int i = 0; i < 3; i++) {
		snprintf(src, sizeof(src), "10.9.%d.%d", 100 + i, 1 + i);
		snprintf(what, sizeof(what), "overflow: full table, vm1's random source %d of 3 "
			 "passes in vm1's bucket", i + 1);
		check_on(p, &(struct frame_opts){ .family = 4, .src = src }, sc_if1, V_PASS,
			 S_FULL_SYN, what);
	}
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.9.200.1" }, sc_if1, V_DROP,
		 S_FULL_RATE, "overflow: vm1's 4th random source is over the class's burst of 3");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.9.201.1" }, sc_if2, V_PASS,
		 S_FULL_SYN, "overflow: vm2's new source has its own interface's bucket");
	/* clear the table again */
	for (uint32_t i = 0; i < SG_MAX_SOURCES * 2 && filled > 0; i++) {
		memcpy(k.addr + 12, &i, 4);
		if (bpf_map_delete_elem(src_state_fd, &k) == 0)
			filled--;
	}
	source_check_reset();
}

/* One interface's share of src_state: past source_state_max its new
 * senders share its overflow bucket, and another interface still gets
 * entries of its own. */
static void test_state_share(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct sg_iface_state is;
	struct sg_src_state st;
	char src[32], what[96];

	source_check_reset();
	s.source_state_max = 3;
	put_settings(&s);
	for (int i = 0; i < 3; i++) {
		snprintf(src, sizeof(src), "10.9.50.%d", i + 1);
		snprintf(what, sizeof(what), "share: vm1's new source %d of 3 gets an entry", i + 1);
		check_on(p, &(struct frame_opts){ .family = 4, .src = src }, sc_if1, V_PASS,
			 S_SCAN_SYN, what);
	}
	name_check(p, bpf_map_lookup_elem(iface_fd, &sc_if1, &is) == 0 && is.sources == 3,
		   "wrong count", "share: vm1's interface counts its 3 entries");
	name_check(p, state_get("10.9.50.1", &st) == 0 && st.ifindex == sc_if1, "no entry",
		   "share: the entry records vm1's interface");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.9.50.4" }, sc_if1, V_PASS,
		 S_FULL_SYN, "share: vm1's 4th new source is over its share: its overflow bucket");
	name_check(p, state_get("10.9.50.4", &st) != 0, "an entry was made",
		   "share: ... and no entry is made for it");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.9.51.1" }, sc_if2, V_PASS,
		 S_SCAN_SYN, "share: vm2's new source still gets an entry of its own");
	check_on(p, &(struct frame_opts){ .family = 4, .src = "10.9.50.1" }, sc_if1, V_PASS,
		 S_SCAN_SYN, "share: vm1's known source keeps its entry");
	for (int i = 0; i < 3; i++) {
		snprintf(src, sizeof(src), "10.9.50.%d", i + 1);
		state_del(src);
	}
	state_del("10.9.51.1");
	source_check_reset();
}

/* IPv6 senders on a bridge port are (port, prefix); elsewhere the prefix. */
static void test_v6_keys_per_interface(const struct prog *p)
{
	struct sg_settings s = base_settings();
	struct sg_src_state st;
	struct sg_src_key k;
	int n = 0;

	source_check_reset();
	s.v6_source_prefix = 64;
	memset(s.v6_sender_mask, 0, sizeof(s.v6_sender_mask));
	memset(s.v6_sender_mask, 0xff, 8);
	put_settings(&s);
	put_attachment(sc_if1, 1, sc_br, 0);
	put_attachment(sc_if2, 1, sc_br, 0);
	for (int i = 0; i < 3; i++)
		check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:7::a" }, sc_if1,
			 V_PASS, S_SCAN_SYN, "v6 per port: vm1's SYNs in the shared /64 pass");
	check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:7::a" }, sc_if1, V_DROP,
		 S_SCAN_RATE, "v6 per port: vm1's 4th SYN is over its burst of 3");
	check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:7::b" }, sc_if2, V_PASS,
		 S_SCAN_SYN, "v6 per port: vm2 in the same /64 on another port has its own bucket");
	k = src_key("2001:db8:5:7::");
	k.ifindex = sc_if1;
	if (bpf_map_lookup_elem_flags(src_state_fd, &k, &st, BPF_F_LOCK) == 0 && st.syns == 4)
		n++;
	bpf_map_delete_elem(src_state_fd, &k);
	k.ifindex = sc_if2;
	if (bpf_map_lookup_elem_flags(src_state_fd, &k, &st, BPF_F_LOCK) == 0 && st.syns == 1)
		n++;
	bpf_map_delete_elem(src_state_fd, &k);
	name_eq(p, n, 2, "v6 per port: the state is kept per (port, /64): 4 SYNs and 1");
	/* a routed interface: the /64 alone */
	put_attachment(sc_if1, 0, 0, 0);
	check_on(p, &(struct frame_opts){ .family = 6, .src = "2001:db8:5:7::a" }, sc_if1,
		 V_PASS, S_SCAN_SYN, "v6 routed: a SYN from the /64 passes");
	name_check(p, state_get("2001:db8:5:7::", &st) == 0 && st.syns == 1, "no entry",
		   "v6 routed: the state is kept under the /64 alone");
	state_del("2001:db8:5:7::");
	source_check_reset();
}

/* ------------------------------------------------------------------ */
/* Concurrency: one source's SYNs on every CPU at once                 */
/* ------------------------------------------------------------------ */

#define CONC_SYNS_PER_CPU 20000

struct conc_worker {
	const struct prog *p;
	const struct frame *f;
	int cpu;
	int err;
};

static void *conc_run(void *arg)
{
	struct conc_worker *w = arg;
	cpu_set_t set;
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = w->f->b,
		.data_size_in = (uint32_t)w->f->len,
		.repeat = CONC_SYNS_PER_CPU,
	);

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	w->err = bpf_prog_test_run_opts(w->p->fd, &opts);
	return NULL;
}

/* With the bucket's whole refill far in the future (1/h), exactly its burst
 * of SYNs may pass however many CPUs race for it: no lost update may hand
 * out a token twice, and every SYN must be counted. */
static void test_concurrency(const struct prog *p)
{
	const char *src = "10.6.0.9";
	int nworkers = ncpus < 2 ? 2 : (ncpus > 8 ? 8 : ncpus);
	struct conc_worker workers[8];
	pthread_t threads[8];
	struct sg_src_state st;
	struct frame f;
	char what[200];
	int err = 0;

	state_del(src);
	make_frame(&f, &(struct frame_opts){ .family = 4, .src = src });
	for (int i = 0; i < nworkers; i++) {
		workers[i] = (struct conc_worker){ .p = p, .f = &f, .cpu = i % ncpus };
		pthread_create(&threads[i], NULL, conc_run, &workers[i]);
	}
	for (int i = 0; i < nworkers; i++) {
		pthread_join(threads[i], NULL);
		err |= workers[i].err;
	}
	snprintf(what, sizeof(what), "%d CPUs x %d SYNs of one source run", nworkers,
		 CONC_SYNS_PER_CPU);
	name_eq(p, err, 0, what);
	name_check(p, state_get(src, &st) == 0, "lookup failed",
		   "the racing source has a src_state entry");
	snprintf(what, sizeof(what), "every one of the %d racing SYNs is counted",
		 nworkers * CONC_SYNS_PER_CPU);
	name_eq(p, (long long)st.syns, (long long)nworkers * CONC_SYNS_PER_CPU, what);
	snprintf(what, sizeof(what), "exactly the burst of %d racing SYNs is passed", CONC_BURST);
	name_eq(p, (long long)(st.syns - st.syn_drops), CONC_BURST, what);
}

int main(int argc, char **argv)
{
	struct prog progs[2];
	struct stat sb;
	char saved[sizeof(pin_dir)];

	/* which token bucket the objects are loaded with: lockfree or locked */
	if (argc != 2 || (strcmp(argv[1], "lockfree") && strcmp(argv[1], "locked"))) {
		fprintf(stderr, "usage: test_classifier lockfree|locked\n");
		return 2;
	}
	lockfree_bucket = strcmp(argv[1], "lockfree") == 0;

	if (geteuid() != 0) {
		test_report(false, "test_classifier runs as root",
			    "BPF_PROG_TEST_RUN and bpffs pins need root");
		return test_exit_status();
	}
	libbpf_set_print(print_warnings);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	if (setup()) {
		test_report(false, "classifier objects load with a private pin root",
			    "see the message above");
		cleanup();
		return test_exit_status();
	}
	progs[0] = (struct prog){ lockfree_bucket ? "xdp" : "xdp(locked)",
				  bpf_program__fd(lockfree_bucket ? xdp_skel->progs.smtpguard_xdp :
							xdp_skel->progs.smtpguard_xdp_locked), 1 };
	progs[1] = (struct prog){ lockfree_bucket ? "tc" : "tc(locked)",
				  bpf_program__fd(lockfree_bucket ? tc_skel->progs.smtpguard_tc :
							tc_skel->progs.smtpguard_tc_locked), 0 };

	for (int i = 0; i < 2; i++)
		test_parse_paths(&progs[i]);
	for (int i = 0; i < 2; i++)
		test_policy(&progs[i]);
	for (int i = 0; i < 2; i++)
		test_rate(&progs[i]);
	for (int i = 0; i < 2; i++)
		test_rst(&progs[i]);
	for (int i = 0; i < 2; i++)
		test_malformed(&progs[i]);
	for (int i = 0; i < 2; i++)
		test_truncation(&progs[i]);

	for (int i = 0; i < 2; i++)
		test_v6_sender_prefix(&progs[i]);
	for (int i = 0; i < 2; i++)
		test_concurrency(&progs[i]);

	/* from here on the process is in a network namespace of its own */
	if (setup_source_netns()) {
		test_report(false, "a network namespace with veth pairs for the source check",
			    "see the message above");
	} else {
		for (int i = 0; i < 2; i++)
			test_source_route(&progs[i]);
		for (int i = 0; i < 2; i++)
			test_source_bound(&progs[i]);
		for (int i = 0; i < 2; i++)
			test_overflow_per_interface(&progs[i]);
		for (int i = 0; i < 2; i++)
			test_state_share(&progs[i]);
		for (int i = 0; i < 2; i++)
			test_v6_keys_per_interface(&progs[i]);
		test_macvtap_egress(&progs[1]);
	}

	memcpy(saved, pin_dir, sizeof(saved));
	cleanup();
	ASSERT_TRUE(stat(saved, &sb) != 0 && errno == ENOENT,
		    "the private bpffs directory and every pin are removed");
	printf("# %d passed, %d failed\n", test_passes, test_failures);
	return test_exit_status();
}
