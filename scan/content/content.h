/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * content.h - the built-in content engine (content.c): MIME-aware rules
 * over headers, decoded text, URL hosts and attachments, from the file
 * content_rules names (docs/content-rules.md has its format).
 */
#ifndef SMTPGUARD_CONTENT_H
#define SMTPGUARD_CONTENT_H

#include "rules.h"
#include "scanner.h"

struct sg_content_config {
	const struct sg_rules *rules;	/* compiled; outlives the engine's messages */
};

extern const struct sg_engine sg_content_engine;

#endif
