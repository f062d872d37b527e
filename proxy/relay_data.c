/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay_data.c - a message's body (DATA, or BDAT chunks): streamed to the
 * MX while the scanning stage reads it, the final dot (or the LAST of the
 * chunks) withheld until the verdict; a refused message is aborted
 * upstream (the MX never gets the dot, so never commits it) and the VM is
 * told why, with a reference id.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "events.h"
#include "log.h"
#include "parse.h"
#include "relay.h"
#include "signals.h"

/* A message's reference id: the time, a random number drawn once a
 * process (so that a restart within the second, or another host, does not
 * hand out the same ids again), and a counter. */
void new_reference(char *buf, size_t len)
{
	static atomic_uint counter, salt;
	unsigned int n = atomic_fetch_add(&counter, 1), r = atomic_load(&salt);

	if (!r) {
		unsigned int fresh = 0, none = 0;

		if (getrandom(&fresh, sizeof(fresh), 0) != sizeof(fresh))
			fresh = (unsigned int)getpid() ^ (unsigned int)sg_now_ns();
		fresh |= 1;
		if (!atomic_compare_exchange_strong(&salt, &none, fresh))
			fresh = none;	/* another worker drew first */
		r = fresh;
	}
	snprintf(buf, len, "SG%08lX%04X%04X", (unsigned long)time(NULL), r & 0xffff, n & 0xffff);
}

/* What the scan learnt of the message, kept for its event. */
static void tx_note_scan(struct sg_tx *tx, const struct sg_scan *scan)
{
	snprintf(tx->message_id, sizeof(tx->message_id), "%s", scan->message_id);
	snprintf(tx->notes, sizeof(tx->notes), "%s", scan->notes);
	tx->size = scan->bytes;
	tx->body_fp[0] = '\0';
	if (scan->has_fingerprint && scan->fingerprint.shingles)
		snprintf(tx->body_fp, sizeof(tx->body_fp), "%016llx",
			 (unsigned long long)sg_fingerprint_digest(&scan->fingerprint));
}

/* The message in TX_BODY is refused: its transaction ends with it. */
void refuse_message(struct session *s, const char *code, const char *why, const char *by,
		    int reason)
{
	struct sg_tx *tx = s->tx_cur;
	const char *ref = tx ? tx->ref : "";
	char logged[SG_REASON_LEN + 140];

	/* the VM is told why; the log and the event also who said so */
	snprintf(logged, sizeof(logged), "%s%s%s", by && by[0] ? by : "", by && by[0] ? ": " : "",
		 why);

	sg_scan_end(&s->scan);	/* engines still judging are let go */
	s->refused++;
	if (tx && tx->state == TX_BODY)
		signals_message(s, tx, &s->scan);
	if (tx) {
		tx_note_scan(tx, &s->scan);
		tx_event(s, tx, code[0] == '4' ? "tempfail" : "reject", why, by, NULL);
	}
	tx_count_verdict(code[0] == '4' ? "tempfail" : "reject", reason);
	sg_feedback_note(s->feedback, &s->vm_addr,
			 code[0] == '4' ? SG_FB_TEMPFAILED :
			 signals_allowed(s, tx) ? SG_FB_REJECTED_ALLOWED :
			 strncmp(code, "552", 3) == 0 ? SG_FB_TOO_LARGE : SG_FB_REJECTED, 0);
	abort_upstream(s);
	local_reply(s, "%s smtpguard: message refused (%s); ref %s", code, why, ref);
	sg_info("session %s -> %s: message %s refused: %s", s->vm_name, s->mx_name, ref, logged);
	tx_end(s, tx);
	relay_set_mode(s, RELAY_REFUSED);
}

/* A waiting engine answered: the session runs again from the loop, not
 * from within the engine's callback. */
static void scan_wake(void *owner)
{
	struct session *s = owner;

	sg_loop_timer_in(s->loop, &s->wake, 0);
}

/* The VM's address alone (an IPv4-mapped one as IPv4), and its port. */
static uint16_t vm_address(const struct sockaddr_storage *a, char *buf, size_t len)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;

	buf[0] = '\0';
	if (a->ss_family == AF_INET) {
		inet_ntop(AF_INET, &a4->sin_addr, buf, (socklen_t)len);
		return ntohs(a4->sin_port);
	}
	if (a->ss_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, &a6->sin6_addr, buf, (socklen_t)len);
	return ntohs(a6->sin6_port);
}

