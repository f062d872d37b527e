/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tls.h - the proxy's OpenSSL contexts: the provider's certificate shown to
 * the VMs (tls_mode terminate), with the ticket keys that resume their
 * sessions, and the client context for the MXs, with its session cache and
 * the names that may authenticate an MX (tls_names.c). A reload builds the
 * contexts anew and swaps them in: a running session keeps the context it
 * began with (OpenSSL counts its references), so SIGHUP drops no session;
 * the ticket keys live beside the contexts, so a reload keeps them.
 */
#ifndef SMTPGUARD_TLS_H
#define SMTPGUARD_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include "config.h"

struct sg_tls;

/* NULL with err set: a file that does not load (tls_mx_names: its file,
 * line and what is wrong), a key that does not match its certificate, a
 * cipher list OpenSSL does not take. Without tls_cert_file the server side
 * is absent (sg_tls_can_terminate is 0). */
struct sg_tls *sg_tls_new(const struct sg_config *cfg, char *err, size_t errlen);
/* From cfg's TLS keys again; on an error the running contexts stay. */
int sg_tls_reload(struct sg_tls *tls, const struct sg_config *cfg, char *err, size_t errlen);
void sg_tls_free(struct sg_tls *tls);

int sg_tls_can_terminate(struct sg_tls *tls);
/* A server-side SSL for the VM's socket (the provider's certificate). */
SSL *sg_tls_server(struct sg_tls *tls, int fd);
#define SG_TLS_CACHE_KEY 320

/* A client-side SSL for the MX's socket. sni (may be empty) is the name
 * asked for; it authenticates nothing by itself. cache_key (the VM's sender
 * key, the MX's address and the SNI; it must outlive the SSL) finds a
 * session to resume, and keeps the MX's next one: a VM only ever resumes a
 * session its own connections made. */
SSL *sg_tls_client(struct sg_tls *tls, int fd, const char *sni, const char *cache_key);

/*
 * Authenticating the MX (tls_mx_verify = verify). The chain is verified in
 * the handshake; the name is checked by smtpguard, against names from a
 * source the MX's path cannot write: the operator's (tls_mx_names, by the
 * MX's address), the VM's SNI, the VM's recipient domains. Never the MX's
 * greeting.
 */
enum sg_mx_auth {
	SG_MX_AUTH_OFF = 0,	/* tls_mx_verify = none: encrypted, not verified */
	SG_MX_AUTH_CHAIN,	/* the chain verified; no trusted name matched yet */
	SG_MX_AUTH_NAME,	/* and a name for the whole session (tls_mx_names, SNI) */
	SG_MX_AUTH_DOMAIN,	/* and a recipient's domain: each recipient is checked */
	SG_MX_AUTH_REFUSED,	/* the operator's names for its address do not match */
};

/* The SNI for an MX: the first plain name tls_mx_names gives its address,
 * else the greeting's host name (a hint for the MX's choice of certificate,
 * nothing more), else empty. */
void sg_tls_mx_sni(struct sg_tls *tls, const struct sockaddr_storage *mx,
		   const char *greeting_host, char *sni, size_t len);
/* After the MX's handshake: OFF, CHAIN, NAME (a name from tls_mx_names
 * matched) or REFUSED (tls_mx_names lists the address and no name of it
 * matches, or no verified certificate). why gets what the event and the log
 * say: "name from tls_mx_names: mx.example.net", "chain only", or the
 * reason of a refusal. */
enum sg_mx_auth sg_tls_mx_authenticate(struct sg_tls *tls, SSL *mx,
				       const struct sockaddr_storage *mx_addr, char *why,
				       size_t len);

/* Name checks of a certificate (1: valid for it). A name must be a host
 * name (letters, digits, hyphens, at least two labels, no wildcard), or it
 * matches nothing. */
/* The VM's SNI: the certificate holds that name (or a wildcard over it). */
int sg_tls_cert_valid_for_host(X509 *cert, const char *host);
/* A recipient domain: the certificate holds the domain or a name under it
 * (mx1.example.net, *.example.net serve example.net); never a name beside
 * it (badexample.net) or above it (net). */
int sg_tls_cert_valid_for_domain(X509 *cert, const char *domain);
/* A tls_mx_names entry: a host name as for the SNI, or "*.example.com":
 * a name one label under example.com (or that wildcard itself). */
int sg_tls_cert_valid_for_trusted(X509 *cert, const char *name);
/* A host name as these checks take it: 0 ok, else -1 (allow_wildcard: a
 * leading "*." before at least two labels). */
int sg_tls_host_name_ok(const char *name, int allow_wildcard);

/* tls_names.c: the operator's names, by address or prefix. */
struct sg_mx_names;
/* The file's lines: "ADDRESS-or-PREFIX NAME [NAME...]"; NULL with err naming
 * the file, the line and what is wrong. */
struct sg_mx_names *sg_mx_names_load(const char *path, char *err, size_t errlen);
void sg_mx_names_free(struct sg_mx_names *names);
/* The names of the longest prefix holding addr (IPv4-mapped IPv6 is IPv4),
 * and how many; NULL when none lists it. */
const char *const *sg_mx_names_find(const struct sg_mx_names *names,
				    const struct sockaddr_storage *addr, int *n);
/* Entries loaded (for the log). */
int sg_mx_names_count(const struct sg_mx_names *names);

/* Tests move time: the ticket keys' clock (CLOCK_MONOTONIC ns otherwise). */
void sg_tls_set_clock(struct sg_tls *tls, uint64_t (*now_ns)(void));

/* The thread's OpenSSL error queue as one line (emptied), or fallback. */
void sg_tls_error(char *buf, size_t len, const char *fallback);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
void sg_tls_describe(SSL *ssl, char *buf, size_t len);

#endif
