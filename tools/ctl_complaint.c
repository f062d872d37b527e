/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_complaint.c - complaint: abuse reports (ARF, RFC 5965) traced to the
 * VM that sent the message (see ctl.h). Each report is parsed
 * (complaints/arf.h), matched against the events file (complaints/match.h)
 * and told: the VM (its address, its tenant when the events carry one), the
 * session (its source port, MX, time, reference id and how it ended), how
 * sure the match is and why, and the message event itself. With --confirm a
 * match that is exact or strong, and not ambiguous, counts against the
 * sender in its src_feedback entry; the proxy's ladder climbs a step for it
 * at the sender's next message (proxy/ladder.c), and `show` says so.
 *
 * A FILE is one report; a DIR every regular file in it, or a maildir's
 * new/ messages (each moved to cur/ when done, as a mail reader does:
 * flag S, and F too when it did not parse, match or confirm, for a human);
 * --watch MAILDIR does the same, then waits for new ones (inotify). The
 * directory walk lives in ctl_complaint_watch.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "arf.h"
#include "ctl.h"
#include "ctl_complaint.h"
#include "eventline.h"
#include "log.h"
#include "match.h"
#include "parse.h"

/* a confirmed sender's flows go to the proxy (steer_mode suspect) for at
 * least this long, so that the ladder takes the complaint at its next
 * message */
#define COMPLAINT_STEER_NS (24ULL * 3600 * 1000000000ULL)

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_kv(const char *name, const char *value, int comma)
{
	printf("%s\"%s\":", comma ? "," : "", name);
	json_str(value);
}

/* A whole file, at most SG_ARF_REPORT_MAX + 1 bytes (so the parser can
 * say it is too big); NULL with err. */
static char *read_report(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t have = 0, max = SG_ARF_REPORT_MAX + 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		close(fd);
		return NULL;
	}
	buf = malloc(max);
	if (!buf) {
		snprintf(err, errlen, "out of memory reading %s", path);
		close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + have, max - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "reading %s failed: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0 || (have += (size_t)n) == max)
			break;
	}
	close(fd);
	*len = have;
	return buf;
}

/* Counts the complaint against the VM's sender entry. 0, or -1 (said). */
static int confirm(struct ctl *ctl, const struct sg_match *m, unsigned int *count)
{
	struct sg_src_feedback fb;
	struct sg_src_key key;
	char err[SG_ERR_LEN];
	uint64_t now = sg_now_ns();

	if (sg_parse_source(m->vm, 0, &key, err, sizeof(err))) {
		sg_err("the matched event's source '%s' is not an address: %s", m->vm, err);
		return -1;
	}
	if (open_maps_for_source(ctl, m->vm, &key))
		return -1;
	{
		/* an older daemon's entries end before the complaints: it
		 * would never see them */
		struct bpf_map_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(ctl->maps.src_feedback, &info, &len) == 0 &&
		    info.value_size < sizeof(fb)) {
			sg_err("the pinned src_feedback map is an older smtpguardd's (%u-byte "
			       "entries, not %zu): it keeps no complaints; upgrade smtpguardd first",
			       info.value_size, sizeof(fb));
			return -1;
		}
	}
	memset(&fb, 0, sizeof(fb));
	if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &fb))
		memset(&fb, 0, sizeof(fb));
	fb.complaints++;
	fb.complaint_ns = now;
	if (fb.suspect_until_ns < now + COMPLAINT_STEER_NS)
		fb.suspect_until_ns = now + COMPLAINT_STEER_NS;
	if (!fb.last_ns)
		fb.last_ns = now;
	if (bpf_map_update_elem(ctl->maps.src_feedback, &key, &fb, BPF_ANY)) {
		sg_err("writing the feedback entry of %s failed: %s%s", m->vm, strerror(errno),
		       errno == E2BIG ? " (src_feedback full)" : "");
		return -1;
	}
	*count = fb.complaints;
	return 0;
}

