/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ctl_sources.c - per-sender state: show, block, unblock (see ctl.h). */
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

/* Confirmed complaints the proxy's ladder has not taken yet. */
static unsigned int complaints_pending(const struct sg_src_feedback *fb)
{
	return fb->complaints > fb->complaints_applied ? fb->complaints - fb->complaints_applied : 0;
}

int cmd_show(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_src_feedback fb;
	struct sg_src_state st;
	struct sg_rate_class rc;
	struct sg_src_key key;
	const char *addr;
	char cbuf[SG_RATE_CLASS_NAME_LEN + 8], rate[32], reason[SG_LADDER_REASON_LEN];
	char tenant[SG_TENANT_NAME_LEN + 2] = "null";
	uint64_t now = sg_now_ns(), penalty_ms = 0, tokens = 0, last_seen;
	const char *config = NULL;
	struct opt_spec specs[] = { { "-c", &config } };
	struct sg_tenants *tenants;
	int ret, known;

	ret = parse_source_arg(argc, argv, first, "show ADDR [-c FILE]", specs, 1, &key, &addr);
	if (ret)
		return ret;
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	ret = ctl_tenants_load(config, &tenants);
	if (ret)
		return ret;
	{
		char name[SG_TENANT_NAME_LEN];

		if (sg_tenant_of_key(&ctl->maps, tenants, &key, name, sizeof(name)))
			snprintf(tenant, sizeof(tenant), "\"%s\"", name);
		sg_tenants_free(tenants);
	}
	known = sg_source_read(&ctl->maps, &key, &st) == 0;
	if (!known)
		memset(&st, 0, sizeof(st));
	memset(&fb, 0, sizeof(fb));	/* an older daemon's entries are shorter */
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
		printf("{\"source\":\"%s\",\"tenant\":%s,\"known\":%s,\"rate_class\":\"%s\",\"conn_rate\":\"%s\","
		       "\"burst\":%u,\"tokens\":%llu,\"syns\":%llu,\"syn_drops\":%llu,"
		       "\"penalty_remaining_ms\":%llu,\"idle_ms\":%llu,\"msgs\":%llu,"
		       "\"rcpts\":%llu,\"rejects\":%llu,\"tempfails\":%llu,\"mx_5xx\":%llu,"
		       "\"sessions\":%llu,\"tls_sessions\":%llu,\"tls_uninspected\":%llu,"
		       "\"sessions_refused\":%llu,\"penalties\":%u,\"suspect\":%s,"
		       "\"ladder\":\"%s\",\"ladder_since_ms\":%llu,\"ladder_remaining_ms\":%llu,"
		       "\"ladder_reason\":\"%s\",\"complaints\":%u,\"complaints_pending\":%u}\n",
		       addr, tenant, known ? "true" : "false", cbuf, rate, rc.conn_burst,
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
					    (fb.ladder_until_ns - now) / 1000000 : 0), reason,
		       fb.complaints, complaints_pending(&fb));
		return 0;
	}
	if (!known) {
		printf("%s: no connection attempts seen (no per-source state)\n", addr);
		return 0;
	}
	printf("source:      %s\n", addr);
	printf("tenant:      %.*s\n", tenant[0] == '"' ? (int)strlen(tenant) - 2 : 4,
	       tenant[0] == '"' ? tenant + 1 : "none");
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
	if (fb.complaints)
		printf("complaints:  %u confirmed, the last %.0f s ago%s\n", fb.complaints,
		       now > fb.complaint_ns ? (double)(now - fb.complaint_ns) / 1e9 : 0.0,
		       complaints_pending(&fb) ? "; not yet on the ladder (at its next message)" : "");
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
	fb.complaints_applied = fb.complaints;	/* complaints not yet taken are forgiven */
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
