/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * textfile.c - bounded line reading of an operator's file (see textfile.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "textfile.h"

int sg_textfile_open(struct sg_textfile *tf, const char *path, size_t max_line,
		     unsigned long long max_bytes, char *err, size_t errlen)
{
	struct stat st;

	memset(tf, 0, sizeof(*tf));
	tf->path = path;
	tf->max_line = max_line;
	tf->max_bytes = max_bytes;
	tf->line = malloc(max_line + 1);
	if (!tf->line) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	tf->f = fopen(path, "r");
	if (!tf->f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		free(tf->line);
		tf->line = NULL;
		return -1;
	}
	/* a FIFO or a device could block the reload, or never end */
	if (fstat(fileno(tf->f), &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		sg_textfile_close(tf);
		return -1;
	}
	return 0;
}

/* Refills the block: 1 with bytes to read, 0 at the end, -1 on error. */
static int refill(struct sg_textfile *tf, char *err, size_t errlen)
{
	size_t n;

	if (tf->pos < tf->end)
		return 1;
	if (tf->eof)
		return 0;
	n = fread(tf->block, 1, sizeof(tf->block), tf->f);
	if (n == 0) {
		if (ferror(tf->f)) {
			snprintf(err, errlen, "%s:%lu: read error: %s", tf->path, tf->lineno + 1,
				 strerror(errno));
			return -1;
		}
		tf->eof = 1;
		return 0;
	}
	tf->bytes += n;
	if (tf->bytes > tf->max_bytes) {
		snprintf(err, errlen, "%s: the file is larger than %llu bytes; split it or "
			 "remove what it need not hold", tf->path, tf->max_bytes);
		return -1;
	}
	tf->pos = 0;
	tf->end = n;
	return 1;
}

int sg_textfile_next(struct sg_textfile *tf, char **line, size_t *len, char *err,
		     size_t errlen)
{
	size_t n = 0;
	int overlong = 0, got = 0, rc;

	for (;;) {
		const char *start, *nl;
		size_t take;

		rc = refill(tf, err, errlen);
		if (rc < 0)
			return -1;
		if (rc == 0)
			break;
		got = 1;
		start = tf->block + tf->pos;
		nl = memchr(start, '\n', tf->end - tf->pos);
		take = nl ? (size_t)(nl - start) : tf->end - tf->pos;
		if (!overlong && n + take <= tf->max_line) {
			memcpy(tf->line + n, start, take);
			n += take;
		} else {
			overlong = 1;	/* read on to the line's end, then refuse it */
		}
		tf->pos += take + (nl ? 1 : 0);
		if (nl)
			break;
	}
	if (!got)
		return 0;
	tf->lineno++;
	if (overlong) {
		snprintf(err, errlen, "%s:%lu: the line is longer than %zu bytes", tf->path,
			 tf->lineno, tf->max_line);
		return -1;
	}
	if (n && tf->line[n - 1] == '\r')
		n--;
	tf->line[n] = '\0';
	if (memchr(tf->line, '\0', n)) {
		snprintf(err, errlen, "%s:%lu:%zu: the line holds a NUL byte; this is a text "
			 "file", tf->path, tf->lineno,
			 (size_t)((char *)memchr(tf->line, '\0', n) - tf->line) + 1);
		return -1;
	}
	*line = tf->line;
	*len = n;
	return 1;
}

void sg_textfile_close(struct sg_textfile *tf)
{
	if (tf->f)
		fclose(tf->f);
	free(tf->line);
	tf->f = NULL;
	tf->line = NULL;
}
