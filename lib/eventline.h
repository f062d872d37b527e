/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * eventline.h - reading smtpguard's own event lines back (events_file: one
 * JSON object a line, written by proxy/events.c): a string field's value,
 * the Message-ID compared as a receiver would, the time as a number. For
 * `smtpguardctl trace` and the complaint matcher (complaints/). Not a JSON
 * parser: it reads the lines smtpguard writes (a field's name is never
 * inside a value there: every '"' of a value is escaped).
 */
#ifndef SMTPGUARD_EVENTLINE_H
#define SMTPGUARD_EVENTLINE_H

#include <stddef.h>
#include <stdint.h>

/* The string field name's value, unescaped as the daemon escaped it (\"
 * and \\; \uXXXX kept as written), cut to fit out. -1 when the line has no
 * such string field (out is then ""). */
int sg_event_field(const char *line, const char *name, char *out, size_t len);
/* The unsigned number field name's value; -1 when it has none. */
int sg_event_number(const char *line, const char *name, uint64_t *out);
/* Message-IDs compare whole, with or without their angle brackets; an
 * empty one equals nothing. */
int sg_same_message_id(const char *a, const char *b);
/* "2026-12-03T09:46:05.123Z" (the events' "time") in ms since the epoch;
 * -1 when it is not one. */
int sg_event_time_ms(const char *iso, int64_t *ms);
/* The address of a source or MX written "192.0.2.10:40000" or
 * "[2001:db8::10]:40000", without its port. */
void sg_event_address(const char *addr_port, char *out, size_t len);

#endif
