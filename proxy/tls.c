/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tls.c - the proxy's OpenSSL contexts (see tls.h): the server side with
 * its ticket keys, the client side with its session cache, and what
 * authenticates an MX (the names themselves: tls_names.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "log.h"
#include "tls.h"

/* Sessions with the MXes, for resumption: a direct-mapped cache keyed by
 * the sending VM's sender key, the MX's address and the SNI. The VM is in
 * the key because a resumed session skips the MX's certificate: one VM
 * must not ride on a session another VM's connection made (and what one
 * tenant's sessions reveal of the MX stays its own). */
#define SG_MX_SESSIONS 1024

struct mx_session {
	char key[SG_TLS_CACHE_KEY];
	SSL_SESSION *session;
};

/*
 * The keys of the tickets the proxy issues to the VMs (TLS 1.3 and RFC
 * 5077 session tickets): AES-256-CBC and HMAC-SHA256, as OpenSSL's own
 * tickets. Only in memory (locked, left out of core dumps where the
 * kernel allows it); the current key encrypts, and is replaced once it is
 * tls_ticket_key_rotation old; the one before still decrypts until it is
 * two periods old, so a ticket resumes for one period at least and two
 * at most. A reload keeps them: they live here, not in a context.
 */
struct ticket_key {
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	uint64_t created_ns;
	int set;
};

struct ticket_keys {
	struct ticket_key cur, prev;
};

struct sg_tls {
	pthread_mutex_t lock;
	SSL_CTX *server;	/* NULL: no tls_cert_file, terminate is not possible */
	SSL_CTX *client;
	struct sg_mx_names *names;	/* tls_mx_names; NULL: none */
	pthread_mutex_t cache_lock;
	struct mx_session cache[SG_MX_SESSIONS];
	pthread_mutex_t ticket_lock;
	struct ticket_keys *tickets;	/* a page of its own (mlock, MADV_DONTDUMP) */
	uint64_t ticket_period_ns;
	uint64_t (*now_ns)(void);
};

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void sg_tls_set_clock(struct sg_tls *tls, uint64_t (*now_ns)(void))
{
	pthread_mutex_lock(&tls->ticket_lock);
	tls->now_ns = now_ns ? now_ns : monotonic_ns;
	pthread_mutex_unlock(&tls->ticket_lock);
}

static struct ticket_keys *tickets_alloc(void)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = page > 0 && (size_t)page > sizeof(struct ticket_keys) ? (size_t)page :
		      sizeof(struct ticket_keys);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* best effort: never swapped out, never in a core dump */
	(void)mlock(p, size);
	(void)madvise(p, size, MADV_DONTDUMP);
	return p;
}

static void tickets_free(struct ticket_keys *t)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t size = page > 0 && (size_t)page > sizeof(*t) ? (size_t)page : sizeof(*t);

	if (!t)
		return;
	OPENSSL_cleanse(t, sizeof(*t));
	munlock(t, size);
	munmap(t, size);
}

static int ticket_key_new(struct ticket_key *k, uint64_t now)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		OPENSSL_cleanse(k, sizeof(*k));
		return -1;
	}
	k->created_ns = now;
	k->set = 1;
	return 0;
}

/* Under ticket_lock: the current key no older than a period, the previous
 * one kept while it may still decrypt. -1: no key to encrypt with (the
 * random generator failed; tickets are not issued then). */
static int tickets_advance(struct sg_tls *tls, uint64_t now)
{
	struct ticket_keys *t = tls->tickets;
	uint64_t period = tls->ticket_period_ns;

	if (t->prev.set && now - t->prev.created_ns >= 2 * period)
		OPENSSL_cleanse(&t->prev, sizeof(t->prev));
	if (t->cur.set && now - t->cur.created_ns < period)
		return 0;
	if (t->cur.set) {
		/* retired now: it decrypts until two periods after its making */
		if (now - t->cur.created_ns < 2 * period)
			t->prev = t->cur;
		else
			OPENSSL_cleanse(&t->prev, sizeof(t->prev));
		OPENSSL_cleanse(&t->cur, sizeof(t->cur));
	}
	return ticket_key_new(&t->cur, now);
}

