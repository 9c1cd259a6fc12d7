#include "imap/imap_parse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_mailbox.h"

struct cmd_parser {
	struct imap_cmd *cmd;
	const struct imap_parse_opts *opts;
	const struct imap_arg *args;
	const char *error;
};

typedef int cmd_fn(struct cmd_parser *cp);

struct cmd_def {
	const char *name;
	unsigned states;
	bool uid;		/* has a UID form */
	cmd_fn *parse;
};

static int
cp_fail(struct cmd_parser *cp, const char *error)
{
	if (cp->error == NULL)
		cp->error = error;
	return -1;
}

/* ---- shared argument readers ---- */

static int
no_more(struct cmd_parser *cp, const struct imap_arg *arg)
{
	return arg == NULL ? 1 : cp_fail(cp, "Too many arguments");
}

/* An astring without NULs (a literal may hold them). */
static int
arg_astring(struct cmd_parser *cp, const struct imap_arg *arg, const char **s_r)
{
	if (!imap_arg_is_astring(arg))
		return cp_fail(cp, "Missing argument");
	if (imap_arg_has_nul(arg))
		return cp_fail(cp, "NUL in string");
	*s_r = arg->str;
	return 1;
}

static int
arg_mailbox(struct cmd_parser *cp, const struct imap_arg *arg, const char **name_r)
{
	char out[IMAP_MAILBOX_MAX + 1];
	const char *s, *error = NULL;

	if (arg_astring(cp, arg, &s) < 0)
		return -1;
	if (imap_mailbox_decode(s, arg->len, cp->opts->utf8, out, sizeof(out), &error) < 0)
		return cp_fail(cp, error);
	if ((*name_r = imap_arena_strdup(&cp->cmd->arena, out, strlen(out))) == NULL)
		return cp_fail(cp, "Command too large");
	return 1;
}

static int
arg_seqset(struct cmd_parser *cp, const struct imap_arg *arg, struct imap_seqset *set)
{
	const char *error = NULL;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return cp_fail(cp, "Missing sequence set");
	if (imap_seqset_parse(arg->str, arg->len, &cp->cmd->arena, set, &error) < 0)
		return cp_fail(cp, error);
	return 1;
}

/* Atoms of a list (or the rest of the line) into cmd->strs. */
static int
arg_atoms(struct cmd_parser *cp, const struct imap_arg *arg, size_t count)
{
	struct imap_strs *strs = &cp->cmd->strs;

	if (count == 0 || count > IMAP_STRS_MAX)
		return cp_fail(cp, count == 0 ? "Missing argument" : "Too many arguments");
	strs->v = imap_arena_alloc(&cp->cmd->arena, count * sizeof(*strs->v));
	if (strs->v == NULL)
		return cp_fail(cp, "Command too large");
	for (; arg != NULL; arg = arg->next) {
		if (arg->type != IMAP_ARG_ATOM)
			return cp_fail(cp, "Invalid argument");
		strs->v[strs->count++] = arg->str;
	}
	return 1;
}

int
imap_flags_parse(const struct imap_arg *arg, bool bare, struct imap_arena *a,
		 struct imap_flags *flags, const char **error_r)
{
	const struct imap_arg *f = bare ? arg : arg->list;
	size_t n = bare ? 0 : arg->count;

	memset(flags, 0, sizeof(*flags));
	if (bare)
		for (const struct imap_arg *k = arg; k != NULL; k = k->next)
			n++;
	if (!bare && arg->type != IMAP_ARG_LIST) {
		*error_r = "Invalid flag list";
		return -1;
	}
	if ((flags->flags = imap_arena_alloc(a, (n + 1) * sizeof(*flags->flags))) == NULL) {
		*error_r = "Command too large";
		return -1;
	}
	for (; f != NULL; f = f->next) {
		enum imap_flag_kind kind = f->type == IMAP_ARG_ATOM ? imap_flag_kind(f->str, f->len)
								    : IMAP_FLAG_INVALID;
		if (kind == IMAP_FLAG_INVALID || kind == IMAP_FLAG_RECENT) {
			*error_r = kind == IMAP_FLAG_RECENT ? "\\Recent cannot be set" : "Invalid flag";
			return -1;
		}
		const char *sys = imap_flag_system_name(f->str, f->len);
		flags->flags[flags->count++] = sys != NULL ? sys : f->str;
	}
	return 1;
}

