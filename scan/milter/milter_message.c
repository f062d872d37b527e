/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * milter_message.c - a message as the milter client sends it (see
 * milter.h): connect and helo once a session, then mail, the accepted
 * recipients, data, each header (framed here from the bytes as they
 * come, as Postfix frames them), end of headers, the body in chunks, and
 * the end of the message once the dot has come; and what each reply
 * means for the message's verdict. The engine's calls (begin, data,
 * verdict, release, session_end) are here too.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "milter_internal.h"
#include "parse.h"
#include "pmetrics.h"
#include "pstats.h"

/* Body bytes gathered before a chunk goes (fewer round trips), unless
 * the message has ended; at most a chunk's worth is sent at a time. */
#define BODY_CHUNK_MIN	(32 * 1024)

enum msg_step {
	STEP_CONNECT = 0,
	STEP_HELO,
	STEP_MAIL,
	STEP_RCPT,
	STEP_DATA,
	STEP_HEADERS,
	STEP_EOH,
	STEP_BODY,
	STEP_EOM,
	STEP_EOM_WAIT,		/* the end went: the final reply is awaited */
};

struct milter_msg {
	struct milter_conn *conn;
	struct sg_scan *scan;
	const struct sg_milter_config *cfg;
	enum msg_step step;
	/* the envelope, copied: it is begin's alone */
	char vm_ip[64];
	uint16_t vm_port;
	char helo[256];
	char mail_from[512];
	char ref[32];
	char *rcpts;		/* one a line */
	size_t rcpt_off;
	/* the message's bytes not yet sent: header lines being framed, then
	 * body bytes gathered for a chunk */
	char *backlog;
	size_t backlog_len, backlog_cap;
	char *header;		/* the header being assembled (header_open) */
	size_t header_len;
	int header_open, line_spill, header_cut;
	int skip_body;		/* the milter said skip */
	int ended;		/* the dot came: nothing more will */
	int decided;
	int verdict_asked;	/* the scanner waits for sg_scan_engine_done */
	struct sg_verdict verdict;
	uint64_t seq;		/* the connection's count of messages, at its start */
};

static const char *const event_names[SG_MILTER_EV_COUNT] = {
	[SG_MILTER_EV_CONNECT] = "connect", [SG_MILTER_EV_HELO] = "helo",
	[SG_MILTER_EV_MAIL] = "mail", [SG_MILTER_EV_RCPT] = "rcpt",
	[SG_MILTER_EV_RCPT_REJECTED] = "rcpt", [SG_MILTER_EV_DATA] = "data",
	[SG_MILTER_EV_HEADER] = "a header", [SG_MILTER_EV_EOH] = "the end of the headers",
	[SG_MILTER_EV_BODY] = "a body chunk", [SG_MILTER_EV_EOM] = "the end of the message",
	[SG_MILTER_EV_UNKNOWN] = "unknown", [SG_MILTER_EV_MACROS] = "macros",
	[SG_MILTER_EV_ABORT] = "abort", [SG_MILTER_EV_QUIT] = "quit",
	[SG_MILTER_EV_QUIT_NC] = "quit",
};

const char *milter_event_name(enum sg_milter_event ev)
{
	return (unsigned)ev < SG_MILTER_EV_COUNT ? event_names[ev] : "nothing";
}

/* A milter's words, fit for an SMTP reply and a log line: printable ASCII
 * only (a CR or LF would be a reply of its own), cut. */
static void printable(char *out, size_t outlen, const char *in, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && in[i] && o + 1 < outlen; i++)
		out[o++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : ' ';
	out[o] = '\0';
}

