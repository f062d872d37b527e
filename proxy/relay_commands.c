/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay_commands.c - the VM's commands, relayed as it batched them
 * (PIPELINING), read as Postfix reads them. Every line is checked first
 * (its length, stray CR or NUL, the command limit); then its verb's row in
 * a table (OpenSMTPD's smtp_session.c is the model) may answer it here (a
 * limit, a refusal) or let it go to the MX, noting what it changes (the
 * transaction, the HELO name) and whether what follows must wait for its
 * reply (a sync point).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "events.h"
#include "ladder.h"
#include "log.h"
#include "parse.h"
#include "relay.h"
#include "signals.h"

/* What a check says of a command. */
enum check {
	CMD_RELAY = 0,		/* to the MX */
	CMD_ANSWERED,		/* answered here, consumed */
	CMD_LATER,		/* not now: it waits in vm_in for a reply to come */
};

struct command {
	enum smtp_verb verb;
	/* may answer the command itself; NULL: relayed as it is */
	enum check (*check)(struct session *s, const char *line, size_t len, size_t arg);
	/* it is on its way to the MX, with the reply it is owed */
	void (*sent)(struct session *s, const char *line, size_t len, size_t arg,
		     struct pending *p);
	/* what follows depends on its reply: nothing more goes out before it */
	int sync;
};

/* The SIZE= a MAIL FROM declares (RFC 1870), or 0. */
static unsigned long long declared_size(const char *line, size_t len)
{
	char buf[1024];
	const char *p;

	snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1),
		 line);
	/* the parameters follow the path: a quoted local part may hold anything */
	p = strchr(buf, '>');
	for (p = p ? p : buf; (p = strcasestr(p, "SIZE=")) != NULL; p += 5)
		if (p > buf && (p[-1] == ' ' || p[-1] == '\t'))
			return strtoull(p + 5, NULL, 10);
	return 0;
}

/*
 * A message refused at its MAIL FROM, which is not relayed: the MX starts
 * no transaction, and one already open stays as it was. It still is a
 * message smtpguard refused: an event, the feedback, a reference id.
 */
static void refuse_at_mail(struct session *s, const char *line, size_t len, size_t arg,
			   const char *code, enum sg_feedback_event fb, const char *why,
			   enum sg_preason reason)
{
	char sender[512], ref[24];
	struct sg_message_event e = {
		.source = s->vm_name, .tenant = s->tenant, .mx = s->mx_name, .helo = s->helo,
		.mail_from = sender, .ref = ref, .reason = why,
		.verdict = code[0] == '4' ? "tempfail" : "reject",
	};

	mail_sender(line, len, arg, sender, sizeof(sender));
	new_reference(ref, sizeof(ref));
	s->refused++;
	sg_event_message(&e);
	tx_count_verdict(e.verdict, reason);
	sg_feedback_note(s->feedback, &s->vm_addr, fb, 0);
	local_reply(s, "%s smtpguard: message refused (%s); ref %s", code, why, ref);
	sg_info("session %s -> %s: message %s refused at MAIL FROM: %s", s->vm_name, s->mx_name,
		ref, why);
}

static enum check check_mail(struct session *s, const char *line, size_t len, size_t arg)
{
	char why[200];
	unsigned long long size = declared_size(line, len);

