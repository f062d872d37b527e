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
#include "tls.h"

static void relay_reply(struct session *s, const struct smtp_reply *r)
{
	struct pending *p = pending_head(s);

	if (p && p->verb == SMTP_EHLO && r->code == 250) {
		/* STARTTLS last: hidden only under tls_mode strip */
		static const char *const hidden[] = { "CHUNKING", "BINARYMIME", "STARTTLS" };
		int strip = s->tls_mode == SG_TLS_STRIP;
		char tmp[SG_REPLY_BUF];
		size_t n;

		memcpy(tmp, s->mx_in.data, r->len);
		n = smtp_ehlo_remove(tmp, r->len, hidden, strip ? 3 : 2);
		if (strip && s->mx_starttls && !s->stripped) {
			s->stripped = 1;
			sg_warn("session %s -> %s: STARTTLS hidden from the VM (tls_mode strip): "
				"this session crosses the network in clear", s->vm_name, s->mx_name);
		}
		buf_append(&s->vm_out, tmp, n);
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

static void after_reply(struct session *s, struct pending *p, int code, const char *reply)
{
	if (!s->greeted) {
		note_greeting(s, reply);
		return;
	}
	if (p->data_end) {
		char first[256];
		size_t n = strcspn(reply, "\r\n");

		snprintf(first, sizeof(first), "%.*s", (int)(n < sizeof(first) - 1 ? n :
							       sizeof(first) - 1), reply);
		sg_debug("session %s -> %s: message %s: the MX answered %s", s->vm_name, s->mx_name,
			s->ref, first);
		s->messages++;
		sg_event_message(s, "accept", "clean", first);
		/* the counts travel with the dot: a pipelined MAIL may have
		 * begun the next transaction already */
		if (code >= 200 && code < 300)
			sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_DELIVERED, p->rcpts);
		else if (code >= 500)
			sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_MX_5XX, 0);
		return;
	}
	if (code >= 500 && (p->verb == SMTP_MAIL || p->verb == SMTP_RCPT || p->verb == SMTP_DATA))
		sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_MX_5XX, 0);
	switch (p->verb) {
	case SMTP_RCPT:
		if (code >= 200 && code < 300)
			s->rcpts_ok++;
		break;
	case SMTP_DATA:
		if (code == 354) {
			s->mode = RELAY_BODY;
			s->body_started = 0;
			new_reference(s);
			scan_begin(s);
		} else {
			s->mode = RELAY_COMMANDS;
		}
		break;
	case SMTP_STARTTLS:
		if (code != 220)
			s->mode = RELAY_COMMANDS;
		else if (s->tls_mode == SG_TLS_TERMINATE)
			begin_mx_handshake(s);
		else
			s->mode = RELAY_TUNNEL;
		break;
	case SMTP_AUTH:
		s->mode = code == 334 ? RELAY_AUTH_LINE : RELAY_COMMANDS;
		break;
	case SMTP_QUIT:
		s->close_after_flush = 1;
		break;
	case SMTP_UNKNOWN:
		if (s->mode == RELAY_WAIT)
			s->mode = RELAY_COMMANDS;
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
			static const char msg[] = "421 4.3.0 smtpguard: the MX's reply was "
						  "malformed; try again later\r\n";

			sg_warn("session %s -> %s: the MX sent a %s reply; session ended", s->vm_name,
				s->mx_name, res == SMTP_REPLY_TOO_LONG ? "too long" : s->mx_eof ? "cut-off" : "malformed");
			abort_upstream(s);
			if (buf_space(&s->vm_out) >= sizeof(msg) - 1)
				buf_append(&s->vm_out, msg, sizeof(msg) - 1);
			s->close_after_flush = 1;
			return;
		}
		if (buf_space(&s->vm_out) < r.len)
			return;	/* the VM is slow: wait */
		p = pending_head(s);
		if (p && p->has_local)
			return;	/* a reply of ours goes first, once vm_out has room */
		s->mx_said_bye = r.code == 221 || r.code == 421;
		if (!p) {
			/* unsolicited (a 421 as the MX shuts down): relay it */
			buf_append(&s->vm_out, s->mx_in.data, r.len);
			buf_consume(&s->mx_in, r.len);
			if (r.code == 421)
				s->close_after_flush = 1;
			continue;
		}
		if (r.code >= 300 && r.code < 400 &&
		    !(p->verb == SMTP_DATA && !p->data_end && r.code == 354) &&
		    !(p->verb == SMTP_AUTH && r.code == 334)) {
			/* the MX waits for more than the command the relay sent
			 * (it read a line as DATA that the relay did not, say):
			 * what follows would pass unread, so it all ends here */
			static const char msg[] = "421 4.3.0 smtpguard: the MX's reply did not "
						  "match the command; try again later\r\n";

			if (buf_space(&s->vm_out) < sizeof(msg) - 1)
				return;
			sg_warn("session %s -> %s: the MX answered %d to %s: it reads the session "
				"differently from smtpguard; session ended", s->vm_name, s->mx_name,
				r.code, p->data_end ? "the end of data" : smtp_verb_name(p->verb));
			abort_upstream(s);
			buf_append(&s->vm_out, msg, sizeof(msg) - 1);
			s->close_after_flush = 1;
			s->end = "mx_out_of_step";
			return;
		}
		if (p->verb == SMTP_EHLO && r.code == 250)
			s->mx_starttls = smtp_ehlo_has(s->mx_in.data, r.len, "STARTTLS");
		if (p->verb == SMTP_EHLO && r.code == 250 && s->tls_mode == SG_TLS_TERMINATE &&
		    s->tls_phase == TLS_NONE && !s->mx_starttls &&
		    s->cfg->tls_mx_without_starttls == SG_TLS_REQUIRE) {
			static const char msg[] = "421 4.7.0 smtpguard: the MX does not offer "
						  "STARTTLS, which this host requires; try again "
						  "later\r\n";

			if (buf_space(&s->vm_out) < sizeof(msg) - 1)
				return;	/* the VM is slow: wait */
			sg_warn("session %s -> %s: the MX offers no STARTTLS and "
				"tls_mx_without_starttls = require: the VM is told to retry later",
				s->vm_name, s->mx_name);
			abort_upstream(s);
			pending_pop(s);
			buf_append(&s->vm_out, msg, sizeof(msg) - 1);
			s->close_after_flush = 1;
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
