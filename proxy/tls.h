/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tls.h - the proxy's OpenSSL contexts: the provider's certificate shown to
 * the VMs (tls_mode terminate), and the client context for the MXs. A
 * reload builds both anew and swaps them in: a running session keeps the
 * context it began with (OpenSSL counts its references), so SIGHUP drops
 * no session.
 */
#ifndef SMTPGUARD_TLS_H
#define SMTPGUARD_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>
#include "config.h"

struct sg_tls;

/* NULL with err set: a file that does not load, a key that does not match
 * its certificate, a cipher list OpenSSL does not take. Without
 * tls_cert_file the server side is absent (sg_tls_can_terminate is 0). */
struct sg_tls *sg_tls_new(const struct sg_config *cfg, char *err, size_t errlen);
/* From cfg's TLS keys again; on an error the running contexts stay. */
int sg_tls_reload(struct sg_tls *tls, const struct sg_config *cfg, char *err, size_t errlen);
void sg_tls_free(struct sg_tls *tls);

int sg_tls_can_terminate(struct sg_tls *tls);
/* A server-side SSL for the VM's socket (the provider's certificate). */
SSL *sg_tls_server(struct sg_tls *tls, int fd);
#define SG_TLS_CACHE_KEY 320

/* A client-side SSL for the MX's socket; mx_host (from its greeting) is the
 * SNI and, with tls_mx_verify = verify, the name the certificate must hold.
 * cache_key (the MX's address and name; it must outlive the SSL) finds a
 * session to resume, and keeps the MX's next one. */
SSL *sg_tls_client(struct sg_tls *tls, int fd, const char *mx_host, const char *cache_key);

/* The thread's OpenSSL error queue as one line (emptied), or fallback. */
void sg_tls_error(char *buf, size_t len, const char *fallback);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void sg_tls_describe(SSL *ssl, char *buf, size_t len);

#endif
