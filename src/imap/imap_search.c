/* SEARCH keys of RFC 3501 and RFC 9051, with RFC 7162 MODSEQ, RFC 5032
 * OLDER/YOUNGER, RFC 8474 EMAILID/THREADID, RFC 8514 SAVEDATE; ESEARCH
 * (RFC 4731), SEARCHRES (RFC 5182) and PARTIAL (RFC 9394) return
 * options; SORT (RFC 5256, 5957 DISPLAY, 5267 ESORT) and THREAD
 * prefixes. */
#include "imap/imap_parse.h"

#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "imap/imap_mailbox.h"

enum key_arg {
	KA_NONE, KA_STRING, KA_HEADER, KA_DATE, KA_NUMBER, KA_NZNUMBER, KA_SEQSET,
	KA_KEYWORD, KA_NOT, KA_OR, KA_MODSEQ, KA_OBJECTID,
};

struct key_def {
	const char *name;
	enum imap_search_type type;
	enum key_arg arg;
};

static const struct key_def key_defs[] = {
	{ "ALL", IMAP_SK_ALL, KA_NONE },
	{ "ANSWERED", IMAP_SK_ANSWERED, KA_NONE },
	{ "BCC", IMAP_SK_BCC, KA_STRING },
	{ "BEFORE", IMAP_SK_BEFORE, KA_DATE },
	{ "BODY", IMAP_SK_BODY, KA_STRING },
	{ "CC", IMAP_SK_CC, KA_STRING },
	{ "DELETED", IMAP_SK_DELETED, KA_NONE },
	{ "DRAFT", IMAP_SK_DRAFT, KA_NONE },
	{ "FLAGGED", IMAP_SK_FLAGGED, KA_NONE },
	{ "FROM", IMAP_SK_FROM, KA_STRING },
	{ "HEADER", IMAP_SK_HEADER, KA_HEADER },
	{ "KEYWORD", IMAP_SK_KEYWORD, KA_KEYWORD },
	{ "LARGER", IMAP_SK_LARGER, KA_NUMBER },
	{ "NEW", IMAP_SK_NEW, KA_NONE },
	{ "NOT", IMAP_SK_NOT, KA_NOT },
	{ "OLD", IMAP_SK_OLD, KA_NONE },
	{ "ON", IMAP_SK_ON, KA_DATE },
	{ "OR", IMAP_SK_OR, KA_OR },
	{ "RECENT", IMAP_SK_RECENT, KA_NONE },
	{ "SEEN", IMAP_SK_SEEN, KA_NONE },
	{ "SENTBEFORE", IMAP_SK_SENTBEFORE, KA_DATE },
	{ "SENTON", IMAP_SK_SENTON, KA_DATE },
	{ "SENTSINCE", IMAP_SK_SENTSINCE, KA_DATE },
	{ "SINCE", IMAP_SK_SINCE, KA_DATE },
	{ "SMALLER", IMAP_SK_SMALLER, KA_NUMBER },
	{ "SUBJECT", IMAP_SK_SUBJECT, KA_STRING },
	{ "TEXT", IMAP_SK_TEXT, KA_STRING },
	{ "TO", IMAP_SK_TO, KA_STRING },
	{ "UID", IMAP_SK_UID, KA_SEQSET },
	{ "UNANSWERED", IMAP_SK_UNANSWERED, KA_NONE },
	{ "UNDELETED", IMAP_SK_UNDELETED, KA_NONE },
	{ "UNDRAFT", IMAP_SK_UNDRAFT, KA_NONE },
	{ "UNFLAGGED", IMAP_SK_UNFLAGGED, KA_NONE },
	{ "UNKEYWORD", IMAP_SK_UNKEYWORD, KA_KEYWORD },
	{ "UNSEEN", IMAP_SK_UNSEEN, KA_NONE },
	{ "MODSEQ", IMAP_SK_MODSEQ, KA_MODSEQ },
	{ "OLDER", IMAP_SK_OLDER, KA_NZNUMBER },
	{ "YOUNGER", IMAP_SK_YOUNGER, KA_NZNUMBER },
	{ "EMAILID", IMAP_SK_EMAILID, KA_OBJECTID },
	{ "THREADID", IMAP_SK_THREADID, KA_OBJECTID },
	{ "SAVEDBEFORE", IMAP_SK_SAVEDBEFORE, KA_DATE },
	{ "SAVEDON", IMAP_SK_SAVEDON, KA_DATE },
	{ "SAVEDSINCE", IMAP_SK_SAVEDSINCE, KA_DATE },
	{ "SAVEDATESUPPORTED", IMAP_SK_SAVEDATESUPPORTED, KA_NONE },
};

