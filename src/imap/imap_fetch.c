/* FETCH items (RFC 9051 6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ and
 * CHANGEDSINCE/VANISHED, RFC 8474 OBJECTID, RFC 8514 SAVEDATE, RFC 8970
 * PREVIEW). */
#include "imap/imap_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"

struct fetch_name {
	const char *name;
	enum imap_fetch_type type;
};

static const struct fetch_name fetch_names[] = {
	{ "FLAGS", IMAP_FETCH_FLAGS },
	{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
	{ "RFC822", IMAP_FETCH_RFC822 },
	{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
	{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
	{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
	{ "BODY", IMAP_FETCH_BODY },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
	{ "UID", IMAP_FETCH_UID },
	{ "MODSEQ", IMAP_FETCH_MODSEQ },
	{ "EMAILID", IMAP_FETCH_EMAILID },
	{ "THREADID", IMAP_FETCH_THREADID },
	{ "SAVEDATE", IMAP_FETCH_SAVEDATE },
	{ "PREVIEW", IMAP_FETCH_PREVIEW },
};

/* The macros stand alone (RFC 9051 6.4.5). */
static const char *const macro_all[] = { "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE" };

static bool
name_is(const char *s, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/* A header field name: printable ASCII without ':' (RFC 5322 ftext). */
static bool
field_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 200)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ':')
			return false;
	return true;
}

/* A literal's bytes as a name; the reader has checked the announcement
 * (imap_args.h), but its bytes may be anything. */
static int
section_literal(const char **p, const char *end, char *tmp, size_t max, size_t *n_r)
{
	const char *error = NULL;
	uint64_t n;
	size_t head;

	if (imap_literal_head(*p, end, &n, &head, &error) < 0 || n > max)
		return -1;
	memcpy(tmp, *p + head, (size_t)n);
	*n_r = (size_t)n;
	*p += head + (size_t)n;
	return 1;
}

/* One name of a header list: header-fld-name is an astring, so an atom,
 * a quoted string or a literal; copied out. */
static int
section_field(const char **p, const char *end, struct imap_arena *a, const char **name_r)
{
	char tmp[256];
	size_t n = 0;
	const char *s = *p;

	if (s < end && *s == '"') {
		for (s++; s < end && *s != '"'; s++) {
			if (*s == '\\' && s + 1 < end)
				s++;
			if (n == sizeof(tmp))
				return -1;
			tmp[n++] = *s;
		}
		if (s == end)
			return -1;
		s++;
	} else if (s < end && *s == '{') {
		if (section_literal(&s, end, tmp, sizeof(tmp), &n) < 0)
			return -1;
	} else {
		while (s < end && *s != ' ' && *s != ')' && *s != '(' && *s != '"' && *s != '{') {
			if (n == sizeof(tmp))
				return -1;
			tmp[n++] = *s++;
		}
	}
	/* Names are separated by spaces: "To"Cc is not two. */
	if (s < end && *s != ' ' && *s != ')')
		return -1;
	if (!field_name_ok(tmp, n) || (*name_r = imap_arena_strdup(a, tmp, n)) == NULL)
		return -1;
	*p = s;
	return 1;
}

/* " (name name ...)" after HEADER.FIELDS(.NOT). */
static int
section_fields(const char *s, const char *end, struct imap_arena *a, struct imap_section *sec)
{
	const char *names[IMAP_FIELDS_MAX];

	if (s == end || *s++ != ' ')
		return -1;
	while (s < end && *s == ' ')
		s++;
	if (s == end || *s++ != '(')
		return -1;
	for (;;) {
		while (s < end && *s == ' ')
			s++;
		if (s < end && *s == ')')
			break;
		if (sec->nfields == IMAP_FIELDS_MAX ||
		    section_field(&s, end, a, &names[sec->nfields]) < 0)
			return -1;
		sec->nfields++;
	}
	if (sec->nfields == 0 || s + 1 != end)
		return -1;
	sec->fields = imap_arena_alloc(a, sec->nfields * sizeof(*sec->fields));
	if (sec->fields == NULL)
		return -1;
	memcpy(sec->fields, names, sec->nfields * sizeof(*names));
	return 1;
}

/* The inside of [...]: part numbers, then a text part name. BINARY takes
 * the same specs as BODY (liberal, as other servers are: RFC 3516 names
 * part numbers only). */
static int
section_parse(const char *s, size_t len, struct imap_arena *a, struct imap_section *sec)
{
	const char *end = s + len;

	memset(sec, 0, sizeof(*sec));
	while (s < end && *s >= '0' && *s <= '9') {
		uint64_t n;
		const char *d = s;
		while (s < end && *s >= '0' && *s <= '9')
			s++;
		if (imap_str_number(d, (size_t)(s - d), UINT32_MAX, &n) < 0 || n == 0 ||
		    sec->nparts == IMAP_PART_DEPTH_MAX)
			return -1;
		sec->parts[sec->nparts++] = (uint32_t)n;
		if (s == end)
			return 1;
		if (*s++ != '.' || s == end)
			return -1;
	}
	if (s == end)
		return 1;
	size_t rest = (size_t)(end - s), w = 0;
	while (w < rest && s[w] != ' ')
		w++;
	if (name_is(s, w, "HEADER"))
		sec->text = IMAP_SECTION_HEADER;
	else if (name_is(s, w, "TEXT"))
		sec->text = IMAP_SECTION_TEXT;
	else if (name_is(s, w, "MIME") && sec->nparts > 0)
		sec->text = IMAP_SECTION_MIME;
	else if (name_is(s, w, "HEADER.FIELDS"))
		sec->text = IMAP_SECTION_HEADER_FIELDS;
	else if (name_is(s, w, "HEADER.FIELDS.NOT"))
		sec->text = IMAP_SECTION_HEADER_FIELDS_NOT;
	else
		return -1;
	if (sec->text == IMAP_SECTION_HEADER_FIELDS || sec->text == IMAP_SECTION_HEADER_FIELDS_NOT)
		return section_fields(s + w, end, a, sec);
	return w == rest ? 1 : -1;
}

/* "<offset.count>" */
static int
partial_parse(const char *s, size_t len, struct imap_fetch_att *att)
{
	const char *dot = memchr(s, '.', len);

	if (len < 5 || s[0] != '<' || s[len - 1] != '>' || dot == NULL)
		return -1;
	if (imap_str_number(s + 1, (size_t)(dot - s - 1), UINT32_MAX, &att->offset) < 0 ||
	    imap_str_number(dot + 1, (size_t)(s + len - 1 - dot - 1), UINT32_MAX, &att->count) < 0 ||
	    att->count == 0)
		return -1;
	att->partial = true;
	return 1;
}

static int
reply_section(struct buf *b, const struct imap_section *sec)
{
	static const char *const texts[] = {
		[IMAP_SECTION_ALL] = "", [IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT", [IMAP_SECTION_MIME] = "MIME",
	};
	int ok = 1;

	for (size_t i = 0; i < sec->nparts && ok > 0; i++)
		ok = buf_printf(b, "%s%u", i > 0 ? "." : "", sec->parts[i]);
	if (ok > 0 && sec->text != IMAP_SECTION_ALL)
		ok = buf_printf(b, "%s%s", sec->nparts > 0 ? "." : "", texts[sec->text]);
	for (size_t i = 0; i < sec->nfields && ok > 0; i++) {
		const char *f = sec->fields[i];
		bool q = strpbrk(f, "(){%*\"\\]") != NULL;
		ok = buf_append_str(b, i == 0 ? " (" : " ");
		if (q && ok > 0)
			ok = buf_append(b, "\"", 1);
		for (const char *c = f; *c != '\0' && ok > 0; c++)
			ok = (*c == '"' || *c == '\\') && q ? buf_printf(b, "\\%c", *c)
							   : buf_append(b, c, 1);
		if (q && ok > 0)
			ok = buf_append(b, "\"", 1);
	}
	if (sec->nfields > 0 && ok > 0)
		ok = buf_append(b, ")", 1);
	return ok;
}

/* The item's name in the reply, made once here so the server need not. */
static int
reply_name(struct imap_fetch_att *att, const char *prefix, struct imap_arena *a)
{
	struct buf b;
	int ok;

	buf_init(&b, 8192);
	ok = buf_append_str(&b, prefix);
	if (att->type == IMAP_FETCH_BODY_SECTION || att->type == IMAP_FETCH_BINARY ||
	    att->type == IMAP_FETCH_BINARY_SIZE) {
		if (ok > 0)
			ok = buf_append(&b, "[", 1);
		if (ok > 0)
			ok = reply_section(&b, &att->section);
		if (ok > 0)
			ok = buf_append(&b, "]", 1);
		if (ok > 0 && att->partial)
			ok = buf_printf(&b, "<%llu>", (unsigned long long)att->offset);
	}
	if (ok > 0)
		att->reply_name = imap_arena_strdup(a, b.data, b.len);
	buf_free(&b);
	return ok > 0 && att->reply_name != NULL ? 1 : -1;
}

/* BODY[...], BODY.PEEK[...], BINARY[.PEEK|.SIZE][...] with <partial>. */
static int
fetch_section_att(const char *s, size_t len, struct imap_arena *a, struct imap_fetch_att *att)
{
	const char *open = memchr(s, '[', len);
	const char *close = s + len;
	size_t plen = (size_t)(open - s);
	const char *prefix;

	/* The last ']': a quoted field name may hold one, a partial cannot. */
	while (close > open && *close != ']')
		close--;
	if (close == open)
		return -1;
	if (name_is(s, plen, "BODY") || name_is(s, plen, "BODY.PEEK")) {
		att->type = IMAP_FETCH_BODY_SECTION;
		prefix = "BODY";
	} else if (name_is(s, plen, "BINARY") || name_is(s, plen, "BINARY.PEEK")) {
		att->type = IMAP_FETCH_BINARY;
		prefix = "BINARY";
	} else if (name_is(s, plen, "BINARY.SIZE")) {
		att->type = IMAP_FETCH_BINARY_SIZE;
		prefix = "BINARY.SIZE";
	} else {
		return -1;
	}
	att->peek = plen > 5 && strncasecmp(s + plen - 5, ".PEEK", 5) == 0;
	if (section_parse(open + 1, (size_t)(close - open - 1), a, &att->section) < 0)
		return -1;
	size_t rest = (size_t)(s + len - close - 1);
	if (rest > 0 && (att->type == IMAP_FETCH_BINARY_SIZE || partial_parse(close + 1, rest, att) < 0))
		return -1;
	return reply_name(att, prefix, a);
}

/* Fills all of *att: the macros pass one never set. */
static int
fetch_simple_att(const char *s, size_t len, struct imap_arena *a, struct imap_fetch_att *att)
{
	memset(att, 0, sizeof(*att));
	for (size_t i = 0; i < sizeof(fetch_names) / sizeof(fetch_names[0]); i++) {
		if (name_is(s, len, fetch_names[i].name)) {
			att->type = fetch_names[i].type;
			return reply_name(att, fetch_names[i].name, a);
		}
	}
	return -1;
}

static int
fetch_att(const struct imap_arg *arg, struct imap_arena *a, struct imap_fetch_att *att)
{
	memset(att, 0, sizeof(*att));
	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	if (memchr(arg->str, '[', arg->len) != NULL)
		return fetch_section_att(arg->str, arg->len, a, att);
	return fetch_simple_att(arg->str, arg->len, a, att);
}

/* PREVIEW may carry modifiers: PREVIEW (LAZY). Returns the args used. */
static int
preview_mods(const struct imap_arg *next, struct imap_fetch_att *att)
{
	/* Fetch modifiers are a list too; theirs never start with LAZY. */
	if (next == NULL || next->type != IMAP_ARG_LIST || !imap_arg_is_atom(next->list, "LAZY"))
		return 0;
	for (const struct imap_arg *m = next->list; m != NULL; m = m->next) {
		if (!imap_arg_is_atom(m, "LAZY"))
			return -1;
		att->lazy = true;
	}
	return 1;
}

static int
fetch_add(struct imap_fetch *fetch, const struct imap_fetch_att *att, struct imap_fetch_att *buf)
{
	if (fetch->count == IMAP_FETCH_ATTS_MAX)
		return -1;
	buf[fetch->count++] = *att;
	return 1;
}

/* The items: one atom (maybe a macro) or a list. Returns the argument after
 * them through *rest_r. */
static int
fetch_items(const struct imap_arg *args, struct imap_arena *a, struct imap_fetch *fetch,
	    struct imap_fetch_att *buf, const struct imap_arg **rest_r)
{
	struct imap_fetch_att att;
	const struct imap_arg *arg;
	bool listed = args->type == IMAP_ARG_LIST;

	if (!listed) {
		bool all = imap_arg_is_atom(args, "ALL"), full = imap_arg_is_atom(args, "FULL");
		if (all || full || imap_arg_is_atom(args, "FAST")) {
			for (size_t i = 0; i < (all || full ? 4u : 3u); i++)
				if (fetch_simple_att(macro_all[i], strlen(macro_all[i]), a, &att) < 0 ||
				    fetch_add(fetch, &att, buf) < 0)
					return -1;
			if (full && (fetch_simple_att("BODY", 4, a, &att) < 0 ||
				     fetch_add(fetch, &att, buf) < 0))
				return -1;
			*rest_r = args->next;
			return 1;
		}
	}
	arg = listed ? args->list : args;
	while (arg != NULL) {
		if (fetch_att(arg, a, &att) < 0)
			return -1;
		arg = arg->next;
		if (att.type == IMAP_FETCH_PREVIEW) {
			int used = preview_mods(arg, &att);
			if (used < 0)
				return -1;
			if (used > 0)
				arg = arg->next;
		}
		if (fetch_add(fetch, &att, buf) < 0)
			return -1;
		if (!listed)
			break;
	}
	if (fetch->count == 0)
		return -1;
	*rest_r = listed ? args->next : arg;
	return 1;
}

/* (CHANGEDSINCE n [VANISHED]) of RFC 7162. */
static int
fetch_modifiers(const struct imap_arg *arg, bool uid, struct imap_fetch *fetch,
		const char **error_r)
{
	if (arg == NULL)
		return 1;
	if (arg->type != IMAP_ARG_LIST || arg->next != NULL) {
		*error_r = "Invalid fetch modifiers";
		return -1;
	}
	for (const struct imap_arg *m = arg->list; m != NULL; m = m->next) {
		if (imap_arg_is_atom(m, "CHANGEDSINCE") && !fetch->changedsince_set) {
			/* iOS sends CHANGEDSINCE 0: valid, it means every message. */
			m = m->next;
			if (imap_arg_number(m, INT64_MAX, &fetch->changedsince) < 0) {
				*error_r = "Invalid CHANGEDSINCE";
				return -1;
			}
			fetch->changedsince_set = true;
		} else if (imap_arg_is_atom(m, "VANISHED") && !fetch->vanished) {
			fetch->vanished = true;
		} else {
			*error_r = "Unknown fetch modifier";
			return -1;
		}
	}
	if (fetch->vanished && (!uid || !fetch->changedsince_set)) {
		*error_r = "VANISHED needs UID FETCH and CHANGEDSINCE";
		return -1;
	}
	return 1;
}

int
imap_fetch_parse(const struct imap_arg *args, bool uid, struct imap_arena *a,
		 struct imap_fetch *fetch, const char **error_r)
{
	const struct imap_arg *rest = NULL;
	size_t n;

	memset(fetch, 0, sizeof(*fetch));
	if (args == NULL) {
		*error_r = "Missing fetch items";
		return -1;
	}
	/* At most one item per list element; a macro is five. */
	n = args->type == IMAP_ARG_LIST ? args->count : 5;
	if (n > IMAP_FETCH_ATTS_MAX) {
		*error_r = "Too many fetch items";
		return -1;
	}
	fetch->atts = imap_arena_alloc(a, (n > 0 ? n : 1) * sizeof(*fetch->atts));
	if (fetch->atts == NULL) {
		*error_r = "Command too large";
		return -1;
	}
	if (fetch_items(args, a, fetch, fetch->atts, &rest) < 0) {
		*error_r = "Invalid fetch item";
		return -1;
	}
	return fetch_modifiers(rest, uid, fetch, error_r);
}
