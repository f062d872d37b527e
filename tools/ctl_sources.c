/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ctl_sources.c - per-sender state: show, block, unblock, top (see ctl.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "log.h"
#include "parse.h"

static const char *step_name(unsigned int step)
{
	static const char *const names[] = { "normal", "flagged", "tempfail", "refused" };

	return step < 4 ? names[step] : "?";
}

/* The reason kept in the map, fit to print and to quote in JSON: it
 * holds what senders wrote (a rule's name, a domain). */
static void printable_reason(const struct sg_src_feedback *fb, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < sizeof(fb->ladder_reason) && fb->ladder_reason[i] && o + 1 < len; i++) {
		char c = fb->ladder_reason[i];

		out[o++] = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? c : '?';
	}
	out[o] = '\0';
}

int cmd_show(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_src_feedback fb;
	struct sg_src_state st;
	struct sg_rate_class rc;
	struct sg_src_key key;
	const char *addr;
	char cbuf[SG_RATE_CLASS_NAME_LEN + 8], rate[32], reason[SG_LADDER_REASON_LEN];
	uint64_t now = sg_now_ns(), penalty_ms = 0, tokens = 0, last_seen;
	int ret, known;

	ret = parse_source_arg(argc, argv, first, "show ADDR", NULL, 0, &key, &addr);
	if (ret)
		return ret;
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	known = sg_source_read(&ctl->maps, &key, &st) == 0;
	if (!known)
		memset(&st, 0, sizeof(st));
	if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &fb))
		memset(&fb, 0, sizeof(fb));
	else
		known = 1;
	printable_reason(&fb, reason, sizeof(reason));
	/* the kernel's table may have evicted it while the proxy's has not */
	last_seen = st.last_seen_ns > fb.last_ns ? st.last_seen_ns : fb.last_ns;
	class_name(ctl, st.rate_class, cbuf, sizeof(cbuf));
	memset(&rc, 0, sizeof(rc));
	bpf_map_lookup_elem(ctl->maps.rate_classes, &st.rate_class, &rc);
	sg_format_rate(rc.conn_interval_ns, rate, sizeof(rate));
	if (st.penalty_until_ns > now)
		penalty_ms = (st.penalty_until_ns - now) / 1000000;
	if (rc.conn_interval_ns) {
		uint64_t debt = st.tat_ns > now ? st.tat_ns - now : 0;
		uint64_t cap = (uint64_t)rc.conn_burst * rc.conn_interval_ns;

		tokens = debt >= cap ? 0 : (cap - debt) / rc.conn_interval_ns;
	}
	if (ctl->json) {
		printf("{\"source\":\"%s\",\"known\":%s,\"rate_class\":\"%s\",\"conn_rate\":\"%s\","
		       "\"burst\":%u,\"tokens\":%llu,\"syns\":%llu,\"syn_drops\":%llu,"
		       "\"penalty_remaining_ms\":%llu,\"idle_ms\":%llu,\"msgs\":%llu,"
		       "\"rcpts\":%llu,\"rejects\":%llu,\"tempfails\":%llu,\"mx_5xx\":%llu,"
		       "\"sessions\":%llu,\"tls_sessions\":%llu,\"tls_uninspected\":%llu,"
		       "\"sessions_refused\":%llu,\"penalties\":%u,\"suspect\":%s,"
		       "\"ladder\":\"%s\",\"ladder_since_ms\":%llu,\"ladder_remaining_ms\":%llu,"
		       "\"ladder_reason\":\"%s\"}\n",
		       addr, known ? "true" : "false", cbuf, rate, rc.conn_burst,
		       (unsigned long long)tokens, (unsigned long long)st.syns,
		       (unsigned long long)st.syn_drops, (unsigned long long)penalty_ms,
		       (unsigned long long)(known && now > last_seen ?
					    (now - last_seen) / 1000000 : 0),
		       (unsigned long long)fb.msgs, (unsigned long long)fb.rcpts,
		       (unsigned long long)fb.rejects, (unsigned long long)fb.tempfails,
		       (unsigned long long)fb.mx_5xx, (unsigned long long)fb.sessions,
		       (unsigned long long)fb.tls_sessions, (unsigned long long)fb.tls_uninspected,
		       (unsigned long long)fb.sessions_refused, fb.penalties,
		       fb.suspect_until_ns > now ? "true" : "false", step_name(fb.ladder_step),
		       (unsigned long long)(fb.ladder_step && now > fb.ladder_since_ns ?
					    (now - fb.ladder_since_ns) / 1000000 : 0),
		       (unsigned long long)(fb.ladder_until_ns > now ?
					    (fb.ladder_until_ns - now) / 1000000 : 0), reason);
		return 0;
	}
	if (!known) {
		printf("%s: no connection attempts seen (no per-source state)\n", addr);
		return 0;
	}
	printf("source:      %s\n", addr);
	printf("rate class:  %s (%s, burst %u)\n", cbuf, rate, rc.conn_burst);
	printf("bucket:      %llu of %u connections available\n",
	       (unsigned long long)tokens, rc.conn_burst);
	printf("syns:        %llu\n", (unsigned long long)st.syns);
	printf("syn drops:   %llu\n", (unsigned long long)st.syn_drops);
	if (penalty_ms)
		printf("penalty:     %llu.%03llu s left\n", (unsigned long long)penalty_ms / 1000,
		       (unsigned long long)penalty_ms % 1000);
	else
		printf("penalty:     none\n");
	printf("last seen:   %.1f s ago\n", now > last_seen ? (double)(now - last_seen) / 1e9 : 0.0);
	printf("messages:    %llu delivered (%llu recipients), %llu refused, %llu deferred, "
	       "%llu MX 5xx\n", (unsigned long long)fb.msgs, (unsigned long long)fb.rcpts,
	       (unsigned long long)fb.rejects, (unsigned long long)fb.tempfails,
	       (unsigned long long)fb.mx_5xx);
	printf("sessions:    %llu proxied, %llu with TLS (%llu passed through, not inspected), "
	       "%llu refused at the session limit\n",
	       (unsigned long long)fb.sessions, (unsigned long long)fb.tls_sessions,
	       (unsigned long long)fb.tls_uninspected, (unsigned long long)fb.sessions_refused);
	printf("ladder:      %s", step_name(fb.ladder_step));
	if (fb.ladder_step)
		printf(" for %.0f s%s, because %s", (double)(now - fb.ladder_since_ns) / 1e9,
		       fb.ladder_until_ns > now ? "" : " (lapsing)", reason);
	if (fb.ladder_until_ns > now)
		printf("; lapses in %.0f s", (double)(fb.ladder_until_ns - now) / 1e9);
	printf("\n");
	printf("refusals:    %u in the kernel so far (each penalty longer)%s\n", fb.penalties,
	       fb.suspect_until_ns > now ? "; flagged: its flows are proxied" : "");
	return 0;
}

