/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * replies.c - the replies a VM is owed, in the order of its commands: the
 * MX's answer to each command the relay sent (PIPELINING: many at a time),
 * and the relay's own replies, each given in its turn.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "relay.h"

static struct pending *pending_push(struct session *s)
{
	struct pending *p = &s->pending[(s->pend_head + s->pend_count) % SG_MAX_PENDING];

	memset(p, 0, sizeof(*p));
	s->pend_count++;
	return p;
}

struct pending *expect_reply(struct session *s, enum smtp_verb verb, int data_end)
{
	struct pending *p = pending_push(s);

	p->verb = verb;
	p->data_end = data_end;
	return p;
}

/* A reply of the relay's own, given to the VM in its turn. */
void local_reply(struct session *s, const char *fmt, ...)
{
	struct pending *p = pending_push(s);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p->local, sizeof(p->local) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > sizeof(p->local) - 3)
		n = (int)sizeof(p->local) - 3;
	memcpy(p->local + n, "\r\n", 3);
	p->has_local = 1;
}

struct pending *pending_head(struct session *s)
{
	return s->pend_count ? &s->pending[s->pend_head] : NULL;
}

void pending_pop(struct session *s)
{
	s->pend_head = (s->pend_head + 1) % SG_MAX_PENDING;
	s->pend_count--;
}

/* Local replies at the head of the queue go out as soon as it is their turn. */
void emit_local_replies(struct session *s)
{
	struct pending *p;

	while ((p = pending_head(s)) && p->has_local && buf_space(&s->vm_out) >= strlen(p->local)) {
		buf_append(&s->vm_out, p->local, strlen(p->local));
		pending_pop(s);
	}
}

int relay_awaiting_dot_reply(const struct session *s)
{
	return relay_dot_sent_ns(s) != 0;
}

uint64_t relay_dot_sent_ns(const struct session *s)
{
	uint64_t first = 0;

	for (int i = 0; i < SG_MAX_TX; i++)
		if (s->tx[i].state == TX_DOT && (!first || s->tx[i].dot_ns < first))
			first = s->tx[i].dot_ns;
	return first;
}

/* Every reply the VM is owed went out, or can no longer come (the MX is
 * gone and only its replies remain). */
int nothing_owed(struct session *s)
{
	struct pending *p = pending_head(s);

	return !p || (s->mx_gone && !p->has_local);
}
