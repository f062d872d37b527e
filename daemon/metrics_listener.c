/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* metrics_listener.c - the metrics listener on the main loop (see
 * metrics_listener.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "http_request.h"
#include "log.h"
#include "metrics.h"
#include "metrics_listener.h"
#include "parse.h"

struct scraper {
	struct sg_metrics_server *srv;
	int fd;				/* -1: the slot is free */
	struct sg_watch watch;
	struct sg_timer deadline;
	char req[SG_HTTP_MAX_REQUEST];
	size_t req_len;
	char *resp;			/* the whole answer, once judged */
	size_t resp_len, resp_off;
};

struct sg_metrics_server {
	struct sg_loop *loop;
	const struct sg_maps *maps;
	int fd;
	struct sg_watch watch;
	struct scraper scrapers[SG_METRICS_CLIENTS];
};

static void scraper_close(struct scraper *c)
{
	if (c->fd < 0)
		return;
	sg_loop_unwatch(c->srv->loop, &c->watch);
	sg_loop_timer_cancel(c->srv->loop, &c->deadline);
	close(c->fd);
	c->fd = -1;
	free(c->resp);
	c->resp = NULL;
}

/* The status line, the headers and (GET, 200) the exposition. */
static int make_response(struct scraper *c, enum sg_http_verdict v)
{
	struct sg_metrics_snapshot snap;
	char *body = NULL, err[SG_ERR_LEN];
	const char *status = sg_http_status(v), *type = "text/plain; charset=utf-8";
	size_t body_len = 0;
	FILE *f = open_memstream(&body, &body_len);

	if (!f)
		return -1;
	if (v != SG_HTTP_GET && v != SG_HTTP_HEAD) {
		fprintf(f, "%s\n", status);
	} else if (sg_metrics_collect(c->srv->maps, &snap, err, sizeof(err))) {
		sg_warn("metrics: %s", err);
		status = "500 Internal Server Error";
		fprintf(f, "%s\n", err);
	} else {
		sg_metrics_write(f, &snap);
		type = SG_METRICS_CONTENT_TYPE;
	}
	if (fclose(f)) {
		free(body);
		return -1;
	}
	f = open_memstream(&c->resp, &c->resp_len);
	if (!f) {
		free(body);
		return -1;
	}
	fprintf(f, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		"Connection: close\r\n\r\n", status, type, body_len,
		v == SG_HTTP_BAD_METHOD ? "Allow: GET, HEAD\r\n" : "");
	if (v != SG_HTTP_HEAD)
		fwrite(body, 1, body_len, f);
	free(body);
	if (fclose(f)) {
		free(c->resp);
		c->resp = NULL;
		return -1;
	}
	return 0;
}

static void scraper_write(struct scraper *c)
{
	while (c->resp_off < c->resp_len) {
		ssize_t n = send(c->fd, c->resp + c->resp_off, c->resp_len - c->resp_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN) {
			if (sg_loop_watch(c->srv->loop, &c->watch, EPOLLOUT))
				scraper_close(c);
			return;
		}
		if (n <= 0) {
			scraper_close(c);
			return;
		}
		c->resp_off += (size_t)n;
	}
	/* all sent: the scraper has read its answer once it closes too */
	shutdown(c->fd, SHUT_WR);
	scraper_close(c);
}

static void scraper_read(struct scraper *c)
{
	enum sg_http_verdict v = SG_HTTP_INCOMPLETE;

	while (c->req_len < sizeof(c->req)) {
		ssize_t n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len,
				 MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			scraper_close(c);	/* gone before its request ended */
			return;
		}
		c->req_len += (size_t)n;
	}
	v = sg_http_judge(c->req, c->req_len, "/metrics", sizeof(c->req));
	if (v == SG_HTTP_INCOMPLETE)
		return;
	if (make_response(c, v)) {
		sg_warn("metrics: no memory for an answer");
		scraper_close(c);
		return;
	}
	scraper_write(c);
}

static void on_scraper(struct sg_watch *watch, uint32_t events)
{
	struct scraper *c = watch->ctx;

	if (c->resp)
		scraper_write(c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		scraper_read(c);
}

static void on_deadline(struct sg_timer *timer)
{
	scraper_close(timer->ctx);
}

static void on_accept(struct sg_watch *watch, uint32_t events)
{
	struct sg_metrics_server *srv = watch->ctx;

	(void)events;
	for (;;) {
		int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct scraper *c = NULL;

		if (fd < 0)
			return;
		for (int i = 0; i < SG_METRICS_CLIENTS && !c; i++)
			if (srv->scrapers[i].fd < 0)
				c = &srv->scrapers[i];
		if (!c) {
			close(fd);	/* as many as it serves are waited on already */
			continue;
		}
		c->fd = fd;
		c->req_len = 0;
		c->resp_len = c->resp_off = 0;
		sg_watch_init(&c->watch, fd, on_scraper, c);
		sg_timer_init(&c->deadline, on_deadline, c);
		if (sg_loop_watch(srv->loop, &c->watch, EPOLLIN) ||
		    sg_loop_timer_in(srv->loop, &c->deadline, SG_METRICS_DEADLINE_NS))
			scraper_close(c);
	}
}

struct sg_metrics_server *sg_metrics_serve(struct sg_loop *loop, const char *listen_on,
					   const struct sg_maps *maps)
{
	struct sg_metrics_server *srv = calloc(1, sizeof(*srv));
	struct sockaddr_storage addr;
	char spec[80], err[SG_ERR_LEN];
	socklen_t len;
	int one = 1;

	if (!srv) {
		sg_err("metrics: out of memory");
		return NULL;
	}
	srv->loop = loop;
	srv->maps = maps;
	for (int i = 0; i < SG_METRICS_CLIENTS; i++) {
		srv->scrapers[i].fd = -1;
		srv->scrapers[i].srv = srv;
	}
	snprintf(spec, sizeof(spec), "inet:%s", listen_on);
	if (sg_parse_milter_address(spec, &addr, &len, err, sizeof(err))) {
		sg_err("metrics_listen = %s: %s", listen_on, err);
		free(srv);
		return NULL;
	}
	srv->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->fd < 0 || setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(srv->fd, (struct sockaddr *)&addr, len) || listen(srv->fd, 16)) {
		sg_err("metrics_listen = %s: cannot listen there: %s (another process on the "
		       "port? another smtpguard instance? choose another port, or leave "
		       "metrics_listen empty)", listen_on, strerror(errno));
		if (srv->fd >= 0)
			close(srv->fd);
		free(srv);
		return NULL;
	}
	sg_watch_init(&srv->watch, srv->fd, on_accept, srv);
	if (sg_loop_watch(loop, &srv->watch, EPOLLIN)) {
		sg_err("metrics: registering the listener failed: %s", strerror(errno));
		close(srv->fd);
		free(srv);
		return NULL;
	}
	sg_info("metrics served at http://%s/metrics", listen_on);
	return srv;
}

void sg_metrics_stop(struct sg_metrics_server *srv)
{
	if (!srv)
		return;
	for (int i = 0; i < SG_METRICS_CLIENTS; i++)
		scraper_close(&srv->scrapers[i]);
	sg_loop_unwatch(srv->loop, &srv->watch);
	close(srv->fd);
	free(srv);
}
