/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * events.c - the JSON event log (see events.h). A worker formats its line
 * and queues it; one writer thread writes the queue to the file. A slow
 * disk or a blocked stdout never stalls a worker: when the queue is full
 * the line is dropped, counted, and the count logged; nor does it stall a
 * stop or a reopen: the writer waits for room with poll(2) and writes what
 * a pipe takes at once, and gives up on a file that takes nothing for
 * SG_EVENTS_STALL_NS while one waits. The file holds customers' envelopes:
 * it is created 0640, never through a symbolic link.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "events.h"
#include "log.h"
#include "parse.h"

#define SG_EVENTS_QUEUE (4u << 20)	/* bytes of lines waiting for the file */
#define SG_EVENT_LINE	4096		/* the longest line (fields are cut before) */
#define SG_DROP_LOG_NS	10000000000ULL	/* drops are logged at most this often */
#define SG_EVENTS_STALL_NS 1000000000ULL	/* a stop or reopen waits this long for a stuck file */

static struct {
	pthread_mutex_t lock;
	pthread_cond_t queued;	/* lines to write, or stop */
	pthread_cond_t idle;	/* the writer is not inside write(2) */
	char *ring;
	size_t head, len;
	int fd;			/* -1: no events */
	int regular;		/* fd is a regular file: it never waits for a reader */
	int writing;
	int stop;
	int reopen;		/* sg_events_open waits for the writer */
	int running;
	pthread_t thread;
	uint64_t dropped;	/* lines the full queue could not take */
} q = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.queued = PTHREAD_COND_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
	.fd = -1,
};

/* Lines in p[0..n), for the count of those dropped. */
static uint64_t lines_in(const char *p, size_t n)
{
	uint64_t lines = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
		lines++;
	return lines;
}

/* At most PIPE_BUF bytes of p[0..n), whole lines (a line is shorter): a
 * pipe takes them at once, all or nothing, so a reader never gets half a
 * line, even of a writer that gives up. */
static size_t whole_lines(const char *p, size_t n)
{
	const char *lf;

	if (n <= PIPE_BUF)
		return n;
	lf = memrchr(p, '\n', PIPE_BUF);
	return lf ? (size_t)(lf - p) + 1 : PIPE_BUF;
}

/* Writes p[0..n) to fd, never blocked in write(2) for long: it waits for
 * room with poll(2), and a pipe or socket is given at most PIPE_BUF bytes
 * a write (whole lines), which it takes at once. -1: the file took nothing for
 * SG_EVENTS_STALL_NS while a stop or reopen waited; the rest is not
 * written. */
static int write_all(int fd, int regular, const char *p, size_t n)
{
	static uint64_t warned_ns;
	uint64_t stalled_since = 0;

	while (n) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t w;
		int ready = regular ? 1 : poll(&pfd, 1, 100);

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready == 0) {
			uint64_t now = sg_now_ns();

			if (!__atomic_load_n(&q.stop, __ATOMIC_RELAXED) &&
			    !__atomic_load_n(&q.reopen, __ATOMIC_RELAXED))
				continue;
			if (!stalled_since)
				stalled_since = now;
			if (now - stalled_since > SG_EVENTS_STALL_NS)
				return -1;
			continue;
		}
		w = write(fd, p, regular ? n : whole_lines(p, n));
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0) {
			uint64_t now = sg_now_ns();

			if (now - warned_ns > SG_DROP_LOG_NS) {
				warned_ns = now;
				sg_err("events: writing the events file failed: %s; lines are lost "
				       "until it works again", w < 0 ? strerror(errno) : "no progress");
			}
			return 0;
		}
		stalled_since = 0;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void *writer_main(void *arg)
{
	uint64_t reported = 0, last_log_ns = 0;

	(void)arg;
	pthread_mutex_lock(&q.lock);
	for (;;) {
		size_t chunk;
		int fd, regular, stuck;

		while (!q.len && !q.stop) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&q.queued, &q.lock, &until);
			if (q.dropped != reported && sg_now_ns() - last_log_ns > SG_DROP_LOG_NS) {
				sg_warn("events: %llu line(s) dropped so far: the events file does "
					"not keep up", (unsigned long long)q.dropped);
				reported = q.dropped;
				last_log_ns = sg_now_ns();
			}
		}
		if (!q.len)
			break;	/* stopped, and everything written */
		chunk = q.len < SG_EVENTS_QUEUE - q.head ? q.len : SG_EVENTS_QUEUE - q.head;
		fd = q.fd;
		regular = q.regular;
		q.writing = 1;
		pthread_mutex_unlock(&q.lock);
		stuck = fd >= 0 && write_all(fd, regular, q.ring + q.head, chunk);
		pthread_mutex_lock(&q.lock);
		if (stuck) {
			/* the file took nothing while a stop or reopen waited: the
			 * chunk is dropped, and at a stop all that is queued (it
			 * would wait for the same file) */
			uint64_t lost = lines_in(q.ring + q.head, chunk);

			if (q.stop) {
				lost += lines_in(q.ring, q.len - chunk);
				chunk = q.len;
			}
			q.dropped += lost;
			sg_warn("events: the events file took nothing for %llus: %llu line(s) "
				"dropped", (unsigned long long)(SG_EVENTS_STALL_NS / 1000000000ULL),
				(unsigned long long)lost);
		}
		q.head = (q.head + chunk) % SG_EVENTS_QUEUE;
		q.len -= chunk;
		q.writing = 0;
		pthread_cond_broadcast(&q.idle);
	}
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

