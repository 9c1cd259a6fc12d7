/* test-conn-deflate.c - the DEFLATE layer of struct conn over a
 * socketpair, against zlib driven directly as the peer: round trips,
 * input split into single bytes, large output, the history kept across
 * parking, and garbage (an error, never a crash). */
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "net/conn.h"

/* ---- the peer: a client's raw deflate streams ---- */

struct peer {
	int fd;
	z_stream out, in;
};

static void
peer_init(struct peer *p, int fd)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	test_assert(deflateInit2(&p->out, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
	test_assert(inflateInit2(&p->in, -15) == Z_OK);
}

static void
peer_free(struct peer *p)
{
	deflateEnd(&p->out);
	inflateEnd(&p->in);
	close(p->fd);
}

/* Compresses text with a sync flush; returns the compressed length. */
static size_t
peer_compress(struct peer *p, const char *text, size_t len, unsigned char *out, size_t outsize)
{
	p->out.next_in = (unsigned char *)text;
	p->out.avail_in = (uInt)len;
	p->out.next_out = out;
	p->out.avail_out = (uInt)outsize;
	test_assert(deflate(&p->out, Z_SYNC_FLUSH) == Z_OK);
	test_assert(p->out.avail_in == 0 && p->out.avail_out > 0);
	return outsize - p->out.avail_out;
}

static void
peer_send(struct peer *p, const char *text)
{
	unsigned char z[65536];
	size_t n = peer_compress(p, text, strlen(text), z, sizeof(z));

	test_assert(write(p->fd, z, n) == (ssize_t)n);
}

/* Reads and inflates until want bytes came out (or 2 s passed). */
static size_t
peer_recv(struct peer *p, char *out, size_t want)
{
	unsigned char z[4096];
	size_t have = 0;
	time_t until = time(NULL) + 3;

	while (have < want && time(NULL) < until) {
		ssize_t r = recv(p->fd, z, sizeof(z), MSG_DONTWAIT);

		if (r <= 0) {
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		p->in.next_in = z;
		p->in.avail_in = (uInt)r;
		do {
			p->in.next_out = (unsigned char *)out + have;
			p->in.avail_out = (uInt)(want - have);
			test_assert(inflate(&p->in, Z_SYNC_FLUSH) != Z_DATA_ERROR);
			have = want - p->in.avail_out;
		} while (p->in.avail_in > 0 && have < want);
	}
	return have;
}

/* A server-side conn with compression on, and its peer. */
static struct conn *
pair_new(struct peer *p)
{
	struct conn *c = malloc(sizeof(*c));
	struct yj_err err;
	int sv[2];

	test_assert(c != NULL);
	test_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	conn_init(c, sv[0], 2000);
	test_assert(conn_deflate_start(c, &err) == 1);
	test_assert(conn_is_deflate(c));
	peer_init(p, sv[1]);
	return c;
}

static void
pair_free(struct conn *c, struct peer *p)
{
	conn_close(c);
	free(c);
	peer_free(p);
}

static int
read_line(struct conn *c, char *line, size_t size)
{
	size_t len;

	return conn_read_line(c, line, size, size - 1, &len);
}

/* ---- tests ---- */

static void
test_round_trip(void)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	char line[256], back[64];

	test_begin("deflate: commands in, replies out");
	peer_send(&p, "a1 NOOP\r\na2 CAPABILITY\r\n");
	test_assert(read_line(c, line, sizeof(line)) == 1);
	test_assert_strcmp(line, "a1 NOOP\r\n");
	test_assert(conn_input_ready(c));	/* the second command is inside zlib */
	test_assert(read_line(c, line, sizeof(line)) == 1);
	test_assert_strcmp(line, "a2 CAPABILITY\r\n");
	test_assert(!conn_input_ready(c));
	test_assert(conn_printf(c, "a1 OK NOOP completed\r\n") == 1);
	test_assert(conn_flush(c) == 1);
	memset(back, 0, sizeof(back));
	test_assert(peer_recv(&p, back, 22) == 22);
	test_assert_strcmp(back, "a1 OK NOOP completed\r\n");
	pair_free(c, &p);
	test_end();
}

struct drip {
	int fd;
	unsigned char z[256];
	size_t n;
};

static void *
drip_main(void *arg)
{
	struct drip *d = arg;

	for (size_t i = 0; i < d->n; i++) {
		struct timespec ts = { 0, 2000000 };

		if (write(d->fd, d->z + i, 1) != 1)
			break;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void
test_split_reads(void)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	struct drip d = { .fd = p.fd };
	const char *cmd = "a3 SELECT INBOX\r\n";
	char line[256];
	pthread_t t;

	test_begin("deflate: input arriving one byte at a time");
	d.n = peer_compress(&p, cmd, strlen(cmd), d.z, sizeof(d.z));
	test_assert(pthread_create(&t, NULL, drip_main, &d) == 0);
	test_assert(read_line(c, line, sizeof(line)) == 1);
	test_assert_strcmp(line, cmd);
	pthread_join(t, NULL);
	pair_free(c, &p);
	test_end();
}

static void
test_big_output(void)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	size_t size = 300000;
	char *text = malloc(size), *back = calloc(1, size);

	test_begin("deflate: large output in several writes");
	for (size_t i = 0; i < size; i++)
		text[i] = (char)('a' + (i * 7 + i / 13) % 26);
	test_assert(conn_write(c, text, size) == 1);
	test_assert(conn_flush(c) == 1);
	test_assert(peer_recv(&p, back, size) == size);
	test_assert(memcmp(text, back, size) == 0);
	free(text);
	free(back);
	pair_free(c, &p);
	test_end();
}

static void
test_parked_history(void)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	const char *cmd = "a4 UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)\r\n";
	char line[256], back[64];

	test_begin("deflate: parking keeps only the history, which later input uses");
	peer_send(&p, cmd);
	test_assert(read_line(c, line, sizeof(line)) == 1);
	test_assert(conn_printf(c, "* OK Still here\r\n") == 1);
	test_assert(conn_flush(c) == 1);
	test_assert(conn_release_buffers(c));
	/* state and the history: well below zlib's 32 KiB window */
	test_assert(conn_deflate_memory(c) < 1024 + strlen(cmd));
	/* the same command again compresses into back-references */
	peer_send(&p, cmd);
	test_assert(read_line(c, line, sizeof(line)) == 1);
	test_assert_strcmp(line, cmd);
	/* our output after parking comes from a new deflate stream */
	test_assert(peer_recv(&p, back, 17) == 17);
	test_assert(conn_printf(c, "* OK Still here\r\n") == 1);
	test_assert(conn_flush(c) == 1);
	memset(back, 0, sizeof(back));
	test_assert(peer_recv(&p, back, 17) == 17);
	test_assert_strcmp(back, "* OK Still here\r\n");
	pair_free(c, &p);
	test_end();
}

