/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_relay.c - the relay (proxy/session.c and the relay files) driven by
 * scripted SMTP dialogues, below the e2e tests: no namespaces, no daemon,
 * milliseconds a dialogue. Postfix's .in/.ref files and OpenSMTPD's
 * smtpscript are the models: the dialogue is the test.
 *
 *   test_relay DIR [NAME...]
 *
 * runs the checks of the events file (proxy/events.c, in events_checks.c:
 * "events" as a NAME runs them alone), then every DIR/ *.dialogue (sorted;
 * or only the NAMEs given). Each one gets a worker of its own (rig.h) and
 * sessions in it, as listener.c would hand them over, whose two sockets are
 * socketpairs: the test holds the other ends, the VMs' and the MXs', and
 * plays every peer in one thread, pumping the worker's event loop between
 * steps until what a step waits for happens (or its timeout passes: only a
 * failing step ever waits that long).
 *
 * Every check prints "PASS FILE:LINE STEP" or "FAIL FILE:LINE STEP: why"
 * (test.h); a failed step ends its dialogue (later ones would cascade).
 * After the last step, each dialogue checks that its peers had read every
 * byte they were sent, that every session ends once its peers close, and
 * that every engine state begun was released exactly once.
 *
 * This file is the program: its arguments, each dialogue's run from its
 * set-up to its end checks (teardown), and the summary. The grammar is in
 * dialogue.c (and selftests/relay/README); relay_test.h lists the other
 * files, each with one job.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "log.h"
#include "relay_test.h"
#include "test.h"

bool report(bool ok, const char *name, const char *why)
{
	return test_report(ok, name, why);
}

/* ----------------------------------------------------------- a dialogue */

/* Every peer closes; every session must end, its engines let go. */
static void teardown(struct run *r, int failed)
{
	char name[256], why[WHY_LEN];
	int many = r->n_conns > 1;

	if (r->n_conns && !failed) {
		int unchecked = 0;

		snprintf(name, sizeof(name), "%s: every byte the peers got was checked", r->file);
		settle(r);
		for (int i = 0; i < r->n_conns && !unchecked; i++) {
			r->c = &r->conn[i];
			unchecked = peer_unchecked(r, SIDE_VM) || peer_unchecked(r, SIDE_MX);
			if (unchecked && many) {
				snprintf(why, sizeof(why), "%s", r->why);
				fail(r, "session %s: %s", r->c->name, why);
			}
		}
		test_report(!unchecked, name, unchecked ? r->why : "");
	}
	if (r->rig.w.loop) {
		snprintf(name, sizeof(name), "%s: %s", r->file, many ?
			 "every session ends once its peers close" :
			 "the session ends once both peers close");
		for (int i = 0; i < r->n_conns; i++) {
			for (int side = SIDE_VM; side <= SIDE_MX; side++) {
				struct peer *p = &r->conn[i].peer[side];

				peer_fill(p);	/* a FIN, not a reset */
				if (p->fd >= 0)
					shutdown(p->fd, SHUT_WR);
				peer_close(p);
			}
		}
		if (!r->n_conns) {
			/* the set-up failed before a session was made */
		} else if (wait_all_ended(r, TEARDOWN_NS)) {
			if (!failed)
				test_report(true, name, "");
		} else {
			for (int i = 0; i < r->n_conns; i++)
				if (!r->conn[i].ended)
					r->c = &r->conn[i];
			relay_state(r, why, sizeof(why));
			test_report(false, name, why);
			while (r->rig.w.sessions)
				session_free(&r->rig.w, r->rig.w.sessions);
			note_end(r);
		}
		snprintf(name, sizeof(name), "%s: every engine state released once (%d begun)",
			 r->file, r->begun);
		snprintf(why, sizeof(why), "%d begun, %d released, %d releases of a state not "
			 "live", r->begun, r->released, r->bad_release);
		if (r->n_engines)
			test_report(r->begun == r->released && !r->bad_release, name, why);
	}
	rig_stop(&r->rig);	/* what did not end is ended here */
	for (int i = 0; i < r->n_later; i++)
		free(r->later[i].data);
	for (int i = 0; i < r->n_conns; i++)
		for (int side = SIDE_VM; side <= SIDE_MX; side++)
			free(r->conn[i].peer[side].buf);
}

/* DIR/FILE: a run of its own (its configuration, worker, engines, events
 * file), its steps, its end checks. */
static void run_dialogue(const char *dir, const char *file)
{
	char program[300];
	struct run *r = calloc(1, sizeof(*r));
	int failed;

	if (!r)
		abort();
	r->file = file;
	r->timeout_ns = STEP_TIMEOUT_NS;
	r->tls_mode = SG_TLS_PASSTHROUGH;
	sg_config_defaults(&r->cfg);
	/* the relay's log lines say which dialogue they belong to */
	snprintf(program, sizeof(program), "test_relay %s", file);
	sg_log_init(program);
	failed = run_lines(r, dir, file, 0) < 0;
	if (!failed && !r->started) {
		test_report(false, file, "the dialogue has no step");
		failed = 1;
	}
	teardown(r, failed);
	free(r);
}

/* ------------------------------------------------------------ the program */

static int is_dialogue(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 9 && !strcmp(d->d_name + n - 9, ".dialogue");
}

int main(int argc, char **argv)
{
	struct dirent **names;
	int n;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [NAME.dialogue...]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2) {
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "events"))
				events_checks();
			else
				run_dialogue(argv[1], argv[i]);
		}
		return test_exit_status();
	}
	events_checks();
	n = scandir(argv[1], &names, is_dialogue, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: cannot read %s: %s\n", argv[0], argv[1], strerror(errno));
		return 2;
	}
	if (n == 0)
		test_report(false, "dialogues", "no *.dialogue file in the directory");
	for (int i = 0; i < n; i++) {
		run_dialogue(argv[1], names[i]->d_name);
		free(names[i]);
	}
	free(names);
	printf("# %d dialogues: %d checks passed, %d failed\n", n, test_passes, test_failures);
	return test_exit_status();
}
