/* cli_sendmail.h - `youju sendmail` and its other names (sendmail, mailq). */
#ifndef YJ_CLI_SENDMAIL_H
#define YJ_CLI_SENDMAIL_H

#include <stdbool.h>

/* Is this invocation sendmail's? Called as "sendmail" or "mailq", or as
 * "youju [-d DIR] sendmail ...". Sets *data_dir_r (-d, else $YOUJU_DATA_DIR,
 * else the default) and *first_r (the first sendmail argument). */
bool cli_sendmail_invoked(int argc, char **argv, const char **data_dir_r, int *first_r);

/* Runs sendmail with argv[first..]; returns a sysexits(3) status. */
int cli_sendmail_main(const char *data_dir, int argc, char **argv, int first);

#endif
