/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * starttls.c - tls_mode terminate: after the MX's 220 to STARTTLS the
 * proxy is the MX's TLS client, then the VM hears 220 and the proxy is its
 * TLS server with the provider's certificate; SMTP starts over inside.
 * With tls_mx_verify = verify the MX is authenticated by a name from a
 * trusted source, as soon as one is known: the operator's (tls_mx_names)
 * after its handshake, the VM's SNI after the VM's, and otherwise each
 * recipient's domain at its RCPT (tls_rcpt_refused). Never its greeting.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "log.h"
#include "parse.h"
#include "relay.h"
#include "tls.h"

#define SG_STARTTLS_READY "220 2.0.0 smtpguard: ready to start TLS\r\n"

/* TLS records and tunnelled segments go out as they are written: Nagle's
 * wait for an ACK would stall a handshake's later flights. */
void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void begin_mx_handshake(struct session *s)
{
	char sender[64], sni[256];

	/* the session cache is per sending VM (its sender key, as the
	 * classifier keys it: an IPv4 address, an IPv6 prefix), per MX and
	 * per SNI: a VM never resumes a session another VM's connection made */
	sg_format_source(&s->sender, 0, sender, sizeof(sender));
	sg_tls_mx_sni(s->tls, &s->mx_addr, s->mx_host, sni, sizeof(sni));
	snprintf(s->tls_cache_key, sizeof(s->tls_cache_key), "%.46s|%.63s|%.200s", sender,
		 s->mx_name, sni);
	nodelay(s->fd[SIDE_MX]);
	s->ssl[SIDE_MX] = sg_tls_client(s->tls, s->fd[SIDE_MX], sni, s->tls_cache_key);
	if (!s->ssl[SIDE_MX]) {
		sg_err("session %s -> %s: no TLS client context", s->vm_name, s->mx_name);
		relay_close(s, "421 4.7.0 smtpguard: TLS to the MX could not start; try again "
			    "later\r\n");
		return;
	}
	if (s->mx_in.len) {
		/* bytes after the MX's 220 and before TLS: injected, never trusted */
		sg_warn("session %s -> %s: %zu bytes after the MX's 220 to STARTTLS dropped",
			s->vm_name, s->mx_name, s->mx_in.len);
		s->mx_in.len = 0;
	}
	s->tls_phase = TLS_MX_HANDSHAKE;
	s->tls_deadline_ns = sg_now_ns() + s->cfg->tls_handshake_timeout_ns;
}

int relay_in_handshake(const struct session *s)
{
	return !s->draining && s->tls_phase != TLS_NONE && s->tls_phase != TLS_ON;
}

/* Decrypted bytes OpenSSL holds: epoll cannot know of them. */
int tls_pending(const struct session *s, int side)
{
	return s->ssl[side] && s->tls_phase == TLS_ON && SSL_has_pending(s->ssl[side]);
}

static void tls_failure_reply(struct session *s, const char *what)
{
	char reply[300];

	snprintf(reply, sizeof(reply), "421 4.7.0 smtpguard: TLS with the MX %s (%.120s); try "
		 "again later\r\n", what, s->tls_error);
	s->tls_phase = TLS_NONE;
	relay_close(s, reply);
}

/* The VM's SNI names the host its MTA looked up: a certificate valid for
 * it authenticates the MX for the whole session. */
static void check_vm_sni(struct session *s)
{
	X509 *cert = SSL_get0_peer_certificate(s->ssl[SIDE_MX]);

	if (s->mx_auth != SG_MX_AUTH_CHAIN || !s->vm_sni[0])
		return;
	if (sg_tls_cert_valid_for_host(cert, s->vm_sni)) {
		s->mx_auth = SG_MX_AUTH_NAME;
		s->mx_verified = 1;
		snprintf(s->mx_verified_by, sizeof(s->mx_verified_by), "VM's SNI %.120s",
			 s->vm_sni);
	}
}

