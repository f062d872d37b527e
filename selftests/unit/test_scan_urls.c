/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_urls.c - the URL host extractor (urls.h) on tricky text: any
 * case of scheme, userinfo, ports, percent-escapes, IP literals, trailing
 * dots, backslashes, HTML attributes (quotes, line breaks inside them) and
 * character references, Unicode full stops, www. without a scheme, IDNs
 * left as bytes, hosts too long, URLs inside query strings; each text also cut at every point and fed a byte at a time,
 * which must give the same hosts, once each. And host lists (hostlist.h):
 * a domain matches its subdomains, not its look-alikes; an IP only itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hostlist.h"
#include "urls.h"
#include "test.h"

/* The hosts found, comma-separated. */
struct found {
	char list[2048];
	size_t len;
};

static void collect(void *ctx, const char *host, size_t len)
{
	struct found *f = ctx;

	if (f->len + len + 2 >= sizeof(f->list))
		return;
	if (f->len)
		f->list[f->len++] = ',';
	memcpy(f->list + f->len, host, len);
	f->len += len;
	f->list[f->len] = '\0';
}

/* The hosts of text fed in chunks of chunk bytes (0: the cut at split). */
static void extract(const char *text, size_t n, size_t chunk, size_t split, struct found *f,
		    struct sg_url_extractor *ex)
{
	memset(f, 0, sizeof(*f));
	sg_url_extract_init(ex, collect, f);
	if (chunk) {
		for (size_t off = 0; off < n; off += chunk)
			sg_url_extract(ex, text + off, n - off < chunk ? n - off : chunk);
	} else {
		sg_url_extract(ex, text, split);
		sg_url_extract(ex, text + split, n - split);
	}
	sg_url_extract_end(ex);
}

/* The text's hosts must be want, whole, a byte at a time, and cut anywhere. */
static void hosts_are(const char *text, size_t n, const char *want, const char *name)
{
	struct sg_url_extractor ex;
	struct found f;
	char check[300];
	int split_ok = 1;

	extract(text, n, n ? n : 1, 0, &f, &ex);
	ASSERT_STREQ(f.list, want, name);
	extract(text, n, 1, 0, &f, &ex);
	snprintf(check, sizeof(check), "%s (a byte at a time)", name);
	ASSERT_STREQ(f.list, want, check);
	for (size_t split = 0; split <= n && split_ok; split++) {
		extract(text, n, 0, split, &f, &ex);
		if (strcmp(f.list, want) != 0) {
			printf("# cut at %zu: \"%s\"\n", split, f.list);
			split_ok = 0;
		}
	}
	snprintf(check, sizeof(check), "%s (cut at every point)", name);
	ASSERT_TRUE(split_ok, check);
}

#define HOSTS_ARE(text, want, name) hosts_are(text, sizeof(text) - 1, want, name)

