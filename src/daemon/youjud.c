/* youjud - the youju mail server daemon.
 *
 * Usage: youjud [-d DATA_DIR] [-o key=value ...]
 * Runs in the foreground and logs to stderr. Started as root, it binds
 * its listeners, loads the TLS key, then becomes mail_owner before it
 * reads a byte from the network. SIGTERM or SIGINT stops it cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "daemon/listeners.h"
#include "daemon/privs.h"
#include "deliver/deliver.h"
#include "deliver/deliver_index.h"
#include "mailauth/dkim_keys.h"
#include "net/dns.h"
#include "net/listen.h"
#include "net/tls.h"
#include "queue/queue.h"
#include "report/report.h"
#include "store/store.h"

#define DEFAULT_DATA_DIR "./var"
/* Descriptors beyond one per session: listeners, the store's database
 * files, DNS, logs, the reserve fd. */
#define NOFILE_MARGIN 256

static int stop_pipe[2] = { -1, -1 };

static void
on_stop_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(stop_pipe[1], &c, 1) < 0) {
		/* the pipe is full: a stop is already pending */
	}
	errno = saved;
}

static void
usage(void)
{
	fprintf(stderr, "usage: youjud [-d DATA_DIR] [-o key=value ...]\n");
	exit(2);
}

static void
load_config(struct config *cfg, int argc, char **argv)
{
	const char *data_dir = DEFAULT_DATA_DIR;
	struct yj_err err;
	char *path;
	int opt;

	while ((opt = getopt(argc, argv, "d:o:h")) != -1) {
		if (opt == 'd')
			data_dir = optarg;
		else if (opt != 'o')
			usage();
	}
	if (optind != argc)
		usage();
	config_init(cfg, data_dir);
	path = config_path(cfg, CONFIG_FILE_NAME);
	if (config_load(cfg, path, &err) < 0)
		log_fatal("%s", err.msg);
	free(path);
	optind = 1;
	while ((opt = getopt(argc, argv, "d:o:h")) != -1) {
		if (opt == 'o' && config_set_option(cfg, optarg, &err) < 0)
			log_fatal("-o %s", err.msg);
	}
	if (config_finish(cfg, &err) < 0 || cidr_list_check(cfg->mynetworks, &err) < 0)
		log_fatal("config: %s", err.msg);
}

/* Works from inside the data dir from now on, and names it "." in the
 * config: entered as root, the dir stays reachable after the switch to
 * mail_owner even when a parent is not searchable by that user (a
 * checkout under /root, say). Returns the name it had, for the log. */
static char *
enter_data_dir(struct config *cfg)
{
	char *name = cfg->data_dir;

	if (chdir(name) < 0)
		log_fatal("data dir %s: %s", name, strerror(errno));
	cfg->data_dir = strdup(".");
	if (cfg->data_dir == NULL)
		log_fatal("out of memory");
	return name;
}

static int
open_listeners(const struct config *cfg, struct listener *ls)
{
	const char *const specs[LISTENER_COUNT] = {
		cfg->smtp_listen, cfg->submission_listen, cfg->submissions_listen,
		cfg->imap_listen, cfg->imaps_listen, cfg->pop3_listen, cfg->pop3s_listen,
		"",	/* LISTENER_SENDMAIL: open_sendmail_socket() */
	};
	struct yj_err err;
	int n = 0;

	for (int k = 0; k < LISTENER_COUNT; k++) {
		const char *name = listener_kind_name((enum listener_kind)k);

		if (specs[k][0] == '\0')
			continue;
		if (!listener_kind_available((enum listener_kind)k)) {
			log_info("%s_listen: %s is not available in this version; not listening",
				 name, name);
			continue;
		}
		ls[n].kind = (enum listener_kind)k;
		ls[n].key = name;
		ls[n].fd = listen_bind(specs[k], &err);
		if (ls[n].fd < 0)
			log_fatal("%s_listen = %s: %s", name, specs[k], err.msg);
		log_info("listening: %s on %s", name, specs[k]);
		n++;
	}
	return n;
}

