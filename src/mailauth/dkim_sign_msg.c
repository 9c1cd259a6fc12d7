/* dkim_sign_msg.c - signing a whole message held in memory with the
 * domain's keys from the data dir (dkim_keys.h): for the messages youju
 * writes itself (bounces, delay notices, reports). */
#include "mailauth/dkim_keys.h"

#include <openssl/evp.h>

#include "mailauth/dkim_hdr.h"

int
dkim_sign_message(const char *data_dir, const char *domain, const char *msg, size_t len,
		  struct buf *out, struct yj_err *err)
{
	struct dkim_sign_key keys[2] = { 0 };
	char sel[2][DKIM_SELECTOR_MAX + 1];
	struct dkim_sign_opts opts = { 0 };
	struct dkim_signer *s;
	size_t hdr_len, body_off;
	int n = dkim_keys_signing(data_dir, domain, keys, sel, err), ret;

	if (n <= 0)
		return n;
	opts.keys = keys;
	opts.n_keys = (size_t)n;
	dkim_msg_split(msg, len, &hdr_len, &body_off);
	if ((s = dkim_signer_new(&opts, msg, hdr_len)) == NULL) {
		ret = yj_err_set(err, "dkim: cannot sign with %d keys", n);
	} else {
		dkim_signer_body(s, msg + body_off, len - body_off);
		ret = dkim_signer_finish(s, out, err);
		dkim_signer_free(s);
	}
	for (int i = 0; i < n; i++)
		EVP_PKEY_free(keys[i].pkey);
	return ret < 0 ? -1 : 1;
}
