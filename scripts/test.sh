#!/bin/sh
# make test: every test there is. Unit tests (CTest), integration tests
# against a real youjud (pytest) on SQLite and on PostgreSQL, the same
# again (SQLite) under AddressSanitizer
# and UndefinedBehaviorSanitizer, then a short run of every fuzz target.
set -eu
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
BUILD=${BUILD:-build}
FAILED=""

section() { printf '\n==== %s\n' "$*"; }

run_suite() {
	build=$1
	section "unit tests ($build)"
	(cd "$build" && ctest --output-on-failure) || FAILED="$FAILED unit($build)"
	section "integration tests ($build)"
	YOUJU_BUILD="$PWD/$build" $PY -m pytest -q -p no:cacheprovider tests/integration ||
		FAILED="$FAILED integration($build)"
}

run_suite "$BUILD"

# The store's other driver: every youjud of the suite on PostgreSQL (the
# unit tests ran on it already, as ctest's test-store-postgresql).
section "integration tests on PostgreSQL ($BUILD)"
YOUJU_STORE_DRIVER=postgresql YOUJU_BUILD="$PWD/$BUILD" $PY -m pytest -q -p no:cacheprovider \
	tests/integration || FAILED="$FAILED integration-postgresql($BUILD)"

section "sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DYOUJU_SANITIZE=ON >/dev/null
cmake --build build-asan -j2 >/dev/null
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
run_suite build-asan

section "fuzz targets"
scripts/fuzz.sh || FAILED="$FAILED fuzz"

if [ -n "$FAILED" ]; then
	section "FAILED:$FAILED"
	exit 1
fi
section "all tests passed"
