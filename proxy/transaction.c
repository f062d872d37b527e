/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * transaction.c - a session's mail transactions (struct sg_tx, session.h),
 * followed by the MX's replies: a MAIL opens one only when the MX accepts
 * it, its RCPTs count against the recipient limit from then on, and a
 * recipient's domain is its only once the MX accepted it. A MAIL the MX
 * refused, or one smtpguard answered itself, changes nothing of the one
 * already open. Every transaction whose dot reached the MX gets its
 * message event, with the MX's reply or "unknown".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "events.h"
#include "pmetrics.h"
#include "relay.h"

struct sg_tx *tx_new(struct session *s)
{
	for (int i = 0; i < SG_MAX_TX; i++) {
		struct sg_tx *tx = &s->tx[i];

		if (tx->state != TX_FREE)
			continue;
		memset(tx, 0, sizeof(*tx));
		tx->state = TX_OPENING;
		tx->id = ++s->tx_ids;
		return tx;
	}
	return NULL;
}

struct sg_tx *tx_find(struct session *s, uint32_t id)
{
	for (int i = 0; id && i < SG_MAX_TX; i++)
		if (s->tx[i].state != TX_FREE && s->tx[i].id == id)
			return &s->tx[i];
	return NULL;
}

/* smtpguard judged nothing: the MX, the VM or the connection ended it */
static void tx_not_sent(struct session *s, struct sg_tx *tx)
{
	char why[160];

	if (tx->state == TX_BODY)
		snprintf(why, sizeof(why), "its body did not reach its end%s%s",
			 s->end ? ": the session ended, " : "", s->end ? s->end : "");
	else
		snprintf(why, sizeof(why), "%s", !tx->rcpts_ok ?
			 "the MX accepted none of its recipients" : "it ended before its body");
	tx_event(s, tx, "not_sent", why, NULL, tx->mx_refusal);
}

void tx_end(struct session *s, struct sg_tx *tx)
{
	if (!tx)
		return;
	if (!tx->evented && (tx->state == TX_OPEN || tx->state == TX_BODY))
		tx_not_sent(s, tx);
	if (s->tx_cur == tx)
		s->tx_cur = NULL;
	/* a chunked body between its chunks (an RSET, the MX's refusal of a
	 * chunk): its engines let go of it */
	if (tx->state == TX_BODY && tx->chunked)
		sg_scan_end(&s->scan);
	tx->state = TX_FREE;
}

/* The argument of a command line from skip (past a keyword such as
 * "FROM:", when it is there, and the blanks after it), without its CRLF,
 * into out. */
void command_arg(const char *line, size_t len, size_t skip, const char *keyword, char *out,
		 size_t outlen)
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

void mail_sender(const char *line, size_t len, size_t arg_off, char *out, size_t outlen)
{
	char arg[512], *end;

	command_arg(line, len, arg_off, "FROM:", arg, sizeof(arg));
	end = strchr(arg, '>');
	if (arg[0] == '<' && end)
		*end = '\0';
	snprintf(out, outlen, "%s", arg[0] == '<' ? arg + 1 : arg);
}

/* Where domain is in the comma-separated list (whole names, any case), or
 * -1. */
static int domain_at(const char *list, const char *domain, size_t n)
{
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && strncasecmp(p, domain, n) == 0)
			return (int)(p - list);
		if (!comma)
			break;
		p = comma + 1;
	}
	return -1;
}

/* Adds domain to the list unless it is there; its offset, or -1 when the
 * list is full. */
static int domain_add(char *list, size_t size, const char *domain, size_t n)
{
	int at = domain_at(list, domain, n);
	size_t used = strlen(list);

	if (at >= 0)
		return at;
	if (!n || used + n + 2 > size)
		return -1;
	if (used)
		list[used++] = ',';
	memcpy(list + used, domain, n);
	list[used + n] = '\0';
	return (int)used;
}

/* Adds a line to a list of lines (addresses); its offset, or -1 when it
 * does not fit. */
static int line_add(char *list, size_t size, const char *item, size_t n)
{
	size_t used = strlen(list);

	if (!n || used + n + 2 > size)
		return -1;
	if (used)
		list[used++] = '\n';
	memcpy(list + used, item, n);
	list[used + n] = '\0';
	return (int)used;
}