static void message_decide(struct milter_msg *m, enum sg_verdict_kind kind, const char *code,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void message_decide(struct milter_msg *m, enum sg_verdict_kind kind, const char *code,
		   const char *fmt, ...)
{
	va_list ap;

	if (m->decided)
		return;
	m->decided = 1;
	m->verdict.kind = kind;
	snprintf(m->verdict.code, sizeof(m->verdict.code), "%s", code ? code : "");
	va_start(ap, fmt);
	vsnprintf(m->verdict.reason, sizeof(m->verdict.reason), fmt, ap);
	va_end(ap);
	snprintf(m->verdict.by, sizeof(m->verdict.by), "milter %s", m->cfg->spec);
	free(m->backlog);
	m->backlog = NULL;
	m->backlog_len = m->backlog_cap = 0;
	sg_scan_hold(m->scan, m, 0);
	if (m->verdict_asked)
		sg_scan_engine_done(m->scan, &m->verdict);
}

void message_failed(struct milter_msg *m, const char *why)
{
	const struct sg_milter_config *cfg = m->cfg;

	if (cfg->default_action == SG_ACCEPT)
		m->scan->failed = sg_milter_engine.name;
	message_decide(m, cfg->default_action, NULL, "%sa milter failed: %s",
	       cfg->default_action == SG_ACCEPT ? "accepted: " : "", why);
}

/* ---- what is sent ---- */

/* Sends the event's packets (its macros, then its command; put_ok: their
 * encoding's outcome), awaiting the reply when the milter gives one. 1:
 * sent; -1: it broke. */
static int send_event(struct milter_msg *m, enum sg_milter_event ev, int put_ok)
{
	struct milter_conn *c = m->conn;
	unsigned wants = sg_milter_wants(c->version, c->protocol, ev);
	uint64_t timeout = ev == SG_MILTER_EV_BODY || ev == SG_MILTER_EV_EOM ?
			   m->cfg->content_timeout_ns : m->cfg->command_timeout_ns;

	if (put_ok < 0) {
		conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "cannot encode %s (out of memory)",
			  milter_event_name(ev));
		return -1;
	}
	return conn_send(c, (wants & SG_MILTER_AWAIT_REPLY) ? ev : SG_MILTER_EV_COUNT,
			 timeout) < 0 ? -1 : 1;
}

/* Is the event sent at all? Its macros go only with it. */
static int event_sent(const struct milter_conn *c, enum sg_milter_event ev)
{
	return sg_milter_wants(c->version, c->protocol, ev) & SG_MILTER_SEND;
}

static int put_macros(struct milter_msg *m, char cmd, const struct sg_milter_macro *list, size_t n)
{
	return sg_milter_put_macros(&m->conn->out, cmd, list, n);
}

#define M(name, value) { SG_MILTER_STR(name), { (value), strlen(value) } }

static int step_connect(struct milter_msg *m)
{
	struct milter_conn *c = m->conn;
	char port[8], client[96];
	int ok;

	if (!event_sent(c, SG_MILTER_EV_CONNECT))
		return 0;
	snprintf(port, sizeof(port), "%u", m->vm_port);
	snprintf(client, sizeof(client), "unknown [%s]", m->vm_ip);
	{
		const struct sg_milter_macro list[] = {
			M("j", m->cfg->hostname), M("{daemon_name}", "smtpguard"),
			M("v", "smtpguard"), M("_", client), M("{client_addr}", m->vm_ip),
			M("{client_port}", port), M("{client_name}", "unknown"),
			M("{client_ptr}", "unknown"),
		};

		ok = put_macros(m, 'C', list, sizeof(list) / sizeof(list[0]));
	}
	if (!ok)
		ok = sg_milter_put_connect(&c->out, SG_MILTER_STR("unknown"),
					   strchr(m->vm_ip, ':') ? SG_MILTER_SMFIA_INET6 :
					   SG_MILTER_SMFIA_INET, m->vm_port, SG_MILTER_STR(m->vm_ip));
	return send_event(m, SG_MILTER_EV_CONNECT, ok);
}

static int step_helo(struct milter_msg *m)
{
	if (!event_sent(m->conn, SG_MILTER_EV_HELO) || !m->helo[0])
		return 0;
	return send_event(m, SG_MILTER_EV_HELO,
			  sg_milter_put_helo(&m->conn->out, SG_MILTER_STR(m->helo)));
}