static void test_extraction(void)
{
	HOSTS_ARE("see http://example.com/ now", "example.com", "url: http");
	HOSTS_ARE("HTTPS://Example.COM", "example.com", "url: uppercase scheme, host lowercased");
	HOSTS_ARE("hTtP://evil.example?q", "evil.example", "url: mixed-case scheme, ends at ?");
	HOSTS_ARE("http://paypal.com@evil.example/", "evil.example", "url: userinfo dropped");
	HOSTS_ARE("http://user:pass@paypal.com@evil.example:443/x", "evil.example",
		  "url: the last @ ends the userinfo");
	HOSTS_ARE("http://evil.example:8080/x", "evil.example", "url: port dropped");
	HOSTS_ARE("http://%65vil%2Eexample/", "evil.example", "url: percent-encoded host decoded");
	HOSTS_ARE("http://ev%zzil.example/ http://ok.example", "ok.example",
		  "url: a bad percent-escape makes no host");
	HOSTS_ARE("http://192.0.2.1/x", "192.0.2.1", "url: IPv4 literal");
	HOSTS_ARE("http://[2001:DB8::1]:80/", "2001:db8::1", "url: IPv6 literal without brackets");
	HOSTS_ARE("http://[2001:db8::1/", "", "url: an unclosed IPv6 literal makes no host");
	HOSTS_ARE("http://evil.example./", "evil.example", "url: trailing dot dropped");
	HOSTS_ARE("Go to http://evil.example.", "evil.example", "url: the sentence's full stop");
	HOSTS_ARE("<a href=\"http://evil.example/login\">PayPal</a>", "evil.example",
		  "url: in an href attribute");
	HOSTS_ARE("<a href='https://evil.example'>x</a>", "evil.example",
		  "url: in a single-quoted attribute");
	HOSTS_ARE("<a href=\"http&#58;//evil.example\">", "evil.example",
		  "url: a decimal character reference in the scheme");
	HOSTS_ARE("<a href=\"&#x68;ttps&#x3A;&#x2f;&#x2F;evil&#00046;example\">", "evil.example",
		  "url: hex references and leading zeros");
	HOSTS_ARE("fish &amp; chips &#; &#x; &#99999999; http://ok.example", "ok.example",
		  "url: other references pass as text");
	HOSTS_ARE("http:\\\\evil.example\\x", "evil.example", "url: backslashes as browsers take them");
	HOSTS_ARE("http:/evil.example", "evil.example", "url: one slash is enough");
	HOSTS_ARE("protocol http: is plain", "", "url: http: without a slash is text");
	HOSTS_ARE("visit www.Evil.example today", "www.evil.example", "url: www. without a scheme");
	HOSTS_ARE("www.evil.example", "www.evil.example", "url: www. at the very start");
	HOSTS_ARE("awww.example foo.www.example", "", "url: www. inside a name is no URL");
	HOSTS_ARE("http://b\xc3\xbc" "cher.example/", "b\xc3\xbc" "cher.example",
		  "url: an IDN left as its bytes");
	HOSTS_ARE("http://redirect.example/?u=https://evil.example/&x=www.other.example",
		  "redirect.example,evil.example,www.other.example",
		  "url: URLs inside a query string");
	HOSTS_ARE("http://evil.example", "evil.example", "url: a URL open at the part's end");
	HOSTS_ARE("a\0http://evil.example\0b", "evil.example", "url: NUL bytes around it");
	HOSTS_ARE("http://evil.example,http://two.example", "evil.example,two.example",
		  "url: a comma ends a host");
	HOSTS_ARE("<a href=\"http://evil.exa\n\tmple/\">", "evil.exa,evil.example",
		  "url: a line break in an attribute skipped, as browsers do (and the part before it)");
	HOSTS_ARE("He said \"http://evil.example\nThanks\"", "evil.example,evil.examplethanks",
		  "url: text after a quote: the host before the line break given too");
	HOSTS_ARE("<a href=\"http://evil.example\n\">", "evil.example",
		  "url: a line break before the closing quote gives the host once");
	HOSTS_ARE("see http://evil.example\nthanks", "evil.example",
		  "url: a line break ends a URL in text");
	HOSTS_ARE("http://evil\xe3\x80\x82" "example/ http://x\xef\xbc\x8e" "y\xef\xbd\xa1" "z",
		  "evil.example,x.y.z", "url: ideographic and full-width full stops are dots");
}

static void test_bounds(void)
{
	char text[1200];
	struct sg_url_extractor ex;
	struct found f;
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), "http://%0300d.example/ http://ok.example", 0);
	extract(text, n, 7, 0, &f, &ex);
	ASSERT_STREQ(f.list, "ok.example", "bounds: a host longer than 253 bytes is not given");
	ASSERT_EQ(ex.overlong_hosts, 1, "bounds: and counted");
	n = (size_t)snprintf(text, sizeof(text), "http://%01000d@evil.example/", 0);
	extract(text, n, 5, 0, &f, &ex);
	ASSERT_STREQ(f.list, "evil.example", "bounds: a userinfo of 1,000 bytes, then the host");
	memset(text, 'a', 253);
	memcpy(text + 253, ".", 2);
	n = 254;
	memmove(text + 7, text, n);
	memcpy(text, "http://", 7);
	n += 7;
	extract(text, n, 3, 0, &f, &ex);
	ASSERT_EQ(f.len, 253, "bounds: a host of exactly 253 bytes and a trailing dot is given");
	ASSERT_EQ(sizeof(struct sg_url_extractor) < 400, 1, "bounds: the state is under 400 bytes");
	/* a part's end ends the URL: the next part starts in text */
	memset(&f, 0, sizeof(f));
	sg_url_extract_init(&ex, collect, &f);
	sg_url_extract(&ex, "x http://ev", 11);
	sg_url_extract_end(&ex);
	sg_url_extract(&ex, "il.example", 10);
	sg_url_extract_end(&ex);
	ASSERT_STREQ(f.list, "ev", "bounds: a URL does not span two parts");
}

