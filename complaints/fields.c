/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* fields.c - "Name: value" lines with folds, bounded (see fields.h). */
#include <stdio.h>
#include <string.h>
#include "fields.h"

struct field {
	char name[SG_FIELD_NAME_MAX + 1];
	char value[SG_FIELD_VALUE_MAX + 1];
	size_t len;
	int line;
	int open;
};

static void append(struct field *f, const char *s, size_t n)
{
	size_t room = SG_FIELD_VALUE_MAX - f->len;

	if (n > room)
		n = room;
	memcpy(f->value + f->len, s, n);
	f->len += n;
}

static int flush(struct field *f, sg_field_fn fn, void *ctx, char *err, size_t errlen)
{
	size_t start = 0;

	if (!f->open)
		return 0;
	f->open = 0;
	while (f->len && (f->value[f->len - 1] == ' ' || f->value[f->len - 1] == '\t'))
		f->len--;
	f->value[f->len] = '\0';
	while (f->value[start] == ' ' || f->value[start] == '\t')
		start++;
	return fn(ctx, f->name, f->value + start, f->line, err, errlen);
}

static int valid_name(const char *s, size_t n)
{
	if (!n || n > SG_FIELD_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == ':')
			return 0;
	return 1;
}

int sg_fields_parse(const char *text, size_t n, int strict, sg_field_fn fn, void *ctx,
		    int *lines, char *err, size_t errlen)
{
	struct field f = { .open = 0 };
	size_t pos = 0;
	int line = 0, ret = 0;

	while (pos < n) {
		const char *s = text + pos, *nl = memchr(s, '\n', n - pos), *colon;
		size_t len = nl ? (size_t)(nl - s) : n - pos;

		pos += len + (nl ? 1 : 0);
		line++;
		if (len && s[len - 1] == '\r')
			len--;
		if (memchr(s, '\0', len)) {
			if (!strict)
				break;
			snprintf(err, errlen, "line %d: a NUL byte inside a field", line);
			ret = -1;
			break;
		}
		if (!len)
			break;	/* the blank line: the fields are over */
		if (s[0] == ' ' || s[0] == '\t') {
			if (!f.open) {
				if (!strict)
					break;
				snprintf(err, errlen, "line %d: a continuation line with no field "
					 "before it", line);
				ret = -1;
				break;
			}
			append(&f, " ", 1);
			append(&f, s, len);
			continue;
		}
		if (flush(&f, fn, ctx, err, errlen)) {
			ret = -1;
			break;
		}
		colon = memchr(s, ':', len);
		{
			size_t nlen = colon ? (size_t)(colon - s) : 0;

			/* "Name :" is obsolete syntax, still seen */
			while (nlen && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
				nlen--;
			if (!colon || !valid_name(s, nlen)) {
				if (!strict)
					break;
				snprintf(err, errlen, "line %d: '%.*s%s' is not a field (Name: value)",
					 line, len > 60 ? 60 : (int)len, s, len > 60 ? "..." : "");
				ret = -1;
				break;
			}
			memcpy(f.name, s, nlen);
			f.name[nlen] = '\0';
		}
		f.len = 0;
		f.line = line;
		f.open = 1;
		append(&f, colon + 1, len - (size_t)(colon + 1 - s));
	}
	if (!ret && flush(&f, fn, ctx, err, errlen))
		ret = -1;
	if (lines)
		*lines = line;
	return ret;
}
