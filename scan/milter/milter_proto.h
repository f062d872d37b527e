/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * milter_proto.h - the Sendmail milter protocol, version 6, from the MTA's
 * side, as Postfix's milter8.c speaks it: the codec under the milter
 * client (scan/milter.c owns the socket and the loop). Pure functions over
 * memory: no sockets, no clocks, no allocation while decoding.
 *
 * A packet is a 4-byte big-endian length (the command byte and its data),
 * the command byte, the data. Numbers are 32-bit big-endian, strings
 * NUL-terminated.
 *
 *  - Encoders (sg_milter_put_*) append one whole packet for each command
 *    the MTA sends to a caller's buffer, or nothing and -1: it would not
 *    fit, a string holds a NUL, an argument libmilter would refuse.
 *  - The decoder (sg_milter_decode) takes what the milter sends in slices
 *    of any size and hands back complete replies one at a time, every field
 *    checked against what a lying milter could send (lengths, terminators,
 *    trailing bytes, the SMTP reply of 'y', the optneg reply), with a
 *    precise error that names what is wrong and where. After an error the
 *    stream cannot be resynchronised: the decoder stays failed.
 *  - sg_milter_wants says, from the negotiated version and protocol flags,
 *    whether an event is sent and whether a reply to it is awaited;
 *    sg_milter_mta_offer builds the optneg request Postfix 3.x sends for
 *    version 6 and sg_milter_check_optneg checks the milter's answer to it.
 *
 * What a reply carries is checked for framing and form, not trusted: a
 * header value, a quarantine reason or an address may still hold bytes
 * that need escaping before they are logged.
 */
#ifndef SMTPGUARD_MILTER_PROTO_H
#define SMTPGUARD_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Framing and sizes (libmilter's mfdef.h). */
#define SG_MILTER_LEN_BYTES	4		/* MILTER_LEN_BYTES: a 32-bit number */
#define SG_MILTER_OPTLEN	12		/* MILTER_OPTLEN: version, actions, protocol */
#define SG_MILTER_CHUNK_SIZE	65535		/* MILTER_CHUNK_SIZE: one body chunk */
/* MILTER_MAX_DATA_SIZE: libmilter drops the connection on a command whose
 * data is longer, so no encoder writes more. */
#define SG_MILTER_MAX_DATA	65535
/* The longest reply packet (its length field) the decoder takes: a 'b'
 * body replacement chunk is the only large reply a milter sends. */
#define SG_MILTER_REPLY_MAX	(1024 * 1024)
#define SG_MILTER_VERSION	6		/* SMFI_PROT_VERSION */
#define SG_MILTER_VERSION_MIN	2		/* the oldest libmilter negotiates */

/* Commands, MTA to milter (SMFIC_*). */
#define SG_MILTER_SMFIC_ABORT		'A'	/* abort the message */
#define SG_MILTER_SMFIC_BODY		'B'	/* a body chunk */
#define SG_MILTER_SMFIC_CONNECT		'C'	/* connection information */
#define SG_MILTER_SMFIC_MACRO		'D'	/* macros for the next command */
#define SG_MILTER_SMFIC_BODYEOB		'E'	/* end of the message */
#define SG_MILTER_SMFIC_HELO		'H'	/* HELO/EHLO */
#define SG_MILTER_SMFIC_QUIT_NC		'K'	/* QUIT, a new connection follows (v6) */
#define SG_MILTER_SMFIC_HEADER		'L'	/* one header */
#define SG_MILTER_SMFIC_MAIL		'M'	/* MAIL FROM */
#define SG_MILTER_SMFIC_EOH		'N'	/* end of the headers */
#define SG_MILTER_SMFIC_OPTNEG		'O'	/* option negotiation (also the milter's answer) */
#define SG_MILTER_SMFIC_QUIT		'Q'	/* QUIT */
#define SG_MILTER_SMFIC_RCPT		'R'	/* RCPT TO */
#define SG_MILTER_SMFIC_DATA		'T'	/* DATA (v4) */
#define SG_MILTER_SMFIC_UNKNOWN		'U'	/* an unknown SMTP command (v3) */

