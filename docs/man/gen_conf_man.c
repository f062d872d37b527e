/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * gen_conf_man - writes smtpguard.conf(5)'s scdoc source from the two
 * places the keys already live: the config table (lib/config.c: each key's
 * name, default, type, accepted values and reload scope) and the comments
 * of etc/smtpguard.conf (what each key does; test_config proves the file
 * shows every key of the table with the table's default). Nothing about a
 * key is written a third time.
 *
 *   gen_conf_man TEMPLATE CONF > smtpguard.conf.5.scd
 *
 * TEMPLATE is scdoc with two lines of their own: @HEADER@ (the file's
 * opening comment: its format, reloads) and @KEYS@ (every block of the
 * file, in its order: headings, keys with their defaults, their prose). A
 * key the file shows and the table lacks, or the other way round, is an
 * error: no page is written.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"

#define LINE_LEN 1024
#define MAX_LINES 4096

static char *lines[MAX_LINES];
static const struct sg_config_key *line_key[MAX_LINES];	/* NULL: prose */
static int nlines;
static int *documented;	/* per table row: times the file shows it */

/* "#key = value" or "key = value": the key's row in the table, or NULL
 * (prose); a key-shaped line the table lacks ends the program. */
static const struct sg_config_key *find_key_line(const char *line, const char *conf,
						 int lineno)
{
	const char *text = line + (line[0] == '#');
	size_t klen = strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789_"), n;
	const struct sg_config_key *keys = sg_config_keys(&n);

	if (!klen || text[klen + strspn(text + klen, " \t")] != '=')
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strlen(keys[i].name) == klen && strncmp(keys[i].name, text, klen) == 0) {
			documented[i]++;
			return &keys[i];
		}
	}
	fprintf(stderr, "gen_conf_man: %s, line %d: key '%.*s' is not in the config table "
		"(lib/config.c): add its row there, or take the line out\n", conf, lineno,
		(int)klen, text);
	exit(1);
}

/* scdoc's markup characters in running text, escaped (a backquote would
 * open a literal block at the start of a line) */
static void put_text(const char *s)
{
	for (; *s; s++) {
		if (*s == '*' || *s == '_' || *s == '\\' || *s == '`')
			putchar('\\');
		putchar(*s);
	}
}

/* a comment line's text, without "#" and one blank */
static const char *prose(const char *line)
{
	line += line[0] == '#';
	return line + (line[0] == ' ');
}

/* A line set off by two blanks or more (a table of values, an example):
 * kept as it is written. */
static int preformatted(const char *line)
{
	const char *t = prose(line);

	return t[0] == ' ' && t[1] == ' ';
}

static void put_limits(const struct sg_config_key *k)
{
	switch (k->type) {
	case SG_KEY_ENUM:
		printf("One of: ");
		for (int i = 0; k->names[i]; i++) {
			printf("%s", i ? ", " : "");
			put_text(k->names[i]);
		}
		printf(". ");
		break;
	case SG_KEY_UINT:
		printf("A whole number from %llu to %llu. ", (unsigned long long)k->min,
		       (unsigned long long)k->max);
		break;
	case SG_KEY_BOOL:
		printf("yes or no. ");
		break;
	case SG_KEY_DURATION:
		printf("A duration (500ms, 30s, 10m, 2h, 1d). ");
		break;
	case SG_KEY_RATE:
		printf("COUNT/UNIT (s, min, h, d). ");
		break;
	case SG_KEY_LIMIT:
		printf("COUNT/UNIT or none. ");
		break;
	case SG_KEY_PATH:
		printf("An absolute path. ");
		break;
	case SG_KEY_PATH_OR_DASH:
		printf("An absolute path, or - (standard output). ");
		break;
	case SG_KEY_PORTS_OR_NONE:
		printf("Ports, or none. ");
		break;
	default:
		break;
	}
	printf("%s.", k->reload == SG_RELOAD_LIVE ? "A reload applies it" :
	       "Read at start only");
}

/* One key: its name and the table's default, then what the table says of
 * its values and its reload. */
static void put_key(const struct sg_config_key *k)
{
	printf("*%s* = ", k->name);
	if (k->default_text[0])
		put_text(k->default_text);
	else
		printf("(empty)");
	printf("\n\t");
	put_limits(k);
	printf("\n\n");
}

/* Prose lines [from, to): paragraphs at "#" alone, preformatted runs as
 * literal blocks; indented under the keys they describe when indent. */
