#!/bin/sh
# install-sendmail.sh DESTDIR YOUJU FORCE: makes /usr/sbin/sendmail and
# /usr/bin/mailq links to YOUJU (its installed path), under DESTDIR.
# Another MTA's sendmail or mailq (anything that is not already such a
# link) is left alone, with a word about it, unless FORCE is 1.
set -eu

destdir=$1
youju=$2
force=${3:-}
status=0

for link in /usr/sbin/sendmail /usr/bin/mailq; do
	path=$destdir$link
	mkdir -p "$(dirname "$path")"
	if [ -L "$path" ] && [ "$(readlink "$path")" = "$youju" ]; then
		echo "install: $path -> $youju (already)"
		continue
	fi
	if [ -e "$path" ] || [ -L "$path" ]; then
		if [ "$force" != 1 ]; then
			what=$path
			[ -L "$path" ] && what="$path -> $(readlink "$path")"
			echo "install: $what belongs to another MTA; left alone" \
				"(make install FORCE=1 replaces it)" >&2
			status=1
			continue
		fi
		echo "install: replacing $path (FORCE=1)"
	fi
	ln -sfn "$youju" "$path"
	echo "install: $path -> $youju"
done
# Not an error for make: youju itself is installed; the note says why
# the system's sendmail is not youju's.
[ "$status" -eq 0 ] || echo "install: youju's sendmail is $youju sendmail" >&2
exit 0
