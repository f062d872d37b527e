/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_doctor.c - `smtpguardctl doctor [-c FILE]`: checks what smtpguard
 * needs of this host and of its running daemon, and says for each finding
 * what was checked, what was found and what to do. The config file (-c;
 * /etc/smtpguard/smtpguard.conf when it exists) says what is expected:
 * its bpffs_root (unless --root is given), interfaces, uplink, proxy,
 * milters, certificate. Exit status: 0 every check ok, 1 a warning, 2 a
 * failure (2 is also a usage error's); --json prints the findings for
 * monitoring. This file: the command, the config, bpffs and the pins, the
 * kernel and the bucket variant, the daemon and its descriptors, the
 * listeners and the fail mode; ctl_doctor_host.c the rest.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "ctl_doctor.h"
#include "log.h"
#include "probe.h"

#define DEFAULT_CONFIG "/etc/smtpguard/smtpguard.conf"
/* where smtpguardd records its pid (daemon/instance.c names the file) */
#define LOCK_DIR "/run/smtpguard"

void finding(struct doctor *d, enum doctor_level level, const char *check, const char *todo,
	     const char *found, ...)
{
	struct finding *f;
	va_list ap;

	if (d->n == DOCTOR_MAX_FINDINGS)
		return;
	f = &d->findings[d->n++];
	f->level = level;
	snprintf(f->check, sizeof(f->check), "%s", check);
	snprintf(f->todo, sizeof(f->todo), "%s", todo ? todo : "");
	va_start(ap, found);
	vsnprintf(f->found, sizeof(f->found), found, ap);
	va_end(ap);
}

static void check_config(struct doctor *d, const char *path)
{
	char err[SG_ERR_LEN * 2], todo[1024];

	sg_config_defaults(&d->cfg);
	if (!path && access(DEFAULT_CONFIG, F_OK) == 0)
		path = DEFAULT_CONFIG;
	if (!path) {
		finding(d, DOCTOR_WARN, "config", "pass the daemon's config file: doctor -c FILE",
			"no config file given and none at %s: the checks expect the defaults",
			DEFAULT_CONFIG);
		return;
	}
	if (sg_config_load(&d->cfg, path, err, sizeof(err)) ||
	    sg_config_check(&d->cfg, path, err, sizeof(err))) {
		snprintf(todo, sizeof(todo), "fix %s (smtpguardd -c %s --check-config says the same)",
			 path, path);
		finding(d, DOCTOR_FAIL, "config", todo, "%s", err);
		sg_config_defaults(&d->cfg);
		return;
	}
	finding(d, DOCTOR_OK, "config", NULL, "%s is valid", path);
}

static void check_bpffs(struct doctor *d)
{
	struct ctl *ctl = d->ctl;
	char err[SG_ERR_LEN * 2], todo[1024], dir[SG_PATH_LEN], *slash;
	struct statfs fs;

	snprintf(dir, sizeof(dir), "%s", ctl->root);
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	if (statfs(access(ctl->root, F_OK) == 0 ? ctl->root : dir, &fs) ||
	    fs.f_type != BPF_FS_MAGIC) {
		snprintf(todo, sizeof(todo), "mount bpffs: mount -t bpf bpf %s (and in /etc/fstab: "
			 "bpf %s bpf defaults 0 0); then start smtpguardd", dir, dir);
		finding(d, DOCTOR_FAIL, "bpffs", todo, "%s is not on a bpffs mount: the maps cannot "
			"be pinned, nothing survives a restart", dir);
		return;
	}
	if (sg_maps_open(ctl->root, &ctl->maps, err, sizeof(err))) {
		snprintf(todo, sizeof(todo), "start smtpguardd -c FILE (it pins them); if it runs, "
			 "its bpffs_root is not %s: pass --root DIR or -c FILE", ctl->root);
		finding(d, DOCTOR_FAIL, "bpffs", todo, "%s", err);
		return;
	}
	d->have_maps = 1;
	finding(d, DOCTOR_OK, "bpffs", NULL, "bpffs mounted, smtpguard's maps pinned at %s",
		ctl->root);
}

/* The value of the classifier's sg_lockfree_bucket in a loaded program:
 * its .rodata map, the variable found by its BTF. 1, 0, or -1 unknown. */
static int loaded_bucket_variant(__u32 prog_id)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info), map_ids[64];
	int prog_fd = bpf_prog_get_fd_by_id(prog_id), variant = -1;

	if (prog_fd < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (__u64)(unsigned long)map_ids;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len)) {
		close(prog_fd);
		return -1;
	}
	close(prog_fd);
	for (__u32 i = 0; i < info.nr_map_ids && i < 64 && variant < 0; i++) {
		struct bpf_map_info mi;
		__u32 mlen = sizeof(mi), zero = 0;
		int fd = bpf_map_get_fd_by_id(map_ids[i]);
		const struct btf_type *sec;
		struct btf *btf;
		unsigned char value[4096];
		int sec_id;

		if (fd < 0)
			continue;
		memset(&mi, 0, sizeof(mi));
		if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) || !strstr(mi.name, ".rodata") ||
		    !mi.btf_id || mi.value_size > sizeof(value) ||
		    bpf_map_lookup_elem(fd, &zero, value)) {
			close(fd);
			continue;
		}
		close(fd);
		btf = btf__load_from_kernel_by_id(mi.btf_id);
		if (!btf)
			continue;
		sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
		sec = sec_id > 0 ? btf__type_by_id(btf, (__u32)sec_id) : NULL;
		for (int v = 0; sec && v < btf_vlen(sec); v++) {
			const struct btf_var_secinfo *vs = btf_var_secinfos(sec) + v;
			const struct btf_type *var = btf__type_by_id(btf, vs->type);
			const char *name = var ? btf__name_by_offset(btf, var->name_off) : NULL;

			if (name && strcmp(name, "sg_lockfree_bucket") == 0 &&
			    vs->offset < mi.value_size)
				variant = value[vs->offset] != 0;
		}
		btf__free(btf);
	}
	return variant;
}

