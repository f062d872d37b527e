/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay_data.c - a message's body (DATA): streamed to the MX while the
 * scanning stage reads it, the final dot withheld until the verdict; a
 * refused message is aborted upstream (the MX never gets the dot, so never
 * commits it) and the VM is told why, with a reference id.
 */
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

/* A message's reference id: the time, a random number drawn once a
 * process (so that a restart within the second, or another host, does not
 * hand out the same ids again), and a counter. */
void new_reference(struct session *s)
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
	snprintf(s->ref, sizeof(s->ref), "SG%08lX%04X%04X", (unsigned long)time(NULL),
		 r & 0xffff, n & 0xffff);
}

void refuse_message(struct session *s, const char *code, const char *why)
{
	sg_scan_end(&s->scan);	/* engines still judging are let go */
	s->refused++;
	sg_event_message(s, code[0] == '4' ? "tempfail" : "reject", why, NULL);
	sg_feedback_note(s->feedback, &s->vm_addr,
			 code[0] == '4' ? SG_FB_TEMPFAILED :
			 strncmp(code, "552", 3) == 0 ? SG_FB_TOO_LARGE : SG_FB_REJECTED, 0);
	abort_upstream(s);
	local_reply(s, "%s smtpguard: message refused (%s); ref %s", code, why, s->ref);
	sg_info("session %s -> %s: message %s refused: %s", s->vm_name, s->mx_name, s->ref, why);
	s->mode = RELAY_REFUSED;
}

/* A waiting engine answered: the session runs again from the loop, not
 * from within the engine's callback. */
static void scan_wake(void *owner)
{
	struct session *s = owner;

	sg_loop_timer_in(s->loop, &s->wake, 0);
}

/* A message begins (its 354): the engines are told its envelope. */
void scan_begin(struct session *s)
{
	struct sg_envelope env = {
		.vm = s->vm_name,
		.helo = s->helo,
		.mail_from = s->mail_from,
		.rcpt_domains = s->rcpt_domains,
		.rcpts = s->rcpts_ok,
	};
	struct sg_scan_host host = { .loop = s->loop, .wake = scan_wake, .owner = s };

	s->scan_timed_out = 0;
	sg_scan_begin(&s->scan, s->scanner, &env, &host);
}

/* Body bytes buf[0..n) to the MX; n is cut back so that a line break is
 * never sent apart from what follows it (see smtp_data_scan). */
static size_t send_body(struct session *s, size_t n)
{
	size_t room = buf_space(&s->mx_out);

	if (n > room) {
		n = room;
		while (n && (s->vm_in.data[n - 1] == '\n' || s->vm_in.data[n - 1] == '\r'))
			n--;
	}
	if (!n)
		return 0;
	sg_scan_feed(&s->scan, s->vm_in.data, n);
	if (!s->mx_gone)
		buf_append(&s->mx_out, s->vm_in.data, n);
	buf_consume(&s->vm_in, n);
	s->body_started = 1;
	if (s->scan.bytes > s->cfg->smtp_message_size_limit && !s->mx_gone)
		abort_upstream(s);	/* the rest is read and dropped; 552 at the end */
	return n;
}

/* The verdict is in: the dot goes to the MX, or the message is refused. */
static void apply_verdict(struct session *s, const struct sg_verdict *v)
{
	char reason[SG_REASON_LEN];

	s->mode = RELAY_COMMANDS;
	switch (v->kind) {
	case SG_ACCEPT:
		if (sg_feedback_charge(s->feedback, &s->vm_addr, s->policy.rate_class, s->rcpts_ok,
				       reason, sizeof(reason))) {
			refuse_message(s, "451 4.7.1", reason);
			return;
		}
		buf_append(&s->mx_out, ".\r\n", 3);
		expect_reply(s, SMTP_DATA, 1)->rcpts = s->rcpts_ok;
		return;
	case SG_REJECT:
		refuse_message(s, "550 5.7.1", v->reason);
		return;
	case SG_TEMPFAIL:
		refuse_message(s, "451 4.7.1", v->reason);
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

	if (s->scan_timed_out) {
		char why[64];

		snprintf(why, sizeof(why), "the scan took longer than %llus",
			 (unsigned long long)(s->cfg->scan_timeout_ns / 1000000000ULL));
		sg_scan_end(&s->scan);
		sg_scan_failure(&s->scan, &v, why);
		sg_warn("session %s -> %s: message %s: %s; scan_timeout_action = %s", s->vm_name,
			s->mx_name, s->ref, why, v.kind == SG_ACCEPT ? "accept" : "tempfail");
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

void process_body(struct session *s)
{
	if (s->mode == RELAY_VERDICT) {
		await_verdict(s);
		return;
	}
	for (;;) {
		size_t body, sent;
		enum smtp_data_result r = smtp_data_scan(s->vm_in.data, s->vm_in.len,
							 !s->body_started, &body);
		char reason[SG_REASON_LEN];

		sent = send_body(s, body);
		if (sent < body || r == SMTP_DATA_MORE)
			return;
		memcpy(s->msg_mail_from, s->mail_from, sizeof(s->msg_mail_from));
		memcpy(s->msg_rcpt_domains, s->rcpt_domains, sizeof(s->msg_rcpt_domains));
		s->msg_rcpts = s->rcpts_ok;
		if (r == SMTP_DATA_SMUGGLE) {
			refuse_message(s, "554 5.5.0", "a bare CR or LF next to the end-of-data dot");
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
			refuse_message(s, "552 5.3.4", reason);
			return;
		}
		s->mode = RELAY_VERDICT;
		await_verdict(s);
		return;
	}
}