/* The envelope's strings are the engines' during their begin only. */
void body_begin(struct session *s, struct sg_tx *tx)
{
	char vm_ip[INET6_ADDRSTRLEN];
	uint16_t vm_port = vm_address(&s->vm_addr, vm_ip, sizeof(vm_ip));
	struct sg_envelope env = {
		.vm = s->vm_name,
		.vm_ip = vm_ip,
		.vm_port = vm_port,
		.helo = s->helo,
		.mail_from = tx->mail_from,
		.rcpt_domains = tx->rcpt_domains,
		.rcpt_addrs = tx->rcpt_addrs,
		.rcpts = tx->rcpts_ok,
		.ref = tx->ref,
	};
	struct sg_scan_host host = {
		.loop = s->loop, .wake = scan_wake, .owner = s, .sessions = s->engine_sessions,
	};

	tx->state = TX_BODY;
	tx->body_started = 0;
	tx->body_ns = sg_now_ns();
	new_reference(tx->ref, sizeof(tx->ref));
	s->tx_cur = tx;
	s->scan_timed_out = 0;
	relay_set_mode(s, RELAY_BODY);
	sg_scan_begin(&s->scan, s->scanner, &env, &host);
}

/*
 * How much of a body chunk may go now: at most want bytes, and never
 * ending with a line break, which must stay with what follows it (a "."
 * after it may be the end; see smtp_data_scan). If the first want bytes
 * are all breaks, up to max are taken to reach one that is not; 0: none
 * is.
 */
static size_t chunk_end(const char *d, size_t want, size_t max)
{
	size_t n = want;

	while (n && (d[n - 1] == '\n' || d[n - 1] == '\r'))
		n--;
	if (n)
		return n;
	for (n = want + 1; n <= max; n++)
		if (d[n - 1] != '\n' && d[n - 1] != '\r')
			return n;
	return 0;
}

/* Body bytes vm_in[0..n) to the MX, as much as mx_out and this wake-up's
 * scan chunk allow (see chunk_end); the bytes sent. */
static size_t send_body(struct session *s, size_t n)
{
	size_t room = buf_space(&s->mx_out), cap = room < s->scan_chunk ? room : s->scan_chunk;

	if (n > cap) {
		size_t k = chunk_end(s->vm_in.data, cap, n < room ? n : room);

		/* nothing but breaks up to the body's end: the body whole is
		 * safe (smtp_data_scan holds back what could begin an end) */
		n = k ? k : n <= room ? n : 0;
	}
	if (!n)
		return 0;
	sg_scan_feed(&s->scan, s->vm_in.data, n);
	if (!s->mx_gone)
		buf_append(&s->mx_out, s->vm_in.data, n);
	buf_consume(&s->vm_in, n);
	s->tx_cur->body_started = 1;
	if (s->scan.bytes > s->cfg->smtp_message_size_limit && !s->mx_gone)
		abort_upstream(s);	/* the rest is read and dropped; 552 at the end */
	return n;
}

/*
 * The scan of one session must not hold its worker (the other tenants'
 * sessions wait meanwhile): the body goes through in chunks sized so that
 * one takes about SG_SCAN_CHUNK_NS to scan (halved when slower, doubled
 * when much faster, from SG_BODY_BUF down to SG_SCAN_CHUNK_MIN), and after
 * SG_SCAN_SLICE_NS of scanning in one wake-up the session yields: it runs
 * again from the loop, after what else is ready.
 */
#define SG_SCAN_CHUNK_NS	250000ULL
#define SG_SCAN_SLICE_NS	2000000ULL
#define SG_SCAN_CHUNK_MIN	256

static void adapt_chunk(struct session *s, uint64_t took_ns)
{
	if (took_ns > 2 * SG_SCAN_CHUNK_NS && s->scan_chunk > SG_SCAN_CHUNK_MIN)
		s->scan_chunk /= 2;
	else if (took_ns < SG_SCAN_CHUNK_NS / 4 && s->scan_chunk < SG_BODY_BUF)
		s->scan_chunk *= 2;
}

