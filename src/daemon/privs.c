#include "daemon/privs.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

int
privs_drop(const char *user, struct yj_err *err)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return 1;
	pw = getpwnam(user);
	if (pw == NULL)
		return yj_err_set(err, "mail_owner: user '%s' does not exist "
				  "(youju init creates it when run as root)", user);
	if (pw->pw_uid == 0)
		return yj_err_set(err, "mail_owner: '%s' is root; refusing to run as root", user);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		return yj_err_errno(err, "cannot switch to user '%s'", user);
	if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0)
		return yj_err_set(err, "still root after switching to '%s'", user);
	return 1;
}
