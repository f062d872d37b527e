/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * milter_proto.c - the milter protocol codec (milter_proto.h): the MTA's
 * commands encoded, the milter's replies decoded and checked, what the MTA
 * offers at negotiation, and what is sent once it is agreed.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include "milter_proto.h"

/* ---- encoding ---- */

#define PACKET_HEAD (SG_MILTER_LEN_BYTES + 1)

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

static uint32_t get_be32(const void *p)
{
	const unsigned char *u = p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static int reserve(struct sg_milter_buf *b, size_t more)
{
	size_t need, cap;
	char *grown;

	if (b->len > b->cap || more > SIZE_MAX - b->len)
		return -1;
	need = b->len + more;
	if (need <= b->cap)
		return 0;
	if (!b->growable)
		return -1;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	grown = realloc(b->data, cap);
	if (!grown)
		return -1;
	b->data = grown;
	b->cap = cap;
	return 0;
}

/* A packet is built in place after b->len; any failure puts len back
 * where it was, so a refused packet leaves no trace. */
struct packet {
	struct sg_milter_buf *b;
	size_t start;
	int failed;
};

static void packet_begin(struct packet *pk, struct sg_milter_buf *b, char cmd)
{
	pk->b = b;
	pk->start = b->len;
	pk->failed = reserve(b, PACKET_HEAD) != 0;
	if (pk->failed)
		return;
	b->data[b->len + SG_MILTER_LEN_BYTES] = cmd;
	b->len += PACKET_HEAD;
}

static void packet_add(struct packet *pk, const void *p, size_t len)
{
	struct sg_milter_buf *b = pk->b;
	size_t data_len;

	if (pk->failed)
		return;
	data_len = b->len - pk->start - PACKET_HEAD;
	if (len > SG_MILTER_MAX_DATA - data_len || reserve(b, len) != 0) {
		pk->failed = 1;
		return;
	}
	if (len)
		memcpy(b->data + b->len, p, len);
	b->len += len;
}

static void packet_add_byte(struct packet *pk, char c)
{
	packet_add(pk, &c, 1);
}

static void packet_add_be32(struct packet *pk, uint32_t v)
{
	char n[4];

	put_be32(n, v);
	packet_add(pk, n, sizeof(n));
}

/* A string and its terminating NUL; one that holds a NUL would be cut
 * short at the milter, so it is refused. */
static void packet_add_string(struct packet *pk, struct sg_milter_str s)
{
	if (!s.s && s.len) {
		pk->failed = 1;
		return;
	}
	if (s.len && memchr(s.s, '\0', s.len)) {
		pk->failed = 1;
		return;
	}
	packet_add(pk, s.s, s.len);
	packet_add_byte(pk, '\0');
}

static int packet_end(struct packet *pk)
{
	struct sg_milter_buf *b = pk->b;

	if (pk->failed) {
		b->len = pk->start;
		return -1;
	}
	put_be32(b->data + pk->start, (uint32_t)(b->len - pk->start - SG_MILTER_LEN_BYTES));
	return 0;
}

static int put_bare(struct sg_milter_buf *b, char cmd)
{
	struct packet pk;

	packet_begin(&pk, b, cmd);
	return packet_end(&pk);
}

int sg_milter_put_optneg(struct sg_milter_buf *b, uint32_t version, uint32_t actions,
			 uint32_t protocol)
{
	struct packet pk;

	packet_begin(&pk, b, SG_MILTER_SMFIC_OPTNEG);
	packet_add_be32(&pk, version);
	packet_add_be32(&pk, actions);
	packet_add_be32(&pk, protocol);
	return packet_end(&pk);
}

int sg_milter_put_macros(struct sg_milter_buf *b, char cmd, const struct sg_milter_macro *macros,
			 size_t n)
{
	struct packet pk;

	/* libmilter keeps macros for these commands only, and fails on an
	 * empty list */
	if (!strchr("CHMRTEN", cmd) || cmd == '\0' || n == 0 || !macros)
		return -1;
	packet_begin(&pk, b, SG_MILTER_SMFIC_MACRO);
	packet_add_byte(&pk, cmd);
	for (size_t i = 0; i < n && !pk.failed; i++) {
		if (macros[i].name.len == 0)
			pk.failed = 1;
		packet_add_string(&pk, macros[i].name);
		packet_add_string(&pk, macros[i].value);
	}
	return packet_end(&pk);
}

/* A numeric address of the family, as libmilter parses it (its check
 * aborts the milter's connection otherwise). */
static int address_of_family(struct sg_milter_str addr, int af)
{
	char text[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];

	if (!addr.s || addr.len == 0 || addr.len >= sizeof(text) || memchr(addr.s, '\0', addr.len))
		return 0;
	memcpy(text, addr.s, addr.len);
	text[addr.len] = '\0';
	return inet_pton(af, text, bin) == 1;
}

int sg_milter_put_connect(struct sg_milter_buf *b, struct sg_milter_str hostname, char family,
			  uint16_t port, struct sg_milter_str addr)
{
	struct packet pk;
	char port_be[2] = { (char)(port >> 8), (char)port };

	switch (family) {
	case SG_MILTER_SMFIA_INET:
		if (!address_of_family(addr, AF_INET))
			return -1;
		break;
	case SG_MILTER_SMFIA_INET6:
		if (!address_of_family(addr, AF_INET6))
			return -1;
		break;
	case SG_MILTER_SMFIA_UNIX:
		/* libmilter copies the path into a sockaddr_un */
		if (addr.len >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return -1;
		break;
	case SG_MILTER_SMFIA_UNKNOWN:
		break;
	default:
		return -1;
	}
	packet_begin(&pk, b, SG_MILTER_SMFIC_CONNECT);
	packet_add_string(&pk, hostname);
	packet_add_byte(&pk, family);
	if (family != SG_MILTER_SMFIA_UNKNOWN) {
		packet_add(&pk, port_be, sizeof(port_be));
		packet_add_string(&pk, addr);
	}
	return packet_end(&pk);
}

int sg_milter_put_helo(struct sg_milter_buf *b, struct sg_milter_str helo)
{
	struct packet pk;

	packet_begin(&pk, b, SG_MILTER_SMFIC_HELO);
	packet_add_string(&pk, helo);
	return packet_end(&pk);
}

static int put_args(struct sg_milter_buf *b, char cmd, const struct sg_milter_str *args, size_t n)
{
	struct packet pk;

	if (n == 0 || !args)
		return -1;
	packet_begin(&pk, b, cmd);
	for (size_t i = 0; i < n && !pk.failed; i++)
		packet_add_string(&pk, args[i]);
	return packet_end(&pk);
}

int sg_milter_put_mail(struct sg_milter_buf *b, const struct sg_milter_str *args, size_t n)
{
	return put_args(b, SG_MILTER_SMFIC_MAIL, args, n);
}

int sg_milter_put_rcpt(struct sg_milter_buf *b, const struct sg_milter_str *args, size_t n)
{
	return put_args(b, SG_MILTER_SMFIC_RCPT, args, n);
}

int sg_milter_put_data(struct sg_milter_buf *b)
{
	return put_bare(b, SG_MILTER_SMFIC_DATA);
}

int sg_milter_put_header(struct sg_milter_buf *b, struct sg_milter_str name,
			 struct sg_milter_str value)
{
	struct packet pk;

	if (name.len == 0)
		return -1;
	packet_begin(&pk, b, SG_MILTER_SMFIC_HEADER);
	packet_add_string(&pk, name);
	packet_add_string(&pk, value);
	return packet_end(&pk);
}

int sg_milter_put_eoh(struct sg_milter_buf *b)
{
	return put_bare(b, SG_MILTER_SMFIC_EOH);
}

int sg_milter_put_body(struct sg_milter_buf *b, const void *chunk, size_t len)
{
	struct packet pk;

	if (len > SG_MILTER_CHUNK_SIZE || (!chunk && len))
		return -1;
	packet_begin(&pk, b, SG_MILTER_SMFIC_BODY);
	packet_add(&pk, chunk, len);
	return packet_end(&pk);
}

int sg_milter_put_eom(struct sg_milter_buf *b)
{
	return put_bare(b, SG_MILTER_SMFIC_BODYEOB);
}

int sg_milter_put_abort(struct sg_milter_buf *b)
{
	return put_bare(b, SG_MILTER_SMFIC_ABORT);
}

int sg_milter_put_quit(struct sg_milter_buf *b)
{
	return put_bare(b, SG_MILTER_SMFIC_QUIT);
}

int sg_milter_put_quit_nc(struct sg_milter_buf *b)
{
	return put_bare(b, SG_MILTER_SMFIC_QUIT_NC);
}

int sg_milter_put_unknown(struct sg_milter_buf *b, struct sg_milter_str line)
{
	struct packet pk;

	packet_begin(&pk, b, SG_MILTER_SMFIC_UNKNOWN);
	packet_add_string(&pk, line);
	return packet_end(&pk);
}

/* ---- negotiation ---- */

void sg_milter_mta_offer(struct sg_milter_optneg *offer)
{
	memset(offer, 0, sizeof(*offer));
	/* rspamd refuses an MTA below 6; libmilter answers with the lower of
	 * its version and ours */
	offer->version = SG_MILTER_VERSION;
	/*
	 * Every action, as Postfix offers them. libmilter drops the connection
	 * when the actions a filter registered are not all offered (clamav-
	 * milter registers header edits and quarantine; rspamd answers with
	 * ours or'ed with ADDHDRS, CHGBODY, ADDRCPT, DELRCPT, CHGHDRS and
	 * QUARANTINE), so offering less would lose the milter, not the edits.
	 *  - ADDHDRS, CHGHDRS: the message is already streaming to the MX
	 *    when the milter answers, so no header change is applied; the
	 *    client records them (rspamd's X-Spam and Authentication-Results
	 *    are what it has to say).
	 *  - CHGBODY, ADDRCPT, DELRCPT, CHGFROM, ADDRCPT_PAR: the body and
	 *    the envelope have gone to the MX; offered for the reason above,
	 *    decoded and checked, recorded, never applied.
	 *  - QUARANTINE: a 'q' and its reason are recorded; what it means for
	 *    the verdict is the engine's choice.
	 *  - SETSYMLIST: lets the milter name the macros it wants per stage;
	 *    the decoder hands the lists back.
	 */
	offer->actions = SG_MILTER_SMFIF_ADDHDRS | SG_MILTER_SMFIF_CHGBODY |
			 SG_MILTER_SMFIF_ADDRCPT | SG_MILTER_SMFIF_DELRCPT |
			 SG_MILTER_SMFIF_CHGHDRS | SG_MILTER_SMFIF_QUARANTINE |
			 SG_MILTER_SMFIF_CHGFROM | SG_MILTER_SMFIF_ADDRCPT_PAR |
			 SG_MILTER_SMFIF_SETSYMLIST;
	/*
	 * Every protocol flag of version 6, as Postfix offers them (its
	 * MILTER8_V6_PROTO_MASK): each is the MTA saying what it can do.
	 *  - NOCONNECT .. NOEOH, NOUNKNOWN, NODATA: the client can leave out
	 *    an event the milter has no use for (fewer round trips).
	 *  - NR_*: it can go on without a reply the milter will not send
	 *    (rspamd answers nothing before the end of the message).
	 *  - SKIP: it stops sending body chunks on 's'.
	 *  - RCPT_REJ: it can tell the milter of recipients the MX refused.
	 *  - HDR_LEADSPC: it can send header values with their leading space.
	 * Not offered: MDS_256K and MDS_1M, sendmail's larger commands,
	 * which Postfix does not offer either; every command stays within
	 * SG_MILTER_MAX_DATA.
	 */
	offer->protocol = SG_MILTER_SMFIP_NOCONNECT | SG_MILTER_SMFIP_NOHELO |
			  SG_MILTER_SMFIP_NOMAIL | SG_MILTER_SMFIP_NORCPT |
			  SG_MILTER_SMFIP_NOBODY | SG_MILTER_SMFIP_NOHDRS |
			  SG_MILTER_SMFIP_NOEOH | SG_MILTER_SMFIP_NR_HDR |
			  SG_MILTER_SMFIP_NOUNKNOWN | SG_MILTER_SMFIP_NODATA |
			  SG_MILTER_SMFIP_SKIP | SG_MILTER_SMFIP_RCPT_REJ |
			  SG_MILTER_SMFIP_NR_CONN | SG_MILTER_SMFIP_NR_HELO |
			  SG_MILTER_SMFIP_NR_MAIL | SG_MILTER_SMFIP_NR_RCPT |
			  SG_MILTER_SMFIP_NR_DATA | SG_MILTER_SMFIP_NR_UNKN |
			  SG_MILTER_SMFIP_NR_EOH | SG_MILTER_SMFIP_NR_BODY |
			  SG_MILTER_SMFIP_HDR_LEADSPC;
}

int sg_milter_check_optneg(const struct sg_milter_optneg *offer,
			   const struct sg_milter_optneg *reply, char *err, size_t errlen)
{
	uint32_t extra;

	if (reply->version > offer->version) {
		snprintf(err, errlen, "milter optneg: the milter speaks version %u, above the %u offered",
			 (unsigned)reply->version, (unsigned)offer->version);
		return -1;
	}
	extra = reply->actions & ~offer->actions;
	if (extra) {
		snprintf(err, errlen, "milter optneg: the milter asks for actions 0x%x, not offered (offered 0x%x)",
			 (unsigned)extra, (unsigned)offer->actions);
		return -1;
	}
	extra = reply->protocol & ~offer->protocol;
	if (extra) {
		snprintf(err, errlen, "milter optneg: the milter sets protocol flags 0x%x, not offered (offered 0x%x)",
			 (unsigned)extra, (unsigned)offer->protocol);
		return -1;
	}
	return 0;
}

struct event_rule {
	uint32_t not_sent;	/* the milter's SMFIP_NO* for it */
	uint32_t no_reply;	/* its SMFIP_NR_* */
	uint32_t since;		/* the protocol version that has it */
	int replied;		/* a reply may be awaited at all */
};

static const struct event_rule event_rules[SG_MILTER_EV_COUNT] = {
	[SG_MILTER_EV_CONNECT] = { SG_MILTER_SMFIP_NOCONNECT, SG_MILTER_SMFIP_NR_CONN, 2, 1 },
	[SG_MILTER_EV_HELO] = { SG_MILTER_SMFIP_NOHELO, SG_MILTER_SMFIP_NR_HELO, 2, 1 },
	[SG_MILTER_EV_MAIL] = { SG_MILTER_SMFIP_NOMAIL, SG_MILTER_SMFIP_NR_MAIL, 2, 1 },
	[SG_MILTER_EV_RCPT] = { SG_MILTER_SMFIP_NORCPT, SG_MILTER_SMFIP_NR_RCPT, 2, 1 },
	[SG_MILTER_EV_RCPT_REJECTED] = { SG_MILTER_SMFIP_NORCPT, SG_MILTER_SMFIP_NR_RCPT, 6, 1 },
	[SG_MILTER_EV_DATA] = { SG_MILTER_SMFIP_NODATA, SG_MILTER_SMFIP_NR_DATA, 4, 1 },
	[SG_MILTER_EV_HEADER] = { SG_MILTER_SMFIP_NOHDRS, SG_MILTER_SMFIP_NR_HDR, 2, 1 },
	[SG_MILTER_EV_EOH] = { SG_MILTER_SMFIP_NOEOH, SG_MILTER_SMFIP_NR_EOH, 2, 1 },
	[SG_MILTER_EV_BODY] = { SG_MILTER_SMFIP_NOBODY, SG_MILTER_SMFIP_NR_BODY, 2, 1 },
	[SG_MILTER_EV_EOM] = { 0, 0, 2, 1 },
	[SG_MILTER_EV_UNKNOWN] = { SG_MILTER_SMFIP_NOUNKNOWN, SG_MILTER_SMFIP_NR_UNKN, 3, 1 },
	[SG_MILTER_EV_MACROS] = { 0, 0, 2, 0 },
	[SG_MILTER_EV_ABORT] = { 0, 0, 2, 0 },
	[SG_MILTER_EV_QUIT] = { 0, 0, 2, 0 },
	[SG_MILTER_EV_QUIT_NC] = { 0, 0, 6, 0 },
};

unsigned sg_milter_wants(uint32_t version, uint32_t protocol, enum sg_milter_event ev)
{
	const struct event_rule *rule;
	unsigned wants;

	if ((unsigned)ev >= SG_MILTER_EV_COUNT)
		return 0;
	rule = &event_rules[ev];
	if (version < rule->since || (protocol & rule->not_sent))
		return 0;
	/* a refused recipient goes only to a milter that asked for them */
	if (ev == SG_MILTER_EV_RCPT_REJECTED && !(protocol & SG_MILTER_SMFIP_RCPT_REJ))
		return 0;
	wants = SG_MILTER_SEND;
	if (rule->replied && !(protocol & rule->no_reply))
		wants |= SG_MILTER_AWAIT_REPLY;
	return wants;
}

/* ---- decoding ---- */

/* What each reply may carry. */
enum reply_shape {
	SHAPE_UNKNOWN = 0,
	SHAPE_NONE,		/* no data */
	SHAPE_REPLYCODE,
	SHAPE_REASON,
	SHAPE_HEADER,		/* name, value */
	SHAPE_INDEXED_HEADER,	/* index, name, value */
	SHAPE_BODY,
	SHAPE_ADDRESS,		/* address */
	SHAPE_ADDRESS_ARGS,	/* address [, ESMTP arguments] */
	SHAPE_OPTNEG,
	SHAPE_MISPLACED,	/* a known letter that is no reply by itself */
};

struct reply_kind {
	char cmd;
	const char *name;
	enum reply_shape shape;
	const char *field;	/* what its string is called, in errors */
};

static const struct reply_kind reply_kinds[] = {
	{ SG_MILTER_SMFIR_ADDRCPT, "add recipient", SHAPE_ADDRESS, "the recipient" },
	{ SG_MILTER_SMFIR_DELRCPT, "delete recipient", SHAPE_ADDRESS, "the recipient" },
	{ SG_MILTER_SMFIR_ADDRCPT_PAR, "add recipient with arguments", SHAPE_ADDRESS_ARGS,
	  "the recipient" },
	{ SG_MILTER_SMFIR_SHUTDOWN, "shutdown", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_ACCEPT, "accept", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_REPLBODY, "replace body", SHAPE_BODY, NULL },
	{ SG_MILTER_SMFIR_CONTINUE, "continue", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_DISCARD, "discard", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_CHGFROM, "change sender", SHAPE_ADDRESS_ARGS, "the sender" },
	{ SG_MILTER_SMFIR_CONN_FAIL, "connection fail", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_ADDHEADER, "add header", SHAPE_HEADER, NULL },
	{ SG_MILTER_SMFIR_INSHEADER, "insert header", SHAPE_INDEXED_HEADER, NULL },
	{ SG_MILTER_SMFIR_SETSYMLIST, "set macro list", SHAPE_MISPLACED, NULL },
	{ SG_MILTER_SMFIR_CHGHEADER, "change header", SHAPE_INDEXED_HEADER, NULL },
	{ SG_MILTER_SMFIR_PROGRESS, "progress", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_QUARANTINE, "quarantine", SHAPE_REASON, "the quarantine reason" },
	{ SG_MILTER_SMFIR_REJECT, "reject", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_SKIP, "skip", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_TEMPFAIL, "tempfail", SHAPE_NONE, NULL },
	{ SG_MILTER_SMFIR_REPLYCODE, "replycode", SHAPE_REPLYCODE, NULL },
	{ SG_MILTER_SMFIC_OPTNEG, "optneg", SHAPE_OPTNEG, NULL },
};

static const struct reply_kind *reply_kind_of(int cmd)
{
	for (size_t i = 0; i < sizeof(reply_kinds) / sizeof(reply_kinds[0]); i++)
		if (reply_kinds[i].cmd == cmd)
			return &reply_kinds[i];
	return NULL;
}

const char *sg_milter_reply_name(int cmd)
{
	const struct reply_kind *kind = reply_kind_of(cmd);

	return kind ? kind->name : NULL;
}

static const char *const stage_names[SG_MILTER_MACRO_STAGES] = {
	"connect", "helo", "mail", "rcpt", "data", "end of message", "end of headers",
};

static int fail(struct sg_milter_decoder *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(struct sg_milter_decoder *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->error, sizeof(d->error), fmt, ap);
	va_end(ap);
	d->failed = 1;
	return -1;
}

/* Up to 48 bytes of s for an error message, between quotes: anything
 * not printable, a backslash or a quote as \xHH, so the message stays one
 * unambiguous line whatever the milter sent. */
static const char *quoted(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t w = 0, shown = len > 48 ? 48 : len;

	for (size_t i = 0; i < shown && w + 5 < dstlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'')
			dst[w++] = (char)c;
		else
			w += (size_t)snprintf(dst + w, dstlen - w, "\\x%02x", c);
	}
	if (shown < len && w + 4 < dstlen) {
		memcpy(dst + w, "...", 3);
		w += 3;
	}
	dst[w < dstlen ? w : dstlen - 1] = '\0';
	return dst;
}

/* A cursor over a reply's data. */
struct cursor {
	char *p;
	size_t left;
	size_t at;		/* offset of p in the data, for errors */
};

static void cursor_skip(struct cursor *c, size_t n)
{
	c->p += n;
	c->left -= n;
	c->at += n;
}

static int take_u32(struct cursor *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = get_be32(c->p);
	cursor_skip(c, 4);
	return 0;
}

static int take_string(struct cursor *c, const char **s)
{
	char *nul = memchr(c->p, '\0', c->left);

	if (!nul)
		return -1;
	*s = c->p;
	cursor_skip(c, (size_t)(nul - c->p) + 1);
	return 0;
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

#define RFAIL(d, cmd, fmt, ...) fail((d), "milter reply '%c': " fmt, (cmd), ##__VA_ARGS__)

/* RFC 5321: a reply line is at most 512 bytes with its CRLF. */
#define SMTP_REPLY_LINE_MAX 512

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* An RFC 3463 enhanced status code at the start of text: class.subject.
 * detail (1-3 digits each), then a space or the line's end; its length, or
 * 0 when there is none. */
static size_t enhanced_code_len(const char *text, size_t len)
{
	size_t i = 0;

	if (len < 5 || !is_digit(text[0]) || text[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;

		while (i < len && is_digit(text[i]) && digits < 4) {
			i++;
			digits++;
		}
		if (digits == 0 || digits > 3)
			return 0;
		if (part == 0) {
			if (i >= len || text[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && text[i] != ' ')
		return 0;
	return i;
}

/* sendmail reads a reply as a format string, so milters double '%';
 * undone in place as Postfix does it: "%%" is '%', a lone '%' goes. */
static size_t undo_percent(char *s, size_t n)
{
	size_t r = 0, w = 0;

	while (r < n) {
		char c = s[r++];

		if (c == '%') {
			if (r >= n)
				break;
			c = s[r++];
		}
		s[w++] = c;
	}
	s[w] = '\0';
	return w;
}

static int check_reply_line(struct sg_milter_decoder *d, struct sg_milter_replycode *rc,
			    const char *line, size_t len, unsigned lineno, int final)
{
	char q[256], qsep[8];
	char sep = len > 3 ? line[3] : '\0';
	const char *text = line + (len > 3 ? 4 : len);
	size_t text_len = len > 3 ? len - 4 : 0, ecl;

	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
		return RFAIL(d, 'y', "replycode '%s' does not start with a 3-digit code",
			     quoted(q, sizeof(q), line, len));
	if (line[0] != '4' && line[0] != '5')
		return RFAIL(d, 'y', "replycode '%s' is not a 4xx or 5xx reply",
			     quoted(q, sizeof(q), line, len));
	if (lineno == 1)
		rc->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	else if (memcmp(line, rc->smtp, 3) != 0)
		return RFAIL(d, 'y', "replycode line %u '%s' has code %.3s, line 1 has %d", lineno,
			     quoted(q, sizeof(q), line, len), line, rc->code);
	if (len > 3 && sep != ' ' && sep != '-')
		return RFAIL(d, 'y', "replycode line %u '%s' has '%s' after its code, not a space, '-' or its end",
			     lineno, quoted(q, sizeof(q), line, len),
			     quoted(qsep, sizeof(qsep), &sep, 1));
	if (sep == '-' && final)
		return RFAIL(d, 'y', "replycode's last line '%s' continues with '-'",
			     quoted(q, sizeof(q), line, len));
	if (sep != '-' && !final)
		return RFAIL(d, 'y', "replycode line %u '%s' has no '-' after its code, yet more lines follow",
			     lineno, quoted(q, sizeof(q), line, len));
	ecl = enhanced_code_len(text, text_len);
	if (ecl && text[0] != line[0])
		return RFAIL(d, 'y', "replycode '%s' has enhanced status class %c in a %cxx reply",
			     quoted(q, sizeof(q), line, len), text[0], line[0]);
	if (lineno == 1) {
		if (ecl) {
			memcpy(rc->enhanced, text, ecl);
			rc->enhanced[ecl] = '\0';
			text += ecl;
			text_len -= ecl;
			if (text_len) {
				text++;
				text_len--;
			}
		}
		rc->text = text;
		rc->text_len = text_len;
	}
	return 0;
}

/* 'y': one SMTP reply, NUL-terminated, every line "ddd-" but the last
 * ("ddd ", or "ddd" alone), the same 4xx or 5xx code on each, lines
 * joined by CRLF and no other control character: what the relay may give
 * the client as it is. */
static int parse_replycode(struct sg_milter_decoder *d, char *s, size_t len,
			   struct sg_milter_replycode *rc)
{
	char *nul;
	size_t n, start = 0;
	unsigned lineno = 1;

	if (len == 0 || s[len - 1] != '\0')
		return RFAIL(d, 'y', "the reply code is not NUL-terminated");
	nul = memchr(s, '\0', len);
	if ((size_t)(nul - s) != len - 1)
		return RFAIL(d, 'y', "%zu byte%s after the reply code's NUL at byte %zu",
			     len - 1 - (size_t)(nul - s), plural(len - 1 - (size_t)(nul - s)),
			     (size_t)(nul - s));
	n = undo_percent(s, len - 1);
	if (n == 0)
		return RFAIL(d, 'y', "the reply code is empty");
	rc->smtp = s;
	rc->smtp_len = n;
	for (;;) {
		size_t end = start;
		int final;

		while (end < n && s[end] != '\r' && s[end] != '\n') {
			unsigned char c = (unsigned char)s[end];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return RFAIL(d, 'y', "replycode line %u has control character 0x%02x at byte %zu",
					     lineno, c, end);
			end++;
		}
		final = end == n;
		if (!final && (s[end] != '\r' || end + 1 >= n || s[end + 1] != '\n'))
			return RFAIL(d, 'y', "replycode line %u has a bare %s at byte %zu", lineno,
				     s[end] == '\r' ? "CR" : "LF", end);
		if (end - start + 2 > SMTP_REPLY_LINE_MAX)
			return RFAIL(d, 'y', "replycode line %u is %zu bytes, over SMTP's %d with its CRLF",
				     lineno, end - start + 2, SMTP_REPLY_LINE_MAX);
		if (!final && end + 2 == n)
			return RFAIL(d, 'y', "replycode ends with a line break");
		if (check_reply_line(d, rc, s + start, end - start, lineno, final) != 0)
			return -1;
		if (final)
			break;
		start = end + 2;
		lineno++;
	}
	rc->lines = lineno;
	return 0;
}

/* A header field name (RFC 5322 ftext): printable, no space, no colon. */
static int check_header_name(struct sg_milter_decoder *d, char cmd, const char *name)
{
	char q[256];
	size_t len = strlen(name);

	if (len == 0)
		return RFAIL(d, cmd, "the header name is empty");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 33 || c > 126 || c == ':')
			return RFAIL(d, cmd, "header name '%s' has byte 0x%02x at %zu, not a field name character",
				     quoted(q, sizeof(q), name, len), c, i);
	}
	return 0;
}

static int no_trailing(struct sg_milter_decoder *d, char cmd, const struct cursor *c,
		       const char *after)
{
	if (c->left)
		return RFAIL(d, cmd, "%zu byte%s after %s", c->left, plural(c->left), after);
	return 0;
}

static int parse_header(struct sg_milter_decoder *d, char cmd, struct cursor *c, int indexed,
			struct sg_milter_header_edit *h)
{
	if (indexed && take_u32(c, &h->index) != 0)
		return RFAIL(d, cmd, "the header index is cut short (%zu of 4 bytes)", c->left);
	if (take_string(c, &h->name) != 0)
		return RFAIL(d, cmd, "the header name is not NUL-terminated");
	if (check_header_name(d, cmd, h->name) != 0)
		return -1;
	if (take_string(c, &h->value) != 0)
		return RFAIL(d, cmd, "the header value is not NUL-terminated");
	return no_trailing(d, cmd, c, "the header value");
}

static int parse_address(struct sg_milter_decoder *d, const struct reply_kind *kind,
			 struct cursor *c, struct sg_milter_address *a)
{
	char cmd = kind->cmd;

	if (take_string(c, &a->addr) != 0)
		return RFAIL(d, cmd, "%s is not NUL-terminated", kind->field);
	if (a->addr[0] == '\0')
		return RFAIL(d, cmd, "%s is empty", kind->field);
	if (kind->shape == SHAPE_ADDRESS_ARGS && c->left) {
		if (take_string(c, &a->args) != 0)
			return RFAIL(d, cmd, "the ESMTP arguments are not NUL-terminated");
		return no_trailing(d, cmd, c, "the ESMTP arguments");
	}
	return no_trailing(d, cmd, c, kind->field);
}

/* 'O': version, actions, protocol flags; from version 6, macro lists:
 * a stage (SMFIM_*) and its space-separated macro names, per stage once. */
static int parse_optneg(struct sg_milter_decoder *d, struct cursor *c, struct sg_milter_optneg *o)
{
	const char cmd = SG_MILTER_SMFIC_OPTNEG;

	if (c->left < SG_MILTER_OPTLEN)
		return RFAIL(d, cmd, "%zu data bytes, the optneg reply needs 12 (version, actions, protocol flags)",
			     c->left);
	take_u32(c, &o->version);
	take_u32(c, &o->actions);
	take_u32(c, &o->protocol);
	if (o->version < SG_MILTER_VERSION_MIN || o->version > SG_MILTER_VERSION)
		return RFAIL(d, cmd, "protocol version %u is not one of %d..%d", (unsigned)o->version,
			     SG_MILTER_VERSION_MIN, SG_MILTER_VERSION);
	if (c->left && o->version < 6)
		return RFAIL(d, cmd, "%zu byte%s after the flags of a version %u reply (macro lists need version 6)",
			     c->left, plural(c->left), (unsigned)o->version);
	while (c->left) {
		uint32_t stage;
		size_t at = c->at;
		const char *list;

		if (take_u32(c, &stage) != 0)
			return RFAIL(d, cmd, "the macro stage at byte %zu is cut short (%zu of 4 bytes)",
				     at, c->left);
		if (stage >= SG_MILTER_MACRO_STAGES)
			return RFAIL(d, cmd, "macro stage %u at byte %zu is not one of 0..%d",
				     (unsigned)stage, at, SG_MILTER_MACRO_STAGES - 1);
		if (o->macros[stage])
			return RFAIL(d, cmd, "macro stage %u (%s) is listed twice", (unsigned)stage,
				     stage_names[stage]);
		if (take_string(c, &list) != 0)
			return RFAIL(d, cmd, "the macro list of stage %u (%s) is not NUL-terminated",
				     (unsigned)stage, stage_names[stage]);
		for (const char *p = list; *p; p++) {
			unsigned char ch = (unsigned char)*p;

			if (ch < 0x20 || ch > 0x7e)
				return RFAIL(d, cmd, "the macro list of stage %u (%s) has byte 0x%02x at %zu",
					     (unsigned)stage, stage_names[stage], ch,
					     (size_t)(p - list));
		}
		o->macros[stage] = list;
	}
	return 0;
}

/* As soon as the command byte is in: a reply that cannot be is refused
 * before its data is waited for. */
static int check_command(struct sg_milter_decoder *d)
{
	unsigned char cmd = (unsigned char)d->buf[0];
	const struct reply_kind *kind = reply_kind_of(cmd);
	size_t data_len = d->packet_len - 1;

	if (!kind) {
		if (cmd >= 0x20 && cmd < 0x7f)
			return fail(d, "milter reply: unknown reply '%c' (0x%02x)", cmd, cmd);
		return fail(d, "milter reply: unknown reply 0x%02x", cmd);
	}
	if (kind->shape == SHAPE_MISPLACED)
		return RFAIL(d, cmd, "a macro list (%s) comes only inside the optneg reply", kind->name);
	if (kind->shape == SHAPE_NONE && data_len)
		return RFAIL(d, cmd, "%s takes no data, yet %zu byte%s came", kind->name, data_len,
			     plural(data_len));
	return 0;
}

static int parse_reply(struct sg_milter_decoder *d, struct sg_milter_reply *out)
{
	const struct reply_kind *kind = reply_kind_of((unsigned char)d->buf[0]);
	struct cursor c = { d->buf + 1, d->packet_len - 1, 0 };

	memset(out, 0, sizeof(*out));
	out->cmd = kind->cmd;
	out->data = c.p;
	out->len = c.left;
	switch (kind->shape) {
	case SHAPE_NONE:
	case SHAPE_BODY:
		return 0;
	case SHAPE_REPLYCODE:
		return parse_replycode(d, c.p, c.left, &out->replycode);
	case SHAPE_REASON:
		if (take_string(&c, &out->reason) != 0)
			return RFAIL(d, kind->cmd, "%s is not NUL-terminated", kind->field);
		return no_trailing(d, kind->cmd, &c, kind->field);
	case SHAPE_HEADER:
	case SHAPE_INDEXED_HEADER:
		return parse_header(d, kind->cmd, &c, kind->shape == SHAPE_INDEXED_HEADER,
				    &out->header);
	case SHAPE_ADDRESS:
	case SHAPE_ADDRESS_ARGS:
		return parse_address(d, kind, &c, &out->address);
	case SHAPE_OPTNEG:
		return parse_optneg(d, &c, &out->optneg);
	default:
		return fail(d, "milter reply: internal error on reply 0x%02x", (unsigned char)kind->cmd);
	}
}

void sg_milter_decoder_init(struct sg_milter_decoder *d, char *storage, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->buf = storage;
	d->limit = size < SG_MILTER_REPLY_MAX ? size : SG_MILTER_REPLY_MAX;
}

static const char *limit_text(char *dst, size_t dstlen, size_t limit)
{
	if (limit && limit % (1024 * 1024) == 0)
		snprintf(dst, dstlen, "%zu MiB", limit / (1024 * 1024));
	else if (limit && limit % 1024 == 0)
		snprintf(dst, dstlen, "%zu KiB", limit / 1024);
	else
		snprintf(dst, dstlen, "%zu-byte", limit);
	return dst;
}

int sg_milter_decode(struct sg_milter_decoder *d, const char *data, size_t n, size_t *used,
		     struct sg_milter_reply *out)
{
	size_t pos = 0;
	int result = SG_MILTER_NEED_MORE;

	*used = 0;
	if (d->failed)
		return SG_MILTER_ERROR;
	while (pos < n) {
		if (d->len_have < SG_MILTER_LEN_BYTES) {
			if (d->len_have == 0)
				d->packet_offset = d->offset + pos;
			d->len_bytes[d->len_have++] = (unsigned char)data[pos++];
			if (d->len_have < SG_MILTER_LEN_BYTES)
				continue;
			d->packet_len = get_be32(d->len_bytes);
			d->have = 0;
			d->cmd_checked = 0;
			if (d->packet_len == 0) {
				fail(d, "milter reply: length 0");
				result = SG_MILTER_ERROR;
				break;
			}
			if (d->packet_len > d->limit) {
				char lim[32];

				fail(d, "milter reply: length %zu over the %s limit", d->packet_len,
				     limit_text(lim, sizeof(lim), d->limit));
				result = SG_MILTER_ERROR;
				break;
			}
			continue;
		}
		{
			size_t take = d->packet_len - d->have;

			if (take > n - pos)
				take = n - pos;
			memcpy(d->buf + d->have, data + pos, take);
			d->have += take;
			pos += take;
		}
		if (!d->cmd_checked) {
			d->cmd_checked = 1;
			if (check_command(d) != 0) {
				result = SG_MILTER_ERROR;
				break;
			}
		}
		if (d->have == d->packet_len) {
			d->len_have = 0;
			if (parse_reply(d, out) != 0) {
				result = SG_MILTER_ERROR;
			} else {
				d->replies++;
				result = SG_MILTER_REPLY;
			}
			d->have = 0;
			d->packet_len = 0;
			break;
		}
	}
	*used = pos;
	d->offset += pos;
	return result;
}

const char *sg_milter_decoder_error(const struct sg_milter_decoder *d)
{
	return d->failed ? d->error : NULL;
}

size_t sg_milter_decoder_pending(const struct sg_milter_decoder *d)
{
	if (d->len_have < SG_MILTER_LEN_BYTES)
		return d->len_have;
	return d->len_have + d->have;
}
