/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* feedback.c - per-sender feedback from the proxy to the kernel (see feedback.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "feedback_internal.h"
#include "log.h"
#include "parse.h"

struct sg_feedback *sg_feedback_new(const struct sg_maps *maps, const struct sg_config *cfg)
{
	struct sg_feedback *fb = calloc(1, sizeof(*fb));

	if (!fb)
		return NULL;
	fb->maps = maps;
	pthread_mutex_init(&fb->lock, NULL);
	sg_feedback_configure(fb, cfg);
	return fb;
}

void sg_feedback_configure(struct sg_feedback *fb, const struct sg_config *cfg)
{
	pthread_mutex_lock(&fb->lock);
	fb->escalation_rejects = cfg->escalation_rejects;
	fb->escalation_window_ns = cfg->escalation_window_ns;
	fb->suspect_duration_ns = cfg->suspect_duration_ns;
	fb->penalties = cfg->ladder_penalties;
	fb->dwell_ns = cfg->ladder_dwell_ns;
	fb->tempfail_ns = cfg->ladder_tempfail_ns;
	fb->forget_ns = cfg->ladder_forget_ns;
	pthread_mutex_unlock(&fb->lock);
}

void sg_feedback_set_tenancy(struct sg_feedback *fb, struct sg_tenancy *t)
{
	if (fb)
		fb->tenancy = t;
}

void sg_feedback_free(struct sg_feedback *fb)
{
	if (!fb)
		return;
	pthread_mutex_destroy(&fb->lock);
	free(fb);
}

void sg_feedback_port(struct sg_feedback *fb, struct sockaddr_storage *vm,
		      const struct sockaddr_storage *mx)
{
	struct sockaddr_in6 *v = (struct sockaddr_in6 *)vm;
	const struct sockaddr_in6 *m = (const struct sockaddr_in6 *)mx;
	struct sg_flow_key flow;
	struct sg_src_key sender;

	if (!fb || vm->ss_family != AF_INET6 || mx->ss_family != AF_INET6)
		return;
	memset(&flow, 0, sizeof(flow));
	memcpy(flow.saddr, &v->sin6_addr, 16);
	memcpy(flow.daddr, &m->sin6_addr, 16);
	flow.sport = v->sin6_port;
	flow.dport = m->sin6_port;
	if (bpf_map_lookup_elem(fb->maps->flow_sender, &flow, &sender))
		return;
	bpf_map_delete_elem(fb->maps->flow_sender, &flow);	/* read once: it is ours now */
	v->sin6_scope_id = sender.ifindex;
}

/* The sender's key as the classifier makes it: IPv4-mapped, or the IPv6
 * address cut by the settings' sender mask (the kernel's, so that a reload
 * that changed ipv6_source_prefix keeps both sides on the same key; a /64
 * without feedback, as in the relay's tests), and by the bridge port it
 * came in on (sg_feedback_port). */
void feedback_sender_key(const struct sg_feedback *fb, const struct sockaddr_storage *vm,
		       struct sg_src_key *key)
{
	memset(key, 0, sizeof(*key));
	if (vm->ss_family == AF_INET6) {
		struct sg_settings settings;
		__u32 zero = 0;

		memcpy(key->addr, &((const struct sockaddr_in6 *)vm)->sin6_addr, 16);
		if (!fb || bpf_map_lookup_elem(fb->maps->settings, &zero, &settings)) {
			memset(settings.v6_sender_mask, 0, sizeof(settings.v6_sender_mask));
			memset(settings.v6_sender_mask, 0xff, 8);	/* a /64 */
		}
		for (int i = 0; i < 16; i++)
			key->addr[i] &= settings.v6_sender_mask[i];
		key->ifindex = ((const struct sockaddr_in6 *)vm)->sin6_scope_id;
	} else {
		key->addr[10] = 0xff;
		key->addr[11] = 0xff;
		memcpy(key->addr + 12, &((const struct sockaddr_in *)vm)->sin_addr, 4);
	}
}

void feedback_class(const struct sg_feedback *fb, __u32 slot, struct sg_rate_class *rc)
{
	if (bpf_map_lookup_elem(fb->maps->rate_classes, &slot, rc) || !rc->name[0]) {
		slot = SG_DEFAULT_RATE_CLASS;
		if (bpf_map_lookup_elem(fb->maps->rate_classes, &slot, rc))
			memset(rc, 0, sizeof(*rc));
	}
}

/* The class's name for a reply: the map may hold anything (smtpguardctl
 * checks names, another writer of the map need not), and a CR or LF in an
 * SMTP reply would split it. */
void feedback_class_label(const struct sg_rate_class *rc, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < sizeof(rc->name) && rc->name[i] && o + 1 < len; i++) {
		char c = rc->name[i];

		out[o++] = sg_rate_class_name_char(c) ? c : '?';
	}
	out[o] = '\0';
}