int cmd_release(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_src_feedback fb;
	struct sg_src_key key;
	char err[SG_ERR_LEN];
	const char *addr;
	int ret;

	ret = parse_source_arg(argc, argv, first, "release ADDR", NULL, 0, &key, &addr);
	if (ret)
		return ret;
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &fb)) {
		sg_err("%s has no feedback entry: the proxy never judged it, nothing to release",
		       addr);
		return 1;
	}
	/* the daemon sees released_ns move and forgets the sender's signals */
	fb.ladder_step = SG_LADDER_NORMAL;
	fb.release_pending = 1;
	fb.ladder_since_ns = fb.released_ns = sg_now_ns();
	fb.ladder_until_ns = 0;
	fb.suspect_until_ns = 0;
	fb.reject_window_count = 0;
	fb.penalties = 0;
	snprintf(fb.ladder_reason, sizeof(fb.ladder_reason), "released by the operator");
	if (bpf_map_update_elem(ctl->maps.src_feedback, &key, &fb, BPF_EXIST)) {
		sg_err("writing the feedback entry of %s failed: %s", addr, strerror(errno));
		return 1;
	}
	if (sg_source_read(&ctl->maps, &key, &(struct sg_src_state){ 0 }) == 0 &&
	    sg_source_set_penalty(&ctl->maps, &key, 0, err, sizeof(err))) {
		sg_err("%s", err);
		return 1;
	}
	printf("%s released: back to normal, no penalty\n", addr);
	return 0;
}

int cmd_block(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *duration = NULL, *addr;
	struct opt_spec specs[] = { { "--for", &duration } };
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];
	struct sg_src_key key;
	uint64_t ns;
	int ret;

	ret = parse_source_arg(argc, argv, first, "block ADDR --for DURATION", specs, 1, &key, &addr);
	if (ret)
		return ret;
	if (!duration)
		return usage_error("'block %s' needs --for DURATION (e.g. --for 10m)", addr);
	if (sg_parse_duration(duration, &ns, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "--for: %s", err);
		return usage_error("%s", msg);
	}
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	if (sg_source_set_penalty(&ctl->maps, &key, sg_now_ns() + ns, err, sizeof(err))) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

