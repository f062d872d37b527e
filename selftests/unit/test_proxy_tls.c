/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_proxy_tls.c - the proxy's TLS parts that need no network: which
 * names authenticate an MX's certificate (the operator's, the VM's SNI, a
 * recipient domain; a hostile VM's choices among them), the tls_mx_names
 * file and its errors, the rotation of the VMs' ticket keys (a ticket
 * resumes across one rotation, not two; a reload keeps the keys), and the
 * MX session cache (a session is resumed only under the key it was kept
 * under: another VM's key finds nothing). Handshakes run over socketpairs,
 * the ticket keys on a clock the test moves.
 *   build/selftests/test_proxy_tls
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "config.h"
#include "test.h"
#include "tls.h"

static char dir[] = "/tmp/sg-test-tls-XXXXXX";

/* A certificate for names (the first also its CN; none: CN only, cn), self-signed. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *const *names)
{
	X509 *x = X509_new();
	X509_NAME *subject;
	char san[1024] = "";
	size_t used = 0;

	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	subject = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
				   0);
	X509_set_issuer_name(x, subject);
	for (int i = 0; names && names[i]; i++)
		used += (size_t)snprintf(san + used, sizeof(san) - used, "%sDNS:%s", i ? "," : "",
					 names[i]);
	if (san[0]) {
		X509V3_CTX v3;
		X509_EXTENSION *ext;

		X509V3_set_ctx_nodb(&v3);
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, key, EVP_sha256());
	return x;
}

static void test_names(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	static const char *const mx[] = { "mx.example.net", NULL };
	static const char *const attacker[] = { "attacker.example", NULL };
	static const char *const wild[] = { "*.example.net", NULL };
	static const char *const hosted[] = { "mx1.mail.example.com", NULL };
	static const char *const deep[] = { "a.b.mail.example.com", NULL };
	static const char *const parent[] = { "mail.example.com", NULL };
	static const char *const besides[] = { "badexample.net", NULL };
	X509 *c_mx = make_cert(key, "mx.example.net", mx);
	X509 *c_att = make_cert(key, "attacker.example", attacker);
	X509 *c_wild = make_cert(key, "wild", wild);
	X509 *c_hosted = make_cert(key, "hosted", hosted);
	X509 *c_deep = make_cert(key, "deep", deep);
	X509 *c_parent = make_cert(key, "parent", parent);
	X509 *c_besides = make_cert(key, "besides", besides);
	X509 *c_cn = make_cert(key, "mx.example.net", NULL);

	/* the VM's SNI: that name exactly */
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_mx, "mx.example.net"), 1, "sni: the certificate's name");
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_mx, "MX.Example.NET"), 1, "sni: any case");
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_mx, "example.net"), 0, "sni: the domain is not the host");
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_wild, "mx.example.net"), 1, "sni: under a wildcard");
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_wild, "a.mx.example.net"), 0,
		  "sni: a wildcard covers one label");
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_cn, "mx.example.net"), 1,
		  "sni: a certificate with only a CN");
	/* a hostile VM names example.net but reached an attacker's MX, whose
	 * valid certificate is for attacker.example */
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_att, "example.net"), 0, "hostile: SNI example.net");
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_att, "mx.example.net"), 0, "hostile: SNI mx.example.net");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_att, "example.net"), 0, "hostile: RCPT example.net");
	/* what the VM could write to widen a match */
	ASSERT_EQ(sg_tls_cert_valid_for_host(c_mx, "*.example.net"), 0, "hostile: a wildcard as SNI");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_att, "example"), 0, "hostile: a single label");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "net"), 0, "hostile: a top-level domain");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, ".net"), 0, "hostile: a leading dot");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, ".example.net"), 0, "hostile: .example.net");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "*.net"), 0, "hostile: *.net as a domain");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "ample.net"), 0, "hostile: a label's tail");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_besides, "example.net"), 0,
		  "hostile: badexample.net is beside example.net, not under it");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "198.51.100.25"), 0, "hostile: an address");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "example.net\n"), 0, "hostile: a line break");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, ""), 0, "hostile: no domain");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(NULL, "example.net"), 0, "no certificate: nothing");
	/* a recipient domain: the domain or a name under it */
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "example.net"), 1,
		  "rcpt: mx.example.net serves example.net");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "EXAMPLE.net"), 1, "rcpt: any case");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "mx.example.net"), 1, "rcpt: the name itself");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_wild, "example.net"), 1,
		  "rcpt: *.example.net serves example.net");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "other.example.net"), 0,
		  "rcpt: a sibling domain is not served");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_mx, "example.org"), 0, "rcpt: another domain");
	ASSERT_EQ(sg_tls_cert_valid_for_domain(c_hosted, "example.net"), 0,
		  "rcpt: another provider's MX does not serve example.net");
	/* the operator's names: plain, or one label under a wildcard */
	ASSERT_EQ(sg_tls_cert_valid_for_trusted(c_mx, "mx.example.net"), 1, "trusted: a plain name");
	ASSERT_EQ(sg_tls_cert_valid_for_trusted(c_att, "mx.example.net"), 0, "trusted: another name");
	ASSERT_EQ(sg_tls_cert_valid_for_trusted(c_hosted, "*.mail.example.com"), 1,
		  "trusted: mx1.mail.example.com under *.mail.example.com");
	ASSERT_EQ(sg_tls_cert_valid_for_trusted(c_deep, "*.mail.example.com"), 0,
		  "trusted: two labels under is not one");
	ASSERT_EQ(sg_tls_cert_valid_for_trusted(c_parent, "*.mail.example.com"), 0,
		  "trusted: the wildcard's own domain is not under it");
	ASSERT_EQ(sg_tls_cert_valid_for_trusted(c_wild, "*.example.net"), 1,
		  "trusted: the same wildcard in the certificate");
	ASSERT_EQ(sg_tls_cert_valid_for_trusted(c_mx, "*.net"), 0, "trusted: *.net is no name");
	/* the syntax itself */
	ASSERT_EQ(sg_tls_host_name_ok("mx-1.example.net", 0), 0, "syntax: a hyphen inside");
	ASSERT_EQ(sg_tls_host_name_ok("-mx.example.net", 0), -1, "syntax: a leading hyphen");
	ASSERT_EQ(sg_tls_host_name_ok("mx-.example.net", 0), -1, "syntax: a trailing hyphen");
	ASSERT_EQ(sg_tls_host_name_ok("mx..example.net", 0), -1, "syntax: an empty label");
	ASSERT_EQ(sg_tls_host_name_ok("mx_1.example.net", 0), -1, "syntax: an underscore");
	ASSERT_EQ(sg_tls_host_name_ok("*.example.net", 0), -1, "syntax: no wildcard unless allowed");
	ASSERT_EQ(sg_tls_host_name_ok("*.example.net", 1), 0, "syntax: a wildcard where allowed");
	ASSERT_EQ(sg_tls_host_name_ok("mx.*.net", 1), -1, "syntax: a wildcard only first");
	X509_free(c_mx);
	X509_free(c_att);
	X509_free(c_wild);
	X509_free(c_hosted);
	X509_free(c_deep);
	X509_free(c_parent);
	X509_free(c_besides);
	X509_free(c_cn);
	EVP_PKEY_free(key);
}

