/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_http_request - the metrics listener's request judge
 * (lib/http_request.c) on well-formed and hostile input: partial requests
 * wait, a request that never ends its header is cut at the size limit,
 * bytes a request line may not hold are refused, and only GET and HEAD of
 * /metrics are served.
 */
#include <stdlib.h>
#include <string.h>
#include "http_request.h"
#include "test.h"

#define MAX SG_HTTP_MAX_REQUEST

static enum sg_http_verdict judge(const char *s)
{
	return sg_http_judge(s, strlen(s), "/metrics", MAX);
}

static void test_served(void)
{
	ASSERT_EQ(judge("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"), SG_HTTP_GET,
		  "served: a scraper's GET");
	ASSERT_EQ(judge("GET /metrics HTTP/1.0\r\n\r\n"), SG_HTTP_GET, "served: HTTP/1.0");
	ASSERT_EQ(judge("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), SG_HTTP_GET,
		  "served: a query string is ignored");
	ASSERT_EQ(judge("HEAD /metrics HTTP/1.1\r\n\r\n"), SG_HTTP_HEAD, "served: HEAD");
	ASSERT_EQ(judge("GET /metrics HTTP/1.1\n\n"), SG_HTTP_GET, "served: bare LFs");
	ASSERT_EQ(judge("GET / HTTP/1.1\r\n\r\n"), SG_HTTP_NOT_FOUND, "404: the root");
	ASSERT_EQ(judge("GET /metricsx HTTP/1.1\r\n\r\n"), SG_HTTP_NOT_FOUND,
		  "404: a longer path");
	ASSERT_EQ(judge("GET /metric HTTP/1.1\r\n\r\n"), SG_HTTP_NOT_FOUND, "404: a shorter path");
	ASSERT_EQ(judge("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), SG_HTTP_BAD_METHOD,
		  "405: POST");
	ASSERT_EQ(judge("DELETE /x HTTP/1.1\r\n\r\n"), SG_HTTP_BAD_METHOD,
		  "405: another method, whatever the path");
	ASSERT_EQ(judge("get /metrics HTTP/1.1\r\n\r\n"), SG_HTTP_BAD_METHOD,
		  "405: methods are case-sensitive");
	ASSERT_STREQ(sg_http_status(SG_HTTP_NOT_FOUND), "404 Not Found", "status: 404");
	ASSERT_STREQ(sg_http_status(SG_HTTP_BAD_METHOD), "405 Method Not Allowed", "status: 405");
}

static void test_incomplete(void)
{
	ASSERT_EQ(judge(""), SG_HTTP_INCOMPLETE, "incomplete: nothing yet");
	ASSERT_EQ(judge("GET /metrics HTTP/1.1\r\n"), SG_HTTP_INCOMPLETE,
		  "incomplete: the header has not ended");
	ASSERT_EQ(judge("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"), SG_HTTP_INCOMPLETE,
		  "incomplete: half the blank line");
	ASSERT_EQ(judge("GET /metr"), SG_HTTP_INCOMPLETE, "incomplete: a slowloris' first bytes");
}

static void test_hostile(void)
{
	char *big = malloc(MAX * 2 + 1);
	char nul[] = "GET /met\0rics HTTP/1.1\r\n\r\n";

	/* a request line with no line break, as long as the limit */
	memset(big, 'A', MAX * 2);
	big[MAX * 2] = '\0';
	ASSERT_EQ(sg_http_judge(big, MAX, "/metrics", MAX), SG_HTTP_TOO_LARGE,
		  "hostile: no line break within the limit: too large");
	ASSERT_EQ(sg_http_judge(big, MAX - 1, "/metrics", MAX), SG_HTTP_INCOMPLETE,
		  "hostile: one byte short of the limit still waits");
	/* endless headers, each ended, the blank line past the limit */
	memcpy(big, "GET /metrics HTTP/1.1\r\n", 23);
	for (size_t i = 23; i + 4 < MAX * 2; i += 4)
		memcpy(big + i, "X:\r\n", 4);
	memcpy(big + MAX * 2 - 4, "\r\n\r\n", 4);
	ASSERT_EQ(sg_http_judge(big, MAX * 2, "/metrics", MAX), SG_HTTP_TOO_LARGE,
		  "hostile: a blank line past the limit is not looked for");
	ASSERT_EQ(sg_http_judge(nul, sizeof(nul) - 1, "/metrics", MAX), SG_HTTP_BAD_REQUEST,
		  "hostile: a NUL byte");
	ASSERT_EQ(judge("GET  /metrics HTTP/1.1\r\n\r\n"), SG_HTTP_BAD_REQUEST,
		  "hostile: two spaces");
	ASSERT_EQ(judge("GET /metrics\r\n\r\n"), SG_HTTP_BAD_REQUEST, "hostile: HTTP/0.9");
	ASSERT_EQ(judge("GET /metrics HTTP/2.0\r\n\r\n"), SG_HTTP_BAD_REQUEST, "hostile: HTTP/2.0");
	ASSERT_EQ(judge("GET /metrics HTTP/1.1 x\r\n\r\n"), SG_HTTP_BAD_REQUEST,
		  "hostile: a word after the version");
	ASSERT_EQ(judge("GET /met\trics HTTP/1.1\r\n\r\n"), SG_HTTP_BAD_REQUEST,
		  "hostile: a tab in the target");
	ASSERT_EQ(judge("G(T /metrics HTTP/1.1\r\n\r\n"), SG_HTTP_BAD_REQUEST,
		  "hostile: a method that is not a token");
	ASSERT_EQ(judge("\r\n\r\n"), SG_HTTP_BAD_REQUEST, "hostile: an empty request line");
	ASSERT_EQ(judge(" /metrics HTTP/1.1\r\n\r\n"), SG_HTTP_BAD_REQUEST, "hostile: no method");
	ASSERT_EQ(judge("\xff\xfe /metrics HTTP/1.1\r\n\r\n"), SG_HTTP_BAD_REQUEST,
		  "hostile: binary method");
	ASSERT_STREQ(sg_http_status(SG_HTTP_TOO_LARGE), "431 Request Header Fields Too Large",
		     "status: 431");
	free(big);
}

int main(void)
{
	test_served();
	test_incomplete();
	test_hostile();
	return test_exit_status();
}