/* The local socket `youju sendmail` hands messages to, in the data dir.
 * Opened once the data dir is locked (a second youjud must not take the
 * first one's socket) and as mail_owner, which owns the data dir. Anyone
 * who can reach the data dir may connect: the server learns who from the
 * socket itself (SO_PEERCRED). */
static int
open_sendmail_socket(struct listener *ls, int n)
{
	struct yj_err err;
	int fd = listen_unix(SENDMAIL_SOCKET, 0666, &err);

	if (fd < 0) {
		log_warn("sendmail socket: %s; youju sendmail will not work", err.msg);
		return n;
	}
	ls[n].kind = LISTENER_SENDMAIL;
	ls[n].key = "sendmail";
	ls[n].fd = fd;
	log_info("listening: sendmail on %s", SENDMAIL_SOCKET);
	return n + 1;
}

/* Raises the open files limit to what max_connections needs: the soft
 * limit up to the hard one, and the hard one too while still root. When
 * that is not enough, says so with the numbers: past the limit clients
 * get "too many connections" instead of their sessions. */
static void
raise_nofile(const struct config *cfg)
{
	rlim_t want = (rlim_t)cfg->max_connections + NOFILE_MARGIN;
	struct rlimit rl, both = { want, want };

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max < want && setrlimit(RLIMIT_NOFILE, &both) == 0) {
		log_info("open files limit raised to %llu for max_connections=%ld",
			 (unsigned long long)want, cfg->max_connections);
		return;
	}
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_cur,
			 strerror(errno));
	else if (rl.rlim_cur >= want)
		log_info("open files limit raised to %llu for max_connections=%ld",
			 (unsigned long long)want, cfg->max_connections);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		log_warn("open files limit is %llu (hard limit %llu), but max_connections=%ld "
			 "needs %llu: about %llu sessions fit, more clients get \"too many "
			 "connections\"; raise LimitNOFILE (ulimit -n) or lower max_connections",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
			 cfg->max_connections, (unsigned long long)want,
			 rl.rlim_cur > NOFILE_MARGIN ? (unsigned long long)(rl.rlim_cur - NOFILE_MARGIN)
						     : 0ULL);
}

static bool
needs_tls(const struct listener *ls, int n)
{
	for (int i = 0; i < n; i++) {
		if (listener_kind_implicit_tls(ls[i].kind))
			return true;
	}
	return false;
}

static SSL_CTX *
load_tls(const struct config *cfg, bool required)
{
	char *cert = config_path(cfg, cfg->tls_cert_file);
	char *key = config_path(cfg, cfg->tls_key_file);
	struct yj_err err;
	SSL_CTX *ctx = NULL;

	if (access(cert, R_OK) == 0 || required) {
		ctx = tls_server_ctx_new(cert, key, &err);
		if (ctx == NULL)
			log_fatal("tls: %s", err.msg);
	} else {
		log_warn("tls: no certificate at %s; STARTTLS disabled", cert);
	}
	free(cert);
	free(key);
	return ctx;
}