static void tls_up(struct session *s)
{
	const char *sni = SSL_get_servername(s->ssl[SIDE_VM], TLSEXT_NAMETYPE_host_name);

	snprintf(s->vm_sni, sizeof(s->vm_sni), "%s", sni ? sni : "");
	check_vm_sni(s);
	s->tls_resumed = SSL_session_reused(s->ssl[SIDE_VM]);
	sg_tls_describe(s->ssl[SIDE_VM], s->tls_vm, sizeof(s->tls_vm));
	s->io[SIDE_VM] = s->io[SIDE_MX] = &sg_io_tls;
	s->tls_phase = TLS_ON;
	/* SMTP starts over: the VM says EHLO again (RFC 3207) */
	relay_set_mode(s, RELAY_COMMANDS);
	s->helo[0] = '\0';
	tx_end(s, s->tx_cur);
	sg_debug("session %s -> %s: TLS terminated: VM %s%s%s%s; MX %s%s (greeting %s), "
		 "certificate: %s%s", s->vm_name, s->mx_name, s->tls_vm,
		 s->vm_sni[0] ? ", SNI " : "", s->vm_sni, s->tls_resumed ? ", resumed" : "",
		 s->tls_mx, s->mx_resumed ? ", resumed" : "", s->mx_host[0] ? s->mx_host : "?",
		 s->mx_verified_by, s->mx_auth == SG_MX_AUTH_CHAIN ?
		 " (each recipient's domain is checked)" : "");
}

/* One step of the handshakes (tls_mode terminate): the MX's first, then
 * the proxy's 220 to the VM, then the VM's. */
enum relay_result tls_step(struct session *s)
{
	int ret;

	switch (s->tls_phase) {
	case TLS_MX_HANDSHAKE:
		ERR_clear_error();
		errno = 0;
		ret = SSL_connect(s->ssl[SIDE_MX]);
		if (ret != 1) {
			if (tls_failed(s, SIDE_MX, ret) && errno == EAGAIN)
				return RELAY_CONTINUE;
			sg_warn("session %s -> %s: TLS with the MX (%s) failed: %s; the VM is told "
				"to retry later", s->vm_name, s->mx_name,
				s->mx_host[0] ? s->mx_host : "no name in its greeting", s->tls_error);
			tls_failure_reply(s, "failed");
			return RELAY_CONTINUE;
		}
		s->mx_resumed = SSL_session_reused(s->ssl[SIDE_MX]);
		s->mx_auth = sg_tls_mx_authenticate(s->tls, s->ssl[SIDE_MX], &s->mx_addr,
						    s->mx_verified_by, sizeof(s->mx_verified_by));
		s->mx_verified = s->mx_auth == SG_MX_AUTH_NAME;
		if (s->mx_auth == SG_MX_AUTH_REFUSED) {
			/* the VM has not heard 220: its STARTTLS gets the 421, and
			 * nothing of its mail reaches this MX */
			snprintf(s->tls_error, sizeof(s->tls_error), "%s", s->mx_verified_by);
			sg_warn("session %s -> %s: the MX (%s) is not authenticated: %s; the VM "
				"is told to retry later", s->vm_name, s->mx_name,
				s->mx_host[0] ? s->mx_host : "no name in its greeting",
				s->mx_verified_by);
			tls_failure_reply(s, "not authenticated");
			return RELAY_CONTINUE;
		}
		sg_tls_describe(s->ssl[SIDE_MX], s->tls_mx, sizeof(s->tls_mx));
		s->tls_phase = TLS_VM_GREETING;
		/* fall through */
	case TLS_VM_GREETING:
		/* replies owed before it go first; then the 220, alone */
		if (write_from(s, SIDE_VM, &s->vm_out))
			return RELAY_END;
		if (s->vm_out.len)
			return RELAY_CONTINUE;
		if (!s->tls_ready_sent) {
			s->tls_ready_sent = 1;
			buf_append(&s->vm_out, SG_STARTTLS_READY, sizeof(SG_STARTTLS_READY) - 1);
			if (write_from(s, SIDE_VM, &s->vm_out))
				return RELAY_END;
			if (s->vm_out.len)
				return RELAY_CONTINUE;
		}
		if (s->vm_in.len) {
			/* sent after STARTTLS, before the 220: injected, never trusted */
			sg_warn("session %s -> %s: %zu bytes the VM sent after STARTTLS, before "
				"TLS, dropped", s->vm_name, s->mx_name, s->vm_in.len);
			s->vm_in.len = 0;
		}
		nodelay(s->fd[SIDE_VM]);
		s->ssl[SIDE_VM] = sg_tls_server(s->tls, s->fd[SIDE_VM]);
		if (!s->ssl[SIDE_VM]) {
			sg_err("session %s -> %s: no TLS server context", s->vm_name, s->mx_name);
			abort_upstream(s);
			return RELAY_END;
		}
		s->tls_phase = TLS_VM_HANDSHAKE;
		s->tls_deadline_ns = sg_now_ns() + s->cfg->tls_handshake_timeout_ns;
		/* fall through */
	case TLS_VM_HANDSHAKE:
		ERR_clear_error();
		errno = 0;
		ret = SSL_accept(s->ssl[SIDE_VM]);
		if (ret != 1) {
			if (tls_failed(s, SIDE_VM, ret) && errno == EAGAIN)
				return RELAY_CONTINUE;
			sg_warn("session %s -> %s: TLS with the VM failed: %s; session ended",
				s->vm_name, s->mx_name, s->tls_error);
			abort_upstream(s);
			return RELAY_END;
		}
		tls_up(s);
		return RELAY_CONTINUE;
	default:
		return RELAY_CONTINUE;
	}
}

