// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * prog_run.c - the classifier's cost per packet, measured with
 * BPF_PROG_TEST_RUN: the kernel runs the program REPEAT times on one frame
 * and reports the mean time per run ("duration"). Each case is measured RUNS
 * times and the median is reported, next to the difference and ratio to an
 * empty XDP program (XDP_PASS and nothing else) on the same kind of frame.
 *
 * Cases, each for the XDP and the TC program:
 *   non_smtp_ack   TCP ACK to port 80: parse, port check, one counter
 *   smtp_ack       TCP ACK to port 25: adds the policy lookup
 *   smtp_syn_ok    SYN to 25 within its rate (class: 1 ns interval, huge
 *                  burst): adds the per-source lookup, lock, clock, bucket
 *   smtp_syn_over  SYN to 25 over its rate (class: 1/hour, burst 1, spent):
 *                  every SYN is refused (dropped)
 *
 * Usage: prog_run [--repeat N] [--runs N]   (root; N >= 1000000 repeats)
 * Output: a table, and per case a line
 *   BENCH prog <case> <attach> bucket=<lockfree|locked> ns=<x> delta_ns=<y> ratio=<z>
 *              hook_delta_ns=<ns above the empty program at the same hook>
 * The maps are pinned below a private /sys/fs/bpf/sgbench-<pid>, removed at exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <smtpguard/maps.h>

#include "pinned.h"
#include "classifier_xdp.skel.h"
#include "classifier_tc.skel.h"
#include "empty_xdp.skel.h"
#include "empty_tc.skel.h"

#define MIN_REPEAT 1000000U
#define DEFAULT_RUNS 5
#define MAX_RUNS 101
#define FRAME_LEN 60		/* the Ethernet minimum, as on the wire */

#define F_SYN 0x02
#define F_ACK 0x10

static char pin_dir[64];
static struct empty_xdp *empty_skel;
static struct empty_tc *empty_tc_skel;
static struct classifier_xdp *xdp_skel;
static struct classifier_tc *tc_skel;

/* Removes every pin below our private directory, then the directory. */
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
	empty_xdp__destroy(empty_skel);
	empty_skel = NULL;
	empty_tc__destroy(empty_tc_skel);
	empty_tc_skel = NULL;
	remove_pins();
	pin_dir[0] = 0;
}

static void on_signal(int sig)
{
	remove_pins();
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	return sum;
}

/* An untagged IPv4 TCP frame without options, padded to 60 bytes. */
static void make_frame(uint8_t *b, const char *src, uint16_t dport, uint8_t flags)
{
	static const uint8_t dst_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };
	static const uint8_t src_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	uint8_t *ip = b + 14, *tcp = b + 34;
	uint32_t sum;

	memset(b, 0, FRAME_LEN);
	memcpy(b, dst_mac, 6);
	memcpy(b + 6, src_mac, 6);
	b[12] = 0x08;
	b[13] = 0x00;
	ip[0] = 0x45;
	ip[3] = 40;			/* tot_len */
	ip[6] = 0x40;			/* DF */
	ip[8] = 64;
	ip[9] = 6;			/* TCP */
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, "198.18.0.25", ip + 16);
	sum = csum_fold(csum_add(0, ip, 20));
	ip[10] = (uint8_t)(sum >> 8);
	ip[11] = (uint8_t)sum;
	tcp[0] = 0xc0;			/* source port 49152 */
	tcp[2] = (uint8_t)(dport >> 8);
	tcp[3] = (uint8_t)dport;
	tcp[7] = 1;			/* seq */
	if (flags & F_ACK)
		tcp[11] = 1;
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	tcp[14] = 0xfa;			/* window */
	sum = csum_add(0, ip + 12, 8) + 6 + 20 + csum_add(0, tcp, 20);
	sum = csum_fold(sum);
	tcp[16] = (uint8_t)(sum >> 8);
	tcp[17] = (uint8_t)sum;
}

static int run(int prog_fd, const uint8_t *frame, uint32_t repeat, uint32_t *duration,
	       uint32_t *retval)
{
	uint8_t out[256];
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = frame,
		.data_size_in = FRAME_LEN,
		.data_out = out,
		.data_size_out = sizeof(out),
		.repeat = repeat,
	);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);

	if (err)
		return err;
	*duration = opts.duration;
	*retval = opts.retval;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct bench_case {
	const char *name;
	const char *attach;	/* "xdp" or "tc" */
	int prog_fd;
	const uint8_t *frame;
	uint32_t want_retval;
	const char *verdict;
	uint32_t samples[MAX_RUNS];
	uint32_t median;
};

