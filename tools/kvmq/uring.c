// SPDX-License-Identifier: GPL-2.0
/*
 * A stream of sends through io_uring.
 *
 * Every send carries KVMQG_F_LINK, so the driver ties each to the one
 * before in the vCPU's submission ring: when the destination refuses one
 * (-EAGAIN, -ENOBUFS: its queue is full), those after it complete with
 * -ECANCELED instead of overtaking it.  The sender then waits for all of
 * them, resends the refused one with the blocking ioctl, which waits for
 * room, and submits the cancelled ones again: the stream stays in order.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "uring.h"

enum {
	KVMQ_USEND_FREE,
	KVMQ_USEND_FLYING,	/* submitted, no completion yet */
	KVMQ_USEND_DONE,	/* completed with res */
};

struct kvmq_usend {
	struct kvmqg_send s;	/* read by the driver until the completion */
	uint64_t offsets[KVMQ_MSG_PAGES_MAX];
	uint8_t bytes[KVMQ_MSG_BYTES_MAX];
	int state;
	int res;
};

static struct kvmq_usend *kvmq_uslot(struct kvmq_usender *u, uint32_t i)
{
	return &u->slots[i % KVMQ_URING_DEPTH];
}

int kvmq_usender_init(struct kvmq_usender *u, struct kvmq *q, uint32_t dest,
		      uint32_t queue)
{
	cpu_set_t set;
	int cpu, ret;

	memset(u, 0, sizeof(*u));
	u->q = q;
	u->dest = dest;
	u->queue = queue;
	cpu = sched_getcpu();
	if (cpu < 0)
		return -errno;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return -errno;
	u->slots = calloc(KVMQ_URING_DEPTH, sizeof(*u->slots));
	if (!u->slots)
		return -ENOMEM;
	ret = io_uring_queue_init(KVMQ_URING_DEPTH, &u->ring, 0);
	if (ret) {
		free(u->slots);
		u->slots = NULL;
	}
	return ret;
}

static int kvmq_usender_submit(struct kvmq_usender *u, uint32_t i,
			       uint32_t flags)
{
	struct kvmq_usend *e = kvmq_uslot(u, i);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	struct kvmqg_uring *c;
	int ret;

	if (!sqe)
		return -EBUSY;
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, u->q->fd, NULL, 0, 0);
	sqe->cmd_op = KVMQG_SEND;
	c = (struct kvmqg_uring *)sqe->cmd;
	memset(c, 0, sizeof(*c));
	c->arg = (uintptr_t)&e->s;
	io_uring_sqe_set_data64(sqe, i);
	e->s.flags = KVMQG_F_LINK | flags;
	e->state = KVMQ_USEND_FLYING;
	ret = io_uring_submit(&u->ring);
	if (ret < 0)
		return ret;
	if (ret != 1)
		return -EIO;
	u->inflight++;
	u->submitted++;
	return 0;
}

/* Take one completion, waiting for it with @wait: 1 if taken, 0 if none. */
static int kvmq_usender_reap(struct kvmq_usender *u, int wait)
{
	struct io_uring_cqe *cqe;
	struct kvmq_usend *e;
	int ret;

	do {
		ret = wait ? io_uring_wait_cqe(&u->ring, &cqe) :
			     io_uring_peek_cqe(&u->ring, &cqe);
	} while (ret == -EINTR);
	if (ret == -EAGAIN && !wait)
		return 0;
	if (ret)
		return ret;
	e = kvmq_uslot(u, (uint32_t)cqe->user_data);
	e->res = cqe->res;
	io_uring_cqe_seen(&u->ring, cqe);
	if (e->state != KVMQ_USEND_FLYING)
		return -EPROTO;
	e->state = KVMQ_USEND_DONE;
	u->inflight--;
	return 1;
}