static int step_mail(struct milter_msg *m)
{
	struct milter_conn *c = m->conn;
	char from[520];
	const struct sg_milter_macro list[] = {
		M("i", m->ref), M("{auth_authen}", ""), M("{mail_addr}", m->mail_from),
		M("{mail_mailer}", "smtp"),
	};	/* all filled before */
	struct sg_milter_str arg;
	int ok;

	if (c->mid_message) {
		/* the last message ended without its end going (refused by
		 * another engine, or the session moved on): the milter forgets it */
		if (sg_milter_put_abort(&c->out) || conn_send(c, SG_MILTER_EV_COUNT, 0) < 0)
			return -1;
		c->mid_message = 0;
	}
	c->mid_message = 1;
	if (!event_sent(c, SG_MILTER_EV_MAIL))
		return 0;
	snprintf(from, sizeof(from), "<%s>", m->mail_from);
	arg = SG_MILTER_STR(from);
	ok = put_macros(m, 'M', list, sizeof(list) / sizeof(list[0]));
	if (!ok)
		ok = sg_milter_put_mail(&c->out, &arg, 1);
	return send_event(m, SG_MILTER_EV_MAIL, ok);
}

/* The next recipient; 0 when none is left. */
static int step_rcpt(struct milter_msg *m)
{
	struct milter_conn *c = m->conn;
	const char *addr = m->rcpts ? m->rcpts + m->rcpt_off : "";
	size_t n = strcspn(addr, "\n");
	char rcpt[520], bare[512];
	struct sg_milter_str arg;
	int ok;

	if (!n)
		return 0;
	m->rcpt_off += n + (addr[n] == '\n');
	if (!event_sent(c, SG_MILTER_EV_RCPT))
		return step_rcpt(m);
	snprintf(bare, sizeof(bare), "%.*s", (int)n, addr);
	snprintf(rcpt, sizeof(rcpt), "<%s>", bare);
	arg = SG_MILTER_STR(rcpt);
	{
		const struct sg_milter_macro list[] = {
			M("i", m->ref), M("{rcpt_addr}", bare), M("{rcpt_mailer}", "smtp"),
		};

		ok = put_macros(m, 'R', list, sizeof(list) / sizeof(list[0]));
	}
	if (!ok)
		ok = sg_milter_put_rcpt(&c->out, &arg, 1);
	return send_event(m, SG_MILTER_EV_RCPT, ok);
}

static int step_simple(struct milter_msg *m, enum sg_milter_event ev, char cmd)
{
	struct milter_conn *c = m->conn;
	const struct sg_milter_macro list[] = { M("i", m->ref) };
	int ok;

	if (!event_sent(c, ev))
		return 0;
	ok = put_macros(m, cmd, list, 1);
	if (!ok)
		ok = ev == SG_MILTER_EV_DATA ? sg_milter_put_data(&c->out) :
		     ev == SG_MILTER_EV_EOH ? sg_milter_put_eoh(&c->out) : sg_milter_put_eom(&c->out);
	return send_event(m, ev, ok);
}

/* ---- headers, framed from the bytes as Postfix frames them ---- */

static void consume(struct milter_msg *m, size_t n)
{
	memmove(m->backlog, m->backlog + n, m->backlog_len - n);
	m->backlog_len -= n;
}

/* A line of the header being assembled, cut at SG_MILTER_HEADER_MAX. */
static void header_take(struct milter_msg *m, const char *p, size_t n)
{
	size_t room = SG_MILTER_HEADER_MAX - m->header_len;

	if (n > room) {
		n = room;
		m->header_cut = 1;
	}
	memcpy(m->header + m->header_len, p, n);
	m->header_len += n;
}

/* A field name then a colon (RFC 5322: printable ASCII but the colon),
 * within a line's first SG_SCAN_LINE_MAX bytes (so the cut of a long
 * header never loses its colon). */
