// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq-gain: the "decode" stage of the pipeline's relay baseline, where the
 * stream goes from guest to guest through the VMMs (virtio-serial ports
 * joined by a socket) instead of kvmq.
 *
 *   kvmq-gain NUM/DEN SKIP BYTES <IN >OUT
 *
 * copies BYTES bytes from standard input to standard output, multiplying
 * the 16-bit samples after the first SKIP bytes by NUM/DEN, clipped: the
 * same transform as "kvmq forward --gain NUM/DEN --skip SKIP", by the same
 * function.  A port gives no end of file when its peer is done, so the
 * length is given.  It works in whole chunks, so that no sample is split
 * between two of them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "xfer.h"

#define CHUNK	(256 << 10)

static uint8_t buf[CHUNK];

/* Fill @len bytes of @p from @fd; the count read, short only at its end. */
static ssize_t read_full(int fd, uint8_t *p, size_t len)
{
	size_t done = 0;
	ssize_t r;

	while (done < len) {
		r = read(fd, p + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (!r)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int write_full(int fd, const uint8_t *p, size_t len)
{
	ssize_t r;

	while (len) {
		r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	uint64_t skip, total, pos = 0;
	int32_t num, den;
	size_t want;
	ssize_t r;

	if (argc != 4 || kvmq_parse_gain(argv[1], &num, &den) ||
	    kvmq_parse_u64(argv[2], &skip) || kvmq_parse_u64(argv[3], &total)) {
		fprintf(stderr, "usage: kvmq-gain NUM/DEN SKIP BYTES <IN >OUT\n");
		return 2;
	}
	/* Chunks start at even offsets after the header. */
	if (skip & 1) {
		fprintf(stderr, "kvmq-gain: SKIP must be even\n");
		return 2;
	}
	while (pos < total) {
		want = total - pos < CHUNK ? (size_t)(total - pos) : CHUNK;
		r = read_full(0, buf, want);
		if (r < 0) {
			fprintf(stderr, "kvmq-gain: read: %s\n", strerror(errno));
			return 1;
		}
		kvmq_pcm16_gain(buf, (uint64_t)r, pos, skip, num, den);
		if (write_full(1, buf, (size_t)r)) {
			fprintf(stderr, "kvmq-gain: write: %s\n", strerror(errno));
			return 1;
		}
		pos += (uint64_t)r;
		if ((size_t)r < want) {
			fprintf(stderr, "kvmq-gain: end of input after %llu of %llu bytes\n",
				(unsigned long long)pos,
				(unsigned long long)total);
			return 1;
		}
	}
	return 0;
}