/* Replies, milter to MTA (SMFIR_*). */
#define SG_MILTER_SMFIR_ADDRCPT		'+'	/* add a recipient */
#define SG_MILTER_SMFIR_DELRCPT		'-'	/* remove a recipient */
#define SG_MILTER_SMFIR_ADDRCPT_PAR	'2'	/* add a recipient with ESMTP arguments */
#define SG_MILTER_SMFIR_SHUTDOWN	'4'	/* 421: shut the connection down */
#define SG_MILTER_SMFIR_ACCEPT		'a'	/* accept */
#define SG_MILTER_SMFIR_REPLBODY	'b'	/* replace the body (a chunk of it) */
#define SG_MILTER_SMFIR_CONTINUE	'c'	/* continue */
#define SG_MILTER_SMFIR_DISCARD		'd'	/* accept and discard */
#define SG_MILTER_SMFIR_CHGFROM		'e'	/* change the sender (v6) */
#define SG_MILTER_SMFIR_CONN_FAIL	'f'	/* fail the connection (v6) */
#define SG_MILTER_SMFIR_ADDHEADER	'h'	/* append a header */
#define SG_MILTER_SMFIR_INSHEADER	'i'	/* insert a header at an index */
#define SG_MILTER_SMFIR_SETSYMLIST	'l'	/* macro list: only inside the optneg reply */
#define SG_MILTER_SMFIR_CHGHEADER	'm'	/* change (empty value: delete) a header */
#define SG_MILTER_SMFIR_PROGRESS	'p'	/* still working: wait on */
#define SG_MILTER_SMFIR_QUARANTINE	'q'	/* quarantine, with a reason */
#define SG_MILTER_SMFIR_REJECT		'r'	/* reject (550 5.7.1) */
#define SG_MILTER_SMFIR_SKIP		's'	/* send no more of this event (body chunks) */
#define SG_MILTER_SMFIR_TEMPFAIL	't'	/* tempfail (451 4.7.1) */
#define SG_MILTER_SMFIR_REPLYCODE	'y'	/* reject or tempfail with this SMTP reply */

/* Actions the MTA allows and the milter asks for (SMFIF_*). */
#define SG_MILTER_SMFIF_ADDHDRS		0x00000001u	/* add headers */
#define SG_MILTER_SMFIF_CHGBODY		0x00000002u	/* replace the body */
#define SG_MILTER_SMFIF_ADDRCPT		0x00000004u	/* add recipients */
#define SG_MILTER_SMFIF_DELRCPT		0x00000008u	/* delete recipients */
#define SG_MILTER_SMFIF_CHGHDRS		0x00000010u	/* change or delete headers */
#define SG_MILTER_SMFIF_QUARANTINE	0x00000020u	/* quarantine */
#define SG_MILTER_SMFIF_CHGFROM		0x00000040u	/* change the sender (v6) */
#define SG_MILTER_SMFIF_ADDRCPT_PAR	0x00000080u	/* add recipients with arguments (v6) */
#define SG_MILTER_SMFIF_SETSYMLIST	0x00000100u	/* name the macros it wants (v6) */
#define SG_MILTER_SMFI_V2_ACTS		0x0000003Fu
#define SG_MILTER_SMFI_CURR_ACTS	0x000001FFu

/* Protocol flags (SMFIP_*): events the milter does not want (NO*),
 * replies it will not send (NR_*), and what the MTA can do. */