static void
setup_signals(void)
{
	struct sigaction sa;

	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal("pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* One youjud per data dir: the POP3 maildrop lock, the store's writer
 * and (later) mailbox notifications live in this process's memory. The
 * lock goes with the process, however it ends. The file holds the pid
 * while youjud runs and is emptied by a clean stop, so a pid found at
 * start-up means the last run did not stop cleanly. Returns the lock's
 * fd and sets *crashed_r accordingly. */
static int
lock_data_dir(const struct config *cfg, const char *name, bool *crashed_r)
{
	char *path = config_path(cfg, "youjud.lock");
	char pid[32];
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	int n;

	if (fd < 0)
		log_fatal("%s: %s", path, strerror(errno));
	n = (int)read(fd, pid, sizeof(pid) - 1);
	pid[n > 0 ? n : 0] = '\0';
	pid[strcspn(pid, "\n")] = '\0';
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		log_fatal("data dir %s is in use by another youjud (pid %s)", name,
			  pid[0] != '\0' ? pid : "unknown");
	*crashed_r = pid[0] != '\0';
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("%s: cannot write the pid: %s", path, strerror(errno));
	free(path);
	return fd;	/* stays open: it holds the lock until the process ends */
}

/* Says "stopped cleanly" to the next start: an empty lock file. */
static void
unlock_data_dir(int lock_fd)
{
	if (ftruncate(lock_fd, 0) < 0)
		log_warn("youjud.lock: %s", strerror(errno));
}

/* Opens the store once as mail_owner, which migrates the schema. After a
 * crash it also removes the blobs of deliveries that were in flight:
 * nothing else writes blobs while this runs (the data dir is locked and
 * no session has started), so any blob no row names is such an orphan.
 * After a clean stop there are none, and the scan of every blob file is
 * not worth making the start wait for. */
static void
check_store(const struct config *cfg, bool crashed)
{
	struct store *st;
	struct yj_err err;

	if (store_set_driver(cfg->data_dir, cfg->store_driver, cfg->store_dsn, &err) < 0 ||
	    store_open(cfg->data_dir, &st, &err) < 0)
		log_fatal("store: %s", err.msg);
	if (crashed && store_gc(st, 0, &err) < 0)
		log_warn("store: gc: %s", err.msg);
	store_close(&st);
	/* Notices of other processes' changes, periodic orphan collection
	 * and WAL checkpoints. */
	store_set_queue_retention(cfg->queue_finished_retention);
	if (store_start(cfg->data_dir, &err) < 0)
		log_fatal("store: %s", err.msg);
}

int
main(int argc, char **argv)
{
	struct listener ls[LISTENER_COUNT];
	struct server srv = { 0 };
	struct stop stop = { 0 };
	struct config cfg;
	struct yj_err err;
	enum log_level level;
	char *data_dir_name;
	bool crashed;
	int n, lock_fd;

	log_init("youjud", LOG_LVL_INFO);
	load_config(&cfg, argc, argv);
	if (log_level_parse(cfg.log_level, &level) < 0)
		log_fatal("config: log_level: unknown level '%s'", cfg.log_level);
	log_init("youjud", level);
	setup_signals();
	data_dir_name = enter_data_dir(&cfg);

	raise_nofile(&cfg);
	n = open_listeners(&cfg, ls);
	srv.cfg = &cfg;
	stop.fd = stop_pipe[0];
	srv.stop = &stop;
	srv.tls = load_tls(&cfg, needs_tls(ls, n));
	if (dns_init(cfg.dns_servers, &err) < 0)
		log_fatal("dns: %s", err.msg);
	if (privs_drop(cfg.mail_owner, &err) < 0)
		log_fatal("%s", err.msg);
	lock_fd = lock_data_dir(&cfg, data_dir_name, &crashed);
	n = open_sendmail_socket(ls, n);
	/* Before the store's threads start. */
	deliver_set_fts(cfg.imap_fts);
	store_set_summary_cache((size_t)cfg.imap_summary_cache);
	if (cfg.imap_fts)
		store_set_text_maker(deliver_index_text);
	check_store(&cfg, crashed);
	deliver_set_signer(dkim_sign_message);
	if (queue_start(&cfg, &err) < 0)
		log_fatal("queue: %s", err.msg);
	if (report_start(&cfg, &err) < 0)
		log_fatal("dmarc report: %s", err.msg);

	log_info("youjud started: hostname=%s data_dir=%s listeners=%d", cfg.myhostname,
		 data_dir_name, n);
	if (listeners_run(&srv, ls, n) > 0) {
		/* Sessions still use the store, DNS and config: no teardown.
		 * What they had not acknowledged is not lost: it was never
		 * promised. */
		log_info("youjud stopped");
		_exit(0);
	}
	report_stop();
	if (!queue_stop()) {
		log_info("youjud stopped");
		_exit(0);
	}
	store_shutdown();
	unlock_data_dir(lock_fd);
	dns_deinit();
	if (srv.tls != NULL)
		SSL_CTX_free(srv.tls);
	log_info("youjud stopped");
	config_free(&cfg);
	free(data_dir_name);
	return 0;
}
