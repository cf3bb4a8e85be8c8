/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Files over kvmq: a stream of messages, then an empty bytes message that
 * marks the end.
 */
#ifndef KVMQ_XFER_H
#define KVMQ_XFER_H

#include <stdint.h>

#include "libkvmq.h"

struct kvmq_xfer {
	uint64_t msgs;		/* messages with payload, the end not counted */
	uint64_t bytes;		/* payload bytes */
	int end;		/* recv: the end marker arrived */
	const char *what;	/* on failure: the step that failed */
};

/*
 * Send what @fd reads to @dest's @queue: bytes messages of up to
 * KVMQ_MSG_BYTES_MAX bytes, or messages of @per_msg pages or blocks
 * (@kind), allocated, filled through the mapping, sent; the last one
 * carries the remainder, in as many pages or blocks as it needs.  Then the
 * end marker.  0 or a negated errno.
 */
int kvmq_send_stream(struct kvmq *q, int fd, uint32_t dest, uint32_t queue,
		     uint32_t kind, uint32_t per_msg, struct kvmq_xfer *x);
/*
 * Receive from @queue and write the payloads to @fd, until the end marker
 * or @count messages (0: no limit).  The pages of each message are
 * released once written.  0 or a negated errno.
 */
int kvmq_recv_stream(struct kvmq *q, int fd, uint32_t queue, uint64_t count,
		     struct kvmq_xfer *x);

#endif /* KVMQ_XFER_H */