int
imap_status_items(const struct imap_arg *list, struct imap_status_items *items,
		  const char **error_r)
{
	static const char *const names[] = {
		"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT",
		"HIGHESTMODSEQ", "APPENDLIMIT", "MAILBOXID", "DELETED-STORAGE",
	};
	const size_t n = sizeof(names) / sizeof(names[0]);

	_Static_assert(sizeof(names) / sizeof(names[0]) == IMAP_STATUS_ITEMS, "one name a bit");
	memset(items, 0, sizeof(*items));
	if (list == NULL || list->type != IMAP_ARG_LIST || list->count == 0) {
		*error_r = "Invalid status items";
		return -1;
	}
	for (const struct imap_arg *i = list->list; i != NULL; i = i->next) {
		size_t k = 0;
		while (k < n && !imap_arg_is_atom(i, names[k]))
			k++;
		if (k == n) {
			*error_r = "Unknown status item";
			return -1;
		}
		if (!(items->mask & (1u << k)))
			items->order[items->count++] = 1u << k;
		items->mask |= 1u << k;
	}
	return 1;
}

/* ---- commands ---- */

static int
cmd_none(struct cmd_parser *cp)
{
	return no_more(cp, cp->args);
}

/* AUTHENTICATE mechanism [initial-response] (RFC 4959 SASL-IR). */
static int
cmd_authenticate(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;
	char *mech;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM || arg->len > 20)
		return cp_fail(cp, "Missing mechanism");
	mech = imap_arena_strdup(&cp->cmd->arena, arg->str, arg->len);
	if (mech == NULL)
		return cp_fail(cp, "Command too large");
	for (char *c = mech; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	cp->cmd->mech = mech;
	if ((arg = arg->next) != NULL) {
		if (arg->type != IMAP_ARG_ATOM)
			return cp_fail(cp, "Invalid initial response");
		cp->cmd->initial = arg->str;
	}
	return no_more(cp, arg != NULL ? arg->next : NULL);
}

static int
cmd_login(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;

	if (arg_astring(cp, arg, &cp->cmd->user) < 0 ||
	    arg_astring(cp, arg->next, &cp->cmd->pass) < 0)
		return -1;
	return no_more(cp, arg->next->next);
}

static int
cmd_enable(struct cmd_parser *cp)
{
	return arg_atoms(cp, cp->args, cp->cmd->nargs);
}

/* ID NIL or ID (field value ...) (RFC 2971). */
static int
cmd_id(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;
	struct imap_strs *strs = &cp->cmd->strs;

	if (arg != NULL && arg->type == IMAP_ARG_NIL) {
		cp->cmd->id_nil = true;
		return no_more(cp, arg->next);
	}
	if (arg == NULL || arg->type != IMAP_ARG_LIST || arg->count % 2 != 0 ||
	    arg->count > 2 * 30)
		return cp_fail(cp, "Invalid ID parameters");
	strs->v = imap_arena_alloc(&cp->cmd->arena, (arg->count + 1) * sizeof(*strs->v));
	if (strs->v == NULL)
		return cp_fail(cp, "Command too large");
	for (const struct imap_arg *f = arg->list; f != NULL; f = f->next->next) {
		const struct imap_arg *v = f->next;
		if (!imap_arg_is_nstring(f) || f->type == IMAP_ARG_NIL || f->len > IMAP_ID_FIELD_MAX ||
		    !imap_arg_is_nstring(v) || v->len > IMAP_ID_VALUE_MAX ||
		    imap_arg_has_nul(f) || imap_arg_has_nul(v))
			return cp_fail(cp, "Invalid ID parameters");
		strs->v[strs->count++] = f->str;
		strs->v[strs->count++] = v->type == IMAP_ARG_NIL ? NULL : v->str;
	}
	return no_more(cp, arg->next);
}

/* QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]]) (RFC 7162). */
static int
select_qresync(struct cmd_parser *cp, const struct imap_arg *list)
{
	struct imap_select *sel = &cp->cmd->select;
	const struct imap_arg *a;
	uint64_t n;

	if (list == NULL || list->type != IMAP_ARG_LIST || list->count < 2 || list->count > 4)
		return cp_fail(cp, "Invalid QRESYNC parameters");
	a = list->list;
	if (imap_arg_number(a, UINT32_MAX, &n) < 0 || n == 0 ||
	    imap_arg_number(a->next, INT64_MAX, &sel->modseq) < 0 || sel->modseq == 0)
		return cp_fail(cp, "Invalid QRESYNC parameters");
	sel->uidvalidity = (uint32_t)n;
	sel->qresync = true;
	a = a->next->next;
	if (a != NULL && a->type != IMAP_ARG_LIST) {
		if (arg_seqset(cp, a, &sel->known_uids) < 0)
			return -1;
		sel->known_uids_set = true;
		a = a->next;
	}
	if (a != NULL) {
		if (a->type != IMAP_ARG_LIST || a->count != 2 ||
		    arg_seqset(cp, a->list, &sel->seq_match_seqs) < 0 ||
		    arg_seqset(cp, a->list->next, &sel->seq_match_uids) < 0)
			return cp_fail(cp, "Invalid QRESYNC parameters");
		sel->seq_match_set = true;
		a = a->next;
	}
	return no_more(cp, a);
}

static int
cmd_select(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args, *p;

	if (arg_mailbox(cp, arg, &cp->cmd->mailbox) < 0)
		return -1;
	if ((arg = arg->next) == NULL)
		return 1;
	if (arg->type != IMAP_ARG_LIST)
		return cp_fail(cp, "Invalid SELECT parameters");
	for (p = arg->list; p != NULL; p = p->next) {
		if (imap_arg_is_atom(p, "CONDSTORE")) {
			cp->cmd->select.condstore = true;
		} else if (imap_arg_is_atom(p, "QRESYNC")) {
			if (select_qresync(cp, p->next) < 0)
				return -1;
			p = p->next;
		} else {
			return cp_fail(cp, "Unknown SELECT parameter");
		}
	}
	return no_more(cp, arg->next);
}

static int
cmd_mailbox(struct cmd_parser *cp)
{
	if (arg_mailbox(cp, cp->args, &cp->cmd->mailbox) < 0)
		return -1;
	return no_more(cp, cp->args->next);
}

/* CREATE mailbox [(USE (\Drafts ...))] (RFC 6154). */
static int
cmd_create(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args, *use;

	if (arg_mailbox(cp, arg, &cp->cmd->mailbox) < 0)
		return -1;
	if ((arg = arg->next) == NULL)
		return 1;
	if (arg->type != IMAP_ARG_LIST || arg->count != 2 || !imap_arg_is_atom(arg->list, "USE") ||
	    (use = arg->list->next)->type != IMAP_ARG_LIST)
		return cp_fail(cp, "Invalid CREATE parameters");
	for (const struct imap_arg *u = use->list; u != NULL; u = u->next)
		if (u->type != IMAP_ARG_ATOM || u->str[0] != '\\' ||
		    imap_flag_kind(u->str, u->len) != IMAP_FLAG_EXTENSION)
			return cp_fail(cp, "Invalid special-use attribute");
	if (use->count > 0 && arg_atoms(cp, use->list, use->count) < 0)
		return -1;
	return no_more(cp, arg->next);
}

static int
cmd_rename(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;

	if (arg_mailbox(cp, arg, &cp->cmd->mailbox) < 0 ||
	    arg_mailbox(cp, arg->next, &cp->cmd->mailbox2) < 0)
		return -1;
	return no_more(cp, arg->next->next);
}