/* One line to the queue; never waits for the file. */
static void enqueue(const char *line, size_t n)
{
	size_t tail;

	pthread_mutex_lock(&q.lock);
	if (q.fd < 0 || !q.running) {
		pthread_mutex_unlock(&q.lock);
		return;
	}
	if (SG_EVENTS_QUEUE - q.len < n) {
		q.dropped++;
		pthread_mutex_unlock(&q.lock);
		return;
	}
	tail = (q.head + q.len) % SG_EVENTS_QUEUE;
	if (n <= SG_EVENTS_QUEUE - tail) {
		memcpy(q.ring + tail, line, n);
	} else {
		size_t first = SG_EVENTS_QUEUE - tail;

		memcpy(q.ring + tail, line, first);
		memcpy(q.ring, line + first, n - first);
	}
	q.len += n;
	pthread_cond_signal(&q.queued);
	pthread_mutex_unlock(&q.lock);
}

/* The events file: appended to, created 0640 (envelopes are the
 * customers'), refused when it is a link or not a regular file. */
int sg_events_open_file(const char *path, gid_t group)
{
	struct stat st;
	int fd;

	if (!path[0])
		return -1;
	if (!strcmp(path, "-")) {
		fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			sg_err("events_file -: duplicating stdout failed: %s", strerror(errno));
		return fd;
	}
	/* O_NONBLOCK: a FIFO nobody reads fails (ENXIO) instead of waiting
	 * for a reader; cleared once the file is known to be a regular one */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0640);
	if (fd < 0 && errno == ENXIO) {
		sg_err("events_file %s is not a regular file", path);
		return -1;
	}
	if (fd < 0) {
		sg_err("cannot open events_file %s: %s%s", path, strerror(errno),
		       errno == ELOOP ? " (it is a symbolic link: name the file itself)" : "");
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		sg_err("events_file %s is not a regular file", path);
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, O_APPEND);
	if ((st.st_mode & 0777) != 0640 && fchmod(fd, 0640))
		sg_warn("events_file %s: making it mode 0640 failed: %s; others may read it",
			path, strerror(errno));
	if (group != (gid_t)-1 && st.st_gid != group && fchown(fd, (uid_t)-1, group))
		sg_warn("events_file %s: giving it to group %u failed: %s; that group's members "
			"cannot read it", path, (unsigned)group, strerror(errno));
	return fd;
}

int sg_events_use(int fd)
{
	struct stat st;
	int old;

	pthread_mutex_lock(&q.lock);
	if (fd >= 0 && !q.running) {
		if (!q.ring)
			q.ring = malloc(SG_EVENTS_QUEUE);
		q.stop = 0;
		if (!q.ring || pthread_create(&q.thread, NULL, writer_main, NULL)) {
			pthread_mutex_unlock(&q.lock);
			sg_err("events: starting the events writer failed");
			close(fd);
			return -1;
		}
		q.running = 1;
	}
	/* the old descriptor is closed once no write is under way on it (a
	 * stuck one is given up on: write_all) */
	__atomic_store_n(&q.reopen, 1, __ATOMIC_RELAXED);
	while (q.writing)
		pthread_cond_wait(&q.idle, &q.lock);
	__atomic_store_n(&q.reopen, 0, __ATOMIC_RELAXED);
	old = q.fd;
	/* a regular file never waits for a reader; a pipe or terminal may */
	q.regular = fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode);
	__atomic_store_n(&q.fd, fd, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&q.lock);
	if (old >= 0)
		close(old);
	return 0;
}