struct search_parser {
	struct imap_arena *a;
	struct imap_search *search;
	size_t keys;
	const char *error;
};

static int
sp_fail(struct search_parser *p, const char *error)
{
	if (p->error == NULL)
		p->error = error;
	return -1;
}

static const struct key_def *
key_lookup(const struct imap_arg *arg)
{
	for (size_t i = 0; i < sizeof(key_defs) / sizeof(key_defs[0]); i++)
		if (imap_arg_is_atom(arg, key_defs[i].name))
			return &key_defs[i];
	return NULL;
}

/* A sequence set key: digits, '*', ':', ',' or "$". */
static bool
looks_like_seqset(const struct imap_arg *arg)
{
	if (arg->type != IMAP_ARG_ATOM || arg->len == 0)
		return false;
	return strspn(arg->str, "0123456789*:,") == arg->len || (arg->len == 1 && arg->str[0] == '$');
}

bool
imap_search_charset_served(const char *charset)
{
	return charset == NULL || strcasecmp(charset, "UTF-8") == 0 ||
	       strcasecmp(charset, "US-ASCII") == 0;
}

/* Is s[0..len) well-formed UTF-8 (any code point but NUL)? */
static bool
utf8_well_formed(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned cp;
		size_t k = util_utf8_decode((const unsigned char *)s + i, len - i, &cp);

		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

/* A search string is an astring: a literal may hold any CHAR8, which
 * leaves out NUL (RFC 9051 9), as a quoted string does. Its bytes are
 * text in the search's charset: UTF-8 (named, or IMAP4rev2's and
 * UTF8=ACCEPT's only one, RFC 9051 6.4.4, RFC 6855 3) or US-ASCII, its
 * subset, which is also what a search without CHARSET is read as. In
 * these, a string that is not well-formed UTF-8 is in no charset: it can
 * match nothing, so the command is BAD rather than an empty result (as
 * Dovecot answers). Another charset is refused later, with NO
 * [BADCHARSET] (imap_charset_ok). */
static int
key_string(struct search_parser *p, const struct imap_arg *arg, const char **s_r, size_t *len_r)
{
	if (!imap_arg_is_astring(arg))
		return sp_fail(p, "Missing search string");
	if (imap_arg_has_nul(arg))
		return sp_fail(p, "NUL in string");
	if (imap_search_charset_served(p->search->charset) && !utf8_well_formed(arg->str, arg->len))
		return sp_fail(p, "Search string is not valid UTF-8");
	*s_r = arg->str;
	*len_r = arg->len;
	return 1;
}

/* A search date may be quoted (RFC 9051 date). */
static int
key_date(struct search_parser *p, const struct imap_arg *arg, struct imap_date *d)
{
	if (arg == NULL || (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_QUOTED) ||
	    imap_date_parse(arg->str, arg->len, d) < 0)
		return sp_fail(p, "Invalid search date");
	return 1;
}

static int
key_seqset(struct search_parser *p, const struct imap_arg *arg, struct imap_seqset *set)
{
	const char *error = NULL;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(arg->str, arg->len, p->a, set, &error) < 0)
		return sp_fail(p, error != NULL ? error : "Invalid sequence set");
	if (set->saved)
		p->search->uses_saved = true;
	return 1;
}

/* MODSEQ ["/flags/name" priv|shared|all] n (RFC 7162 3.1.5). */
static int
key_modseq(struct search_parser *p, const struct imap_arg **argp, struct imap_search_key *key)
{
	const struct imap_arg *arg = *argp;

	if (arg != NULL && arg->type != IMAP_ARG_ATOM) {
		const struct imap_arg *type = arg->next;
		if (imap_arg_is_astring(arg) && imap_arg_has_nul(arg))
			return sp_fail(p, "NUL in string");
		if (!imap_arg_is_astring(arg) || strncasecmp(arg->str, "/flags/", 7) != 0 ||
		    !(imap_arg_is_atom(type, "priv") || imap_arg_is_atom(type, "shared") ||
		      imap_arg_is_atom(type, "all")))
			return sp_fail(p, "Invalid MODSEQ entry");
		key->str = arg->str, key->len = arg->len;
		key->str2 = type->str, key->len2 = type->len;
		arg = type->next;
	}
	if (imap_arg_number(arg, INT64_MAX, &key->number) < 0)
		return sp_fail(p, "Invalid MODSEQ value");
	p->search->uses_modseq = true;
	*argp = arg->next;
	return 1;
}

