// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * kernel_check.c - does the classifier load and classify on this kernel?
 *
 * Built statically and run as the whole userspace of a qemu guest booted on
 * one of the kernels smtpguard supports (selftests/kernels/run.sh), it also
 * runs on the host. It
 *  - mounts proc, sysfs and bpffs where they are missing;
 *  - asks lib/probe.c which token bucket the kernel can run, and checks the
 *    answer against the kernel's version (lock-free from 5.12 on);
 *  - loads the XDP and the TC object with that bucket (and, where the
 *    lock-free one was picked, also with the spin-locked fallback), both
 *    sharing maps pinned below a private bpffs directory; where an object
 *    has a "<program>_locked" program (one holding no lock-free code, for
 *    kernels that reject a cmpxchg even in a pruned branch), the spin-locked
 *    bucket is that program and the other one is not loaded;
 *  - configures port 25, the default action scan and rate class 0 (one SYN
 *    a second, burst 2), and a blocked /24;
 *  - feeds crafted frames through each program with BPF_PROG_TEST_RUN: a
 *    non-SMTP TCP SYN passes; of 3 SYNs to port 25 from one source the first
 *    2 pass and the 3rd is dropped (and the source's state says so); a SYN
 *    from the blocked /24 is dropped;
 *  - loads the passthrough tunnels' sk_skb redirect program (tls_mover =
 *    sockmap) and attaches it, as a stream verdict without a parser, to
 *    its SOCKHASH.
 * Prints "PASS <release> <what>" / "FAIL <release> <what>: <why>" per check,
 * libbpf's warnings (a verifier log among them) as "libbpf: ..." lines, and
 * "KERNEL-CHECK-DONE" at the end; exits 1 when any check failed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <smtpguard/maps.h>

#include "probe.h"
#include "classifier_xdp.skel.h"
#include "classifier_tc.skel.h"
#include "tunnel.skel.h"

#define BPFFS_MAGIC	0xcafe4a11
#define BPFFS_DIR	"/sys/fs/bpf"
#define NS_PER_SEC	1000000000ULL
#define FRAME_LEN	54	/* Ethernet 14 + IPv4 20 + TCP 20 */

static char release[65];
static int failures;

static void pass(const char *what)
{
	printf("PASS %s %s\n", release, what);
}

static void fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s %s: ", release, what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures++;
}

/* libbpf's warnings, a failed load's verifier log among them; a long log is
 * cut to its head and its end (where the verifier says what it refused), so
 * that the serial console stays fast. */
#define LOG_HEAD_LINES	40
#define LOG_TAIL_LINES	100

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL, *p, *tail;
	int lines = 0, n;

	if (level > LIBBPF_WARN)
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	for (p = msg; *p; p++)
		lines += *p == '\n';
	if (lines <= LOG_HEAD_LINES + LOG_TAIL_LINES) {
		fputs(msg, stdout);
		free(msg);
		return 0;
	}
	for (p = msg, n = 0; n < LOG_HEAD_LINES; p++)
		n += *p == '\n';
	fwrite(msg, 1, p - msg, stdout);
	for (tail = msg + strlen(msg) - 1, n = 0; tail > p; tail--)
		if (tail[-1] == '\n' && ++n == LOG_TAIL_LINES)
			break;
	printf("... %d lines of the log left out ...\n", lines - LOG_HEAD_LINES - LOG_TAIL_LINES);
	fputs(tail, stdout);
	free(msg);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The guest's file systems                                            */
/* ------------------------------------------------------------------ */

