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
	/* send with a retry bound (kvmq_send_stream_retry()) */
	uint64_t retry_ms;	/* how long one message may be refused */
	uint64_t refused;	/* sends refused, each sent again */
	int refused_err;	/* the negated errno of the last refusal */
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
 * kvmq_send_stream(), but a message the destination refuses because it is
 * away (-ENOENT: no VM of that identity, or no such queue; -EACCES: no
 * grant) is sent again, after 10 ms, then twice as long each time up to
 * 1 s, until it is taken or it has been refused for @retry_ms.  The
 * pages of a refused message stay with the sender meanwhile.  Counts the
 * refusals in @x->refused, the last errno in @x->refused_err.
 */
int kvmq_send_stream_retry(struct kvmq *q, int fd, uint32_t dest,
			   uint32_t queue, uint32_t kind, uint32_t per_msg,
			   uint64_t retry_ms, struct kvmq_xfer *x);
/*
 * Receive from @queue and write the payloads to @fd, until the end marker
 * or @count messages (0: no limit).  The pages of each message are
 * released once written.  0 or a negated errno.
 */
int kvmq_recv_stream(struct kvmq *q, int fd, uint32_t queue, uint64_t count,
		     struct kvmq_xfer *x);

/*
 * Multiply the 16-bit little-endian samples of @len bytes at stream offset
 * @pos by @num/@den, clipping to the 16-bit range (C's division, toward
 * zero).  The first @skip bytes of the stream (a header) are left as they
 * are; samples count from there.  A sample split between two messages is
 * left as it is.
 */
void kvmq_pcm16_gain(uint8_t *p, uint64_t len, uint64_t pos, uint64_t skip,
		     int32_t num, int32_t den);
/* How kvmq_forward_stream() sends: each call submits one message. */
struct kvmq_sender {
	/* @len bytes at @buf, or @nr pages or blocks at aperture @offset */
	int (*send)(void *ctx, uint32_t kind, uint64_t offset, uint32_t nr,
		    const void *buf, uint32_t len);
	/* Wait until every message submitted went through. */
	int (*flush)(void *ctx);
	void *ctx;
};

/*
 * Receive from @queue until the end marker and send each message on to
 * @dest's @dest_queue, its 16-bit samples multiplied by @num/@den
 * (kvmq_pcm16_gain()): inline bytes are sent as bytes, and pages and
 * blocks move on in place, transformed in the pages they arrived in.
 * Then the end marker, once every message went through.  With @snd the
 * messages go through it, else one ioctl each.  0 or a negated errno.
 */
int kvmq_forward_stream(struct kvmq *q, uint32_t queue, uint32_t dest,
			uint32_t dest_queue, int32_t num, int32_t den,
			uint64_t skip, const struct kvmq_sender *snd,
			struct kvmq_xfer *x);

#endif /* KVMQ_XFER_H */
