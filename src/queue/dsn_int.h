/* dsn_int.h - shared between the DSN composer's files; not a contract for
 * other modules. */
#ifndef YJ_DSN_INT_H
#define YJ_DSN_INT_H

#include "queue/dsn.h"

/* The paragraph that explains a classified reply. */
const char *dsn_explanation(enum dsn_reason reason);
/* The opening paragraph of a report whose most serious action is worst. */
const char *dsn_intro(enum dsn_action worst);

#endif