#define SG_MILTER_SMFIP_NOCONNECT	0x00000001u
#define SG_MILTER_SMFIP_NOHELO		0x00000002u
#define SG_MILTER_SMFIP_NOMAIL		0x00000004u
#define SG_MILTER_SMFIP_NORCPT		0x00000008u
#define SG_MILTER_SMFIP_NOBODY		0x00000010u
#define SG_MILTER_SMFIP_NOHDRS		0x00000020u
#define SG_MILTER_SMFIP_NOEOH		0x00000040u
#define SG_MILTER_SMFIP_NR_HDR		0x00000080u	/* also SMFIP_NOHREPL */
#define SG_MILTER_SMFIP_NOUNKNOWN	0x00000100u
#define SG_MILTER_SMFIP_NODATA		0x00000200u
#define SG_MILTER_SMFIP_SKIP		0x00000400u	/* the MTA understands SMFIR_SKIP */
#define SG_MILTER_SMFIP_RCPT_REJ	0x00000800u	/* send rejected recipients too */
#define SG_MILTER_SMFIP_NR_CONN		0x00001000u
#define SG_MILTER_SMFIP_NR_HELO		0x00002000u
#define SG_MILTER_SMFIP_NR_MAIL		0x00004000u
#define SG_MILTER_SMFIP_NR_RCPT		0x00008000u
#define SG_MILTER_SMFIP_NR_DATA		0x00010000u
#define SG_MILTER_SMFIP_NR_UNKN		0x00020000u
#define SG_MILTER_SMFIP_NR_EOH		0x00040000u
#define SG_MILTER_SMFIP_NR_BODY		0x00080000u
#define SG_MILTER_SMFIP_HDR_LEADSPC	0x00100000u	/* header values keep their leading space */
#define SG_MILTER_SMFIP_MDS_256K	0x10000000u	/* sendmail's larger commands: never offered */
#define SG_MILTER_SMFIP_MDS_1M		0x20000000u
#define SG_MILTER_SMFI_V2_PROT		0x0000007Fu
#define SG_MILTER_SMFI_CURR_PROT	0x001FFFFFu	/* every protocol flag of version 6 */

/* Address families of SMFIC_CONNECT (SMFIA_*). */
#define SG_MILTER_SMFIA_UNKNOWN		'U'	/* no port, no address follow */
#define SG_MILTER_SMFIA_UNIX		'L'
#define SG_MILTER_SMFIA_INET		'4'
#define SG_MILTER_SMFIA_INET6		'6'

/* Macro stages of the optneg reply's macro lists (SMFIM_*), and the
 * SMFIC_MACRO command letter each one's macros go with. */
#define SG_MILTER_SMFIM_CONNECT		0	/* 'C' */
#define SG_MILTER_SMFIM_HELO		1	/* 'H' */
#define SG_MILTER_SMFIM_ENVFROM		2	/* 'M' */
#define SG_MILTER_SMFIM_ENVRCPT		3	/* 'R' */
#define SG_MILTER_SMFIM_DATA		4	/* 'T' */
#define SG_MILTER_SMFIM_EOM		5	/* 'E' */
#define SG_MILTER_SMFIM_EOH		6	/* 'N' */
#define SG_MILTER_MACRO_STAGES		7

/* ---- encoding ---- */

/* The caller's output buffer. Bounded (growable 0): a packet that does not
 * fit in cap is refused. Growable: data is realloc()ed as needed (the
 * caller frees it). Either way a refused packet leaves len as it was. */
struct sg_milter_buf {
	char *data;
	size_t len, cap;
	int growable;
};

/* A string argument with its length: what comes off the wire may hold a
 * NUL, which the protocol cannot carry, so the encoders see and refuse it. */
struct sg_milter_str {
	const char *s;
	size_t len;
};

#define SG_MILTER_STR(cstr) ((struct sg_milter_str){ (cstr), __builtin_strlen(cstr) })

struct sg_milter_macro {
	struct sg_milter_str name;	/* "j", "{daemon_name}", ...: not empty */
	struct sg_milter_str value;
};

/* Each appends one packet: 0, or -1 (nothing appended) when it would not
 * fit, when its data would pass SG_MILTER_MAX_DATA, when a string holds a
 * NUL, or for an argument named below. */
int sg_milter_put_optneg(struct sg_milter_buf *b, uint32_t version, uint32_t actions,
			 uint32_t protocol);
/* The macros sent before command cmd, one of 'C' 'H' 'M' 'R' 'T' 'E' 'N'
 * (libmilter fails on any other), at least one pair. */
int sg_milter_put_macros(struct sg_milter_buf *b, char cmd, const struct sg_milter_macro *macros,
			 size_t n);
