/* libFuzzer target for the config file parser (youju.conf) and the
 * mynetworks CIDR list parser: any text gives a result or a one-line
 * error, never a crash. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/config.h"
#include "net/listen.h"

#define FUZZ_CHECK(x) do { if (!(x)) abort(); } while (0)

static void
fuzz_config(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct yj_err err;
	char path[64];
	int fd = memfd_create("youju.conf", 0);

	if (fd < 0)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	config_init(&cfg, "/nonexistent");
	err.msg[0] = '\0';
	if (config_load(&cfg, path, &err) < 0 || config_finish(&cfg, &err) < 0)
		FUZZ_CHECK(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
	config_free(&cfg);
	close(fd);
}

static void
fuzz_cidr(const uint8_t *data, size_t size)
{
	char *list = malloc(size + 1);
	struct yj_err err;

	memcpy(list, data, size);
	list[size] = '\0';
	if (cidr_list_check(list, &err) == 1) {
		FUZZ_CHECK(cidr_list_match(list, "127.0.0.1", &err) >= 0);
		FUZZ_CHECK(cidr_list_match(list, "2001:db8::1", &err) >= 0);
		FUZZ_CHECK(cidr_list_match(list, "::ffff:192.0.2.1", &err) >= 0);
	}
	free(list);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 65536)
		return 0;
	if (data[0] & 1)
		fuzz_config(data + 1, size - 1);
	else
		fuzz_cidr(data + 1, size - 1);
	return 0;
}