static int header_start(const char *p, size_t n)
{
	size_t i = 0;

	if (n > SG_SCAN_LINE_MAX)
		n = SG_SCAN_LINE_MAX;
	while (i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':')
		i++;
	return i > 0 && i < n && p[i] == ':';
}

/* The header assembled goes: its name, and its value with the line
 * breaks of its folding as LF, the last one dropped, the space after the
 * colon dropped (unless the milter asked for it), a NUL as a space (the
 * protocol cannot carry one). */
static int send_header(struct milter_msg *m)
{
	struct milter_conn *c = m->conn;
	char *h = m->header, *colon;
	size_t n = m->header_len, o = 0, vstart;
	int ok;

	m->header_open = 0;
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '\r' && i + 1 < n && h[i + 1] == '\n')
			continue;
		h[o++] = h[i] ? h[i] : ' ';
	}
	while (o && (h[o - 1] == '\n' || h[o - 1] == '\r'))
		o--;
	h[o] = '\0';
	m->header_len = 0;
	if (!event_sent(c, SG_MILTER_EV_HEADER))
		return 0;
	colon = memchr(h, ':', o);
	*colon = '\0';
	vstart = (size_t)(colon - h) + 1;
	if (!(c->protocol & SG_MILTER_SMFIP_HDR_LEADSPC) && vstart < o && h[vstart] == ' ')
		vstart++;
	/* one command carries at most SG_MILTER_MAX_DATA: a longer value
	 * is cut (the milter judges its start), never a fault of the milter */
	if ((size_t)(colon - h) + 2 + (o - vstart) > SG_MILTER_MAX_DATA)
		o = vstart + (SG_MILTER_MAX_DATA - 2 - (size_t)(colon - h));
	ok = sg_milter_put_header(&c->out, (struct sg_milter_str){ h, (size_t)(colon - h) },
				  (struct sg_milter_str){ h + vstart, o - vstart });
	return send_event(m, SG_MILTER_EV_HEADER, ok);
}

/* Frames the backlog's header lines: 1 when a header is whole (send it),
 * 0 when more bytes are needed, 2 when the headers have ended (the blank
 * line taken; a line that is no header is left: the body begins with it). */
