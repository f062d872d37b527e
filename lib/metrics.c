/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* metrics.c - the Prometheus text exposition of the pinned maps (see
 * metrics.h). */
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include "metrics.h"
#include "parse.h"
#include "pmetrics.h"

static const char *const psession_names[SG_PSESSION__COUNT] = {
	[SG_PSESSION_COMMANDS] = "commands",
	[SG_PSESSION_WAIT] = "wait",
	[SG_PSESSION_AUTH] = "auth",
	[SG_PSESSION_BODY] = "body",
	[SG_PSESSION_VERDICT] = "verdict",
	[SG_PSESSION_TUNNEL] = "tunnel",
	[SG_PSESSION_REFUSED] = "refused",
	[SG_PSESSION_DRAINING] = "draining",
};
static const char *const pverdict_names[SG_PVERDICT__COUNT] = {
	[SG_PVERDICT_ACCEPT] = "accept",
	[SG_PVERDICT_REJECT] = "reject",
	[SG_PVERDICT_TEMPFAIL] = "tempfail",
};
static const char *const preason_names[SG_PREASON__COUNT] = {
	[SG_PREASON_CLEAN] = "clean",
	[SG_PREASON_CONTENT] = "content",
	[SG_PREASON_MILTER] = "milter",
	[SG_PREASON_ENGINE_FAILURE] = "engine_failure",
	[SG_PREASON_RATE] = "rate",
	[SG_PREASON_LADDER] = "ladder",
	[SG_PREASON_SIZE] = "size",
	[SG_PREASON_PROTOCOL] = "protocol",
	[SG_PREASON_OTHER] = "other",
};

static const char *name_in(const char *const *names, int n, int v)
{
	return v >= 0 && v < n && names[v] ? names[v] : "unknown";
}

const char *sg_psession_name(int state)
{
	return name_in(psession_names, SG_PSESSION__COUNT, state);
}

const char *sg_pverdict_name(int verdict)
{
	return name_in(pverdict_names, SG_PVERDICT__COUNT, verdict);
}

const char *sg_preason_name(int reason)
{
	return name_in(preason_names, SG_PREASON__COUNT, reason);
}

/* Registered listeners: a sockmap slot holds a socket or nothing. */
static int count_listeners(const struct sg_maps *maps)
{
	int n = 0;

	for (__u32 k = 0; k < 2 * SG_MAX_WORKERS; k++) {
		__u64 cookie;

		if (bpf_map_lookup_elem(maps->listeners, &k, &cookie) == 0)
			n++;
	}
	return n;
}

static int count_keys(int map_fd)
{
	__u32 key, prev;
	int n = 0, have_prev = 0;

	while (n < SG_MAX_ATTACHMENTS &&
	       bpf_map_get_next_key(map_fd, have_prev ? &prev : NULL, &key) == 0) {
		prev = key;
		have_prev = 1;
		n++;
	}
	return n;
}

int sg_metrics_collect(const struct sg_maps *maps, struct sg_metrics_snapshot *out,
		       char *err, size_t errlen)
{
	struct sg_settings s;
	__u32 zero = 0;

	memset(out, 0, sizeof(*out));
	if (sg_stats_read(maps, out->kernel)) {
		snprintf(err, errlen, "reading the pinned stats map failed: %s", strerror(errno));
		return -1;
	}
	out->have_proxy = maps->proxy_stats >= 0 && maps->proxy_metrics >= 0 &&
			  bpf_map_lookup_elem(maps->proxy_stats, &zero, &out->proxy) == 0 &&
			  sg_pmetrics_read(maps->proxy_metrics, &out->pm) == 0;
	out->listeners = count_listeners(maps);
	out->attached = count_keys(maps->attachments);
	if (bpf_map_lookup_elem(maps->settings, &zero, &s) == 0)
		out->fail_closed = s.fail_mode == SG_FAIL_CLOSED;
	return 0;
}