static char *write_text(const char *name, const char *text)
{
	static char paths[8][300];
	static int next;
	char *path = paths[next++ % 8];
	FILE *f;

	snprintf(path, sizeof(paths[0]), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void addr4(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	inet_pton(AF_INET, a, &in->sin_addr);
}

static void addr6(struct sockaddr_storage *ss, const char *a)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	in6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &in6->sin6_addr);
}

/* Loads text as a names file; NULL with err as the loader said. */
static struct sg_mx_names *load_names(const char *text, char *err, size_t len, char **path)
{
	*path = write_text("names", text);
	return sg_mx_names_load(*path, err, len);
}

static void expect_error(const char *text, const char *fragment, const char *name)
{
	char err[600], want[700], *path;
	struct sg_mx_names *n = load_names(text, err, sizeof(err), &path);

	if (!ASSERT_TRUE(n == NULL, name)) {
		sg_mx_names_free(n);
		return;
	}
	snprintf(want, sizeof(want), "tls_mx_names %s, line ", path);
	ASSERT_CONTAINS(err, want, name);
	ASSERT_CONTAINS(err, fragment, name);
}

static void test_names_file(void)
{
	struct sg_mx_names *names;
	struct sockaddr_storage ss;
	const char *const *found;
	char err[600], *path;
	int n;

	names = load_names("# the provider's view of its customers' MXes\n"
			   "\n"
			   "198.51.100.25   mx.example.net  MX2.Example.NET.   # two names\n"
			   "203.0.113.0/24  *.mail.example.com\n"
			   "203.0.113.128/25 special.example.com\n"
			   "2001:db8:2::/48 mx6.example.net\n", err, sizeof(err), &path);
	if (!ASSERT_TRUE(names != NULL, "names file: loads")) {
		printf("# %s\n", err);
		return;
	}
	ASSERT_EQ(sg_mx_names_count(names), 4, "names file: four entries");
	addr4(&ss, "198.51.100.25");
	found = sg_mx_names_find(names, &ss, &n);
	ASSERT_EQ(n, 2, "names file: an address's two names");
	if (n == 2) {
		ASSERT_STREQ(found[0], "mx.example.net", "names file: the first name");
		ASSERT_STREQ(found[1], "mx2.example.net", "names file: lower case, no final dot");
	}
	addr4(&ss, "203.0.113.7");
	found = sg_mx_names_find(names, &ss, &n);
	ASSERT_TRUE(n == 1 && strcmp(found[0], "*.mail.example.com") == 0,
		    "names file: a prefix's wildcard");
	addr4(&ss, "203.0.113.200");
	found = sg_mx_names_find(names, &ss, &n);
	ASSERT_TRUE(n == 1 && strcmp(found[0], "special.example.com") == 0,
		    "names file: the longest prefix wins");
	addr6(&ss, "::ffff:203.0.113.9");
	found = sg_mx_names_find(names, &ss, &n);
	ASSERT_TRUE(n == 1 && strcmp(found[0], "*.mail.example.com") == 0,
		    "names file: an IPv4-mapped address is IPv4");
	addr6(&ss, "2001:db8:2::25");
	found = sg_mx_names_find(names, &ss, &n);
	ASSERT_TRUE(n == 1 && strcmp(found[0], "mx6.example.net") == 0, "names file: IPv6");
	addr4(&ss, "192.0.2.1");
	ASSERT_TRUE(sg_mx_names_find(names, &ss, &n) == NULL && n == 0,
		    "names file: an address it does not list");
	sg_mx_names_free(names);
	names = load_names("# nothing yet\n", err, sizeof(err), &path);
	ASSERT_TRUE(names != NULL && sg_mx_names_count(names) == 0, "names file: comments only");
	sg_mx_names_free(names);

	expect_error("198.51.100.25 mx.example.net\n300.1.2.3 mx.example.net\n",
		     "line 2: '300.1.2.3' in '300.1.2.3' is not an IPv4 or IPv6 address",
		     "names file: a bad address, its line");
	expect_error("203.0.113.1/24 mx.example.net\n",
		     "line 1: '203.0.113.1/24' has host bits set beyond /24; did you mean "
		     "203.0.113.0/24?", "names file: host bits, and the network meant");
	expect_error("\n\n198.51.100.25\n", "line 3: 198.51.100.25 has no name after it",
		     "names file: an address without a name");
	expect_error("198.51.100.25 mx..example.net\n",
		     "line 1: 'mx..example.net' is not a host name", "names file: an empty label");
	expect_error("198.51.100.25 mx.*.example.net\n",
		     "line 1: 'mx.*.example.net' is not a host name",
		     "names file: a wildcard not first");
	expect_error("198.51.100.25 net\n", "line 1: 'net' is not a host name",
		     "names file: a single label");
	expect_error("198.51.100.0/24 a.example.net\n# again\n198.51.100.0/24 b.example.net\n",
		     "line 3: 198.51.100.0/24 is listed already, on line 1",
		     "names file: a prefix listed twice");
	expect_error("198.51.100.25 a.ex.net b.ex.net c.ex.net d.ex.net e.ex.net f.ex.net "
		     "g.ex.net h.ex.net i.ex.net j.ex.net k.ex.net l.ex.net m.ex.net n.ex.net "
		     "o.ex.net p.ex.net q.ex.net\n", "line 1: more than 16 names",
		     "names file: too many names on a line");
	names = sg_mx_names_load("/nonexistent/mx-names", err, sizeof(err));
	ASSERT_TRUE(names == NULL, "names file: a missing file");
	ASSERT_CONTAINS(err, "tls_mx_names /nonexistent/mx-names: cannot open it",
			"names file: the missing file is named");
}