int cmd_unblock(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_src_state st;
	struct sg_src_key key;
	char err[SG_ERR_LEN];
	const char *addr;
	int ret;

	ret = parse_source_arg(argc, argv, first, "unblock ADDR", NULL, 0, &key, &addr);
	if (ret)
		return ret;
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	if (sg_source_read(&ctl->maps, &key, &st)) {
		sg_err("%s has no per-source state, so no penalty to lift", addr);
		return 1;
	}
	if (sg_source_set_penalty(&ctl->maps, &key, 0, err, sizeof(err))) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

struct top_row {
	struct sg_src_key key;
	struct sg_src_state st;
	struct sg_src_feedback fb;
};

enum top_order { TOP_SYNS, TOP_DROPS, TOP_MSGS, TOP_REJECTS };
static enum top_order top_order;

static uint64_t top_value(const struct top_row *r)
{
	switch (top_order) {
	case TOP_DROPS:
		return r->st.syn_drops;
	case TOP_MSGS:
		return r->fb.msgs;
	case TOP_REJECTS:
		return r->fb.rejects;
	default:
		return r->st.syns;
	}
}

static int top_cmp(const void *a, const void *b)
{
	uint64_t vx = top_value(a), vy = top_value(b);

	return vx < vy ? 1 : vx > vy ? -1 : 0;
}

/* Every sender of one map (src_state or src_feedback) not listed yet,
 * with what both maps hold of it. */
static int top_collect(struct ctl *ctl, int map_fd, int skip_known, struct top_row **rows,
		       size_t *nrows, size_t *cap)
{
	struct sg_src_key key, prev_key;
	int have_prev = 0;

	while (bpf_map_get_next_key(map_fd, have_prev ? &prev_key : NULL, &key) == 0) {
		struct top_row *r;
		int in_state;

		prev_key = key;
		have_prev = 1;
		if (*nrows == *cap) {
			struct top_row *grown;

			*cap = *cap ? *cap * 2 : 256;
			grown = realloc(*rows, *cap * sizeof(**rows));
			if (!grown)
				return -1;
			*rows = grown;
		}
		r = &(*rows)[*nrows];
		r->key = key;
		in_state = sg_source_read(&ctl->maps, &key, &r->st) == 0;
		if (skip_known && in_state)
			continue;	/* listed from src_state already */
		if (!in_state)
			memset(&r->st, 0, sizeof(r->st));
		if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &r->fb))
			memset(&r->fb, 0, sizeof(r->fb));
		(*nrows)++;
	}
	return 0;
}

int cmd_top(struct ctl *ctl, int argc, char **argv, int first)
{
	static const char *const orders[] = { "syns", "drops", "msgs", "rejects" };
	const char *by = NULL, *count = NULL;
	struct opt_spec specs[] = { { "--by", &by }, { "-n", &count } };
	struct top_row *rows = NULL;
	size_t nrows = 0, cap = 0;
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];
	uint64_t limit = 10;
	int ret;

	ret = parse_opts(argc, argv, first, specs, 2, 0,
			 "top [--by syns|drops|msgs|rejects] [-n N]");
	if (ret)
		return ret;
	top_order = TOP_SYNS;
	if (by) {
		size_t o;

		for (o = 0; o < sizeof(orders) / sizeof(orders[0]); o++)
			if (strcmp(by, orders[o]) == 0)
				break;
		if (o == sizeof(orders) / sizeof(orders[0]))
			return usage_error("--by '%s' is not one of syns|drops|msgs|rejects", by);
		top_order = (enum top_order)o;
	}
	if (count && sg_parse_uint(count, 1, 100000, &limit, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "-n: %s", err);
		return usage_error("%s", msg);
	}
	ret = open_maps(ctl);
	if (ret)
		return ret;
	if (top_collect(ctl, ctl->maps.src_state, 0, &rows, &nrows, &cap) ||
	    top_collect(ctl, ctl->maps.src_feedback, 1, &rows, &nrows, &cap)) {
		free(rows);
		sg_err("out of memory listing sources");
		return 1;
	}
	if (nrows)
		qsort(rows, nrows, sizeof(*rows), top_cmp);
	if (ctl->json)
		printf("[");
	else
		printf("%-40s %-16s %10s %10s %10s %10s\n", "SOURCE", "CLASS", "SYNS", "DROPS",
		       "MSGS", "REJECTS");
	for (size_t i = 0; i < nrows && i < limit; i++) {
		char addr[INET6_ADDRSTRLEN + 8], cbuf[SG_RATE_CLASS_NAME_LEN + 8];
		const struct top_row *r = &rows[i];

		sg_format_source(&r->key, v6_source_prefix(ctl), addr, sizeof(addr));
		class_name(ctl, r->st.rate_class, cbuf, sizeof(cbuf));
		if (ctl->json)
			printf("%s{\"source\":\"%s\",\"syns\":%llu,\"syn_drops\":%llu,"
			       "\"msgs\":%llu,\"rejects\":%llu,\"rate_class\":\"%s\"}",
			       i ? "," : "", addr, (unsigned long long)r->st.syns,
			       (unsigned long long)r->st.syn_drops, (unsigned long long)r->fb.msgs,
			       (unsigned long long)r->fb.rejects, cbuf);
		else
			printf("%-40s %-16s %10llu %10llu %10llu %10llu\n", addr, cbuf,
			       (unsigned long long)r->st.syns, (unsigned long long)r->st.syn_drops,
			       (unsigned long long)r->fb.msgs, (unsigned long long)r->fb.rejects);
	}
	if (ctl->json)
		printf("]\n");
	free(rows);
	return 0;
}
