/* conn_deflate.c - the DEFLATE layer of the transport (RFC 4978
 * COMPRESS=DEFLATE): raw deflate (no zlib header) each way, on top of
 * TLS or the socket.
 *
 * Output: each write the conn makes (one per conn_flush, or per full
 * write buffer) is compressed and ended with Z_SYNC_FLUSH, so the peer
 * can decode everything sent so far. Our window is small (RFC 4978 lets
 * the receiver cope with any window), and the deflate state is dropped
 * while the session is parked: after a sync flush the output is whole,
 * and a fresh deflate stream simply goes on with a new block.
 *
 * Input: the peer may use a 32 KiB window, so inflate must keep up to
 * 32 KiB of history. While parked, at a block boundary (the peer's sync
 * flush ends with an empty stored block), the stream is closed and only
 * the history it holds is kept, exactly as long as what was received;
 * it is set as the dictionary of a new raw inflate on the next read.
 * Each read inflates at most what the caller's buffer holds, so a small
 * packet that expands a lot cannot make the layer allocate. When it fills
 * the buffer exactly, one byte more is inflated to tell whether output is
 * still waiting: a guess would either park a session with a command
 * inside zlib, or run a step that blocks a worker until the client's
 * next bytes (for imap_timeout) instead of parking it.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <zlib.h>

#include "net/conn.h"

/* Compressed bytes read or written in one go. */
#define ZLIB_BUF_SIZE 4096
/* Our own window and hash sizes: about 4 + 8 KiB plus the state. */
#define ZLIB_OUT_WBITS 12
#define ZLIB_OUT_MEMLEVEL 5
#define ZLIB_OUT_LEVEL 6
/* The peer's window can be anything up to the maximum. */
#define ZLIB_IN_WBITS 15

struct conn_zlib {
	z_stream in, out;
	bool in_live, out_live;		/* streams set up */
	bool in_full;			/* output is waiting: spill, or input */
	bool has_spill;			/* spill holds the next byte of output */
	unsigned char spill;		/* inflated after the caller's buffer was
					 * full, to know whether more was waiting */
	unsigned char *ibuf;		/* compressed input, ZLIB_BUF_SIZE */
	unsigned char *obuf;		/* compressed output, ZLIB_BUF_SIZE */
	unsigned char *hist;		/* the peer's history while in is closed */
	size_t hist_len;
};

static const struct conn_layer_ops conn_zlib_ops;

/* ---- input ---- */

/* Opens the inflate stream, with the history saved while parked. */
static bool
zin_open(struct conn_zlib *z)
{
	if (z->in_live)
		return true;
	memset(&z->in, 0, sizeof(z->in));
	if (inflateInit2(&z->in, -ZLIB_IN_WBITS) != Z_OK)
		return false;
	z->in_live = true;
	if (z->hist_len > 0 &&
	    inflateSetDictionary(&z->in, z->hist, (uInt)z->hist_len) != Z_OK)
		return false;
	free(z->hist);
	z->hist = NULL;
	z->hist_len = 0;
	return true;
}

/* After an inflate that filled the caller's buffer: is there more? The
 * byte that tells is kept for the next read. An error here shows again
 * at the next inflate. */
static bool
zin_probe(struct conn_zlib *z)
{
	z->in.next_out = &z->spill;
	z->in.avail_out = 1;
	(void)inflate(&z->in, Z_SYNC_FLUSH);
	z->has_spill = z->in.avail_out == 0;
	return z->has_spill;
}

/* Inflates what is buffered into p (n > 0), the spilled byte first.
 * Returns the bytes made, 0 if more input is needed, -1 on bad data (or
 * the peer ending the stream, which RFC 4978 gives no meaning: the
 * connection is over then). */