static int frame_header(struct milter_msg *m)
{
	for (;;) {
		const char *p = m->backlog, *lf;
		size_t n;

		if (!m->backlog_len) {
			if (!m->ended)
				return 0;
			return m->header_open ? 1 : 2;
		}
		lf = memchr(p, '\n', m->backlog_len);
		n = lf ? (size_t)(lf - p) + 1 : m->backlog_len;
		if (m->line_spill) {	/* the rest of a line past the limit */
			header_take(m, p, n);
			consume(m, n);
			m->line_spill = !lf;
			continue;
		}
		if (!lf && n <= SG_MILTER_HEADER_MAX && !m->ended)
			return 0;	/* a line is classified whole, or once this long */
		if ((n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n')) {
			if (m->header_open)
				return 1;
			consume(m, n);
			return 2;
		}
		if ((p[0] == ' ' || p[0] == '\t') && m->header_open) {
			header_take(m, p, n);
			consume(m, n);
			m->line_spill = !lf;
			continue;
		}
		if (m->header_open || !header_start(p, n))
			return m->header_open ? 1 : 2;
		m->header_open = 1;
		m->header_cut = 0;
		header_take(m, p, n);
		consume(m, n);
		m->line_spill = !lf;
	}
}

/* ---- the steps ---- */

static int step_body(struct milter_msg *m)
{
	struct milter_conn *c = m->conn;
	size_t n = m->backlog_len < SG_MILTER_CHUNK_SIZE ? m->backlog_len : SG_MILTER_CHUNK_SIZE;
	int rc;

	if (m->skip_body || !event_sent(c, SG_MILTER_EV_BODY)) {
		m->backlog_len = 0;
		return 0;
	}
	if (!n || (n < BODY_CHUNK_MIN && !m->ended))
		return 0;
	rc = send_event(m, SG_MILTER_EV_BODY,
			sg_milter_put_body(&c->out, m->backlog, n));
	if (rc > 0)
		consume(m, n);
	return rc;
}

/* Sends what can go now: one command whose reply is awaited, or as many
 * as the milter does not answer. */
void message_pump(struct milter_msg *m)
{
	struct milter_conn *c = m->conn;

	while (!m->decided && c->state == CONN_READY && c->awaiting == SG_MILTER_EV_COUNT) {
		int rc = 0;

		switch (m->step) {
		case STEP_CONNECT:
			rc = c->greeted ? 0 : step_connect(m);
			m->step = STEP_HELO;
			break;
		case STEP_HELO:
			rc = c->greeted ? 0 : step_helo(m);
			c->greeted = 1;
			m->step = STEP_MAIL;
			break;
		case STEP_MAIL:
			rc = step_mail(m);
			m->step = STEP_RCPT;
			break;
		case STEP_RCPT:
			rc = step_rcpt(m);
			if (!rc)
				m->step = STEP_DATA;
			break;
		case STEP_DATA:
			rc = step_simple(m, SG_MILTER_EV_DATA, 'T');
			m->step = STEP_HEADERS;
			break;
		case STEP_HEADERS:
			rc = frame_header(m);
			if (rc == 0)
				goto held;
			if (rc == 2) {
				m->step = STEP_EOH;
				rc = 0;
				break;
			}
			rc = send_header(m);
			break;
		case STEP_EOH:
			rc = step_simple(m, SG_MILTER_EV_EOH, 'N');
			m->step = STEP_BODY;
			break;
		case STEP_BODY:
			rc = step_body(m);
			if (rc == 0 && m->ended && !m->backlog_len)
				m->step = STEP_EOM;
			else if (rc == 0)
				goto held;
			break;
		case STEP_EOM:
			/* the end always goes, and is always answered */
			rc = sg_milter_put_macros(&c->out, 'E', (const struct sg_milter_macro[]){
							  M("i", m->ref) }, 1);
			if (!rc)
				rc = sg_milter_put_eom(&c->out);
			m->step = STEP_EOM_WAIT;
			if (rc < 0 || conn_send(c, SG_MILTER_EV_EOM, m->cfg->content_timeout_ns) < 0)
				rc = -1;
			break;
		case STEP_EOM_WAIT:
			return;
		}
		if (rc < 0) {
			if (c->state != CONN_BROKEN)
				conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "cannot encode the next command");
			return;
		}
	}
held:
	if (!m->decided && m->backlog_len < SG_MILTER_BACKLOG_HOLD / 2)
		sg_scan_hold(m->scan, m, 0);
}

/* ---- the replies ---- */

/* The milter refuses: the message, and for connect or helo the session's
 * every message. */
static void refuse_as(struct milter_msg *m, struct milter_conn *c, enum sg_milter_event ev,
		    enum sg_verdict_kind kind, const char *code, const char *words)
{
	char reason[SG_REASON_LEN];

	snprintf(reason, sizeof(reason), "%s%s",
		 ev == SG_MILTER_EV_RCPT ? "a recipient refused: " :
		 ev == SG_MILTER_EV_CONNECT || ev == SG_MILTER_EV_HELO ? "the session refused: " : "",
		 words);
	if (ev == SG_MILTER_EV_CONNECT || ev == SG_MILTER_EV_HELO) {
		c->session_decided = 1;
		c->session_verdict.kind = kind;
		snprintf(c->session_verdict.code, sizeof(c->session_verdict.code), "%s", code);
		snprintf(c->session_verdict.reason, sizeof(c->session_verdict.reason), "%s", reason);
	}
	milter_count(c->cfg, kind == SG_TEMPFAIL ? &c->cfg->stats->tempfailed :
		     &c->cfg->stats->rejected);
	sg_pstat_add(SG_PSTAT_MILTER_REFUSED, 1);
	if (m)
		message_decide(m, kind, code, "%s", reason);
}

