#include "mime/mime_addr.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "mime/mime_lex.h"

static struct mime_addr *
addr_new(struct mime_addr_list *list, enum mime_addr_kind kind)
{
	struct mime_addr *a;

	if (list->n >= MIME_ADDRS_MAX)
		return NULL;
	list->v = realloc(list->v, (list->n + 1) * sizeof(*list->v));
	if (list->v == NULL)
		log_fatal("out of memory");
	a = &list->v[list->n++];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	buf_init(&a->name, MIME_ADDR_PART_MAX);
	buf_init(&a->route, MIME_ADDR_PART_MAX);
	buf_init(&a->mailbox, MIME_ADDR_PART_MAX);
	buf_init(&a->domain, MIME_ADDR_PART_MAX);
	return a;
}

void
mime_addr_list_free(struct mime_addr_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		buf_free(&list->v[i].name);
		buf_free(&list->v[i].route);
		buf_free(&list->v[i].mailbox);
		buf_free(&list->v[i].domain);
	}
	free(list->v);
	list->v = NULL;
	list->n = 0;
}

static bool
atom_next(const struct mime_lex *lx)
{
	struct mime_lex probe = *lx;

	return mime_lex_atom(&probe, true, NULL) > 0;
}

/* A phrase: words (atoms, dots, quoted strings) joined by one space.
 * Returns the number of words. */
static size_t
parse_phrase(struct mime_lex *lx, struct buf *out)
{
	size_t words = 0;

	for (;;) {
		int c;

		mime_lex_cfws(lx, NULL);
		c = mime_lex_peek(lx);
		if (c == '"' || atom_next(lx)) {
			if (words++ > 0)
				mime_buf_add(out, " ", 1);
			if (c == '"')
				mime_lex_quoted(lx, out);
			else
				(void)mime_lex_atom(lx, true, out);
		} else {
			return words;
		}
	}
}

/* A domain: dot-atom or domain literal "[...]". */
static void
parse_domain(struct mime_lex *lx, struct buf *out)
{
	mime_lex_cfws(lx, NULL);
	if (mime_lex_peek(lx) == '[') {
		while (!mime_lex_eof(lx)) {
			char c = lx->p[lx->pos++];

			if (c != '\r' && c != '\n')
				mime_buf_add(out, &c, 1);
			if (c == ']')
				break;
		}
		return;
	}
	for (;;) {
		(void)mime_lex_atom(lx, false, out);
		mime_lex_cfws(lx, NULL);
		if (mime_lex_peek(lx) != '.')
			return;
		lx->pos++;
		mime_buf_add(out, ".", 1);
		mime_lex_cfws(lx, NULL);
	}
}

/* A local part: words joined by '.'; a quoted word is unquoted. */
static void
parse_local(struct mime_lex *lx, struct buf *out)
{
	for (;;) {
		mime_lex_cfws(lx, NULL);
		if (mime_lex_peek(lx) == '"')
			mime_lex_quoted(lx, out);
		else
			(void)mime_lex_atom(lx, false, out);
		mime_lex_cfws(lx, NULL);
		if (mime_lex_peek(lx) != '.')
			return;
		lx->pos++;
		mime_buf_add(out, ".", 1);
	}
}

/* addr-spec: local "@" domain; either may be missing. */
static void
parse_addr_spec(struct mime_lex *lx, struct mime_addr *a)
{
	parse_local(lx, &a->mailbox);
	mime_lex_cfws(lx, NULL);
	if (mime_lex_peek(lx) == '@') {
		lx->pos++;
		parse_domain(lx, &a->domain);
	}
}

/* obs-route: "@a,@b:" before the addr-spec inside angle brackets. */
static void
parse_route(struct mime_lex *lx, struct mime_addr *a)
{
	size_t save;

	mime_lex_cfws(lx, NULL);
	if (mime_lex_peek(lx) != '@' && mime_lex_peek(lx) != ',')
		return;
	save = lx->pos;
	/* Only what a route may hold; anything else means there is none. */
	while (!mime_lex_eof(lx) && strchr(":<>;\"\\", mime_lex_peek(lx)) == NULL)
		lx->pos++;
	if (mime_lex_peek(lx) != ':') {
		lx->pos = save;
		return;
	}
	a->has_route = true;
	for (size_t i = save; i < lx->pos; i++)
		if (lx->p[i] != ' ' && lx->p[i] != '\t' && lx->p[i] != '\r' && lx->p[i] != '\n')
			mime_buf_add(&a->route, lx->p + i, 1);
	lx->pos++;
}

