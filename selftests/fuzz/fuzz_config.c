/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_config.c - libFuzzer target for what operators type: config lines and
 * smtpguardctl's prefixes, addresses, rates and durations. Every input is
 * either accepted or refused with a message; nothing crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512], err[SG_ERR_LEN * 2];
	struct sg_config cfg;
	struct sg_prefix prefix;
	struct sg_src_key key;
	uint64_t v;

	if (size >= sizeof(s))
		size = sizeof(s) - 1;
	memcpy(s, data, size);
	s[size] = '\0';

	sg_config_defaults(&cfg);
	if (sg_config_set(&cfg, s, "fuzz", 1, err, sizeof(err)) != 0 && !err[0])
		abort();	/* a refusal always says why */
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