/* After a refusal at the head: resend it, then the cancelled ones. */
static int kvmq_usender_resend(struct kvmq_usender *u)
{
	struct kvmq_usend *e;
	uint32_t i;
	int ret;

	while (u->inflight) {
		ret = kvmq_usender_reap(u, 1);
		if (ret < 0)
			return ret;
	}
	for (i = u->head; i != u->tail; i++) {
		e = kvmq_uslot(u, i);
		/* One after the refused one went through: order is lost. */
		if (!e->res)
			return -EPROTO;
		if (e->res != -EAGAIN && e->res != -ENOBUFS &&
		    e->res != -ECANCELED)
			return e->res;
	}
	e = kvmq_uslot(u, u->head);
	e->s.flags = 0;
	do {
		ret = ioctl(u->q->fd, KVMQG_SEND, &e->s) ? -errno : 0;
	} while (ret == -EINTR);
	if (ret)
		return ret;
	u->refused++;
	e->state = KVMQ_USEND_FREE;
	u->head++;
	for (i = u->head; i != u->tail; i++) {
		/* The chain behind the refused one is broken: a new one. */
		ret = kvmq_usender_submit(u, i, i == u->head ?
					  KVMQG_F_CHAIN_START : 0);
		if (ret)
			return ret;
		u->cancelled++;
	}
	return 0;
}

/* Retire the sends at the head that succeeded; resend after a refusal. */
static int kvmq_usender_advance(struct kvmq_usender *u)
{
	struct kvmq_usend *e;

	while (u->head != u->tail) {
		e = kvmq_uslot(u, u->head);
		if (e->state != KVMQ_USEND_DONE)
			return 0;
		if (e->res) {
			if (e->res != -EAGAIN && e->res != -ENOBUFS &&
			    e->res != -ECANCELED)
				return e->res;
			return kvmq_usender_resend(u);
		}
		e->state = KVMQ_USEND_FREE;
		u->head++;
	}
	return 0;
}

int kvmq_usender_send(struct kvmq_usender *u, uint32_t kind, uint64_t offset,
		      uint32_t nr, const void *buf, uint32_t len)
{
	uint64_t unit = kvmq_unit(kind);
	struct kvmq_usend *e;
	uint32_t i;
	int ret;

	if (kind == KVMQ_MSG_BYTES ? len > KVMQ_MSG_BYTES_MAX :
	    !unit || !nr || nr > KVMQ_MSG_PAGES_MAX)
		return -EINVAL;
	while (u->tail - u->head == KVMQ_URING_DEPTH) {
		ret = kvmq_usender_reap(u, 1);
		if (ret < 0)
			return ret;
		ret = kvmq_usender_advance(u);
		if (ret)
			return ret;
	}

	e = kvmq_uslot(u, u->tail);
	memset(&e->s, 0, sizeof(e->s));
	e->s.size = sizeof(e->s);
	e->s.dest = u->dest;
	e->s.queue = u->queue;
	e->s.kind = kind;
	e->s.len = len;
	if (kind == KVMQ_MSG_BYTES) {
		memcpy(e->bytes, buf, len);
		e->s.data = (uintptr_t)e->bytes;
	} else {
		for (i = 0; i < nr; i++)
			e->offsets[i] = offset + i * unit;
		e->s.nr = nr;
		e->s.data = (uintptr_t)e->offsets;
	}
	ret = kvmq_usender_submit(u, u->tail++, 0);
	if (ret)
		return ret;

	/* Retire what completed meanwhile, without waiting. */
	while ((ret = kvmq_usender_reap(u, 0)) > 0)
		;
	return ret < 0 ? ret : kvmq_usender_advance(u);
}

int kvmq_usender_flush(struct kvmq_usender *u)
{
	int ret;

	while (u->head != u->tail) {
		ret = kvmq_usender_advance(u);
		if (ret)
			return ret;
		if (u->head == u->tail)
			break;
		ret = kvmq_usender_reap(u, 1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void kvmq_usender_exit(struct kvmq_usender *u)
{
	struct kvmq_usend *e;

	if (!u->slots)
		return;
	while (u->inflight && kvmq_usender_reap(u, 1) > 0)
		;
	/* What did not go: the file still holds its pages. */
	for (; u->head != u->tail; u->head++) {
		e = kvmq_uslot(u, u->head);
		if (e->state == KVMQ_USEND_DONE && e->res &&
		    e->s.kind != KVMQ_MSG_BYTES)
			kvmq_release(u->q, e->offsets[0],
				     kvmq_unit_pages(e->s.kind, e->s.nr));
	}
	io_uring_queue_exit(&u->ring);
	free(u->slots);
	u->slots = NULL;
}