int relay_tls_timeout(struct session *s)
{
	uint64_t secs = s->cfg->tls_handshake_timeout_ns / 1000000000ULL;

	if (s->tls_phase == TLS_MX_HANDSHAKE) {
		sg_warn("session %s -> %s: TLS handshake with the MX timed out after %llus; the "
			"VM is told to retry later", s->vm_name, s->mx_name, (unsigned long long)secs);
		snprintf(s->tls_error, sizeof(s->tls_error), "no answer within %llus",
			 (unsigned long long)secs);
		tls_failure_reply(s, "timed out");
		return 0;
	}
	sg_warn("session %s -> %s: TLS handshake with the VM timed out after %llus; session "
		"ended", s->vm_name, s->mx_name, (unsigned long long)secs);
	abort_upstream(s);
	return 1;
}

uint32_t handshake_interest(const struct session *s, int side)
{
	switch (s->tls_phase) {
	case TLS_MX_HANDSHAKE:
		return side == SIDE_MX ? EPOLLIN | (s->tls_want_write[SIDE_MX] ? EPOLLOUT : 0) : 0;
	case TLS_VM_GREETING:
		return side == SIDE_VM ? EPOLLOUT : 0;
	default:	/* TLS_VM_HANDSHAKE */
		return side == SIDE_VM ? EPOLLIN | (s->tls_want_write[SIDE_VM] ? EPOLLOUT : 0) : 0;
	}
}

/* The domain of a RCPT's address into out (empty: none, as for
 * <postmaster>, or an address literal). */
static void rcpt_domain(const char *line, size_t len, size_t arg, char *out, size_t outlen)
{
	char path[512], *addr, *end, *at;

	command_arg(line, len, arg, "TO:", path, sizeof(path));
	addr = path + (path[0] == '<');
	end = strpbrk(addr, "> \t");
	if (end)
		*end = '\0';
	at = strrchr(addr, '@');
	snprintf(out, outlen, "%s", at && at[1] != '[' ? at + 1 : "");
}

int tls_rcpt_refused(struct session *s, const char *line, size_t len, size_t arg)
{
	X509 *cert;
	char domain[256];

	/* the MX's name is checked here only while no name authenticated it
	 * for the whole session: a plaintext session, verify off, an MX
	 * tls_mx_names or the VM's SNI authenticated go on as they are */
	if (s->tls_phase != TLS_ON || !s->ssl[SIDE_MX] ||
	    (s->mx_auth != SG_MX_AUTH_CHAIN && s->mx_auth != SG_MX_AUTH_DOMAIN))
		return 0;
	rcpt_domain(line, len, arg, domain, sizeof(domain));
	cert = SSL_get0_peer_certificate(s->ssl[SIDE_MX]);
	/* each recipient on its own: a certificate for example.net makes
	 * the MX example.net's server, not that of the next recipient's
	 * domain, which the VM chooses as freely */
	if (domain[0] && sg_tls_cert_valid_for_domain(cert, domain)) {
		if (s->mx_auth == SG_MX_AUTH_CHAIN) {
			s->mx_auth = SG_MX_AUTH_DOMAIN;
			s->mx_verified = 1;
			snprintf(s->mx_verified_by, sizeof(s->mx_verified_by),
				 "recipient domain %.120s", domain);
		}
		return 0;
	}
	sg_info("session %s -> %s: a recipient %s%s refused: the MX's certificate (greeting "
		"%s) is not valid for %s, nor for a name from tls_mx_names or the VM's SNI",
		s->vm_name, s->mx_name, domain[0] ? "at " : "without a domain name", domain,
		s->mx_host[0] ? s->mx_host : "?", domain[0] ? domain : "it");
	local_reply(s, "450 4.7.5 smtpguard: the MX's TLS certificate is not valid for %.100s "
		    "(tls_mx_verify = verify); try again later",
		    domain[0] ? domain : "a recipient without a domain name");
	return 1;
}