static void add_case(struct bench_case *c, const char *name, const char *attach, int prog_fd,
		     const uint8_t *frame, uint32_t want_retval, const char *verdict)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->attach = attach;
	c->prog_fd = prog_fd;
	c->frame = frame;
	c->want_retval = want_retval;
	c->verdict = verdict;
}

/* One sample of case c, checking it returns what it claims. */
static int sample(struct bench_case *c, uint32_t repeat, int i)
{
	uint32_t retval = 0;
	int err = run(c->prog_fd, c->frame, repeat, &c->samples[i], &retval);

	if (err) {
		fprintf(stderr, "prog_run: BPF_PROG_TEST_RUN for %s/%s failed: %s\n",
			c->name, c->attach, strerror(-err));
		return -1;
	}
	if (retval != c->want_retval) {
		fprintf(stderr, "prog_run: %s/%s returned %u, expected %u (%s): the "
			"case does not measure what it claims\n", c->name, c->attach,
			retval, c->want_retval, c->verdict);
		return -1;
	}
	return 0;
}

/* Rounds of every case in turn, so that a slow phase of a shared machine
 * touches all cases alike; each case's median over the rounds. */
static int measure(struct bench_case *cases, int n, uint32_t repeat, int runs)
{
	uint32_t sorted[MAX_RUNS];

	for (int i = 0; i < runs; i++)
		for (int k = 0; k < n; k++)
			if (sample(&cases[k], repeat, i))
				return -1;
	for (int k = 0; k < n; k++) {
		memcpy(sorted, cases[k].samples, sizeof(sorted[0]) * (size_t)runs);
		qsort(sorted, (size_t)runs, sizeof(sorted[0]), cmp_u32);
		cases[k].median = sorted[runs / 2];
	}
	return 0;
}

static int configure(void)
{
	struct sg_settings s;
	struct sg_rate_class rc;
	struct sg_policy pol = { .action = SG_ACTION_SCAN, .rate_class = 1 };
	struct sg_lpm_v4_key key = { .prefixlen = 24 };
	uint32_t slot, zero = 0;
	int err = 0;

	memset(&s, 0, sizeof(s));
	s.smtp_ports[0] = 25;
	s.smtp_ports[1] = 587;
	s.default_action = SG_ACTION_SCAN;
	s.default_rate_class = SG_DEFAULT_RATE_CLASS;
	s.refuse_mode = SG_REFUSE_DROP;
	s.malformed_mode = SG_MALFORMED_DROP;
	err |= bpf_map_update_elem(bpf_map__fd(xdp_skel->maps.settings), &zero, &s, BPF_ANY);

	/* slot 0 "default": one SYN per ns, burst 2^32-1: never over */
	memset(&rc, 0, sizeof(rc));
	snprintf(rc.name, sizeof(rc.name), "default");
	rc.conn_interval_ns = 1;
	rc.conn_burst = UINT32_MAX;
	slot = SG_DEFAULT_RATE_CLASS;
	err |= bpf_map_update_elem(bpf_map__fd(xdp_skel->maps.rate_classes), &slot, &rc, BPF_ANY);
	/* slot 1 "hourly": one SYN per hour, burst 1 */
	snprintf(rc.name, sizeof(rc.name), "hourly");
	rc.conn_interval_ns = 3600ULL * 1000000000ULL;
	rc.conn_burst = 1;
	slot = 1;
	err |= bpf_map_update_elem(bpf_map__fd(xdp_skel->maps.rate_classes), &slot, &rc, BPF_ANY);
	/* 192.0.2.0/24 uses "hourly" */
	inet_pton(AF_INET, "192.0.2.0", key.addr);
	err |= bpf_map_update_elem(bpf_map__fd(xdp_skel->maps.policy_v4), &key, &pol, BPF_ANY);
	return err ? -1 : 0;
}

static int print_warnings(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || level == LIBBPF_INFO)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: prog_run [--repeat N] [--runs N]\n"
		"  --repeat N  runs per BPF_PROG_TEST_RUN call (default and minimum %u)\n"
		"  --runs N    calls per case; the median is reported (default %d, odd, max %d)\n"
		"  --bucket lockfree|locked   the token bucket the classifier is loaded with\n"
		"              (default lockfree; locked is what kernels before 5.12 get)\n",
		MIN_REPEAT, DEFAULT_RUNS, MAX_RUNS);
}