static void
test_garbage(void)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	unsigned char junk[512];
	char line[256];

	test_begin("deflate: garbage input is an error, not a crash");
	srand(8);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rand();
	junk[0] = 0xff;	/* block type 3 does not exist */
	test_assert(write(p.fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	test_assert(read_line(c, line, sizeof(line)) == 0);
	test_assert(c->failed);
	pair_free(c, &p);
	test_end();
}

static void
test_expansion_bounded(void)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	size_t size = 4u << 20;
	char *text = malloc(size + 3), line[1024];
	unsigned char *z = malloc(size);
	size_t n;

	test_begin("deflate: a small packet that expands a lot is read in pieces");
	memset(text, 'A', size);
	memcpy(text + size, "\r\n", 3);
	n = peer_compress(&p, text, size + 2, z, size);
	test_assert(n < 10000);
	test_assert(write(p.fd, z, n) == (ssize_t)n);
	/* too long for the line: skipped up to its LF, as without the layer */
	test_assert(read_line(c, line, sizeof(line)) == -1);
	test_assert(!conn_input_ready(c));
	free(text);
	free(z);
	pair_free(c, &p);
	test_end();
}

/* Sends lines of "a NOOP" inflating to size bytes, reads them back, and
 * says whether the conn still claims input after the last one. */
static bool
exact_fill(size_t size)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	char *text = malloc(size + 1), line[64];
	unsigned char *z = malloc(size + 1024);
	size_t n, lines = size / 8;
	bool ready;

	for (size_t i = 0; i < lines; i++)
		memcpy(text + 8 * i, "a NOOP\r\n", 8);
	n = peer_compress(&p, text, 8 * lines, z, size + 1024);
	test_assert(write(p.fd, z, n) == (ssize_t)n);
	for (size_t i = 0; i < lines; i++) {
		test_assert(read_line(c, line, sizeof(line)) == 1);
		test_assert(strcmp(line, "a NOOP\r\n") == 0);
	}
	ready = conn_input_ready(c);
	free(text);
	free(z);
	pair_free(c, &p);
	return ready;
}

static void
test_exact_fill(void)
{
	test_begin("deflate: input that fills the read buffer exactly leaves none waiting");
	test_assert(!exact_fill(CONN_RBUF_SIZE));
	test_assert(!exact_fill(CONN_RBUF_SIZE + 8));
	test_assert(!exact_fill(CONN_RBUF_SIZE - 8));
	test_assert(!exact_fill(4 * CONN_RBUF_SIZE));
	test_end();
}

static void
test_twice(void)
{
	struct peer p;
	struct conn *c = pair_new(&p);
	struct yj_err err;

	test_begin("deflate: a second start is refused");
	test_assert(conn_deflate_start(c, &err) == -1);
	pair_free(c, &p);
	test_end();
}

int
main(void)
{
	static void (*const tests[])(void) = {
		test_round_trip, test_split_reads, test_big_output, test_parked_history,
		test_garbage, test_expansion_bounded, test_exact_fill, test_twice, NULL,
	};

	return test_run(tests);
}