static int mount_if_missing(const char *probe, const char *type, const char *dir)
{
	if (access(probe, F_OK) == 0)
		return 0;
	mkdir(dir, 0755);
	if (mount(type, dir, type, 0, NULL) && errno != EBUSY) {
		printf("kernel_check: mount %s on %s: %s\n", type, dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int setup_fs(void)
{
	struct statfs st;

	if (mount_if_missing("/proc/self", "proc", "/proc") ||
	    mount_if_missing("/sys/kernel", "sysfs", "/sys"))
		return -1;
	mkdir(BPFFS_DIR, 0755);
	if (statfs(BPFFS_DIR, &st) == 0 && (unsigned long)st.f_type == BPFFS_MAGIC)
		return 0;
	if (mount("bpf", BPFFS_DIR, "bpf", 0, NULL)) {
		printf("kernel_check: mount bpf on %s: %s\n", BPFFS_DIR, strerror(errno));
		return -1;
	}
	return 0;
}

/* Removes what a run pinned: the directory holds only pinned maps. */
static void remove_pin_dir(const char *dir)
{
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
	rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* Frames: Ethernet, IPv4 without options, TCP without options         */
/* ------------------------------------------------------------------ */

static uint16_t ip_checksum(const uint8_t *hdr, int len)
{
	uint32_t sum = 0;

	for (int i = 0; i < len; i += 2)
		sum += (uint32_t)hdr[i] << 8 | hdr[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A TCP SYN from src (dotted quad) port sport to 198.51.100.25 port dport. */
static void build_syn(uint8_t *f, const char *src, uint16_t sport, uint16_t dport)
{
	static const uint8_t mac_dst[6] = { 0x02, 0, 0, 0, 0, 0xfe };
	static const uint8_t mac_src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	uint8_t *ip = f + 14, *tcp = ip + 20;
	uint16_t csum;

	memset(f, 0, FRAME_LEN);
	memcpy(f, mac_dst, 6);
	memcpy(f + 6, mac_src, 6);
	f[12] = 0x08;			/* ETH_P_IP */
	ip[0] = 0x45;			/* version 4, ihl 5 */
	ip[3] = 40;			/* total length */
	ip[6] = 0x40;			/* DF */
	ip[8] = 64;			/* TTL */
	ip[9] = 6;			/* TCP */
	inet_pton(AF_INET, src, ip + 12);
	inet_pton(AF_INET, "198.51.100.25", ip + 16);
	csum = ip_checksum(ip, 20);
	ip[10] = csum >> 8;
	ip[11] = csum & 0xff;
	tcp[0] = sport >> 8;
	tcp[1] = sport & 0xff;
	tcp[2] = dport >> 8;
	tcp[3] = dport & 0xff;
	tcp[7] = 1;			/* seq */
	tcp[12] = 5 << 4;		/* doff 5 */
	tcp[13] = 0x02;			/* SYN */
	tcp[14] = 0xfa;			/* window */
	/* the classifier does not verify the TCP checksum; leave it 0 */
}

/* ------------------------------------------------------------------ */
/* One program under test                                              */
/* ------------------------------------------------------------------ */

struct prog {
	const char *name;	/* the program's name */
	int fd;
	int verdict_pass, verdict_drop;
	const char *net;	/* first three octets of its sources */
	int blocked_host;	/* its host in the blocked 192.0.2.0/24 */
};

/* Runs one frame: 0 and the program's return value in *verdict (which may
 * be negative: TC_ACT_UNSPEC), or -1. */
static int run_frame(const struct prog *p, uint8_t *frame, int *verdict, char *err,
		     size_t errlen)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = FRAME_LEN,
		    .repeat = 1);

	if (bpf_prog_test_run_opts(p->fd, &opts)) {
		snprintf(err, errlen, "BPF_PROG_TEST_RUN: %s", strerror(errno));
		return -1;
	}
	*verdict = (int)opts.retval;
	return 0;
}

static const char *verdict_name(const struct prog *p, int v)
{
	if (v == p->verdict_pass)
		return "pass";
	if (v == p->verdict_drop)
		return "drop";
	return "other";
}

static void expect_verdict(const struct prog *p, const char *what, uint8_t *frame,
			   int want)
{
	char err[128];
	int got;

	if (run_frame(p, frame, &got, err, sizeof(err)))
		fail(what, "%s", err);
	else if (got != want)
		fail(what, "verdict %d (%s), want %d (%s)", got, verdict_name(p, got),
		     want, verdict_name(p, want));
	else
		pass(what);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static void check_prog(const struct prog *p, const char *bucket, int src_state_fd)
{
	uint8_t frame[FRAME_LEN];
	char what[160], src[32], err[128];
	int got[3];
	uint64_t t0, t1;

	snprintf(src, sizeof(src), "%s.1", p->net);
	build_syn(frame, src, 40001, 80);
	snprintf(what, sizeof(what), "%s %s: non-SMTP TCP SYN passes", p->name, bucket);
	expect_verdict(p, what, frame, p->verdict_pass);

	/* the rate class earns one SYN a second, burst 2 */
	snprintf(src, sizeof(src), "%s.2", p->net);
	snprintf(what, sizeof(what), "%s %s: 3 SYNs to port 25 from one source: 2 pass, 3rd dropped",
		 p->name, bucket);
	t0 = now_ns();
	for (int i = 0; i < 3; i++) {
		build_syn(frame, src, 40010 + i, 25);
		if (run_frame(p, frame, &got[i], err, sizeof(err))) {
			fail(what, "SYN %d: %s", i + 1, err);
			return;
		}
	}
	t1 = now_ns();
	if (got[0] == p->verdict_pass && got[1] == p->verdict_pass && got[2] == p->verdict_drop)
		pass(what);
	else
		fail(what, "verdicts %s, %s, %s in %.3f s", verdict_name(p, got[0]),
		     verdict_name(p, got[1]), verdict_name(p, got[2]),
		     (double)(t1 - t0) / NS_PER_SEC);

	{
		struct sg_src_key key = {};
		struct sg_src_state st = {};

		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		inet_pton(AF_INET, src, &key.addr[12]);
		snprintf(what, sizeof(what), "%s %s: the source's state counts 3 SYNs, 1 refused",
			 p->name, bucket);
		if (bpf_map_lookup_elem_flags(src_state_fd, &key, &st, BPF_F_LOCK))
			fail(what, "src_state lookup of ::ffff:%s: %s", src, strerror(errno));
		else if (st.syns != 3 || st.syn_drops != 1)
			fail(what, "syns %llu, syn_drops %llu", (unsigned long long)st.syns,
			     (unsigned long long)st.syn_drops);
		else
			pass(what);
	}

	snprintf(src, sizeof(src), "192.0.2.%d", p->blocked_host);
	build_syn(frame, src, 40020, 25);
	snprintf(what, sizeof(what), "%s %s: SYN from a blocked /24 dropped", p->name, bucket);
	expect_verdict(p, what, frame, p->verdict_drop);
}

/* ------------------------------------------------------------------ */
/* Load both objects with one bucket, configure, classify              */
/* ------------------------------------------------------------------ */

static int configure(struct classifier_xdp *skel, char *err, size_t errlen)
{
	struct sg_settings cfg = {};
	struct sg_rate_class rc = {};
	struct sg_lpm_v4_key block = { .prefixlen = 24, .addr = { 192, 0, 2, 0 } };
	struct sg_policy blocked = { .action = SG_ACTION_BLOCK };
	__u32 zero = 0;

	cfg.smtp_ports[0] = 25;
	cfg.default_action = SG_ACTION_SCAN;
	cfg.default_rate_class = SG_DEFAULT_RATE_CLASS;
	cfg.refuse_mode = SG_REFUSE_DROP;
	cfg.malformed_mode = SG_MALFORMED_DROP;
	snprintf(rc.name, sizeof(rc.name), "default");
	rc.conn_interval_ns = NS_PER_SEC;
	rc.conn_burst = 2;

	if (bpf_map_update_elem(bpf_map__fd(skel->maps.settings), &zero, &cfg, BPF_ANY)) {
		snprintf(err, errlen, "settings: %s", strerror(errno));
		return -1;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.rate_classes), &zero, &rc, BPF_ANY)) {
		snprintf(err, errlen, "rate_classes[0]: %s", strerror(errno));
		return -1;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.policy_v4), &block, &blocked, BPF_ANY)) {
		snprintf(err, errlen, "policy_v4 192.0.2.0/24: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The program that runs the bucket: main_prog, or for the spin-locked
 * bucket its "_locked" twin where the object has one; only it is loaded. */
static struct bpf_program *pick_prog(struct bpf_object *obj, struct bpf_program *main_prog,
				     int lockfree)
{
	char name[64];
	struct bpf_program *locked;

	snprintf(name, sizeof(name), "%s_locked", bpf_program__name(main_prog));
	locked = bpf_object__find_program_by_name(obj, name);
	if (!locked)
		return main_prog;
	bpf_program__set_autoload(main_prog, lockfree);
	bpf_program__set_autoload(locked, !lockfree);
	return lockfree ? main_prog : locked;
}

static void check_bucket(int lockfree)
{
	const char *bucket = lockfree ? "lock-free bucket" : "spin-locked bucket";
	char pin_dir[128], what[160], err[128];
	struct classifier_xdp *xdp = NULL;
	struct classifier_tc *tc = NULL;
	struct bpf_program *xdp_prog = NULL, *tc_prog = NULL;
	int xdp_ok = 0, tc_ok = 0, err_no;

	snprintf(pin_dir, sizeof(pin_dir), BPFFS_DIR "/sgkcheck-%d-%d", (int)getpid(), lockfree);
	if (mkdir(pin_dir, 0700)) {
		snprintf(what, sizeof(what), "%s: pin directory", bucket);
		fail(what, "mkdir %s: %s", pin_dir, strerror(errno));
		return;
	}
	{
		LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);

		xdp = classifier_xdp__open_opts(&opts);
		if (!xdp) {
			snprintf(what, sizeof(what), "xdp %s: object opens", bucket);
			fail(what, "%s", strerror(errno));
		} else {
			xdp_prog = pick_prog(xdp->obj, xdp->progs.smtpguard_xdp, lockfree);
			snprintf(what, sizeof(what), "%s %s: object loads",
				 bpf_program__name(xdp_prog), bucket);
			xdp->rodata->sg_lockfree_bucket = lockfree;
			err_no = classifier_xdp__load(xdp);
			if (err_no)
				fail(what, "load: %s (verifier log above)", strerror(-err_no));
			else
				xdp_ok = 1, pass(what);
		}

		/* the TC object reuses the maps the XDP object pinned */
		tc = classifier_tc__open_opts(&opts);
		if (!tc) {
			snprintf(what, sizeof(what), "tc %s: object opens", bucket);
			fail(what, "%s", strerror(errno));
		} else {
			tc_prog = pick_prog(tc->obj, tc->progs.smtpguard_tc, lockfree);
			snprintf(what, sizeof(what), "%s %s: object loads",
				 bpf_program__name(tc_prog), bucket);
			tc->rodata->sg_lockfree_bucket = lockfree;
			err_no = classifier_tc__load(tc);
			if (err_no)
				fail(what, "load: %s (verifier log above)", strerror(-err_no));
			else
				tc_ok = 1, pass(what);
		}
	}
	if (!xdp_ok)
		goto out;

	snprintf(what, sizeof(what), "%s: maps configured", bucket);
	if (configure(xdp, err, sizeof(err))) {
		fail(what, "%s", err);
		goto out;
	}
	pass(what);

	{
		struct prog p = {
			.name = bpf_program__name(xdp_prog), .fd = bpf_program__fd(xdp_prog),
			.verdict_pass = XDP_PASS, .verdict_drop = XDP_DROP,
			.net = "10.0.1", .blocked_host = 1,
		};
		check_prog(&p, bucket, bpf_map__fd(xdp->maps.src_state));
	}
	if (tc_ok) {
		struct prog p = {
			.name = bpf_program__name(tc_prog), .fd = bpf_program__fd(tc_prog),
			/* passed: on to the next filter */
			.verdict_pass = TC_ACT_UNSPEC, .verdict_drop = TC_ACT_SHOT,
			.net = "10.0.2", .blocked_host = 2,
		};
		check_prog(&p, bucket, bpf_map__fd(xdp->maps.src_state));
	}
out:
	classifier_tc__destroy(tc);
	classifier_xdp__destroy(xdp);
	remove_pin_dir(pin_dir);
}

/* Whether the kernel's version promises BPF cmpxchg (5.12) and
 * bpf_ktime_get_coarse_ns (5.11). */
static int version_has_lockfree(const char *rel)
{
	int major = 0, minor = 0;

	if (sscanf(rel, "%d.%d", &major, &minor) != 2)
		return -1;
	return major > 5 || (major == 5 && minor >= 12);
}

static void check_tunnel(void)
{
	struct tunnel *skel = tunnel__open_and_load();

	if (!skel) {
		fail("tunnel redirect program loads", "%s", strerror(errno));
		return;
	}
	pass("tunnel redirect program loads");
	if (bpf_prog_attach(bpf_program__fd(skel->progs.tunnel_verdict),
			    bpf_map__fd(skel->maps.tunnel_socks), BPF_SK_SKB_STREAM_VERDICT, 0))
		fail("tunnel verdict attaches to its SOCKHASH", "%s", strerror(errno));
	else
		pass("tunnel verdict attaches to its SOCKHASH");
	tunnel__destroy(skel);
}

int main(void)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct utsname u;
	char what[96];
	int probed, expected;

	setvbuf(stdout, NULL, _IOLBF, 0);
	uname(&u);
	snprintf(release, sizeof(release), "%s", u.release);
	libbpf_set_print(libbpf_print);
	/* kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK */
	setrlimit(RLIMIT_MEMLOCK, &unlimited);

	if (setup_fs()) {
		fail("guest file systems", "proc, sysfs or bpffs missing");
		goto done;
	}

	probed = sg_probe_lockfree_bucket();
	expected = version_has_lockfree(release);
	snprintf(what, sizeof(what), "probe picks the %s bucket",
		 probed ? "lock-free" : "spin-locked");
	if (expected >= 0 && probed != expected)
		fail(what, "kernel %s should %shave cmpxchg and the coarse clock", release,
		     expected ? "" : "not ");
	else
		pass(what);

	check_bucket(probed);
	if (probed)
		check_bucket(0);	/* the fallback loads where it is not needed too */
	check_tunnel();
done:
	printf("KERNEL-CHECK-DONE %d failed\n", failures);
	return failures ? 1 : 0;
}