/* ---------------------------------------------------------------- handshakes */

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

#define SEC 1000000000ULL

struct pair {
	int fd[2];
	SSL *client, *server;
};

static int handshake_failed(int e)
{
	char why[256];

	sg_tls_error(why, sizeof(why), "no OpenSSL error");
	printf("# handshake: SSL error %d: %s\n", e, why);
	return -1;
}

static int pump(struct pair *p)
{
	int cdone = 0, sdone = 0;

	SSL_set_connect_state(p->client);
	SSL_set_accept_state(p->server);
	for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
		if (!cdone) {
			int r = SSL_do_handshake(p->client);
			int e = SSL_get_error(p->client, r);

			if (r == 1)
				cdone = 1;
			else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return handshake_failed(e);
		}
		if (!sdone) {
			int r = SSL_do_handshake(p->server);
			int e = SSL_get_error(p->server, r);

			if (r == 1)
				sdone = 1;
			else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return handshake_failed(e);
		}
	}
	if (!(cdone && sdone)) {
		char why[256];

		sg_tls_error(why, sizeof(why), "no OpenSSL error");
		printf("# handshake: client %s, server %s: %s\n", cdone ? "done" : "not done",
		       sdone ? "done" : "not done", why);
		return -1;
	}
	/* TLS 1.3 tickets follow the handshake: a byte after them carries
	 * them to the client */
	{
		char c;

		if (SSL_write(p->server, "x", 1) != 1)
			return handshake_failed(0);
		for (int i = 0; i < 100; i++)
			if (SSL_read(p->client, &c, 1) == 1)
				return 0;
	}
	return handshake_failed(1);
}