/* LIST-EXTENDED selection options (RFC 5258, 6154). */
static int
list_select(struct cmd_parser *cp, const struct imap_arg *list)
{
	static const char *const names[] = { "SUBSCRIBED", "REMOTE", "RECURSIVEMATCH",
					      "SPECIAL-USE" };

	for (const struct imap_arg *o = list->list; o != NULL; o = o->next) {
		size_t k = 0;
		while (k < 4 && !imap_arg_is_atom(o, names[k]))
			k++;
		if (k == 4)
			return cp_fail(cp, "Unknown LIST selection option");
		cp->cmd->list.select |= 1u << k;
	}
	/* RECURSIVEMATCH alone is an error (RFC 5258 3). */
	if (cp->cmd->list.select == IMAP_LIST_SEL_RECURSIVEMATCH ||
	    cp->cmd->list.select == (IMAP_LIST_SEL_RECURSIVEMATCH | IMAP_LIST_SEL_REMOTE))
		return cp_fail(cp, "RECURSIVEMATCH needs another selection option");
	return 1;
}

/* RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (...) MYRIGHTS). */
static int
list_return(struct cmd_parser *cp, const struct imap_arg *list)
{
	static const char *const names[] = { "SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS",
					      "MYRIGHTS" };

	if (list == NULL || list->type != IMAP_ARG_LIST)
		return cp_fail(cp, "Invalid LIST return options");
	for (const struct imap_arg *o = list->list; o != NULL; o = o->next) {
		size_t k = 0;
		while (k < 5 && !imap_arg_is_atom(o, names[k]))
			k++;
		if (k == 5)
			return cp_fail(cp, "Unknown LIST return option");
		cp->cmd->list.ret |= 1u << k;
		if (k == 3) {
			const char *error = NULL;
			if (imap_status_items(o->next, &cp->cmd->list.status, &error) < 0)
				return cp_fail(cp, error);
			o = o->next;
		}
	}
	return no_more(cp, list->next);
}

static int
list_patterns(struct cmd_parser *cp, const struct imap_arg *arg)
{
	struct imap_list *l = &cp->cmd->list;
	bool listed = arg != NULL && arg->type == IMAP_ARG_LIST;
	const struct imap_arg *p = listed ? arg->list : arg;
	size_t n = listed ? arg->count : 1;

	if (n == 0 || n > IMAP_STRS_MAX)
		return cp_fail(cp, "Invalid mailbox patterns");
	if ((l->patterns = imap_arena_alloc(&cp->cmd->arena, n * sizeof(*l->patterns))) == NULL)
		return cp_fail(cp, "Command too large");
	for (; l->npatterns < n; p = p->next)
		if (arg_mailbox(cp, p, &l->patterns[l->npatterns++]) < 0)
			return -1;
	l->extended = l->extended || listed;
	return 1;
}

static int
cmd_list(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;
	struct imap_list *l = &cp->cmd->list;

	if (cp->cmd->name == IMAP_CMD_LIST && arg != NULL && arg->type == IMAP_ARG_LIST) {
		l->extended = true;
		if (list_select(cp, arg) < 0)
			return -1;
		arg = arg->next;
	}
	if (arg_mailbox(cp, arg, &l->reference) < 0)
		return -1;
	arg = arg->next;
	if (cp->cmd->name == IMAP_CMD_LSUB && arg != NULL && arg->type == IMAP_ARG_LIST)
		return cp_fail(cp, "Invalid mailbox pattern");
	if (list_patterns(cp, arg) < 0)
		return -1;
	if ((arg = arg->next) == NULL)
		return 1;
	if (cp->cmd->name == IMAP_CMD_LIST && imap_arg_is_atom(arg, "RETURN")) {
		l->extended = true;
		return list_return(cp, arg->next);
	}
	return cp_fail(cp, "Too many arguments");
}

static int
cmd_status(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;
	const char *error = NULL;

	if (arg_mailbox(cp, arg, &cp->cmd->mailbox) < 0)
		return -1;
	if (imap_status_items(arg->next, &cp->cmd->status, &error) < 0)
		return cp_fail(cp, error);
	return no_more(cp, arg->next->next);
}

/* One message of APPEND: [flags] [date-time] literal / literal8 /
 * UTF8 (literal8). */
