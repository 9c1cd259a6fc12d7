/* imap_args.h - the generic argument syntax of IMAP (RFC 9051 9): atoms,
 * quoted strings, literals, NIL and parenthesised lists, read from a
 * command that imap_reader framed. Pure code; no I/O, no globals.
 *
 * Commands are read in two steps, as the grammar allows: first into a tree
 * of arguments, then each command's arguments are checked and turned into
 * typed values (imap_parse.h). Strings are decoded in place, in the
 * command's own buffer, and NUL-terminated there; a literal is not copied.
 *
 * Liberal where the meaning is clear: extra spaces between arguments and
 * at the end of a line, and 8-bit bytes in atoms and quoted strings (for
 * UTF8=ACCEPT and clients that assume it).
 */
#ifndef YJ_IMAP_ARGS_H
#define YJ_IMAP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Arguments (each list counts as one) in one command. */
#define IMAP_ARGS_MAX 10000
/* Lists inside lists. */
#define IMAP_LIST_DEPTH_MAX 32

enum imap_arg_type {
	IMAP_ARG_ATOM,		/* also \Flag, *, $, 1:4, BODY[...]<..> */
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,	/* {n} or {n+} */
	IMAP_ARG_LITERAL8,	/* ~{n} */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* Atoms and strings: the value, NUL-terminated (a literal may hold
	 * NULs; len is its true length). Lists: NULL. */
	const char *str;
	size_t len;
	struct imap_arg *list;	/* a list's first element, or NULL */
	size_t count;		/* a list's number of elements */
	struct imap_arg *next;	/* the next argument at this level */
};

/* Bump allocation for one command's values, with a hard maximum. */
struct imap_arena {
	struct imap_arena_chunk *chunks;
	size_t used;		/* bytes handed out in all chunks */
	size_t max;
};

void imap_arena_init(struct imap_arena *a, size_t max);
void imap_arena_free(struct imap_arena *a);
/* Zeroed memory, aligned for any type; NULL once max would be passed. */
void *imap_arena_alloc(struct imap_arena *a, size_t size);
/* A NUL-terminated copy of n bytes; NULL past max. */
char *imap_arena_strdup(struct imap_arena *a, const char *s, size_t n);

/* Reads arguments from data[0..len) (writable; strings are decoded in
 * place) up to its end, into a chain allocated from a. Returns 1 with
 * *args_r (NULL when there are none) and *count_r, or -1 with *error_r
 * a reply text for BAD. */
int imap_args_read(char *data, size_t len, struct imap_arena *a, struct imap_arg **args_r,
		   size_t *count_r, const char **error_r) YJ_MUST_CHECK;

/* The announcement of a literal at p ("{n}", "{n+}" or "~{n}", then CRLF)
 * whose n bytes are all before end. Returns 1 with n and the length of
 * the announcement (where the bytes start), or -1 with a reply text. */
int imap_literal_head(const char *p, const char *end, uint64_t *n_r, size_t *head_r,
		      const char **error_r) YJ_MUST_CHECK;

/* Is arg an atom equal to name (ASCII case-insensitive)? */
bool imap_arg_is_atom(const struct imap_arg *arg, const char *name);
/* Is arg a string (atom, quoted or literal) in the astring sense? */
bool imap_arg_is_astring(const struct imap_arg *arg);
/* Is arg an nstring: a string or NIL? */
bool imap_arg_is_nstring(const struct imap_arg *arg);
/* Does the value hold a NUL byte (only a literal can)? */
bool imap_arg_has_nul(const struct imap_arg *arg);

/* A number (RFC 9051 number64 when max is UINT64_MAX >> 1, number when
 * UINT32_MAX), from an atom of digits only. Returns 1 or -1. */
int imap_arg_number(const struct imap_arg *arg, uint64_t max, uint64_t *n_r) YJ_MUST_CHECK;
int imap_str_number(const char *s, size_t len, uint64_t max, uint64_t *n_r) YJ_MUST_CHECK;

#endif