static void check_kernel(struct doctor *d)
{
	struct utsname u;
	int major = 0, minor = 0, lockfree = sg_probe_lockfree_bucket_now(), loaded = -1;
	__u32 key, prev;
	int have_prev = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &major, &minor);
	if (major < 5 || (major == 5 && minor < 10))
		finding(d, DOCTOR_FAIL, "kernel", "run a kernel of 5.10 or later (Debian 11 and "
			"later ship one)", "Linux %s: smtpguard needs 5.10 or later", u.release);
	else
		finding(d, DOCTOR_OK, "kernel", NULL, "Linux %s; the token bucket it can load: %s",
			u.release, lockfree ? "lock-free (BPF cmpxchg, coarse clock)" :
			"spin-locked (no BPF cmpxchg or coarse clock before 5.12; exact too)");
	if (!d->have_maps)
		return;
	while (loaded < 0 && bpf_map_get_next_key(d->ctl->maps.attachments,
						  have_prev ? &prev : NULL, &key) == 0) {
		struct sg_attachment a;

		prev = key;
		have_prev = 1;
		if (bpf_map_lookup_elem(d->ctl->maps.attachments, &key, &a) == 0 && a.prog_id)
			loaded = loaded_bucket_variant(a.prog_id);
	}
	if (loaded < 0)
		finding(d, DOCTOR_OK, "bucket variant", NULL, "no attached program to read it "
			"from (nothing attached yet)");
	else if (loaded != lockfree)
		finding(d, DOCTOR_WARN, "bucket variant", "restart smtpguardd: it loads what "
			"this kernel offers", "the attached classifier uses the %s bucket, this "
			"kernel offers the %s one (loaded on another kernel?)",
			loaded ? "lock-free" : "spin-locked", lockfree ? "lock-free" : "spin-locked");
	else
		finding(d, DOCTOR_OK, "bucket variant", NULL, "the attached classifier uses the "
			"%s token bucket", loaded ? "lock-free" : "spin-locked");
}

