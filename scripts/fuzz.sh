#!/bin/sh
# Builds the libFuzzer targets with clang and runs each one for a while,
# starting from a copy of its seed corpus (the repository is not written).
# Fails if a target does not build or finds a crash, leak or timeout.
#
# Usage: scripts/fuzz.sh [fuzz-NAME ...]   (default: every tests/fuzz/fuzz-*.c)
# Environment: FUZZ_SECONDS  seconds per target (default 10)
#              FUZZ_BUILD    build directory (default build-fuzz)
# Crashing inputs are kept in $FUZZ_BUILD/fuzz-artifacts/<target>/.
set -eu

cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-10}
build=${FUZZ_BUILD:-build-fuzz}

if [ $# -gt 0 ]; then
	targets="$*"
else
	targets=""
	for src in tests/fuzz/fuzz-*.c; do
		[ -e "$src" ] || continue
		targets="$targets $(basename "$src" .c)"
	done
fi
if [ -z "$targets" ]; then
	echo "fuzz: no targets in tests/fuzz/" >&2
	exit 1
fi

CC=clang cmake -S . -B "$build" -DYOUJU_FUZZ=ON >/dev/null
# With YOUJU_FUZZ the programs and unit tests are instrumented too; only
# the fuzz targets are needed here.
# shellcheck disable=SC2086
if ! cmake --build "$build" -j"$(nproc)" --target $targets; then
	echo "fuzz: build failed" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/youju-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# run_target NAME: fuzzes one target; returns non-zero if it failed.
run_target() {
	name=$1
	corpus="$work/corpus-$name"
	artifacts="$build/fuzz-artifacts/$name"
	log="$work/$name.log"

	mkdir -p "$corpus" "$artifacts"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -R "tests/fuzz/corpus/$name/." "$corpus/"
	fi
	set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$artifacts/"
	if [ -f "tests/fuzz/$name.dict" ]; then
		set -- "$@" -dict="tests/fuzz/$name.dict"
	fi
	echo "fuzz: $name: ${seconds}s"
	if "$build/$name" "$@" "$corpus" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "fuzz: $name: ok, ${runs:-?} runs"
		return 0
	fi
	tail -n 60 "$log" >&2
	echo "fuzz: $name: FAILED (inputs kept in $artifacts/)" >&2
	return 1
}

failed=""
for name in $targets; do
	run_target "$name" || failed="$failed $name"
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
echo "fuzz: all targets ok"