/* "<" [route ":"] addr-spec ">" at '<'. */
static void
parse_angle(struct mime_lex *lx, struct mime_addr *a)
{
	lx->pos++;
	parse_route(lx, a);
	parse_addr_spec(lx, a);
	mime_lex_cfws(lx, NULL);
	if (mime_lex_peek(lx) == '>')
		lx->pos++;
}

/* Skips whatever is left of a broken address, up to the next ',' or
 * stop byte (';' inside a group). */
static void
skip_rest(struct mime_lex *lx, bool in_group)
{
	while (!mime_lex_eof(lx)) {
		int c = mime_lex_peek(lx);

		if (c == ',' || (in_group && c == ';'))
			return;
		if (c == '"')
			mime_lex_quoted(lx, NULL);
		else if (c == '(')
			mime_lex_cfws(lx, NULL);
		else
			lx->pos++;
	}
}

/* An entry whose display name is the phrase already read. */
static struct mime_addr *
addr_named(struct mime_addr_list *list, enum mime_addr_kind kind, const struct buf *phrase,
	   bool has_name)
{
	struct mime_addr *a = addr_new(list, kind);

	if (a != NULL) {
		a->has_name = has_name;
		mime_buf_add(&a->name, phrase->data, phrase->len);
	}
	return a;
}

/* "local@domain (Comment)": the comment stands in for a display name.
 * Returns 0 if there is nothing before the next separator. */
static int
parse_bare(struct mime_lex *lx, struct mime_addr_list *list, bool in_group)
{
	struct buf comment;
	struct mime_addr *a;

	mime_lex_cfws(lx, NULL);
	if (mime_lex_eof(lx) || mime_lex_peek(lx) == ',' || (in_group && mime_lex_peek(lx) == ';'))
		return 0;
	if ((a = addr_new(list, MIME_ADDR_MAILBOX)) == NULL)
		return 1;
	buf_init(&comment, MIME_ADDR_PART_MAX);
	lx->comments = &comment;
	parse_addr_spec(lx, a);
	mime_lex_cfws(lx, NULL);
	lx->comments = NULL;
	a->has_name = comment.len > 0;
	mime_buf_add(&a->name, comment.data, comment.len);
	buf_free(&comment);
	return 1;
}

/* One mailbox, or a group's start (the caller parses its members).
 * Returns 1 for a mailbox, 2 for a group start, 0 if nothing was there. */
static int
parse_one(struct mime_lex *lx, struct mime_addr_list *list, bool in_group)
{
	struct mime_lex start = *lx;
	struct buf phrase;
	struct mime_addr *a;
	size_t words;
	int c, rc = 1;

	buf_init(&phrase, MIME_ADDR_PART_MAX);
	words = parse_phrase(lx, &phrase);
	mime_lex_cfws(lx, NULL);
	c = mime_lex_peek(lx);
	if (c == ':' && !in_group) {
		lx->pos++;
		(void)addr_named(list, MIME_ADDR_GROUP_START, &phrase, true);
		rc = 2;
	} else if (c == '<') {
		if ((a = addr_named(list, MIME_ADDR_MAILBOX, &phrase, words > 0)) != NULL)
			parse_angle(lx, a);
	} else if (words >= 2 && (c < 0 || c == ',' || c == ';')) {
		/* "Someone Else": a display name without an address. */
		(void)addr_named(list, MIME_ADDR_MAILBOX, &phrase, true);
	} else {
		*lx = start;
		rc = parse_bare(lx, list, in_group);
	}
	if (rc != 2)
		skip_rest(lx, in_group);
	buf_free(&phrase);
	return rc;
}

int
mime_addr_parse(const char *p, size_t len, struct mime_addr_list *list)
{
	struct mime_lex lx;
	bool in_group = false;

	mime_lex_init(&lx, p, len);
	while (!mime_lex_eof(&lx) && list->n < MIME_ADDRS_MAX) {
		size_t before = lx.pos;
		int rc = parse_one(&lx, list, in_group);

		if (rc == 2)
			in_group = true;
		mime_lex_cfws(&lx, NULL);
		if (mime_lex_peek(&lx) == ';' && in_group) {
			lx.pos++;
			in_group = false;
			(void)addr_new(list, MIME_ADDR_GROUP_END);
		} else if (mime_lex_peek(&lx) == ',' || mime_lex_peek(&lx) == ';') {
			lx.pos++;
		} else if (lx.pos == before && !mime_lex_eof(&lx)) {
			lx.pos++;
		}
	}
	if (in_group)
		(void)addr_new(list, MIME_ADDR_GROUP_END);
	return 1;
}