/* smtpguardd's pid from its instance lock, or 0. */
static long daemon_pid(const char *root)
{
	char path[512], name[300], buf[32] = "";
	size_t n = 0;
	FILE *f;

	for (const char *c = root; *c && n < sizeof(name) - 1; c++)
		name[n++] = *c == '/' ? '_' : *c;
	name[n] = '\0';
	snprintf(path, sizeof(path), "%s/%s.lock", LOCK_DIR, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtol(buf, NULL, 10);
}

static int process_is_daemon(long pid)
{
	char path[64], comm[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "smtpguardd", 10) == 0;
}

/* The proxy processes smtpguardd pid forked (their comm is the daemon's;
 * two while an upgrade drains the old one), up to max, in pids; how many. */
static int proxy_pids(long pid, long *pids, int max)
{
	struct dirent *e;
	DIR *proc = opendir("/proc");
	int n = 0;

	while (proc && n < max && (e = readdir(proc))) {
		char path[300], stat[512], *close_paren;
		long child = strtol(e->d_name, NULL, 10), ppid = 0;
		FILE *f;

		if (child <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(stat, sizeof(stat), f))
			stat[0] = '\0';
		fclose(f);
		/* "pid (comm) state ppid ...": comm may hold anything, so from its
		 * last parenthesis */
		close_paren = strrchr(stat, ')');
		if (!close_paren || sscanf(close_paren + 1, " %*c %ld", &ppid) != 1 || ppid != pid)
			continue;
		if (strstr(stat, "(smtpguardd)"))
			pids[n++] = child;
	}
	if (proc)
		closedir(proc);
	return n;
}

static void check_descriptors(struct doctor *d, long pid, const char *who)
{
	char path[64], line[256];
	unsigned long long soft = 0, open_fds = 0;
	struct dirent *e;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/limits", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "Max open files", 14) == 0)
			sscanf(line + 14, "%llu", &soft);
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
	dir = opendir(path);
	while (dir && (e = readdir(dir)))
		open_fds += e->d_name[0] != '.';
	if (dir)
		closedir(dir);
	if (!soft || !dir) {
		finding(d, DOCTOR_WARN, "descriptors", "run doctor as root", "cannot read the "
			"%s's descriptor limit or count (/proc/%ld)", who, pid);
		return;
	}
	if (open_fds * 100 >= soft * 95)
		finding(d, DOCTOR_FAIL, "descriptors", "raise LimitNOFILE (systemd) or ulimit -Hn "
			"for smtpguardd: the daemon raises its soft limit to the hard one",
			"the %s (pid %ld) has %llu of %llu descriptors open: new sessions are "
			"refused with 421", who, pid, open_fds, soft);
	else if (open_fds * 100 >= soft * 80)
		finding(d, DOCTOR_WARN, "descriptors", "raise LimitNOFILE (systemd) or ulimit -Hn "
			"for smtpguardd", "the %s (pid %ld) has %llu of %llu descriptors open (a "
			"session holds two)", who, pid, open_fds, soft);
	else
		finding(d, DOCTOR_OK, "descriptors", NULL, "the %s (pid %ld) has %llu of %llu "
			"descriptors open (room for about %llu more sessions)", who, pid, open_fds,
			soft, (soft - open_fds) / 2);
}

static void check_daemon(struct doctor *d)
{
	long pid = daemon_pid(d->ctl->root), proxies[4];
	int n;

	if (!pid || !process_is_daemon(pid)) {
		finding(d, DOCTOR_FAIL, "daemon", "start smtpguardd -c FILE (systemctl start "
			"smtpguard)", "no smtpguardd runs for %s%s: the classifier keeps counting "
			"and limiting, but nothing follows new interfaces, evicts state or proxies",
			d->ctl->root, d->have_maps ? "" : " (and no maps are pinned)");
		return;
	}
	finding(d, DOCTOR_OK, "daemon", NULL, "smtpguardd runs (pid %ld)", pid);
	check_descriptors(d, pid, "daemon");
	if (!d->cfg.proxy)
		return;
	/* the sessions' descriptors are the proxy process's */
	n = proxy_pids(pid, proxies, 4);
	if (!n)
		finding(d, DOCTOR_FAIL, "proxy", "read smtpguardd's log: it restarts a proxy that "
			"died (1 s, doubling to 30 s)", "proxy = yes but smtpguardd (pid %ld) has no "
			"proxy process: scan flows get fail_mode", pid);
	for (int i = 0; i < n; i++)
		check_descriptors(d, proxies[i], "proxy");
}

static void check_listeners(struct doctor *d)
{
	struct sg_settings s;
	__u32 zero = 0;
	int registered = 0;

	if (!d->have_maps || bpf_map_lookup_elem(d->ctl->maps.settings, &zero, &s))
		return;
	for (__u32 k = 0; k < 2 * SG_MAX_WORKERS; k++) {
		__u64 cookie;

		registered += bpf_map_lookup_elem(d->ctl->maps.listeners, &k, &cookie) == 0;
	}
	if (!s.steer_mark) {
		finding(d, DOCTOR_OK, "listeners", NULL, "the proxy is off (proxy = no): scan "
			"flows are rate-limited in the kernel, not read");
	} else if (!registered) {
		finding(d, DOCTOR_FAIL, "listeners", "restart smtpguardd and read its log (the "
			"proxy's workers did not start or have died)", "no proxy listener is "
			"registered: every scan flow gets fail_mode = %s (%s)",
			s.fail_mode == SG_FAIL_CLOSED ? "closed" : "open",
			s.fail_mode == SG_FAIL_CLOSED ? "refused" : "sent on unscanned");
	} else if (registered < s.n_workers) {
		finding(d, DOCTOR_WARN, "listeners", "restart smtpguardd and read its log",
			"%d listener(s) registered for %u worker(s): some workers are gone",
			registered, s.n_workers);
	} else {
		finding(d, DOCTOR_OK, "listeners", NULL, "%d proxy listener(s) registered for %u "
			"worker(s)", registered, s.n_workers);
	}
	if (s.fail_mode != (unsigned)d->cfg.fail_mode)
		finding(d, DOCTOR_WARN, "fail mode", "set it back with smtpguardctl fail-mode, or "
			"change fail_mode in the config", "fail mode is %s in the kernel, %s in the "
			"config (changed by smtpguardctl fail-mode; a restart takes the config's)",
			s.fail_mode == SG_FAIL_CLOSED ? "closed" : "open",
			d->cfg.fail_mode == SG_FAIL_CLOSED ? "closed" : "open");
	else
		finding(d, DOCTOR_OK, "fail mode", NULL, "%s: while no listener is registered, "
			"scan flows are %s", s.fail_mode == SG_FAIL_CLOSED ? "closed" : "open",
			s.fail_mode == SG_FAIL_CLOSED ? "refused" : "sent on unscanned");
}

static const char *level_name(enum doctor_level l)
{
	return l == DOCTOR_FAIL ? "fail" : l == DOCTOR_WARN ? "warn" : "ok";
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int report(const struct doctor *d, int json)
{
	int worst = DOCTOR_OK, count[3] = { 0, 0, 0 };

	for (int i = 0; i < d->n; i++) {
		count[d->findings[i].level]++;
		if ((int)d->findings[i].level > worst)
			worst = d->findings[i].level;
	}
	if (json) {
		printf("{\"status\":\"%s\",\"ok\":%d,\"warnings\":%d,\"failures\":%d,\"findings\":[",
		       level_name(worst), count[0], count[1], count[2]);
		for (int i = 0; i < d->n; i++) {
			const struct finding *f = &d->findings[i];

			printf("%s{\"level\":\"%s\",\"check\":", i ? "," : "", level_name(f->level));
			json_string(f->check);
			printf(",\"found\":");
			json_string(f->found);
			printf(",\"todo\":");
			json_string(f->todo);
			printf("}");
		}
		printf("]}\n");
		return worst;
	}
	for (int i = 0; i < d->n; i++) {
		const struct finding *f = &d->findings[i];

		printf("%-6s %s: %s\n", f->level == DOCTOR_FAIL ? "FAIL" :
		       f->level == DOCTOR_WARN ? "WARN" : "ok", f->check, f->found);
		if (f->todo[0] && f->level != DOCTOR_OK)
			printf("       -> %s\n", f->todo);
	}
	printf("doctor: %d ok, %d warning(s), %d failure(s)\n", count[0], count[1], count[2]);
	return worst;
}

int cmd_doctor(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *config = NULL;
	struct opt_spec specs[] = { { "-c", &config } };
	struct doctor *d;
	int ret;

	ret = parse_opts(argc, argv, first, specs, 1, 0, "doctor [-c FILE]");
	if (ret)
		return ret;
	d = calloc(1, sizeof(*d));
	if (!d) {
		sg_err("out of memory");
		return DOCTOR_FAIL;
	}
	d->ctl = ctl;
	check_config(d, config);
	/* the config's root, unless --root said otherwise */
	if (strcmp(ctl->root, DEFAULT_ROOT) == 0) {
		static char root[SG_PATH_LEN];

		snprintf(root, sizeof(root), "%s", d->cfg.bpffs_root);
		ctl->root = root;
	}
	check_bpffs(d);
	check_kernel(d);
	check_daemon(d);
	check_uplink_found(d);
	check_sysctls(d);
	check_interfaces(d);
	check_routing(d);
	check_listeners(d);
	check_milters(d);
	check_certificate(d);
	check_metrics_listener(d);
	ret = report(d, ctl->json);
	free(d);
	return ret;
}
