/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A stream of sends through io_uring (struct kvmqg_uring): batched, lazy,
 * without a VM exit per message where the device has rings, and kept in
 * order across refusals with KVMQG_F_LINK.
 */
#ifndef KVMQ_URING_H
#define KVMQ_URING_H

#include <stdint.h>
#include <liburing.h>

#include "libkvmq.h"

/* Sends in flight at most. */
#define KVMQ_URING_DEPTH	32

struct kvmq_usend;

struct kvmq_usender {
	struct io_uring ring;
	struct kvmq *q;
	uint32_t dest, queue;
	struct kvmq_usend *slots;	/* KVMQ_URING_DEPTH, a FIFO */
	uint32_t head, tail;		/* oldest, next free; counts */
	uint32_t inflight;		/* submitted, no completion yet */
	uint64_t submitted;		/* through io_uring */
	uint64_t refused;		/* -EAGAIN, -ENOBUFS: resent, in order */
	uint64_t cancelled;		/* after a refusal: submitted again */
};

/*
 * Set up a ring and keep the calling thread on the CPU it runs on, so
 * that its sends share one submission ring.  0 or a negated errno.
 */
int kvmq_usender_init(struct kvmq_usender *u, struct kvmq *q, uint32_t dest,
		      uint32_t queue);
/*
 * Send @len bytes at @buf (KVMQ_MSG_BYTES), or the @nr pages or blocks
 * (@kind) at aperture offset @offset, one after the other, @len payload
 * bytes.  Returns once the send is submitted; a refusal is resent later,
 * in order.  0 or a negated errno: then the stream is broken.
 */
int kvmq_usender_send(struct kvmq_usender *u, uint32_t kind, uint64_t offset,
		      uint32_t nr, const void *buf, uint32_t len);
/* Wait until every send has succeeded.  0 or a negated errno. */
int kvmq_usender_flush(struct kvmq_usender *u);
/* Release the pages of the sends not done, and the ring. */
void kvmq_usender_exit(struct kvmq_usender *u);

#endif /* KVMQ_URING_H */
