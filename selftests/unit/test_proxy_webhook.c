/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_proxy_webhook.c - the webhook sender (proxy/webhook.c) against a real
 * HTTP server: selftests/tools/webhook_server.py (Python's http.server), run
 * as a child on 127.0.0.1 and a port of its choosing, which records every
 * request it gets and misbehaves as told. Checks: URLs parsed precisely or
 * refused with what and where; events arriving in order with the right
 * headers and exact bodies, at every URL; retries spaced by the back-off; a
 * dead or stalled URL delaying no other; giving up after the attempts; a
 * full queue dropping and counting; post() never blocking; free() keeping
 * its drain deadline; hostile replies; https:// with a test CA.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <unistd.h>
#include "parse.h"
#include "test.h"
#include "webhook.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define MAX_SERVERS 16
#define MAX_REQUESTS 64

static char temp_dir[64];
static char server_script[4096];
static pid_t servers[MAX_SERVERS];
static int n_servers;

/* ------------------------------------------------------------------ */
/* the server */

struct server {
	pid_t pid;
	int port;
	char log[256];
};

/* The script beside this test's source: found from the binary's place
 * (build/selftests/ or build/asan/selftests/), or from the working
 * directory (the tree's top, as make check runs). */
static int find_server_script(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *env = getenv("SG_WEBHOOK_SERVER");

	if (env && access(env, R_OK) == 0) {
		snprintf(server_script, sizeof(server_script), "%s", env);
		return 0;
	}
	if (n > 0) {
		exe[n] = '\0';
		for (int up = 0; up < 5; up++) {
			char *slash = strrchr(exe, '/');

			if (!slash)
				break;
			*slash = '\0';
			snprintf(server_script, sizeof(server_script),
				 "%.4000s/selftests/tools/webhook_server.py", exe);
			if (access(server_script, R_OK) == 0)
				return 0;
		}
	}
	snprintf(server_script, sizeof(server_script), "selftests/tools/webhook_server.py");
	return access(server_script, R_OK);
}

/* Starts the server with args (NULL-terminated) and waits, at most 10 s,
 * for the port it listens on. */
static int server_start(struct server *s, const char *const *args)
{
	static int serial;
	char port_file[256], line[32];
	const char *argv[32];
	int argc = 0;
	uint64_t until;

	memset(s, 0, sizeof(*s));
	serial++;
	snprintf(s->log, sizeof(s->log), "%s/requests-%d", temp_dir, serial);
	snprintf(port_file, sizeof(port_file), "%s/port-%d", temp_dir, serial);
	argv[argc++] = "python3";
	argv[argc++] = server_script;
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--log";
	argv[argc++] = s->log;
	argv[argc++] = "--port-file";
	argv[argc++] = port_file;
	for (int i = 0; args && args[i] && argc < 31; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	fflush(stdout);
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		/* the server dies with the test, whatever becomes of the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp("python3", (char *const *)argv);
		fprintf(stderr, "exec python3: %s\n", strerror(errno));
		_exit(127);
	}
	if (n_servers < MAX_SERVERS)
		servers[n_servers++] = s->pid;
	until = sg_now_ns() + 10 * SEC;
	while (sg_now_ns() < until) {
		FILE *f = fopen(port_file, "r");

		if (f) {
			if (fgets(line, sizeof(line), f))
				s->port = atoi(line);
			fclose(f);
			if (s->port > 0)
				return 0;
		}
		if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			s->pid = 0;
			return -1;
		}
		usleep(10000);
	}
	return -1;
}

static void server_stop(struct server *s)
{
	uint64_t until = sg_now_ns() + 2 * SEC;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	while (waitpid(s->pid, NULL, WNOHANG) != s->pid) {
		if (sg_now_ns() > until) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
			break;
		}
		usleep(5000);
	}
	for (int i = 0; i < n_servers; i++)
		if (servers[i] == s->pid)
			servers[i] = 0;
	s->pid = 0;
}

static void remove_temp_dir(void)
{
	DIR *d;
	struct dirent *e;

	for (int i = 0; i < n_servers; i++) {
		if (servers[i] > 0) {
			kill(servers[i], SIGKILL);
			waitpid(servers[i], NULL, 0);
		}
	}
	if (!temp_dir[0] || !(d = opendir(temp_dir)))
		return;
	while ((e = readdir(d))) {
		char path[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", temp_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(temp_dir);
}

/* ------------------------------------------------------------------ */
/* what the server recorded */

struct request {
	int seq;
	uint64_t t_ns;
	char answer[16], method[16], path[256];
	int headers;
	char header_name[16][64], header_value[16][256];
	char body[4096];
	size_t body_len;
};

static struct request requests[MAX_REQUESTS];

/* Reads the server's log into requests[]; returns how many (whole ones). */
static int read_requests(const struct server *s)
{
	static char buf[1 << 20];
	size_t len = 0, at = 0;
	int n = 0;
	FILE *f = fopen(s->log, "rb");

	if (!f)
		return 0;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	while (at < len && n < MAX_REQUESTS) {
		struct request *r = &requests[n];
		char *line = buf + at, *lf = memchr(line, '\n', len - at);
		unsigned long long t;
		size_t body_len;

		memset(r, 0, sizeof(*r));
		if (!lf)
			break;
		*lf = '\0';
		if (sscanf(line, "request %d %llu %15s %15s %255s", &r->seq, &t, r->answer,
			   r->method, r->path) != 5)
			break;
		r->t_ns = t;
		at = (size_t)(lf - buf) + 1;
		while (at < len && !strncmp(buf + at, "header ", 7)) {
			char *colon;

			line = buf + at + 7;
			lf = memchr(line, '\n', len - at - 7);
			if (!lf)
				return n;
			*lf = '\0';
			colon = strstr(line, ": ");
			if (colon && r->headers < 16) {
				*colon = '\0';
				snprintf(r->header_name[r->headers], 64, "%s", line);
				snprintf(r->header_value[r->headers], 256, "%s", colon + 2);
				r->headers++;
			}
			at = (size_t)(lf - buf) + 1;
		}
		if (sscanf(buf + at, "body %zu\n", &body_len) != 1)
			return n;
		lf = memchr(buf + at, '\n', len - at);
		if (!lf)
			return n;
		at = (size_t)(lf - buf) + 1;
		if (at + body_len + 5 > len || memcmp(buf + at + body_len, "\nend\n", 5))
			return n;	/* not all written yet */
		r->body_len = body_len < sizeof(r->body) ? body_len : sizeof(r->body);
		memcpy(r->body, buf + at, r->body_len);
		at += body_len + 5;
		n++;
	}
	return n;
}

static const char *header(const struct request *r, const char *name)
{
	for (int i = 0; i < r->headers; i++)
		if (!strcasecmp(r->header_name[i], name))
			return r->header_value[i];
	return NULL;
}

/* Waits at most timeout for the server to have recorded n requests. */
static int wait_requests(const struct server *s, int n, uint64_t timeout)
{
	uint64_t until = sg_now_ns() + timeout;
	int got;

	while ((got = read_requests(s)) < n && sg_now_ns() < until)
		usleep(5000);
	return got;
}

/* Waits at most timeout for URL url's count at offset (a field of struct
 * sg_webhook_url_stats) to reach want; returns the count. */
static uint64_t wait_count(struct sg_webhooks *wh, int url, size_t offset, uint64_t want,
			   uint64_t timeout)
{
	uint64_t until = sg_now_ns() + timeout, got;
	struct sg_webhook_stats st;

	for (;;) {
		sg_webhooks_stats(wh, &st);
		memcpy(&got, (const char *)&st.url[url] + offset, sizeof(got));
		if (got >= want || sg_now_ns() >= until)
			return got;
		usleep(2000);
	}
}
#define DELIVERED offsetof(struct sg_webhook_url_stats, delivered)
#define EXPIRED offsetof(struct sg_webhook_url_stats, expired)

/* Limits that make the test quick: an attempt has 500 ms, the back-off
 * starts at 100 ms. */
static struct sg_webhook_limits quick_limits(void)
{
	return (struct sg_webhook_limits){
		.timeout_ns = 500 * MS,
		.backoff_ns = 100 * MS,
		.backoff_max_ns = 400 * MS,
		.max_attempts = 5,
	};
}

static struct sg_webhooks *start_webhooks(const char *const *urls, int n,
					  const struct sg_webhook_limits *limits)
{
	char err[SG_ERR_LEN];
	struct sg_webhooks *wh = sg_webhooks_new(urls, n, limits, err, sizeof(err));

	if (!wh)
		printf("# sg_webhooks_new: %s\n", err);
	return wh;
}

/* ------------------------------------------------------------------ */
/* URLs */

static void test_url_errors(void)
{
	static const struct {
		const char *url, *error;
	} cases[] = {
		{ "ftp://x", "is not an http:// or https:// URL" },
		{ "10.0.0.5:8080/smtpguard", "is not an http:// or https:// URL" },
		{ "http://", "has no host" },
		{ "https:///smtpguard", "has no host" },
		{ "http://:8080/", "has no host before the ':' at position 8" },
		{ "http://[::1/x", "has no ']' closing the IPv6 address opened at position 8" },
		{ "http://[fe80::1%25eth0]/", "IPv6 zone" },
		{ "http://[::g]/", "'[::g]', which is not an IPv6 address" },
		{ "http://[::1]x/", "has 'x' at position 13 after its host" },
		{ "http://10.0.0.256/", "'10.0.0.256', which is not an IPv4 address" },
		{ "http://10.1/", "'10.1', which is not an IPv4 address" },
		{ "http://010.0.0.1/", "not an IPv4 address" },
		{ "http://host:0/", "the port '0' at position 13, which is not a number from 1 to 65535" },
		{ "http://host:65536/", "the port '65536' at position 13" },
		{ "http://host:/", "the port '' at position 13" },
		{ "http://host:8o/", "the port '8o'" },
		{ "http://host:000000080/", "the port '000000080'" },
		{ "http://user:secret@host/", "user name or password" },
		{ "http://ho_st/", "'_' at position 10, which cannot be in a host name" },
		{ "http://-host/", "beginning with '-' at position 8" },
		{ "http://host-/", "ending in '-' at position 12" },
		{ "http://a..b/", "empty label in its host name at position 10" },
		{ "http://host/a b", "byte 0x20 at position 14" },
		{ "http://host/a\r\nX-Evil: 1", "'http://host/a\\x0d\\x0aX-Evil: 1' has byte 0x0d at position 14" },
		{ "http://h\xc3\xa9st/", "'http://h\\xc3\\xa9st/' has byte 0xc3 at position 9" },
		{ "http://host/x#frag", "fragment ('#' at position 14)" },
	};
	struct sg_webhook_url u;
	char err[SG_ERR_LEN], name[128], long_url[3000];

	ASSERT_EQ(sg_webhook_parse_url("ftp://x", &u, err, sizeof(err)), -1, "url: ftp:// refused");
	ASSERT_STREQ(err, "webhook_urls: 'ftp://x' is not an http:// or https:// URL",
		     "url: the error names the key and the URL");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char shown[48];
		size_t k;

		/* the check's name on one line, whatever the URL holds */
		for (k = 0; cases[i].url[k] && k < sizeof(shown) - 1; k++) {
			unsigned char c = (unsigned char)cases[i].url[k];

			shown[k] = c < 0x20 || c > 0x7e ? '?' : (char)c;
		}
		shown[k] = '\0';
		err[0] = '\0';
		snprintf(name, sizeof(name), "url: '%s' refused", shown);
		ASSERT_EQ(sg_webhook_parse_url(cases[i].url, &u, err, sizeof(err)), -1, name);
		snprintf(name, sizeof(name), "url: '%s': the error says where", shown);
		ASSERT_CONTAINS(err, cases[i].error, name);
	}
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	memcpy(long_url, "http://h/", 9);
	ASSERT_EQ(sg_webhook_parse_url(long_url, &u, err, sizeof(err)), -1, "url: 2999 characters refused");
	ASSERT_CONTAINS(err, "is longer than 2047 characters", "url: too long, says the limit");
	memset(long_url, 'a', 300);
	memcpy(long_url, "http://", 7);
	strcpy(long_url + 300, "/x");
	ASSERT_EQ(sg_webhook_parse_url(long_url, &u, err, sizeof(err)), -1, "url: a 293-character host refused");
	ASSERT_CONTAINS(err, "host name longer than 253", "url: the host is too long, says so");
}

static void test_url_parts(void)
{
	struct sg_webhook_url u;
	char err[SG_ERR_LEN] = "";

	ASSERT_EQ(sg_webhook_parse_url("http://10.0.0.5:8080/smtpguard", &u, err, sizeof(err)), 0,
		  "url: http://10.0.0.5:8080/smtpguard parsed");
	ASSERT_EQ(u.tls, 0, "url: http:// is plain");
	ASSERT_EQ(u.family, AF_INET, "url: 10.0.0.5 is an IPv4 address");
	ASSERT_STREQ(u.host, "10.0.0.5", "url: its host");
	ASSERT_EQ(u.port, 8080, "url: its port");
	ASSERT_STREQ(u.path, "/smtpguard", "url: its path");
	ASSERT_STREQ(u.authority, "10.0.0.5:8080", "url: its Host header keeps the port");

	ASSERT_EQ(sg_webhook_parse_url("https://Hooks.Example.com", &u, err, sizeof(err)), 0,
		  "url: https://Hooks.Example.com parsed");
	ASSERT_EQ(u.tls, 1, "url: https:// is TLS");
	ASSERT_EQ(u.family, AF_UNSPEC, "url: a name, to be looked up");
	ASSERT_STREQ(u.host, "Hooks.Example.com", "url: the name as written");
	ASSERT_EQ(u.port, 443, "url: https's port by default");
	ASSERT_STREQ(u.path, "/", "url: no path is /");
	ASSERT_STREQ(u.authority, "Hooks.Example.com", "url: the Host header without the default port");

	ASSERT_EQ(sg_webhook_parse_url("HTTPS://[2001:db8::1]:8443/in/x?key=a%20b&y=1", &u, err,
				       sizeof(err)), 0, "url: an IPv6 address with a port and query parsed");
	ASSERT_EQ(u.family, AF_INET6, "url: [2001:db8::1] is an IPv6 address");
	ASSERT_STREQ(u.host, "2001:db8::1", "url: the address without brackets");
	ASSERT_EQ(u.port, 8443, "url: the IPv6 URL's port");
	ASSERT_STREQ(u.path, "/in/x?key=a%20b&y=1", "url: the path with its query, as written");
	ASSERT_STREQ(u.authority, "[2001:db8::1]:8443", "url: the Host header brackets the address");

	ASSERT_EQ(sg_webhook_parse_url("http://example.net?x=1", &u, err, sizeof(err)), 0,
		  "url: a query without a path parsed");
	ASSERT_STREQ(u.path, "/?x=1", "url: the query gets the path /");
	ASSERT_EQ(sg_webhook_parse_url("http://example.net.:80/", &u, err, sizeof(err)), 0,
		  "url: a final dot and the default port parsed");
	ASSERT_STREQ(u.authority, "example.net.", "url: the default port is left out of Host");
}

static void test_new_errors(void)
{
	const char *urls[SG_WEBHOOK_MAX_URLS + 1];
	char err[SG_ERR_LEN] = "";
	struct sg_webhook_limits bad_ca = { .tls_ca_file = "/nonexistent/ca.pem" };

	for (int i = 0; i <= SG_WEBHOOK_MAX_URLS; i++)
		urls[i] = "http://127.0.0.1:9/";
	ASSERT_TRUE(!sg_webhooks_new(urls, 0, NULL, err, sizeof(err)), "new: no URL refused");
	ASSERT_CONTAINS(err, "webhook_urls: no URL", "new: no URL, says so");
	ASSERT_TRUE(!sg_webhooks_new(urls, SG_WEBHOOK_MAX_URLS + 1, NULL, err, sizeof(err)),
		    "new: 9 URLs refused");
	ASSERT_CONTAINS(err, "9 URLs given, at most 8", "new: too many URLs, says the limit");
	ASSERT_TRUE(!sg_webhooks_new(urls, 2, NULL, err, sizeof(err)), "new: a URL twice refused");
	ASSERT_CONTAINS(err, "'http://127.0.0.1:9/' is listed twice", "new: the repeated URL named");
	urls[1] = "http://127.0.0.1:9/ok";
	urls[2] = "gopher://127.0.0.1/";
	ASSERT_TRUE(!sg_webhooks_new(urls, 3, NULL, err, sizeof(err)), "new: a bad third URL refused");
	ASSERT_CONTAINS(err, "'gopher://127.0.0.1/' is not an http:// or https:// URL",
			"new: the bad URL named");
	urls[0] = "https://127.0.0.1:9/";
	ASSERT_TRUE(!sg_webhooks_new(urls, 1, &bad_ca, err, sizeof(err)),
		    "new: an unreadable CA file refused");
	ASSERT_CONTAINS(err, "webhook_tls_ca_file: cannot load /nonexistent/ca.pem",
			"new: the CA file named");
}

/* ------------------------------------------------------------------ */
/* delivery */

static void test_in_order_exact(void)
{
	/* the last one is what a tenant could try: a HELO that ends the
	 * request and starts another; it must stay inside the body */
	static const char *const bodies[] = {
		"{\"event\":\"flag\",\"source\":\"192.0.2.10\",\"n\":1}",
		"{\"event\":\"tempfail\",\"source\":\"192.0.2.10\",\"n\":2}",
		"{\"event\":\"refuse\",\"helo\":\"caf\xc3\xa9 \\\"quoted\\\"\",\"n\":3}",
		"",
		"{\"helo\":\"x\r\n\r\nPOST /evil HTTP/1.1\r\nHost: evil\r\nContent-Length: 0\r\n\r\n\",\"n\":5}",
	};
	const int n = sizeof(bodies) / sizeof(bodies[0]);
	struct server s;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhook_stats st;
	struct sg_webhooks *wh;
	char url[128], host[64], len[24], name[128];
	const char *urls[1] = { url };
	int got, posted = 0;

	if (!ASSERT_EQ(server_start(&s, NULL), 0, "in order: the HTTP server started"))
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/smtpguard", s.port);
	wh = start_webhooks(urls, 1, &limits);
	if (!ASSERT_TRUE(wh != NULL, "in order: webhooks started")) {
		server_stop(&s);
		return;
	}
	for (int i = 0; i < n; i++)
		posted += sg_webhooks_post(wh, bodies[i], strlen(bodies[i])) == 0;
	ASSERT_EQ(posted, n, "in order: every event queued");
	ASSERT_EQ(wait_count(wh, 0, DELIVERED, (uint64_t)n, 5 * SEC), n, "in order: all delivered");
	got = wait_requests(&s, n, 2 * SEC);
	usleep(100000);	/* a smuggled request would come now */
	got = read_requests(&s);
	ASSERT_EQ(got, n, "in order: one request an event, none smuggled in a body");
	snprintf(host, sizeof(host), "127.0.0.1:%d", s.port);
	for (int i = 0; i < n && i < got; i++) {
		const struct request *r = &requests[i];

		snprintf(len, sizeof(len), "%zu", strlen(bodies[i]));
		snprintf(name, sizeof(name), "in order: request %d: POST", i + 1);
		ASSERT_STREQ(r->method, "POST", name);
		snprintf(name, sizeof(name), "in order: request %d: the URL's path", i + 1);
		ASSERT_STREQ(r->path, "/smtpguard", name);
		snprintf(name, sizeof(name), "in order: request %d: Host", i + 1);
		ASSERT_STREQ(header(r, "Host"), host, name);
		snprintf(name, sizeof(name), "in order: request %d: Content-Type", i + 1);
		ASSERT_STREQ(header(r, "Content-Type"), "application/json", name);
		snprintf(name, sizeof(name), "in order: request %d: Content-Length", i + 1);
		ASSERT_STREQ(header(r, "Content-Length"), len, name);
		snprintf(name, sizeof(name), "in order: request %d: User-Agent", i + 1);
		ASSERT_STREQ(header(r, "User-Agent"), "smtpguard", name);
		snprintf(name, sizeof(name), "in order: request %d: the body, byte for byte", i + 1);
		ASSERT_TRUE(r->body_len == strlen(bodies[i]) &&
			    !memcmp(r->body, bodies[i], r->body_len), name);
	}
	sg_webhooks_stats(wh, &st);
	ASSERT_EQ(st.queued, n, "in order: counted queued");
	ASSERT_EQ(st.delivered, n, "in order: counted delivered");
	ASSERT_EQ(st.retried + st.dropped + st.expired, 0, "in order: no retry, drop or expiry");
	ASSERT_EQ(st.waiting, 0, "in order: nothing waiting");
	ASSERT_STREQ(st.url[0].url, url, "in order: the counts name the URL");
	sg_webhooks_free(wh, SEC);
	server_stop(&s);
}

static void test_two_urls(void)
{
	struct server a, b;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhooks *wh;
	char url_a[128], url_b[128], body[64], name[96];
	const char *urls[2] = { url_a, url_b };

	if (!ASSERT_EQ(server_start(&a, NULL) | server_start(&b, NULL), 0,
		       "two URLs: both servers started"))
		goto out;
	snprintf(url_a, sizeof(url_a), "http://127.0.0.1:%d/a", a.port);
	snprintf(url_b, sizeof(url_b), "http://127.0.0.1:%d/b", b.port);
	wh = start_webhooks(urls, 2, &limits);
	if (!ASSERT_TRUE(wh != NULL, "two URLs: webhooks started"))
		goto out;
	for (int i = 1; i <= 4; i++) {
		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		sg_webhooks_post(wh, body, strlen(body));
	}
	ASSERT_EQ(wait_count(wh, 0, DELIVERED, 4, 5 * SEC), 4, "two URLs: the first got all 4");
	ASSERT_EQ(wait_count(wh, 1, DELIVERED, 4, 5 * SEC), 4, "two URLs: the second got all 4");
	for (int k = 0; k < 2; k++) {
		const struct server *s = k ? &b : &a;
		int got = wait_requests(s, 4, 2 * SEC), ordered = got == 4;

		for (int i = 0; i < got; i++) {
			snprintf(body, sizeof(body), "{\"n\":%d}", i + 1);
			ordered &= requests[i].body_len == strlen(body) &&
				   !memcmp(requests[i].body, body, requests[i].body_len) &&
				   !strcmp(requests[i].path, k ? "/b" : "/a");
		}
		snprintf(name, sizeof(name), "two URLs: server %c has the 4 events in order at its path",
			 'a' + k);
		ASSERT_TRUE(ordered, name);
	}
	sg_webhooks_free(wh, SEC);
out:
	server_stop(&a);
	server_stop(&b);
}

static void test_retry_after_500(void)
{
	static const char *const args[] = { "--fail-first", "2", NULL };
	struct server s;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhook_stats st;
	struct sg_webhooks *wh;
	char url[128];
	const char *urls[1] = { url };
	const char *body = "{\"event\":\"refuse\"}";
	int got;

	limits.backoff_ns = 200 * MS;
	limits.backoff_max_ns = 2 * SEC;
	if (!ASSERT_EQ(server_start(&s, args), 0, "500s: the HTTP server started"))
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", s.port);
	wh = start_webhooks(urls, 1, &limits);
	if (!ASSERT_TRUE(wh != NULL, "500s: webhooks started")) {
		server_stop(&s);
		return;
	}
	sg_webhooks_post(wh, body, strlen(body));
	ASSERT_EQ(wait_count(wh, 0, DELIVERED, 1, 5 * SEC), 1, "500s: delivered in the end");
	got = wait_requests(&s, 3, 2 * SEC);
	ASSERT_EQ(got, 3, "500s: three attempts, no more");
	if (got == 3) {
		uint64_t gap1 = requests[1].t_ns - requests[0].t_ns;
		uint64_t gap2 = requests[2].t_ns - requests[1].t_ns;

		ASSERT_STREQ(requests[0].answer, "500", "500s: the first attempt got 500");
		ASSERT_STREQ(requests[1].answer, "500", "500s: the second attempt got 500");
		ASSERT_STREQ(requests[2].answer, "200", "500s: the third attempt got 200");
		ASSERT_TRUE(requests[2].body_len == strlen(body) &&
			    !memcmp(requests[2].body, body, strlen(body)), "500s: the same body again");
		/* 200 ms then 400 ms, less a quarter of jitter at most */
		printf("# back-off observed: %llu ms, then %llu ms\n",
		       (unsigned long long)(gap1 / MS), (unsigned long long)(gap2 / MS));
		ASSERT_TRUE(gap1 >= 150 * MS, "500s: the first retry waited the back-off (>= 150 ms)");
		ASSERT_TRUE(gap2 >= 300 * MS, "500s: the second retry waited twice as long (>= 300 ms)");
		ASSERT_TRUE(gap2 > gap1, "500s: the back-off grows");
	}
	sg_webhooks_stats(wh, &st);
	ASSERT_EQ(st.retried, 2, "500s: counted 2 retries");
	ASSERT_EQ(st.expired, 0, "500s: nothing given up");
	ASSERT_EQ(st.url[0].failing, 0, "500s: not failing any more");
	sg_webhooks_free(wh, SEC);
	server_stop(&s);
}

/* A port nothing listens on, kept so: bound, never listening. */
static int dead_port(int *fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);

	*fd = socket(AF_INET, SOCK_STREAM, 0);
	if (*fd < 0 || bind(*fd, (struct sockaddr *)&sin, sizeof(sin)) ||
	    getsockname(*fd, (struct sockaddr *)&sin, &len))
		return -1;
	return ntohs(sin.sin_port);
}

static void test_dead_url(void)
{
	struct server live;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhook_stats st;
	struct sg_webhooks *wh = NULL;
	char url_dead[128], url_live[128], body[32];
	const char *urls[2] = { url_dead, url_live };
	int fd = -1, port = dead_port(&fd);
	uint64_t start, took;

	limits.max_attempts = 3;
	limits.backoff_ns = 100 * MS;
	limits.backoff_max_ns = 200 * MS;
	if (!ASSERT_TRUE(port > 0, "dead URL: a port nobody listens on") ||
	    !ASSERT_EQ(server_start(&live, NULL), 0, "dead URL: the live server started"))
		goto out;
	snprintf(url_dead, sizeof(url_dead), "http://127.0.0.1:%d/dead", port);
	snprintf(url_live, sizeof(url_live), "http://127.0.0.1:%d/live", live.port);
	wh = start_webhooks(urls, 2, &limits);
	if (!ASSERT_TRUE(wh != NULL, "dead URL: webhooks started"))
		goto out;
	start = sg_now_ns();
	for (int i = 1; i <= 3; i++) {
		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		sg_webhooks_post(wh, body, strlen(body));
	}
	ASSERT_EQ(wait_count(wh, 1, DELIVERED, 3, 5 * SEC), 3, "dead URL: the live one got all 3");
	took = sg_now_ns() - start;
	printf("# the live URL had its 3 events after %llu ms\n", (unsigned long long)(took / MS));
	ASSERT_TRUE(took < 1 * SEC, "dead URL: the live one was not held back (< 1 s)");
	ASSERT_EQ(wait_count(wh, 0, EXPIRED, 3, 10 * SEC), 3, "dead URL: its 3 events expired");
	sg_webhooks_stats(wh, &st);
	ASSERT_EQ(st.url[0].delivered, 0, "dead URL: nothing delivered to it");
	ASSERT_EQ(st.url[0].retried, 6, "dead URL: 2 retries an event (3 attempts)");
	ASSERT_EQ(st.url[0].failing, 9, "dead URL: 9 failed attempts in a row");
	ASSERT_EQ(st.url[0].waiting, 0, "dead URL: nothing left waiting for it");
	ASSERT_EQ(st.url[1].retried + st.url[1].expired, 0, "dead URL: the live one never retried");
	ASSERT_EQ(st.expired, 3, "dead URL: the totals count the expiries");
out:
	sg_webhooks_free(wh, 0);
	server_stop(&live);
	if (fd >= 0)
		close(fd);
}

static void test_stalled_server(void)
{
	static const char *const stall_first[] = { "--answer", "stall", "--first", "1", NULL };
	struct server stalled, live;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhook_stats st;
	struct sg_webhooks *wh = NULL;
	char url_stalled[128], url_live[128];
	const char *urls[2] = { url_stalled, url_live };
	const char *body = "{\"event\":\"tempfail\"}";
	uint64_t start, live_took, stalled_took;
	int got;

	limits.timeout_ns = 800 * MS;
	if (!ASSERT_EQ(server_start(&stalled, stall_first) | server_start(&live, NULL), 0,
		       "stall: both servers started"))
		goto out;
	snprintf(url_stalled, sizeof(url_stalled), "http://127.0.0.1:%d/stalls", stalled.port);
	snprintf(url_live, sizeof(url_live), "http://127.0.0.1:%d/live", live.port);
	wh = start_webhooks(urls, 2, &limits);
	if (!ASSERT_TRUE(wh != NULL, "stall: webhooks started"))
		goto out;
	start = sg_now_ns();
	sg_webhooks_post(wh, body, strlen(body));
	wait_count(wh, 1, DELIVERED, 1, 5 * SEC);
	live_took = sg_now_ns() - start;
	ASSERT_EQ(wait_count(wh, 0, DELIVERED, 1, 5 * SEC), 1,
		  "stall: the stalled URL got it on a later attempt");
	stalled_took = sg_now_ns() - start;
	printf("# live URL: %llu ms; stalled URL: %llu ms (timeout 800 ms)\n",
	       (unsigned long long)(live_took / MS), (unsigned long long)(stalled_took / MS));
	ASSERT_TRUE(live_took < 400 * MS, "stall: the live URL did not wait for the stalled one");
	ASSERT_TRUE(stalled_took >= 800 * MS, "stall: the stalled attempt ran its whole timeout");
	got = wait_requests(&stalled, 2, 2 * SEC);
	ASSERT_EQ(got, 2, "stall: the stalled server saw the attempt and the retry");
	if (got == 2)
		ASSERT_TRUE(requests[1].t_ns - requests[0].t_ns >= 800 * MS,
			    "stall: the retry came after the timeout");
	sg_webhooks_stats(wh, &st);
	ASSERT_EQ(st.url[0].retried, 1, "stall: counted 1 retry");
	ASSERT_EQ(st.url[1].retried, 0, "stall: the live URL no retry");
out:
	sg_webhooks_free(wh, SEC);
	server_stop(&stalled);
	server_stop(&live);
}

static void test_full_queue(void)
{
	static const char *const stall[] = { "--stall", NULL };
	struct server s;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhook_stats st;
	struct sg_webhooks *wh;
	char url[128], body[1100];
	const char *urls[1] = { url };
	int queued = 0, dropped = 0;
	uint64_t start, took;

	if (!ASSERT_EQ(server_start(&s, stall), 0, "full queue: the stalling server started"))
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/full", s.port);
	limits.queue_events = 4;
	limits.timeout_ns = 10 * SEC;
	wh = start_webhooks(urls, 1, &limits);
	if (!ASSERT_TRUE(wh != NULL, "full queue: webhooks started"))
		goto out;
	for (int i = 0; i < 10; i++) {
		if (sg_webhooks_post(wh, "{}", 2) == 0)
			queued++;
		else
			dropped++;
	}
	ASSERT_EQ(queued, 4, "full queue: 4 events queued (queue_events 4)");
	ASSERT_EQ(dropped, 6, "full queue: 6 refused with -1");
	sg_webhooks_stats(wh, &st);
	ASSERT_EQ(st.queued, 4, "full queue: counted 4 queued");
	ASSERT_EQ(st.dropped, 6, "full queue: counted 6 dropped");
	ASSERT_EQ(st.waiting, 4, "full queue: 4 waiting");
	start = sg_now_ns();
	sg_webhooks_free(wh, 0);
	took = sg_now_ns() - start;
	ASSERT_TRUE(took < 200 * MS, "full queue: free without a drain returns at once");

	/* by bytes: 300-byte events into 1000 bytes */
	limits.queue_events = 100;
	limits.queue_bytes = 1000;
	wh = start_webhooks(urls, 1, &limits);
	if (!ASSERT_TRUE(wh != NULL, "full queue: webhooks (1000 bytes) started"))
		goto out;
	memset(body, 'x', sizeof(body));
	queued = 0;
	for (int i = 0; i < 4; i++)
		queued += sg_webhooks_post(wh, body, 300) == 0;
	ASSERT_EQ(queued, 3, "full queue: 3 events of 300 bytes fit in 1000");
	ASSERT_EQ(sg_webhooks_post(wh, body, 1001), -1, "full queue: an event over queue_bytes dropped");
	sg_webhooks_stats(wh, &st);
	ASSERT_EQ(st.dropped, 2, "full queue: counted 2 dropped by size");
	sg_webhooks_free(wh, 0);
out:
	server_stop(&s);
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 10,000 posts while the only URL's server stalls, timed one by one:
 * first into a queue with room, then into a full one. */
static void test_post_never_blocks(void)
{
	static const char *const stall[] = { "--stall", NULL };
	static uint64_t took[10000];
	struct server s;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhook_stats st;
	struct sg_webhooks *wh;
	char url[128], body[400], name[128];
	const char *urls[1] = { url };

	if (!ASSERT_EQ(server_start(&s, stall), 0, "never blocks: the stalling server started"))
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", s.port);
	limits.timeout_ns = 30 * SEC;
	memset(body, 'e', sizeof(body));
	for (int round = 0; round < 2; round++) {
		const char *what = round ? "full queue" : "queue with room";
		int n = 10000, slow = 0, slow_preempted = 0, slow_waited = 0, slow_cpu = 0;
		uint64_t start;

		limits.queue_events = round ? 1000 : 20000;
		limits.queue_bytes = 64 << 20;
		wh = start_webhooks(urls, 1, &limits);
		if (!ASSERT_TRUE(wh != NULL, "never blocks: webhooks started"))
			break;
		usleep(50000);	/* the sender is up and waiting on the server */
		for (int i = 0; i < n; i++) {
			struct rusage before, after;

			/* the thread's context switches tell a post that slept
			 * (voluntary: it waited on something) from one the
			 * scheduler set aside for another (involuntary) */
			uint64_t cpu0, cpu;

			getrusage(RUSAGE_THREAD, &before);
			cpu0 = thread_cpu_ns();
			start = sg_now_ns();
			sg_webhooks_post(wh, body, sizeof(body));
			took[i] = sg_now_ns() - start;
			cpu = thread_cpu_ns() - cpu0;
			getrusage(RUSAGE_THREAD, &after);
			if (took[i] >= MS) {
				slow++;
				slow_preempted += after.ru_nivcsw != before.ru_nivcsw;
				slow_waited += after.ru_nvcsw != before.ru_nvcsw;
				slow_cpu += cpu >= MS;
			}
		}
		sg_webhooks_stats(wh, &st);
		qsort(took, (size_t)n, sizeof(took[0]), compare_u64);
		printf("# 10000 posts into a %s: median %llu ns, 99.9%% %llu ns, max %llu ns\n",
		       what, (unsigned long long)took[n / 2], (unsigned long long)took[n * 999 / 1000],
		       (unsigned long long)took[n - 1]);
		snprintf(name, sizeof(name), "never blocks: %s: queued and dropped add up", what);
		ASSERT_EQ(st.queued + st.dropped, n, name);
		snprintf(name, sizeof(name), "never blocks: %s: 99.9%% of posts under 100 us", what);
		ASSERT_TRUE(took[n * 999 / 1000] < 100000, name);
		if (slow)
			printf("# %d post(s) took 1 ms or more: %d preempted by the scheduler, %d "
			       "slept, %d used 1 ms of CPU\n", slow, slow_preempted, slow_waited,
			       slow_cpu);
		/* on a busy machine the scheduler (or, in a VM, the hypervisor,
		 * which no context switch shows) may set the thread aside in the
		 * middle of a post; that is not the post waiting (a wait would
		 * sleep: below) nor working (its CPU time) */
		snprintf(name, sizeof(name), "never blocks: %s: every post under 1 ms of CPU",
			 what);
		ASSERT_EQ(slow_cpu, 0, name);
		snprintf(name, sizeof(name), "never blocks: %s: no post slept", what);
		ASSERT_EQ(slow_waited, 0, name);
		/* free keeps its drain deadline though nothing can drain */
		start = sg_now_ns();
		sg_webhooks_free(wh, 300 * MS);
		start = sg_now_ns() - start;
		printf("# free(300 ms) with %llu events stuck returned after %llu ms\n",
		       (unsigned long long)st.waiting, (unsigned long long)(start / MS));
		snprintf(name, sizeof(name), "never blocks: %s: free(300 ms) returned within it "
			 "(and 100 ms)", what);
		ASSERT_TRUE(start >= 290 * MS && start < 400 * MS, name);
	}
	server_stop(&s);
}

static void test_drain(void)
{
	struct server s;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhooks *wh;
	char url[128], body[32];
	const char *urls[1] = { url };
	uint64_t start, took;
	int got, ordered;

	if (!ASSERT_EQ(server_start(&s, NULL), 0, "drain: the HTTP server started"))
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/drain", s.port);
	wh = start_webhooks(urls, 1, &limits);
	if (!ASSERT_TRUE(wh != NULL, "drain: webhooks started"))
		goto out;
	for (int i = 1; i <= 20; i++) {
		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		sg_webhooks_post(wh, body, strlen(body));
	}
	start = sg_now_ns();
	sg_webhooks_free(wh, 5 * SEC);
	took = sg_now_ns() - start;
	printf("# free(5 s) drained 20 events in %llu ms\n", (unsigned long long)(took / MS));
	ASSERT_TRUE(took < 5 * SEC, "drain: free returned as soon as the queue was empty");
	got = read_requests(&s);
	ASSERT_EQ(got, 20, "drain: all 20 events reached the server before free returned");
	ordered = got == 20;
	for (int i = 0; i < got; i++) {
		snprintf(body, sizeof(body), "{\"n\":%d}", i + 1);
		ordered &= requests[i].body_len == strlen(body) &&
			   !memcmp(requests[i].body, body, requests[i].body_len);
	}
	ASSERT_TRUE(ordered, "drain: in order");
out:
	server_stop(&s);
}

/* A server that misbehaves once gets the event on the second attempt; one
 * that answers strangely but with a 2xx status line, on the first. */
static void test_hostile_replies(void)
{
	static const struct {
		const char *mode;
		int retries;
	} cases[] = {
		{ "garbage", 1 },	/* no status line */
		{ "close", 1 },		/* closed without a reply */
		{ "drip", 1 },		/* a byte every 200 ms: the timeout ends it */
		{ "huge-interim", 1 },	/* 1 MiB of header after a 100: read 4 KiB, no more */
		{ "500", 1 },
		{ "interim", 0 },	/* 100 Continue, then 204 */
		{ "huge-headers", 0 },	/* 200, then 1 MiB of header nobody needs */
	};
	char name[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[] = { "--answer", cases[i].mode, "--first", "1", NULL };
		struct server s;
		struct sg_webhook_limits limits = quick_limits();
		struct sg_webhook_stats st;
		struct sg_webhooks *wh;
		char url[128];
		const char *urls[1] = { url };

		snprintf(name, sizeof(name), "hostile %s: the server started", cases[i].mode);
		if (!ASSERT_EQ(server_start(&s, args), 0, name))
			continue;
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
		wh = start_webhooks(urls, 1, &limits);
		if (wh) {
			sg_webhooks_post(wh, "{\"n\":1}", 7);
			snprintf(name, sizeof(name), "hostile %s: delivered %s", cases[i].mode,
				 cases[i].retries ? "on the retry" : "at once");
			ASSERT_EQ(wait_count(wh, 0, DELIVERED, 1, 5 * SEC), 1, name);
			sg_webhooks_stats(wh, &st);
			snprintf(name, sizeof(name), "hostile %s: %d retr%s", cases[i].mode,
				 cases[i].retries, cases[i].retries == 1 ? "y" : "ies");
			ASSERT_EQ(st.retried, cases[i].retries, name);
			sg_webhooks_free(wh, SEC);
		}
		server_stop(&s);
	}
}

/* https://: a test CA (the server's own certificate), by address and by
 * name; and refused against the system's CAs. */
static void test_https(void)
{
	char cert[256], key[256], cmd[1024], url_ip[128], url_name[128], url_untrusted[128];
	const char *args[] = { "--tls-cert", cert, "--tls-key", key, NULL };
	const char *urls[2] = { url_ip, url_name };
	struct server s;
	struct sg_webhook_limits limits = quick_limits();
	struct sg_webhook_stats st;
	struct sg_webhooks *wh;
	int got, seen_ip = 0, seen_name = 0;

	snprintf(cert, sizeof(cert), "%s/cert.pem", temp_dir);
	snprintf(key, sizeof(key), "%s/key.pem", temp_dir);
	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
		 "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
		 "-keyout %s -out %s >/dev/null 2>&1", key, cert);
	if (!ASSERT_EQ(system(cmd), 0, "https: a test certificate made (openssl req)"))
		return;
	if (!ASSERT_EQ(server_start(&s, args), 0, "https: the HTTPS server started"))
		return;
	snprintf(url_ip, sizeof(url_ip), "https://127.0.0.1:%d/by-address", s.port);
	/* a name: looked up by the sender (getaddrinfo_a), sent as SNI, checked
	 * against the certificate */
	snprintf(url_name, sizeof(url_name), "https://localhost:%d/by-name", s.port);
	limits.tls_ca_file = cert;
	limits.timeout_ns = 2 * SEC;
	wh = start_webhooks(urls, 2, &limits);
	if (ASSERT_TRUE(wh != NULL, "https: webhooks with the test CA started")) {
		sg_webhooks_post(wh, "{\"tls\":1}", 9);
		ASSERT_EQ(wait_count(wh, 0, DELIVERED, 1, 5 * SEC), 1,
			  "https: delivered to the address, certificate verified");
		ASSERT_EQ(wait_count(wh, 1, DELIVERED, 1, 5 * SEC), 1,
			  "https: delivered to the name, looked up and verified");
		sg_webhooks_free(wh, SEC);
	}
	got = wait_requests(&s, 2, 2 * SEC);
	for (int i = 0; i < got; i++) {
		int body_ok = requests[i].body_len == 9 && !memcmp(requests[i].body, "{\"tls\":1}", 9);

		seen_ip |= body_ok && !strcmp(requests[i].path, "/by-address");
		seen_name |= body_ok && !strcmp(requests[i].path, "/by-name") &&
			     header(&requests[i], "Host") &&
			     !strncmp(header(&requests[i], "Host"), "localhost:", 10);
	}
	ASSERT_TRUE(seen_ip && seen_name, "https: the server has both requests, bodies exact");

	/* the system's CAs never signed the test certificate */
	snprintf(url_untrusted, sizeof(url_untrusted), "https://127.0.0.1:%d/untrusted", s.port);
	urls[0] = url_untrusted;
	limits = quick_limits();
	limits.max_attempts = 2;
	wh = start_webhooks(urls, 1, &limits);
	if (ASSERT_TRUE(wh != NULL, "https: webhooks with the system's CAs started")) {
		sg_webhooks_post(wh, "{}", 2);
		ASSERT_EQ(wait_count(wh, 0, EXPIRED, 1, 5 * SEC), 1,
			  "https: an untrusted certificate is a failure, given up after 2 attempts");
		sg_webhooks_stats(wh, &st);
		ASSERT_EQ(st.delivered, 0, "https: nothing delivered to an untrusted server");
		sg_webhooks_free(wh, 0);
	}
	ASSERT_EQ(read_requests(&s), got, "https: no request reached the untrusted server's log");
	server_stop(&s);
}

int main(void)
{
	/* SIGPIPE is left as it is: the sender must not die of a peer's reset
	 * even where the daemon's SIG_IGN is missing */
	test_url_errors();
	test_url_parts();
	test_new_errors();
	snprintf(temp_dir, sizeof(temp_dir), "/tmp/sg-webhook-test-XXXXXX");
	if (!ASSERT_TRUE(mkdtemp(temp_dir) != NULL, "a temporary directory")) {
		temp_dir[0] = '\0';
		return test_exit_status();
	}
	atexit(remove_temp_dir);
	if (!ASSERT_EQ(find_server_script(), 0, "selftests/tools/webhook_server.py found"))
		return test_exit_status();
	test_in_order_exact();
	test_two_urls();
	test_retry_after_500();
	test_dead_url();
	test_stalled_server();
	test_full_queue();
	test_post_never_blocks();
	test_drain();
	test_hostile_replies();
	test_https();
	return test_exit_status();
}
