/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime_fields.c - a part's Content-Type, Content-Transfer-Encoding and
 * Content-Disposition read into struct sg_mime_part (see mime_fields.h).
 * Every scan moves forward; comments nest without recursion.
 */
#include <string.h>
#include <strings.h>
#include "mime_decode.h"
#include "mime_fields.h"

#define FILENAME_TAIL 64	/* a name cut keeps its end: the extension */

struct param {
	const char *name;
	size_t name_len;
	char *value;
	size_t value_len;
};

/* A piece of an RFC 2231 continued value: name*N= or name*N*=. */
struct name_segment {
	unsigned int index;
	int encoded;
	const char *v;
	size_t len;
};

/* One file-name parameter's forms: name=, name*=, name*N[*]=. */
struct name_forms {
	const char *plain;
	size_t plain_len;
	int has_plain;
	const char *ext;
	size_t ext_len;
	int has_ext;
	struct name_segment seg[SG_MIME_SEGMENTS_MAX];
	unsigned int nseg;
};

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 2045 token characters: printable ASCII but tspecials. */
static int is_token(char c)
{
	unsigned char u = (unsigned char)c;

	return u > ' ' && u < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

static size_t skip_cfws(const char *s, size_t n, size_t i)
{
	while (i < n) {
		if (is_space(s[i])) {
			i++;
		} else if (s[i] == '(') {
			size_t depth = 0;

			for (; i < n; i++) {
				if (s[i] == '\\') {
					i++;
				} else if (s[i] == '(') {
					depth++;
				} else if (s[i] == ')' && --depth == 0) {
					i++;
					break;
				}
			}
		} else {
			break;
		}
	}
	return i < n ? i : n;
}

static size_t token_end(const char *s, size_t n, size_t i)
{
	while (i < n && is_token(s[i]))
		i++;
	return i;
}

static void copy_lower(char *dst, size_t max, const char *src, size_t n)
{
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		dst[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
	}
	dst[n] = '\0';
}

/* The next "; name = value" from s[*pos], its quoted value unescaped in
 * place; 0 at the end. Junk up to the next ';' is skipped. */
static int next_param(char *s, size_t n, size_t *pos, struct param *p)
{
	size_t i = *pos;

	for (;;) {
		size_t name, value;

		i = skip_cfws(s, n, i);
		if (i >= n)
			return 0;
		if (s[i] != ';') {
			const char *semi = memchr(s + i, ';', n - i);

			if (!semi)
				return 0;
			i = (size_t)(semi - s);
		}
		i = skip_cfws(s, n, i + 1);
		name = i;
		i = token_end(s, n, i);
		p->name = s + name;
		p->name_len = i - name;
		i = skip_cfws(s, n, i);
		if (!p->name_len || i >= n || s[i] != '=')
			continue;
		i = skip_cfws(s, n, i + 1);
		if (i < n && s[i] == '"') {
			size_t w = i + 1;

			value = w;
			for (i++; i < n && s[i] != '"'; i++) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				s[w++] = s[i];
			}
			p->value_len = w - value;
			if (i < n)
				i++;	/* the closing quote */
		} else {
			value = i;
			while (i < n && !is_space(s[i]) && s[i] != ';' && s[i] != '"' && s[i] != '(')
				i++;
			p->value_len = i - value;
		}
		p->value = s + value;
		*pos = i;
		return 1;
	}
}

/* Files p under forms if it is base=, base*= or base*N[*]=. */
static void collect_name(struct name_forms *f, const struct param *p, const char *base)
{
	size_t blen = strlen(base), i, digits;
	unsigned int index = 0;

	if (p->name_len < blen || strncasecmp(p->name, base, blen))
		return;
	if (p->name_len == blen) {
		if (!f->has_plain) {
			f->plain = p->value;
			f->plain_len = p->value_len;
			f->has_plain = 1;
		}
		return;
	}
	if (p->name[blen] != '*')
		return;
	if (p->name_len == blen + 1) {
		if (!f->has_ext) {
			f->ext = p->value;
			f->ext_len = p->value_len;
			f->has_ext = 1;
		}
		return;
	}
	for (i = blen + 1, digits = 0; i < p->name_len && p->name[i] >= '0' && p->name[i] <= '9';
	     i++, digits++)
		index = index * 10 + (unsigned int)(p->name[i] - '0');
	if (!digits || digits > 4 || f->nseg == SG_MIME_SEGMENTS_MAX)
		return;
	if (i != p->name_len && !(i + 1 == p->name_len && p->name[i] == '*'))
		return;
	f->seg[f->nseg].index = index;
	f->seg[f->nseg].encoded = i + 1 == p->name_len;
	f->seg[f->nseg].v = p->value;
	f->seg[f->nseg].len = p->value_len;
	f->nseg++;
}

/* An RFC 2231 extended value: charset'language'percent-encoded (the
 * charset part only on the first piece), decoded to bytes at out. */
static size_t decode_extended(const char *v, size_t n, int first, char *out)
{
	if (first) {
		const char *q1 = memchr(v, '\'', n);
		const char *q2 = q1 ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - v)) : NULL;

		if (q2) {
			n -= (size_t)(q2 + 1 - v);
			v = q2 + 1;
		}
	}
	return sg_mime_percent_decode(v, n, out);
}

/* The file name f describes, assembled at out (room for the whole header
 * value); *len its length. Returns 0 if f holds none, 1 for name=, 2 for
 * the RFC 2231 forms. */
