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

/* One write a message: the workers' lines never interleave mid-line. */
static void sg_vlog(const char *level, const char *fmt, va_list ap)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s: %s", log_program, level);

	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
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
