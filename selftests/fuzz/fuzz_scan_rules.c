/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_scan_rules.c - libFuzzer target for the content rules loader
 * (rules.h) on hostile files: every input is loaded as a rules file, and
 * either refused with a message that names the file, or loaded within the
 * limits (rule count, names) and then matched against a message made of
 * the input itself (headers, a body in three chunks and two parts, URL
 * hosts, an attachment): a decision is always a reject or tempfail rule,
 * and nothing crashes, leaks or loops. The file lives in a memfd, read
 * through /proc/self/fd (so a "file:N" list in the input names a
 * descriptor of this process: the rules file itself, say).
 *
 * The same input is also text for the URL host extractor (urls.h): every
 * host it gives is 1 to 253 bytes, lowercase, without a trailing dot, and
 * the hosts are the same whether the text comes whole or a byte at a time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "matcher.h"
#include "urls.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > SG_RULE_NAME_MAX)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

static void match_input(const struct sg_rules *rules, const uint8_t *data, size_t size)
{
	struct sg_match_stream *ms = sg_match_begin(rules);
	const char *text = (const char *)data;
	const struct sg_rule_hit *hit;

	if (!ms)
		return;
	sg_match_header(ms, "Subject", 7, text, size);
	sg_match_body(ms, text, size / 3);
	sg_match_body(ms, text + size / 3, size / 3);
	sg_match_body_end(ms);
	sg_match_body(ms, text + 2 * (size / 3), size - 2 * (size / 3));
	sg_match_body_end(ms);
	sg_match_url_host(ms, text, size < 64 ? size : 64);
	sg_match_attachment(ms, text, size < 32 ? size : 32, text, size < 16 ? size : 16);
	hit = sg_match_result(ms);
	check(!hit->decided || hit->decided->action != SG_RULE_FLAG);
	check(hit->flagged_count <= sg_rules_count(rules));
	sg_match_end(ms);
}

/* The hosts found, one after another, each after its length byte. */
struct hosts {
	unsigned char list[8192];
	size_t len;
	int full;
};

static void add_host(void *ctx, const char *host, size_t len)
{
	struct hosts *h = ctx;

	check(len >= 1 && len <= SG_HOST_MAX);
	check(host[len - 1] != '.');
	for (size_t i = 0; i < len; i++)
		check(!(host[i] >= 'A' && host[i] <= 'Z'));
	if (h->full || h->len + len + 1 > sizeof(h->list)) {
		h->full = 1;
		return;
	}
	h->list[h->len++] = (unsigned char)len;
	memcpy(h->list + h->len, host, len);
	h->len += len;
}

static void extract_urls(const uint8_t *data, size_t size)
{
	static struct hosts whole, bytes;
	struct sg_url_extractor ex;

	memset(&whole, 0, sizeof(whole));
	memset(&bytes, 0, sizeof(bytes));
	sg_url_extract_init(&ex, add_host, &whole);
	sg_url_extract(&ex, (const char *)data, size);
	sg_url_extract_end(&ex);
	sg_url_extract_init(&ex, add_host, &bytes);
	for (size_t i = 0; i < size; i++)
		sg_url_extract(&ex, (const char *)data + i, 1);
	sg_url_extract_end(&ex);
	check(whole.len == bytes.len && memcmp(whole.list, bytes.list, whole.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct sg_rules *rules;
	char err[2048];

	if (fd < 0) {
		fd = memfd_create("fuzz-rules", 0);
		check(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	extract_urls(data, size);
	check(ftruncate(fd, 0) == 0);
	check(pwrite(fd, data, size, 0) == (ssize_t)size);
	err[0] = '\0';
	rules = sg_rules_load(path, err, sizeof(err));
	if (!rules) {
		/* refused: the message says which file */
		check(strncmp(err, path, strlen(path)) == 0);
		return 0;
	}
	check(sg_rules_count(rules) <= SG_RULES_MAX);
	for (unsigned int i = 0; i < sg_rules_count(rules); i++) {
		const struct sg_rule *r = sg_rules_rule(rules, i);

		check(valid_name(r->name));
		check(r->pattern || r->hosts);
		check(!r->pattern || strlen(r->pattern) <= SG_RULE_PATTERN_MAX);
	}
	match_input(rules, data, size);
	sg_rules_free(rules);
	sg_match_thread_release();
	return 0;
}
