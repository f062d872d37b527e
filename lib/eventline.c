/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* eventline.c - smtpguard's event lines read back (see eventline.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "eventline.h"

int sg_event_field(const char *line, const char *name, char *out, size_t len)
{
	char key[64];
	const char *p, *q;
	size_t n = 0;

	if (!len)
		return -1;
	out[0] = '\0';
	snprintf(key, sizeof(key), "\"%s\":\"", name);
	p = strstr(line, key);
	if (!p)
		return -1;
	p += strlen(key);
	for (q = p; *q && *q != '"'; q++) {
		if (*q == '\\' && (q[1] == '"' || q[1] == '\\'))
			q++;
		if (n + 1 < len)
			out[n++] = *q;
	}
	out[n] = '\0';
	return 0;
}

int sg_event_number(const char *line, const char *name, uint64_t *out)
{
	char key[64];
	const char *p;
	char *end;

	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(line, key);
	if (!p)
		return -1;
	p += strlen(key);
	if (*p < '0' || *p > '9')
		return -1;
	*out = strtoull(p, &end, 10);
	return 0;
}

int sg_same_message_id(const char *a, const char *b)
{
	size_t la, lb;

	a += *a == '<';
	b += *b == '<';
	la = strlen(a);
	lb = strlen(b);
	la -= la && a[la - 1] == '>';
	lb -= lb && b[lb - 1] == '>';
	return la && la == lb && strncmp(a, b, la) == 0;
}

int sg_event_time_ms(const char *iso, int64_t *ms)
{
	struct tm tm;
	int msec = 0, used = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
		return -1;
	iso += used;
	if (*iso == '.') {
		int digits = 0;

		for (iso++; *iso >= '0' && *iso <= '9'; iso++, digits++)
			if (digits < 3)
				msec = msec * 10 + (*iso - '0');
		while (digits > 0 && digits < 3) {
			msec *= 10;
			digits++;
		}
	}
	if (*iso != 'Z')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ms = (int64_t)timegm(&tm) * 1000 + msec;
	return 0;
}

void sg_event_address(const char *addr_port, char *out, size_t len)
{
	const char *end;

	if (!len)
		return;
	if (addr_port[0] == '[') {
		end = strchr(addr_port, ']');
		addr_port++;
	} else {
		end = strrchr(addr_port, ':');
		/* a bare IPv6 address has more than one */
		if (end && strchr(addr_port, ':') != end)
			end = NULL;
	}
	snprintf(out, len, "%.*s", end ? (int)(end - addr_port) : (int)strlen(addr_port),
		 addr_port);
}
