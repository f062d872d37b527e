/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * textfile.h - an operator's text file read line by line, within bounds:
 * a line's length, the file's size, and no NUL byte. The content rules and
 * their host lists are read with it, so that a file of any shape (one
 * endless line, binary garbage) is refused with its name, line and cause
 * instead of being half-read.
 */
#ifndef SMTPGUARD_TEXTFILE_H
#define SMTPGUARD_TEXTFILE_H

#include <stddef.h>
#include <stdio.h>

#define SG_TEXTFILE_BLOCK 65536

struct sg_textfile {
	FILE *f;
	const char *path;
	unsigned long lineno;		/* of the line last returned */
	size_t max_line;		/* bytes, without the line break */
	unsigned long long max_bytes;	/* of the whole file */
	unsigned long long bytes;	/* read so far */
	char *line;			/* max_line + 1 */
	char block[SG_TEXTFILE_BLOCK];
	size_t pos, end;
	int eof;
};

/* Opens path (kept by pointer: it must outlive tf). 0, or -1 with err. */
int sg_textfile_open(struct sg_textfile *tf, const char *path, size_t max_line,
		     unsigned long long max_bytes, char *err, size_t errlen);
/* The next line, without its "\n" or "\r\n", NUL-terminated at *len:
 * 1 with *line and *len, 0 at the end of the file, -1 with err
 * ("PATH:LINE: what is wrong"). */
int sg_textfile_next(struct sg_textfile *tf, char **line, size_t *len, char *err,
		     size_t errlen);
void sg_textfile_close(struct sg_textfile *tf);

#endif
