/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * allow.h - the response ladder's allow list (allow.c): prefixes and
 * sub-identities the ladder never moves.
 */
#ifndef SMTPGUARD_ALLOW_H
#define SMTPGUARD_ALLOW_H

#include <sys/socket.h>

struct sg_allow;

/* NULL with err (file, line, what) on error. */
struct sg_allow *sg_allow_load(const char *path, char *err, size_t errlen);
void sg_allow_free(struct sg_allow *a);
/* Is the sender in one of its prefixes? (a NULL list holds nothing) */
int sg_allow_sender(const struct sg_allow *a, const struct sockaddr_storage *vm);
/* Is the sub-identity on it? kind: 'f' a MAIL FROM domain (its
 * subdomains too), 's' a script, 'u' an authenticated user. */
int sg_allow_sub(const struct sg_allow *a, char kind, const char *value);

#endif