void tx_rcpt_asked(struct sg_tx *tx, const char *line, size_t len, size_t arg_off,
		   struct pending *p)
{
	char arg[512], *addr, *at, *end;
	int off;

	tx->rcpts_sent++;
	command_arg(line, len, arg_off, "TO:", arg, sizeof(arg));
	addr = arg + (arg[0] == '<');
	end = strpbrk(addr, "> \t");
	if (end)
		*end = '\0';
	at = strrchr(addr, '@');
	if (!at)
		return;
	off = line_add(tx->rcpt_asked_addrs, sizeof(tx->rcpt_asked_addrs), addr, strlen(addr));
	if (off >= 0) {
		p->addr_off = (uint16_t)off;
		p->addr_len = (uint16_t)strlen(addr);
	}
	off = domain_add(tx->rcpt_asked, sizeof(tx->rcpt_asked), at + 1, strlen(at + 1));
	if (off < 0 || strlen(at + 1) > UINT8_MAX)
		return;
	p->domain_off = (uint16_t)off;
	p->domain_len = (uint8_t)strlen(at + 1);
}

void tx_rcpt_accepted(struct sg_tx *tx, const struct pending *p)
{
	tx->rcpts_ok++;
	if (p->domain_len)
		domain_add(tx->rcpt_domains, sizeof(tx->rcpt_domains),
			   tx->rcpt_asked + p->domain_off, p->domain_len);
	if (p->addr_len)
		line_add(tx->rcpt_addrs, sizeof(tx->rcpt_addrs),
			 tx->rcpt_asked_addrs + p->addr_off, p->addr_len);
}

void tx_count_verdict(const char *verdict, int reason_class)
{
	sg_pmetric_verdict(verdict[0] == 'a' ? SG_PVERDICT_ACCEPT : verdict[0] == 'r' ?
			   SG_PVERDICT_REJECT : SG_PVERDICT_TEMPFAIL, (enum sg_preason)reason_class);
}

/* by is "milter SPEC" for a milter's, the engine's name for another's,
 * and empty when no engine gave it (one failed: the failure action). */
int verdict_reason_class(const struct sg_verdict *v)
{
	if (!v->by[0])
		return SG_PREASON_ENGINE_FAILURE;
	if (strncmp(v->by, "milter", 6) == 0)
		return strstr(v->reason, "a milter failed") ? SG_PREASON_ENGINE_FAILURE :
		       SG_PREASON_MILTER;
	return SG_PREASON_CONTENT;
}

void tx_event(struct session *s, struct sg_tx *tx, const char *verdict,
	      const char *reason, const char *by, const char *mx_reply)
{
	struct sg_message_event e = {
		.source = s->vm_name,
		.tenant = s->tenant,
		.mx = s->mx_name,
		.helo = s->helo,
		.mail_from = tx->mail_from,
		.rcpt_domains = tx->rcpt_domains,
		.rcpts = tx->rcpts_ok,
		.message_id = tx->message_id,
		.size = tx->size,
		.ref = tx->ref,
		.verdict = verdict,
		.reason = reason,
		.mx_reply = mx_reply,
		.notes = tx->notes,
		.by = by,
		.body_fp = tx->body_fp,
	};

	sg_event_message(&e);
	tx->evented = 1;
}

void tx_unanswered(struct session *s)
{
	for (int i = 0; i < SG_MAX_TX; i++) {
		struct sg_tx *tx = &s->tx[i];

		if (tx->state != TX_DOT)
			continue;
		s->messages++;
		tx_event(s, tx, "accept", tx->reason[0] ? tx->reason : "clean", NULL, "unknown");
		tx_count_verdict("accept", strncmp(tx->reason, "accepted:", 9) == 0 ?
				 SG_PREASON_ENGINE_FAILURE : SG_PREASON_CLEAN);
		tx_end(s, tx);
	}
	/* the others end with the session: unsent */
	for (int i = 0; i < SG_MAX_TX; i++)
		if (s->tx[i].state != TX_FREE)
			tx_end(s, &s->tx[i]);
}