static int assemble_name(struct name_forms *f, char *out, size_t *len)
{
	size_t o = 0;

	if (f->has_ext) {
		*len = decode_extended(f->ext, f->ext_len, 1, out);
		return 2;
	}
	if (f->nseg) {
		unsigned int last = 0;

		/* insertion sort: at most SG_MIME_SEGMENTS_MAX */
		for (unsigned int i = 1; i < f->nseg; i++)
			for (unsigned int j = i; j > 0 && f->seg[j - 1].index > f->seg[j].index; j--) {
				struct name_segment t = f->seg[j];

				f->seg[j] = f->seg[j - 1];
				f->seg[j - 1] = t;
			}
		for (unsigned int i = 0; i < f->nseg; i++) {
			if (i && f->seg[i].index == last)
				continue;	/* a repeated piece: the first counts */
			last = f->seg[i].index;
			if (f->seg[i].encoded) {
				o += decode_extended(f->seg[i].v, f->seg[i].len, i == 0, out + o);
			} else {
				memcpy(out + o, f->seg[i].v, f->seg[i].len);
				o += f->seg[i].len;
			}
		}
		*len = o;
		return 2;
	}
	if (f->has_plain) {
		memcpy(out, f->plain, f->plain_len);
		/* not RFC 2047's place, but where every reader looks for it */
		*len = sg_mime_decode_words(out, f->plain_len, out, NULL);
		return 1;
	}
	return 0;
}

static void set_filename(struct sg_mime_part *part, struct sg_mime_fields *fields,
			 const char *name, size_t len, int source)
{
	if (source <= fields->name_source)
		return;
	fields->name_source = source;
	if (len <= SG_MIME_FILENAME_MAX) {
		memcpy(part->filename, name, len);
		part->filename_len = len;
	} else {
		size_t head = SG_MIME_FILENAME_MAX - FILENAME_TAIL;

		memcpy(part->filename, name, head);
		memcpy(part->filename + head, name + len - FILENAME_TAIL, FILENAME_TAIL);
		part->filename_len = SG_MIME_FILENAME_MAX;
		fields->filename_long = 1;
	}
	part->filename[part->filename_len] = '\0';
}

static void take_name(struct name_forms *forms, char *scratch, struct sg_mime_part *part,
		      struct sg_mime_fields *fields, int plain_source)
{
	size_t len;
	int form = assemble_name(forms, scratch, &len);

	if (form)
		set_filename(part, fields, scratch, len, plain_source + (form == 2));
}

void sg_mime_content_type(char *value, size_t n, char *scratch, struct sg_mime_part *part,
			  struct sg_mime_fields *fields, const char **boundary,
			  size_t *boundary_len)
{
	struct name_forms forms = { 0 };
	struct param p;
	size_t i = skip_cfws(value, n, 0), t = i, tend, pos;
	int charset_seen = 0;

	*boundary = NULL;
	*boundary_len = 0;
	tend = token_end(value, n, t);
	if (tend > t) {
		copy_lower(part->type, SG_MIME_TOKEN_MAX, value + t, tend - t);
		part->subtype[0] = '\0';
		fields->type_given = 1;
		i = skip_cfws(value, n, tend);
		if (i < n && value[i] == '/') {
			size_t s = skip_cfws(value, n, i + 1), send = token_end(value, n, s);

			copy_lower(part->subtype, SG_MIME_TOKEN_MAX, value + s, send - s);
			i = send;
		}
	}
	pos = i;
	while (next_param(value, n, &pos, &p)) {
		if (p.name_len == 8 && !strncasecmp(p.name, "boundary", 8)) {
			if (!*boundary) {
				*boundary = p.value;
				*boundary_len = p.value_len;
			}
		} else if (p.name_len == 7 && !strncasecmp(p.name, "charset", 7)) {
			if (!charset_seen)
				copy_lower(part->charset, SG_MIME_TOKEN_MAX, p.value, p.value_len);
			charset_seen = 1;
		} else {
			collect_name(&forms, &p, "name");
		}
	}
	take_name(&forms, scratch, part, fields, SG_MIME_NAME_TYPE);
}

void sg_mime_content_disposition(char *value, size_t n, char *scratch,
				 struct sg_mime_part *part, struct sg_mime_fields *fields)
{
	struct name_forms forms = { 0 };
	struct param p;
	size_t t = skip_cfws(value, n, 0), tend = token_end(value, n, t), pos = tend;

	if (tend - t == 10 && !strncasecmp(value + t, "attachment", 10))
		fields->disposition = SG_MIME_DISP_ATTACHMENT;
	else if (tend - t == 6 && !strncasecmp(value + t, "inline", 6))
		fields->disposition = SG_MIME_DISP_INLINE;
	else if (tend > t)
		fields->disposition = SG_MIME_DISP_OTHER;
	while (next_param(value, n, &pos, &p))
		collect_name(&forms, &p, "filename");
	take_name(&forms, scratch, part, fields, SG_MIME_NAME_DISPOSITION);
}

enum sg_mime_encoding sg_mime_transfer_encoding(const char *value, size_t n)
{
	static const struct {
		const char *name;
		enum sg_mime_encoding encoding;
	} known[] = {
		{ "7bit", SG_MIME_7BIT },
		{ "8bit", SG_MIME_8BIT },
		{ "binary", SG_MIME_BINARY },
		{ "base64", SG_MIME_BASE64 },
		{ "quoted-printable", SG_MIME_QUOTED_PRINTABLE },
	};
	size_t t = skip_cfws(value, n, 0), tend = token_end(value, n, t);

	if (tend == t)
		return SG_MIME_7BIT;
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
		if (strlen(known[k].name) == tend - t &&
		    !strncasecmp(value + t, known[k].name, tend - t))
			return known[k].encoding;
	return SG_MIME_ENCODING_UNKNOWN;
}