/* The empty program's median at the given hook. */
static unsigned int empty_at(const struct bench_case *cases, int n, const char *attach)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(cases[i].name, "empty") && !strcmp(cases[i].attach, attach))
			return cases[i].median;
	return cases[0].median;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	uint8_t f_non_smtp[FRAME_LEN], f_smtp_ack[FRAME_LEN], f_syn_ok[FRAME_LEN];
	uint8_t f_syn_over[FRAME_LEN];
	uint32_t repeat = MIN_REPEAT, dur, retval;
	int runs = DEFAULT_RUNS, xdp_fd, tc_fd, empty_fd, empty_tc_fd, err, n;
	struct bench_case cases[10];
	int lockfree = 1;
	double base;

	for (int i = 1; i < argc; i++) {
		char *end;
		unsigned long v;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--bucket") && i + 1 < argc &&
		    (!strcmp(argv[i + 1], "lockfree") || !strcmp(argv[i + 1], "locked"))) {
			lockfree = !strcmp(argv[++i], "lockfree");
			continue;
		}
		if (i + 1 >= argc || (strcmp(argv[i], "--repeat") && strcmp(argv[i], "--runs"))) {
			usage(stderr);
			return 2;
		}
		errno = 0;
		v = strtoul(argv[i + 1], &end, 10);
		if (errno || *end || end == argv[i + 1]) {
			fprintf(stderr, "prog_run: %s wants a whole number, not \"%s\"\n",
				argv[i], argv[i + 1]);
			return 2;
		}
		if (!strcmp(argv[i], "--repeat")) {
			if (v < MIN_REPEAT || v > UINT32_MAX) {
				fprintf(stderr, "prog_run: --repeat must be between %u and %u\n",
					MIN_REPEAT, UINT32_MAX);
				return 2;
			}
			repeat = (uint32_t)v;
		} else {
			if (v < 1 || v > MAX_RUNS || !(v & 1)) {
				fprintf(stderr, "prog_run: --runs must be odd, 1..%d\n", MAX_RUNS);
				return 2;
			}
			runs = (int)v;
		}
		i++;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "prog_run: needs root (BPF_PROG_TEST_RUN and bpffs pins)\n");
		return 1;
	}

	libbpf_set_print(print_warnings);
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sgbench-%d", (int)getpid());
	remove_pins();
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "prog_run: mkdir %s: %s (is bpffs mounted on /sys/fs/bpf?)\n",
			pin_dir, strerror(errno));
		return 1;
	}
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	open_opts.pin_root_path = pin_dir;

	empty_skel = empty_xdp__open_and_load();
	empty_tc_skel = empty_tc__open_and_load();
	if (!empty_skel || !empty_tc_skel) {
		fprintf(stderr, "prog_run: loading empty_xdp: %s\n", strerror(errno));
		return 1;
	}
	xdp_skel = classifier_xdp__open_opts(&open_opts);
	if (xdp_skel) {
		xdp_skel->rodata->sg_lockfree_bucket = (uint8_t)lockfree;
		bpf_program__set_autoload(lockfree ? xdp_skel->progs.smtpguard_xdp_locked :
					  xdp_skel->progs.smtpguard_xdp, false);
	}
	if (!xdp_skel || (err = classifier_xdp__load(xdp_skel))) {
		fprintf(stderr, "prog_run: loading classifier_xdp failed\n");
		return 1;
	}
	tc_skel = classifier_tc__open_opts(&open_opts);
	if (tc_skel) {
		tc_skel->rodata->sg_lockfree_bucket = (uint8_t)lockfree;
		bpf_program__set_autoload(lockfree ? tc_skel->progs.smtpguard_tc_locked :
					  tc_skel->progs.smtpguard_tc, false);
	}
	if (!tc_skel || (err = classifier_tc__load(tc_skel))) {
		fprintf(stderr, "prog_run: loading classifier_tc failed\n");
		return 1;
	}
	if (configure()) {
		fprintf(stderr, "prog_run: configuring the maps failed\n");
		return 1;
	}
	empty_fd = bpf_program__fd(empty_skel->progs.empty_xdp);
	empty_tc_fd = bpf_program__fd(empty_tc_skel->progs.empty_tc);
	xdp_fd = bpf_program__fd(lockfree ? xdp_skel->progs.smtpguard_xdp :
				 xdp_skel->progs.smtpguard_xdp_locked);
	tc_fd = bpf_program__fd(lockfree ? tc_skel->progs.smtpguard_tc :
				tc_skel->progs.smtpguard_tc_locked);

	make_frame(f_non_smtp, "203.0.113.10", 80, F_ACK);
	make_frame(f_smtp_ack, "203.0.113.10", 25, F_ACK);
	make_frame(f_syn_ok, "203.0.113.10", 25, F_SYN);
	make_frame(f_syn_over, "192.0.2.10", 25, F_SYN);

	/* Spend the over-limit source's single token: its first SYN passes,
	 * every later one is refused. */
	if (run(xdp_fd, f_syn_over, 1, &dur, &retval) || retval != XDP_PASS ||
	    run(xdp_fd, f_syn_over, 1, &dur, &retval) || retval != XDP_DROP) {
		fprintf(stderr, "prog_run: the 1/hour class did not refuse the second SYN\n");
		return 1;
	}

	n = 0;
	add_case(&cases[n++], "empty", "xdp", empty_fd, f_non_smtp, XDP_PASS, "XDP_PASS");
	add_case(&cases[n++], "non_smtp_ack", "xdp", xdp_fd, f_non_smtp, XDP_PASS, "XDP_PASS");
	add_case(&cases[n++], "smtp_ack", "xdp", xdp_fd, f_smtp_ack, XDP_PASS, "XDP_PASS");
	add_case(&cases[n++], "smtp_syn_ok", "xdp", xdp_fd, f_syn_ok, XDP_PASS, "XDP_PASS");
	add_case(&cases[n++], "smtp_syn_over", "xdp", xdp_fd, f_syn_over, XDP_DROP, "XDP_DROP");
	add_case(&cases[n++], "empty", "tc", empty_tc_fd, f_non_smtp, TC_ACT_OK, "TC_ACT_OK");
	add_case(&cases[n++], "non_smtp_ack", "tc", tc_fd, f_non_smtp, TC_ACT_OK, "TC_ACT_OK");
	add_case(&cases[n++], "smtp_ack", "tc", tc_fd, f_smtp_ack, TC_ACT_OK, "TC_ACT_OK");
	add_case(&cases[n++], "smtp_syn_ok", "tc", tc_fd, f_syn_ok, TC_ACT_OK, "TC_ACT_OK");
	add_case(&cases[n++], "smtp_syn_over", "tc", tc_fd, f_syn_over, TC_ACT_SHOT, "TC_ACT_SHOT");

	if (measure(cases, n, repeat, runs))
		return 1;

	base = cases[0].median;
	printf("smtpguard classifier, BPF_PROG_TEST_RUN: %u repeats per call, median of %d calls, "
	       "%d-byte IPv4 frames, %d CPUs\n", repeat, runs, FRAME_LEN,
	       libbpf_num_possible_cpus());
	printf("delta/ratio: to the empty XDP program; hook delta: to the empty program at the "
	       "same hook\n");
	printf("%-14s %-6s %-12s %8s %9s %7s %10s   %s\n", "case", "attach", "verdict", "ns/pkt",
	       "delta_ns", "ratio", "hook_delta", "all calls (ns)");
	for (int i = 0; i < n; i++) {
		struct bench_case *c = &cases[i];
		long long delta = (long long)c->median - (long long)cases[0].median;
		long long hook_delta = (long long)c->median - (long long)empty_at(cases, n, c->attach);
		char all[MAX_RUNS * 8] = "";
		size_t used = 0;

		for (int k = 0; k < runs && used < sizeof(all); k++)
			used += snprintf(all + used, sizeof(all) - used, "%s%u", k ? " " : "",
					 c->samples[k]);
		printf("%-14s %-6s %-12s %8u %+9lld %7.2f %+10lld   %s\n", c->name, c->attach,
		       c->verdict, c->median, delta, base > 0 ? c->median / base : 0.0, hook_delta,
		       all);
	}
	printf("\n");
	for (int i = 0; i < n; i++) {
		struct bench_case *c = &cases[i];

		printf("BENCH prog %s %s bucket=%s ns=%u delta_ns=%lld ratio=%.2f "
		       "hook_delta_ns=%lld\n", c->name, c->attach, lockfree ? "lockfree" : "locked",
		       c->median, (long long)c->median - (long long)cases[0].median,
		       base > 0 ? c->median / base : 0.0,
		       (long long)c->median - (long long)empty_at(cases, n, c->attach));
	}
	cleanup();
	return 0;
}