/* A change the milter asks for, recorded (the message already streams). */
static void record_change(struct milter_msg *m, const struct sg_milter_reply *r)
{
	char what[160], a[64], b[64];

	switch (r->cmd) {
	case SG_MILTER_SMFIR_QUARANTINE:
		printable(a, sizeof(a), r->reason, strlen(r->reason));
		snprintf(what, sizeof(what), "quarantine (%s)", a);
		milter_count(m->cfg, &m->cfg->stats->quarantined);
		m->scan->flagged = 1;
		break;
	case SG_MILTER_SMFIR_ADDHEADER:
	case SG_MILTER_SMFIR_INSHEADER:
	case SG_MILTER_SMFIR_CHGHEADER:
		printable(a, sizeof(a), r->header.name, strlen(r->header.name));
		printable(b, sizeof(b), r->header.value ? r->header.value : "",
			  r->header.value ? strlen(r->header.value) : 0);
		snprintf(what, sizeof(what), "%s header %s: %s",
			 r->cmd == SG_MILTER_SMFIR_CHGHEADER ? (b[0] ? "change" : "delete") :
			 "add", a, b);
		break;
	case SG_MILTER_SMFIR_REPLBODY:
		snprintf(what, sizeof(what), "replace the body");
		break;
	default:
		printable(a, sizeof(a), r->address.addr, strlen(r->address.addr));
		snprintf(what, sizeof(what), "%s %s",
			 r->cmd == SG_MILTER_SMFIR_DELRCPT ? "delete recipient" :
			 r->cmd == SG_MILTER_SMFIR_CHGFROM ? "change sender to" : "add recipient", a);
		break;
	}
	/* only the first of many header changes is worth a note each */
	if (!strstr(m->scan->notes, what))
		sg_scan_note(m->scan, m->cfg->spec, what);
}

static int is_change(char cmd)
{
	return cmd && strchr("himb+-2eq", cmd) != NULL;
}