static void pair_end(struct pair *p)
{
	/* a close_notify each way: OpenSSL forgets the session of an SSL
	 * freed without one (an unclean end) */
	if (p->client)
		SSL_shutdown(p->client);
	if (p->server)
		SSL_shutdown(p->server);
	SSL_free(p->client);
	SSL_free(p->server);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* A VM's handshake with smtpguard's server side: its session (to resume
 * with) into *out; 1 when it was resumed, 0 if not, -1 on failure. */
static int vm_handshake(struct sg_tls *tls, SSL_CTX *vm_ctx, SSL_SESSION *resume,
			SSL_SESSION **out)
{
	struct pair p = { .fd = { -1, -1 } };
	int ret = -1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fd))
		return -1;
	p.server = sg_tls_server(tls, p.fd[1]);
	p.client = SSL_new(vm_ctx);
	SSL_set_fd(p.client, p.fd[0]);
	if (resume)
		SSL_set_session(p.client, resume);
	if (p.server && pump(&p) == 0) {
		ret = SSL_session_reused(p.client);
		if (out)
			*out = SSL_get1_session(p.client);
	}
	pair_end(&p);
	return ret;
}

/* The proxy as the MX's client (sg_tls_client, cache_key) against
 * smtpguard's own server side standing in for the MX: 1 resumed, 0 not. */
static int mx_handshake(struct sg_tls *tls, const char *cache_key)
{
	struct pair p = { .fd = { -1, -1 } };
	int ret = -1;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fd))
		return -1;
	p.server = sg_tls_server(tls, p.fd[1]);
	p.client = sg_tls_client(tls, p.fd[0], "mx.example.net", cache_key);
	if (p.server && p.client && pump(&p) == 0)
		ret = SSL_session_reused(p.client);
	pair_end(&p);
	return ret;
}

static int write_key_and_cert(const char *keyfile, const char *certfile)
{
	static const char *const names[] = { "smtpguard.provider.test", NULL };
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = make_cert(key, "smtpguard.provider.test", names);
	FILE *k = fopen(keyfile, "w"), *c = fopen(certfile, "w");
	int ok = k && c && PEM_write_PrivateKey(k, key, NULL, NULL, 0, NULL, NULL) &&
		 PEM_write_X509(c, cert);

	if (k)
		fclose(k);
	if (c)
		fclose(c);
	X509_free(cert);
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}

