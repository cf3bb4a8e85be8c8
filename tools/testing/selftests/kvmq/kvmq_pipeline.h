/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The reference pipeline: a "read" VM sends a file, a "decode" VM
 * transforms it and forwards it, a "play" VM checksums it.  Each VM runs in
 * its own VMM process; the processes share a kvmq group.  Shared by the
 * pipeline test and the demo.
 */
#ifndef SELFTEST_KVMQ_PIPELINE_H
#define SELFTEST_KVMQ_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

enum { PL_READ, PL_DECODE, PL_PLAY, PL_NR_VMS };

/* What one VMM process reports about its VM. */
struct kvmq_pipeline_vm {
	uint64_t tlb_flushes;	/* KVM's remote_tlb_flush_requests */
	uint64_t hypercalls;	/* KVM's hypercalls statistic */
	uint64_t user_exits;	/* KVM_RUN returns to the VMM */
	uint64_t exits;		/* VM exits (KVM's statistic) */
	uint64_t messages;	/* messages the guest handled */
};

struct kvmq_pipeline_report {
	uint64_t messages;	/* messages "play" received */
	uint64_t kinds[4];	/* of them, by KVMQ_MSG_* kind */
	uint64_t bytes;		/* payload bytes "play" checksummed */
	uint64_t hash, expect_hash;
	uint64_t expect_bytes;
	uint64_t expect_pages_moved, expect_bytes_copied, page_messages;
	uint64_t pages_moved, bytes_copied, unmaps;	/* kvmq's counters */
	uint64_t pool_pages_after;
	struct kvmq_pipeline_vm vm[PL_NR_VMS];
	bool verified;
};

/*
 * Run @nr_msgs messages through the pipeline.  With @progress, print a line
 * every @progress messages.  With @rings, the VMs use rings: lazy linked
 * sends, receive rings, halting receivers woken by interrupts; else the
 * polled hypercalls.  Returns when all three VMMs have exited.
 */
void kvmq_pipeline_run(uint32_t nr_msgs, uint32_t progress, bool rings,
		       struct kvmq_pipeline_report *r);

#endif /* SELFTEST_KVMQ_PIPELINE_H */
