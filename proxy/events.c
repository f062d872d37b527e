/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* events.c - the JSON event log (see events.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "events.h"
#include "log.h"
#include "parse.h"

static FILE *events;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;

/* Opens path (empty: no events) and swaps it in; the old file is closed
 * once no worker writes to it. */
int sg_events_open(const char *path)
{
	FILE *f = NULL, *old;

	if (path[0]) {
		f = strcmp(path, "-") ? fopen(path, "a") : stdout;
		if (!f) {
			sg_err("cannot open events_file %s: %s", path, strerror(errno));
			return -1;
		}
		setvbuf(f, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&events_lock);
	old = events;
	events = f;
	pthread_mutex_unlock(&events_lock);
	if (old && old != stdout)
		fclose(old);
	return 0;
}

void sg_events_close(void)
{
	sg_events_open("");
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* A JSON string of s, quoted, control characters escaped, cut at max
 * (never inside a character). What a VM or an MX sent need not be UTF-8:
 * a byte that is not part of a well-formed character becomes U+FFFD, so
 * that every line stays valid JSON. */
static void json_str(char *out, size_t len, const char *s)
{
	size_t o = 0;

	if (len < 3)
		return;
	out[o++] = '"';
	while (*s && o + 7 < len) {
		unsigned char c = (unsigned char)*s;
		size_t n;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
		} else if (c < 0x80) {
			out[o++] = (char)c;
		} else if ((n = utf8_len((const unsigned char *)s)) != 0) {
			if (o + n + 2 > len)
				break;
			memcpy(out + o, s, n);
			o += n;
			s += n;
			continue;
		} else {
			memcpy(out + o, "\\ufffd", 6);
			o += 6;
		}
		s++;
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void now_iso(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), len - strlen(buf), ".%03ldZ", ts.tv_nsec / 1000000);
}

void sg_event_message(const struct session *s, const char *verdict, const char *reason,
		      const char *mx_reply)
{
	char t[40], src[80], mx[80], helo[300], from[600], domains[600], mid[600], reply[600],
	     why[600];

	if (!events)
		return;
	now_iso(t, sizeof(t));
	json_str(src, sizeof(src), s->vm_name);
	json_str(mx, sizeof(mx), s->mx_name);
	json_str(helo, sizeof(helo), s->helo);
	json_str(from, sizeof(from), s->msg_mail_from);
	json_str(domains, sizeof(domains), s->msg_rcpt_domains);
	json_str(mid, sizeof(mid), s->scan.message_id);
	json_str(reply, sizeof(reply), mx_reply ? mx_reply : "");
	json_str(why, sizeof(why), reason ? reason : "");
	pthread_mutex_lock(&events_lock);
	if (events)
		fprintf(events, "{\"event\":\"message\",\"time\":\"%s\",\"source\":%s,\"mx\":%s,"
			"\"helo\":%s,\"mail_from\":%s,\"rcpts\":%u,\"rcpt_domains\":%s,\"size\":%zu,"
			"\"message_id\":%s,\"ref\":\"%s\",\"verdict\":\"%s\",\"reason\":%s,"
			"\"mx_reply\":%s}\n", t, src, mx, helo, from, s->msg_rcpts, domains, s->scan.bytes,
			mid, s->ref, verdict, why, reply);
	pthread_mutex_unlock(&events_lock);
}

/* How the session's TLS went: "none" (no STARTTLS), "passthrough" (a
 * tunnel: the content after STARTTLS was not inspected), "terminate",
 * "stripped" (STARTTLS hidden from the VM). */
static const char *tls_outcome(const struct session *s)
{
	if (s->tunnel_started)
		return "passthrough";
	if (s->tls_phase == TLS_ON)
		return "terminate";
	return s->stripped ? "stripped" : "none";
}

void sg_event_session(const struct session *s)
{
	char t[40], src[80], mx[80], helo[300], tls[1400] = "", detail[200];
	/* what the relay read as SMTP; a tunnel's bytes are opaque */
	uint64_t vm_read = s->tunnel_started ? s->inspected_bytes[0] : s->read_bytes[0];
	uint64_t mx_read = s->tunnel_started ? s->inspected_bytes[1] : s->read_bytes[1];

	if (!events)
		return;
	now_iso(t, sizeof(t));
	json_str(src, sizeof(src), s->vm_name);
	json_str(mx, sizeof(mx), s->mx_name);
	json_str(helo, sizeof(helo), s->helo);
	if (s->tunnel_started)
		snprintf(tls, sizeof(tls), ",\"tunnel_mover\":\"%s\",\"tunnel_bytes\":{\"from_vm\":%llu,"
			 "\"from_mx\":%llu}", sg_tls_mover_name(s->tunnel_mover),
			 (unsigned long long)s->tunnel_bytes[0],
			 (unsigned long long)s->tunnel_bytes[1]);
	else if (s->tls_phase == TLS_ON) {
		char vm_tls[200], mx_tls[200], sni[300], mx_host[300];

		json_str(vm_tls, sizeof(vm_tls), s->tls_vm);
		json_str(mx_tls, sizeof(mx_tls), s->tls_mx);
		json_str(sni, sizeof(sni), s->vm_sni);
		json_str(mx_host, sizeof(mx_host), s->mx_host);
		snprintf(tls, sizeof(tls), ",\"tls_vm\":%s,\"sni\":%s,\"resumed\":%s,\"tls_mx\":%s,"
			 "\"mx_host\":%s,\"mx_resumed\":%s,\"mx_verified\":%s", vm_tls, sni,
			 s->tls_resumed ? "true" : "false", mx_tls, mx_host,
			 s->mx_resumed ? "true" : "false", s->mx_verified ? "true" : "false");
	}
	json_str(detail, sizeof(detail), s->end_detail);
	pthread_mutex_lock(&events_lock);
	if (events)
		fprintf(events, "{\"event\":\"session\",\"time\":\"%s\",\"source\":%s,\"mx\":%s,"
			"\"helo\":%s,\"commands\":%u,\"messages\":%u,\"refused\":%u,\"duration_ms\":%llu,"
			"\"end\":\"%s\"%s%s,\"tls\":\"%s\",\"inspected\":%s,"
			"\"read_bytes\":{\"vm\":%llu,\"mx\":%llu}%s}\n",
			t, src, mx, helo, s->commands, s->messages, s->refused,
			(unsigned long long)((sg_now_ns() - s->started_ns) / 1000000),
			s->end ? s->end : "closed", s->end_detail[0] ? ",\"error\":" : "",
			s->end_detail[0] ? detail : "", tls_outcome(s),
			s->tunnel_started ? "false" : "true", (unsigned long long)vm_read,
			(unsigned long long)mx_read, tls);
	pthread_mutex_unlock(&events_lock);
}