void sg_metrics_escape(const char *value, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = value; *p; p++) {
		const char *rep = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
		size_t need = rep ? 2 : 1;

		if (n + need >= len)
			break;
		if (rep) {
			memcpy(out + n, rep, 2);
		} else {
			out[n] = *p;
		}
		n += need;
	}
	out[n] = '\0';
}

/* A metric name from an enum's name: [a-zA-Z0-9_] kept, anything else '_'. */
static void metric_name(char *out, size_t len, const char *prefix, const char *name,
			const char *suffix)
{
	size_t n = (size_t)snprintf(out, len, "%s", prefix);

	for (const char *p = name; *p && n + 1 < len; p++) {
		int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			 (*p >= '0' && *p <= '9') || *p == '_';

		out[n++] = ok ? *p : '_';
	}
	out[n < len ? n : len - 1] = '\0';
	n = strlen(out);
	snprintf(out + n, len - n, "%s", suffix);
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_kernel(FILE *out, const struct sg_metrics_snapshot *snap)
{
	for (int i = 0; i < SG_STAT__COUNT; i++) {
		char name[96], help[160];

		metric_name(name, sizeof(name), "smtpguard_kernel_", sg_stat_name(i), "_total");
		snprintf(help, sizeof(help), "The classifier's counter %s, summed over CPUs.",
			 sg_stat_name(i));
		family(out, name, "counter", help);
		fprintf(out, "%s %llu\n", name, (unsigned long long)snap->kernel[i]);
	}
}

static void write_proxy_counters(FILE *out, const struct sg_metrics_snapshot *snap)
{
	for (int i = 0; i < SG_PSTAT__COUNT; i++) {
		char name[96], help[160];

		metric_name(name, sizeof(name), "smtpguard_proxy_", sg_pstat_name(i), "_total");
		snprintf(help, sizeof(help), "The proxy's counter %s.", sg_pstat_name(i));
		family(out, name, "counter", help);
		fprintf(out, "%s %llu\n", name, (unsigned long long)snap->proxy.count[i]);
	}
}

static void write_sessions_verdicts(FILE *out, const struct sg_metrics_snapshot *snap)
{
	family(out, "smtpguard_proxy_sessions", "gauge",
	       "Sessions the proxy relays now, by what the relay does.");
	for (int i = 0; i < SG_PSESSION__COUNT; i++)
		/* a gauge taken from before it was added to, on another CPU,
		 * reads as a wrapped number for a moment: shown as 0 */
		fprintf(out, "smtpguard_proxy_sessions{state=\"%s\"} %lld\n", sg_psession_name(i),
			(long long)snap->pm.sessions[i] < 0 ? 0 : (long long)snap->pm.sessions[i]);
	family(out, "smtpguard_messages_total", "counter",
	       "Messages the proxy judged, by verdict and the class of its reason.");
	for (int v = 0; v < SG_PVERDICT__COUNT; v++)
		for (int r = 0; r < SG_PREASON__COUNT; r++)
			fprintf(out, "smtpguard_messages_total{verdict=\"%s\",reason=\"%s\"} %llu\n",
				sg_pverdict_name(v), sg_preason_name(r),
				(unsigned long long)snap->pm.verdicts[v][r]);
}

static void write_engines(FILE *out, const struct sg_metrics_snapshot *snap)
{
	static const uint64_t bounds_us[SG_LATENCY_BUCKETS - 1] = SG_LATENCY_BOUNDS_US;
	char label[SG_ENGINE_NAME_LEN * 2 + 1];

	family(out, "smtpguard_engine_latency_seconds", "histogram",
	       "From the end of a message to a scanning engine's answer.");
	for (int e = 0; e < SG_METRIC_ENGINES; e++) {
		const struct sg_latency_hist *h = &snap->pm.engine_latency[e];
		char name[SG_ENGINE_NAME_LEN + 1];
		uint64_t cumulative = 0;

		memcpy(name, snap->pm.engine_name[e], SG_ENGINE_NAME_LEN);
		name[SG_ENGINE_NAME_LEN] = '\0';
		if (!name[0])
			continue;
		sg_metrics_escape(name, label, sizeof(label));
		for (int b = 0; b < SG_LATENCY_BUCKETS; b++) {
			cumulative += h->bucket[b];
			if (b < SG_LATENCY_BUCKETS - 1)
				fprintf(out, "smtpguard_engine_latency_seconds_bucket{engine=\"%s\","
					"le=\"%g\"} %llu\n", label, (double)bounds_us[b] / 1e6,
					(unsigned long long)cumulative);
			else
				fprintf(out, "smtpguard_engine_latency_seconds_bucket{engine=\"%s\","
					"le=\"+Inf\"} %llu\n", label, (unsigned long long)cumulative);
		}
		fprintf(out, "smtpguard_engine_latency_seconds_sum{engine=\"%s\"} %.6f\n", label,
			(double)h->sum_us / 1e6);
		fprintf(out, "smtpguard_engine_latency_seconds_count{engine=\"%s\"} %llu\n", label,
			(unsigned long long)cumulative);
	}
	family(out, "smtpguard_engine_up", "gauge",
	       "1 when a scanning engine's last attempt worked, 0 when it failed; "
	       "absent until it is tried.");
	for (int e = 0; e < SG_METRIC_ENGINES; e++) {
		char name[SG_ENGINE_NAME_LEN + 1];

		memcpy(name, snap->pm.engine_name[e], SG_ENGINE_NAME_LEN);
		name[SG_ENGINE_NAME_LEN] = '\0';
		if (!name[0] || snap->pm.engine_health[e] == SG_HEALTH_UNKNOWN)
			continue;
		sg_metrics_escape(name, label, sizeof(label));
		fprintf(out, "smtpguard_engine_up{engine=\"%s\"} %d\n", label,
			snap->pm.engine_health[e] == SG_HEALTH_UP);
	}
	family(out, "smtpguard_webhook_up", "gauge",
	       "1 when the last webhook post was delivered, 0 when it failed; absent "
	       "until one is tried.");
	if (snap->pm.webhook_health != SG_HEALTH_UNKNOWN)
		fprintf(out, "smtpguard_webhook_up %d\n", snap->pm.webhook_health == SG_HEALTH_UP);
	family(out, "smtpguard_webhook_queued", "gauge", "Webhook posts waiting to be sent.");
	fprintf(out, "smtpguard_webhook_queued %lld\n",
		(long long)snap->pm.webhook_queued < 0 ? 0 : (long long)snap->pm.webhook_queued);
	family(out, "smtpguard_redis_state", "gauge",
	       "The shared store's connection: 0 off (redis = none), 1 connecting, 2 up, "
	       "3 down (local enforcement only).");
	fprintf(out, "smtpguard_redis_state %llu\n", (unsigned long long)snap->pm.redis_state);
}

int sg_metrics_write(FILE *out, const struct sg_metrics_snapshot *snap)
{
	write_kernel(out, snap);
	family(out, "smtpguard_proxy_listeners", "gauge",
	       "Proxy listeners registered with the classifier (0: fail_mode applies).");
	fprintf(out, "smtpguard_proxy_listeners %d\n", snap->listeners);
	family(out, "smtpguard_attached_interfaces", "gauge",
	       "Interfaces the classifier is attached to.");
	fprintf(out, "smtpguard_attached_interfaces %d\n", snap->attached);
	family(out, "smtpguard_fail_closed", "gauge",
	       "1 when scan flows are refused while no proxy listener is registered.");
	fprintf(out, "smtpguard_fail_closed %d\n", snap->fail_closed);
	if (snap->have_proxy) {
		write_proxy_counters(out, snap);
		write_sessions_verdicts(out, snap);
		write_engines(out, snap);
	}
	return fflush(out) || ferror(out) ? -1 : 0;
}
