#!/bin/sh
# make test: every test there is. Unit tests (CTest), integration tests
# against a real youjud (pytest) on SQLite and on PostgreSQL, the same
# again (SQLite) under AddressSanitizer and UndefinedBehaviorSanitizer,
# then a short run of every fuzz target.
#
# The three integration passes and the fuzz targets run at once, each
# pass with its own share of the test ports (YOUJU_TEST_PORTS): a test
# spends most of its time waiting for youjud, a client or a timeout, so
# side by side they take little longer than the longest of them. Each
# one's output is printed whole when all are done, with a pass's slowest
# tests.
set -eu
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
BUILD=${BUILD:-build}
FAILED=""
LOGS=$(mktemp -d /tmp/youju-make-test-XXXXXX)
PASSES=""

section() { printf '\n==== %s\n' "$*"; }

# integration NAME BUILD PORTS [VAR=VALUE ...]: starts a pass in the
# background; its output goes to $LOGS/NAME.log, its status to NAME.rc.
integration() {
	name=$1 build=$2 ports=$3
	shift 3
	PASSES="$PASSES $name"
	echo "integration tests ($name): started $(date +%T)"
	(
		rc=0
		env "$@" YOUJU_BUILD="$PWD/$build" YOUJU_TEST_PORTS="$ports" \
			$PY -m pytest -q -p no:cacheprovider --durations=15 tests/integration \
			>"$LOGS/$name.log" 2>&1 || rc=$?
		echo "$rc" >"$LOGS/$name.rc"
	) &
}

unit() {
	section "unit tests ($1)"
	(cd "$1" && ctest --output-on-failure) || FAILED="$FAILED unit($1)"
}

unit "$BUILD"
section "integration tests on SQLite and PostgreSQL ($BUILD)"
integration sqlite "$BUILD" 20000-24199
# The store's other driver: every youjud of the suite on PostgreSQL (the
# unit tests ran on it already, as ctest's test-store-postgresql).
integration postgresql "$BUILD" 24200-28399 YOUJU_STORE_DRIVER=postgresql

section "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DYOUJU_SANITIZE=ON >/dev/null
cmake --build build-asan -j2 >/dev/null
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
unit build-asan
section "integration tests on SQLite (build-asan)"
integration sqlite-asan build-asan 28400-32767

echo "fuzz targets: started $(date +%T)"
(
	rc=0
	scripts/fuzz.sh >"$LOGS/fuzz.log" 2>&1 || rc=$?
	echo "$rc" >"$LOGS/fuzz.rc"
) &

wait
for name in $PASSES; do
	section "integration tests ($name)"
	cat "$LOGS/$name.log"
	[ "$(cat "$LOGS/$name.rc" 2>/dev/null)" = 0 ] || FAILED="$FAILED integration($name)"
done
section "fuzz targets"
cat "$LOGS/fuzz.log"
[ "$(cat "$LOGS/fuzz.rc" 2>/dev/null)" = 0 ] || FAILED="$FAILED fuzz"
rm -rf "$LOGS"

if [ -n "$FAILED" ]; then
	section "FAILED:$FAILED"
	exit 1
fi
section "all tests passed"
