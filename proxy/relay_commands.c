/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay_commands.c - the VM's commands, relayed as it batched them
 * (PIPELINING), read as Postfix reads them; the limits (line length,
 * commands, recipients, declared size, the sender's message rate) are
 * answered here, and the envelope is noted for the events and engines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "events.h"
#include "log.h"
#include "relay.h"

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
 * A sender over its message rate is deferred at MAIL FROM, before its body
 * goes to the MX (which would otherwise see it cut off at every message);
 * the MAIL is not relayed, so the MX starts no transaction. Not while the
 * MX has yet to answer a dot: that message's event is still to be written.
 * The charge itself stays at the dot (sg_feedback_charge).
 */
static int over_message_rate(struct session *s)
{
	char reason[200];

	if (s->mx_gone || relay_awaiting_dot_reply(s) ||
	    !sg_feedback_check_message(s->feedback, &s->vm_addr, s->policy.rate_class, reason,
				       sizeof(reason)))
		return 0;
	new_reference(s);
	sg_scan_begin(&s->scan, NULL, NULL, NULL);	/* no body: nothing for the engines */
	memcpy(s->msg_mail_from, s->mail_from, sizeof(s->msg_mail_from));
	s->msg_rcpt_domains[0] = '\0';
	s->msg_rcpts = 0;
	s->refused++;
	sg_event_message(s, "tempfail", reason, NULL);
	sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_TEMPFAILED, 0);
	local_reply(s, "451 4.7.1 smtpguard: message refused (%s); ref %s", reason, s->ref);
	sg_info("session %s -> %s: message %s deferred at MAIL FROM: %s", s->vm_name, s->mx_name,
		s->ref, reason);
	return 1;
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

/* The argument of a command line from skip (past a keyword such as
 * "FROM:", when it is there, and the blanks after it), without its CRLF,
 * into out. */
static void command_arg(const char *line, size_t len, size_t skip, const char *keyword,
			char *out, size_t outlen)
{
	size_t end = len, k = keyword ? strlen(keyword) : 0;

	while (end > skip && (line[end - 1] == '\n' || line[end - 1] == '\r'))
		end--;
	if (k && end - skip >= k && strncasecmp(line + skip, keyword, k) == 0)
		skip += k;
	while (skip < end && (line[skip] == ' ' || line[skip] == '\t'))
		skip++;
	snprintf(out, outlen, "%.*s", (int)(end - skip), line + skip);
}

/* Is domain already in the comma-separated list (whole names, any case)? */
static int domain_listed(const char *list, const char *domain)
{
	size_t n = strlen(domain);

	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && strncasecmp(p, domain, n) == 0)
			return 1;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

/* What the events say of the envelope: HELO name, sender, recipient domains. */
static void note_envelope(struct session *s, enum smtp_verb verb, const char *line, size_t len,
			  size_t arg_off)
{
	char arg[512], *at, *end;

	switch (verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
		command_arg(line, len, arg_off, NULL, s->helo, sizeof(s->helo));
		break;
	case SMTP_MAIL:
		s->rcpts = 0;
		s->rcpts_ok = 0;
		s->rcpt_domains[0] = '\0';
		command_arg(line, len, arg_off, "FROM:", arg, sizeof(arg));
		end = strchr(arg, '>');
		if (arg[0] == '<' && end)
			*end = '\0';
		snprintf(s->mail_from, sizeof(s->mail_from), "%s", arg[0] == '<' ? arg + 1 : arg);
		break;
	case SMTP_RCPT:
		command_arg(line, len, arg_off, "TO:", arg, sizeof(arg));
		at = strrchr(arg, '@');
		if (!at)
			break;
		end = strpbrk(at, "> \t");
		if (end)
			*end = '\0';
		if (!domain_listed(s->rcpt_domains, at + 1) &&
		    strlen(s->rcpt_domains) + strlen(at + 1) + 2 < sizeof(s->rcpt_domains)) {
			if (s->rcpt_domains[0])
				strcat(s->rcpt_domains, ",");
			strcat(s->rcpt_domains, at + 1);
		}
		break;
	default:
		break;
	}
}

/* The VM's commands, relayed as it batched them. */
void process_vm(struct session *s)
{
	while (!s->close_after_flush) {
		enum smtp_line_result res;
		enum smtp_verb verb;
		size_t len, arg_off;

		if (s->mode == RELAY_TUNNEL || (s->tls_phase != TLS_NONE && s->tls_phase != TLS_ON))
			return;
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
		if (res == SMTP_LINE_TOO_LONG) {
			if (s->mode == RELAY_AUTH_LINE) {
				/* the MX waits for this SASL line: answered here, the
				 * VM's next line would go to it as the answer */
				local_reply(s, "421 4.7.0 smtpguard: authentication line too long "
					    "(the limit is %u bytes)", s->cfg->smtp_line_limit);
				s->close_after_flush = 1;
				return;
			}
			/* a command, as far as the limit on them goes */
			if (++s->commands > s->cfg->smtp_command_limit) {
				local_reply(s, "421 4.7.0 smtpguard: too many commands in one "
					    "session (%u)", s->cfg->smtp_command_limit);
				s->close_after_flush = 1;
				s->end = "command_limit";
				return;
			}
			local_reply(s, "500 5.5.2 smtpguard: line too long (the limit is %u bytes)",
				    s->cfg->smtp_line_limit);
			s->discard_line = 1;
			continue;
		}
		if (!s->mx_gone && buf_space(&s->mx_out) < len)
			return;
		if (++s->commands > s->cfg->smtp_command_limit) {
			local_reply(s, "421 4.7.0 smtpguard: too many commands in one session (%u)",
				    s->cfg->smtp_command_limit);
			s->close_after_flush = 1;
			s->end = "command_limit";
			return;
		}
		if (s->mode == RELAY_AUTH_LINE) {
			buf_append(&s->mx_out, s->vm_in.data, len);
			buf_consume(&s->vm_in, len);
			expect_reply(s, SMTP_AUTH, 0);
			s->mode = RELAY_WAIT;
			continue;
		}
		verb = smtp_verb_of(s->vm_in.data, len, &arg_off);
		if (s->mode == RELAY_REFUSED) {
			buf_consume(&s->vm_in, len);
			refused_command(s, verb);
			continue;
		}
		note_envelope(s, verb, s->vm_in.data, len, arg_off);
		if (verb == SMTP_MAIL && over_message_rate(s)) {
			buf_consume(&s->vm_in, len);
			continue;
		}
		if (verb == SMTP_MAIL && declared_size(s->vm_in.data, len) >
					     s->cfg->smtp_message_size_limit) {
			/* declared too large (RFC 1870): refused before its body
			 * is sent, as the MX itself would */
			buf_consume(&s->vm_in, len);
			local_reply(s, "552 5.3.4 smtpguard: message size exceeds the limit of %llu "
				    "bytes", (unsigned long long)s->cfg->smtp_message_size_limit);
			continue;
		}
		if (verb == SMTP_RCPT && ++s->rcpts > s->cfg->smtp_recipient_limit) {
			buf_consume(&s->vm_in, len);
			local_reply(s, "452 4.5.3 smtpguard: too many recipients (the limit is %u)",
				    s->cfg->smtp_recipient_limit);
			continue;
		}
		if (verb == SMTP_STARTTLS && (s->tls_mode == SG_TLS_STRIP || s->tls_phase == TLS_ON)) {
			buf_consume(&s->vm_in, len);
			local_reply(s, s->tls_phase == TLS_ON ? "503 5.5.1 smtpguard: TLS is already "
				    "active" : "454 4.7.0 smtpguard: TLS not available");
			continue;
		}
		if (verb == SMTP_BDAT) {
			/* CHUNKING is not offered; a chunk's bytes cannot be told
			 * from commands, so the session ends */
			buf_consume(&s->vm_in, len);
			local_reply(s, "421 4.5.0 smtpguard: BDAT is not offered (use DATA); closing "
				    "the connection");
			s->close_after_flush = 1;
			return;
		}
		buf_append(&s->mx_out, s->vm_in.data, len);
		buf_consume(&s->vm_in, len);
		expect_reply(s, verb, 0);
		/* sync points: what follows depends on their reply; an unknown
		 * command too, so that nothing is sent past one the MX takes
		 * for more than the relay knows (after_reply's 3xx check) */
		if (verb == SMTP_DATA || verb == SMTP_STARTTLS || verb == SMTP_AUTH ||
		    verb == SMTP_UNKNOWN)
			s->mode = RELAY_WAIT;
	}
}
