// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq demo: the reference pipeline.  Three VMs, each in its own VMM
 * process, joined in one kvmq group: "read" sends a file as a stream of
 * messages (bytes, 4 KiB pages, 2 MiB blocks), "decode" transforms each
 * message and forwards it (pages go on without being copied), "play"
 * checksums what arrives.  The VMMs tell their guests who their peers are
 * by posting into their queues.  The pipeline runs twice: with the polled
 * hypercalls, then over rings (lazy sends, receive rings, receivers that
 * halt until an arrival interrupt).  Ends with a report of each, exits per
 * message side by side; exits 0 only if both times the bytes "play" saw
 * are exactly the decoded file and every page went back.
 *
 * Usage: kvmq_demo [messages]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include "kvm_util.h"
#include "kvmq_util.h"
#include "kvmq_pipeline.h"

#define NR_MSGS		2000

static const char *const pl_names[PL_NR_VMS] = { "read", "decode", "play" };

static bool report(const char *how, const struct kvmq_pipeline_report *r)
{
	uint64_t flushes = 0;
	int i;

	printf("\n%s\n%-7s %9s %11s %10s %10s %14s %12s\n", how, "vm",
	       "messages", "hypercalls", "VM exits", "exits/msg",
	       "exits to VMM", "TLB flushes");
	for (i = 0; i < PL_NR_VMS; i++) {
		printf("%-7s %9llu %11llu %10llu %10.3f %14llu %12llu\n",
		       pl_names[i], (unsigned long long)r->vm[i].messages,
		       (unsigned long long)r->vm[i].hypercalls,
		       (unsigned long long)r->vm[i].exits,
		       r->vm[i].messages ?
		       (double)r->vm[i].exits / r->vm[i].messages : 0,
		       (unsigned long long)r->vm[i].user_exits,
		       (unsigned long long)r->vm[i].tlb_flushes);
		flushes += r->vm[i].tlb_flushes;
	}
	printf("messages delivered   %llu (bytes %llu, pages %llu, "
	       "2 MiB blocks %llu)\n",
	       (unsigned long long)r->messages,
	       (unsigned long long)r->kinds[KVMQ_MSG_BYTES],
	       (unsigned long long)r->kinds[KVMQ_MSG_PAGES],
	       (unsigned long long)r->kinds[KVMQ_MSG_BLOCKS]);
	printf("payload bytes        %llu (expected %llu)\n",
	       (unsigned long long)r->bytes,
	       (unsigned long long)r->expect_bytes);
	printf("pages moved          %llu, without copying (expected %llu)\n",
	       (unsigned long long)r->pages_moved,
	       (unsigned long long)r->expect_pages_moved);
	printf("bytes copied         %llu (inline messages, both hops)\n",
	       (unsigned long long)r->bytes_copied);
	printf("unmaps               %llu for %llu page messages\n",
	       (unsigned long long)r->unmaps,
	       (unsigned long long)r->page_messages);
	printf("TLB flushes per page %.4f (KVM's remote_tlb_flush_requests, "
	       "all VMs)\n",
	       r->pages_moved ? (double)flushes / r->pages_moved : 0);
	printf("checksum             %#llx (expected %#llx)\n",
	       (unsigned long long)r->hash,
	       (unsigned long long)r->expect_hash);
	printf("pool pages after     %llu\n",
	       (unsigned long long)r->pool_pages_after);
	printf("%s\n", r->verified ? "verified: play received the decoded "
	       "file, in order" : "NOT verified");
	return r->verified;
}

int main(int argc, char **argv)
{
	uint32_t nr_msgs = argc > 1 ? strtoul(argv[1], NULL, 0) : NR_MSGS;
	struct kvmq_info info = { .size = sizeof(info) };
	struct kvmq_pipeline_report r, rr;
	bool ok;
	int dev;

	dev = kvmq_open_dev();
	TEST_ASSERT(!ioctl(dev, KVMQ_GET_INFO, &info), "KVMQ_GET_INFO");
	close(dev);
	printf("kvmq: ABI %u, hypercalls 0x%x..0x%x, features 0x%llx\n",
	       info.abi_version, info.hc_base,
	       info.hc_base + info.hc_count - 1,
	       (unsigned long long)info.features);
	printf("pipeline: read -> decode -> play, %u messages, "
	       "3 VMs in 3 VMM processes\n", nr_msgs);

	printf("\n1. polled hypercalls\n");
	kvmq_pipeline_run(nr_msgs, nr_msgs / 4 ? nr_msgs / 4 : 1, false, &r);
	printf("\n2. rings: lazy sends, receive rings, halting receivers\n");
	kvmq_pipeline_run(nr_msgs, nr_msgs / 4 ? nr_msgs / 4 : 1, true, &rr);

	ok = report("1. polled hypercalls", &r);
	ok = report("2. rings", &rr) && ok;
	printf("\nVM exits per message, polled -> rings: read %.3f -> %.3f, "
	       "decode %.3f -> %.3f, play %.3f -> %.3f\n",
	       (double)r.vm[0].exits / nr_msgs,
	       (double)rr.vm[0].exits / nr_msgs,
	       (double)r.vm[1].exits / nr_msgs,
	       (double)rr.vm[1].exits / nr_msgs,
	       (double)r.vm[2].exits / nr_msgs,
	       (double)rr.vm[2].exits / nr_msgs);
	printf("\n%s: %s\n", ok ? "PASS" : "FAIL",
	       ok ? "play received the decoded file, in order, both ways" :
	       "the pipeline did not deliver the decoded file");
	return ok ? 0 : 1;
}
