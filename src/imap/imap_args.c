#include "imap/imap_args.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- arena ---- */

#define ARENA_CHUNK 4096

struct imap_arena_chunk {
	struct imap_arena_chunk *next;
	size_t size, used;
	max_align_t data[];
};

void
imap_arena_init(struct imap_arena *a, size_t max)
{
	a->chunks = NULL;
	a->used = 0;
	a->max = max;
}

void
imap_arena_free(struct imap_arena *a)
{
	while (a->chunks != NULL) {
		struct imap_arena_chunk *c = a->chunks;
		a->chunks = c->next;
		free(c);
	}
	a->used = 0;
}

void *
imap_arena_alloc(struct imap_arena *a, size_t size)
{
	const size_t align = sizeof(max_align_t);
	struct imap_arena_chunk *c = a->chunks;
	void *p;

	size = (size + align - 1) / align * align;
	if (size == 0 || size > a->max - a->used)
		return NULL;
	if (c == NULL || c->size - c->used < size) {
		size_t csize = size > ARENA_CHUNK ? size : ARENA_CHUNK;
		c = malloc(sizeof(*c) + csize);
		if (c == NULL)
			return NULL;
		c->size = csize;
		c->used = 0;
		c->next = a->chunks;
		a->chunks = c;
	}
	p = (char *)c->data + c->used;
	c->used += size;
	a->used += size;
	memset(p, 0, size);
	return p;
}

