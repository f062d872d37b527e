/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_scan_milter_reply.c - libFuzzer target for the milter reply decoder
 * (scan/milter_proto.c), which reads whatever a milter sends. The input's
 * first byte says how many slice sizes follow (0-8), those bytes are the
 * sizes (0: an empty call, 255: the rest), the rest is the stream. The
 * stream is decoded whole and in those slices; besides "no crash" it checks
 * the decoder's promises: never more taken than given, progress on every
 * call, every field inside its packet and well formed, an error for good,
 * and the same replies (and the same error, at the same packet) however
 * the stream is cut. An optneg packet built from the input reads back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "milter_proto.h"

#define MAX_REPLIES 2048

static char storage_whole[SG_MILTER_REPLY_MAX];
static char storage_sliced[SG_MILTER_REPLY_MAX];

struct outcome {
	size_t replies;
	uint64_t hash[MAX_REPLIES];
	int failed;
	char error[SG_MILTER_ERROR_LEN];
	uint64_t failed_packet;
	size_t pending;
};

static struct outcome whole, sliced;

static void check(int ok)
{
	if (!ok)
		abort();
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *u = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ u[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
	return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "\xff", 1);
}

/* A NUL-terminated string that lies inside the reply's data. */
static void check_string(const struct sg_milter_reply *r, const char *s)
{
	check(s != NULL);
	check(s >= r->data && s < r->data + r->len);
	check(memchr(s, '\0', (size_t)(r->data + r->len - s)) != NULL);
}

