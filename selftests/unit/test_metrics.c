/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_metrics - the Prometheus exposition (lib/metrics.c) from a made-up
 * snapshot: every family has its HELP and TYPE lines before its samples,
 * names and label values are as the format 0.0.4 wants them, histograms
 * are cumulative with le="+Inf" equal to _count, every counter of the
 * enums is there, and counters only go up from one snapshot to the next.
 */
#include <stdlib.h>
#include <string.h>
#include "metrics.h"
#include "parse.h"
#include "pmetrics.h"
#include "test.h"

static char *render(const struct sg_metrics_snapshot *snap)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ASSERT_EQ(sg_metrics_write(f, snap), 0, "write: the stream took it all");
	fclose(f);
	return text;
}

/* The value of the sample line that starts with series ("name{labels}"),
 * or -1 when there is none. */
static double sample(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, series, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

static void fill(struct sg_metrics_snapshot *snap)
{
	memset(snap, 0, sizeof(*snap));
	for (int i = 0; i < SG_STAT__COUNT; i++)
		snap->kernel[i] = 100 + (uint64_t)i;
	for (int i = 0; i < SG_PSTAT__COUNT; i++)
		snap->proxy.count[i] = 7;
	snap->have_proxy = 1;
	snap->listeners = 4;
	snap->attached = 2;
	snap->pm.sessions[SG_PSESSION_BODY] = 3;
	snap->pm.sessions[SG_PSESSION_TUNNEL] = (uint64_t)-1;	/* a gauge read mid-change */
	snap->pm.verdicts[SG_PVERDICT_REJECT][SG_PREASON_CONTENT] = 5;
	strcpy(snap->pm.engine_name[0], "content");
	strcpy(snap->pm.engine_name[1], "mil\"t\\er\n");	/* never made, but escaped */
	snap->pm.engine_latency[0].bucket[0] = 2;		/* <= 1 ms */
	snap->pm.engine_latency[0].bucket[3] = 1;		/* <= 10 ms */
	snap->pm.engine_latency[0].bucket[SG_LATENCY_BUCKETS - 1] = 1;	/* > 30 s */
	snap->pm.engine_latency[0].sum_us = 31012000;
	snap->pm.engine_health[0] = SG_HEALTH_UP;
	snap->pm.engine_health[1] = SG_HEALTH_DOWN;
	snap->pm.webhook_health = SG_HEALTH_UNKNOWN;
}

/* Every sample line belongs to the family the last TYPE line named, and
 * every family has HELP then TYPE. */
static void test_structure(void)
{
	struct sg_metrics_snapshot snap;
	char family[128] = "", *text, *save = NULL;
	int samples = 0, bad = 0, families = 0, help_pending = 0;

	fill(&snap);
	text = render(&snap);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			help_pending = 1;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char *sp;

			bad += !help_pending;
			help_pending = 0;
			snprintf(family, sizeof(family), "%s", line + 7);
			sp = strchr(family, ' ');
			if (!sp)
				bad++;
			else
				*sp = '\0';
			families++;
			continue;
		}
		samples++;
		/* a histogram's samples are its name with a suffix */
		if (strncmp(line, family, strlen(family)) != 0) {
			printf("# sample outside its family %s: %s\n", family, line);
			bad++;
		}
		for (const char *p = line; *p && *p != '{' && *p != ' '; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			      (*p >= '0' && *p <= '9' && p != line) || *p == ':'))
				bad++;
	}
	ASSERT_EQ(bad, 0, "structure: HELP then TYPE, samples under their family, valid names");
	ASSERT_TRUE(families > SG_STAT__COUNT + SG_PSTAT__COUNT, "structure: every counter a family");
	ASSERT_TRUE(samples > families, "structure: samples written");
	free(text);
}

static void test_values(void)
{
	struct sg_metrics_snapshot snap;
	char series[128], *text;

	fill(&snap);
	text = render(&snap);
	for (int i = 0; i < SG_STAT__COUNT; i++) {
		snprintf(series, sizeof(series), "smtpguard_kernel_%s_total", sg_stat_name(i));
		ASSERT_EQ(sample(text, series), 100.0 + i, "values: each kernel counter, by its name");
	}
	for (int i = 0; i < SG_PSTAT__COUNT; i++) {
		snprintf(series, sizeof(series), "smtpguard_proxy_%s_total", sg_pstat_name(i));
		ASSERT_EQ(sample(text, series), 7.0, "values: each proxy counter, by its name");
	}
	ASSERT_CONTAINS(text, "# TYPE smtpguard_kernel_smtp_syn_total counter\n",
			"values: a kernel counter is typed counter");
	ASSERT_EQ(sample(text, "smtpguard_proxy_listeners"), 4.0, "values: listeners");
	ASSERT_EQ(sample(text, "smtpguard_attached_interfaces"), 2.0, "values: attachments");
	ASSERT_EQ(sample(text, "smtpguard_proxy_sessions{state=\"body\"}"), 3.0,
		  "values: sessions by state");
	ASSERT_EQ(sample(text, "smtpguard_proxy_sessions{state=\"tunnel\"}"), 0.0,
		  "values: a gauge read below zero shows 0");
	ASSERT_EQ(sample(text, "smtpguard_messages_total{verdict=\"reject\",reason=\"content\"}"),
		  5.0, "values: verdicts by reason");
	ASSERT_EQ(sample(text, "smtpguard_messages_total{verdict=\"accept\",reason=\"clean\"}"),
		  0.0, "values: every verdict and reason listed, zero too");
	free(text);
}

