# The README's commands. Everything else is in scripts/ and CMake.
BUILD ?= build
CMAKE_FLAGS ?=
PREFIX ?= /usr/local
# make install DESTDIR=dir lays the files out under dir (for packages);
# FORCE=1 replaces another MTA's sendmail and mailq.
DESTDIR ?=
FORCE ?=

.PHONY: all deps build run test unit install bench clean

all: build

deps:
	@scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j2 -- --no-print-directory

run: deps build
	@scripts/run.sh

test: deps build
	@scripts/test.sh

unit: build
	@cd $(BUILD) && ctest --output-on-failure

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix $(PREFIX)
	@scripts/install-sendmail.sh "$(DESTDIR)" "$(PREFIX)/sbin/youju" "$(FORCE)"

bench: build
	@scripts/deps.sh bench
	@bench/run-all

clean:
	rm -rf $(BUILD) build-*