static void check_replycode(const struct sg_milter_reply *r)
{
	const struct sg_milter_replycode *rc = &r->replycode;
	unsigned breaks = 0;

	check(rc->code >= 400 && rc->code <= 599);
	check(rc->smtp == r->data && rc->smtp_len >= 3 && rc->smtp_len < r->len);
	check(rc->smtp[rc->smtp_len] == '\0' && strlen(rc->smtp) == rc->smtp_len);
	check(rc->smtp[0] - '0' == rc->code / 100);
	check(rc->text >= rc->smtp && rc->text + rc->text_len <= rc->smtp + rc->smtp_len);
	check(rc->enhanced[0] == '\0' || rc->enhanced[0] - '0' == rc->code / 100);
	check(strlen(rc->enhanced) < sizeof(rc->enhanced));
	for (size_t i = 0; i < rc->smtp_len; i++) {
		unsigned char c = (unsigned char)rc->smtp[i];

		if (c == '\r') {
			check(i + 1 < rc->smtp_len && rc->smtp[i + 1] == '\n');
			breaks++;
		} else if (c == '\n') {
			check(i > 0 && rc->smtp[i - 1] == '\r');
		} else {
			check(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
	}
	check(rc->lines == breaks + 1);
}

/* Every promise about one reply; its hash, over every decoded field. */
static uint64_t check_reply(const struct sg_milter_reply *r, const char *storage)
{
	uint64_t h = 0xcbf29ce484222325ull;

	check(sg_milter_reply_name(r->cmd) != NULL);
	check(r->data == storage + 1 && r->len < SG_MILTER_REPLY_MAX);
	h = fnv(h, &r->cmd, 1);
	h = fnv(h, &r->len, sizeof(r->len));
	h = fnv(h, r->data, r->len);
	switch (r->cmd) {
	case SG_MILTER_SMFIR_REPLYCODE:
		check_replycode(r);
		h = fnv(h, &r->replycode.code, sizeof(r->replycode.code));
		h = fnv_str(h, r->replycode.enhanced);
		h = fnv(h, r->replycode.text, r->replycode.text_len);
		h = fnv(h, &r->replycode.lines, sizeof(r->replycode.lines));
		break;
	case SG_MILTER_SMFIR_ADDHEADER:
	case SG_MILTER_SMFIR_INSHEADER:
	case SG_MILTER_SMFIR_CHGHEADER:
		check_string(r, r->header.name);
		check_string(r, r->header.value);
		check(r->header.name[0] != '\0' && !strchr(r->header.name, ':'));
		h = fnv(h, &r->header.index, sizeof(r->header.index));
		h = fnv_str(h, r->header.name);
		h = fnv_str(h, r->header.value);
		break;
	case SG_MILTER_SMFIR_QUARANTINE:
		check_string(r, r->reason);
		h = fnv_str(h, r->reason);
		break;
	case SG_MILTER_SMFIR_ADDRCPT:
	case SG_MILTER_SMFIR_DELRCPT:
	case SG_MILTER_SMFIR_ADDRCPT_PAR:
	case SG_MILTER_SMFIR_CHGFROM:
		check_string(r, r->address.addr);
		check(r->address.addr[0] != '\0');
		if (r->cmd == SG_MILTER_SMFIR_ADDRCPT || r->cmd == SG_MILTER_SMFIR_DELRCPT)
			check(r->address.args == NULL);
		if (r->address.args)
			check_string(r, r->address.args);
		h = fnv_str(h, r->address.addr);
		h = fnv_str(h, r->address.args);
		break;
	case SG_MILTER_SMFIC_OPTNEG:
		check(r->optneg.version >= 2 && r->optneg.version <= 6);
		check(r->len >= SG_MILTER_OPTLEN);
		h = fnv(h, &r->optneg.version, sizeof(r->optneg.version));
		h = fnv(h, &r->optneg.actions, sizeof(r->optneg.actions));
		h = fnv(h, &r->optneg.protocol, sizeof(r->optneg.protocol));
		for (int i = 0; i < SG_MILTER_MACRO_STAGES; i++) {
			if (r->optneg.macros[i]) {
				check(r->optneg.version == 6);
				check_string(r, r->optneg.macros[i]);
			}
			h = fnv_str(h, r->optneg.macros[i]);
		}
		break;
	case SG_MILTER_SMFIR_REPLBODY:
		break;
	default:
		check(r->len == 0);
	}
	return h;
}

/* Decodes the stream in the given slices (none: whole). */
static void run(const uint8_t *stream, size_t n, const uint8_t *sizes, size_t nsizes,
		char *storage, struct outcome *o)
{
	struct sg_milter_decoder d;
	struct sg_milter_reply r;
	const char *data = (const char *)stream;
	size_t pos = 0, k = 0, used;
	int rc;

	memset(o, 0, sizeof(*o));
	sg_milter_decoder_init(&d, storage, SG_MILTER_REPLY_MAX);
	while (pos < n) {
		size_t slice = n - pos, off = 0;

		if (nsizes) {
			uint8_t s = sizes[k++ % nsizes];

			if (s == 0) {
				/* an empty call takes nothing and asks for more */
				rc = sg_milter_decode(&d, data + pos, 0, &used, &r);
				check(rc == SG_MILTER_NEED_MORE && used == 0);
				s = 1;
			}
			if (s != 255 && s < slice)
				slice = s;
		}
		while (off < slice) {
			rc = sg_milter_decode(&d, data + pos + off, slice - off, &used, &r);
			check(used <= slice - off);
			if (rc == SG_MILTER_ERROR) {
				const char *err = sg_milter_decoder_error(&d);

				check(err != NULL && err[0] != '\0' && strlen(err) < SG_MILTER_ERROR_LEN);
				o->failed = 1;
				strcpy(o->error, err);
				o->failed_packet = d.packet_offset;
				check(d.packet_offset <= pos + off + used);
				/* for good: the next call takes nothing */
				rc = sg_milter_decode(&d, data, n, &used, &r);
				check(rc == SG_MILTER_ERROR && used == 0);
				return;
			}
			if (rc == SG_MILTER_REPLY) {
				check(used >= 1);
				check(o->replies < MAX_REPLIES);
				o->hash[o->replies++] = check_reply(&r, storage);
			} else {
				check(rc == SG_MILTER_NEED_MORE && used == slice - off);
			}
			off += used;
		}
		pos += slice;
	}
	o->pending = sg_milter_decoder_pending(&d);
	check(o->pending < SG_MILTER_LEN_BYTES + SG_MILTER_REPLY_MAX);
	check(sg_milter_decoder_error(&d) == NULL);
}

/* The MTA's optneg packet, from the input's numbers, reads back as the
 * milter's: the same format both ways. */
static void optneg_round_trip(const uint8_t *data, size_t size)
{
	char bytes[32];
	struct sg_milter_buf b = { bytes, 0, sizeof(bytes), 0 };
	struct sg_milter_decoder d;
	struct sg_milter_reply r;
	struct sg_milter_optneg offer;
	uint32_t v[3] = { 6, 0, 0 };
	char err[200];
	size_t used;
	int rc;

	if (size >= 12) {
		memcpy(v, data + size - 12, 12);
		v[0] %= 9;
	}
	check(sg_milter_put_optneg(&b, v[0], v[1], v[2]) == 0 && b.len == 17);
	sg_milter_decoder_init(&d, storage_whole, SG_MILTER_REPLY_MAX);
	rc = sg_milter_decode(&d, b.data, b.len, &used, &r);
	if (v[0] >= 2 && v[0] <= 6) {
		check(rc == SG_MILTER_REPLY && used == 17 && r.cmd == 'O');
		check(r.optneg.version == v[0] && r.optneg.actions == v[1] && r.optneg.protocol == v[2]);
		sg_milter_mta_offer(&offer);
		check((sg_milter_check_optneg(&offer, &r.optneg, err, sizeof(err)) == 0) ==
		      (!(v[1] & ~offer.actions) && !(v[2] & ~offer.protocol)));
	} else {
		check(rc == SG_MILTER_ERROR);
	}
	for (int ev = 0; ev <= SG_MILTER_EV_COUNT; ev++) {
		unsigned w = sg_milter_wants(v[0], v[2], (enum sg_milter_event)ev);

		check((w & ~(SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY)) == 0);
		check(!(w & SG_MILTER_AWAIT_REPLY) || (w & SG_MILTER_SEND));
	}
}

/* A header built from the input: refused exactly when it cannot be said,
 * and when said, framed right. */
static void header_encode(const uint8_t *data, size_t size)
{
	static char bytes[SG_MILTER_MAX_DATA + 64];
	struct sg_milter_buf b = { bytes, 0, sizeof(bytes), 0 };
	size_t cut = size ? data[0] % (size + 1) : 0;
	struct sg_milter_str name = { (const char *)data, cut };
	struct sg_milter_str value = { (const char *)data + cut, size - cut };
	int can = cut > 0 && !memchr(name.s, '\0', name.len) &&
		  !(value.len && memchr(value.s, '\0', value.len)) &&
		  name.len + value.len + 2 <= SG_MILTER_MAX_DATA;
	int rc = sg_milter_put_header(&b, name, value);

	check((rc == 0) == can);
	if (rc == 0) {
		check(b.len == 5 + name.len + value.len + 2);
		check(b.data[4] == 'L' && b.data[5 + name.len] == '\0' && b.data[b.len - 1] == '\0');
	} else {
		check(b.len == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nsizes;
	const uint8_t *sizes, *stream;
	size_t n;

	if (size == 0)
		return 0;
	nsizes = data[0] % 9;
	if (1 + nsizes > size)
		nsizes = size - 1;
	sizes = data + 1;
	stream = data + 1 + nsizes;
	n = size - 1 - nsizes;

	run(stream, n, NULL, 0, storage_whole, &whole);
	run(stream, n, sizes, nsizes, storage_sliced, &sliced);
	check(whole.replies == sliced.replies);
	check(memcmp(whole.hash, sliced.hash, whole.replies * sizeof(whole.hash[0])) == 0);
	check(whole.failed == sliced.failed);
	if (whole.failed) {
		check(strcmp(whole.error, sliced.error) == 0);
		check(whole.failed_packet == sliced.failed_packet);
	} else {
		check(whole.pending == sliced.pending);
	}

	optneg_round_trip(data, size);
	header_encode(stream, n);
	return 0;
}
