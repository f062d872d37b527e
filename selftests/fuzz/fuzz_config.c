/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_config.c - libFuzzer target for what operators type: config lines and
 * smtpguardctl's prefixes, addresses, rates and durations. Every input is
 * either accepted or refused with a message; nothing crashes. An accepted
 * config line changes no key but its own (so a reload compares and copies
 * each key by its row alone), and a reload's copy of the live keys leaves
 * none of them different.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "parse.h"

/* The key an accepted "key = value" named, trimmed as sg_config_set does. */
static void key_of(const char *s, char *key, size_t len)
{
	const char *eq = strchr(s, '=');
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = eq && eq > s ? (size_t)(eq - s) : 0;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(key, s, n);
	key[n] = '\0';
}

static void check_config_line(const char *s)
{
	char err[SG_ERR_LEN * 2], key[128], live[2048], restart[2048];
	struct sg_config defaults, cfg;
	int n;

	sg_config_defaults(&defaults);
	cfg = defaults;
	err[0] = '\0';
	if (sg_config_set(&cfg, s, "fuzz", 1, err, sizeof(err)) != 0) {
		if (!err[0])
			abort();	/* a refusal always says why */
		return;
	}
	key_of(s, key, sizeof(key));
	n = sg_config_changed(&defaults, &cfg, SG_RELOAD_LIVE, live, sizeof(live)) +
	    sg_config_changed(&defaults, &cfg, SG_RELOAD_RESTART, restart, sizeof(restart));
	if (n > 1 || (n == 1 && strcmp(live[0] ? live : restart, key) != 0))
		abort();	/* a key wrote a field its row does not name */
	sg_config_apply_live(&defaults, &cfg);
	if (sg_config_changed(&defaults, &cfg, SG_RELOAD_LIVE, live, sizeof(live)) != 0)
		abort();	/* the copy left a live key behind */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512], err[SG_ERR_LEN * 2];
	struct sg_prefix prefix;
	struct sg_src_key key;
	uint64_t v;

	if (size >= sizeof(s))
		size = sizeof(s) - 1;
	memcpy(s, data, size);
	s[size] = '\0';

	check_config_line(s);
	err[0] = '\0';
	if (sg_parse_prefix(s, &prefix, err, sizeof(err)) != 0 && !err[0])
		abort();
	err[0] = '\0';
	if (sg_parse_source(s, 64, &key, err, sizeof(err)) != 0 && !err[0])
		abort();
	if (sg_parse_rate(s, &v, err, sizeof(err)) == 0 && v < 1000)
		abort();	/* faster than 1,000,000/s is refused */
	(void)sg_parse_duration(s, &v, err, sizeof(err));
	return 0;
}
