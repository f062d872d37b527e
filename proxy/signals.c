/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * signals.c - what the relay sees of each sender, told to the behaviour
 * store (scan/behaviour.h), and what the store makes of it told to the
 * response ladder (ladder.c): each message (its recipients, their
 * domains, its MAIL FROM domain, its body's fingerprint), each MX reply
 * to MAIL, RCPT, DATA and the dot (unknown users, policy refusals: what
 * only a transparent proxy sees as it happens), each session passed
 * through in TLS (its MX, the name in its greeting, bytes, duration:
 * nothing of its content). The sender is the kernel's sender key; inside
 * it, the sub-identities the mail names (from:DOMAIN, script:NAME,
 * user:NAME) are noted too, so one noisy script or domain shows, and an
 * allowed one (ladder_allow) counts for nothing.
 */
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "allow.h"
#include "behaviour.h"
#include "ladder.h"
#include "parse.h"
#include "signals.h"
#include "worker.h"

/* Who a message is from: the sender key, and the sub-identities the
 * message names, each "kind:value" under it. */
struct who {
	struct sg_src_key key;
	struct sg_behaviour_id sender;
	char subs[3][140];
	struct sg_behaviour_id sub_ids[3];
	int n_subs;
	int allowed;		/* the sender, or the sub-identity that wrote it, is allowed */
};

static void add_sub(struct session *s, struct who *w, char kind, const char *prefix,
		    const char *value)
{
	struct sg_behaviour_id *id;

	if (!value || !value[0] || w->n_subs == 3)
		return;
	if (sg_allow_sub(s->generation->allow, kind, value))
		w->allowed = 1;
	snprintf(w->subs[w->n_subs], sizeof(w->subs[0]), "%s%s", prefix, value);
	if (kind == 'f')	/* a domain is one whatever its case */
		for (char *c = w->subs[w->n_subs]; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	id = &w->sub_ids[w->n_subs];
	id->key = w->subs[w->n_subs];
	id->key_len = strlen(w->subs[w->n_subs]);
	id->parent = &w->key;
	id->parent_len = sizeof(w->key);
	w->n_subs++;
}

static const char *domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at && at[1] ? at + 1 : NULL;
}

static void who_is(struct session *s, const char *mail_from, const struct sg_scan *scan,
		   struct who *w)
{
	uint32_t max_sessions;

	memset(w, 0, sizeof(*w));
	sg_feedback_sender(s->feedback, &s->vm_addr, s->policy.rate_class, &w->key, &max_sessions);
	w->sender.key = &w->key;
	w->sender.key_len = sizeof(w->key);
	w->allowed = sg_allow_sender(s->generation->allow, &s->vm_addr);
	add_sub(s, w, 'f', "from:", domain_of(mail_from));
	if (scan) {
		add_sub(s, w, 's', "script:", scan->sub_script);
		add_sub(s, w, 'u', "user:", scan->sub_user);
	}
}

/* The store's judgment of the sender and of the sub-identities noted,
 * the worst of them (at least flagged when the scan flagged the message:
 * a content flag rule, a milter's quarantine), told to the ladder. */
static void judge(struct session *s, struct who *w, uint64_t now, const struct sg_scan *flagged)
{
	const struct sg_behaviour_thresholds *t = &s->generation->thresholds;
	struct sg_behaviour_report r;
	char reasons[SG_LADDER_REASON_LEN] = "";
	int level = 0, forget = 0;
	size_t used = 0;

	for (int i = -1; i < w->n_subs; i++) {
		const struct sg_behaviour_id *id = i < 0 ? &w->sender : &w->sub_ids[i];

		if (sg_behaviour_assess(s->behaviour, id, now, t, &r) || r.level < level ||
		    !r.level)
			continue;
		if (r.level > level)
			used = 0;	/* the worse one's reasons first */
		level = r.level;
		for (int f = 0; f < r.n_findings && used + 3 < sizeof(reasons); f++)
			used += (size_t)snprintf(reasons + used, sizeof(reasons) - used, "%s%s%s%s",
						 used ? "; " : "", i < 0 ? "" : w->subs[i],
						 i < 0 ? "" : ": ", r.findings[f].reason);
	}
	if (flagged && level < 1) {
		level = 1;
		snprintf(reasons, sizeof(reasons), "a message flagged (%.120s)", flagged->notes);
	}
	if (w->allowed)
		return;	/* counted, never moved */
	sg_ladder_note(s->feedback, &s->vm_addr, level, reasons, now, &forget);
	if (forget) {
		/* released by the operator: what it did before counts no more */
		sg_behaviour_release(s->behaviour, &w->sender);
	}
}

int signals_allowed(struct session *s, const struct sg_tx *tx)
{
	struct who w;

	if (!s->generation->allow)
		return 0;
	who_is(s, tx ? tx->mail_from : NULL, &s->scan, &w);
	return w.allowed;
}

void signals_message(struct session *s, const struct sg_tx *tx, const struct sg_scan *scan)
{
	const char *domains[64];
	char list[sizeof(tx->rcpt_domains)];
	size_t n = 0;
	struct sg_behaviour_message m = { 0 };
	uint64_t now = sg_now_ns();
	struct who w;
	char *save = NULL;

	if (!s->behaviour)
		return;
	who_is(s, tx->mail_from, scan, &w);
	/* the accepted recipients' distinct domains (the store counts them
	 * across messages) */
	snprintf(list, sizeof(list), "%s", tx->rcpt_domains);
	for (char *d = strtok_r(list, ",", &save); d && n < 64; d = strtok_r(NULL, ",", &save))
		domains[n++] = d;
	m.rcpts = tx->rcpts_ok;
	m.rcpt_domains = domains;
	m.n_rcpt_domains = n;
	m.mail_from_domain = domain_of(tx->mail_from);
	m.fingerprint = scan && scan->has_fingerprint ? &scan->fingerprint : NULL;
	if (w.allowed && w.n_subs && !sg_allow_sender(s->generation->allow, &s->vm_addr)) {
		/* an allowed sub-identity's mail counts for nothing */
		return;
	}
	sg_behaviour_note_message(s->behaviour, &w.sender, now, &m);
	for (int i = 0; i < w.n_subs; i++)
		sg_behaviour_note_message(s->behaviour, &w.sub_ids[i], now, &m);
	judge(s, &w, now, scan && scan->flagged ? scan : NULL);
}

void signals_reply(struct session *s, enum smtp_verb verb, int data_end, const char *mail_from,
		   int code, const char *reply)
{
	enum sg_reply_stage stage = verb == SMTP_MAIL ? SG_REPLY_MAIL :
				    verb == SMTP_RCPT ? SG_REPLY_RCPT : SG_REPLY_DATA;
	uint64_t now = sg_now_ns();
	char text[256];
	struct who w;

	if (!s->behaviour || (verb != SMTP_MAIL && verb != SMTP_RCPT && verb != SMTP_DATA &&
			      !data_end))
		return;
	/* only what says something: every RCPT reply (the unknown ratio's
	 * base), and the refusals of the others */
	if (stage != SG_REPLY_RCPT && code < 500)
		return;
	snprintf(text, sizeof(text), "%.*s", (int)strcspn(reply, "\r\n"), reply);
	who_is(s, mail_from, NULL, &w);
	sg_behaviour_note_reply(s->behaviour, &w.sender, now, stage, code, NULL,
				strlen(text) > 4 ? text + 4 : "");
	for (int i = 0; i < w.n_subs; i++)
		sg_behaviour_note_reply(s->behaviour, &w.sub_ids[i], now, stage, code, NULL,
					strlen(text) > 4 ? text + 4 : "");
	if (code >= 500)
		judge(s, &w, now, NULL);	/* a refusal can tip it; acceptances cannot */
}

void signals_tls_session(struct session *s, uint64_t bytes, uint64_t duration_ns)
{
	struct sg_behaviour_tls t = { 0 };
	uint64_t now = sg_now_ns();
	struct who w;

	if (!s->behaviour)
		return;
	if (s->mx_addr.ss_family == AF_INET) {
		t.mx_addr = &((const struct sockaddr_in *)&s->mx_addr)->sin_addr;
		t.mx_addr_len = 4;
	} else {
		t.mx_addr = &((const struct sockaddr_in6 *)&s->mx_addr)->sin6_addr;
		t.mx_addr_len = 16;
	}
	t.greeting = s->mx_host[0] ? s->mx_host : NULL;
	t.bytes = bytes;
	t.duration_ns = duration_ns;
	who_is(s, NULL, NULL, &w);
	sg_behaviour_note_tls_session(s->behaviour, &w.sender, now, &t);
	judge(s, &w, now, NULL);
}

void signals_held(struct session *s)
{
	struct who w;

	if (!s->behaviour)
		return;
	who_is(s, NULL, NULL, &w);
	judge(s, &w, sg_now_ns(), NULL);
}
