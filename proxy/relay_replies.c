/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay_replies.c - the MX's replies, in the order the VM's commands went
 * out: relayed to the VM (EHLO's keywords filtered), checked against the
 * command they answer (a 3xx the relay did not ask for ends the session),
 * and what each one changes: a 354 starts the body, a 220 to STARTTLS the
 * tunnel or the handshakes, the reply to a dot the message's event.
 */
#include <stdio.h>
#include <string.h>
#include "events.h"
#include "log.h"
#include "relay.h"
#include "signals.h"
#include "tls.h"

static void relay_reply(struct session *s, const struct smtp_reply *r)
{
	struct pending *p = pending_head(s);

	if (p && p->verb == SMTP_EHLO && r->code == 250) {
		/* BURL's body would be fetched by the MX, never read here;
		 * BINARYMIME's would reach the line engines as binary; STARTTLS
		 * last: hidden only under tls_mode strip. CHUNKING stays: its
		 * chunks are scanned (check_bdat) */
		static const char *const hidden[] = { "BINARYMIME", "BURL", "STARTTLS" };
		int strip = s->tls_mode == SG_TLS_STRIP;
		char tmp[SG_REPLY_BUF];
		size_t n;

		memcpy(tmp, s->mx_in.data, r->len);
		n = smtp_ehlo_remove(tmp, r->len, hidden, strip ? 3 : 2);
		/* the VM learns this host's limit before it sends, as the MX's */
		n = smtp_ehlo_cap_size(tmp, n, sizeof(tmp), s->cfg->smtp_message_size_limit);
		if (strip && s->mx_starttls && !s->stripped) {
			s->stripped = 1;
			sg_warn("session %s -> %s: STARTTLS hidden from the VM (tls_mode strip): "
				"this session crosses the network in clear", s->vm_name, s->mx_name);
		}
		buf_append(&s->vm_out, tmp, n);
	} else if (p && p->chunk_held) {
		struct sg_tx *tx = tx_find(s, p->tx_id);

		/* the VM's last chunk: its 2xx is the MX's for a chunk, not for
		 * the message (the VM hears the reply to BDAT 0 LAST); a refusal
		 * is the VM's answer. A 2xx for a message the MX already refused
		 * a chunk of is not passed on as if it took it */
		if (r->code >= 200 && r->code < 300 && tx && tx->state == TX_BODY)
			return;
		if (r->code >= 200 && r->code < 300) {
			static const char gone[] = "554 5.5.0 smtpguard: the MX refused an earlier "
						   "chunk of this message; it was not sent\r\n";

			buf_append(&s->vm_out, gone, sizeof(gone) - 1);
			return;
		}
		buf_append(&s->vm_out, s->mx_in.data, r->len);
	} else {
		buf_append(&s->vm_out, s->mx_in.data, r->len);
	}
}

/* The host name in the MX's greeting ("220 mx.example.org ESMTP"): the SNI
 * and the name its certificate must hold (tls_mx_verify = verify). */
static void note_greeting(struct session *s, const char *reply)
{
	size_t n;

	s->greeted = 1;
	if (strlen(reply) < 5)
		return;
	reply += 4;
	n = strcspn(reply, " \r\n");
	if (n < sizeof(s->mx_host))
		snprintf(s->mx_host, sizeof(s->mx_host), "%.*s", (int)n, reply);
}

/* The MX failed, or it and the relay no longer agree on where the session
 * is: the upstream is aborted, the VM told why, the session ends. 0: no
 * room for the reply yet (the VM is slow), so nothing was done. */
static int mx_fault(struct session *s, const char *reply, const char *end)
{
	size_t n = strlen(reply);

	if (buf_space(&s->vm_out) < n)
		return 0;
	abort_upstream(s);
	buf_append(&s->vm_out, reply, n);
	s->close_after_flush = 1;
	if (end)
		s->end = end;
	return 1;
}

/* The MX waits for more than the relay sent it (it read a line as DATA
 * that the relay did not, say): what followed would pass unread. */
static int relay_out_of_step(struct session *s, const struct pending *p, int code)
{
	if (!mx_fault(s, "421 4.3.0 smtpguard: the MX's reply did not match the command; try "
		      "again later\r\n", "mx_out_of_step"))
		return 0;
	sg_warn("session %s -> %s: the MX answered %d to %s: it reads the session differently "
		"from smtpguard; session ended", s->vm_name, s->mx_name, code,
		!p ? "nothing (unsolicited)" : p->data_end ? "the end of data" :
		smtp_verb_name(p->verb));
	return 1;
}

/* The MX answered the dot: the message's event, its sender's counts. */
static void dot_answered(struct session *s, struct sg_tx *tx, int code, const char *reply)
{
	char first[256];
	size_t n = strcspn(reply, "\r\n");

	snprintf(first, sizeof(first), "%.*s", (int)(n < sizeof(first) - 1 ? n : sizeof(first) - 1),
		 reply);
	if (!tx)
		return;	/* its event was written already (cannot happen) */
	sg_debug("session %s -> %s: message %s: the MX answered %s", s->vm_name, s->mx_name,
		 tx->ref, first);
	s->messages++;
	tx_event(s, tx, "accept", tx->reason[0] ? tx->reason : "clean", NULL, first);
	tx_count_verdict("accept", strncmp(tx->reason, "accepted:", 9) == 0 ?
			 SG_PREASON_ENGINE_FAILURE : SG_PREASON_CLEAN);
	if (code >= 200 && code < 300)
		sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_DELIVERED, tx->rcpts_ok);
	else if (code >= 500)
		sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_MX_5XX, 0);
	tx_end(s, tx);
}