char *
imap_arena_strdup(struct imap_arena *a, const char *s, size_t n)
{
	char *p = imap_arena_alloc(a, n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* ---- tokenizer ---- */

struct args_reader {
	char *p, *end;
	struct imap_arena *a;
	size_t count;
	const char *error;
};

static int
args_fail(struct args_reader *t, const char *error)
{
	if (t->error == NULL)
		t->error = error;
	return -1;
}

/* RFC 9051 ATOM-CHAR, plus what astring and list-mailbox add (']', '%',
 * '*'), a flag's leading '\' and 8-bit bytes (UTF8=ACCEPT). */
static bool
atom_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

int
imap_literal_head(const char *p, const char *end, uint64_t *n_r, size_t *head_r,
		  const char **error_r)
{
	const char *s = p, *digits;
	uint64_t n = 0;

	if (s < end && *s == '~')
		s++;
	if (s == end || *s++ != '{') {
		*error_r = "Bad literal";
		return -1;
	}
	digits = s;
	while (s < end && *s >= '0' && *s <= '9') {
		if (n > (UINT64_MAX >> 1) / 10) {
			*error_r = "Literal too large";
			return -1;
		}
		n = n * 10 + (uint64_t)(*s++ - '0');
	}
	if (s < end && *s == '+')
		s++;
	if (s == digits || end - s < 3 || memcmp(s, "}\r\n", 3) != 0) {
		*error_r = "Bad literal";
		return -1;
	}
	s += 3;
	if ((uint64_t)(end - s) < n) {
		*error_r = "Literal cut short";
		return -1;
	}
	*n_r = n;
	*head_r = (size_t)(s - p);
	return 1;
}

/* A section "[...]" inside an atom: BODY[HEADER.FIELDS (To From)]. It may
 * hold spaces, parentheses, quoted strings and literals (a header field
 * name is an astring), no other line breaks. A literal's bytes are
 * skipped whatever they are; the section's own parser judges them. */
static int
args_section(struct args_reader *t)
{
	bool quoted = false;
	const char *error = NULL;
	uint64_t n;
	size_t head;

	for (t->p++; t->p < t->end; t->p++) {
		char c = *t->p;
		if (c == '{' && !quoted) {
			if (imap_literal_head(t->p, t->end, &n, &head, &error) < 0)
				return args_fail(t, error);
			t->p += head + (size_t)n - 1;
			continue;
		}
		if (c == '\r' || c == '\n' || c == '\0')
			break;
		if (quoted && c == '\\' && t->p + 1 < t->end)
			t->p++;
		else if (c == '"')
			quoted = !quoted;
		else if (c == ']' && !quoted) {
			t->p++;
			return 1;
		}
	}
	return args_fail(t, "Missing ']' in section");
}

static int
args_atom(struct args_reader *t, struct imap_arg *arg)
{
	char *start = t->p;

	while (t->p < t->end && atom_char((unsigned char)*t->p)) {
		if (*t->p == '[') {
			if (args_section(t) < 0)
				return -1;
		} else {
			t->p++;
		}
	}
	if (t->p == start)
		return args_fail(t, "Invalid character");
	arg->str = start;
	arg->len = (size_t)(t->p - start);
	arg->type = arg->len == 3 && strncasecmp(start, "NIL", 3) == 0 ? IMAP_ARG_NIL
									: IMAP_ARG_ATOM;
	return 1;
}

static int
args_quoted(struct args_reader *t, struct imap_arg *arg)
{
	char *out = ++t->p;

	arg->type = IMAP_ARG_QUOTED;
	arg->str = out;
	for (; t->p < t->end; t->p++) {
		char c = *t->p;
		if (c == '"') {
			arg->len = (size_t)(out - arg->str);
			*out = '\0';
			t->p++;
			return 1;
		}
		/* NUL is no CHAR: only a literal8 may carry one (RFC 9051 9). */
		if (c == '\0')
			return args_fail(t, "NUL in string");
		if (c == '\r' || c == '\n')
			break;
		if (c == '\\') {
			if (t->p + 1 >= t->end || (t->p[1] != '"' && t->p[1] != '\\'))
				return args_fail(t, "Bad escape in quoted string");
			c = *++t->p;
		}
		*out++ = c;
	}
	return args_fail(t, "Quoted string not closed");
}

/* "{n}" / "{n+}" CRLF and n bytes; literal8 with a leading '~'. */
static int
args_literal(struct args_reader *t, struct imap_arg *arg)
{
	const char *error = NULL;
	uint64_t n;
	size_t head;

	arg->type = *t->p == '~' ? IMAP_ARG_LITERAL8 : IMAP_ARG_LITERAL;
	if (imap_literal_head(t->p, t->end, &n, &head, &error) < 0)
		return args_fail(t, error);
	t->p += head;
	arg->str = t->p;
	arg->len = (size_t)n;
	t->p += n;
	return 1;
}

static int args_level(struct args_reader *t, int depth, struct imap_arg **first_r,
		      size_t *count_r);

static int
args_one(struct args_reader *t, int depth, struct imap_arg *arg)
{
	char c = *t->p;

	if (c == '(') {
		if (depth >= IMAP_LIST_DEPTH_MAX)
			return args_fail(t, "Lists nested too deeply");
		t->p++;
		arg->type = IMAP_ARG_LIST;
		return args_level(t, depth + 1, &arg->list, &arg->count);
	}
	if (c == '"')
		return args_quoted(t, arg);
	if (c == '{' || (c == '~' && t->p + 1 < t->end && t->p[1] == '{'))
		return args_literal(t, arg);
	return args_atom(t, arg);
}

/* Reads the arguments of one level: the whole line at depth 0, a list's
 * elements up to its ')' otherwise. */
static int
args_level(struct args_reader *t, int depth, struct imap_arg **first_r, size_t *count_r)
{
	struct imap_arg **tail = first_r;

	*first_r = NULL;
	*count_r = 0;
	for (;;) {
		while (t->p < t->end && *t->p == ' ')
			t->p++;
		if (t->p == t->end)
			return depth == 0 ? 1 : args_fail(t, "Missing ')'");
		if (*t->p == ')') {
			if (depth == 0)
				return args_fail(t, "Unexpected ')'");
			t->p++;
			return 1;
		}
		if (++t->count > IMAP_ARGS_MAX)
			return args_fail(t, "Too many arguments");
		struct imap_arg *arg = imap_arena_alloc(t->a, sizeof(*arg));
		if (arg == NULL)
			return args_fail(t, "Command too large");
		if (args_one(t, depth, arg) < 0)
			return -1;
		if (t->p < t->end && *t->p != ' ' && *t->p != ')') {
			unsigned char c = (unsigned char)*t->p;
			return args_fail(t, c < 0x20 || c == 0x7f ? "Invalid character"
								  : "Missing space between arguments");
		}
		*tail = arg;
		tail = &arg->next;
		(*count_r)++;
	}
}

/* Atoms and literals end where the next argument's separator is; once all
 * is read the separators are not needed and become NULs. */
static void
args_terminate(struct imap_arg *arg)
{
	for (; arg != NULL; arg = arg->next) {
		if (arg->type == IMAP_ARG_LIST)
			args_terminate(arg->list);
		else
			((char *)arg->str)[arg->len] = '\0';
	}
}

int
imap_args_read(char *data, size_t len, struct imap_arena *a, struct imap_arg **args_r,
	       size_t *count_r, const char **error_r)
{
	struct args_reader t = { .p = data, .end = data + len, .a = a };

	if (args_level(&t, 0, args_r, count_r) < 0) {
		*error_r = t.error;
		return -1;
	}
	args_terminate(*args_r);
	return 1;
}

bool
imap_arg_is_atom(const struct imap_arg *arg, const char *name)
{
	return arg != NULL && (arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
	       strlen(name) == arg->len && strncasecmp(arg->str, name, arg->len) == 0;
}

bool
imap_arg_is_astring(const struct imap_arg *arg)
{
	return arg != NULL && arg->type != IMAP_ARG_LIST && arg->type != IMAP_ARG_LITERAL8;
}

bool
imap_arg_is_nstring(const struct imap_arg *arg)
{
	return arg != NULL && (arg->type == IMAP_ARG_NIL || arg->type == IMAP_ARG_QUOTED ||
			       arg->type == IMAP_ARG_LITERAL);
}

bool
imap_arg_has_nul(const struct imap_arg *arg)
{
	return arg->str != NULL && memchr(arg->str, '\0', arg->len) != NULL;
}

int
imap_str_number(const char *s, size_t len, uint64_t max, uint64_t *n_r)
{
	uint64_t n = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*n_r = n;
	return 1;
}

int
imap_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *n_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return -1;
	return imap_str_number(arg->str, arg->len, max, n_r);
}