/* family: SG_MILTER_SMFIA_*. INET and INET6 need a numeric address of
 * their family; UNIX sends addr as the socket's path (Postfix sends port
 * 0); UNKNOWN sends the hostname alone. */
int sg_milter_put_connect(struct sg_milter_buf *b, struct sg_milter_str hostname, char family,
			  uint16_t port, struct sg_milter_str addr);
int sg_milter_put_helo(struct sg_milter_buf *b, struct sg_milter_str helo);
/* args[0]: the address in angle brackets as the client gave it, then its
 * ESMTP parameters; at least one. */
int sg_milter_put_mail(struct sg_milter_buf *b, const struct sg_milter_str *args, size_t n);
int sg_milter_put_rcpt(struct sg_milter_buf *b, const struct sg_milter_str *args, size_t n);
int sg_milter_put_data(struct sg_milter_buf *b);
/* name not empty. Unless the milter asked for SMFIP_HDR_LEADSPC, the caller
 * drops the one space after the colon from the value, as Postfix and
 * sendmail do: milters expect it so. */
int sg_milter_put_header(struct sg_milter_buf *b, struct sg_milter_str name,
			 struct sg_milter_str value);
int sg_milter_put_eoh(struct sg_milter_buf *b);
/* At most SG_MILTER_CHUNK_SIZE bytes. */
int sg_milter_put_body(struct sg_milter_buf *b, const void *chunk, size_t len);
int sg_milter_put_eom(struct sg_milter_buf *b);
int sg_milter_put_abort(struct sg_milter_buf *b);
int sg_milter_put_quit(struct sg_milter_buf *b);
int sg_milter_put_quit_nc(struct sg_milter_buf *b);
/* The unknown command's line, without its CRLF. */
int sg_milter_put_unknown(struct sg_milter_buf *b, struct sg_milter_str line);

/* ---- negotiation ---- */

struct sg_milter_optneg {
	uint32_t version;
	uint32_t actions;	/* SG_MILTER_SMFIF_* */
	uint32_t protocol;	/* SG_MILTER_SMFIP_* */
	/* per SMFIM stage, the space-separated macro names the milter wants
	 * sent with it (may be ""), or NULL when it named none */
	const char *macros[SG_MILTER_MACRO_STAGES];
};

/* The request the MTA opens with: what Postfix 3.x offers for version 6
 * (version 6, SG_MILTER_SMFI_CURR_ACTS, SG_MILTER_SMFI_CURR_PROT); the
 * .c file says why each is offered. */
void sg_milter_mta_offer(struct sg_milter_optneg *offer);
/* The milter's optneg reply against the offer: 0, or -1 with err when it
 * speaks a later version or takes an action or a protocol flag that was not
 * offered (Postfix fails the milter on the first two; libmilter never sends
 * the third). */
int sg_milter_check_optneg(const struct sg_milter_optneg *offer,
			   const struct sg_milter_optneg *reply, char *err, size_t errlen);

/* The MTA's events, for sg_milter_wants. */
enum sg_milter_event {
	SG_MILTER_EV_CONNECT,
	SG_MILTER_EV_HELO,
	SG_MILTER_EV_MAIL,
	SG_MILTER_EV_RCPT,
	SG_MILTER_EV_RCPT_REJECTED,	/* a recipient the MX refused */
	SG_MILTER_EV_DATA,
	SG_MILTER_EV_HEADER,
	SG_MILTER_EV_EOH,
	SG_MILTER_EV_BODY,
	SG_MILTER_EV_EOM,
	SG_MILTER_EV_UNKNOWN,
	SG_MILTER_EV_MACROS,
	SG_MILTER_EV_ABORT,
	SG_MILTER_EV_QUIT,
	SG_MILTER_EV_QUIT_NC,
	SG_MILTER_EV_COUNT
};

#define SG_MILTER_SEND		1u	/* the event is sent */
#define SG_MILTER_AWAIT_REPLY	2u	/* and a reply to it awaited */

