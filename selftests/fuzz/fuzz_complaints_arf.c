/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_complaints_arf.c - libFuzzer target for the abuse report reader
 * (complaints/arf.h, fields.h, date.h): whatever a stranger mails to the
 * feedback-loop mailbox. Besides "no crash", it checks the reader's
 * promises: a report parses or says why (a non-empty error); what it
 * keeps is NUL-terminated within its field; a Source-IP it keeps is an
 * address; the counts stay within their arrays. The events matcher reads
 * the same input as an events file for a fixed report.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arf.h"
#include "match.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static const char report[] =
	"Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n"
	"--b\nContent-Type: message/feedback-report\n\n"
	"Feedback-Type: abuse\nUser-Agent: f/1\nVersion: 1\nSource-IP: 192.0.2.10\n"
	"Arrival-Date: Tue, 1 Dec 2026 10:15:02 +0000\nOriginal-Rcpt-To: <u@example.com>\n\n"
	"--b\nContent-Type: message/rfc822\n\nMessage-ID: <m@x>\n\nbody words here\n--b--\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_arf *arf = malloc(sizeof(*arf));
	struct sg_match *m = malloc(sizeof(*m));
	char err[400];
	int ret;

	err[0] = '\0';
	ret = sg_arf_parse((const char *)data, size, arf, err, sizeof(err));
	check(ret == 0 || ret == -1);
	if (ret) {
		check(err[0] != '\0');
	} else {
		unsigned char bin[16];

		check(memchr(arf->message_id, '\0', sizeof(arf->message_id)) != NULL);
		check(memchr(arf->feedback_type, '\0', sizeof(arf->feedback_type)) != NULL);
		check(arf->feedback_type[0] && arf->version[0]);
		check(!arf->source_ip[0] || inet_pton(strchr(arf->source_ip, ':') ? AF_INET6 :
						      AF_INET, arf->source_ip, bin) == 1);
		check(arf->n_received_ip <= SG_ARF_RECEIVED_MAX && arf->n_refs <= SG_ARF_REFS_MAX);
	}
	/* the input as an events file */
	if (sg_arf_parse(report, sizeof(report) - 1, arf, err, sizeof(err)) == 0) {
		FILE *f = fmemopen((void *)data, size ? size : 1, "r");

		if (f) {
			ret = sg_match_report(arf, f, 600, m, err, sizeof(err));
			check(ret >= -1 && ret <= 1);
			check(ret != 0 || (m->level > SG_MATCH_NONE && m->level <= SG_MATCH_EXACT));
			fclose(f);
		}
	} else {
		abort();	/* the fixed report must parse */
	}
	free(arf);
	free(m);
	return 0;
}