static void print_text(const char *path, const struct sg_arf *arf, const struct sg_match *m,
		       int found)
{
	char msg[160] = "";
	uint64_t n;

	printf("%s: %s report by %s, Source-IP %s, arrived %s\n", path, arf->feedback_type,
	       arf->user_agent[0] ? arf->user_agent : "(no User-Agent)",
	       arf->source_ip[0] ? arf->source_ip : "(none)",
	       arf->arrival_date[0] ? arf->arrival_date : "(no Arrival-Date)");
	printf("  message:   Message-ID %s, %s",
	       arf->message_id[0] ? arf->message_id : "(none: redacted or absent)",
	       arf->original == SG_ARF_ORIGINAL_MESSAGE ? "the whole message" :
	       arf->original == SG_ARF_ORIGINAL_HEADERS ? "its headers only" : "no copy");
	if (arf->has_body_fp)
		printf(", body fingerprint %016" PRIx64, arf->body_fp);
	printf("\n");
	if (arf->notes[0])
		printf("  notes:     %s\n", arf->notes);
	if (!found) {
		printf("  match:     none: no message in the events fits\n");
		return;
	}
	printf("  VM:        %s%s%s\n", m->vm, m->tenant[0] ? "  tenant " : "", m->tenant);
	if (m->session[0] && sg_event_number(m->session, "messages", &n) == 0) {
		char end[40];

		sg_event_field(m->session, "end", end, sizeof(end));
		snprintf(msg, sizeof(msg), ", the session ended %s after %llu message%s", end,
			 (unsigned long long)n, n == 1 ? "" : "s");
	}
	printf("  session:   %s -> %s at %s, ref %s%s\n", m->source, m->mx, m->time, m->ref, msg);
	printf("  match:     %s (%s", sg_match_level_name(m->level), m->why);
	if (m->delta_s)
		printf("; %+lld s from the report's time", (long long)m->delta_s);
	printf(")%s\n", m->equals && m->level < SG_MATCH_EXACT ? "; AMBIGUOUS: other messages fit "
	       "as well" : "");
	printf("  event:     %s\n", m->line);
}

static void print_json(const char *path, const struct sg_arf *arf, const struct sg_match *m,
		       int found, int confirmed, unsigned int complaints, const char *error)
{
	char fp[24] = "";

	printf("{");
	json_kv("report", path, 0);
	if (error) {
		json_kv("error", error, 1);
		printf("}\n");
		return;
	}
	if (arf->has_body_fp)
		snprintf(fp, sizeof(fp), "%016" PRIx64, arf->body_fp);
	json_kv("feedback_type", arf->feedback_type, 1);
	json_kv("user_agent", arf->user_agent, 1);
	json_kv("source_ip", arf->source_ip, 1);
	json_kv("arrival_date", arf->arrival_date, 1);
	json_kv("original_mail_from", arf->mail_from, 1);
	json_kv("original_rcpt_to", arf->rcpt_to, 1);
	json_kv("message_id", arf->message_id, 1);
	printf(",\"received_ips\":[");
	for (unsigned int i = 0; i < arf->n_received_ip; i++) {
		printf("%s", i ? "," : "");
		json_str(arf->received_ip[i]);
	}
	printf("]");
	json_kv("body_fp", fp, 1);
	json_kv("original", arf->original == SG_ARF_ORIGINAL_MESSAGE ? "message" :
		arf->original == SG_ARF_ORIGINAL_HEADERS ? "headers" : "none", 1);
	json_kv("notes", arf->notes, 1);
	json_kv("match", found ? sg_match_level_name(m->level) : "none", 1);
	if (found) {
		json_kv("why", m->why, 1);
		printf(",\"ambiguous\":%s,\"delta_s\":%lld", m->equals && m->level < SG_MATCH_EXACT ?
		       "true" : "false", (long long)m->delta_s);
		json_kv("vm", m->vm, 1);
		if (m->tenant[0])
			json_kv("tenant", m->tenant, 1);
		json_kv("source", m->source, 1);
		json_kv("mx", m->mx, 1);
		json_kv("time", m->time, 1);
		json_kv("ref", m->ref, 1);
		printf(",\"event\":%s,\"session\":%s", m->line, m->session[0] ? m->session : "null");
	}
	printf(",\"confirmed\":%s", confirmed ? "true" : "false");
	if (confirmed)
		printf(",\"complaints\":%u", complaints);
	printf("}\n");
}

