/* block.c - nesting of wait regions; the runtime supplies what they do. */
#include "base/block.h"

#include <stddef.h>

static const struct block_hooks *installed;
static _Thread_local unsigned depth;
static _Thread_local unsigned holding;	/* block_hold_begin() nesting */

void
block_set_hooks(const struct block_hooks *hooks)
{
	installed = hooks;
}

void
block_begin(void)
{
	if (depth++ == 0 && installed != NULL)
		installed->begin();
}

void
block_yield(void)
{
	/* A holder lets nobody go first: it would wait in line with what
	 * the others may be waiting for. */
	if (depth == 0 && holding == 0 && installed != NULL)
		installed->yield();
}

void
block_end(void)
{
	if (depth > 0 && --depth == 0 && installed != NULL)
		installed->end(holding > 0);
}

void
block_hold_begin(void)
{
	holding++;
}

void
block_hold_end(void)
{
	if (holding > 0)
		holding--;
}