static int
append_msg(struct cmd_parser *cp, const struct imap_arg **argp, struct imap_append_msg *m)
{
	const struct imap_arg *arg = *argp;
	const char *error = NULL;

	if (arg != NULL && arg->type == IMAP_ARG_LIST) {
		if (imap_flags_parse(arg, false, &cp->cmd->arena, &m->flags, &error) < 0)
			return cp_fail(cp, error);
		arg = arg->next;
	}
	if (arg != NULL && arg->type == IMAP_ARG_QUOTED) {
		if (imap_datetime_parse(arg->str, arg->len, &m->date, &m->zone) < 0)
			return cp_fail(cp, "Invalid date-time");
		m->has_date = true;
		arg = arg->next;
	}
	if (imap_arg_is_atom(arg, "UTF8") && arg->next != NULL &&
	    arg->next->type == IMAP_ARG_LIST && arg->next->count == 1) {
		/* RFC 6855 4: this form is UTF8=ACCEPT's, once enabled. */
		if (!cp->opts->utf8)
			return cp_fail(cp, "UTF8 needs ENABLE UTF8=ACCEPT");
		arg = arg->next;
		if (arg->list->type != IMAP_ARG_LITERAL8)
			return cp_fail(cp, "UTF8 needs a literal8");
		m->data = arg->list->str;
		m->len = arg->list->len;
		m->binary = true;
		m->utf8 = true;
	} else if (arg != NULL && (arg->type == IMAP_ARG_LITERAL || arg->type == IMAP_ARG_LITERAL8)) {
		m->data = arg->str;
		m->len = arg->len;
		m->binary = arg->type == IMAP_ARG_LITERAL8;
	} else {
		return cp_fail(cp, "Missing message literal");
	}
	*argp = arg->next;
	return 1;
}

static int
cmd_append(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;
	struct imap_append *ap = &cp->cmd->append;
	size_t max = 0;

	if (arg_mailbox(cp, arg, &cp->cmd->mailbox) < 0)
		return -1;
	for (const struct imap_arg *k = arg->next; k != NULL; k = k->next)
		max += k->type == IMAP_ARG_LITERAL || k->type == IMAP_ARG_LITERAL8 ||
		       imap_arg_is_atom(k, "UTF8");
	if (max == 0)
		return cp_fail(cp, "Missing message literal");
	if (max > IMAP_APPEND_MAX)
		return cp_fail(cp, "Too many messages");
	ap->msgs = imap_arena_alloc(&cp->cmd->arena, max * sizeof(*ap->msgs));
	if (ap->msgs == NULL)
		return cp_fail(cp, "Command too large");
	for (arg = arg->next; arg != NULL;) {
		if (ap->count == max || append_msg(cp, &arg, &ap->msgs[ap->count]) < 0)
			return cp_fail(cp, "Invalid APPEND arguments");
		ap->count++;
	}
	return 1;
}

static int
cmd_search(struct cmd_parser *cp)
{
	const char *error = NULL;

	if (imap_search_parse(cp->args, cp->cmd->name, &cp->cmd->arena, &cp->cmd->search,
			      &error) < 0)
		return cp_fail(cp, error);
	return 1;
}

static int
cmd_fetch(struct cmd_parser *cp)
{
	const char *error = NULL;

	if (arg_seqset(cp, cp->args, &cp->cmd->set) < 0)
		return -1;
	if (imap_fetch_parse(cp->args->next, cp->cmd->uid, &cp->cmd->arena, &cp->cmd->fetch,
			     &error) < 0)
		return cp_fail(cp, error);
	return 1;
}

/* FLAGS, +FLAGS, -FLAGS with .SILENT. */
static int
store_action(struct cmd_parser *cp, const struct imap_arg *arg, struct imap_store *st)
{
	const char *s = arg != NULL && arg->type == IMAP_ARG_ATOM ? arg->str : "";
	size_t len = arg != NULL ? arg->len : 0;

	st->op = IMAP_STORE_SET;
	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		st->op = s[0] == '+' ? IMAP_STORE_ADD : IMAP_STORE_REMOVE;
		s++, len--;
	}
	if (len == 12 && strncasecmp(s, "FLAGS.SILENT", 12) == 0)
		st->silent = true;
	else if (len != 5 || strncasecmp(s, "FLAGS", 5) != 0)
		return cp_fail(cp, "Invalid STORE action");
	return 1;
}