	/* a sender the response ladder holds (tempfail or refused): deferred
	 * with a reference; its MTA keeps the message */
	if (sg_ladder_check(s->feedback, &s->vm_addr, why, sizeof(why))) {
		signals_held(s);	/* still at it: it may climb */
		refuse_at_mail(s, line, len, arg, "451 4.7.1", SG_FB_TEMPFAILED, why, SG_PREASON_LADDER);
		return CMD_ANSWERED;
	}
	/* a sender over its message rate, or its tenant over the tenant's:
	 * deferred before its body goes to the MX (the charge itself is at
	 * the dot, sg_feedback_charge); an exempt tenant's VMs have neither */
	if (!(s->tenant_limits && s->tenant_limits->exempt) &&
	    (sg_tenancy_check_message(s->tenancy, s->tenant,
				      s->tenant_limits, why, sizeof(why)) ||
	     sg_feedback_check_message(s->feedback, &s->vm_addr, s->policy.rate_class, why,
				       sizeof(why)))) {
		refuse_at_mail(s, line, len, arg, "451 4.7.1", SG_FB_TEMPFAILED, why, SG_PREASON_RATE);
		return CMD_ANSWERED;
	}
	/* declared too large (RFC 1870): refused before its body is sent, as
	 * the MX itself would */
	if (size > s->cfg->smtp_message_size_limit) {
		snprintf(why, sizeof(why), "a declared size of %llu bytes is over the limit of "
			 "%llu", size, (unsigned long long)s->cfg->smtp_message_size_limit);
		refuse_at_mail(s, line, len, arg, "552 5.3.4", SG_FB_TOO_LARGE, why,
			       SG_PREASON_SIZE);
		return CMD_ANSWERED;
	}
	/* both transactions in use (one's dot awaits its reply): this MAIL
	 * waits for that reply */
	for (int i = 0; i < SG_MAX_TX; i++)
		if (s->tx[i].state == TX_FREE)
			return CMD_RELAY;
	return CMD_LATER;
}

static void sent_mail(struct session *s, const char *line, size_t len, size_t arg,
		      struct pending *p)
{
	struct sg_tx *tx = tx_new(s);	/* check_mail made sure of a free one */

	mail_sender(line, len, arg, tx->mail_from, sizeof(tx->mail_from));
	p->tx_id = tx->id;
	if (s->tx_cur) {
		/* one is open at the MX: whether this MAIL replaces it (a lax
		 * MX) or is refused (503) is the MX's to say, and the RCPTs
		 * after it count against whichever it is */
		relay_set_mode(s, RELAY_WAIT);
		return;
	}
	s->tx_cur = tx;
}

static enum check check_rcpt(struct session *s, const char *line, size_t len, size_t arg)
{
	/* tls_mx_verify = verify: while no trusted name authenticated the MX
	 * for the whole session, it must be valid for this recipient's domain,
	 * or the RCPT is answered 450 here and never reaches it (starttls.c) */
	if (tls_rcpt_refused(s, line, len, arg))
		return CMD_ANSWERED;
	if (!s->tx_cur || s->tx_cur->rcpts_sent < s->cfg->smtp_recipient_limit)
		return CMD_RELAY;
	local_reply(s, "452 4.5.3 smtpguard: too many recipients (the limit is %u)",
		    s->cfg->smtp_recipient_limit);
	return CMD_ANSWERED;
}

static void sent_rcpt(struct session *s, const char *line, size_t len, size_t arg,
		      struct pending *p)
{
	if (!s->tx_cur)
		return;	/* no transaction: the MX refuses it */
	p->tx_id = s->tx_cur->id;
	tx_rcpt_asked(s->tx_cur, line, len, arg, p);
}

static void sent_data(struct session *s, const char *line, size_t len, size_t arg,
		      struct pending *p)
{
	(void)line;
	(void)len;
	(void)arg;
	p->tx_id = s->tx_cur ? s->tx_cur->id : 0;
}

/* HELO, EHLO and RSET end the transaction at the MX (RFC 5321, 4.1.4). */
static void sent_reset(struct session *s, const char *line, size_t len, size_t arg,
		       struct pending *p)
{
	(void)p;
	if (p->verb != SMTP_RSET)
		command_arg(line, len, arg, NULL, s->helo, sizeof(s->helo));
	tx_end(s, s->tx_cur);
}

static enum check check_starttls(struct session *s, const char *line, size_t len, size_t arg)
{
	(void)line;
	(void)len;
	(void)arg;
	if (s->tls_phase == TLS_ON)
		local_reply(s, "503 5.5.1 smtpguard: TLS is already active");
	else if (s->tls_mode == SG_TLS_STRIP)
		local_reply(s, "454 4.7.0 smtpguard: TLS not available");
	else
		return CMD_RELAY;
	return CMD_ANSWERED;
}

/* "BDAT <size> [LAST]" (RFC 3030): the chunk's size and whether it is the
 * last; -1 when it is not that. */
