/* Base subject extraction (RFC 5256 2.1). */
#include "imap/imap_thread.h"

#include <string.h>
#include <strings.h>

#include "mime/mime_charset.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Step 1: decoded, every run of blanks one space. */
static int
subject_normalize(const char *p, size_t len, struct buf *out)
{
	struct buf dec;
	int ret = 1;

	buf_init(&dec, out->max);
	if (mime_2047_decode(p, len, &dec) < 0)
		ret = -1;
	for (size_t i = 0; ret == 1 && i < dec.len; i++) {
		char c = dec.data[i] == '\t' || dec.data[i] == '\r' || dec.data[i] == '\n'
				 ? ' ' : dec.data[i];
		if (c == ' ' && out->len > 0 && out->data[out->len - 1] == ' ')
			continue;
		if (buf_append(out, &c, 1) < 0)
			ret = -1;
	}
	buf_free(&dec);
	return ret;
}

/* Step 2: removes subj-trailer ("(fwd)" and blanks) at the end. */
static bool
strip_trailers(const char *s, size_t *len)
{
	bool fwd = false;

	for (;;) {
		if (*len > 0 && is_wsp(s[*len - 1]))
			(*len)--;
		else if (*len >= 5 && strncasecmp(s + *len - 5, "(fwd)", 5) == 0) {
			*len -= 5;
			fwd = true;
		} else
			return fwd;
	}
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP; returns its length or 0. */
static size_t
blob_len(const char *s, size_t len)
{
	size_t i = 1;

	if (len == 0 || s[0] != '[')
		return 0;
	while (i < len && s[i] != '[' && s[i] != ']')
		i++;
	if (i == len || s[i] != ']')
		return 0;
	for (i++; i < len && is_wsp(s[i]); i++)
		;
	return i;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"; length or 0. */
static size_t
refwd_len(const char *s, size_t len)
{
	size_t i;

	if (len >= 2 && strncasecmp(s, "re", 2) == 0)
		i = 2;
	else if (len >= 3 && strncasecmp(s, "fwd", 3) == 0)
		i = 3;
	else if (len >= 2 && strncasecmp(s, "fw", 2) == 0)
		i = 2;
	else
		return 0;
	while (i < len && is_wsp(s[i]))
		i++;
	i += blob_len(s + i, len - i);
	return i < len && s[i] == ':' ? i + 1 : 0;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP; length or 0. */
static size_t
leader_len(const char *s, size_t len)
{
	size_t i = 0, b, r;

	if (len > 0 && is_wsp(s[0]))
		return 1;
	while ((b = blob_len(s + i, len - i)) > 0)
		i += b;
	r = refwd_len(s + i, len - i);
	return r > 0 ? i + r : 0;
}

/* Step 4 for a row of blobs with no subj-refwd behind them (so that
 * step 3 finds no leader between any two of them): each goes if
 * something is left behind it, all in one step. One at a time, with
 * step 3 scanning the rest of the row again each time, a subject of
 * many blobs would cost the square of its length. Length or 0. */
static size_t
blobs_len(const char *s, size_t len)
{
	size_t i = 0, last = 0, b;

	while ((b = blob_len(s + i, len - i)) > 0) {
		last = i;
		i += b;
	}
	return i < len ? i : last;
}

/* Steps 3 to 5; the text left is s[*start..*len). */
static bool
strip_leaders(const char *s, size_t *start, size_t len)
{
	bool reply = false;

	for (;;) {
		size_t l = leader_len(s + *start, len - *start), b;

		if (l > 0) {
			reply |= !is_wsp(s[*start]);
			*start += l;
			continue;
		}
		b = blobs_len(s + *start, len - *start);
		if (b > 0) {
			*start += b;
			continue;
		}
		return reply;
	}
}

int
imap_base_subject(const char *p, size_t len, struct buf *out, bool *reply_r)
{
	struct buf norm;
	size_t start = 0, end;
	int ret;

	*reply_r = false;
	buf_init(&norm, out->max);
	if (subject_normalize(p, len, &norm) < 0) {
		buf_free(&norm);
		return -1;
	}
	end = norm.len;
	for (;;) {
		size_t l = end - start;

		*reply_r |= strip_trailers(norm.data + start, &l);
		end = start + l;
		*reply_r |= strip_leaders(norm.data, &start, end);
		/* Step 6: "[fwd:" ... "]" wraps a forwarded subject. */
		if (end - start >= 6 && strncasecmp(norm.data + start, "[fwd:", 5) == 0 &&
		    norm.data[end - 1] == ']') {
			start += 5;
			end--;
			*reply_r = true;
			continue;
		}
		break;
	}
	ret = buf_append(out, norm.data + start, end - start) < 0 ? -1 : 1;
	buf_free(&norm);
	return ret;
}