static ssize_t
zin_inflate(struct conn_zlib *z, void *p, size_t n)
{
	unsigned char *out = p;
	size_t lead = 0;

	if (z->has_spill) {
		out[0] = z->spill;
		z->has_spill = false;
		lead = 1;
	}
	for (;;) {
		uInt before = z->in.avail_in;
		size_t room = n - lead > UINT_MAX ? UINT_MAX : n - lead;
		size_t made;
		int r;

		z->in.next_out = out + lead;
		z->in.avail_out = (uInt)room;
		r = inflate(&z->in, Z_SYNC_FLUSH);
		made = lead + room - z->in.avail_out;
		if (r != Z_OK && r != Z_BUF_ERROR)
			return made > 0 && r == Z_STREAM_END ? (ssize_t)made : -1;
		z->in_full = z->in.avail_out == 0 && zin_probe(z);
		if (made > 0)
			return (ssize_t)made;
		if (z->in.avail_in == 0)
			return 0;
		if (z->in.avail_in == before)
			return -1;	/* input left that inflate will not take */
	}
}

static int
zlib_read(struct conn *c, void *p, size_t n, size_t *done_r, int64_t deadline)
{
	struct conn_zlib *z = c->z;
	const struct conn_layer *below = c->zlib.below;

	if (!zin_open(z) || (z->ibuf == NULL && (z->ibuf = malloc(ZLIB_BUF_SIZE)) == NULL)) {
		c->failed = true;
		return 0;
	}
	for (;;) {
		size_t got = 0;
		ssize_t made = 0;

		if (z->in.avail_in > 0 || z->in_full)
			made = zin_inflate(z, p, n);
		if (made < 0) {
			c->failed = true;
			return 0;
		}
		if (made > 0) {
			*done_r = (size_t)made;
			return 1;
		}
		z->in_full = false;
		if (!below->ops->read(c, z->ibuf, ZLIB_BUF_SIZE, &got, deadline))
			return 0;
		z->in.next_in = z->ibuf;
		z->in.avail_in = (uInt)got;
	}
}

static bool
zlib_pending(const struct conn *c)
{
	const struct conn_zlib *z = c->z;

	return (z->in_live && (z->in.avail_in > 0 || z->in_full)) ||
	       c->zlib.below->ops->pending(c);
}

/* Is the inflate stream between two blocks, with no bits held back? */
static bool
zin_at_boundary(const struct conn_zlib *z)
{
	int t = z->in.data_type;

	/* data_type: bits unused, +64 in the last block, +128 at a block
	 * boundary, +256 inside a block's codes (zlib.h). */
	return z->in.avail_in == 0 && !z->in_full && (t & 128) && !(t & 64) && !(t & 256) &&
	       (t & 63) == 0;
}

/* Closes the inflate stream, keeping only the history it needs. */
static void
zin_park(struct conn_zlib *z)
{
	uInt len = 0;

	if (!z->in_live || !zin_at_boundary(z))
		return;
	if (inflateGetDictionary(&z->in, NULL, &len) != Z_OK)
		return;
	if (len > 0) {
		z->hist = malloc(len);
		if (z->hist == NULL || inflateGetDictionary(&z->in, z->hist, &len) != Z_OK) {
			free(z->hist);
			z->hist = NULL;
			return;
		}
	}
	z->hist_len = len;
	inflateEnd(&z->in);
	z->in_live = false;
}

/* ---- output ---- */

