/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* tls.c - the proxy's OpenSSL contexts (see tls.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "log.h"
#include "tls.h"

/* Sessions with the MXes, for resumption: a direct-mapped cache keyed by
 * the MX's address and name (as an MTA's own session cache). */
#define SG_MX_SESSIONS 1024

struct mx_session {
	char key[SG_TLS_CACHE_KEY];
	SSL_SESSION *session;
};

struct sg_tls {
	pthread_mutex_t lock;
	SSL_CTX *server;	/* NULL: no tls_cert_file, terminate is not possible */
	SSL_CTX *client;
	pthread_mutex_t cache_lock;
	struct mx_session cache[SG_MX_SESSIONS];
};

static unsigned int cache_slot(const char *key)
{
	unsigned int h = 2166136261u;	/* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % SG_MX_SESSIONS;
}

/* OpenSSL hands over a new session of the MX's (a TLS 1.3 ticket comes
 * after the handshake): kept for the next connection to that MX. */
static int keep_mx_session(SSL *ssl, SSL_SESSION *session)
{
	struct sg_tls *tls = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *key = SSL_get_app_data(ssl);
	struct mx_session *slot;

	if (!tls || !key || !key[0])
		return 0;
	/* a session made under the contexts a reload replaced is not kept:
	 * it was not checked as the new settings say */
	pthread_mutex_lock(&tls->lock);
	if (SSL_get_SSL_CTX(ssl) != tls->client) {
		pthread_mutex_unlock(&tls->lock);
		return 0;
	}
	pthread_mutex_unlock(&tls->lock);
	slot = &tls->cache[cache_slot(key)];
	pthread_mutex_lock(&tls->cache_lock);
	SSL_SESSION_free(slot->session);
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	slot->session = session;
	pthread_mutex_unlock(&tls->cache_lock);
	return 1;	/* the reference is the cache's now */
}

static void cache_clear(struct sg_tls *tls)
{
	pthread_mutex_lock(&tls->cache_lock);
	for (int i = 0; i < SG_MX_SESSIONS; i++) {
		SSL_SESSION_free(tls->cache[i].session);
		tls->cache[i].session = NULL;
		tls->cache[i].key[0] = '\0';
	}
	pthread_mutex_unlock(&tls->cache_lock);
}

void sg_tls_error(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (!e) {
		snprintf(buf, len, "%s", fallback);
		return;
	}
	ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

void sg_tls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

static int min_proto(int version)
{
	switch (version) {
	case 10:
		return TLS1_VERSION;
	case 11:
		return TLS1_1_VERSION;
	case 13:
		return TLS1_3_VERSION;
	default:
		return TLS1_2_VERSION;
	}
}

/* What both sides share: versions, ciphers, and buffers released while a
 * session idles (an idle session keeps no 34 KiB of record buffers). */
static int common_setup(SSL_CTX *ctx, const struct sg_config *cfg, char *err, size_t errlen)
{
	char why[256];

	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	/* a peer's FIN without close_notify is an end, not an error: many MTAs
	 * close so after QUIT, and the reply read before it must be relayed */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	if (!SSL_CTX_set_min_proto_version(ctx, min_proto(cfg->tls_min_version))) {
		sg_tls_error(why, sizeof(why), "not supported");
		snprintf(err, errlen, "tls_min_version: %s", why);
		return -1;
	}
	if (!SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers)) {
		sg_tls_error(why, sizeof(why), "no cipher matches");
		snprintf(err, errlen, "tls_ciphers '%s': %s (an OpenSSL cipher list, see "
			 "`openssl ciphers -v LIST`)", cfg->tls_ciphers, why);
		return -1;
	}
	if (cfg->tls_ciphersuites[0] && !SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites)) {
		sg_tls_error(why, sizeof(why), "no suite matches");
		snprintf(err, errlen, "tls_ciphersuites '%s': %s (TLS 1.3 suites, e.g. "
			 "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256)",
			 cfg->tls_ciphersuites, why);
		return -1;
	}
	return 0;
}