static int bdat_args(const char *line, size_t len, size_t arg, uint64_t *size, int *last)
{
	size_t i = arg, digits = 0;

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	*size = 0;
	*last = 0;
	for (; i < len && line[i] >= '0' && line[i] <= '9'; i++, digits++) {
		if (*size > (UINT64_MAX - 9) / 10)
			return -1;
		*size = *size * 10 + (uint64_t)(line[i] - '0');
	}
	if (!digits)
		return -1;
	if (i == len)
		return 0;
	if (line[i] != ' ' || len - i - 1 != 4 || strncasecmp(line + i + 1, "LAST", 4) != 0)
		return -1;
	*last = 1;
	return 0;
}

/* The chunk's bytes are read and dropped: it was answered here. */
static void skip_chunk(struct session *s, uint64_t size)
{
	s->chunk_left = size;
	s->chunk_last = 0;
	s->chunk_discard = size > 0;
}

/* A chunk this large is a body's worth, not a command: a message sent in
 * many chunks must not meet smtp_command_limit, a flood of tiny ones must. */
#define SG_CHUNK_NOT_A_COMMAND 4096

/*
 * BDAT, offered when the MX offers CHUNKING. Each chunk goes to the MX as
 * it comes, read by the scanner on its way, and the MX answers each one.
 * The VM's last chunk goes too, but as a chunk like the others ("BDAT n"):
 * the MX commits nothing before a LAST, so the verdict waits for its reply
 * to that chunk, and only then is "BDAT 0 LAST" (accepted) or nothing (the
 * upstream aborted) sent. The VM gets the MX's reply to that BDAT 0 LAST,
 * exactly as it would get its reply to the final dot.
 */
static enum check check_bdat(struct session *s, const char *line, size_t len, size_t arg)
{
	struct sg_tx *tx = s->tx_cur;
	int first = !(tx && tx->state == TX_BODY && tx->chunked), last;
	uint64_t size;
	char cmd[40], why[120];
	struct pending *p;

	/* a body's first chunk waits for the replies owed before it: the MX's
	 * to EHLO says whether it takes chunks at all, to MAIL and RCPT the
	 * envelope the engines are told (as DATA's 354 does) */
	if (first && s->pend_count)
		return CMD_LATER;
	/* the chunk's end cannot be told from commands then: the session ends */
	if (!s->mx_chunking || bdat_args(line, len, arg, &size, &last) < 0) {
		local_reply(s, "%s", !s->mx_chunking ?
			    "421 4.5.0 smtpguard: BDAT is not offered (this MX has no CHUNKING; "
			    "use DATA); closing the connection" :
			    "421 4.5.4 smtpguard: malformed BDAT (BDAT <size> [LAST]); closing "
			    "the connection");
		s->close_after_flush = 1;
		return CMD_ANSWERED;
	}
	if (!first && s->scan.bytes + size > s->cfg->smtp_message_size_limit && s->pend_count)
		return CMD_LATER;	/* the refusal resets the upstream: its replies first */
	if (size >= SG_CHUNK_NOT_A_COMMAND)
		s->commands--;
	if (first && (!tx || tx->state != TX_OPEN || !tx->rcpts_ok)) {
		local_reply(s, "%s", !tx || tx->state != TX_OPEN ?
			    "503 5.5.1 smtpguard: BDAT without a transaction (MAIL FROM and RCPT TO "
			    "first)" : "554 5.5.1 smtpguard: no valid recipients");
		skip_chunk(s, size);
		return CMD_ANSWERED;
	}
	if (first) {
		tx->chunked = 1;
		body_begin(s, tx);
		s->scan.unstuffed = 1;
	}
	if (s->scan.bytes + size > s->cfg->smtp_message_size_limit) {
		snprintf(why, sizeof(why), "larger than the limit of %llu bytes",
			 (unsigned long long)s->cfg->smtp_message_size_limit);
		skip_chunk(s, size);
		refuse_message(s, "552 5.3.4", why, NULL, SG_PREASON_SIZE);
		return CMD_ANSWERED;
	}
	/* never longer than the VM's line: mx_out had room for that */
	snprintf(cmd, sizeof(cmd), "BDAT %llu\r\n", (unsigned long long)size);
	buf_append(&s->mx_out, cmd, strlen(cmd));
	p = expect_reply(s, SMTP_BDAT, 0);
	p->tx_id = tx->id;
	if (last) {
		p->chunk_held = 1;
		s->chunk_replies_held++;
	}
	s->chunk_left = size;
	s->chunk_last = last;
	s->chunk_ns = sg_now_ns();
	s->chunk_base = s->scan.bytes;
	relay_set_mode(s, RELAY_BODY);
	return CMD_ANSWERED;
}

