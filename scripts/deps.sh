#!/bin/sh
# Installs, with apt-get, whatever youju needs to build, run and test that
# this Debian machine does not have yet. Safe to run again.
# Usage: scripts/deps.sh [bench|fresh]
set -eu

PKGS="build-essential cmake pkg-config libssl-dev libsqlite3-dev libunbound-dev
libcrypt-dev zlib1g-dev libidn2-dev openssl sqlite3 libpq-dev postgresql ca-certificates
clang libclang-rt-14-dev procps iproute2
python3 python3-pytest python3-dkim python3-spf python3-yaml curl nsd fetchmail getmail6
libpsl-dev publicsuffix
swaks libnet-ssleay-perl libio-socket-ssl-perl msmtp s-nail opendkim-tools util-linux
isync offlineimap3 neomutt tmux gdb"
# swaks needs the two perl packages for --tls: they are only its Recommends.
# msmtp and s-nail are real mail clients for the submission and sendmail tests;
# isync (mbsync), offlineimap3, neomutt (driven in tmux) for the IMAP tests.
# opendkim-tools: OpenDKIM cross-checks every signature youju makes (run in
# namespaces made with util-linux's unshare; see tests/integration/opendkim_ns.py).
# gdb: its gcore dumps a running youjud, whose memory a test searches for a
# password (tests/integration/test_probe_imap.py).
# The incumbents the benchmarks compare against, only when asked for.
BENCH_PKGS="postfix dovecot-core dovecot-pop3d dovecot-lmtpd dovecot-imapd"
# What scripts/fresh-check needs to build a fresh Debian root.
FRESH_PKGS="debootstrap"

want="$PKGS"
case ${1:-} in
bench) want="$want $BENCH_PKGS" ;;
fresh) want="$want $FRESH_PKGS" ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting system daemons (postfix, dovecot, nsd)
# on the standard ports: youju's tests and benchmarks start their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
