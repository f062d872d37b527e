/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_top.c - top: the senders that send the most, sorted. On a terminal
 * it is a live view as top(1)'s: redrawn every -d SECS, a key changes the
 * sort column (s syns, d drops, m msgs, r rejects), q quits; plain ANSI
 * escapes, the terminal in raw mode and restored on the way out (q,
 * SIGINT, SIGTERM; SIGWINCH redraws at the new size). Otherwise (a pipe,
 * --json) it prints the list once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"

struct top_row {
	struct sg_src_key key;
	struct sg_src_state st;
	struct sg_src_feedback fb;
};

enum top_order { TOP_SYNS, TOP_DROPS, TOP_MSGS, TOP_REJECTS, TOP__COUNT };
static const char *const order_names[TOP__COUNT] = { "syns", "drops", "msgs", "rejects" };
static enum top_order top_order;

static uint64_t top_value(const struct top_row *r)
{
	switch (top_order) {
	case TOP_DROPS:
		return r->st.syn_drops;
	case TOP_MSGS:
		return r->fb.msgs;
	case TOP_REJECTS:
		return r->fb.rejects;
	default:
		return r->st.syns;
	}
}

static int top_cmp(const void *a, const void *b)
{
	uint64_t vx = top_value(a), vy = top_value(b);

	return vx < vy ? 1 : vx > vy ? -1 : 0;
}

/* Every sender of one map (src_state or src_feedback) not listed yet,
 * with what both maps hold of it. */
static int top_collect(struct ctl *ctl, int map_fd, int skip_known, struct top_row **rows,
		       size_t *nrows, size_t *cap)
{
	struct sg_src_key key, prev_key;
	int have_prev = 0;

	while (bpf_map_get_next_key(map_fd, have_prev ? &prev_key : NULL, &key) == 0) {
		struct top_row *r;
		int in_state;

		prev_key = key;
		have_prev = 1;
		if (*nrows == *cap) {
			struct top_row *grown;

			*cap = *cap ? *cap * 2 : 256;
			grown = realloc(*rows, *cap * sizeof(**rows));
			if (!grown)
				return -1;
			*rows = grown;
		}
		r = &(*rows)[*nrows];
		r->key = key;
		in_state = sg_source_read(&ctl->maps, &key, &r->st) == 0;
		if (skip_known && in_state)
			continue;	/* listed from src_state already */
		if (!in_state)
			memset(&r->st, 0, sizeof(r->st));
		if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &r->fb))
			memset(&r->fb, 0, sizeof(r->fb));
		(*nrows)++;
	}
	return 0;
}

/* Every sender, sorted; NULL (said) when out of memory. */
static struct top_row *top_rows(struct ctl *ctl, size_t *nrows)
{
	struct top_row *rows = NULL;
	size_t cap = 0;

	*nrows = 0;
	if (top_collect(ctl, ctl->maps.src_state, 0, &rows, nrows, &cap) ||
	    top_collect(ctl, ctl->maps.src_feedback, 1, &rows, nrows, &cap)) {
		free(rows);
		sg_err("out of memory listing sources");
		return NULL;
	}
	if (*nrows)
		qsort(rows, *nrows, sizeof(*rows), top_cmp);
	return rows ? rows : calloc(1, sizeof(*rows));
}

static void print_once(struct ctl *ctl, const struct top_row *rows, size_t nrows, uint64_t limit)
{
	if (ctl->json)
		printf("[");
	else
		printf("%-40s %-16s %10s %10s %10s %10s\n", "SOURCE", "CLASS", "SYNS", "DROPS",
		       "MSGS", "REJECTS");
	for (size_t i = 0; i < nrows && i < limit; i++) {
		char addr[INET6_ADDRSTRLEN + 8], cbuf[SG_RATE_CLASS_NAME_LEN + 8];
		const struct top_row *r = &rows[i];

		sg_format_source(&r->key, v6_source_prefix(ctl), addr, sizeof(addr));
		class_name(ctl, r->st.rate_class, cbuf, sizeof(cbuf));
		if (ctl->json)
			printf("%s{\"source\":\"%s\",\"syns\":%llu,\"syn_drops\":%llu,"
			       "\"msgs\":%llu,\"rejects\":%llu,\"rate_class\":\"%s\"}",
			       i ? "," : "", addr, (unsigned long long)r->st.syns,
			       (unsigned long long)r->st.syn_drops, (unsigned long long)r->fb.msgs,
			       (unsigned long long)r->fb.rejects, cbuf);
		else
			printf("%-40s %-16s %10llu %10llu %10llu %10llu\n", addr, cbuf,
			       (unsigned long long)r->st.syns, (unsigned long long)r->st.syn_drops,
			       (unsigned long long)r->fb.msgs, (unsigned long long)r->fb.rejects);
	}
	if (ctl->json)
		printf("]\n");
}