/* What to do with an event, given the negotiated version and protocol
 * flags: SG_MILTER_SEND and SG_MILTER_AWAIT_REPLY or'ed, or 0. Events the
 * version does not have (DATA before 4, UNKNOWN before 3, QUIT_NC before
 * 6) are not sent; a milter that says NR_* is not waited for, whichever
 * version it speaks, since it will not answer. */
unsigned sg_milter_wants(uint32_t version, uint32_t protocol, enum sg_milter_event ev);

/* ---- decoding ---- */

enum {
	SG_MILTER_ERROR = -1,
	SG_MILTER_NEED_MORE = 0,
	SG_MILTER_REPLY = 1,
};

struct sg_milter_replycode {
	int code;		/* 400-599 */
	char enhanced[12];	/* the first line's "5.7.1", or "" */
	const char *text;	/* the first line past its code and enhanced code */
	size_t text_len;	/* (text is not NUL-terminated when lines follow) */
	const char *smtp;	/* the whole reply, lines joined by CRLF, no final
				 * CRLF, NUL-terminated, with sendmail's "%%"
				 * undone as Postfix does */
	size_t smtp_len;
	unsigned lines;
};

struct sg_milter_header_edit {
	uint32_t index;		/* 'i', 'm': 1 is the first of that name ('i': 0 the top) */
	const char *name;	/* a field name: not empty, no ':' */
	const char *value;	/* 'm': "" deletes the header */
};

struct sg_milter_address {
	const char *addr;	/* not empty */
	const char *args;	/* '2', 'e': the ESMTP arguments, or NULL */
};

/* One reply. Its pointers are into the decoder's storage, valid until the
 * next sg_milter_decode call; only the member of its cmd is set. */
struct sg_milter_reply {
	char cmd;		/* SG_MILTER_SMFIR_*, or SG_MILTER_SMFIC_OPTNEG */
	const char *data;	/* its data (past the command byte) */
	size_t len;		/* 'b': the replacement body chunk is data, len */
	struct sg_milter_replycode replycode;	/* 'y' */
	struct sg_milter_header_edit header;	/* 'h' 'i' 'm' */
	const char *reason;			/* 'q' */
	struct sg_milter_address address;	/* '+' '-' '2' 'e' */
	struct sg_milter_optneg optneg;		/* 'O': version 2..6 */
};

#define SG_MILTER_ERROR_LEN 256

struct sg_milter_decoder {
	char *buf;			/* the caller's storage: one packet */
	size_t limit;			/* the longest packet taken */
	unsigned char len_bytes[SG_MILTER_LEN_BYTES];
	size_t len_have;
	size_t packet_len;		/* of the packet being read */
	size_t have;			/* its bytes in buf */
	int cmd_checked;
	int failed;
	uint64_t offset;		/* stream bytes taken so far */
	uint64_t packet_offset;		/* where the packet being read (or that failed) began */
	uint64_t replies;		/* replies decoded */
	char error[SG_MILTER_ERROR_LEN];
};

/* storage holds the packet being read; packets longer than size (or than
 * SG_MILTER_REPLY_MAX) are refused. SG_MILTER_REPLY_MAX bytes take every
 * reply a milter may send. */
void sg_milter_decoder_init(struct sg_milter_decoder *d, char *storage, size_t size);
/* Takes bytes from data[0..n) until a reply is complete: SG_MILTER_REPLY
 * with *out (*used >= 1 bytes taken; call again with the rest),
 * SG_MILTER_NEED_MORE (all n taken), or SG_MILTER_ERROR (the stream is
 * bad: sg_milter_decoder_error says why; every later call fails too).
 * *used <= n always. */
int sg_milter_decode(struct sg_milter_decoder *d, const char *data, size_t n, size_t *used,
		     struct sg_milter_reply *out);
const char *sg_milter_decoder_error(const struct sg_milter_decoder *d);
/* Bytes of an unfinished packet held: nonzero when the milter's stream
 * ends mid-reply. */
size_t sg_milter_decoder_pending(const struct sg_milter_decoder *d);

/* "continue", "replycode", ... for a reply's command byte, or NULL when
 * there is no such reply. */
const char *sg_milter_reply_name(int cmd);

#endif