void message_reply(struct milter_conn *c, const struct sg_milter_reply *r)
{
	/* a reply owed for a message already let go is taken and dropped */
	struct milter_msg *m = c->msg && c->msg->seq == c->awaiting_seq ? c->msg : NULL;
	enum sg_milter_event ev = c->awaiting;
	char words[160];

	if (ev == SG_MILTER_EV_COUNT) {
		conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "sent '%s' when no reply was due",
			  sg_milter_reply_name(r->cmd) ?: "?");
		return;
	}
	if (r->cmd == SG_MILTER_SMFIR_PROGRESS) {
		c->awaited_since_ns = sg_now_ns();
		sg_loop_timer_in(c->loop, &c->timer, ev == SG_MILTER_EV_EOM || ev ==
				 SG_MILTER_EV_BODY ? c->cfg->content_timeout_ns :
				 c->cfg->command_timeout_ns);
		return;
	}
	if (is_change(r->cmd)) {
		if (ev != SG_MILTER_EV_EOM) {
			conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "sent '%s' in reply to %s (only "
				  "at the end of the message)", sg_milter_reply_name(r->cmd),
				  milter_event_name(ev));
			return;
		}
		if (m)
			record_change(m, r);
		return;
	}
	if (r->cmd == SG_MILTER_SMFIR_SKIP && ev != SG_MILTER_EV_BODY) {
		conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "sent skip in reply to %s",
			  milter_event_name(ev));
		return;
	}
	c->awaiting = SG_MILTER_EV_COUNT;
	sg_loop_timer_cancel(c->loop, &c->timer);
	sg_pmetric_engine_health(c->cfg->metric_slot, SG_HEALTH_UP);
	if (ev == SG_MILTER_EV_EOM)
		c->mid_message = 0;
	switch (r->cmd) {
	case SG_MILTER_SMFIR_CONTINUE:
		if (m && ev == SG_MILTER_EV_EOM) {
			milter_count(c->cfg, &c->cfg->stats->accepted);
			message_decide(m, SG_ACCEPT, NULL, "clean");
		}
		break;
	case SG_MILTER_SMFIR_SKIP:
		if (m)
			m->skip_body = 1;
		break;
	case SG_MILTER_SMFIR_ACCEPT:
		/* at connect or helo: the session's every message */
		if (ev == SG_MILTER_EV_CONNECT || ev == SG_MILTER_EV_HELO) {
			c->session_decided = 1;
			c->session_verdict.kind = SG_ACCEPT;
			snprintf(c->session_verdict.reason, sizeof(c->session_verdict.reason), "clean");
		}
		milter_count(c->cfg, &c->cfg->stats->accepted);
		if (m)
			message_decide(m, SG_ACCEPT, NULL, "clean");
		break;
	case SG_MILTER_SMFIR_REJECT:
		refuse_as(m, c, ev, SG_REJECT, "", "rejected by a content filter");
		break;
	case SG_MILTER_SMFIR_DISCARD:
		/* a discard would drop mail the VM believes sent: refused, so
		 * its sender knows */
		milter_count(c->cfg, &c->cfg->stats->discarded);
		refuse_as(m, c, ev, SG_REJECT, "", "discarded by a content filter (refused: the "
			"sender must know)");
		break;
	case SG_MILTER_SMFIR_TEMPFAIL:
		refuse_as(m, c, ev, SG_TEMPFAIL, "", "deferred by a content filter");
		break;
	case SG_MILTER_SMFIR_SHUTDOWN:
	case SG_MILTER_SMFIR_CONN_FAIL:
		refuse_as(m, c, SG_MILTER_EV_CONNECT, SG_TEMPFAIL, "",
			r->cmd == SG_MILTER_SMFIR_SHUTDOWN ? "shutting down (421)" :
			"failed the connection");
		break;
	case SG_MILTER_SMFIR_REPLYCODE: {
		const struct sg_milter_replycode *y = &r->replycode;
		char code[sizeof(m->verdict.code)];
		/* an enhanced code of the reply's own class, or the usual one */
		int own = y->enhanced[0] == '0' + y->code / 100;

		snprintf(code, sizeof(code), "%d %.11s", y->code, own ? y->enhanced :
			 y->code >= 500 ? "5.7.1" : "4.7.1");
		printable(words, sizeof(words), y->text, y->text_len);
		refuse_as(m, c, ev, y->code >= 500 ? SG_REJECT : SG_TEMPFAIL, code,
			words[0] ? words : "refused");
		break;
	}
	default:
		conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "sent '%s' in reply to %s",
			  sg_milter_reply_name(r->cmd) ?: "?", milter_event_name(ev));
		return;
	}
	/* the message now, whether the reply was its own or one owed to a
	 * message let go: it goes on either way */
	m = c->msg;
	if (m && !m->decided && c->session_decided)
		message_decide(m, c->session_verdict.kind, c->session_verdict.code, "%s",
		       c->session_verdict.reason);
	if (m && c->state != CONN_BROKEN)
		message_pump(m);
}

/* ---- the engine ---- */

