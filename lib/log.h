/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * log.h - the one error style of smtpguard's userspace: messages go to stderr
 * as "PROGRAM: LEVEL: text", and name the object, the cause and the fix.
 */
#ifndef SMTPGUARD_LOG_H
#define SMTPGUARD_LOG_H

#include <stdarg.h>

void sg_log_init(const char *program);
void sg_log_set_verbose(int verbose);
void sg_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
