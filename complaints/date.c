/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* date.c - RFC 5322 dates to seconds since the epoch (see date.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "date.h"

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return s;
}

static int number(const char **s, int min_digits, int max_digits, int *out)
{
	int n = 0, d = 0;

	while (isdigit((unsigned char)**s) && d < max_digits) {
		n = n * 10 + (**s - '0');
		(*s)++;
		d++;
	}
	*out = n;
	return d >= min_digits && !isdigit((unsigned char)**s) ? 0 : -1;
}

/* Minutes east of UTC, from "+0100" or an obsolete name. */
static int zone(const char *s, int *minutes)
{
	static const struct { const char *name; int min; } names[] = {
		{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
		{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};
	size_t len = strcspn(s, " \t\r\n(");

	if ((s[0] == '+' || s[0] == '-') && len == 5) {
		int v = 0;

		for (int i = 1; i < 5; i++) {
			if (!isdigit((unsigned char)s[i]))
				return -1;
			v = v * 10 + (s[i] - '0');
		}
		if (v % 100 >= 60)
			return -1;
		*minutes = (v / 100 * 60 + v % 100) * (s[0] == '-' ? -1 : 1);
		return 0;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == strlen(names[i].name) && !strncasecmp(s, names[i].name, len)) {
			*minutes = names[i].min;
			return 0;
		}
	return -1;
}

int sg_rfc5322_date(const char *s, int64_t *epoch, char *err, size_t errlen)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	const char *p = skip_space(s), *m;
	int day, year, hour, min, sec = 0, zmin = 0, mon = -1;
	struct tm tm;

	/* an optional day of the week */
	if (isalpha((unsigned char)p[0])) {
		const char *comma = strchr(p, ',');

		if (!comma || comma - p > 9)
			goto bad;
		p = skip_space(comma + 1);
	}
	if (number(&p, 1, 2, &day) || day < 1 || day > 31)
		goto bad;
	p = skip_space(p);
	for (int i = 0; i < 12; i++)
		if (!strncasecmp(p, months + 3 * i, 3) && !isalpha((unsigned char)p[3])) {
			mon = i;
			break;
		}
	if (mon < 0)
		goto bad;
	p = skip_space(p + 3);
	m = p;
	if (number(&p, 2, 4, &year))
		goto bad;
	if (p - m == 2)
		year += year < 50 ? 2000 : 1900;	/* obsolete two-digit years */
	else if (p - m == 3)
		year += 1900;
	p = skip_space(p);
	if (number(&p, 1, 2, &hour) || *p++ != ':' || number(&p, 2, 2, &min))
		goto bad;
	if (*p == ':' && (p++, number(&p, 2, 2, &sec)))
		goto bad;
	if (hour > 23 || min > 59 || sec > 60)
		goto bad;
	p = skip_space(p);
	if (*p && *p != '(' && zone(p, &zmin))
		goto bad;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	*epoch = (int64_t)timegm(&tm) - (int64_t)zmin * 60;
	return 0;
bad:
	snprintf(err, errlen, "'%.60s' is not an RFC 5322 date (e.g. 'Thu, 3 Dec 2026 10:15:02 "
		 "+0100')", s);
	return -1;
}