/* The verdict is in: the dot goes to the MX, or the message is refused. */
static void apply_verdict(struct session *s, const struct sg_verdict *v)
{
	struct sg_tx *tx = s->tx_cur;
	struct sg_tenancy *tenancy = s->tenancy;
	char reason[SG_REASON_LEN];

	relay_set_mode(s, RELAY_COMMANDS);
	switch (v->kind) {
	case SG_ACCEPT:
		/* the sender's buckets and its tenant's (all its VMs' on this
		 * host); an exempt tenant's VMs have neither. The tenant's is
		 * asked first and taken last, so that a sender's tokens are not
		 * spent on a message its tenant defers (two workers racing for
		 * the tenant's last token may still: one message's worth) */
		if (!(s->tenant_limits && s->tenant_limits->exempt) &&
		    (sg_tenancy_check_message(tenancy, s->tenant, s->tenant_limits, reason,
					      sizeof(reason)) ||
		     sg_feedback_charge(s->feedback, &s->vm_addr, s->policy.rate_class,
					tx->rcpts_ok, reason, sizeof(reason)) ||
		     sg_tenancy_charge(tenancy, s->tenant, s->tenant_limits, tx->rcpts_ok, reason,
				       sizeof(reason)))) {
			refuse_message(s, "451 4.7.1", reason, NULL, SG_PREASON_RATE);
			return;
		}
		signals_message(s, tx, &s->scan);
		if (tx->chunked)
			buf_append(&s->mx_out, "BDAT 0 LAST\r\n", 13);
		else
			buf_append(&s->mx_out, ".\r\n", 3);
		/* the MX's transaction ends with the dot, whatever its reply:
		 * the VM's next MAIL opens another */
		tx->state = TX_DOT;
		tx->dot_ns = sg_now_ns();
		tx_note_scan(tx, &s->scan);
		snprintf(tx->reason, sizeof(tx->reason), "%s", v->reason);
		expect_reply(s, tx->chunked ? SMTP_BDAT : SMTP_DATA, 1)->tx_id = tx->id;
		s->tx_cur = NULL;
		return;
	/* an engine's own reply code (a milter's), of the verdict's class */
	case SG_REJECT:
		refuse_message(s, v->code[0] == '5' ? v->code : "550 5.7.1", v->reason, v->by,
			       verdict_reason_class(v));
		return;
	case SG_TEMPFAIL:
		refuse_message(s, v->code[0] == '4' ? v->code : "451 4.7.1", v->reason, v->by,
			       verdict_reason_class(v));
		return;
	}
}

/*
 * The dot has come and is withheld (RELAY_VERDICT) until every engine has
 * answered. One that waits wakes the session when it has; past
 * scan_timeout the scanner's failure action (scan_timeout_action) decides.
 */
static void await_verdict(struct session *s)
{
	struct sg_verdict v;

	/* the last chunk's reply first: a refusal of it is the VM's answer,
	 * and no BDAT 0 LAST may follow it */
	if (s->chunk_replies_held)
		return;
	if (s->scan_timed_out) {
		char why[64];

		snprintf(why, sizeof(why), "the scan took longer than %llus",
			 (unsigned long long)(s->cfg->scan_timeout_ns / 1000000000ULL));
		sg_scan_end(&s->scan);
		sg_scan_failure(&s->scan, &v, why);
		sg_warn("session %s -> %s: message %s: %s; scan_timeout_action = %s", s->vm_name,
			s->mx_name, s->tx_cur->ref, why, v.kind == SG_ACCEPT ? "accept" : "tempfail");
		if (v.kind == SG_ACCEPT)
			snprintf(v.reason, sizeof(v.reason), "accepted: %s", why);
	} else if (sg_scan_verdict(&s->scan, &v) == SG_ENGINE_WAIT) {
		if (!sg_timer_armed(&s->scan_deadline))
			sg_loop_timer_in(s->loop, &s->scan_deadline, s->cfg->scan_timeout_ns);
		return;
	}
	sg_loop_timer_cancel(s->loop, &s->scan_deadline);
	apply_verdict(s, &v);
}

/* A body must keep coming at smtp_min_data_rate (Postfix's
 * smtpd_min_data_rate): one trickled a byte at a time would hold the
 * session, and its descriptors, for as long as the VM likes. The first
 * SG_DATA_GRACE_S seconds are free (a slow start, a large first write). */
#define SG_DATA_GRACE_S 10
int relay_body_too_slow(const struct session *s, uint64_t now)
{
	uint64_t secs;

	if (s->mode != RELAY_BODY || !s->tx_cur || !s->cfg->smtp_min_data_rate)
		return 0;
	/* a chunk's pace counts from its own BDAT: the VM may think between
	 * chunks (a command's idle time, not the body's) */
	if (s->tx_cur->chunked) {
		secs = (now - s->chunk_ns) / 1000000000ULL;
		return secs > SG_DATA_GRACE_S &&
		       s->scan.bytes - s->chunk_base <
			       (uint64_t)s->cfg->smtp_min_data_rate * (secs - SG_DATA_GRACE_S);
	}
	secs = (now - s->tx_cur->body_ns) / 1000000000ULL;
	return secs > SG_DATA_GRACE_S &&
	       s->scan.bytes < (uint64_t)s->cfg->smtp_min_data_rate * (secs - SG_DATA_GRACE_S);
}