static int
cmd_store(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;
	struct imap_store *st = &cp->cmd->store;
	const char *error = NULL;

	if (arg_seqset(cp, arg, &cp->cmd->set) < 0)
		return -1;
	arg = arg->next;
	if (arg != NULL && arg->type == IMAP_ARG_LIST) {
		/* (UNCHANGEDSINCE n) of RFC 7162. */
		if (arg->count != 2 || !imap_arg_is_atom(arg->list, "UNCHANGEDSINCE") ||
		    imap_arg_number(arg->list->next, INT64_MAX, &st->unchangedsince) < 0)
			return cp_fail(cp, "Invalid STORE modifier");
		st->unchangedsince_set = true;
		arg = arg->next;
	}
	if (store_action(cp, arg, st) < 0)
		return -1;
	arg = arg->next;
	if (arg == NULL)
		return cp_fail(cp, "Missing flags");
	/* A flag list without parentheses is allowed (RFC 9051 store-att-flags). */
	if (arg->type == IMAP_ARG_LIST) {
		if (no_more(cp, arg->next) < 0)
			return -1;
		if (imap_flags_parse(arg, false, &cp->cmd->arena, &st->flags, &error) < 0)
			return cp_fail(cp, error);
	} else if (imap_flags_parse(arg, true, &cp->cmd->arena, &st->flags, &error) < 0) {
		return cp_fail(cp, error);
	}
	return 1;
}

static int
cmd_copy(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args;

	if (arg_seqset(cp, arg, &cp->cmd->set) < 0 || arg_mailbox(cp, arg->next, &cp->cmd->mailbox) < 0)
		return -1;
	return no_more(cp, arg->next->next);
}

static int
cmd_expunge(struct cmd_parser *cp)
{
	if (!cp->cmd->uid)
		return no_more(cp, cp->args);
	if (arg_seqset(cp, cp->args, &cp->cmd->set) < 0)
		return -1;
	return no_more(cp, cp->args->next);
}

static int
cmd_compress(struct cmd_parser *cp)
{
	if (!imap_arg_is_atom(cp->args, "DEFLATE"))
		return cp_fail(cp, "Unknown compression mechanism");
	return no_more(cp, cp->args->next);
}

static int
cmd_getquota(struct cmd_parser *cp)
{
	if (arg_astring(cp, cp->args, &cp->cmd->quota_root) < 0)
		return -1;
	return no_more(cp, cp->args->next);
}

/* SETQUOTA root (resource limit ...) (RFC 9208). */
static int
cmd_setquota(struct cmd_parser *cp)
{
	const struct imap_arg *arg = cp->args, *list;
	struct imap_cmd *cmd = cp->cmd;

	if (arg_astring(cp, arg, &cmd->quota_root) < 0)
		return -1;
	list = arg->next;
	if (list == NULL || list->type != IMAP_ARG_LIST || list->count % 2 != 0 ||
	    list->count > 2 * IMAP_STRS_MAX)
		return cp_fail(cp, "Invalid quota resources");
	cmd->quota = imap_arena_alloc(&cmd->arena, (list->count / 2 + 1) * sizeof(*cmd->quota));
	if (cmd->quota == NULL)
		return cp_fail(cp, "Command too large");
	for (const struct imap_arg *r = list->list; r != NULL; r = r->next->next) {
		struct imap_quota_res *q = &cmd->quota[cmd->nquota++];
		if (r->type != IMAP_ARG_ATOM || imap_arg_number(r->next, INT64_MAX, &q->limit) < 0)
			return cp_fail(cp, "Invalid quota resources");
		q->name = r->str;
	}
	return no_more(cp, list->next);
}

#define S_NA IMAP_STATE_NOTAUTH
#define S_AU (IMAP_STATE_AUTH | IMAP_STATE_SELECTED)
#define S_SE IMAP_STATE_SELECTED

