/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* log.c - stderr logging for smtpguardd and smtpguardctl (see log.h). */
#include <stdio.h>
#include <time.h>
#include "log.h"

static const char *log_program = "smtpguard";
static int log_verbose;

void sg_log_init(const char *program)
{
	log_program = program;
}

void sg_log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

static void sg_vlog(const char *level, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", log_program, level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	fflush(stderr);
}

#define SG_LOG_FN(fn, level, cond)			\
void fn(const char *fmt, ...)				\
{							\
	va_list ap;					\
	if (!(cond))					\
		return;					\
	va_start(ap, fmt);				\
	sg_vlog(level, fmt, ap);			\
	va_end(ap);					\
}

SG_LOG_FN(sg_err, "error: ", 1)
SG_LOG_FN(sg_warn, "warning: ", 1)
SG_LOG_FN(sg_info, "", 1)
SG_LOG_FN(sg_debug, "debug: ", log_verbose)