void sg_feedback_sender(struct sg_feedback *fb, const struct sockaddr_storage *vm,
			uint32_t rate_class, struct sg_src_key *key, uint32_t *max_sessions)
{
	struct sg_rate_class rc;

	*max_sessions = 0;
	feedback_sender_key(fb, vm, key);	/* without feedback too: the sessions per sender */
	if (!fb)
		return;
	feedback_class(fb, rate_class, &rc);
	*max_sessions = rc.max_sessions;
}

void feedback_entry_read(const struct sg_feedback *fb, const struct sg_src_key *key,
		       struct sg_src_feedback *e)
{
	if (bpf_map_lookup_elem(fb->maps->src_feedback, key, e))
		memset(e, 0, sizeof(*e));
}

void feedback_entry_write(const struct sg_feedback *fb, const struct sg_src_key *key,
			const struct sg_src_feedback *e)
{
	if (bpf_map_update_elem(fb->maps->src_feedback, key, e, BPF_ANY)) {
		char who[64];

		sg_format_source(key, 0, who, sizeof(who));
		sg_warn("feedback for %s not written: %s%s", who, strerror(errno),
			errno == E2BIG ? " (src_feedback full)" : "");
	}
}

/* GCRA: can cost tokens be taken from a bucket of burst tokens, one earned
 * every interval? *tat moves only when they can. A message costing more
 * than the whole burst goes once the bucket is full, and is charged in
 * full: the debt it leaves holds the sender back for as long as its size
 * warrants. */
int sg_bucket_fits(uint64_t tat, uint64_t now, uint64_t interval, uint32_t burst,
		       uint32_t cost, uint64_t *new_tat)
{
	uint64_t start = tat > now ? tat : now;

	if (!interval) {
		*new_tat = tat;
		return 1;
	}
	*new_tat = start + (uint64_t)cost * interval;
	if (cost > burst)
		return tat <= now;
	return *new_tat - now <= (uint64_t)burst * interval;
}

int sg_feedback_check_message(struct sg_feedback *fb, const struct sockaddr_storage *vm,
			      uint32_t rate_class, char *reason, size_t len)
{
	struct sg_rate_class rc;
	struct sg_src_feedback e;
	struct sg_src_key key;
	uint64_t now = sg_now_ns(), tat;
	char rate[32], label[SG_RATE_CLASS_NAME_LEN];
	int ok;

	if (!fb)
		return 0;
	feedback_class(fb, rate_class, &rc);
	if (!rc.msg_interval_ns)
		return 0;
	feedback_sender_key(fb, vm, &key);
	pthread_mutex_lock(&fb->lock);
	feedback_entry_read(fb, &key, &e);
	ok = sg_bucket_fits(e.msg_tat_ns, now, rc.msg_interval_ns, rc.msg_burst, 1, &tat);
	pthread_mutex_unlock(&fb->lock);
	if (ok)
		return 0;
	sg_format_rate(rc.msg_interval_ns, rate, sizeof(rate));
	feedback_class_label(&rc, label, sizeof(label));
	snprintf(reason, len, "over the message rate of class %s (%u, then %s)", label,
		 rc.msg_burst, rate);
	return -1;
}

