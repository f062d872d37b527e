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

int sg_events_open(const char *path)
{
	if (!path[0])
		return 0;
	events = strcmp(path, "-") ? fopen(path, "a") : stdout;
	if (!events) {
		sg_err("cannot open events_file %s: %s", path, strerror(errno));
		return -1;
	}
	setvbuf(events, NULL, _IOLBF, 0);
	return 0;
}

void sg_events_close(void)
{
	if (events && events != stdout)
		fclose(events);
	events = NULL;
}

/* A JSON string of s, quoted, control characters escaped, cut at max. */
static void json_str(char *out, size_t len, const char *s)
{
	size_t o = 0;

	if (len < 3)
		return;
	out[o++] = '"';
	for (; *s && o + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
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
	json_str(from, sizeof(from), s->mail_from);
	json_str(domains, sizeof(domains), s->rcpt_domains);
	json_str(mid, sizeof(mid), s->scan.message_id);
	json_str(reply, sizeof(reply), mx_reply ? mx_reply : "");
	json_str(why, sizeof(why), reason ? reason : "");
	pthread_mutex_lock(&events_lock);
	fprintf(events, "{\"event\":\"message\",\"time\":\"%s\",\"source\":%s,\"mx\":%s,"
		"\"helo\":%s,\"mail_from\":%s,\"rcpts\":%u,\"rcpt_domains\":%s,\"size\":%zu,"
		"\"message_id\":%s,\"ref\":\"%s\",\"verdict\":\"%s\",\"reason\":%s,"
		"\"mx_reply\":%s}\n", t, src, mx, helo, from, s->rcpts, domains, s->scan.bytes,
		mid, s->ref, verdict, why, reply);
	pthread_mutex_unlock(&events_lock);
}

void sg_event_session(const struct session *s)
{
	char t[40], src[80], mx[80], helo[300];

	if (!events)
		return;
	now_iso(t, sizeof(t));
	json_str(src, sizeof(src), s->vm_name);
	json_str(mx, sizeof(mx), s->mx_name);
	json_str(helo, sizeof(helo), s->helo);
	pthread_mutex_lock(&events_lock);
	fprintf(events, "{\"event\":\"session\",\"time\":\"%s\",\"source\":%s,\"mx\":%s,"
		"\"helo\":%s,\"commands\":%u,\"messages\":%u,\"refused\":%u,\"duration_ms\":%llu}\n",
		t, src, mx, helo, s->commands, s->messages, s->refused,
		(unsigned long long)((sg_now_ns() - s->started_ns) / 1000000));
	pthread_mutex_unlock(&events_lock);
}