static int milter_begin(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
			void **session, void **state)
{
	const struct sg_milter_config *cfg = config;
	struct milter_conn *c = *session;
	struct milter_msg *m;

	if (!scan->host.loop)
		return SG_ENGINE_ERROR;	/* a milter is waited on in a loop */
	if (c && c->state == CONN_BROKEN) {
		conn_close(c);
		c = *session = NULL;
	}
	if (!c) {
		c = conn_open(cfg, scan->host.loop);
		if (!c)
			return SG_ENGINE_ERROR;
		*session = c;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return SG_ENGINE_ERROR;
	m->conn = c;
	m->scan = scan;
	m->cfg = cfg;
	m->step = c->greeted ? STEP_MAIL : STEP_CONNECT;
	snprintf(m->vm_ip, sizeof(m->vm_ip), "%s", env->vm_ip ? env->vm_ip : "");
	m->vm_port = env->vm_port;
	snprintf(m->helo, sizeof(m->helo), "%s", env->helo ? env->helo : "");
	snprintf(m->mail_from, sizeof(m->mail_from), "%s", env->mail_from ? env->mail_from : "");
	snprintf(m->ref, sizeof(m->ref), "%s", env->ref ? env->ref : "");
	m->rcpts = strdup(env->rcpt_addrs ? env->rcpt_addrs : "");
	m->header = malloc(SG_MILTER_HEADER_MAX + 1);
	if (!m->rcpts || !m->header) {
		free(m->rcpts);
		free(m->header);
		free(m);
		return SG_ENGINE_ERROR;
	}
	*state = m;
	c->msg = m;
	m->seq = ++c->messages;
	milter_count(cfg, &cfg->stats->messages);
	sg_pstat_add(SG_PSTAT_MILTER_MESSAGES, 1);
	if (c->session_decided)
		message_decide(m, c->session_verdict.kind, c->session_verdict.code, "%s",
		       c->session_verdict.reason);
	else if (c->state == CONN_BROKEN)
		message_failed(m, c->error);
	else
		message_pump(m);
	return SG_ENGINE_DONE;
}

static int milter_data(void *state, const void *config, const char *data, size_t n)
{
	struct milter_msg *m = state;

	(void)config;
	if (m->decided)
		return 1;
	if (m->step > STEP_HEADERS && (m->skip_body || !event_sent(m->conn, SG_MILTER_EV_BODY)))
		return 0;	/* nothing more of it goes */
	if (m->backlog_len + n > SG_MILTER_BACKLOG_MAX) {
		conn_fail(m->conn, SG_MILTER_FAULT_TIMEOUT, "reads the body slower than it comes "
			  "(%zu bytes behind)", m->backlog_len);
		return 1;
	}
	if (m->backlog_len + n > m->backlog_cap) {
		size_t cap = m->backlog_cap ? m->backlog_cap : 16384;
		char *grown;

		while (cap < m->backlog_len + n)
			cap *= 2;
		grown = realloc(m->backlog, cap);
		if (!grown) {
			message_failed(m, "out of memory");
			return 1;
		}
		m->backlog = grown;
		m->backlog_cap = cap;
	}
	memcpy(m->backlog + m->backlog_len, data, n);
	m->backlog_len += n;
	message_pump(m);
	if (!m->decided && m->backlog_len > SG_MILTER_BACKLOG_HOLD)
		sg_scan_hold(m->scan, m, 1);
	return m->decided;
}

static int milter_verdict(void *state, const void *config, struct sg_scan *scan,
			  struct sg_verdict *v)
{
	struct milter_msg *m = state;

	(void)config;
	(void)scan;
	m->ended = 1;
	message_pump(m);
	if (m->decided) {
		*v = m->verdict;
		return SG_ENGINE_DONE;
	}
	m->verdict_asked = 1;
	return SG_ENGINE_WAIT;
}

static void milter_release(void *state, const void *config)
{
	struct milter_msg *m = state;

	(void)config;
	if (m->conn->msg == m)
		m->conn->msg = NULL;	/* a reply still owed is taken and dropped */
	free(m->backlog);
	free(m->header);
	free(m->rcpts);
	free(m);
}

static void milter_session_end(void *session, const void *config)
{
	(void)config;
	conn_close(session);
}

const struct sg_engine sg_milter_engine = {
	.name = "milter",
	.begin = milter_begin,
	.data = milter_data,
	.verdict = milter_verdict,
	.release = milter_release,
	.session_end = milter_session_end,
	.reports_health = 1,	/* a verdict may be its milter_default_action */
};
