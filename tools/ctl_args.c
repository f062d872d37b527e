/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ctl_args.c - smtpguardctl's arguments and maps (see ctl.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "log.h"
#include "parse.h"

int usage_error(const char *fmt, const char *arg)
{
	char msg[SG_ERR_LEN * 2];

	snprintf(msg, sizeof(msg), fmt, arg);
	sg_err("%s (see 'smtpguardctl --help')", msg);
	return EXIT_USAGE;
}

int open_maps(struct ctl *ctl)
{
	char err[SG_ERR_LEN * 2];

	if (sg_maps_open(ctl->root, &ctl->maps, err, sizeof(err))) {
		sg_err("%s", err);
		return EXIT_USAGE;
	}
	return 0;
}

void class_name(const struct ctl *ctl, __u32 slot, char *buf, size_t len)
{
	struct sg_rate_class rc;

	if (bpf_map_lookup_elem(ctl->maps.rate_classes, &slot, &rc) == 0 && rc.name[0])
		snprintf(buf, len, "%.*s", (int)sizeof(rc.name), rc.name);
	else
		snprintf(buf, len, "#%u", slot);
}

/* Options after a subcommand's positional arguments: --name VALUE pairs. */

/* A subcommand's arguments: npositional plain ones, and --name VALUE
 * options from specs, in any order. synopsis is its usage line. */
int parse_opts(int argc, char **argv, int first, struct opt_spec *specs,
		      int nspecs, int npositional, const char *synopsis)
{
	char msg[SG_ERR_LEN];
	int positional = 0;

	for (int i = first; i < argc; i++) {
		int matched = 0;

		if (argv[i][0] != '-') {
			if (positional++ >= npositional) {
				snprintf(msg, sizeof(msg), "unexpected argument '%%s' (usage: "
					 "smtpguardctl %s)", synopsis);
				return usage_error(msg, argv[i]);
			}
			continue;
		}
		for (int s = 0; s < nspecs; s++) {
			if (strcmp(argv[i], specs[s].name) != 0)
				continue;
			if (i + 1 >= argc)
				return usage_error("option %s needs a value", argv[i]);
			*specs[s].value = argv[++i];
			matched = 1;
			break;
		}
		if (!matched) {
			snprintf(msg, sizeof(msg), "unknown option '%%s' (usage: smtpguardctl %s)",
				 synopsis);
			return usage_error(msg, argv[i]);
		}
	}
	if (positional < npositional) {
		snprintf(msg, sizeof(msg), "missing argument (usage: smtpguardctl %s)%%s",
			 synopsis);
		return usage_error(msg, "");
	}
	return 0;
}

/* The first npositional non-option arguments from first on. */
const char *positional_arg(int argc, char **argv, int first, int index)
{
	for (int i = first; i < argc; i++) {
		if (argv[i][0] == '-') {
			i++;	/* skip its value */
			continue;
		}
		if (index-- == 0)
			return argv[i];
	}
	return NULL;
}

/* A command without arguments: nothing after it, then the maps. */
int no_args_then_maps(struct ctl *ctl, int argc, char **argv, int first,
			     const char *synopsis)
{
	int ret = parse_opts(argc, argv, first, NULL, 0, 0, synopsis);

	return ret ? ret : open_maps(ctl);
}

/* A named value (an action, a mode) into *out; a clear error otherwise. */
int name_arg(int (*from_name)(const char *), const char *value, const char *kind,
		    const char *accepted, __u8 *out)
{
	char err[SG_ERR_LEN];
	int v = from_name(value);

	if (v < 0) {
		snprintf(err, sizeof(err), "unknown %s '%s' (expected %s)", kind, value, accepted);
		usage_error("%s", err);
		return -1;
	}
	*out = (__u8)v;
	return 0;
}

int parse_source_arg(int argc, char **argv, int first, const char *cmd,
			    struct opt_spec *specs, int nspecs, struct sg_src_key *key,
			    const char **addr)
{
	char err[SG_ERR_LEN];
	int ret = parse_opts(argc, argv, first, specs, nspecs, 1, cmd);

	if (ret)
		return ret;
	*addr = positional_arg(argc, argv, first, 0);
	if (sg_parse_source(*addr, 0, key, err, sizeof(err)))
		return usage_error("%s", err);
	return 0;
}

/* The prefix IPv6 senders are counted by, from the daemon's settings. */
unsigned int v6_source_prefix(const struct ctl *ctl)
{
	struct sg_settings s;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(ctl->maps.settings, &zero, &s))
		return 128;
	return s.v6_source_prefix ? s.v6_source_prefix : 128;
}

/* Whether either per-sender map holds the key. */
static int sender_known(const struct ctl *ctl, const struct sg_src_key *key)
{
	struct sg_src_feedback fb;
	struct sg_src_state st;

	return sg_source_read(&ctl->maps, key, &st) == 0 ||
	       bpf_map_lookup_elem(ctl->maps.src_feedback, key, &fb) == 0;
}

/* An IPv6 sender given without its port: the one a map holds under some
 * bridge port (the classifier keys those by the port too), if any. */
static void find_on_port(const struct ctl *ctl, struct sg_src_key *key)
{
	const int fds[2] = { ctl->maps.src_state, ctl->maps.src_feedback };

	for (int i = 0; i < 2; i++) {
		struct sg_src_key k, prev;
		int have = 0;

		while (bpf_map_get_next_key(fds[i], have ? &prev : NULL, &k) == 0) {
			prev = k;
			have = 1;
			if (k.ifindex && memcmp(k.addr, key->addr, sizeof(k.addr)) == 0) {
				*key = k;
				return;
			}
		}
	}
}

/* Opens the maps, then cuts the (already valid) address to the sender key
 * the classifier uses. */
int open_maps_for_source(struct ctl *ctl, const char *addr, struct sg_src_key *key)
{
	char err[SG_ERR_LEN];
	int ret = ctl->maps.src_feedback >= 0 ? 0 : open_maps(ctl);	/* once */

	if (ret)
		return ret;
	sg_parse_source(addr, v6_source_prefix(ctl), key, err, sizeof(err));
	if (!key->ifindex && !sender_known(ctl, key))
		find_on_port(ctl, key);
	return 0;
}
