/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * io.c - how a session's bytes move on each side: plain sockets, or
 * OpenSSL on either side (tls_mode terminate), both read(2)/send(2)-like;
 * and the reads and writes of the session's buffers through them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "log.h"
#include "relay.h"
#include "tls.h"

void buf_append(struct sg_buf *b, const char *data, size_t n)
{
	if (n > buf_space(b)) {
		sg_err("internal: %zu bytes for a buffer with room for %zu; cut", n, buf_space(b));
		n = buf_space(b);
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
}

/* Reads while there is room; *drained once the socket has nothing more for
 * now, so that the caller does not ask again before epoll says so. */
static ssize_t plain_read(struct session *s, int side, void *buf, size_t len)
{
	return read(s->fd[side], buf, len);
}

static ssize_t plain_write(struct session *s, int side, const void *buf, size_t len)
{
	return send(s->fd[side], buf, len, MSG_NOSIGNAL);
}

const struct sg_io_ops sg_io_plain = {
	.read = plain_read, .write = plain_write, .short_read_drains = 1,
};

/* OpenSSL's outcome of a read, write or handshake step as errno: EAGAIN
 * when it waits for the socket (tls_want_write says which way), EPROTO with
 * the reason kept in tls_error. */
int tls_failed(struct session *s, int side, int ret)
{
	int saved = errno, e = SSL_get_error(s->ssl[side], ret);

	s->tls_want_write[side] = e == SSL_ERROR_WANT_WRITE;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	/* no close_notify of ours after a fatal error (OpenSSL forbids it) */
	s->tls_fatal[side] = 1;
	if (e == SSL_ERROR_SYSCALL && saved) {
		snprintf(s->tls_error, sizeof(s->tls_error), "%s", strerror(saved));
		errno = saved;
		return -1;
	}
	if (e == SSL_ERROR_SYSCALL) {
		snprintf(s->tls_error, sizeof(s->tls_error), "the peer closed the connection");
	} else if (side == SIDE_MX && (SSL_get_verify_mode(s->ssl[side]) & SSL_VERIFY_PEER) &&
		   SSL_get_verify_result(s->ssl[side]) != X509_V_OK) {
		snprintf(s->tls_error, sizeof(s->tls_error), "certificate verification: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(s->ssl[side])));
	} else {
		sg_tls_error(s->tls_error, sizeof(s->tls_error), "TLS protocol error");
	}
	errno = EPROTO;
	return -1;
}

static ssize_t tls_read(struct session *s, int side, void *buf, size_t len)
{
	int n;

	ERR_clear_error();
	errno = 0;
	n = SSL_read(s->ssl[side], buf, len > 65536 ? 65536 : (int)len);
	if (n > 0) {
		s->tls_want_write[side] = 0;
		return n;
	}
	/* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare FIN */
	if (SSL_get_error(s->ssl[side], n) == SSL_ERROR_ZERO_RETURN) {
		s->tls_want_write[side] = 0;	/* nothing more to read, so none to retry */
		return 0;
	}
	return tls_failed(s, side, n);
}

static ssize_t tls_write(struct session *s, int side, const void *buf, size_t len)
{
	int n;

	ERR_clear_error();
	errno = 0;
	n = SSL_write(s->ssl[side], buf, len > 65536 ? 65536 : (int)len);
	if (n > 0) {
		s->tls_want_write[side] = 0;
		return n;
	}
	return tls_failed(s, side, n);
}

const struct sg_io_ops sg_io_tls = {
	.read = tls_read, .write = tls_write, .short_read_drains = 0,
};

int read_into(struct session *s, int side, struct sg_buf *b, int *eof, int *drained)
{
	size_t before = b->len;

	while (!*eof && !*drained && buf_space(b)) {
		ssize_t n = s->io[side]->read(s, side, b->data + b->len, buf_space(b));

		if (n > 0) {
			/* a short read took all the socket had */
			*drained = s->io[side]->short_read_drains && (size_t)n < buf_space(b);
			b->len += (size_t)n;
			s->read_bytes[side] += (uint64_t)n;
		} else if (n == 0) {
			*eof = 1;
		} else if (errno == EAGAIN) {
			*drained = 1;
		} else if (errno != EINTR) {
			/* what came before the error is relayed first (a reply
			 * the VM is owed); the error then ends the side. A plain
			 * MX that failed is an end the VM hears of (mx_lost). */
			if (side == SIDE_MX && s->io[side] == &sg_io_plain)
				s->mx_errno = errno;
			else if (b->len == before)
				return -1;
			*eof = 1;
		}
	}
	return 0;
}

int write_from(struct session *s, int side, struct sg_buf *b)
{
	while (b->len) {
		ssize_t n = s->io[side]->write(s, side, b->data, b->len);

		if (n > 0) {
			buf_consume(b, (size_t)n);
			s->written_bytes[side] += (uint64_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		else
			return -1;
	}
	return 0;
}