static int search_key(struct search_parser *p, const struct imap_arg **argp, int depth,
		      struct imap_search_key **key_r);

/* Keys up to the end of a level, as an AND chain. */
static int
search_keys(struct search_parser *p, const struct imap_arg *arg, int depth,
	    struct imap_search_key **first_r)
{
	struct imap_search_key **tail = first_r;

	*first_r = NULL;
	if (arg == NULL)
		return sp_fail(p, "Missing search key");
	while (arg != NULL) {
		if (search_key(p, &arg, depth, tail) < 0)
			return -1;
		tail = &(*tail)->next;
	}
	return 1;
}

/* The argument(s) of one key by its kind; moves *argp past them. */
static int
key_args(struct search_parser *p, const struct key_def *def, const struct imap_arg **argp,
	 int depth, struct imap_search_key *key)
{
	const struct imap_arg *arg = *argp;
	uint64_t max = def->arg == KA_NZNUMBER ? UINT32_MAX : INT64_MAX;

	switch (def->arg) {
	case KA_NONE:
		return 1;
	case KA_STRING:
		if (key_string(p, arg, &key->str, &key->len) < 0)
			return -1;
		break;
	case KA_HEADER:
		if (key_string(p, arg, &key->str, &key->len) < 0 ||
		    key_string(p, arg->next, &key->str2, &key->len2) < 0)
			return -1;
		arg = arg->next;
		break;
	case KA_DATE:
		if (key_date(p, arg, &key->date) < 0)
			return -1;
		break;
	case KA_NUMBER:
	case KA_NZNUMBER:
		if (imap_arg_number(arg, max, &key->number) < 0 ||
		    (def->arg == KA_NZNUMBER && key->number == 0))
			return sp_fail(p, "Invalid number in search key");
		break;
	case KA_SEQSET:
		if (key_seqset(p, arg, &key->set) < 0)
			return -1;
		break;
	case KA_KEYWORD:
		if (arg == NULL || arg->type != IMAP_ARG_ATOM ||
		    imap_flag_kind(arg->str, arg->len) != IMAP_FLAG_KEYWORD)
			return sp_fail(p, "Invalid keyword");
		key->str = arg->str, key->len = arg->len;
		break;
	case KA_NOT:
		return search_key(p, argp, depth + 1, &key->child);
	case KA_OR:
		if (search_key(p, argp, depth + 1, &key->child) < 0)
			return -1;
		return search_key(p, argp, depth + 1, &key->child->next);
	case KA_MODSEQ:
		return key_modseq(p, argp, key);
	case KA_OBJECTID:
		/* RFC 8474 objectid: 1*255(ALPHA / DIGIT / "_" / "-") */
		if (key_string(p, arg, &key->str, &key->len) < 0 || key->len == 0 ||
		    key->len > 255 ||
		    strspn(key->str, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				     "0123456789_-") != key->len)
			return sp_fail(p, "Invalid object id");
		break;
	}
	*argp = arg->next;
	return 1;
}

static int
search_key(struct search_parser *p, const struct imap_arg **argp, int depth,
	   struct imap_search_key **key_r)
{
	const struct imap_arg *arg = *argp;
	struct imap_search_key *key;
	const struct key_def *def;

	if (arg == NULL)
		return sp_fail(p, "Missing search key");
	if (depth > IMAP_SEARCH_DEPTH_MAX)
		return sp_fail(p, "Search keys nested too deeply");
	if (++p->keys > IMAP_SEARCH_KEYS_MAX)
		return sp_fail(p, "Too many search keys");
	if ((key = *key_r = imap_arena_alloc(p->a, sizeof(*key))) == NULL)
		return sp_fail(p, "Command too large");
	*argp = arg->next;
	if (arg->type == IMAP_ARG_LIST) {
		key->type = IMAP_SK_AND;
		return search_keys(p, arg->list, depth + 1, &key->child);
	}
	if (looks_like_seqset(arg)) {
		key->type = IMAP_SK_SEQSET;
		*argp = arg;
		return key_args(p, &(struct key_def){ "", IMAP_SK_SEQSET, KA_SEQSET }, argp, depth,
				key);
	}
	if ((def = key_lookup(arg)) == NULL)
		return sp_fail(p, "Unknown search key");
	key->type = def->type;
	return key_args(p, def, argp, depth, key);
}