/* BURL (RFC 4468) has the MX fetch the message from elsewhere: a body the
 * scanner would never see. It is not offered. */
static enum check check_burl(struct session *s, const char *line, size_t len, size_t arg)
{
	(void)line;
	(void)len;
	(void)arg;
	local_reply(s, "502 5.5.1 smtpguard: BURL is not offered (use DATA)");
	return CMD_ANSWERED;
}

static const struct command commands[] = {
	{ SMTP_HELO, NULL, sent_reset, 0 },
	{ SMTP_EHLO, NULL, sent_reset, 0 },
	{ SMTP_MAIL, check_mail, sent_mail, 0 },
	{ SMTP_RCPT, check_rcpt, sent_rcpt, 0 },
	{ SMTP_DATA, NULL, sent_data, 1 },
	{ SMTP_BDAT, check_bdat, NULL, 0 },
	{ SMTP_BURL, check_burl, NULL, 0 },
	{ SMTP_RSET, NULL, sent_reset, 0 },
	{ SMTP_STARTTLS, check_starttls, NULL, 1 },
	{ SMTP_AUTH, NULL, NULL, 1 },
	/* an unknown command: nothing goes out past one the MX may take for
	 * more than the relay knows (relay_replies.c's 3xx check) */
	{ SMTP_UNKNOWN, NULL, NULL, 1 },
};

static const struct command *command_of(enum smtp_verb verb)
{
	static const struct command plain = { SMTP_NOOP, NULL, NULL, 0 };

	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].verb == verb)
			return &commands[i];
	return &plain;	/* NOOP, QUIT, VRFY, EXPN, HELP */
}

/* After a refused message the upstream is gone: the relay answers. */
static void refused_command(struct session *s, enum smtp_verb verb)
{
	switch (verb) {
	case SMTP_QUIT:
		local_reply(s, "221 2.0.0 Bye");
		s->close_after_flush = 1;
		break;
	case SMTP_NOOP:
		local_reply(s, "250 2.0.0 Ok");
		break;
	default:
		/* RSET too: a 250 would invite an MTA that caches connections
		 * to keep this one for its next message, which could only be
		 * refused (the MX's side is gone); a failed RSET makes it open a
		 * new connection instead */
		local_reply(s, "421 4.7.0 smtpguard: this session ended with a refused message; "
			    "reconnect to send others");
		s->close_after_flush = 1;
	}
}

/* The session ends with reply (no CRLF), after what the VM is owed. */
static void end_with(struct session *s, const char *end, const char *reply)
{
	local_reply(s, "%s", reply);
	s->close_after_flush = 1;
	if (end)
		s->end = end;
}

/*
 * Checks every line must pass, whatever it is; nonzero: it was answered
 * (or the session ends). During an AUTH exchange the MX waits for the
 * line: answered here, the VM's next line would go to it as the answer,
 * so a bad one ends the session.
 */
