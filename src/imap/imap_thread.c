/* The ORDEREDSUBJECT and REFERENCES algorithms of RFC 5256 section 3.
 *
 * Containers live in one array and are linked by index (parent, first
 * child, next sibling), so nothing here recurses: a chain of replies as
 * long as the mailbox is walked with loops and an explicit stack.
 */
#include "imap/imap_thread.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define NONE (-1)

struct container {
	int msg;		/* index into msgs, or NONE for a dummy */
	int parent, child, next;
	const char *id;		/* msg-id in the id table, or NULL */
};

struct threader {
	const struct imap_thread_msg *msgs;
	struct container *c;
	size_t n, cap;
	int *table;		/* open addressing: container index or NONE */
	size_t tsize;
	int root;		/* first root container */
};

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		log_fatal("out of memory");
	return p;
}

static int
container_new(struct threader *t, int msg, const char *id)
{
	struct container *c = &t->c[t->n];

	*c = (struct container){ msg, NONE, NONE, NONE, id };
	return (int)t->n++;
}

static size_t
id_hash(const char *id)
{
	size_t h = 2166136261u;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

/* The container of a msg-id; created (a dummy) if create and absent. */
static int
id_lookup(struct threader *t, const char *id, bool create)
{
	size_t i = id_hash(id) & (t->tsize - 1);

	while (t->table[i] != NONE) {
		if (strcmp(t->c[t->table[i]].id, id) == 0)
			return t->table[i];
		i = (i + 1) & (t->tsize - 1);
	}
	if (!create)
		return NONE;
	return t->table[i] = container_new(t, NONE, id);
}

/* Would making child a child of parent close a loop? */
static bool
makes_loop(const struct threader *t, int child, int parent)
{
	for (int p = parent; p != NONE; p = t->c[p].parent)
		if (p == child)
			return true;
	return false;
}

static void
unlink_child(struct threader *t, int c)
{
	int *pp = &t->c[t->c[c].parent].child;

	while (*pp != c)
		pp = &t->c[*pp].next;
	*pp = t->c[c].next;
	t->c[c].next = NONE;
	t->c[c].parent = NONE;
}

/* Puts c first among parent's children (every list is sorted later). */
static void
link_child(struct threader *t, int parent, int c)
{
	t->c[c].next = t->c[parent].child;
	t->c[parent].child = c;
	t->c[c].parent = parent;
}

/* Step 1: containers for each message and its references. */
static void
link_message(struct threader *t, int m)
{
	const struct imap_thread_msg *msg = &t->msgs[m];
	int c = NONE, prev = NONE;

	if (msg->msgid != NULL && (c = id_lookup(t, msg->msgid, true)) != NONE &&
	    t->c[c].msg == NONE)
		t->c[c].msg = m;
	else
		c = container_new(t, m, NULL);	/* no id, or a duplicate one */
	for (size_t r = 0; r < msg->nrefs; r++) {
		int rc = id_lookup(t, msg->refs[r], true);

		if (prev != NONE && t->c[rc].parent == NONE && !makes_loop(t, rc, prev))
			link_child(t, prev, rc);
		prev = rc;
	}
	if (t->c[c].parent != NONE)
		unlink_child(t, c);
	if (prev != NONE && !makes_loop(t, c, prev))
		link_child(t, prev, c);
}

/* Step 4 below the root: dummies give way to their children. */
static void
prune_list(struct threader *t, int *head, int parent)
{
	int *pp = head;

	while (*pp != NONE) {
		struct container *c = &t->c[*pp];
		int last;

		if (c->msg != NONE) {
			pp = &c->next;
			continue;
		}
		if (c->child == NONE) {
			*pp = c->next;
			continue;
		}
		for (last = c->child;; last = t->c[last].next) {
			t->c[last].parent = parent;
			if (t->c[last].next == NONE)
				break;
		}
		t->c[last].next = c->next;
		*pp = c->child;		/* looked at again: may be a dummy too */
		c->child = NONE;	/* gone: sort_all must not see a stale list */
	}
}

/* Step 4 at the root: a dummy stays if it holds several messages. */
static void
prune_root(struct threader *t)
{
	int *pp = &t->root;

	while (*pp != NONE) {
		struct container *c = &t->c[*pp];

		if (c->msg == NONE) {
			prune_list(t, &c->child, *pp);
			if (c->child == NONE) {
				*pp = c->next;
				continue;
			}
			if (t->c[c->child].next == NONE) {
				t->c[c->child].parent = NONE;
				t->c[c->child].next = c->next;
				*pp = c->child;
				c->child = NONE;
				continue;
			}
		}
		pp = &c->next;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->c[i].msg != NONE)
			prune_list(t, &t->c[i].child, (int)i);
}

/* The message a container sorts and groups by: a dummy's first child. */
static const struct imap_thread_msg *
rep_msg(const struct threader *t, int c)
{
	while (t->c[c].msg == NONE && t->c[c].child != NONE)
		c = t->c[c].child;
	return t->c[c].msg == NONE ? NULL : &t->msgs[t->c[c].msg];
}

static int
msg_date_cmp(const struct imap_thread_msg *a, const struct imap_thread_msg *b)
{
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

struct sort_item {
	int c;
	const struct imap_thread_msg *m;
};

static int
item_cmp(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;

	if (x->m == NULL || y->m == NULL)
		return (x->m == NULL) - (y->m == NULL);
	return msg_date_cmp(x->m, y->m);
}

/* Sorts one sibling list by sent date (ties: sequence number). */
static void
sort_list(struct threader *t, int *head, struct sort_item *items)
{
	size_t n = 0;

	for (int c = *head; c != NONE; c = t->c[c].next)
		items[n++] = (struct sort_item){ c, rep_msg(t, c) };
	if (n < 2)
		return;
	qsort(items, n, sizeof(*items), item_cmp);
	*head = items[0].c;
	for (size_t i = 0; i + 1 < n; i++)
		t->c[items[i].c].next = items[i + 1].c;
	t->c[items[n - 1].c].next = NONE;
}

/* Sorts every sibling list; children before the root, whose dummies
 * sort by their first child. */
static void
sort_all(struct threader *t, struct sort_item *items)
{
	for (size_t i = 0; i < t->n; i++)
		sort_list(t, &t->c[i].child, items);
	sort_list(t, &t->root, items);
}

/* ---- step 6: threads of the same base subject ---- */

static size_t
subj_slot(const struct threader *t, int *table, const char *subject)
{
	size_t i = id_hash(subject) & (t->tsize - 1);

	while (table[i] != NONE && strcmp(rep_msg(t, table[i])->subject, subject) != 0)
		i = (i + 1) & (t->tsize - 1);
	return i;
}

static bool
is_dummy(const struct threader *t, int c)
{
	return t->c[c].msg == NONE;
}

/* 6A: which root thread stands for each subject. */
static void
subject_table(struct threader *t, int *table)
{
	for (int c = t->root; c != NONE; c = t->c[c].next) {
		const struct imap_thread_msg *m = rep_msg(t, c);
		size_t i;
		int old;

		if (m == NULL || m->subject[0] == '\0')
			continue;
		i = subj_slot(t, table, m->subject);
		old = table[i];
		if (old == NONE || (is_dummy(t, c) && !is_dummy(t, old)) ||
		    (!is_dummy(t, old) && !is_dummy(t, c) && t->msgs[t->c[old].msg].reply &&
		     !m->reply))
			table[i] = c;
	}
}

/* Appends from's children to to's: to's first child, which gives its
 * subject, stays first. */
static void
adopt_children(struct threader *t, int to, int from)
{
	int *pp = &t->c[to].child;

	while (*pp != NONE)
		pp = &t->c[*pp].next;
	*pp = t->c[from].child;
	for (int c = t->c[from].child; c != NONE; c = t->c[c].next)
		t->c[c].parent = to;
	t->c[from].child = NONE;
}

/* 6B: merges root c into the table's thread old; returns the container
 * that now stands for both at the root (old, c or a new dummy). */
static int
merge_threads(struct threader *t, int old, int c)
{
	const struct imap_thread_msg *mo, *mc;
	int d;

	if (is_dummy(t, old) && is_dummy(t, c)) {
		adopt_children(t, old, c);
		return old;
	}
	if (is_dummy(t, old) || is_dummy(t, c)) {
		int dummy = is_dummy(t, old) ? old : c;

		link_child(t, dummy, dummy == old ? c : old);
		return dummy;
	}
	mo = &t->msgs[t->c[old].msg];
	mc = &t->msgs[t->c[c].msg];
	if (!mo->reply && mc->reply) {
		link_child(t, old, c);
		return old;
	}
	if (mo->reply && !mc->reply) {
		link_child(t, c, old);
		return c;
	}
	d = container_new(t, NONE, NULL);
	link_child(t, d, old);
	link_child(t, d, c);
	return d;
}

static void
group_by_subject(struct threader *t)
{
	int *table = xcalloc(t->tsize, sizeof(*table));
	bool *at_root = xcalloc(t->cap, sizeof(*at_root));
	int *roots, nroots = 0, *out;

	for (size_t i = 0; i < t->tsize; i++)
		table[i] = NONE;
	subject_table(t, table);
	for (int c = t->root; c != NONE; c = t->c[c].next)
		nroots++;
	roots = xcalloc((size_t)nroots, sizeof(*roots));
	nroots = 0;
	for (int c = t->root; c != NONE; c = t->c[c].next) {
		roots[nroots++] = c;
		at_root[c] = true;
	}
	for (int r = 0; r < nroots; r++) {
		const struct imap_thread_msg *m = rep_msg(t, roots[r]);
		size_t i;
		int old, now;

		if (m == NULL || m->subject[0] == '\0')
			continue;
		i = subj_slot(t, table, m->subject);
		old = table[i];
		if (old == NONE || old == roots[r])
			continue;
		/* The two threads leave the root; what holds them now is a
		 * root and stands for the subject. */
		now = merge_threads(t, old, roots[r]);
		at_root[old] = at_root[roots[r]] = false;
		at_root[now] = true;
		t->c[now].parent = NONE;
		roots[r] = now;
		table[i] = now;
	}
	out = &t->root;
	for (int r = 0; r < nroots; r++)
		if (roots[r] != NONE && at_root[roots[r]]) {
			at_root[roots[r]] = false;	/* once, if listed twice */
			*out = roots[r];
			out = &t->c[roots[r]].next;
		}
	*out = NONE;
	free(roots);
	free(at_root);
	free(table);
}

/* ---- writing ---- */

static int
put_open(struct buf *out)
{
	bool space = out->len > 0 && out->data[out->len - 1] >= '0' && out->data[out->len - 1] <= '9';

	return buf_append(out, space ? " (" : "(", space ? 2 : 1);
}

/* One thread ("(3 6 (4 23)(44 7 96))"), walked with a stack of the
 * sibling to start when a nested list closes (NONE: close the parent's
 * list too). */
static int
write_thread(const struct threader *t, int root, int *stack, struct buf *out)
{
	size_t sp = 0;
	int x = root;

	if (buf_append(out, "(", 1) < 0)
		return -1;
	for (;;) {
		int child = t->c[x].child;

		if (t->c[x].msg != NONE &&
		    buf_printf(out, "%s%u", out->data[out->len - 1] == '(' ? "" : " ",
			       t->msgs[t->c[x].msg].id) < 0)
			return -1;
		if (child != NONE && t->c[child].next == NONE) {
			x = child;
			continue;
		}
		if (child != NONE) {
			stack[sp++] = t->c[child].next;
			if (put_open(out) < 0)
				return -1;
			x = child;
			continue;
		}
		if (buf_append(out, ")", 1) < 0)
			return -1;
		for (;;) {
			int y;

			if (sp == 0)
				return 1;
			if ((y = stack[--sp]) != NONE) {
				stack[sp++] = t->c[y].next;
				if (put_open(out) < 0)
					return -1;
				x = y;
				break;
			}
			if (buf_append(out, ")", 1) < 0)
				return -1;
		}
	}
}

static int
write_threads(const struct threader *t, struct buf *out)
{
	int *stack = xcalloc(t->n + 1, sizeof(*stack));
	int ret = 1;

	for (int r = t->root; r != NONE && ret == 1; r = t->c[r].next)
		ret = write_thread(t, r, stack, out);
	free(stack);
	return ret;
}

static void
threader_init(struct threader *t, const struct imap_thread_msg *msgs, size_t n)
{
	size_t refs = 0;

	for (size_t i = 0; i < n; i++)
		refs += msgs[i].nrefs;
	t->msgs = msgs;
	/* messages, their references, and a dummy per merge of step 6 */
	t->cap = 2 * n + refs + 1;
	t->c = xcalloc(t->cap, sizeof(*t->c));
	t->n = 0;
	for (t->tsize = 16; t->tsize < 2 * t->cap; t->tsize *= 2)
		;
	t->table = xcalloc(t->tsize, sizeof(*t->table));
	for (size_t i = 0; i < t->tsize; i++)
		t->table[i] = NONE;
	t->root = NONE;
}

static void
threader_free(struct threader *t)
{
	free(t->c);
	free(t->table);
}

/* Step 2: every container without a parent is a root. */
static void
gather_roots(struct threader *t)
{
	int *out = &t->root;

	for (size_t i = 0; i < t->n; i++)
		if (t->c[i].parent == NONE) {
			*out = (int)i;
			out = &t->c[i].next;
		}
	*out = NONE;
}

int
imap_thread_references(const struct imap_thread_msg *msgs, size_t n, struct buf *out)
{
	struct threader t;
	struct sort_item *items;
	int ret;

	threader_init(&t, msgs, n);
	items = xcalloc(t.cap, sizeof(*items));
	for (size_t i = 0; i < n; i++)
		link_message(&t, (int)i);
	gather_roots(&t);
	prune_root(&t);
	sort_all(&t, items);
	group_by_subject(&t);
	sort_all(&t, items);
	ret = write_threads(&t, out);
	free(items);
	threader_free(&t);
	return ret;
}

static int
subject_cmp(const void *a, const void *b)
{
	const struct imap_thread_msg *x = *(const struct imap_thread_msg *const *)a;
	const struct imap_thread_msg *y = *(const struct imap_thread_msg *const *)b;
	int c = strcmp(x->subject, y->subject);

	return c != 0 ? c : msg_date_cmp(x, y);
}

int
imap_thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n, struct buf *out)
{
	const struct imap_thread_msg **v = xcalloc(n, sizeof(*v));
	struct threader t;
	struct sort_item *items;
	int ret, parent = NONE;

	threader_init(&t, msgs, n);
	items = xcalloc(t.cap, sizeof(*items));
	for (size_t i = 0; i < n; i++)
		v[i] = &msgs[i];
	qsort(v, n, sizeof(*v), subject_cmp);
	/* The first of each subject is the parent, the rest its children. */
	for (size_t i = 0; i < n; i++) {
		int c = container_new(&t, (int)(v[i] - msgs), NULL);

		if (i > 0 && strcmp(v[i]->subject, v[i - 1]->subject) == 0)
			link_child(&t, parent, c);
		else
			parent = c;
	}
	gather_roots(&t);
	sort_all(&t, items);
	ret = write_threads(&t, out);
	free(items);
	free(v);
	threader_free(&t);
	return ret;
}
