/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_smtp.c - libFuzzer target for the SMTP wire parsers the relay runs on
 * every byte a VM or an MX sends: command lines and verbs, replies, the end
 * of DATA across chunk splits, EHLO extension removal. Besides "no crash",
 * it checks the parsers' promises: lengths within the input, a reply's code
 * in 200-599, the DATA end found at the same place however the body is cut,
 * and no byte released to the MX that some MX could take for an end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "smtp.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static int is_break(char c)
{
	return c == '\r' || c == '\n';
}

/* The safety promise of the DATA scan: of buf[0..size), the first released
 * bytes (what goes to the MX) hold no dot that some MX could read as a lone
 * line (a CR or LF, or the body's start, before it; a CR or LF after it,
 * looking into what is not released yet). */
static int released_is_safe(const char *buf, size_t size, size_t released)
{
	for (size_t i = 0; i < released; i++)
		if (buf[i] == '.' && (i == 0 || is_break(buf[i - 1])) && i + 1 < size &&
		    is_break(buf[i + 1]))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct smtp_reply reply;
	size_t len, body1, body2, cut;
	enum smtp_data_result r1, r2;

	if (smtp_next_line(buf, size, 512, &len) == SMTP_LINE_OK)
		check(len >= 1 && len <= size && len <= 512 && buf[len - 1] == '\n');
	(void)smtp_verb_name(smtp_verb_of(buf, size, NULL));

	if (smtp_next_reply(buf, size, 512, &reply) == SMTP_REPLY_OK)
		check(reply.len <= size && reply.code >= 200 && reply.code <= 599 &&
		      reply.lines >= 1);

	/* the same body, whole and split in two at a point the data chooses */
	r1 = smtp_data_scan(buf, size, 1, &body1);
	check(body1 <= size);
	if (r1 == SMTP_DATA_END)
		check(body1 + 3 <= size && !memcmp(buf + body1, ".\r\n", 3));
	check(released_is_safe(buf, size, body1));
	cut = size ? data[0] % (size + 1) : 0;
	r2 = smtp_data_scan(buf, cut, 1, &body2);
	if (r2 == SMTP_DATA_MORE && r1 != SMTP_DATA_MORE) {
		size_t held = body2;

		check(released_is_safe(buf, size, held));
		r2 = smtp_data_scan(buf + held, size - held, held == 0, &body2);
		check(r2 == r1 && held + body2 == body1);
	}

	{
		static const char *const drop[] = { "CHUNKING", "STARTTLS" };
		char *copy = malloc(size + 1);

		if (copy) {
			memcpy(copy, buf, size);
			check(smtp_ehlo_remove(copy, size, drop, 2) <= size);
			free(copy);
		}
	}
	return 0;
}