static void ticket_rotation(int max_version, const char *v)
{
	struct sg_config cfg;
	struct sg_tls *tls;
	SSL_CTX *vm_ctx;
	/* each ticket is used once, as a TLS 1.3 client does (OpenSSL's own
	 * client refuses a second use): a1..a3 made under the first key */
	SSL_SESSION *a1 = NULL, *a2 = NULL, *a3 = NULL, *b = NULL, *c = NULL, *d = NULL,
		    *e = NULL, *renewed = NULL;
	char err[600], name[200];

	sg_config_defaults(&cfg);
	snprintf(cfg.tls_cert_file, sizeof(cfg.tls_cert_file), "%s/provider.crt", dir);
	snprintf(cfg.tls_key_file, sizeof(cfg.tls_key_file), "%s/provider.key", dir);
	cfg.tls_ticket_key_rotation_ns = 10 * SEC;
	tls = sg_tls_new(&cfg, err, sizeof(err));
	snprintf(name, sizeof(name), "tickets %s: contexts", v);
	if (!ASSERT_TRUE(tls != NULL, name)) {
		printf("# %s\n", err);
		return;
	}
	sg_tls_set_clock(tls, fake_clock);
	vm_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(vm_ctx, max_version);
	SSL_CTX_set_verify(vm_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(vm_ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);

#define CHECK_RESUME(session, want, what) do {						\
		snprintf(name, sizeof(name), "tickets %s: %s", v, what);		\
		ASSERT_EQ(vm_handshake(tls, vm_ctx, session, NULL), want, name);	\
	} while (0)

	/* period 10 s; the first key is made at the first ticket */
	fake_now = 1000 * SEC;
	snprintf(name, sizeof(name), "tickets %s: a full handshake issues a ticket", v);
	ASSERT_EQ(vm_handshake(tls, vm_ctx, NULL, &a1), 0, name);
	ASSERT_EQ(vm_handshake(tls, vm_ctx, NULL, &a2), 0, name);
	ASSERT_EQ(vm_handshake(tls, vm_ctx, NULL, &a3), 0, name);
	fake_now = 1005 * SEC;
	CHECK_RESUME(a1, 1, "resumes within the period");
	/* one rotation (t 1015): the key is the previous one now */
	fake_now = 1015 * SEC;
	snprintf(name, sizeof(name), "tickets %s: rotated once, it still resumes", v);
	ASSERT_EQ(vm_handshake(tls, vm_ctx, a2, &renewed), 1, name);
	/* a second rotation (t 1025): the first key is gone */
	fake_now = 1025 * SEC;
	CHECK_RESUME(a3, 0, "rotated twice, it no longer resumes");
	CHECK_RESUME(renewed, 1, "the ticket renewed after one rotation resumes");
	/* idle across two periods: one rotation happens late, and still the
	 * key made two periods before does not decrypt */
	fake_now = 2000 * SEC;
	ASSERT_EQ(vm_handshake(tls, vm_ctx, NULL, &b), 0, "tickets: a new ticket");
	fake_now = 2021 * SEC;
	CHECK_RESUME(b, 0, "two periods idle, it no longer resumes");
	fake_now = 3000 * SEC;
	ASSERT_EQ(vm_handshake(tls, vm_ctx, NULL, &c), 0, "tickets: another ticket");
	fake_now = 3012 * SEC;
	CHECK_RESUME(c, 1, "one period and a bit idle, it still resumes");
	/* a reload keeps the keys: a ticket from before it resumes after */
	fake_now = 4000 * SEC;
	ASSERT_EQ(vm_handshake(tls, vm_ctx, NULL, &d), 0, "tickets: a ticket before a reload");
	ASSERT_EQ(vm_handshake(tls, vm_ctx, NULL, &e), 0, "tickets: another before it");
	snprintf(name, sizeof(name), "tickets %s: reload", v);
	ASSERT_EQ(sg_tls_reload(tls, &cfg, err, sizeof(err)), 0, name);
	CHECK_RESUME(d, 1, "a reload keeps the keys");
	/* a reload that shortens the period applies it to the running keys */
	cfg.tls_ticket_key_rotation_ns = 2 * SEC;
	ASSERT_EQ(sg_tls_reload(tls, &cfg, err, sizeof(err)), 0, name);
	fake_now = 4005 * SEC;
	CHECK_RESUME(e, 0, "a shorter period after a reload applies");
#undef CHECK_RESUME
	SSL_SESSION_free(a1);
	SSL_SESSION_free(a2);
	SSL_SESSION_free(a3);
	SSL_SESSION_free(e);
	SSL_SESSION_free(b);
	SSL_SESSION_free(c);
	SSL_SESSION_free(d);
	SSL_SESSION_free(renewed);
	SSL_CTX_free(vm_ctx);
	sg_tls_free(tls);
}

