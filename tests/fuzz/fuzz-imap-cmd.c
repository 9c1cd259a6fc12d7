/* libFuzzer target for the IMAP command reader and parser, mailbox names,
 * sequence sets, dates and the response writers.
 *
 * The first byte picks what is fed:
 * 0-3  a client's byte stream through the reader, whole and in chunks
 *      whose sizes come from the second byte; both must frame the same
 *      commands and errors, and each command is parsed;
 * 4    one command straight to the parser, without the reader;
 * 5    a mailbox name: decoded, encoded and decoded again, it must stay;
 * 6    a string written as a response value and read back must stay;
 * 7    a sequence set and a date-time, read and written back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_mailbox.h"
#include "imap/imap_parse.h"
#include "imap/imap_reader.h"
#include "imap/imap_write.h"
#include "mime/mime_imap.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

static const struct imap_reader_limits fuzz_limits = {
	.line_max = 200,
	.literal_max = 300,
	.nonsync_max = 40,
	.command_max = 1000,
	.other_max = 500,
	.literals_max = 8,
};

/* STATUS items: each asked one once, in the mask, nothing else. */
static void
fuzz_status(const struct imap_status_items *items)
{
	unsigned seen = 0;

	FUZZ_CHECK(items->count <= IMAP_STATUS_ITEMS);
	for (size_t i = 0; i < items->count; i++) {
		unsigned bit = items->order[i];
		FUZZ_CHECK(bit != 0 && (bit & (bit - 1)) == 0 && (items->mask & bit) != 0);
		FUZZ_CHECK((seen & bit) == 0);
		seen |= bit;
	}
	FUZZ_CHECK(seen == items->mask);
}

/* Search strings hold no NUL (only a literal8 may, and none is taken). */
static void
fuzz_search_keys(const struct imap_search_key *k, int depth)
{
	FUZZ_CHECK(depth <= IMAP_SEARCH_DEPTH_MAX + 1);
	for (; k != NULL; k = k->next) {
		if (k->str != NULL)
			FUZZ_CHECK(strlen(k->str) == k->len);
		if (k->str2 != NULL)
			FUZZ_CHECK(strlen(k->str2) == k->len2);
		fuzz_search_keys(k->child, depth + 1);
	}
}

/* Header field names of sections: printable, no ':' (however sent). */
static void
fuzz_fields(const struct imap_fetch *fetch)
{
	for (size_t i = 0; i < fetch->count; i++) {
		const struct imap_section *sec = &fetch->atts[i].section;
		for (size_t f = 0; f < sec->nfields; f++) {
			const char *name = sec->fields[f];
			FUZZ_CHECK(name[0] != '\0' && strchr(name, ':') == NULL);
			for (const char *c = name; *c != '\0'; c++)
				FUZZ_CHECK(*c > 0x20 && *c < 0x7f);
		}
	}
}

static void
fuzz_parse(char *data, size_t len, bool utf8)
{
	struct imap_cmd cmd;
	struct imap_parse_opts opts = { .utf8 = utf8 };

	imap_cmd_init(&cmd);
	if (imap_cmd_parse(&cmd, data, len, &opts) == 1) {
		FUZZ_CHECK(cmd.name > IMAP_CMD_UNKNOWN && cmd.name < IMAP_CMD_COUNT);
		FUZZ_CHECK(strlen(cmd.tag) > 0 && strlen(cmd.tag) <= IMAP_TAG_MAX);
		if (cmd.mailbox != NULL)
			FUZZ_CHECK(strlen(cmd.mailbox) <= IMAP_MAILBOX_MAX);
		for (size_t i = 0; i < cmd.fetch.count; i++)
			FUZZ_CHECK(cmd.fetch.atts[i].reply_name != NULL);
		for (size_t i = 0; i < cmd.set.count; i++)
			FUZZ_CHECK(cmd.set.ranges[i].lo <= cmd.set.ranges[i].hi &&
				   cmd.set.ranges[i].lo > 0);
		fuzz_status(&cmd.status);
		fuzz_status(&cmd.list.status);
		fuzz_search_keys(cmd.search.keys, 0);
		fuzz_fields(&cmd.fetch);
		for (size_t i = 0; i < cmd.append.count; i++)
			FUZZ_CHECK(!cmd.append.msgs[i].utf8 || (utf8 && cmd.append.msgs[i].binary));
	} else {
		FUZZ_CHECK(strncmp(cmd.error, "BAD ", 4) == 0);
		FUZZ_CHECK(cmd.tag != NULL && strlen(cmd.tag) <= IMAP_TAG_MAX);
	}
	imap_cmd_clear(&cmd);
}

/* Feeds the stream in chunks of the given size (0: whole); records the
 * events and commands into t, parsing each command. */
static void
fuzz_read(const struct imap_reader_limits *lim, const uint8_t *data, size_t size, size_t chunk,
	  struct buf *t, bool parse)
{
	struct imap_reader r;
	size_t pos = 0;