static int bad_line(struct session *s, enum smtp_line_result res, size_t len)
{
	char reply[200];
	int clean = res == SMTP_LINE_OK && smtp_line_clean(s->vm_in.data, len);

	if (res == SMTP_LINE_TOO_LONG)
		snprintf(reply, sizeof(reply), "500 5.5.2 smtpguard: line too long (the limit is "
			 "%u bytes)", s->cfg->smtp_line_limit);
	else if (!clean)
		snprintf(reply, sizeof(reply), "501 5.5.2 smtpguard: a CR or NUL inside a command "
			 "line");
	if (s->mode == RELAY_AUTH_LINE && (res == SMTP_LINE_TOO_LONG || !clean)) {
		end_with(s, NULL, "421 4.7.0 smtpguard: malformed authentication line; closing "
			 "the connection");
		return 1;
	}
	/* a command, as far as the limit on them goes, refused or not */
	if (++s->commands > s->cfg->smtp_command_limit) {
		snprintf(reply, sizeof(reply), "421 4.7.0 smtpguard: too many commands in one "
			 "session (%u)", s->cfg->smtp_command_limit);
		end_with(s, "command_limit", reply);
		return 1;
	}
	if (res == SMTP_LINE_TOO_LONG) {
		local_reply(s, "%s", reply);
		s->discard_line = 1;
		return 1;
	}
	if (!clean) {
		sg_info("session %s -> %s: a command with a stray CR or NUL refused", s->vm_name,
			s->mx_name);
		buf_consume(&s->vm_in, len);
		local_reply(s, "%s", reply);
		return 1;
	}
	return 0;
}

/* The VM's commands, relayed as it batched them. */
void process_vm(struct session *s)
{
	while (!s->close_after_flush) {
		const struct command *cmd;
		struct pending *p;
		enum smtp_line_result res;
		enum smtp_verb verb;
		size_t len = 0, arg;

		if (s->mode == RELAY_TUNNEL || (s->tls_phase != TLS_NONE && s->tls_phase != TLS_ON))
			return;
		if (s->chunk_discard) {
			size_t n = s->vm_in.len < s->chunk_left ? s->vm_in.len : (size_t)s->chunk_left;

			buf_consume(&s->vm_in, n);
			s->chunk_left -= n;
			if (s->chunk_left)
				return;
			s->chunk_discard = 0;
			continue;
		}
		if (s->mode == RELAY_BODY || s->mode == RELAY_VERDICT) {
			process_body(s);
			if (s->mode == RELAY_BODY || s->mode == RELAY_VERDICT)
				return;
			continue;
		}
		if (s->mode == RELAY_WAIT || !s->vm_in.len || s->pend_count >= SG_MAX_PENDING - 1)
			return;
		if (s->discard_line) {
			char *lf = memchr(s->vm_in.data, '\n', s->vm_in.len);

			buf_consume(&s->vm_in, lf ? (size_t)(lf - s->vm_in.data) + 1 : s->vm_in.len);
			s->discard_line = !lf;
			continue;
		}
		res = smtp_next_line(s->vm_in.data, s->vm_in.len, s->cfg->smtp_line_limit, &len);
		if (res == SMTP_LINE_NONE)
			return;
		if (!s->mx_gone && res == SMTP_LINE_OK && buf_space(&s->mx_out) < len)
			return;
		if (bad_line(s, res, len))
			continue;
		if (s->mode == RELAY_AUTH_LINE) {
			buf_append(&s->mx_out, s->vm_in.data, len);
			buf_consume(&s->vm_in, len);
			expect_reply(s, SMTP_AUTH, 0);
			relay_set_mode(s, RELAY_WAIT);
			continue;
		}
		verb = smtp_verb_of(s->vm_in.data, len, &arg);
		if (s->mode == RELAY_REFUSED) {
			buf_consume(&s->vm_in, len);
			refused_command(s, verb);
			continue;
		}
		cmd = command_of(verb);
		switch (cmd->check ? cmd->check(s, s->vm_in.data, len, arg) : CMD_RELAY) {
		case CMD_LATER:
			s->commands--;	/* counted again when it is taken */
			return;
		case CMD_ANSWERED:
			buf_consume(&s->vm_in, len);
			continue;
		case CMD_RELAY:
			break;
		}
		buf_append(&s->mx_out, s->vm_in.data, len);
		p = expect_reply(s, verb, 0);
		if (cmd->sent)
			cmd->sent(s, s->vm_in.data, len, arg, p);
		buf_consume(&s->vm_in, len);
		if (cmd->sync)
			relay_set_mode(s, RELAY_WAIT);
	}
}