static void put_prose(int from, int to, int indent)
{
	const char *tab = indent ? "\t" : "";
	int in_para = 0;

	for (int i = from; i < to; i++) {
		const char *t = prose(lines[i]);

		if (!*t) {
			if (in_para)
				printf("\n\n");
			in_para = 0;
		} else if (preformatted(lines[i])) {
			if (in_para)
				printf("\n\n");
			in_para = 0;
			printf("%s```\n", tab);
			for (; i < to && preformatted(lines[i]); i++)
				printf("%s%s\n", tab, prose(lines[i]) + 2);
			printf("%s```\n\n", tab);
			i--;
		} else {
			/* one line a paragraph: a line of the file may begin
			 * with what scdoc reads as a list ("--set") */
			printf("%s", in_para ? " " : tab);
			put_text(t);
			in_para = 1;
		}
	}
	if (in_para)
		printf("\n\n");
}

/* "# --- Title: more words ---", maybe over several lines: a subsection
 * named by what comes before the colon; the rest is a paragraph. */
static int put_heading(int i, int end)
{
	char text[LINE_LEN * 4] = "", *colon, *dashes;
	int j = i;

	for (; j < end; j++) {
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s",
			 text[0] ? " " : "", prose(lines[j]) + (j == i ? 4 : 0));
		if (strstr(prose(lines[j]) + (j == i ? 4 : 0), "---"))
			break;
	}
	dashes = strstr(text, "---");
	if (dashes)
		*dashes = '\0';
	while (strlen(text) && text[strlen(text) - 1] == ' ')
		text[strlen(text) - 1] = '\0';
	colon = strchr(text, ':');
	if (colon)
		*colon = '\0';
	printf("## ");
	put_text(text);
	printf("\n\n");
	if (colon) {
		put_text(colon + 1 + (colon[1] == ' '));
		printf("\n\n");
	}
	return j + 1;
}

/* One block (lines between blank lines): prose then the keys it describes,
 * as often as they alternate; prose after the last keys stays with them. */
static void put_block(int from, int to)
{
	int i = from;

	if (strncmp(lines[i], "# ---", 5) == 0)
		i = put_heading(i, to);
	while (i < to) {
		int prose_from = i, prose_to;

		while (i < to && !line_key[i])
			i++;
		prose_to = i;
		if (i == to) {
			put_prose(prose_from, prose_to, 1);
			break;
		}
		for (; i < to && line_key[i]; i++)
			put_key(line_key[i]);
		put_prose(prose_from, prose_to, 1);
	}
}

static void read_lines(const char *path)
{
	char buf[LINE_LEN];
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		exit(1);
	}
	while (fgets(buf, sizeof(buf), f)) {
		if (nlines == MAX_LINES) {
			fprintf(stderr, "gen_conf_man: %s: more than %d lines\n", path, MAX_LINES);
			exit(1);
		}
		buf[strcspn(buf, "\n")] = '\0';
		lines[nlines++] = strdup(buf);
	}
	fclose(f);
}

static int blank(const char *line)
{
	return line[strspn(line, " \t")] == '\0';
}

int main(int argc, char **argv)
{
	char buf[LINE_LEN];
	FILE *tmpl;
	size_t nkeys;
	const struct sg_config_key *keys = sg_config_keys(&nkeys);
	int header_end = 0, missing = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: gen_conf_man TEMPLATE CONF > smtpguard.conf.5.scd\n");
		return 2;
	}
	documented = calloc(nkeys, sizeof(*documented));
	read_lines(argv[2]);
	for (int i = 0; i < nlines; i++)
		line_key[i] = find_key_line(lines[i], argv[2], i + 1);
	tmpl = fopen(argv[1], "r");
	if (!tmpl) {
		perror(argv[1]);
		return 1;
	}
	while (header_end < nlines && !blank(lines[header_end]))
		header_end++;
	while (fgets(buf, sizeof(buf), tmpl)) {
		if (strcmp(buf, "@HEADER@\n") == 0) {
			/* the file's first line names it; the page's NAME does */
			put_prose(1, header_end, 0);
		} else if (strcmp(buf, "@KEYS@\n") == 0) {
			for (int i = header_end; i < nlines;) {
				int end;

				while (i < nlines && blank(lines[i]))
					i++;
				for (end = i; end < nlines && !blank(lines[end]); end++)
					;
				if (i < end)
					put_block(i, end);
				i = end;
			}
		} else {
			fputs(buf, stdout);
		}
	}
	fclose(tmpl);
	for (size_t k = 0; k < nkeys; k++) {
		if (documented[k] != 1) {
			fprintf(stderr, "gen_conf_man: %s shows key '%s' %d times (once, as "
				"'#%s = DEFAULT', is how test_config wants it)\n", argv[2],
				keys[k].name, documented[k], keys[k].name);
			missing++;
		}
	}
	return missing ? 1 : fflush(stdout) != 0;
}