/* The MX refused a chunk of tx: its transaction is over there (RFC 3030
 * 4.2), whatever the VM sends after it. The message's event carries that
 * reply; the rest of a chunk on its way is dropped, a verdict awaited is
 * not wanted any more. */
static void chunk_refused(struct session *s, struct sg_tx *tx, int code, const char *reply)
{
	if (s->tx_cur == tx && (s->mode == RELAY_BODY || s->mode == RELAY_VERDICT)) {
		if (s->chunk_left)
			s->chunk_discard = 1;
		s->chunk_last = 0;
		sg_loop_timer_cancel(s->loop, &s->scan_deadline);
		relay_set_mode(s, RELAY_COMMANDS);
	}
	snprintf(tx->reason, sizeof(tx->reason), "not judged: the MX refused a chunk");
	dot_answered(s, tx, code, reply);
}

/* The MX answered a MAIL: a transaction is open only if it said yes. */
static void mail_answered(struct session *s, struct sg_tx *tx, int code)
{
	if (!tx)
		return;
	if (code < 200 || code >= 300) {
		tx_end(s, tx);	/* one open before it stays open */
		return;
	}
	/* a second MAIL the MX took (a lax one): it replaced the first */
	if (s->tx_cur && s->tx_cur != tx)
		tx_end(s, s->tx_cur);
	tx->state = TX_OPEN;
	s->tx_cur = tx;
}

static void after_reply(struct session *s, struct pending *p, int code, const char *reply)
{
	struct sg_tx *tx = tx_find(s, p->tx_id);

	if (!s->greeted) {
		note_greeting(s, reply);
		return;
	}
	signals_reply(s, p->verb, p->data_end, tx ? tx->mail_from : NULL, code, reply);
	if (p->data_end) {
		dot_answered(s, tx, code, reply);
		return;
	}
	/* a DATA refused for want of an accepted recipient (pipelined behind
	 * RCPTs a greylisting MX deferred) says nothing the RCPTs did not */
	if (code >= 500 && (p->verb == SMTP_MAIL || p->verb == SMTP_RCPT ||
			    (p->verb == SMTP_DATA && tx && tx->rcpts_ok)))
		sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_MX_5XX, 0);
	/* a DATA refused for want of recipients keeps theirs: the 450 of a
	 * greylisting MX says why, its "no valid recipients" does not */
	if (code >= 400 && tx && (p->verb == SMTP_RCPT || p->verb == SMTP_BDAT ||
				  (p->verb == SMTP_DATA && (tx->rcpts_ok || !tx->mx_refusal[0]))))
		snprintf(tx->mx_refusal, sizeof(tx->mx_refusal), "%.*s",
			 (int)strcspn(reply, "\r\n"), reply);
	switch (p->verb) {
	case SMTP_MAIL:
		mail_answered(s, tx, code);
		if (s->mode == RELAY_WAIT)
			relay_set_mode(s, RELAY_COMMANDS);
		break;
	case SMTP_RCPT:
		if (tx && code >= 200 && code < 300)
			tx_rcpt_accepted(tx, p);
		break;
	case SMTP_DATA:
		relay_set_mode(s, RELAY_COMMANDS);
		if (code != 354)
			break;
		/* a lax MX that takes DATA with no transaction of the relay's:
		 * the body still is one, with an empty envelope */
		if (!tx && !(tx = tx_new(s))) {
			relay_out_of_step(s, p, code);
			break;
		}
		body_begin(s, tx);
		break;
	case SMTP_BDAT:
		if (p->chunk_held)
			s->chunk_replies_held--;
		if (tx && tx->state == TX_BODY && (code < 200 || code >= 300))
			chunk_refused(s, tx, code, reply);
		break;
	case SMTP_STARTTLS:
		if (code != 220)
			relay_set_mode(s, RELAY_COMMANDS);
		else if (s->tls_mode == SG_TLS_TERMINATE)
			begin_mx_handshake(s);
		else
			relay_set_mode(s, RELAY_TUNNEL);
		break;
	case SMTP_AUTH:
		relay_set_mode(s, code == 334 ? RELAY_AUTH_LINE : RELAY_COMMANDS);
		break;
	case SMTP_QUIT:
		s->close_after_flush = 1;
		break;
	case SMTP_UNKNOWN:
		if (s->mode == RELAY_WAIT)
			relay_set_mode(s, RELAY_COMMANDS);
		break;
	default:
		break;
	}
}