/* Text is skipped many bytes at a time, looking at the bytes before and
 * after a ':', '.' or '&' (urls.c: find_start), and a host's name is
 * taken in a run: each way of starting a URL, after 0 to 80 bytes of
 * text that looks like one but is not ("ie." and "to:" sum as "ww." and
 * "tp:" do; "&amp;" is no numeric reference), so that it falls at every
 * place of a 16- and 32-byte block and of the part's end, must give the
 * same hosts, whole, a byte at a time and cut anywhere. */
static void test_fast_paths(void)
{
	static const char filler[] = "a movie. to: ie. Ww: &amp; p: s: w. tp ps ww &# x ";
	static const struct {
		const char *url, *host;
	} starts[] = {
		{ "http://one.example/p", "one.example" },
		{ "HTTPS://Two.Example", "two.example" },
		{ "hTtP:\\three.example", "three.example" },
		{ "WWW.Four.example/x", "www.four.example" },
		{ "&#104;ttp&#58;//five.example", "five.example" },
		{ "htt&#112;s://six.example", "six.example" },
		{ "ww&#x77;.seven.example", "www.seven.example" },
		{ "\"http://eight.exa\nmple\"", "eight.exa,eight.example" },
	};
	char text[256], want[160], name[160];
	int all;

	for (size_t u = 0; u < sizeof(starts) / sizeof(starts[0]); u++) {
		all = 1;
		for (size_t k = 0; k <= 80 && all; k++) {
			struct sg_url_extractor ex;
			struct found f;
			size_t n = 0;

			for (size_t i = 0; i < k; i++)
				text[n++] = filler[i % (sizeof(filler) - 1)];
			n += (size_t)snprintf(text + n, sizeof(text) - n, " %s ", starts[u].url);
			/* and the same after it, so the URL also ends mid-block */
			for (size_t i = 0; i < 80 - k; i++)
				text[n++] = filler[i % (sizeof(filler) - 1)];
			snprintf(want, sizeof(want), "%s", starts[u].host);
			extract(text, n, n, 0, &f, &ex);
			if (strcmp(f.list, want) != 0) {
				printf("# %s after %zu bytes: \"%s\"\n", starts[u].host, k, f.list);
				all = 0;
			}
			extract(text, n, 1, 0, &f, &ex);
			all &= !strcmp(f.list, want);
			for (size_t split = 0; split <= n; split++) {
				extract(text, n, 0, split, &f, &ex);
				all &= !strcmp(f.list, want);
			}
			if (!all)
				printf("# %s after %zu bytes: cut somewhere\n", starts[u].host, k);
		}
		snprintf(name, sizeof(name), "fast paths: the URL of %s at every offset in a block",
			 starts[u].host);
		ASSERT_TRUE(all, name);
	}
	/* a host's name taken in runs: long, in big chunks, exactly at and past
	 * the room there is */
	for (size_t len = 250; len <= 256; len++) {
		struct sg_url_extractor ex;
		struct found f;
		char big[400];
		size_t n;

		memcpy(big, "x http://", 9);
		memset(big + 9, 'A', len);
		n = 9 + len;
		n += (size_t)snprintf(big + n, sizeof(big) - n, "/ http://ok.example");
		extract(big, n, n, 0, &f, &ex);
		all = len <= SG_HOST_MAX ? f.len == len + 11 && ex.overlong_hosts == 0 :
					   !strcmp(f.list, "ok.example") && ex.overlong_hosts == 1;
		snprintf(name, sizeof(name), "fast paths: a %zu-byte host fed whole", len);
		ASSERT_TRUE(all, name);
	}
}

