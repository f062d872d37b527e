/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay_test.h - what the files of the relay's dialogue test (test_relay)
 * share: a dialogue's run (struct run), its sessions and their peers, the
 * test engines' settings, the test's timings, and each file's entry
 * points. Internal to selftests/relay (bench/scan_fairness.c uses rig.h
 * alone).
 *
 *   test_relay.c     the program: its arguments, a dialogue's run and its
 *                    end checks, the summary; the one file with test.h
 *   dialogue.c       the grammar: a dialogue file and its includes, line
 *                    by line, each line to its step; the words of a line
 *   sessions.c       the worker a dialogue runs and its sessions; the
 *                    loop, run between and within steps
 *   peers.c          the VMs' and the MXs' ends of the sockets, and the
 *                    steps a SIDE takes: sends, expectations, closes
 *   steps.c          the steps on the relay: wait, tick, stop, after,
 *                    event, events, engines; the events file read back
 *   engines.c        the test scanning engines ("engine ..." lines)
 *   events_checks.c  the events file's writer, apart from any dialogue
 *
 * A step returns 1 for a check that held, 0 for an action done, -1 for a
 * failure whose reason fail() put in r->why; the helpers return 0 or -1.
 */
#ifndef SMTPGUARD_SELFTESTS_RELAY_TEST_H
#define SMTPGUARD_SELFTESTS_RELAY_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "events.h"
#include "parse.h"
#include "worker.h"
#include "rig.h"

/* the test's timings and limits */
#define MS			1000000ULL
#define STEP_TIMEOUT_NS		(2000 * MS)
#define NOTHING_NS		(100 * MS)
#define TEARDOWN_NS		(3000 * MS)
#define PUMP_SLICE_NS		(20 * MS)
#define EVENTS_GRACE_NS		(20 * MS)	/* the events writer thread's lag */
#define SETTLE_LIMIT		10000	/* loop rounds with work: more is a busy loop */
#define WHY_LEN			2048

/* ---------------------------------------------------------------- engines */

enum engine_kind {
	ENG_ANSWER,		/* its verdict at once */
	ENG_WAIT,		/* its verdict from a timer, delay_ns later */
	ENG_WAIT_INLINE,	/* sg_scan_engine_done within its verdict call */
	ENG_WAIT_NEVER,
	ENG_FAIL,		/* SG_ENGINE_ERROR from its verdict */
	ENG_FAIL_BEGIN,		/* SG_ENGINE_ERROR from its begin */
	ENG_BODY_MATCH,		/* its verdict once a body line contains match */
	ENG_SLOW,		/* delay_ns of CPU on each body line, then accepts */
	ENG__COUNT
};

struct run;

struct engine_cfg {
	enum engine_kind kind;
	uint64_t delay_ns;
	struct sg_verdict verdict;
	char match[256];
	struct run *run;
};

/* ------------------------------------------------------------------ a run */

/* The test's end of one of the session's sockets: a peer. */
struct peer {
	const char *name;	/* "VM", "MX" */
	int fd;			/* -1 once the test closed it */
	char *buf;		/* received, not yet checked */
	size_t len, cap;
	int eof;		/* it read an end */
	int err;		/* the end was this error (ECONNRESET) */
	int skip;		/* "SIDE< ...": lines may be skipped */
};

/* One of the dialogue's sessions, as the VM and the MX see it. */
struct conn {
	char name[32];		/* "main": the one a dialogue gets without a "session" step */
	char vm_ip[64];
	struct session *s;	/* NULL once it ended */
	int ended;
	int admitted;		/* under its sender's session limit: it has an MX */
	struct peer peer[2];	/* SIDE_VM, SIDE_MX */
};

/* A send a peer makes from a timer on the worker's loop: "after". */
struct later {
	struct sg_timer timer;
	struct run *r;
	struct conn *c;
	int side;
	char *data;
	size_t len;
};

#define MAX_CONNS	8
#define MAX_LATER	8

struct run {
	const char *file;	/* the dialogue's name, for the checks */
	int lineno;
	const char *inc;	/* the file an "include" runs, or NULL */
	int inc_line;
	int reported;		/* a failed step's FAIL line is out */
	struct sg_config cfg;
	struct engine_cfg engines[SG_MAX_ENGINES];
	int n_engines;
	char rules[16384];	/* the content_rules file's text */
	int tls_mode;
	uint64_t timeout_ns;
	int started;		/* the worker is up: no set-up lines any more */
	struct rig rig;		/* the worker, its proxy and events file */
	struct conn conn[MAX_CONNS];
	int n_conns;
	struct conn *c;		/* the session the steps act on */
	struct later later[MAX_LATER];
	int n_later;
	char later_why[256];	/* a send from a timer failed: the next step says so */
	int begun, released, bad_release;
	int hold;		/* "hold": the next send leaves the loop alone */
	char why[WHY_LEN];	/* a failed step's reason */
};

/* test_relay.c: a check's PASS or FAIL line, counted. test.h keeps its
 * counts in statics, a set in each file that includes it: test_relay.c
 * alone does, and the other files report through this, so that the
 * summary counts every check. */
bool report(bool ok, const char *name, const char *why);

/* dialogue.c: the grammar */
int fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int run_lines(struct run *r, const char *dir, const char *file, int depth);
const char *skip_blanks(const char *p);
const char *next_token(const char *p, char *out, size_t len);
long unescape(const char *in, char *out, size_t len);
int duration(struct run *r, const char *text, uint64_t *ns);

/* sessions.c: the worker, its sessions, its loop */
void note_end(struct run *r);
int pump(struct run *r, uint64_t max_wait_ns);
int settle(struct run *r);
void pump_for(struct run *r, uint64_t ns);
void relay_state(struct run *r, char *out, size_t len);
int open_conn(struct run *r, const char *name, const char *vm_ip);
int wait_all_ended(struct run *r, uint64_t ns);
int step_session(struct run *r, const char *p);
int step_session_state(struct run *r, const char *p);
/* once: the loop runs one round (what is ready now); mode NAME: the
 * current session's relay mode, as it stands (the loop does not run) */
int step_once(struct run *r);
int step_mode(struct run *r, const char *p);

/* peers.c: the VMs and the MXs */
void peer_fill(struct peer *p);
void peer_close(struct peer *p);
int peer_unchecked(struct run *r, int side);
int step_side(struct run *r, int side, const char *p);

/* steps.c: the steps on the relay */
int step_wait(struct run *r, const char *p);
int step_tick(struct run *r, const char *p);
int step_stop(struct run *r);
int step_after(struct run *r, const char *p);
int step_event(struct run *r, const char *p);
int step_events(struct run *r, const char *p);
int step_engines(struct run *r, const char *p);
char *json_field(const char *line, const char *key, char *out, size_t len);

/* engines.c: the test engines, by kind (an engine_cfg is each one's config) */
extern const struct sg_engine test_engines[ENG__COUNT];

/* events_checks.c: the events file's writer ("test_relay DIR events") */
void events_checks(void);

#endif
