/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ctl_state.c - stats, fail-mode and trace by Message-ID (see ctl.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "eventline.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "pstats.h"

/* The source check's counts per interface (iface_state): "spoofed@IFNAME"
 * lines (or keys: every value of stats --json stays a number). Interfaces
 * with none are left out. */
static void print_iface_spoofed(const struct ctl *ctl)
{
	__u32 key, prev;
	int have = 0;

	while (bpf_map_get_next_key(ctl->maps.iface_state, have ? &prev : NULL, &key) == 0) {
		struct sg_iface_state is;
		char name[IF_NAMESIZE];

		prev = key;
		have = 1;
		if (bpf_map_lookup_elem(ctl->maps.iface_state, &key, &is) || !is.spoofed)
			continue;
		if (!if_indextoname(key, name))
			snprintf(name, sizeof(name), "%u", key);
		if (ctl->json)
			printf(",\"spoofed@%s\":%llu", name, (unsigned long long)is.spoofed);
		else
			printf("spoofed@%-15s %llu\n", name, (unsigned long long)is.spoofed);
	}
}

int cmd_stats(struct ctl *ctl, int argc, char **argv, int first)
{
	uint64_t counters[SG_STAT__COUNT];
	struct sg_proxy_stats proxy;
	int ret;

	ret = no_args_then_maps(ctl, argc, argv, first, "stats");
	if (ret)
		return ret;
	if (sg_stats_read(&ctl->maps, counters)) {
		sg_err("reading the stats map at %s failed", ctl->root);
		return 1;
	}
	if (ctl->json)
		printf("{");
	for (int i = 0; i < SG_STAT__COUNT; i++) {
		if (ctl->json)
			printf("%s\"%s\":%llu", i ? "," : "", sg_stat_name(i),
			       (unsigned long long)counters[i]);
		else
			printf("%-16s %llu\n", sg_stat_name(i), (unsigned long long)counters[i]);
	}
	if (sg_pstats_read(ctl->maps.proxy_stats, &proxy))
		memset(&proxy, 0, sizeof(proxy));
	for (int i = 0; i < SG_PSTAT__COUNT; i++) {
		if (ctl->json)
			printf(",\"%s\":%llu", sg_pstat_name(i), (unsigned long long)proxy.count[i]);
		else
			printf("%-24s %llu\n", sg_pstat_name(i), (unsigned long long)proxy.count[i]);
	}
	print_iface_spoofed(ctl);
	if (ctl->json)
		printf("}\n");
	return 0;
}

/* The metrics as smtpguardd's metrics_listen serves them (the same writer,
 * from the same maps), for a scraper's textfile collector or a look. */
int cmd_metrics(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_metrics_snapshot snap;
	char err[SG_ERR_LEN];
	int ret;

	ret = no_args_then_maps(ctl, argc, argv, first, "metrics");
	if (ret)
		return ret;
	if (sg_metrics_collect(&ctl->maps, &snap, err, sizeof(err))) {
		sg_err("%s (root %s)", err, ctl->root);
		return 1;
	}
	return sg_metrics_write(stdout, &snap) ? 1 : 0;
}

/* The fail mode of scan flows while no proxy listener is registered; it
 * holds over a reload (SIGHUP) unless the config file's fail_mode changed,
 * and the config sets it again at the daemon's next start. Without an
 * argument it is shown. */
int cmd_fail_mode(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *mode = positional_arg(argc, argv, first, 0);
	struct sg_settings s;
	__u32 zero = 0;
	int ret, v = -1;

	ret = parse_opts(argc, argv, first, NULL, 0, mode ? 1 : 0, "fail-mode [open|closed]");
	if (ret)
		return ret;
	if (mode) {
		v = !strcmp(mode, "open") ? SG_FAIL_OPEN : !strcmp(mode, "closed") ?
		    SG_FAIL_CLOSED : -1;
		if (v < 0)
			return usage_error("fail mode '%s' is not one of open|closed", mode);
	}
	ret = open_maps(ctl);
	if (ret)
		return ret;
	if (bpf_map_lookup_elem(ctl->maps.settings, &zero, &s)) {
		sg_err("reading the settings at %s failed", ctl->root);
		return 1;
	}
	if (!mode) {
		printf(ctl->json ? "{\"fail_mode\":\"%s\"}\n" : "%s\n",
		       s.fail_mode == SG_FAIL_CLOSED ? "closed" : "open");
		return 0;
	}
	s.fail_mode = (__u8)v;
	if (bpf_map_update_elem(ctl->maps.settings, &zero, &s, BPF_ANY)) {
		sg_err("writing the settings at %s failed: %s", ctl->root, strerror(errno));
		return 1;
	}
	return 0;
}

/* Which VM sent a message: by its Message-ID or smtpguard's reference id. */
int cmd_trace(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *events = NULL, *id;
	struct opt_spec specs[] = { { "--events", &events } };
	char line[8192];
	int ret, found = 0;
	FILE *f;

	ret = parse_opts(argc, argv, first, specs, 1, 1, "trace ID --events FILE");
	if (ret)
		return ret;
	id = positional_arg(argc, argv, first, 0);
	if (!events)
		return usage_error("'trace %s' needs --events FILE (the daemon's events_file)", id);
	f = fopen(events, "r");
	if (!f) {
		sg_err("cannot open the events file %s: %s", events, strerror(errno));
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		char ref[64], mid[600], src[80], mx[80], verdict[16], t[40];

		if (!strstr(line, "\"event\":\"message\""))
			continue;
		if (sg_event_field(line, "ref", ref, sizeof(ref)) ||
		    sg_event_field(line, "message_id", mid, sizeof(mid)))
			continue;
		if (strcmp(ref, id) && !sg_same_message_id(mid, id))
			continue;
		found++;
		if (ctl->json) {
			fputs(line, stdout);
			continue;
		}
		sg_event_field(line, "source", src, sizeof(src));
		sg_event_field(line, "mx", mx, sizeof(mx));
		sg_event_field(line, "verdict", verdict, sizeof(verdict));
		sg_event_field(line, "time", t, sizeof(t));
		printf("%s  %s -> %s  %s  ref %s  message-id %s\n", t, src, mx, verdict, ref,
		       mid[0] ? mid : "-");
	}
	fclose(f);
	if (!found) {
		sg_err("no message with Message-ID or reference id '%s' in %s", id, events);
		return 1;
	}
	return 0;
}