/*
 * OpenSSL asks for a ticket's keys: to encrypt a new one (enc), or to
 * decrypt one a VM presents, found by its key name. 1: go on (encrypt);
 * 2: decrypted, and the VM gets a new ticket under the current key, as
 * OpenSSL's own tickets do after a resumption (a TLS 1.3 client uses a
 * ticket once; and one made under the previous key must be replaced
 * before that key goes); 0: no such key (a full handshake) or no ticket;
 * -1: an error.
 */
static int ticket_key_cb(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
			 EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct sg_tls *tls = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const EVP_CIPHER *cipher = EVP_aes_256_cbc();
	struct ticket_key key = { .set = 0 };
	OSSL_PARAM params[3];
	int ret = 1, ok;

	if (!tls)
		return -1;
	pthread_mutex_lock(&tls->ticket_lock);
	ok = tickets_advance(tls, tls->now_ns()) == 0;
	if (enc) {
		if (ok)
			key = tls->tickets->cur;
	} else if (tls->tickets->cur.set &&
		   memcmp(key_name, tls->tickets->cur.name, sizeof(key.name)) == 0) {
		key = tls->tickets->cur;
		ret = 2;
	} else if (tls->tickets->prev.set &&
		   memcmp(key_name, tls->tickets->prev.name, sizeof(key.name)) == 0) {
		key = tls->tickets->prev;
		ret = 2;
	}
	pthread_mutex_unlock(&tls->ticket_lock);
	if (!key.set)
		return 0;
	if (enc) {
		memcpy(key_name, key.name, sizeof(key.name));
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1 ||
		    EVP_EncryptInit_ex(cctx, cipher, NULL, key.aes, iv) != 1)
			ret = -1;
	} else if (EVP_DecryptInit_ex(cctx, cipher, NULL, key.aes, iv) != 1) {
		ret = -1;
	}
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac,
						      sizeof(key.hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (ret > 0 && EVP_MAC_CTX_set_params(hctx, params) != 1)
		ret = -1;
	OPENSSL_cleanse(&key, sizeof(key));
	return ret;
}

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
	/* the tickets' keys are smtpguard's own, rotated (ticket_key_cb) */
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
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
		/* the chain only: the name is smtpguard's to check, against
		 * names from a trusted source (sg_tls_mx_authenticate, and
		 * starttls.c for the VM's SNI and recipients), never against
		 * the greeting, which anyone on the path can write */
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

/* New contexts and names from cfg, or -1 with err: nothing is changed
 * then. */
static int build(const struct sg_config *cfg, SSL_CTX **server, SSL_CTX **client,
		 struct sg_mx_names **names, char *err, size_t errlen)
{
	*server = NULL;
	*names = NULL;
	if (cfg->tls_mx_names[0]) {
		*names = sg_mx_names_load(cfg->tls_mx_names, err, errlen);
		if (!*names)
			return -1;
	}
	*client = make_client(cfg, err, errlen);
	if (!*client)
		goto fail;
	if (cfg->tls_cert_file[0]) {
		*server = make_server(cfg, err, errlen);
		if (!*server)
			goto fail;
	}
	return 0;
fail:
	SSL_CTX_free(*client);
	*client = NULL;
	sg_mx_names_free(*names);
	*names = NULL;
	return -1;
}

struct sg_tls *sg_tls_new(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_tls *tls = calloc(1, sizeof(*tls));

	if (!tls) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tls->tickets = tickets_alloc();
	if (!tls->tickets) {
		snprintf(err, errlen, "out of memory for the TLS ticket keys");
		free(tls);
		return NULL;
	}
	if (build(cfg, &tls->server, &tls->client, &tls->names, err, errlen)) {
		tickets_free(tls->tickets);
		free(tls);
		return NULL;
	}
	pthread_mutex_init(&tls->lock, NULL);
	pthread_mutex_init(&tls->cache_lock, NULL);
	pthread_mutex_init(&tls->ticket_lock, NULL);
	tls->ticket_period_ns = cfg->tls_ticket_key_rotation_ns;
	tls->now_ns = monotonic_ns;
	SSL_CTX_set_app_data(tls->client, tls);
	if (tls->server)
		SSL_CTX_set_app_data(tls->server, tls);
	return tls;
}

