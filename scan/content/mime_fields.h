/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime_fields.h - the MIME parser's reading of a part's Content-Type,
 * Content-Transfer-Encoding and Content-Disposition values (RFC 2045,
 * 2183, 2231), apart from the stream so that it can be tested alone.
 *
 * Values come unfolded; quoted strings are unescaped in place, so a value
 * is rewritten. Comments are skipped; an unquoted parameter value runs to
 * whitespace, ';', '"' or '(' (real boundaries carry '=', '/' and '?').
 * The first of a repeated parameter counts, except that RFC 2231's
 * filename*= (and its continuations, in index order, whatever order they
 * come in) wins over filename=, as readers have it.
 */
#ifndef SMTPGUARD_MIME_FIELDS_H
#define SMTPGUARD_MIME_FIELDS_H

#include <stddef.h>
#include "mime.h"

#define SG_MIME_SEGMENTS_MAX 64	/* RFC 2231 continuations of one parameter */

/* Where a part's file name came from, best last: a better one replaces it. */
enum {
	SG_MIME_NAME_NONE = 0,
	SG_MIME_NAME_TYPE,		/* Content-Type name= */
	SG_MIME_NAME_TYPE_2231,		/* Content-Type name*= */
	SG_MIME_NAME_DISPOSITION,	/* Content-Disposition filename= */
	SG_MIME_NAME_DISPOSITION_2231,	/* Content-Disposition filename*= */
};

enum {
	SG_MIME_DISP_NONE = 0,
	SG_MIME_DISP_INLINE,
	SG_MIME_DISP_ATTACHMENT,
	SG_MIME_DISP_OTHER,		/* unknown: an attachment (RFC 2183) */
};

/* What a part's headers said so far, besides what struct sg_mime_part holds. */
struct sg_mime_fields {
	int name_source;	/* SG_MIME_NAME_* of part->filename */
	int disposition;	/* SG_MIME_DISP_* */
	int filename_long;	/* the file name was cut (SG_MIME_ANOM_LONG_FILENAME) */
	int type_given;		/* a Content-Type with a type was read */
};

/* Content-Type: part's type, subtype and charset, its name= file name; the
 * boundary parameter (first one) pointed to in value: *boundary NULL if
 * none. scratch has room for n bytes. */
void sg_mime_content_type(char *value, size_t n, char *scratch, struct sg_mime_part *part,
			  struct sg_mime_fields *fields, const char **boundary,
			  size_t *boundary_len);
/* Content-Disposition: the disposition and the filename= file name. */
void sg_mime_content_disposition(char *value, size_t n, char *scratch,
				 struct sg_mime_part *part, struct sg_mime_fields *fields);
/* Content-Transfer-Encoding's value: an empty one is 7bit. */
enum sg_mime_encoding sg_mime_transfer_encoding(const char *value, size_t n);

#endif
