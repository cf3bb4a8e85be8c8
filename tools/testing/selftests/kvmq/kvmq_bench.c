// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq benchmark: the cost of a message by kind and size, side by side in
 * one run, between two VMs of one VMM.  The sender touches each page it
 * sends (one byte per 4 KiB), the receiver reads one byte per 4 KiB and
 * gives the pages back.  Figures that do not depend on the machine:
 * unmaps per message, KVM TLB flushes per page moved, bytes copied.  Times
 * are printed too, but only their ratios within one run mean anything.
 *
 * Not a test: it asserts only that every message arrived intact.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(32ULL << 20)
#define DEPTH		64

static void bench_send(uint64_t gva, uint64_t gpa, uint64_t kind,
		       uint64_t nr, uint64_t n)
{
	uint64_t unit = kind == KVMQ_MSG_BLOCKS ? SZ_2M : PG;
	uint64_t len = kind == KVMQ_MSG_BYTES ? nr : nr * unit;
	struct kvmq_msg *m = (void *)gva;
	uint64_t i, j;
	int64_t ret;

	for (i = 0; i < n; i++) {
		memset(m, 0, offsetof(struct kvmq_msg, data));
		m->kind = kind;
		m->len = len;
		if (kind == KVMQ_MSG_BYTES) {
			m->data[0] = i;
		} else {
			m->nr = nr;
			for (j = 0; j < len; j += PG)
				*(volatile uint8_t *)(AP + j) = i;
			for (j = 0; j < nr; j++)
				m->gpas[j] = AP + j * unit;
		}
		while ((ret = kvmq_hc(KVMQ_HC_SEND, 2, 0, gpa)) == -EAGAIN)
			GUEST_SYNC(0);
		GUEST_ASSERT_EQ(ret, 0);
	}
	GUEST_DONE();
}

static void bench_recv(uint64_t gva, uint64_t gpa, uint64_t n)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t i, j, pages;
	int64_t ret;

	for (i = 0; i < n; i++) {
		while ((ret = kvmq_hc(KVMQ_HC_RECV, 0, gpa, 0)) == -EAGAIN)
			GUEST_SYNC(0);
		GUEST_ASSERT_EQ(ret, 0);
		GUEST_ASSERT_EQ(m->sender, 1);
		if (m->kind == KVMQ_MSG_BYTES) {
			GUEST_ASSERT_EQ(m->data[0], (uint8_t)i);
			continue;
		}
		for (j = 0; j < m->len; j += PG)
			GUEST_ASSERT_EQ(*(volatile uint8_t *)(m->gpa + j),
					(uint8_t)i);
		pages = m->len / PG;
		GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_RELEASE, m->gpa, pages, 0),
				pages);
	}
	GUEST_DONE();
}

struct bench_case {
	const char *name;
	uint32_t kind, nr, n;
};

static const struct bench_case cases[] = {
	{ "bytes 2048",		KVMQ_MSG_BYTES, 2048, 512 },
	{ "bytes 64",		KVMQ_MSG_BYTES, 64, 512 },
	{ "pages 1",		KVMQ_MSG_PAGES, 1, 512 },
	{ "pages 16",		KVMQ_MSG_PAGES, 16, 256 },
	{ "pages 256",		KVMQ_MSG_PAGES, 256, 32 },
	{ "blocks 1 (2 MiB)",	KVMQ_MSG_BLOCKS, 1, 32 },
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	int dev = kvmq_open_dev(), group = kvmq_create_group(dev);
	double base_kib = 0;
	unsigned int c;

	printf("%-17s %6s %10s %10s %9s %11s %12s %10s\n", "message", "count",
	       "us/msg", "us/KiB", "KiB ratio", "unmaps/msg", "flushes/page",
	       "copied/msg");
	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		const struct bench_case *bc = &cases[c];
		uint64_t unmaps, flushes, copied, moved, kib;
		struct kvmq_peer a, b;
		bool done[2] = { false, false };
		struct ucall uc;
		double t;
		int i;

		kvmq_peer_create(&a, dev, group, 1, bench_send, AP_LEN, AP_LEN,
				 DEPTH);
		kvmq_peer_create(&b, dev, group, 2, bench_recv, AP_LEN, AP_LEN,
				 DEPTH);
		kvmq_grant(b.vmq, 0, 1);
		vcpu_args_set(a.vcpu, 5, a.msg_gva, a.msg_gpa, bc->kind, bc->nr,
			      bc->n);
		vcpu_args_set(b.vcpu, 3, b.msg_gva, b.msg_gpa, bc->n);

		unmaps = kvmq_debugfs_stat("unmaps");
		copied = kvmq_debugfs_stat("bytes_copied");
		moved = kvmq_debugfs_stat("pages_moved");
		flushes = vm_get_stat(a.vm, "remote_tlb_flush_requests");
		t = now();
		while (!done[0] || !done[1]) {
			for (i = 0; i < 2; i++) {
				struct kvmq_peer *p = i ? &b : &a;

				if (!done[i] &&
				    kvmq_run(p->vcpu, &uc) == UCALL_DONE)
					done[i] = true;
			}
		}
		t = (now() - t) * 1e6 / bc->n;
		flushes = vm_get_stat(a.vm, "remote_tlb_flush_requests") -
			  flushes;
		unmaps = kvmq_debugfs_stat("unmaps") - unmaps;
		copied = kvmq_debugfs_stat("bytes_copied") - copied;
		moved = kvmq_debugfs_stat("pages_moved") - moved;
		kib = bc->kind == KVMQ_MSG_BYTES ? bc->nr :
		      bc->nr * (bc->kind == KVMQ_MSG_BLOCKS ? SZ_2M : PG);
		/* The first case, 2 KiB inline, is the reference. */
		if (!c)
			base_kib = t / (kib / 1024.0);
		printf("%-17s %6u %10.1f %10.2f %9.2f %11.2f %12.4f %10llu\n",
		       bc->name, bc->n, t, t / (kib / 1024.0),
		       t / (kib / 1024.0) / base_kib,
		       (double)unmaps / bc->n,
		       moved ? (double)flushes / moved : 0.0,
		       (unsigned long long)(copied / bc->n));
		kvmq_peer_destroy(&a);
		kvmq_peer_destroy(&b);
	}
	printf("\nKiB ratio: cost per KiB relative to 2048-byte inline "
	       "messages (same run).\n");
	close(group);
	close(dev);
	return 0;
}