static SSL_CTX *make_server(const struct sg_config *cfg, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "smtpguard";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char why[256];

	if (!ctx) {
		snprintf(err, errlen, "OpenSSL could not make a server context");
		return NULL;
	}
	if (common_setup(ctx, cfg, err, errlen))
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		sg_tls_error(why, sizeof(why), "unreadable");
		snprintf(err, errlen, "tls_cert_file %s: %s (a PEM certificate, then its chain)",
			 cfg->tls_cert_file, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
		sg_tls_error(why, sizeof(why), "unreadable");
		snprintf(err, errlen, "tls_key_file %s: %s (a PEM private key, unencrypted)",
			 cfg->tls_key_file, why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		sg_tls_error(why, sizeof(why), "mismatch");
		snprintf(err, errlen, "tls_key_file %s is not the key of tls_cert_file %s: %s",
			 cfg->tls_key_file, cfg->tls_cert_file, why);
		goto fail;
	}
	/* resumption by tickets alone (TLS 1.3, and 1.2 with RFC 5077): no
	 * server-side cache to fill with every VM's sessions and to sweep */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(ctx, 3600);
	/* one ticket after a full handshake, not OpenSSL's two: an MTA
	 * resumes its next connection with one */
	SSL_CTX_set_num_tickets(ctx, 1);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *make_client(const struct sg_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[256];

	if (!ctx) {
		snprintf(err, errlen, "OpenSSL could not make a client context");
		return NULL;
	}
	if (common_setup(ctx, cfg, err, errlen))
		goto fail;
	if (cfg->tls_mx_verify == SG_TLS_VERIFY_PEER) {
		int ok = cfg->tls_ca_file[0] ?
			SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) :
			SSL_CTX_set_default_verify_paths(ctx);

		if (ok != 1) {
			sg_tls_error(why, sizeof(why), "unreadable");
			snprintf(err, errlen, "tls_ca_file %s: %s (a PEM bundle of CA certificates)",
				 cfg->tls_ca_file[0] ? cfg->tls_ca_file : "(the system's)", why);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	/* resumption with the MXes: the proxy keeps the sessions itself */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, keep_mx_session);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* New contexts from cfg, or -1 with err: nothing is changed then. */
static int build(const struct sg_config *cfg, SSL_CTX **server, SSL_CTX **client, char *err,
		 size_t errlen)
{
	*server = NULL;
	*client = make_client(cfg, err, errlen);
	if (!*client)
		return -1;
	if (cfg->tls_cert_file[0]) {
		*server = make_server(cfg, err, errlen);
		if (!*server) {
			SSL_CTX_free(*client);
			*client = NULL;
			return -1;
		}
	}
	return 0;
}

struct sg_tls *sg_tls_new(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_tls *tls = calloc(1, sizeof(*tls));

	if (!tls) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (build(cfg, &tls->server, &tls->client, err, errlen)) {
		free(tls);
		return NULL;
	}
	pthread_mutex_init(&tls->lock, NULL);
	pthread_mutex_init(&tls->cache_lock, NULL);
	SSL_CTX_set_app_data(tls->client, tls);
	return tls;
}

int sg_tls_reload(struct sg_tls *tls, const struct sg_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *server, *client, *old_server, *old_client;
	unsigned char keys[80];

	if (build(cfg, &server, &client, err, errlen))
		return -1;
	SSL_CTX_set_app_data(client, tls);
	pthread_mutex_lock(&tls->lock);
	/* tickets issued before the reload still resume */
	if (server && tls->server &&
	    SSL_CTX_get_tlsext_ticket_keys(tls->server, keys, sizeof(keys)) == 1)
		SSL_CTX_set_tlsext_ticket_keys(server, keys, sizeof(keys));
	old_server = tls->server;
	old_client = tls->client;
	tls->server = server;
	tls->client = client;
	pthread_mutex_unlock(&tls->lock);
	/* sessions that hold them keep them until they end */
	SSL_CTX_free(old_server);
	SSL_CTX_free(old_client);
	cache_clear(tls);	/* made under the old verification settings */
	return 0;
}

void sg_tls_free(struct sg_tls *tls)
{
	if (!tls)
		return;
	cache_clear(tls);
	SSL_CTX_free(tls->server);
	SSL_CTX_free(tls->client);
	pthread_mutex_destroy(&tls->lock);
	pthread_mutex_destroy(&tls->cache_lock);
	free(tls);
}

int sg_tls_can_terminate(struct sg_tls *tls)
{
	int can;

	pthread_mutex_lock(&tls->lock);
	can = tls->server != NULL;
	pthread_mutex_unlock(&tls->lock);
	return can;
}

static SSL *new_ssl(struct sg_tls *tls, int server, int fd)
{
	SSL *ssl = NULL;

	pthread_mutex_lock(&tls->lock);
	if (server ? tls->server : tls->client)
		ssl = SSL_new(server ? tls->server : tls->client);
	pthread_mutex_unlock(&tls->lock);
	if (ssl && SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

SSL *sg_tls_server(struct sg_tls *tls, int fd)
{
	return new_ssl(tls, 1, fd);
}

SSL *sg_tls_client(struct sg_tls *tls, int fd, const char *mx_host, const char *cache_key)
{
	SSL *ssl = new_ssl(tls, 0, fd);
	struct mx_session *slot = &tls->cache[cache_slot(cache_key)];

	if (!ssl)
		return NULL;
	SSL_set_app_data(ssl, (void *)cache_key);
	pthread_mutex_lock(&tls->cache_lock);
	if (slot->session && strcmp(slot->key, cache_key) == 0)
		SSL_set_session(ssl, slot->session);	/* takes its own reference */
	pthread_mutex_unlock(&tls->cache_lock);
	if (!mx_host[0])
		return ssl;
	/* SNI is a host name, never an address literal (RFC 6066) */
	if (strchr(mx_host, '.') && !strchr(mx_host, ':') && !strchr(mx_host, '[') &&
	    strspn(mx_host, "0123456789.") != strlen(mx_host))
		SSL_set_tlsext_host_name(ssl, mx_host);
	/* with SSL_VERIFY_PEER (tls_mx_verify = verify) the name must match */
	SSL_set1_host(ssl, mx_host);
	return ssl;
}
