/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rules_check.h - the checks of a rules file that need all of its rules, or
 * a regex compiler: unique names, and each pattern's syntax (PCRE2, which
 * says where in the pattern it is wrong), before the matcher compiles them.
 * Private to rules.c.
 */
#ifndef SMTPGUARD_RULES_CHECK_H
#define SMTPGUARD_RULES_CHECK_H

#include <stddef.h>
#include "rules.h"

/* 0, or -1 with "PATH:LINE: rule 'X' is defined already on line N ...". */
int sg_rules_check_names(const struct sg_rules *rules, char *err, size_t errlen);
/* 0, or -1 with where the first bad pattern is wrong and why. */
int sg_rules_check_patterns(const struct sg_rules *rules, char *err, size_t errlen);
/* n bytes quoted for an error message: printable ASCII as it is, other
 * bytes as \xHH, at most max of them, then "...". */
void sg_quote_bytes(const char *s, size_t n, size_t max, char *buf, size_t len);

#endif
