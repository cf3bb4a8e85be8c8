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
#include "kvmq_xbench.h"

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
		while ((ret = kvmq_hc(KVMQ_HC_SEND, 2, 0, gpa)) == -EAGAIN ||
		       ret == -ENOBUFS)
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

/* Transports compared, per kind and size (kvmq_xbench.c). */
static const struct {
	uint32_t kind;
	uint64_t size, n;
} xsizes[] = {
	{ KVMQ_MSG_BYTES, 64, 1024 },
	{ KVMQ_MSG_PAGES, 4096, 256 },
	{ KVMQ_MSG_PAGES, 65536, 64 },
	{ KVMQ_MSG_BLOCKS, 2 << 20, 8 },
};

static const char *const kname[] = { "", "bytes", "pages", "blocks" };

/*
 * The variants run per size: transport, lazy, halt, touch; and which of
 * them kvmq's records compare with (the relay and the shared ring with the
 * same receiver and touch, the shared ring polling when kvmq's receiver
 * halts: it has no way to wake one).
 */
static const struct {
	int transport, lazy, halt, touch, relay, shmem;
} xv[] = {
	{ 0, 0, 0, 0, 2, 3 },	/* kvmq immediate */
	{ 0, 1, 0, 0, 2, 3 },	/* kvmq lazy */
	{ 1, 0, 0, 0, -1, -1 },	/* relay */
	{ 2, 0, 0, 0, -1, -1 },	/* shmem */
	{ 0, 1, 1, 0, 5, 3 },	/* kvmq lazy, halting receiver */
	{ 1, 0, 1, 0, -1, -1 },	/* relay, halting receiver */
	{ 0, 1, 0, 1, 7, 8 },	/* kvmq lazy, every byte touched */
	{ 1, 0, 0, 1, -1, -1 },	/* relay, every byte touched */
	{ 2, 0, 0, 1, -1, -1 },	/* shmem, every byte touched */
};

#define XV	ARRAY_SIZE(xv)

static void xbench(int dev, int group, const char *json)
{
	struct xb_result r[ARRAY_SIZE(xsizes)][XV];
	struct xb_case c[ARRAY_SIZE(xsizes)][XV];
	unsigned int i, j;
	FILE *f = NULL;

	for (i = 0; i < ARRAY_SIZE(xsizes); i++) {
		for (j = 0; j < XV; j++) {
			c[i][j] = (struct xb_case){
				.transport = xv[j].transport,
				.kind = xsizes[i].kind,
				.size = xsizes[i].size,
				.n = xsizes[i].n,
				.lazy = xv[j].lazy,
				.halt = xv[j].halt,
				.touch = xv[j].touch,
			};
			xbench_run(dev, group, &c[i][j], &r[i][j]);
		}
	}

	printf("\n%-9s %-7s %-10s %-5s %-5s %6s %10s %10s %8s %8s %8s %9s %6s %7s %7s\n",
	       "transport", "kind", "policy", "recv", "touch", "msgs",
	       "msgs/s", "MB/s", "ex/msg S", "ex/msg R", "user/msg",
	       "fl/page", "copy/B", "x relay", "x shmem");
	if (json) {
		f = fopen(json, "w");
		TEST_ASSERT(f, "cannot write %s", json);
		fprintf(f, "{\n  \"results\": [\n");
	}
	for (i = 0; i < ARRAY_SIZE(xsizes); i++) {
		for (j = 0; j < XV; j++) {
			const struct xb_case *cc = &c[i][j];
			const struct xb_result *rr = &r[i][j];
			const char *policy = cc->transport ? "-" :
					     cc->lazy ? "lazy" : "immediate";
			const char *recv = cc->halt ? "halt" : "poll";
			const char *touch = cc->touch ? "all" : "word";
			bool kv = xv[j].relay >= 0;
			double rel = kv ? rr->msgs_per_s /
				     r[i][xv[j].relay].msgs_per_s : 0;
			double shm = kv ? rr->msgs_per_s /
				     r[i][xv[j].shmem].msgs_per_s : 0;

			printf("%-9s %-7s %-10s %-5s %-5s %6lu %10.0f %10.2f %8.3f %8.3f %8.3f %9.4f %6.2f",
			       xbench_transport(cc->transport), kname[cc->kind],
			       policy, recv, touch, cc->n, rr->msgs_per_s,
			       rr->bytes_per_s / 1e6,
			       rr->sender_exits_per_msg,
			       rr->receiver_exits_per_msg,
			       rr->user_exits_per_msg, rr->flushes_per_page,
			       rr->copied_per_byte);
			if (kv)
				printf(" %7.2f %7.2f", rel, shm);
			printf("\n");
			if (!f)
				continue;
			fprintf(f, "    {\"transport\": \"%s\", \"kind\": \"%s\", \"size\": %lu, "
				"\"policy\": \"%s\", \"receiver\": \"%s\", \"touch\": \"%s\", "
				"\"messages\": %lu, "
				"\"msgs_per_s\": %.1f, \"bytes_per_s\": %.1f, "
				"\"exits_per_msg\": %.4f, \"sender_exits_per_msg\": %.4f, "
				"\"receiver_exits_per_msg\": %.4f, \"user_exits_per_msg\": %.4f, "
				"\"flushes_per_page\": %.5f, \"copied_per_byte\": %.3f",
				xbench_transport(cc->transport), kname[cc->kind],
				cc->size, policy, recv, touch, cc->n,
				rr->msgs_per_s, rr->bytes_per_s,
				rr->sender_exits_per_msg +
				rr->receiver_exits_per_msg,
				rr->sender_exits_per_msg,
				rr->receiver_exits_per_msg,
				rr->user_exits_per_msg, rr->flushes_per_page,
				rr->copied_per_byte);
			if (kv)
				fprintf(f, ", \"ratio_relay\": %.3f, \"ratio_shmem\": %.3f",
					rel, shm);
			fprintf(f, "}%s\n",
				i == ARRAY_SIZE(xsizes) - 1 &&
				j == XV - 1 ? "" : ",");
		}
	}
	printf("\nex/msg: VM exits per message, sender (S) and receiver (R), from KVM's\n"
	       "statistics; user/msg: exits to the VMM per message; fl/page: the\n"
	       "sender's TLB flushes per page moved; copy/B: bytes copied per byte\n"
	       "delivered; x relay, x shmem: kvmq's messages/s over theirs (same run,\n"
	       "same receiver and touch; a halting kvmq receiver against the polling\n"
	       "shared ring, which cannot wake one).\n");
	if (f) {
		fprintf(f, "  ]\n}\n");
		fclose(f);
		printf("JSON: %s\n", json);
	}
}

int main(int argc, char **argv)
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
	xbench(dev, group, argc > 1 ? argv[1] : NULL);
	close(group);
	close(dev);
	return 0;
}