/*
 * A BDAT chunk's bytes: to the scanner and the MX as they come, in the
 * scan's chunks and slices as a DATA body; no line break to hold back (the
 * chunk's size says where it ends). After the last chunk, the verdict.
 */
static void process_chunk(struct session *s, uint64_t slice_start)
{
	uint64_t before, after = slice_start;

	while (s->chunk_left) {
		size_t n = s->vm_in.len < s->chunk_left ? s->vm_in.len : (size_t)s->chunk_left;

		if (sg_scan_held(&s->scan))
			return;	/* an engine is behind: it wakes the session */
		if (n > s->scan_chunk)
			n = s->scan_chunk;
		if (!s->mx_gone && n > buf_space(&s->mx_out))
			n = buf_space(&s->mx_out);
		if (!n)
			return;
		before = after;
		sg_scan_feed(&s->scan, s->vm_in.data, n);
		if (!s->mx_gone)
			buf_append(&s->mx_out, s->vm_in.data, n);
		buf_consume(&s->vm_in, n);
		s->chunk_left -= n;
		s->tx_cur->body_started = 1;
		after = sg_now_ns();
		adapt_chunk(s, after - before);
		if (s->chunk_left && s->vm_in.len && buf_space(&s->mx_out) &&
		    after - slice_start >= SG_SCAN_SLICE_NS) {
			sg_loop_timer_in(s->loop, &s->wake, 0);	/* yield */
			return;
		}
	}
	if (!s->chunk_last) {
		relay_set_mode(s, RELAY_COMMANDS);	/* the next chunk's BDAT, or another command */
		return;
	}
	relay_set_mode(s, RELAY_VERDICT);
	await_verdict(s);
}

void process_body(struct session *s)
{
	uint64_t slice_start = sg_now_ns(), before, after = slice_start;

	if (s->mode == RELAY_VERDICT) {
		await_verdict(s);
		return;
	}
	/* it yielded: the body goes on from the wake-up, after the others'
	 * turn; not from relay_run's next round, nor from its VM's socket
	 * (always readable while the VM sends: a slice more each time) */
	if (sg_timer_armed(&s->wake))
		return;
	if (s->tx_cur->chunked) {
		process_chunk(s, slice_start);
		return;
	}
	for (;;) {
		size_t body, sent;
		enum smtp_data_result r = smtp_data_scan(s->vm_in.data, s->vm_in.len,
							 !s->tx_cur->body_started, &body);
		char reason[SG_REASON_LEN];

		before = after;
		if (sg_scan_held(&s->scan))
			return;	/* an engine is behind: it wakes the session */
		sent = send_body(s, body);
		after = sg_now_ns();
		if (sent)
			adapt_chunk(s, after - before);
		if (sent && sent < body && buf_space(&s->mx_out)) {
			/* cut by the scan chunk, not by the MX's pace */
			if (after - slice_start < SG_SCAN_SLICE_NS)
				continue;
			sg_loop_timer_in(s->loop, &s->wake, 0);	/* yield */
			return;
		}
		if (sent < body || r == SMTP_DATA_MORE)
			return;
		if (r == SMTP_DATA_SMUGGLE) {
			refuse_message(s, "554 5.5.0", "a bare CR or LF next to the end-of-data dot",
				       NULL, SG_PREASON_PROTOCOL);
			s->close_after_flush = 1;	/* the rest of the stream is not trusted */
			s->vm_in.len = 0;
			return;
		}
		/* the end: the dot is withheld until the verdict */
		if (!s->mx_gone && buf_space(&s->mx_out) < 3)
			return;
		buf_consume(&s->vm_in, 3);
		if (s->scan.bytes > s->cfg->smtp_message_size_limit) {
			snprintf(reason, sizeof(reason), "larger than the limit of %llu bytes",
				 (unsigned long long)s->cfg->smtp_message_size_limit);
			refuse_message(s, "552 5.3.4", reason, NULL, SG_PREASON_SIZE);
			return;
		}
		relay_set_mode(s, RELAY_VERDICT);
		await_verdict(s);
		return;
	}
}