/* One end of a PARTIAL range: a nz-number, with a '-' if last. */
static bool
partial_end(const char *s, size_t len, bool last, uint32_t *n_r)
{
	uint64_t n = 0;

	if (last != (len > 0 && s[0] == '-'))
		return false;
	if (last)
		s++, len--;
	if (len == 0 || len > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (n > UINT32_MAX)
		return false;
	*n_r = (uint32_t)n;
	return true;
}

/* RFC 9394: PARTIAL 1:100 (the first results) or -1:-100 (the last);
 * the two ends in either order. */
static int
search_partial(struct search_parser *p, const struct imap_arg *arg)
{
	struct imap_search *s = p->search;
	const char *colon;
	uint32_t t;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM ||
	    (colon = memchr(arg->str, ':', arg->len)) == NULL)
		return sp_fail(p, "Invalid PARTIAL range");
	s->partial_last = arg->str[0] == '-';
	if (!partial_end(arg->str, (size_t)(colon - arg->str), s->partial_last, &s->partial_lo) ||
	    !partial_end(colon + 1, arg->len - (size_t)(colon + 1 - arg->str), s->partial_last,
			 &s->partial_hi))
		return sp_fail(p, "Invalid PARTIAL range");
	s->partial_range = arg->str;
	if (s->partial_lo > s->partial_hi) {
		t = s->partial_lo;
		s->partial_lo = s->partial_hi;
		s->partial_hi = t;
	}
	return 1;
}

/* RETURN (MIN MAX ALL COUNT SAVE PARTIAL range); "()" means ALL. SORT
 * (RFC 5267) has no SAVE. PARTIAL and ALL exclude each other (RFC 9394
 * 3.1). Each option is a request for one result item, given once: a
 * second PARTIAL would ask for two ranges where the ESEARCH response
 * has room for one (RFC 9394 3.1), and a repeated MIN, SAVE, ... asks
 * for nothing the RFCs define (RFC 4731 3.1, RFC 5182 2, RFC 5267 3),
 * so, as for an unknown option, the command is BAD. */
static int
search_return(struct search_parser *p, const struct imap_arg *list, enum imap_cmd_name name)
{
	static const char *const names[] = { "MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL" };
	const size_t n_names = sizeof(names) / sizeof(names[0]);

	if (list == NULL || list->type != IMAP_ARG_LIST)
		return sp_fail(p, "Invalid RETURN options");
	p->search->esearch = true;
	for (const struct imap_arg *o = list->list; o != NULL; o = o->next) {
		size_t i = 0;
		while (i < n_names && !imap_arg_is_atom(o, names[i]))
			i++;
		if (i == n_names || (name == IMAP_CMD_SORT && (1u << i) == IMAP_SEARCH_RET_SAVE))
			return sp_fail(p, "Unknown RETURN option");
		/* MIN MIN means what MIN does (as Dovecot takes it); two
		 * PARTIAL ranges have no one meaning. */
		if ((p->search->ret & (1u << i)) && (1u << i) == IMAP_SEARCH_RET_PARTIAL)
			return sp_fail(p, "RETURN option given twice");
		p->search->ret |= 1u << i;
		if ((1u << i) == IMAP_SEARCH_RET_PARTIAL) {
			if (search_partial(p, o->next) < 0)
				return -1;
			o = o->next;
		}
	}
	if ((p->search->ret & IMAP_SEARCH_RET_PARTIAL) && (p->search->ret & IMAP_SEARCH_RET_ALL))
		return sp_fail(p, "PARTIAL and ALL cannot be combined");
	if (p->search->ret == 0)
		p->search->ret = IMAP_SEARCH_RET_ALL;
	return 1;
}