	imap_reader_init(&r, lim);
	while (pos < size) {
		size_t n = chunk == 0 || size - pos < chunk ? size - pos : chunk, used = 0;
		enum imap_read_event ev = imap_reader_feed(&r, data + pos, n, &used);
		FUZZ_CHECK(used <= n);
		FUZZ_CHECK(used > 0 || ev != IMAP_READ_MORE);
		pos += used;
		if (ev == IMAP_READ_COMMAND) {
			size_t len;
			char *cmd = imap_reader_command(&r, &len);
			FUZZ_CHECK(cmd != NULL && len <= lim->command_max && cmd[len] == '\0');
			(void)!buf_printf(t, "<%zu:", len);
			(void)!buf_append(t, cmd, len);
			if (parse)
				fuzz_parse(cmd, len, false);
		} else if (ev == IMAP_READ_ERROR) {
			(void)!buf_printf(t, "!%s %s", imap_reader_error_tag(&r),
					  imap_reader_error_text(&r));
		} else if (ev == IMAP_READ_CONTINUE) {
			(void)!buf_append(t, "+", 1);
		}
	}
	imap_reader_free(&r);
}

static void
fuzz_stream(const uint8_t *data, size_t size, size_t chunk)
{
	struct imap_reader_limits spool = fuzz_limits;
	struct buf whole, split;

	buf_init(&whole, 1 << 20);
	buf_init(&split, 1 << 20);
	/* Split, and APPENDs of 16 bytes and more held in a spool file: the
	 * same events and commands. */
	spool.spool_dir = "/tmp";
	spool.spool_min = 16;
	fuzz_read(&fuzz_limits, data, size, 0, &whole, true);
	fuzz_read(&spool, data, size, chunk, &split, false);
	FUZZ_CHECK(whole.len == split.len &&
		   (whole.len == 0 || memcmp(whole.data, split.data, whole.len) == 0));
	buf_free(&whole);
	buf_free(&split);
}

static void
fuzz_mailbox(const char *data, size_t size, bool utf8)
{
	char out[IMAP_MAILBOX_MAX + 1], again[IMAP_MAILBOX_MAX + 1];
	const char *error = NULL;
	struct buf wire;

	if (imap_mailbox_decode(data, size, utf8, out, sizeof(out), &error) < 0) {
		FUZZ_CHECK(error != NULL);
		return;
	}
	buf_init(&wire, 16 * IMAP_MAILBOX_MAX);
	FUZZ_CHECK(imap_mailbox_encode(&wire, out, utf8) == 1);
	FUZZ_CHECK(imap_mailbox_decode(wire.data != NULL ? wire.data : "", wire.len, utf8, again,
				       sizeof(again), &error) == 1);
	FUZZ_CHECK(strcmp(out, again) == 0);
	(void)imap_list_match(out, again, '/');
	buf_free(&wire);
}

/* A written string must read back as itself, but for its NUL bytes,
 * which no IMAP string can carry (they go out as MIME_IMAP_NUL_MASK). */
static void
fuzz_write(const char *data, size_t size, bool utf8)
{
	struct buf out;
	struct imap_arena a;
	struct imap_arg *args = NULL;
	size_t count = 0;
	const char *error = NULL;
	char *want = malloc(size + 1);

	FUZZ_CHECK(want != NULL);
	memcpy(want, data, size);
	mime_imap_nul_mask(want, size);
	buf_init(&out, 4 * size + 64);
	FUZZ_CHECK(imap_write_astring(&out, data, size, utf8) == 1);
	imap_arena_init(&a, 1 << 16);
	FUZZ_CHECK(imap_args_read(out.data, out.len, &a, &args, &count, &error) == 1);
	FUZZ_CHECK(count == 1 && args->len == size && memcmp(args->str, want, size) == 0);
	imap_arena_free(&a);
	buf_free(&out);
	free(want);
}

static void
fuzz_values(const char *data, size_t size)
{
	struct imap_arena a;
	struct imap_seqset set;
	const char *error = NULL;
	time_t t, t2;
	int zone, zone2;
	char date[IMAP_DATETIME_SIZE];

	imap_arena_init(&a, 1 << 20);
	if (imap_seqset_parse(data, size, &a, &set, &error) == 1 && !set.saved) {
		FUZZ_CHECK(set.count > 0);
		(void)imap_seqset_contains(&set, 5, 10);
	}
	imap_arena_free(&a);
	if (imap_datetime_parse(data, size, &t, &zone) == 1) {
		imap_datetime_format(t, zone, date, sizeof(date));
		FUZZ_CHECK(imap_datetime_parse(date, strlen(date), &t2, &zone2) == 1);
		FUZZ_CHECK(t == t2 && zone == zone2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;

	if (size < 2 || size > 4096)
		return 0;
	if (data[0] % 8 < 4) {
		fuzz_stream(data + 2, size - 2, (size_t)data[1] % 17 + 1);
		return 0;
	}
	copy = malloc(size);
	memcpy(copy, data + 2, size - 2);
	copy[size - 2] = '\0';
	switch (data[0] % 8) {
	case 4:
		fuzz_parse(copy, size - 2, data[1] & 1);
		break;
	case 5:
		fuzz_mailbox(copy, size - 2, data[1] & 1);
		break;
	case 6:
		fuzz_write(copy, size - 2, data[1] & 1);
		break;
	case 7:
		fuzz_values(copy, size - 2);
		break;
	}
	free(copy);
	return 0;
}
