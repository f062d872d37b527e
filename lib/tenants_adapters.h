/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tenants_adapters.h - what tenants.c's libvirt index uses of the libvirt
 * reader (tenants_adapters.c); the adapters' public calls are in tenants.h.
 */
#ifndef SMTPGUARD_TENANTS_ADAPTERS_H
#define SMTPGUARD_TENANTS_ADAPTERS_H

#include <stddef.h>

/* A domain's live XML, NUL-terminated (malloc'd); NULL with errno. */
char *sg_libvirt_read_xml(const char *path);
/* The next <interface> element's <target dev='...'> from *p on: 1 with dev
 * (and *p past the element), 0 at the end. */
int sg_libvirt_next_interface(const char **p, char *dev, size_t len);
/* The tenant in the domain's metadata element of SG_TENANT_LIBVIRT_NS: 1
 * with name; 0 none (name ""); -1 with err naming file (garbled, or not a
 * tenant name). */
int sg_libvirt_metadata_tenant(const char *xml, const char *file, char *name, size_t len,
			       char *err, size_t errlen);

#endif