static struct sg_hostlist *load_list(const char *text)
{
	char path[] = "/tmp/sg-test-hosts-XXXXXX", err[512];
	struct sg_hostlist *l;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return NULL;
	close(fd);
	l = sg_hostlist_load(path, err, sizeof(err));
	unlink(path);
	if (!l)
		printf("# %s\n", err);
	return l;
}

#define LISTED(l, host) sg_hostlist_match(l, host, sizeof(host) - 1)

static void test_host_lists(void)
{
	struct sg_hostlist *l = load_list("# phishing\nevil.example\n*.bad.test  # wildcard\n"
					  ".dot.test\nEVIL.example\n192.0.2.7\n[2001:DB8::7]\n"
					  "b\xc3\xbc" "cher.example\n");
	char host[SG_HOST_MAX + 1];

	if (!ASSERT_TRUE(l != NULL, "host list: loads"))
		return;
	ASSERT_EQ(sg_hostlist_count(l), 6, "host list: 6 entries, the repeat kept once");
	ASSERT_TRUE(LISTED(l, "evil.example"), "host list: the domain itself");
	ASSERT_TRUE(LISTED(l, "a.b.evil.example"), "host list: a subdomain matches its domain");
	ASSERT_TRUE(!LISTED(l, "notevil.example"), "host list: a look-alike does not");
	ASSERT_TRUE(!LISTED(l, "example"), "host list: a parent domain does not");
	ASSERT_TRUE(!LISTED(l, "evil.example.com"), "host list: a longer name does not");
	ASSERT_TRUE(LISTED(l, "x.bad.test") && LISTED(l, "bad.test"),
		    "host list: *.domain is the domain");
	ASSERT_TRUE(LISTED(l, "www.dot.test"), "host list: .domain is the domain");
	ASSERT_TRUE(LISTED(l, "192.0.2.7"), "host list: an IPv4 address");
	ASSERT_TRUE(!LISTED(l, "1.192.0.2.7") && !LISTED(l, "0.2.7"),
		    "host list: an IP matches only itself");
	ASSERT_TRUE(LISTED(l, "2001:db8::7"), "host list: an IPv6 address, brackets dropped");
	ASSERT_TRUE(LISTED(l, "shop.b\xc3\xbc" "cher.example"), "host list: an IDN's bytes");
	ASSERT_EQ(sg_host_normalize("Evil.Example..", 14, host), 12,
		  "host list: a host normalized: dots dropped");
	ASSERT_TRUE(memcmp(host, "evil.example", 12) == 0, "host list: and lowercased");
	ASSERT_EQ(sg_host_normalize("...", 3, host), -1, "host list: dots alone are no host");
	ASSERT_TRUE(sg_hostlist_memory(l) > 0, "host list: its memory is known");
	sg_hostlist_free(l);
}

static void test_large_host_list(void)
{
	size_t n = 200000, len = 0;
	char *text = malloc(n * 24), host[40];
	struct sg_hostlist *l;
	int all = 1;

	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "h%zu.example\n", i);
	l = load_list(text);
	free(text);
	if (!ASSERT_TRUE(l != NULL, "large host list: 200,000 hosts load"))
		return;
	ASSERT_EQ(sg_hostlist_count(l), n, "large host list: all counted");
	for (size_t i = 0; i < n; i += 997) {
		int k = snprintf(host, sizeof(host), "www.h%zu.example", i);

		all &= sg_hostlist_match(l, host, (size_t)k);
	}
	ASSERT_TRUE(all, "large host list: subdomains of listed hosts found");
	ASSERT_TRUE(!LISTED(l, "h200000.example"), "large host list: an unlisted host not");
	printf("# 200,000 hosts: %zu bytes (%zu a host)\n", sg_hostlist_memory(l),
	       sg_hostlist_memory(l) / n);
	ASSERT_TRUE(sg_hostlist_memory(l) < n * 64, "large host list: under 64 bytes a host");
	sg_hostlist_free(l);
}

int main(void)
{
	test_extraction();
	test_bounds();
	test_fast_paths();
	test_host_lists();
	test_large_host_list();
	return test_exit_status();
}
