/* block.h - marks where a thread waits instead of computing.
 *
 * The session runtime lets only a few workers run session steps at once
 * (see net/runtime.h: run slots). A worker that is about to wait for
 * something other than a CPU (a socket, the store's writer, an fsync,
 * the database server, a DNS answer, a delay) says so with
 * block_begin() and block_end(), so its slot goes to another session
 * meanwhile. The calls nest; only the outermost pair counts. On a thread
 * that holds no slot (the writer, the queue runner, the CLI) they cost a
 * thread-local check and nothing else.
 *
 * A wait left unmarked is not a deadlock, only lost concurrency: a worker
 * that waits too long for a slot runs anyway (runtime.c). */
#ifndef YJ_BLOCK_H
#define YJ_BLOCK_H

#include <stdbool.h>

struct block_hooks {
	void (*begin)(void);	/* give this thread's slot back, if it has one */
	void (*end)(bool first);	/* take it again; first: at once, ahead
					 * of the line, even over the limit */
	void (*yield)(void);	/* let waiting steps go first if it is their turn */
};

/* Installed once, by the runtime, before its workers start. */
void block_set_hooks(const struct block_hooks *hooks);

void block_begin(void);
void block_end(void);

/* Bracket the time this thread holds something other threads wait for
 * (the store's write lock). Meanwhile a wait ends without waiting in line
 * for a slot: in line, the holder would make everybody waiting for what
 * it holds wait too, the store's writer and every delivery among them,
 * behind steps that may compute for a while. They nest. */
void block_hold_begin(void);
void block_hold_end(void);

/* Called now and then by a long computation inside a step (a SEARCH of
 * a big mailbox): once this thread has run a while, steps waiting for a
 * slot go first, then it goes on. Cheap when nothing is due. */
void block_yield(void);

#endif
