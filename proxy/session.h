/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * session.h - one relayed SMTP session: the VM's socket, the upstream socket
 * to the MX, four bounded buffers, and the relay's state. The worker
 * (worker.h) owns the sockets and runs them in its event loop; the relay
 * (relay.h) moves bytes between the buffers by the rules of SMTP. Memory
 * per session is fixed: this struct, with its four buffers.
 */
#ifndef SMTPGUARD_SESSION_H
#define SMTPGUARD_SESSION_H

#include <stddef.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <openssl/ssl.h>
#include "config.h"
#include "feedback.h"
#include "loop.h"
#include "scanner.h"
#include "tenancy.h"
#include "tenants.h"
#include "smtp.h"

/* The VM-to-MX direction carries bodies: larger reads and writes mean
 * fewer system calls and larger segments. Replies and commands fit in
 * the smaller ones (both hold the longest line the limits allow, 4000). */
#define SG_BODY_BUF	16384	/* vm_in, mx_out */
#define SG_REPLY_BUF	8192	/* mx_in, vm_out */
#define SG_MAX_PENDING	64	/* commands awaiting a reply (PIPELINING) */
#define SG_DRAIN_GRACE_NS 2000000000ull	/* how long an ended session waits for its peers' FIN */

/* A session's two peers: the index of fd[], io[], watch[] and the per-side
 * counts. */
enum sg_side { SIDE_VM = 0, SIDE_MX = 1 };

struct sg_buf {
	size_t len, cap;
	char *data;		/* in the session's storage */
};

enum relay_mode {
	RELAY_COMMANDS = 0,	/* VM lines are commands */
	RELAY_WAIT,		/* a sync point (DATA, STARTTLS, AUTH) awaits its reply */
	RELAY_AUTH_LINE,	/* the next VM line answers a 334 */
	RELAY_BODY,		/* DATA: the body streams to the MX, the dot withheld;
				 * BDAT: a chunk's bytes stream to the MX */
	RELAY_VERDICT,		/* the dot has come: withheld until the engines' verdict */
	RELAY_TUNNEL,		/* after STARTTLS: opaque bytes both ways */
	RELAY_REFUSED,		/* a message was refused: no upstream, local replies */
};

/* tls_mode terminate: where the two handshakes stand. The MX's comes first,
 * so the VM is told 220 only once TLS to the MX holds. */
enum tls_phase {
	TLS_NONE = 0,
	TLS_MX_HANDSHAKE,	/* the MX said 220 to STARTTLS; the proxy is its client */
	TLS_VM_GREETING,	/* the proxy's own 220 on its way to the VM */
	TLS_VM_HANDSHAKE,	/* the proxy is the VM's server, with the provider's certificate */
	TLS_ON,			/* both sides encrypted; SMTP starts over (EHLO) */
};

/* A passthrough tunnel's state per direction, by the side bytes come from. */
struct tunnel_dir {
	int pipe[2];		/* splice: read end, write end; -1 when not used */
	size_t in_pipe;		/* splice: bytes in the pipe */
	int shut;		/* the source ended and its end was passed on */
	/* sockmap: the kernel moves the bytes; userspace compares what this
	 * side received with what the other side was given, from these
	 * baselines, to pass an end on without losing a byte */
	uint64_t cookie;
	uint64_t recv_base;	/* tcpi_bytes_received of this side at the start */
	uint64_t sent_base;	/* bytes the other side had been given (acked + queued) */
	uint64_t extra;		/* bytes userspace gave the other side since (replies, leftovers) */
	uint64_t leftover;	/* bytes the relay had read of this side before the start */
	uint64_t lag;		/* bytes received, not yet given to the other side */
	uint64_t stalled_since_ns;	/* the lag has not moved since then; 0: moving */
	uint32_t kicks;		/* the watchdog woke the kernel's backlog */
};