int sg_feedback_charge(struct sg_feedback *fb, const struct sockaddr_storage *vm,
		       uint32_t rate_class, uint32_t nrcpts, char *reason, size_t len)
{
	struct sg_rate_class rc;
	struct sg_src_feedback e;
	struct sg_src_key key;
	uint64_t now = sg_now_ns(), msg_tat, rcpt_tat;
	int msg_ok, rcpt_ok;
	char rate[32], label[SG_RATE_CLASS_NAME_LEN];

	if (!fb)
		return 0;
	feedback_class(fb, rate_class, &rc);
	if (!rc.msg_interval_ns && !rc.rcpt_interval_ns)
		return 0;
	feedback_sender_key(fb, vm, &key);
	pthread_mutex_lock(&fb->lock);
	feedback_entry_read(fb, &key, &e);
	msg_ok = sg_bucket_fits(e.msg_tat_ns, now, rc.msg_interval_ns, rc.msg_burst, 1, &msg_tat);
	rcpt_ok = sg_bucket_fits(e.rcpt_tat_ns, now, rc.rcpt_interval_ns, rc.rcpt_burst,
			      nrcpts ? nrcpts : 1, &rcpt_tat);
	if (msg_ok && rcpt_ok) {
		e.msg_tat_ns = msg_tat;
		e.rcpt_tat_ns = rcpt_tat;
		e.last_ns = now;
		feedback_entry_write(fb, &key, &e);
	}
	pthread_mutex_unlock(&fb->lock);
	if (msg_ok && rcpt_ok)
		return 0;
	if (!msg_ok) {
		sg_format_rate(rc.msg_interval_ns, rate, sizeof(rate));
		feedback_class_label(&rc, label, sizeof(label));
		snprintf(reason, len, "over the message rate of class %s (%u, then %s)", label,
			 rc.msg_burst, rate);
	} else {
		sg_format_rate(rc.rcpt_interval_ns, rate, sizeof(rate));
		feedback_class_label(&rc, label, sizeof(label));
		snprintf(reason, len, "over the recipient rate of class %s (%u, then %s)", label,
			 rc.rcpt_burst, rate);
	}
	return -1;
}

/* N refusals within the window: up the ladder to refused (its rate
 * class allowing). Called with the lock held. */
static void escalate(struct sg_feedback *fb, const struct sg_src_key *key,
		     struct sg_src_feedback *e, uint64_t now)
{
	char why[SG_LADDER_REASON_LEN];

	if (!fb->escalation_rejects)
		return;
	if (!e->reject_window_ns || now - e->reject_window_ns > fb->escalation_window_ns) {
		e->reject_window_ns = now;
		e->reject_window_count = 0;
	}
	if (++e->reject_window_count < fb->escalation_rejects)
		return;
	e->reject_window_ns = 0;
	e->reject_window_count = 0;
	snprintf(why, sizeof(why), "%u messages refused by the scanner within %llu s",
		 fb->escalation_rejects,
		 (unsigned long long)(fb->escalation_window_ns / 1000000000ULL));
	ladder_climb(fb, key, e, SG_LADDER_REFUSED, why, now);
}

void sg_feedback_session(struct sg_feedback *fb, const struct sockaddr_storage *vm, int tls,
			 int inspected)
{
	struct sg_src_feedback e;
	struct sg_src_key key;

	if (!fb)
		return;
	feedback_sender_key(fb, vm, &key);
	pthread_mutex_lock(&fb->lock);
	feedback_entry_read(fb, &key, &e);
	e.last_ns = sg_now_ns();
	e.sessions++;
	e.tls_sessions += tls ? 1 : 0;
	e.tls_uninspected += inspected ? 0 : 1;
	feedback_entry_write(fb, &key, &e);
	pthread_mutex_unlock(&fb->lock);
}

void sg_feedback_note(struct sg_feedback *fb, const struct sockaddr_storage *vm,
		      enum sg_feedback_event ev, uint32_t nrcpts)
{
	struct sg_src_feedback e;
	struct sg_src_key key;
	uint64_t now = sg_now_ns();

	if (!fb)
		return;
	feedback_sender_key(fb, vm, &key);
	pthread_mutex_lock(&fb->lock);
	feedback_entry_read(fb, &key, &e);
	e.last_ns = now;
	switch (ev) {
	case SG_FB_DELIVERED:
		e.msgs++;
		e.rcpts += nrcpts;
		break;
	case SG_FB_REJECTED:
		e.rejects++;
		e.suspect_until_ns = now + fb->suspect_duration_ns;
		escalate(fb, &key, &e, now);
		break;
	case SG_FB_TOO_LARGE:
	case SG_FB_REJECTED_ALLOWED:
		e.rejects++;
		break;
	case SG_FB_TEMPFAILED:
		e.tempfails++;
		e.suspect_until_ns = now + fb->suspect_duration_ns;
		break;
	case SG_FB_MX_5XX:
		e.mx_5xx++;
		break;
	case SG_FB_SESSION_REFUSED:
		e.sessions_refused++;
		break;
	}
	feedback_entry_write(fb, &key, &e);
	pthread_mutex_unlock(&fb->lock);
}
