#!/bin/sh
# make run: a working youju on unprivileged loopback ports, in the
# foreground. The first run creates the data dir (default ./var) with a
# config, a self-signed certificate, a domain and one account, and prints
# that account's password once. Later runs reuse the data dir.
set -eu
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DATA=${YOUJU_DATA_DIR:-./var}
DOMAIN=${YOUJU_DOMAIN:-example.test}
HOST=${YOUJU_HOSTNAME:-mail.$DOMAIN}
USER_ADDR=${YOUJU_USER:-you@$DOMAIN}

if [ ! -f "$DATA/youju.conf" ]; then
	"$BUILD/youju" init --data-dir "$DATA" --domain "$DOMAIN" --hostname "$HOST" --dev
	echo
	echo "Account $USER_ADDR (the password is shown only this once):"
	"$BUILD/youju" -d "$DATA" account add "$USER_ADDR" --generate-password
	echo
fi

echo "youju is starting with data dir $DATA. Listeners:"
"$BUILD/youju" -d "$DATA" config dump | grep '_listen = .' | sed 's/^/  /'
cat <<EOT

Try it:
  swaks --server 127.0.0.1:2525 --to $USER_ADDR --from someone@example.org
  $BUILD/youju -d $DATA msg list $USER_ADDR
  curl -k --ssl-reqd pop3://127.0.0.1:1110/ -u '$USER_ADDR:PASSWORD'
  curl -k --ssl-reqd 'imap://127.0.0.1:1143/INBOX;UID=1' -u '$USER_ADDR:PASSWORD'
Stop with Ctrl-C.

EOT
exec "$BUILD/youjud" -d "$DATA"