static bool
zout_open(struct conn_zlib *z)
{
	if (z->out_live)
		return true;
	memset(&z->out, 0, sizeof(z->out));
	if (deflateInit2(&z->out, ZLIB_OUT_LEVEL, Z_DEFLATED, -ZLIB_OUT_WBITS, ZLIB_OUT_MEMLEVEL,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return false;
	z->out_live = true;
	return true;
}

/* Writes all of p to the layer below. */
static int
zout_send(struct conn *c, const unsigned char *p, size_t n, int64_t deadline)
{
	const struct conn_layer *below = c->zlib.below;

	while (n > 0) {
		size_t done = 0;

		if (!below->ops->write(c, p, n, &done, deadline))
			return 0;
		p += done;
		n -= done;
	}
	return 1;
}

static int
zlib_write(struct conn *c, const void *p, size_t n, size_t *done_r, int64_t deadline)
{
	struct conn_zlib *z = c->z;

	if (!zout_open(z) || (z->obuf == NULL && (z->obuf = malloc(ZLIB_BUF_SIZE)) == NULL)) {
		c->failed = true;
		return 0;
	}
	z->out.next_in = (unsigned char *)p;
	z->out.avail_in = n > UINT_MAX ? UINT_MAX : (uInt)n;
	*done_r = z->out.avail_in;
	do {
		z->out.next_out = z->obuf;
		z->out.avail_out = ZLIB_BUF_SIZE;
		if (deflate(&z->out, Z_SYNC_FLUSH) == Z_STREAM_ERROR) {
			c->failed = true;
			return 0;
		}
		if (!zout_send(c, z->obuf, ZLIB_BUF_SIZE - z->out.avail_out, deadline))
			return 0;
	} while (z->out.avail_out == 0 || z->out.avail_in > 0);
	return 1;
}

/* ---- the layer ---- */

static void
zlib_idle(struct conn *c)
{
	struct conn_zlib *z = c->z;

	if (z->out_live) {
		deflateEnd(&z->out);
		z->out_live = false;
	}
	free(z->obuf);
	z->obuf = NULL;
	zin_park(z);
	if (z->in.avail_in == 0 || !z->in_live) {
		free(z->ibuf);
		z->ibuf = NULL;
		z->in.avail_in = 0;
	}
}

static void
zlib_close(struct conn *c)
{
	struct conn_zlib *z = c->z;

	if (z->in_live)
		inflateEnd(&z->in);
	if (z->out_live)
		deflateEnd(&z->out);
	free(z->ibuf);
	free(z->obuf);
	free(z->hist);
	free(z);
	c->z = NULL;
	c->top = c->zlib.below;
}

static const struct conn_layer_ops conn_zlib_ops = {
	.name = "deflate", .read = zlib_read, .write = zlib_write,
	.pending = zlib_pending, .close = zlib_close, .idle = zlib_idle,
};

int
conn_deflate_start(struct conn *c, struct yj_err *err)
{
	if (c->z != NULL)
		return yj_err_set(err, "DEFLATE: compression is already active");
	if (c->failed || c->timed_out || (c->wlen > 0 && !conn_flush(c)))
		return yj_err_set(err, "DEFLATE: connection %s before the switch",
				  c->timed_out ? "timed out" : "failed");
	/* Bytes not read yet were sent before the peer saw our OK. */
	c->rpos = c->rlen = 0;
	c->z = calloc(1, sizeof(*c->z));
	if (c->z == NULL || !zin_open(c->z) || !zout_open(c->z)) {
		if (c->z != NULL) {
			c->zlib = (struct conn_layer){ .ops = &conn_zlib_ops, .below = c->top };
			zlib_close(c);
		}
		c->failed = true;
		return yj_err_set(err, "DEFLATE: cannot set up zlib");
	}
	c->zlib = (struct conn_layer){ .ops = &conn_zlib_ops, .below = c->top };
	c->top = &c->zlib;
	return 1;
}

bool
conn_is_deflate(const struct conn *c)
{
	return c->z != NULL;
}

/* zlib's own allocations, from its documented formulas: deflate
 * (1 << (wbits + 2)) + (1 << (memlevel + 9)), inflate 1 << wbits, plus
 * roughly 6 and 7 KiB of state. */
size_t
conn_deflate_memory(const struct conn *c)
{
	const struct conn_zlib *z = c->z;
	size_t n;

	if (z == NULL)
		return 0;
	n = sizeof(*z) + z->hist_len;
	if (z->ibuf != NULL)
		n += ZLIB_BUF_SIZE;
	if (z->obuf != NULL)
		n += ZLIB_BUF_SIZE;
	if (z->out_live)
		n += (1u << (ZLIB_OUT_WBITS + 2)) + (1u << (ZLIB_OUT_MEMLEVEL + 9)) + 6 * 1024;
	if (z->in_live)
		n += (1u << ZLIB_IN_WBITS) + 7 * 1024;
	return n;
}