#define SG_MAX_TX	2	/* transactions at once: one whose dot awaits its reply, the next */

/*
 * One mail transaction as the MX sees it (transaction.c): opened by the
 * MX's 2xx to MAIL, ended by its reply to the dot, an RSET, a new EHLO or
 * smtpguard's refusal. Under PIPELINING the VM may open the next while the
 * previous one's dot awaits its reply, so each keeps its own envelope and
 * counts; the replies that concern it find it by its id.
 */
enum tx_state {
	TX_FREE = 0,
	TX_OPENING,		/* MAIL sent, not yet answered */
	TX_OPEN,		/* the MX accepted MAIL: RCPTs and DATA apply to it */
	TX_BODY,		/* 354 (or its first BDAT): the body streams, then the dot
				 * (or its last chunk) waits for a verdict */
	TX_DOT,			/* the dot went to the MX: its reply is owed */
};

struct sg_tx {
	enum tx_state state;
	uint32_t id;		/* unique in the session: pending replies name it */
	char ref[24];		/* the message's reference id (from its 354) */
	char mail_from[512];
	char rcpt_domains[512];	/* the domains the MX accepted, comma-separated */
	char rcpt_asked[512];	/* the domains of the RCPTs sent (pending.domain_*) */
	char rcpt_asked_addrs[1024];	/* their addresses, one a line (pending.addr_*) */
	char rcpt_addrs[1024];	/* of those, the ones the MX accepted, one a line: the engines' */
	uint32_t rcpts_sent;	/* RCPTs relayed under it: smtp_recipient_limit */
	uint32_t rcpts_ok;	/* of those, accepted by the MX */
	int body_started;
	int chunked;		/* its body comes in BDAT chunks (RFC 3030), not DATA */
	char message_id[256];	/* at its dot, from the scan */
	char notes[SG_NOTES_LEN];	/* at its dot, what the engines noted */
	char body_fp[17];	/* at its dot, its body's fingerprint digest in hex ("" when
				 * the content engine made none): complaints find it by it */
	char reason[SG_REASON_LEN];	/* at its dot: why it went ("clean", or "accepted:
					 * ..." when scan_timeout_action let it through) */
	/* the first line of the MX's last refusal of one of its commands
	 * (a RCPT's 450, DATA's 554): a transaction that ends unsent says it */
	char mx_refusal[160];
	int evented;		/* its message event was written */
	uint64_t size;
	uint64_t body_ns;	/* when its 354 came */
	uint64_t dot_ns;	/* when its dot went out */
};

/* A reply the VM is owed, in order: the MX's answer to a command, or one
 * of the relay's own (has_local). */
struct pending {
	enum smtp_verb verb;
	int data_end;		/* the reply to the final dot */
	uint32_t tx_id;		/* the transaction it concerns (MAIL, RCPT, DATA, dot) */
	uint16_t domain_off;	/* RCPT: its domain in the transaction's rcpt_asked */
	uint8_t domain_len;
	uint16_t addr_off;	/* and its address in rcpt_asked_addrs */
	uint16_t addr_len;
	char local[160];
	int has_local;
	/* the MX's reply to the VM's last chunk, which went to it as a chunk
	 * like the others: its 2xx is not the VM's (the reply to BDAT 0 LAST,
	 * sent after the verdict, is) */
	int chunk_held;
};

struct session;
struct sg_tls;

/*
 * How one side's bytes move, read(2)/send(2)-like (>0, 0 at EOF, -1 with
 * errno, EAGAIN when it would block). Plain sockets now; the TLS modes
 * (terminate: OpenSSL on either side) bring their own, and the relay above
 * stays as it is.
 */
struct sg_io_ops {
	ssize_t (*read)(struct session *s, int side, void *buf, size_t len);
	ssize_t (*write)(struct session *s, int side, const void *buf, size_t len);
	/* a read shorter than asked took all there was (a socket); a TLS
	 * record at a time says nothing of what is left */
	int short_read_drains;
};
extern const struct sg_io_ops sg_io_plain;
extern const struct sg_io_ops sg_io_tls;

