/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Transports side by side: kvmq, a VMM relay, a shared-memory ring
 * (kvmq_xbench.c), for make bench.
 */
#ifndef SELFTEST_KVMQ_XBENCH_H
#define SELFTEST_KVMQ_XBENCH_H

#include <stdint.h>

struct xb_case {
	int transport;		/* 0 kvmq, 1 relay, 2 shmem */
	uint32_t kind;		/* KVMQ_MSG_BYTES, _PAGES or _BLOCKS */
	uint64_t size;		/* payload bytes per message */
	uint64_t n;		/* messages */
	int lazy;		/* kvmq: lazy bursts of 64, else a doorbell each */
	int halt;		/* the receiver halts until an interrupt */
	int touch;		/* both sides touch every byte */
};

struct xb_result {
	double msgs_per_s, bytes_per_s;
	double sender_exits_per_msg, receiver_exits_per_msg;
	double user_exits_per_msg;
	double flushes_per_page;
	double copied_per_byte;
};

void xbench_run(int dev, int group, const struct xb_case *c,
		struct xb_result *res);
const char *xbench_transport(int t);

#endif /* SELFTEST_KVMQ_XBENCH_H */