int sg_tls_reload(struct sg_tls *tls, const struct sg_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *server, *client, *old_server, *old_client;
	struct sg_mx_names *names, *old_names;

	if (build(cfg, &server, &client, &names, err, errlen))
		return -1;
	SSL_CTX_set_app_data(client, tls);
	/* tickets issued before the reload still resume: the new context
	 * asks the same keys (tls->tickets); only the period may change */
	if (server)
		SSL_CTX_set_app_data(server, tls);
	pthread_mutex_lock(&tls->ticket_lock);
	tls->ticket_period_ns = cfg->tls_ticket_key_rotation_ns;
	pthread_mutex_unlock(&tls->ticket_lock);
	pthread_mutex_lock(&tls->lock);
	old_server = tls->server;
	old_client = tls->client;
	old_names = tls->names;
	tls->server = server;
	tls->client = client;
	tls->names = names;
	pthread_mutex_unlock(&tls->lock);
	/* sessions that hold them keep them until they end */
	SSL_CTX_free(old_server);
	SSL_CTX_free(old_client);
	sg_mx_names_free(old_names);	/* read only under tls->lock */
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
	sg_mx_names_free(tls->names);
	tickets_free(tls->tickets);
	pthread_mutex_destroy(&tls->lock);
	pthread_mutex_destroy(&tls->cache_lock);
	pthread_mutex_destroy(&tls->ticket_lock);
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

SSL *sg_tls_client(struct sg_tls *tls, int fd, const char *sni, const char *cache_key)
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
	/* SNI is a host name, never an address literal (RFC 6066); it only
	 * helps the MX choose its certificate: no name is set to verify
	 * here (sg_tls_mx_authenticate and the callers check the names) */
	if (sni[0] && sg_tls_host_name_ok(sni, 0) == 0)
		SSL_set_tlsext_host_name(ssl, sni);
	return ssl;
}

void sg_tls_mx_sni(struct sg_tls *tls, const struct sockaddr_storage *mx,
		   const char *greeting_host, char *sni, size_t len)
{
	const char *const *names;
	int n;

	snprintf(sni, len, "%s", "");
	pthread_mutex_lock(&tls->lock);
	names = sg_mx_names_find(tls->names, mx, &n);
	for (int i = 0; i < n; i++) {
		if (names[i][0] != '*') {
			snprintf(sni, len, "%s", names[i]);
			break;
		}
	}
	pthread_mutex_unlock(&tls->lock);
	if (!sni[0] && sg_tls_host_name_ok(greeting_host, 0) == 0)
		snprintf(sni, len, "%s", greeting_host);
}

enum sg_mx_auth sg_tls_mx_authenticate(struct sg_tls *tls, SSL *mx,
				       const struct sockaddr_storage *mx_addr, char *why,
				       size_t len)
{
	X509 *cert = SSL_get0_peer_certificate(mx);
	const char *const *names;
	enum sg_mx_auth auth;
	int n;

	/* the SSL's own context decides: a reload may have changed the config */
	if (!(SSL_get_verify_mode(mx) & SSL_VERIFY_PEER)) {
		snprintf(why, len, "not verified");
		return SG_MX_AUTH_OFF;
	}
	/* a resumed session keeps the certificate and the result of its
	 * first handshake, made under the same settings (a reload empties
	 * the cache) */
	if (!cert || SSL_get_verify_result(mx) != X509_V_OK) {
		snprintf(why, len, "no verified certificate");
		return SG_MX_AUTH_REFUSED;
	}
	pthread_mutex_lock(&tls->lock);
	names = sg_mx_names_find(tls->names, mx_addr, &n);
	auth = n ? SG_MX_AUTH_REFUSED : SG_MX_AUTH_CHAIN;
	snprintf(why, len, "chain only");
	for (int i = 0; i < n; i++) {
		if (sg_tls_cert_valid_for_trusted(cert, names[i])) {
			snprintf(why, len, "name from tls_mx_names: %s", names[i]);
			auth = SG_MX_AUTH_NAME;
			break;
		}
	}
	/* the operator's names for the address are the truth about it: a
	 * certificate for another name is not that MX, whatever the VM says */
	if (auth == SG_MX_AUTH_REFUSED) {
		size_t used = (size_t)snprintf(why, len, "its certificate matches none of the "
					       "names tls_mx_names gives its address:");

		for (int i = 0; i < n && used < len; i++)
			used += (size_t)snprintf(why + used, len - used, " %s", names[i]);
	}
	pthread_mutex_unlock(&tls->lock);
	return auth;
}