int complaint_one(struct ctl *ctl, const struct complaint_opts *o, const char *path)
{
	struct sg_arf *arf = calloc(1, sizeof(*arf));
	struct sg_match *m = calloc(1, sizeof(*m));
	char err[SG_ERR_LEN * 2], *report = NULL;
	size_t len = 0;
	int ret = 1, found = 0, confirmed = 0;
	unsigned int complaints = 0;
	FILE *events = NULL;

	if (!arf || !m) {
		sg_err("out of memory");
		goto out;
	}
	report = read_report(path, &len, err, sizeof(err));
	if (!report || sg_arf_parse(report, len, arf, err, sizeof(err))) {
		sg_err("%s: %s%s", path, report ? "not an abuse report: " : "", err);
		if (ctl->json)
			print_json(path, arf, m, 0, 0, 0, err);
		goto out;
	}
	events = fopen(o->events, "r");
	if (!events) {
		sg_err("cannot open the events file %s: %s", o->events, strerror(errno));
		ret = 2;
		goto out;
	}
	switch (sg_match_report(arf, events, o->window_s, m, err, sizeof(err))) {
	case 0:
		found = 1;
		break;
	case 1:
		break;
	default:
		sg_err("%s: %s", o->events, err);
		ret = 2;
		goto out;
	}
	if (found && o->confirm) {
		if (m->level < SG_MATCH_STRONG || (m->equals && m->level < SG_MATCH_EXACT))
			sg_warn("%s: not confirmed: the match is %s%s; confirm needs an exact or "
				"strong one", path, sg_match_level_name(m->level),
				m->equals && m->level < SG_MATCH_EXACT ? " and ambiguous" : "");
		else if (confirm(ctl, m, &complaints) == 0)
			confirmed = 1;
	}
	if (ctl->json) {
		print_json(path, arf, m, found, confirmed, complaints, NULL);
	} else {
		print_text(path, arf, m, found);
		if (confirmed)
			printf("  confirmed: %s has %u complaint%s; the ladder takes it at its next "
			       "message (smtpguardctl show %s)\n", m->vm, complaints,
			       complaints == 1 ? "" : "s", m->vm);
	}
	fflush(stdout);
	ret = found && (!o->confirm || confirmed) ? 0 : 1;
out:
	if (events)
		fclose(events);
	free(report);
	free(arf);
	free(m);
	return ret;
}

int cmd_complaint(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *synopsis = "complaint FILE|DIR|--watch MAILDIR --events FILE [--confirm] "
			       "[--window SECS]";
	const char *window = NULL, *watch = NULL, *target;
	struct opt_spec specs[] = {
		{ "--events", NULL }, { "--window", &window }, { "--watch", &watch },
	};
	struct complaint_opts o = { .window_s = SG_MATCH_WINDOW_DEFAULT };
	struct stat st;
	int kept = first, ret;

	specs[0].value = &o.events;
	/* --confirm is a flag: out of argv before the --name VALUE options */
	for (int i = first; i < argc; i++) {
		if (!strcmp(argv[i], "--confirm"))
			o.confirm = 1;
		else
			argv[kept++] = argv[i];
	}
	argc = kept;
	{
		int positional = 0;

		for (int i = first; i < argc; i++) {
			if (argv[i][0] == '-') {
				i++;
				continue;
			}
			positional++;
		}
		ret = parse_opts(argc, argv, first, specs, 3, positional ? 1 : 0, synopsis);
		if (ret)
			return ret;
	}
	target = positional_arg(argc, argv, first, 0);
	if (!!target == !!watch)
		return usage_error(target ? "'complaint %s': a FILE or DIR, or --watch MAILDIR, "
				   "not both" : "complaint needs a FILE, a DIR or --watch MAILDIR%s",
				   target ? target : "");
	if (!o.events)
		return usage_error("complaint needs --events FILE (the daemon's events_file)%s", "");
	if (window) {
		char *end;
		unsigned long v = strtoul(window, &end, 10);

		if (*end || !v || v > 7 * 24 * 3600)
			return usage_error("--window '%s' is not a number of seconds (1 to 604800)",
					   window);
		o.window_s = (unsigned int)v;
	}
	if (o.confirm && (ret = open_maps(ctl)))
		return ret;
	if (watch)
		return complaint_watch(ctl, &o, watch);
	if (stat(target, &st)) {
		sg_err("cannot read %s: %s", target, strerror(errno));
		return EXIT_USAGE;
	}
	if (S_ISDIR(st.st_mode))
		return complaint_dir(ctl, &o, target);
	return complaint_one(ctl, &o, target);
}