static const struct cmd_def cmd_defs[IMAP_CMD_COUNT] = {
	[IMAP_CMD_UNKNOWN] = { "?", 0, false, NULL },
	[IMAP_CMD_CAPABILITY] = { "CAPABILITY", IMAP_STATE_ANY, false, cmd_none },
	[IMAP_CMD_NOOP] = { "NOOP", IMAP_STATE_ANY, false, cmd_none },
	[IMAP_CMD_LOGOUT] = { "LOGOUT", IMAP_STATE_ANY, false, cmd_none },
	[IMAP_CMD_STARTTLS] = { "STARTTLS", S_NA, false, cmd_none },
	[IMAP_CMD_AUTHENTICATE] = { "AUTHENTICATE", S_NA, false, cmd_authenticate },
	[IMAP_CMD_LOGIN] = { "LOGIN", S_NA, false, cmd_login },
	[IMAP_CMD_ENABLE] = { "ENABLE", S_AU, false, cmd_enable },
	[IMAP_CMD_ID] = { "ID", IMAP_STATE_ANY, false, cmd_id },
	[IMAP_CMD_SELECT] = { "SELECT", S_AU, false, cmd_select },
	[IMAP_CMD_EXAMINE] = { "EXAMINE", S_AU, false, cmd_select },
	[IMAP_CMD_CREATE] = { "CREATE", S_AU, false, cmd_create },
	[IMAP_CMD_DELETE] = { "DELETE", S_AU, false, cmd_mailbox },
	[IMAP_CMD_RENAME] = { "RENAME", S_AU, false, cmd_rename },
	[IMAP_CMD_SUBSCRIBE] = { "SUBSCRIBE", S_AU, false, cmd_mailbox },
	[IMAP_CMD_UNSUBSCRIBE] = { "UNSUBSCRIBE", S_AU, false, cmd_mailbox },
	[IMAP_CMD_LIST] = { "LIST", S_AU, false, cmd_list },
	[IMAP_CMD_LSUB] = { "LSUB", S_AU, false, cmd_list },
	[IMAP_CMD_NAMESPACE] = { "NAMESPACE", S_AU, false, cmd_none },
	[IMAP_CMD_STATUS] = { "STATUS", S_AU, false, cmd_status },
	[IMAP_CMD_APPEND] = { "APPEND", S_AU, false, cmd_append },
	[IMAP_CMD_IDLE] = { "IDLE", S_AU, false, cmd_none },
	[IMAP_CMD_CHECK] = { "CHECK", S_SE, false, cmd_none },
	[IMAP_CMD_CLOSE] = { "CLOSE", S_SE, false, cmd_none },
	[IMAP_CMD_UNSELECT] = { "UNSELECT", S_SE, false, cmd_none },
	[IMAP_CMD_EXPUNGE] = { "EXPUNGE", S_SE, true, cmd_expunge },
	[IMAP_CMD_SEARCH] = { "SEARCH", S_SE, true, cmd_search },
	[IMAP_CMD_FETCH] = { "FETCH", S_SE, true, cmd_fetch },
	[IMAP_CMD_STORE] = { "STORE", S_SE, true, cmd_store },
	[IMAP_CMD_COPY] = { "COPY", S_SE, true, cmd_copy },
	[IMAP_CMD_MOVE] = { "MOVE", S_SE, true, cmd_copy },
	[IMAP_CMD_SORT] = { "SORT", S_SE, true, cmd_search },
	[IMAP_CMD_THREAD] = { "THREAD", S_SE, true, cmd_search },
	[IMAP_CMD_COMPRESS] = { "COMPRESS", IMAP_STATE_ANY, false, cmd_compress },
	[IMAP_CMD_GETQUOTA] = { "GETQUOTA", S_AU, false, cmd_getquota },
	[IMAP_CMD_GETQUOTAROOT] = { "GETQUOTAROOT", S_AU, false, cmd_mailbox },
	[IMAP_CMD_SETQUOTA] = { "SETQUOTA", S_AU, false, cmd_setquota },
};

const char *
imap_cmd_str(enum imap_cmd_name name)
{
	return (unsigned)name < IMAP_CMD_COUNT ? cmd_defs[name].name : "?";
}