struct session {
	int fd[2];		/* SIDE_VM, SIDE_MX */
	const struct sg_io_ops *io[2];	/* how each side's bytes move */
	int vm_eof, mx_eof;
	int vm_gone;		/* the VM failed while a dot's reply was owed: the MX's is awaited */
	int vm_left_ungreeted;	/* the VM ended its side before the MX's greeting, silent */
	int mx_gone;		/* upstream closed on purpose (a refused message) */
	int mx_said_bye;	/* the MX's last word was a 221 or 421 */
	/* why smtpguard ended it, for its event ("mx_unreachable", ...);
	 * NULL: the peers ended it (QUIT, a close) */
	const char *end;
	char end_detail[96];
	int mx_errno;		/* the plain upstream failed (a reset, say) */
	enum relay_mode mode;	/* set by relay_set_mode: the metrics count sessions by it */
	int gauge;		/* the sessions gauge it is counted in (enum sg_psession) + 1; 0: none */
	int pend_head, pend_count;	/* of pending[], below */
	int discard_line;	/* skipping the rest of an over-long line */
	int close_after_flush;	/* end once vm_out is sent */
	int draining;		/* over: waiting for the peers to close first */
	uint64_t drain_deadline_ns;
	int drain_quit_match;	/* how much of a QUIT line the VM sent while draining */
	int drain_quit_answered;
	uint32_t commands;
	/* CHUNKING (RFC 3030), offered to the VM only as its MX offers it: the
	 * chunk whose bytes are coming, what of it is left, whether it is the
	 * VM's last (sent on as a chunk like the others: the MX commits only on
	 * the BDAT 0 LAST that follows the verdict), whether its bytes are
	 * dropped (answered here); the MX's replies to last chunks owed */
	int mx_chunking;
	uint64_t chunk_left;
	int chunk_last;
	int chunk_discard;
	int chunk_replies_held;
	uint64_t chunk_ns;		/* when the chunk's command came (smtp_min_data_rate) */
	uint64_t chunk_base;		/* the message's bytes before it */
	struct sg_tx tx[SG_MAX_TX];
	struct sg_tx *tx_cur;	/* the transaction the VM's RCPT and DATA apply to */
	uint32_t tx_ids;	/* the last id given */
	struct sg_scan scan;	/* of the transaction in TX_BODY */
	struct sg_timer scan_deadline;	/* RELAY_VERDICT: scan_timeout from the dot */
	int scan_timed_out;
	struct sg_timer wake;		/* run again from the loop: an engine answered, or a yield */
	size_t scan_chunk;		/* body bytes scanned at a time (relay_data.c) */
	char helo[256];		/* for the events: never the body */
	uint32_t messages, refused;
	uint64_t started_ns, last_active_ns;
	struct sg_generation *generation;	/* counted: cfg and scanner are in it */
	const struct sg_config *cfg;
	const struct sg_scanner *scanner;	/* its engines */
	void *engine_sessions[SG_MAX_ENGINES];	/* what they keep for the session */
	struct sg_feedback *feedback;
	struct sg_behaviour *behaviour;	/* the proxy's behaviour signals (signals.c) */
	struct sg_policy policy;	/* the VM's, looked up once at accept */
	struct sg_src_key sender;	/* the classifier's key of the VM */
	char tenant[SG_TENANT_NAME_LEN];	/* its tenant (lib/tenants.h); "": none */
	const struct sg_tenant_limits *tenant_limits;	/* in its generation's tenants; NULL: none */
	struct sg_tenancy *tenancy;	/* the proxy's tenant buckets; NULL: none */
	int sender_counted;		/* in the proxy's sessions per sender */
	struct sg_tls *tls;		/* the proxy's contexts (terminate) */
	int greeted;			/* the MX's greeting went by */
	/* TLS: tls_mode is the policy's, as it can apply (terminate without a
	 * certificate configured falls back to passthrough, logged) */
	int tls_mode;
	enum tls_phase tls_phase;
	SSL *ssl[2];
	int tls_want_write[2];		/* OpenSSL waits for the socket to take bytes */
	int tls_fatal[2];		/* a fatal TLS error: no close_notify then */
	int tls_ready_sent;		/* terminate: the proxy's 220 is on its way */
	uint64_t tls_deadline_ns;	/* the handshake under way ends by then */
	int mx_starttls;		/* the MX's EHLO reply offered STARTTLS */
	int stripped;			/* STARTTLS was hidden from the VM */
	char mx_host[256];		/* the name in the MX's greeting */
	char tls_cache_key[320];	/* the VM's sender, the MX's address, the SNI: its TLS sessions */
	int mx_resumed;			/* terminate: the MX's TLS session was resumed */
	char vm_sni[256];		/* terminate: the name the VM asked for */
	char tls_vm[96], tls_mx[96];	/* terminate: "TLSv1.3 TLS_AES_256_GCM_SHA384" */
	int tls_resumed;		/* terminate: the VM resumed a session */
	int mx_verified;		/* terminate: chain and a trusted name verified */
	int mx_auth;			/* terminate: enum sg_mx_auth (tls.h) */
	char mx_verified_by[160];	/* terminate: what authenticated the MX, for the event */
	char tls_error[200];		/* the last TLS failure, for the log */
	/* what the proxy read of each side before the tunnel (and after, for
	 * terminate: decrypted), and the opaque bytes a tunnel moved, by the
	 * side they came from */
	uint64_t read_bytes[2];
	uint64_t written_bytes[2];
	uint64_t inspected_bytes[2];
	uint64_t tunnel_bytes[2];
	int tunnel_started;
	int tunnel_mover;		/* enum sg_tls_mover */
	int tunnel_waiting;		/* sockmap: an end waits for its bytes (recheck soon) */
	struct tunnel_dir tunnel[2];
	struct sockaddr_storage vm_addr, mx_addr;
	char vm_name[64], mx_name[64];
	/* the worker's bookkeeping */
	int connecting;
	int closed;
	uint64_t connect_deadline_ns;
	struct session *prev, *next;
	struct worker *worker;
	struct sg_loop *loop;		/* the worker's: sockets, timers, engines */
	struct sg_watch watch[2];	/* each socket in the worker's loop */
	int unwatched[2];	/* closed both ways: out of the loop until there is more to read */
	/* Not cleared for a new session (pending entries are cleared as they
	 * are queued, and a buffer is its len): from here on. */
	struct pending pending[SG_MAX_PENDING];
	struct sg_buf vm_in, mx_out, mx_in, vm_out;
	char storage[2 * SG_BODY_BUF + 2 * SG_REPLY_BUF];
};

/* A new session's memory: the fields before pending[] cleared, the
 * buffers empty, no sockets. */
void session_clear(struct session *s);

static inline size_t buf_space(const struct sg_buf *b)
{
	return b->cap - b->len;
}

static inline void buf_consume(struct sg_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* Callers check the room first; a miss would write past the session, so
 * it is cut (and said, by the caller's build of log.h) rather than trusted. */
void buf_append(struct sg_buf *b, const char *data, size_t n);

/* The session moves to the sessions gauge state (enum sg_psession;
 * SG_PSESSION__COUNT: out of every gauge, at its end). */
void session_gauge(struct session *s, int state);

/* The relay's mode changes: the metrics' sessions by state follow, unless
 * the session drains (counted as draining until it ends). */
static inline void relay_set_mode(struct session *s, enum relay_mode mode)
{
	s->mode = mode;
	if (!s->draining)
		session_gauge(s, (int)mode);
}

#endif