static void test_histogram(void)
{
	struct sg_metrics_snapshot snap;
	char *text;

	fill(&snap);
	text = render(&snap);
	ASSERT_CONTAINS(text, "# TYPE smtpguard_engine_latency_seconds histogram\n",
			"histogram: typed histogram");
	ASSERT_EQ(sample(text, "smtpguard_engine_latency_seconds_bucket{engine=\"content\","
			 "le=\"0.001\"}"), 2.0, "histogram: the first bucket");
	ASSERT_EQ(sample(text, "smtpguard_engine_latency_seconds_bucket{engine=\"content\","
			 "le=\"0.005\"}"), 2.0, "histogram: cumulative (nothing new at 5 ms)");
	ASSERT_EQ(sample(text, "smtpguard_engine_latency_seconds_bucket{engine=\"content\","
			 "le=\"0.01\"}"), 3.0, "histogram: cumulative at 10 ms");
	ASSERT_EQ(sample(text, "smtpguard_engine_latency_seconds_bucket{engine=\"content\","
			 "le=\"30\"}"), 3.0, "histogram: the last bound leaves the slow one out");
	ASSERT_EQ(sample(text, "smtpguard_engine_latency_seconds_bucket{engine=\"content\","
			 "le=\"+Inf\"}"), 4.0, "histogram: +Inf has them all");
	ASSERT_EQ(sample(text, "smtpguard_engine_latency_seconds_count{engine=\"content\"}"), 4.0,
		  "histogram: _count equals +Inf");
	ASSERT_EQ(sample(text, "smtpguard_engine_latency_seconds_sum{engine=\"content\"}"), 31.012,
		  "histogram: _sum in seconds");
	ASSERT_EQ(sample(text, "smtpguard_engine_up{engine=\"content\"}"), 1.0, "health: up");
	ASSERT_TRUE(strstr(text, "engine=\"mil\\\"t\\\\er\\n\"") != NULL,
		    "labels: a quote, a backslash and a newline escaped");
	ASSERT_EQ(sample(text, "smtpguard_engine_up{engine=\"mil\\\"t\\\\er\\n\"}"), 0.0,
		  "health: down");
	ASSERT_TRUE(strstr(text, "engine=\"\"") == NULL, "histogram: an empty slot is left out");
	ASSERT_TRUE(strstr(text, "\nsmtpguard_webhook_up ") == NULL,
		    "health: the webhook's left out until tried");
	free(text);
}

static void test_escape_and_buckets(void)
{
	char out[8];

	sg_metrics_escape("a\"b", out, sizeof(out));
	ASSERT_STREQ(out, "a\\\"b", "escape: a quote");
	sg_metrics_escape("\\\\\\\\", out, sizeof(out));
	ASSERT_STREQ(out, "\\\\\\\\\\\\", "escape: cut whole, never half an escape");
	ASSERT_EQ(sg_latency_bucket(0), 0, "bucket: 0 us in the first");
	ASSERT_EQ(sg_latency_bucket(1000), 0, "bucket: 1 ms is le=0.001");
	ASSERT_EQ(sg_latency_bucket(1001), 1, "bucket: just over 1 ms is the next");
	ASSERT_EQ(sg_latency_bucket(30000000), SG_LATENCY_BUCKETS - 2, "bucket: 30 s the last bound");
	ASSERT_EQ(sg_latency_bucket(30000001), SG_LATENCY_BUCKETS - 1, "bucket: past 30 s: +Inf");
}

/* From one snapshot to a later one with more counted, every counter in
 * the text is at least what it was. */
static void test_monotonic(void)
{
	struct sg_metrics_snapshot a, b;
	char *ta, *tb, *save = NULL;
	int lower = 0, counters = 0;

	fill(&a);
	b = a;
	for (int i = 0; i < SG_STAT__COUNT; i++)
		b.kernel[i] += 3;
	b.pm.verdicts[SG_PVERDICT_ACCEPT][SG_PREASON_CLEAN] += 1;
	b.pm.engine_latency[0].bucket[5] += 1;
	b.pm.engine_latency[0].sum_us += 40000;
	ta = render(&a);
	tb = render(&b);
	for (char *line = strtok_r(ta, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char series[256];
		const char *sp = strrchr(line, ' ');

		if (line[0] == '#' || !sp || (!strstr(line, "_total") && !strstr(line, "_bucket") &&
					      !strstr(line, "_count") && !strstr(line, "_sum")))
			continue;
		snprintf(series, sizeof(series), "%.*s", (int)(sp - line), line);
		counters++;
		if (sample(tb, series) < strtod(sp + 1, NULL)) {
			printf("# %s went down\n", series);
			lower++;
		}
	}
	ASSERT_EQ(lower, 0, "monotonic: no counter goes down");
	ASSERT_TRUE(counters > 50, "monotonic: the counters were compared");
	free(ta);
	free(tb);
}

int main(void)
{
	test_structure();
	test_values();
	test_histogram();
	test_escape_and_buckets();
	test_monotonic();
	return test_exit_status();
}