unsigned
imap_cmd_states(enum imap_cmd_name name)
{
	return (unsigned)name < IMAP_CMD_COUNT ? cmd_defs[name].states : 0;
}

static enum imap_cmd_name
cmd_lookup(const char *s, size_t len)
{
	for (int i = IMAP_CMD_UNKNOWN + 1; i < IMAP_CMD_COUNT; i++)
		if (strlen(cmd_defs[i].name) == len && strncasecmp(cmd_defs[i].name, s, len) == 0)
			return (enum imap_cmd_name)i;
	return IMAP_CMD_UNKNOWN;
}

void
imap_cmd_init(struct imap_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	imap_arena_init(&cmd->arena, IMAP_ARENA_MAX);
	cmd->tag = "*";
}

void
imap_cmd_clear(struct imap_cmd *cmd)
{
	struct imap_arena arena = cmd->arena;

	imap_arena_free(&arena);
	memset(cmd, 0, sizeof(*cmd));
	cmd->arena = arena;
	cmd->tag = "*";
}

static bool
tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("+(){%*\"\\", c) == NULL;
}

/* The tag and the command name (and UID); returns where arguments start. */
static int
cmd_head(struct imap_cmd *cmd, char *data, size_t len, size_t *pos_r, const char **error_r)
{
	size_t i = 0, w;

	while (i < len && tag_char((unsigned char)data[i]))
		i++;
	if (i == 0 || i > IMAP_TAG_MAX || i == len || data[i] != ' ') {
		*error_r = i == len && i > 0 && i <= IMAP_TAG_MAX ? "Missing command" : "Invalid tag";
		if (i == len && i > 0 && i <= IMAP_TAG_MAX) {
			memcpy(cmd->tagbuf, data, i);
			cmd->tag = cmd->tagbuf;
		}
		return -1;
	}
	memcpy(cmd->tagbuf, data, i);
	cmd->tag = cmd->tagbuf;
	for (;;) {
		while (i < len && data[i] == ' ')
			i++;
		for (w = 0; i + w < len && data[i + w] != ' '; w++)
			;
		if (w == 3 && !cmd->uid && strncasecmp(data + i, "UID", 3) == 0) {
			cmd->uid = true;
			i += w;
			continue;
		}
		break;
	}
	if (w == 0) {
		*error_r = "Missing command";
		return -1;
	}
	cmd->name = cmd_lookup(data + i, w);
	if (cmd->name == IMAP_CMD_UNKNOWN || (cmd->uid && !cmd_defs[cmd->name].uid)) {
		*error_r = cmd->name == IMAP_CMD_UNKNOWN ? "Unknown command" : "Not a UID command";
		return -1;
	}
	*pos_r = i + w;
	return 1;
}

static int
cmd_fail(struct imap_cmd *cmd, const char *error)
{
	if (cmd->name != IMAP_CMD_UNKNOWN)
		snprintf(cmd->error, sizeof(cmd->error), "BAD %s%s: %s", cmd->uid ? "UID " : "",
			 cmd_defs[cmd->name].name, error);
	else
		snprintf(cmd->error, sizeof(cmd->error), "BAD %s", error);
	return -1;
}

int
imap_cmd_parse(struct imap_cmd *cmd, char *data, size_t len, const struct imap_parse_opts *opts)
{
	struct cmd_parser cp = { .cmd = cmd, .opts = opts };
	const char *error = NULL;
	size_t pos = 0;

	imap_cmd_clear(cmd);
	if (cmd_head(cmd, data, len, &pos, &error) < 0)
		return cmd_fail(cmd, error);
	if (pos < len && data[pos] != ' ')
		return cmd_fail(cmd, "Missing space after command");
	if (imap_args_read(data + pos, len - pos, &cmd->arena, &cmd->args, &cmd->nargs, &error) < 0)
		return cmd_fail(cmd, error);
	cp.args = cmd->args;
	if (cmd_defs[cmd->name].parse(&cp) < 0)
		return cmd_fail(cmd, cp.error != NULL ? cp.error : "Invalid arguments");
	return 1;
}