/* ---- the live view ---- */

static volatile sig_atomic_t live_stop, live_resized;
static struct termios saved_termios;

static void on_live_signal(int sig)
{
	if (sig == SIGWINCH)
		live_resized = 1;
	else
		live_stop = 1;
}

/* Raw mode (keys arrive one at a time, not echoed; Ctrl-C still a
 * signal), the alternate screen, the cursor hidden. */
static int live_enter(void)
{
	struct sigaction sa = { .sa_handler = on_live_signal };
	struct termios raw;

	if (tcgetattr(STDIN_FILENO, &saved_termios))
		return -1;
	raw = saved_termios;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	/* no SA_RESTART: the wait in poll ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw))
		return -1;
	fputs("\033[?1049h\033[?25l", stdout);
	return 0;
}

static void live_leave(void)
{
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
}

static void screen_size(int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

/* One screen: what the host does as a whole, then the senders that fit. */
static void live_draw(struct ctl *ctl, const struct top_row *rows, size_t nrows,
		      const struct sg_metrics_snapshot *snap, unsigned delay)
{
	static const char *const heads[TOP__COUNT] = { "SYNS", "DROPS", "MSGS", "REJECTS" };
	uint64_t sessions = 0, refused = 0;
	char when[32];
	time_t now = time(NULL);
	int height, width;

	screen_size(&height, &width);
	for (int i = 0; i < SG_PSESSION__COUNT; i++)
		sessions += snap->pm.sessions[i];
	for (int r = 0; r < SG_PREASON__COUNT; r++)
		refused += snap->pm.verdicts[SG_PVERDICT_REJECT][r] +
			   snap->pm.verdicts[SG_PVERDICT_TEMPFAIL][r];
	strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
	/* home, clear; each line cut to the width (no wrap scrolls it) */
	printf("\033[H\033[2J");
	{
		char line[512];

		snprintf(line, sizeof(line), "smtpguard top - %s  every %us  %zu sender(s)  "
			 "listeners %d  sessions %llu  refused %llu", when, delay, nrows,
			 snap->listeners, (unsigned long long)sessions, (unsigned long long)refused);
		printf("%.*s\r\n", width, line);
		snprintf(line, sizeof(line), "syns %llu  steered %llu  rate-dropped %llu  "
			 "penalty-dropped %llu  blocked %llu",
			 (unsigned long long)snap->kernel[SG_STAT_SMTP_SYN],
			 (unsigned long long)snap->kernel[SG_STAT_STEERED],
			 (unsigned long long)snap->kernel[SG_STAT_RATE_DROPPED],
			 (unsigned long long)snap->kernel[SG_STAT_PENALTY_DROPPED],
			 (unsigned long long)snap->kernel[SG_STAT_BLOCKED]);
		printf("%.*s\r\n", width, line);
		printf("%.*s\r\n", width, "keys: s d m r sort by syns, drops, msgs, rejects; q quits");
	}
	printf("\r\n%-40s %-16s", "SOURCE", "CLASS");
	for (int c = 0; c < TOP__COUNT; c++)
		printf(" %s%10s%s", c == (int)top_order ? "\033[7m" : "", heads[c],
		       c == (int)top_order ? "\033[0m" : "");
	printf("\r\n");
	for (size_t i = 0; i < nrows && (int)i < height - 6; i++) {
		char addr[INET6_ADDRSTRLEN + 8], cbuf[SG_RATE_CLASS_NAME_LEN + 8], line[256];
		const struct top_row *r = &rows[i];

		sg_format_source(&r->key, v6_source_prefix(ctl), addr, sizeof(addr));
		class_name(ctl, r->st.rate_class, cbuf, sizeof(cbuf));
		snprintf(line, sizeof(line), "%-40s %-16s %10llu %10llu %10llu %10llu", addr, cbuf,
			 (unsigned long long)r->st.syns, (unsigned long long)r->st.syn_drops,
			 (unsigned long long)r->fb.msgs, (unsigned long long)r->fb.rejects);
		printf("%.*s\r\n", width, line);
	}
	fflush(stdout);
}

/* A key: 1 to quit, 0 otherwise (the sort order may change). */
static int live_key(char c)
{
	switch (c) {
	case 'q':
	case 'Q':
		return 1;
	case 's':
		top_order = TOP_SYNS;
		break;
	case 'd':
		top_order = TOP_DROPS;
		break;
	case 'm':
		top_order = TOP_MSGS;
		break;
	case 'r':
		top_order = TOP_REJECTS;
		break;
	default:
		break;
	}
	return 0;
}

static int run_live(struct ctl *ctl, unsigned delay)
{
	int ret = 0;

	if (live_enter()) {
		sg_err("cannot put the terminal in raw mode: %s", strerror(errno));
		return 1;
	}
	while (!live_stop) {
		struct sg_metrics_snapshot snap;
		struct top_row *rows;
		size_t nrows;
		char err[SG_ERR_LEN];
		struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
		struct timespec start, now;
		int waited_ms = 0;

		rows = top_rows(ctl, &nrows);
		if (!rows) {
			ret = 1;
			break;
		}
		if (sg_metrics_collect(&ctl->maps, &snap, err, sizeof(err)))
			memset(&snap, 0, sizeof(snap));
		live_draw(ctl, rows, nrows, &snap, delay);
		free(rows);
		live_resized = 0;
		clock_gettime(CLOCK_MONOTONIC, &start);
		/* keys until the next refresh; a resize or a sort redraws now */
		while (!live_stop && !live_resized && waited_ms < (int)delay * 1000) {
			char c;
			int n = poll(&in, 1, (int)delay * 1000 - waited_ms);

			if (n > 0 && read(STDIN_FILENO, &c, 1) == 1) {
				enum top_order before = top_order;

				if (live_key(c))
					live_stop = 1;
				else if (top_order != before)
					break;
			} else if (n > 0) {
				live_stop = 1;	/* the terminal went away */
			}
			clock_gettime(CLOCK_MONOTONIC, &now);
			waited_ms = (int)((now.tv_sec - start.tv_sec) * 1000 +
					  (now.tv_nsec - start.tv_nsec) / 1000000);
		}
	}
	live_leave();
	return ret;
}

int cmd_top(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *by = NULL, *count = NULL, *delay_arg = NULL;
	struct opt_spec specs[] = { { "--by", &by }, { "-n", &count }, { "-d", &delay_arg } };
	struct top_row *rows;
	size_t nrows;
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];
	uint64_t limit = 10, delay = 1;
	int ret;

	ret = parse_opts(argc, argv, first, specs, 3, 0,
			 "top [--by syns|drops|msgs|rejects] [-n N] [-d SECS]");
	if (ret)
		return ret;
	top_order = TOP_SYNS;
	if (by) {
		size_t o;

		for (o = 0; o < TOP__COUNT; o++)
			if (strcmp(by, order_names[o]) == 0)
				break;
		if (o == TOP__COUNT)
			return usage_error("--by '%s' is not one of syns|drops|msgs|rejects", by);
		top_order = (enum top_order)o;
	}
	if (count && sg_parse_uint(count, 1, 100000, &limit, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "-n: %s", err);
		return usage_error("%s", msg);
	}
	if (delay_arg && sg_parse_uint(delay_arg, 1, 3600, &delay, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "-d: %s (seconds between refreshes)", err);
		return usage_error("%s", msg);
	}
	ret = open_maps(ctl);
	if (ret)
		return ret;
	if (!ctl->json && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO))
		return run_live(ctl, (unsigned)delay);
	rows = top_rows(ctl, &nrows);
	if (!rows)
		return 1;
	print_once(ctl, rows, nrows, limit);
	free(rows);
	return 0;
}