/* The MX's replies, in the order the VM's commands went out. */
void process_mx(struct session *s)
{
	for (;;) {
		struct smtp_reply r;
		struct pending *p;
		enum smtp_reply_result res;

		emit_local_replies(s);
		if (!s->mx_in.len)
			return;
		if (s->mode == RELAY_TUNNEL || (s->tls_phase != TLS_NONE && s->tls_phase != TLS_ON))
			return;
		res = smtp_next_reply(s->mx_in.data, s->mx_in.len, s->cfg->smtp_line_limit, &r);
		if (res == SMTP_REPLY_NONE && !buf_space(&s->mx_in))
			res = SMTP_REPLY_TOO_LONG;
		if (res == SMTP_REPLY_NONE && s->mx_eof)
			res = SMTP_REPLY_MALFORMED;	/* it ended mid-reply: no more will come */
		if (res == SMTP_REPLY_NONE)
			return;
		if (res != SMTP_REPLY_OK) {
			if (mx_fault(s, "421 4.3.0 smtpguard: the MX's reply was malformed; try "
				     "again later\r\n", NULL))
				sg_warn("session %s -> %s: the MX sent a %s reply; session ended",
					s->vm_name, s->mx_name, res == SMTP_REPLY_TOO_LONG ?
					"too long" : s->mx_eof ? "cut-off" : "malformed");
			return;
		}
		if (buf_space(&s->vm_out) < r.len)
			return;	/* the VM is slow: wait */
		p = pending_head(s);
		if (p && p->has_local)
			return;	/* a reply of ours goes first, once vm_out has room */
		/* a 3xx asks for more than the command it answers (or, with
		 * nothing pending, for something): only DATA's 354 and AUTH's
		 * 334 are what the relay asked for */
		if (r.code >= 300 && r.code < 400 &&
		    !(p && p->verb == SMTP_DATA && !p->data_end && r.code == 354) &&
		    !(p && p->verb == SMTP_AUTH && r.code == 334)) {
			relay_out_of_step(s, p, r.code);
			return;
		}
		/* with nothing pending only a 421 may come (RFC 5321, 3.8):
		 * any other reply would leave the VM one reply behind */
		if (!p && r.code != 421) {
			relay_out_of_step(s, p, r.code);
			return;
		}
		s->mx_said_bye = r.code == 221 || r.code == 421;
		if (!p) {
			/* the MX shuts down: its 421 is relayed, and the end */
			buf_append(&s->vm_out, s->mx_in.data, r.len);
			buf_consume(&s->mx_in, r.len);
			s->close_after_flush = 1;
			continue;
		}
		if (p->verb == SMTP_EHLO && r.code == 250) {
			s->mx_starttls = smtp_ehlo_has(s->mx_in.data, r.len, "STARTTLS");
			s->mx_chunking = smtp_ehlo_has(s->mx_in.data, r.len, "CHUNKING");
		}
		if (p->verb == SMTP_HELO)
			s->mx_chunking = 0;	/* no extensions after HELO */
		if (p->verb == SMTP_EHLO && r.code == 250 && s->tls_mode == SG_TLS_TERMINATE &&
		    s->tls_phase == TLS_NONE && !s->mx_starttls &&
		    s->cfg->tls_mx_without_starttls == SG_TLS_REQUIRE) {
			if (!mx_fault(s, "421 4.7.0 smtpguard: the MX does not offer STARTTLS, "
				      "which this host requires; try again later\r\n", NULL))
				return;	/* the VM is slow: wait */
			sg_warn("session %s -> %s: the MX offers no STARTTLS and "
				"tls_mx_without_starttls = require: the VM is told to retry later",
				s->vm_name, s->mx_name);
			pending_pop(s);
			return;
		}
		if (p->verb == SMTP_STARTTLS && r.code == 220 && s->tls_mode == SG_TLS_TERMINATE &&
		    !sg_tls_can_terminate(s->tls)) {
			sg_err("session %s -> %s: terminate, but the certificate is gone (a reload "
			       "without tls_cert_file): this TLS session passes through", s->vm_name,
			       s->mx_name);
			s->tls_mode = SG_TLS_PASSTHROUGH;
		}
		/* terminate: the VM hears 220 once TLS to the MX holds */
		if (!(p->verb == SMTP_STARTTLS && r.code == 220 && s->tls_mode == SG_TLS_TERMINATE))
			relay_reply(s, &r);
		{
			struct pending done = *p;
			char first[256];
			size_t n = r.len < sizeof(first) - 1 ? r.len : sizeof(first) - 1;

			memcpy(first, s->mx_in.data, n);
			first[n] = '\0';
			buf_consume(&s->mx_in, r.len);
			pending_pop(s);
			after_reply(s, &done, r.code, first);
		}
	}
}