static int
search_charset(struct search_parser *p, const struct imap_arg *arg)
{
	if (!imap_arg_is_astring(arg) || arg->len == 0)
		return sp_fail(p, "Missing charset");
	if (imap_arg_has_nul(arg))
		return sp_fail(p, "NUL in string");
	p->search->charset = arg->str;
	return 1;
}

static const char *const sort_names[] = {
	[IMAP_SORT_ARRIVAL] = "ARRIVAL", [IMAP_SORT_CC] = "CC", [IMAP_SORT_DATE] = "DATE",
	[IMAP_SORT_FROM] = "FROM", [IMAP_SORT_SIZE] = "SIZE", [IMAP_SORT_SUBJECT] = "SUBJECT",
	[IMAP_SORT_TO] = "TO", [IMAP_SORT_DISPLAYFROM] = "DISPLAYFROM",
	[IMAP_SORT_DISPLAYTO] = "DISPLAYTO",
};

/* (REVERSE? key ...) of SORT. */
static int
sort_criteria(struct search_parser *p, const struct imap_arg *list)
{
	bool reverse = false;
	struct imap_search *s = p->search;

	if (list == NULL || list->type != IMAP_ARG_LIST || list->count == 0)
		return sp_fail(p, "Invalid sort criteria");
	for (const struct imap_arg *c = list->list; c != NULL; c = c->next) {
		size_t k = 0;
		if (imap_arg_is_atom(c, "REVERSE") && !reverse) {
			reverse = true;
			continue;
		}
		while (k < sizeof(sort_names) / sizeof(sort_names[0]) &&
		       !imap_arg_is_atom(c, sort_names[k]))
			k++;
		if (k == sizeof(sort_names) / sizeof(sort_names[0]) || s->nsort == IMAP_SORT_MAX)
			return sp_fail(p, "Invalid sort criteria");
		s->sort[s->nsort].key = (enum imap_sort_key)k;
		s->sort[s->nsort++].reverse = reverse;
		reverse = false;
	}
	return reverse ? sp_fail(p, "REVERSE without a sort key") : 1;
}

static int
thread_alg(struct search_parser *p, const struct imap_arg *arg)
{
	if (imap_arg_is_atom(arg, "REFERENCES"))
		p->search->thread = IMAP_THREAD_REFERENCES;
	else if (imap_arg_is_atom(arg, "ORDEREDSUBJECT"))
		p->search->thread = IMAP_THREAD_ORDEREDSUBJECT;
	else
		return sp_fail(p, "Unknown thread algorithm");
	return 1;
}

/* What comes before the keys; returns the first key's argument. */
static int
search_prefix(struct search_parser *p, const struct imap_arg *arg, enum imap_cmd_name name,
	      const struct imap_arg **keys_r)
{
	if (name == IMAP_CMD_SORT && imap_arg_is_atom(arg, "RETURN")) {
		/* ESORT (RFC 5267 3.2): SORT RETURN (...) (criteria) charset ... */
		if (search_return(p, arg->next, name) < 0)
			return -1;
		if ((arg = arg->next->next) == NULL)
			return sp_fail(p, "Invalid sort criteria");
	}
	if (name == IMAP_CMD_SORT || name == IMAP_CMD_THREAD) {
		if ((name == IMAP_CMD_SORT ? sort_criteria(p, arg) : thread_alg(p, arg)) < 0 ||
		    search_charset(p, arg->next) < 0)
			return -1;
		*keys_r = arg->next->next;
		return 1;
	}
	if (imap_arg_is_atom(arg, "RETURN")) {
		if (search_return(p, arg->next, name) < 0)
			return -1;
		arg = arg->next->next;
	}
	if (imap_arg_is_atom(arg, "CHARSET")) {
		if (search_charset(p, arg->next) < 0)
			return -1;
		arg = arg->next->next;
	}
	*keys_r = arg;
	return 1;
}

int
imap_search_parse(const struct imap_arg *args, enum imap_cmd_name name, struct imap_arena *a,
		  struct imap_search *search, const char **error_r)
{
	struct search_parser p = { .a = a, .search = search };
	const struct imap_arg *keys = NULL;

	memset(search, 0, sizeof(*search));
	if (args == NULL) {
		*error_r = "Missing search key";
		return -1;
	}
	if (search_prefix(&p, args, name, &keys) < 0 || search_keys(&p, keys, 0, &search->keys) < 0) {
		*error_r = p.error;
		return -1;
	}
	return 1;
}
