/* cli_sendmail.h - `youju sendmail` and its other names (sendmail, mailq). */
#ifndef YJ_CLI_SENDMAIL_H
#define YJ_CLI_SENDMAIL_H

#include <stdbool.h>

/* Is this invocation sendmail's? Called as "sendmail" or "mailq", or as
 * "youju [-d DIR] sendmail ...". Sets *data_dir_r (-d, else $YOUJU_DATA_DIR,
 * else the default: CLI_SENDMAIL_DATA_DIR when called by the name sendmail
 * or mailq, as an installed link is, else youju's) and *first_r (the
 * first sendmail argument). */
bool cli_sendmail_invoked(int argc, char **argv, const char **data_dir_r, int *first_r);

/* Lists the queue of data_dir (-bp, mailq); returns an exit status. */
typedef int cli_sendmail_list_fn(const char *data_dir);

/* Runs sendmail with argv[first..]; returns a sysexits(3) status. -bp
 * (or the name mailq) calls list_queue instead. */
int cli_sendmail_main(const char *data_dir, int argc, char **argv, int first,
		      cli_sendmail_list_fn *list_queue);

#endif