int sg_events_open(const char *path)
{
	int fd = sg_events_open_file(path, (gid_t)-1);

	if (path[0] && fd < 0)
		return -1;
	return sg_events_use(fd);
}

void sg_events_close(void)
{
	int running;

	/* what is queued is written first */
	pthread_mutex_lock(&q.lock);
	running = q.running;
	__atomic_store_n(&q.stop, 1, __ATOMIC_RELAXED);	/* write_all reads it unlocked */
	pthread_cond_signal(&q.queued);
	pthread_mutex_unlock(&q.lock);
	if (running)
		pthread_join(q.thread, NULL);
	pthread_mutex_lock(&q.lock);
	if (q.fd >= 0)
		close(q.fd);
	__atomic_store_n(&q.fd, -1, __ATOMIC_RELAXED);
	q.running = 0;
	q.head = q.len = 0;
	free(q.ring);
	q.ring = NULL;
	pthread_mutex_unlock(&q.lock);
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
	if (!s)
		s = "";
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

/* A tenant's name as JSON: null for none. */
static void json_tenant(char *out, size_t len, const char *tenant)
{
	if (tenant && tenant[0])
		json_str(out, len, tenant);
	else
		snprintf(out, len, "null");
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

void sg_event_message(const struct sg_message_event *e)
{
	char t[40], src[80], mx[80], helo[300], from[600], domains[600], mid[600], reply[600],
	     why[600], ref[40], notes[1160] = "", tenant[80], line[SG_EVENT_LINE];
	int n;

	if (__atomic_load_n(&q.fd, __ATOMIC_RELAXED) < 0)
		return;	/* no events; a reload that opens a file catches the next line */
	now_iso(t, sizeof(t));
	json_str(src, sizeof(src), e->source);
	json_str(mx, sizeof(mx), e->mx);
	json_str(helo, sizeof(helo), e->helo);
	json_str(from, sizeof(from), e->mail_from);
	json_str(domains, sizeof(domains), e->rcpt_domains);
	json_str(mid, sizeof(mid), e->message_id);
	json_str(reply, sizeof(reply), e->mx_reply);
	json_str(why, sizeof(why), e->reason);
	json_str(ref, sizeof(ref), e->ref);
	json_tenant(tenant, sizeof(tenant), e->tenant);
	if (e->by && e->by[0]) {
		char v[300];

		json_str(v, sizeof(v), e->by);
		snprintf(notes, sizeof(notes), ",\"by\":%s", v);
	}
	if (e->notes && e->notes[0]) {
		char v[760];
		size_t used = strlen(notes);

		json_str(v, sizeof(v), e->notes);
		snprintf(notes + used, sizeof(notes) - used, ",\"notes\":%s", v);
	}
	if (e->body_fp && e->body_fp[0]) {
		char v[40];
		size_t used = strlen(notes);

		json_str(v, sizeof(v), e->body_fp);
		snprintf(notes + used, sizeof(notes) - used, ",\"body_fp\":%s", v);
	}
	n = snprintf(line, sizeof(line), "{\"event\":\"message\",\"time\":\"%s\",\"source\":%s,"
		     "\"tenant\":%s,\"mx\":%s,\"helo\":%s,\"mail_from\":%s,\"rcpts\":%u,\"rcpt_domains\":%s,"
		     "\"size\":%llu,\"message_id\":%s,\"ref\":%s,\"verdict\":\"%s\",\"reason\":%s,"
		     "\"mx_reply\":%s%s}\n", t, src, tenant, mx, helo, from, e->rcpts, domains,
		     (unsigned long long)e->size, mid, ref, e->verdict, why, reply, notes);
	if (n > 0 && (size_t)n < sizeof(line))
		enqueue(line, (size_t)n);
}

size_t sg_event_ladder(const struct sg_ladder_event *e, char *line, size_t len)
{
	char t[40], src[80], why[SG_LADDER_REASON_LEN * 6 + 8], until[40] = "null", tenant[80];
	int n;

	now_iso(t, sizeof(t));
	json_str(src, sizeof(src), e->source);
	json_tenant(tenant, sizeof(tenant), e->tenant);
	json_str(why, sizeof(why), e->reason);
	if (e->until) {
		struct tm tm;

		gmtime_r(&e->until, &tm);
		strftime(until, sizeof(until), "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
	}
	n = snprintf(line, len, "{\"event\":\"ladder\",\"time\":\"%s\",\"source\":%s,"
		     "\"tenant\":%s,\"from\":\"%s\",\"to\":\"%s\",\"reason\":%s,\"until\":%s,"
		     "\"penalty_s\":%llu,\"refusals\":%u}", t, src, tenant, e->from, e->to, why, until,
		     (unsigned long long)e->penalty_s, e->refusals);
	if (n <= 0 || (size_t)n + 1 >= len)
		return 0;
	if (__atomic_load_n(&q.fd, __ATOMIC_RELAXED) >= 0) {
		line[n] = '\n';
		enqueue(line, (size_t)n + 1);
		line[n] = '\0';
	}
	return (size_t)n;
}

void sg_event_session(const struct sg_session_event *e)
{
	char t[40], src[80], mx[80], helo[300], tls[1700] = "", detail[200], end[80],
	     tenant[80], line[SG_EVENT_LINE];
	int n;

	if (__atomic_load_n(&q.fd, __ATOMIC_RELAXED) < 0)
		return;
	now_iso(t, sizeof(t));
	json_str(src, sizeof(src), e->source);
	json_str(mx, sizeof(mx), e->mx);
	json_str(helo, sizeof(helo), e->helo);
	json_str(end, sizeof(end), e->end ? e->end : "closed");
	json_tenant(tenant, sizeof(tenant), e->tenant);
	if (e->tunnel_mover) {
		snprintf(tls, sizeof(tls), ",\"tunnel_mover\":\"%s\",\"tunnel_bytes\":{\"from_vm\":%llu,"
			 "\"from_mx\":%llu}", e->tunnel_mover,
			 (unsigned long long)e->tunnel_from_vm, (unsigned long long)e->tunnel_from_mx);
	} else if (e->tls_vm) {
		char vm_tls[200], mx_tls[200], sni[300], mx_host[300], by[200];

		json_str(vm_tls, sizeof(vm_tls), e->tls_vm);
		json_str(mx_tls, sizeof(mx_tls), e->tls_mx);
		json_str(sni, sizeof(sni), e->sni);
		json_str(mx_host, sizeof(mx_host), e->mx_host);
		json_str(by, sizeof(by), e->mx_verified_by);
		snprintf(tls, sizeof(tls), ",\"tls_vm\":%s,\"sni\":%s,\"resumed\":%s,\"tls_mx\":%s,"
			 "\"mx_host\":%s,\"mx_resumed\":%s,\"mx_verified\":%s,\"mx_verified_by\":%s",
			 vm_tls, sni, e->resumed ? "true" : "false", mx_tls, mx_host,
			 e->mx_resumed ? "true" : "false", e->mx_verified ? "true" : "false", by);
	}
	json_str(detail, sizeof(detail), e->error);
	n = snprintf(line, sizeof(line), "{\"event\":\"session\",\"time\":\"%s\",\"source\":%s,"
		     "\"tenant\":%s,\"mx\":%s,\"helo\":%s,\"commands\":%u,\"messages\":%u,\"refused\":%u,"
		     "\"duration_ms\":%llu,\"end\":%s%s%s,\"tls\":\"%s\",\"inspected\":%s,"
		     "\"read_bytes\":{\"vm\":%llu,\"mx\":%llu}%s}\n",
		     t, src, tenant, mx, helo, e->commands, e->messages, e->refused,
		     (unsigned long long)e->duration_ms, end, e->error && e->error[0] ? ",\"error\":" : "",
		     e->error && e->error[0] ? detail : "", e->tls, e->inspected ? "true" : "false",
		     (unsigned long long)e->read_vm, (unsigned long long)e->read_mx, tls);
	if (n > 0 && (size_t)n < sizeof(line))
		enqueue(line, (size_t)n);
}