static void test_mx_cache(void)
{
	struct sg_config cfg;
	struct sg_tls *tls;
	char err[600];
	/* keys as starttls.c makes them: the VM's sender, the MX, the SNI */
	static const char vm1[] = "192.0.2.11|198.51.100.25:25|mx.example.net";
	static const char vm2[] = "192.0.2.12|198.51.100.25:25|mx.example.net";

	sg_config_defaults(&cfg);
	snprintf(cfg.tls_cert_file, sizeof(cfg.tls_cert_file), "%s/provider.crt", dir);
	snprintf(cfg.tls_key_file, sizeof(cfg.tls_key_file), "%s/provider.key", dir);
	tls = sg_tls_new(&cfg, err, sizeof(err));
	if (!ASSERT_TRUE(tls != NULL, "mx cache: contexts")) {
		printf("# %s\n", err);
		return;
	}
	ASSERT_EQ(mx_handshake(tls, vm1), 0, "mx cache: vm1's first session is a full handshake");
	ASSERT_EQ(mx_handshake(tls, vm1), 1, "mx cache: vm1 resumes its own session");
	ASSERT_EQ(mx_handshake(tls, vm2), 0, "mx cache: vm2 does not resume vm1's session");
	ASSERT_EQ(mx_handshake(tls, vm2), 1, "mx cache: vm2 resumes its own afterwards");
	ASSERT_EQ(mx_handshake(tls, vm1), 1, "mx cache: vm1's is still its own");
	ASSERT_EQ(sg_tls_reload(tls, &cfg, err, sizeof(err)), 0, "mx cache: reload");
	ASSERT_EQ(mx_handshake(tls, vm1), 0,
		  "mx cache: emptied by a reload (made under the old settings)");
	sg_tls_free(tls);
}

static void test_bad_names_file(void)
{
	struct sg_config cfg;
	struct sg_tls *tls;
	char err[600];

	sg_config_defaults(&cfg);
	snprintf(cfg.tls_mx_names, sizeof(cfg.tls_mx_names), "%s",
		 write_text("bad-names", "198.51.100.25 mx.example.net\n198.51.100.26 -x.example\n"));
	tls = sg_tls_new(&cfg, err, sizeof(err));
	ASSERT_TRUE(tls == NULL, "contexts: a bad tls_mx_names refuses the start");
	ASSERT_CONTAINS(err, "bad-names, line 2: '-x.example' is not a host name",
			"contexts: the error names the file, the line and what");
	sg_tls_free(tls);
	snprintf(cfg.tls_mx_names, sizeof(cfg.tls_mx_names), "%s",
		 write_text("good-names", "198.51.100.25 mx.example.net\n"));
	tls = sg_tls_new(&cfg, err, sizeof(err));
	if (!ASSERT_TRUE(tls != NULL, "contexts: a good tls_mx_names loads"))
		return;
	snprintf(cfg.tls_mx_names, sizeof(cfg.tls_mx_names), "%s",
		 write_text("bad-names2", "nonsense\n"));
	ASSERT_EQ(sg_tls_reload(tls, &cfg, err, sizeof(err)), -1,
		  "contexts: a reload with a bad names file fails");
	ASSERT_CONTAINS(err, "bad-names2, line 1:", "contexts: the reload's error names the line");
	{
		struct sockaddr_storage ss;
		char sni[256];

		addr4(&ss, "198.51.100.25");
		sg_tls_mx_sni(tls, &ss, "greeting.example", sni, sizeof(sni));
		ASSERT_STREQ(sni, "mx.example.net",
			     "contexts: the running names stay, and give the SNI");
		addr4(&ss, "198.51.100.99");
		sg_tls_mx_sni(tls, &ss, "greeting.example", sni, sizeof(sni));
		ASSERT_STREQ(sni, "greeting.example", "contexts: else the greeting's name as SNI");
		sg_tls_mx_sni(tls, &ss, "198.51.100.99", sni, sizeof(sni));
		ASSERT_STREQ(sni, "", "contexts: never an address as SNI");
	}
	sg_tls_free(tls);
}

int main(void)
{
	char key[300], cert[300];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(key, sizeof(key), "%s/provider.key", dir);
	snprintf(cert, sizeof(cert), "%s/provider.crt", dir);
	if (!ASSERT_EQ(write_key_and_cert(key, cert), 0, "setup: a provider certificate"))
		return 1;
	test_names();
	test_names_file();
	test_bad_names_file();
	ticket_rotation(TLS1_3_VERSION, "TLS 1.3");
	ticket_rotation(TLS1_2_VERSION, "TLS 1.2");
	test_mx_cache();
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return test_exit_status();
}
