// SPDX-License-Identifier: GPL-2.0
/*
 * What peers can make kvmq hold for a VM is bounded by limits its VMM set:
 * pages queued to it count against its quota (or a lower page limit), the
 * kernel memory of queued messages against its memory limit.  A sender
 * that reaches a limit gets -ENOBUFS and nothing changes; every page kvmq
 * owns is charged to exactly one VM.  And the cost of receiving into, and
 * releasing, a large fragmented aperture.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(8ULL << 20)
#define ID_A		1
#define ID_B		2
#define ID_C		3
#define FLOOD_PAGES	16

#define EXPECT_HC(expect, nr, a0, a1, a2) \
	GUEST_ASSERT_EQ(kvmq_hc(nr, a0, a1, a2), (uint64_t)(expect))

/* Guest: a message of @kind, its content a function of @seed. */
static void build(struct kvmq_msg *m, uint64_t kind, uint64_t seed)
{
	uint64_t i, nr = kind == KVMQ_MSG_PAGES ? FLOOD_PAGES : 1;

	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = kind;
	switch (kind) {
	case KVMQ_MSG_BYTES:
		m->len = KVMQ_MSG_BYTES_MAX;
		memset(m->data, seed, m->len);
		break;
	case KVMQ_MSG_PAGES:
		m->nr = nr;
		m->len = nr * PG;
		for (i = 0; i < nr; i++) {
			m->gpas[i] = AP + i * PG;
			*(volatile uint64_t *)m->gpas[i] = seed + i;
		}
		break;
	case KVMQ_MSG_BLOCKS:
		m->nr = 1;
		m->len = SZ_2M;
		m->gpas[0] = AP;
		for (i = 0; i < SZ_2M; i += PG)
			*(volatile uint64_t *)(AP + i) = seed + i;
		break;
	}
}

/* Guest: whether the sender's copy of build(@kind, @seed) is untouched. */
static bool intact(struct kvmq_msg *m, uint64_t kind, uint64_t seed)
{
	uint64_t i;

	switch (kind) {
	case KVMQ_MSG_BYTES:
		for (i = 0; i < m->len; i++)
			if (m->data[i] != (uint8_t)seed)
				return false;
		return true;
	case KVMQ_MSG_PAGES:
		for (i = 0; i < FLOOD_PAGES; i++)
			if (*(volatile uint64_t *)(AP + i * PG) != seed + i)
				return false;
		return true;
	default:
		for (i = 0; i < SZ_2M; i += PG)
			if (*(volatile uint64_t *)(AP + i) != seed + i)
				return false;
		return true;
	}
}

/*
 * Sender: messages of @kind made of fresh pages (each slot sent refaults
 * a zeroed page, on the sender's own quota), sent until a send fails.
 * With @sync_each, stop after each send so that the VMM can interleave
 * senders.  Report the count and the error, check that the failed message
 * is intact, then (once the receiver took a message) send it.
 */
static void guest_flood(uint64_t gva, uint64_t gpa, uint64_t kind,
			uint64_t peer, uint64_t queue, uint64_t sync_each)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t n = 0;
	int64_t ret;

	for (;;) {
		build(m, kind, n);
		ret = kvmq_hc(KVMQ_HC_SEND, peer, queue, gpa);
		if (ret)
			break;
		n++;
		if (sync_each)
			GUEST_SYNC(3);
	}
	GUEST_SYNC_ARGS(1, n, ret, 0, 0);
	GUEST_ASSERT(intact(m, kind, n));
	GUEST_SYNC(2);
	EXPECT_HC(0, KVMQ_HC_SEND, peer, queue, gpa);
	GUEST_DONE();
}

/* Receiver: take one message from @queue and give its pages back. */
static void guest_take_one(uint64_t gva, uint64_t gpa, uint64_t queue)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t pages;

	EXPECT_HC(0, KVMQ_HC_RECV, queue, gpa, 0);
	if (m->kind != KVMQ_MSG_BYTES) {
		pages = m->kind == KVMQ_MSG_PAGES ? m->nr : m->nr * 512;
		EXPECT_HC(pages, KVMQ_HC_RELEASE, m->gpa, pages, 0);
	}
	GUEST_DONE();
}

/* Sender: one message of @kind, which must fail with @expect. */
static void guest_send_one(uint64_t gva, uint64_t gpa, uint64_t kind,
			   uint64_t peer, uint64_t expect)
{
	struct kvmq_msg *m = (void *)gva;

	build(m, kind, 7);
	EXPECT_HC(expect, KVMQ_HC_SEND, peer, 0, gpa);
	GUEST_ASSERT(intact(m, kind, 7));
	GUEST_DONE();
}

static void set_guest(struct kvmq_peer *p, void *code, uint64_t a2,
		      uint64_t a3, uint64_t a4, uint64_t a5)
{
	vcpu_arch_set_entry_point(p->vcpu, code);
	vcpu_args_set(p->vcpu, 6, p->msg_gva, p->msg_gpa, a2, a3, a4, a5);
}

/* Run @p to its next ucall, which must be a GUEST_SYNC; return it. */
static struct ucall run_sync(struct kvmq_peer *p)
{
	struct ucall uc;

	TEST_ASSERT(kvmq_run(p->vcpu, &uc) == UCALL_SYNC, "expected a sync");
	return uc;
}

/*
 * The accounting invariant: every page kvmq owns is held by one of
 * @n VMs' apertures or queued to one of them, and no VM is charged more
 * than its quota.
 */
static void check_charged(struct kvmq_peer **p, int n)
{
	struct kvmq_vm_aperture ap;
	uint64_t sum = 0, quotas = 0;
	int i;

	for (i = 0; i < n; i++) {
		ap = kvmq_get_aperture(p[i]->vmq);
		TEST_ASSERT(ap.held + ap.queued <= ap.quota,
			    "VM %d charged %llu + %llu > quota %llu", i,
			    ap.held, ap.queued, ap.quota);
		sum += ap.held + ap.queued;
		quotas += ap.quota;
	}
	TEST_ASSERT(kvmq_pool_pages() * PG == sum,
		    "pool %lu pages, charged %lu bytes", kvmq_pool_pages(),
		    sum);
	TEST_ASSERT(sum <= quotas, "pool above the quotas");
}

FIXTURE(lim) {
	int dev, group;
	struct kvmq_peer a, b, c;
};

FIXTURE_VARIANT(lim) {
	uint32_t kind;
	uint64_t quota;		/* the receiver's */
	uint64_t page_limit;
	uint64_t mem_limit;
	uint32_t sent;		/* messages queued before -ENOBUFS; 0: see mem */
};

/* Pages: a 2 MiB quota takes 32 messages of 16 pages. */
FIXTURE_VARIANT_ADD(lim, pages) {
	.kind = KVMQ_MSG_PAGES, .quota = SZ_2M, .sent = 32,
};

/* Blocks: an 8 MiB quota takes 4. */
FIXTURE_VARIANT_ADD(lim, blocks) {
	.kind = KVMQ_MSG_BLOCKS, .quota = AP_LEN, .sent = 4,
};

/* A page limit of 1 MiB below an 8 MiB quota: 16 messages of 16 pages. */
FIXTURE_VARIANT_ADD(lim, page_limit) {
	.kind = KVMQ_MSG_PAGES, .quota = AP_LEN, .page_limit = 1 << 20,
	.sent = 16,
};

/* Bytes under the default memory limit (nothing set), and the least. */
FIXTURE_VARIANT_ADD(lim, bytes) {
	.kind = KVMQ_MSG_BYTES, .quota = AP_LEN,
};

FIXTURE_VARIANT_ADD(lim, bytes_min) {
	.kind = KVMQ_MSG_BYTES, .quota = AP_LEN,
	.mem_limit = KVMQ_MEM_LIMIT_MIN,
};

FIXTURE_SETUP(lim)
{
	struct kvmq_vm_queues cfg = {
		.size = sizeof(cfg), .nr_queues = 1, .nr_vcpu_queues = 2,
		.depth = KVMQ_DEPTH_MAX, .page_limit = variant->page_limit,
		.mem_limit = variant->mem_limit,
	};

	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	kvmq_peer_create(&self->a, self->dev, self->group, ID_A, NULL,
			 AP_LEN, AP_LEN, KVMQ_DEPTH_MAX);
	kvmq_peer_create(&self->c, self->dev, self->group, ID_C, NULL,
			 AP_LEN, AP_LEN, KVMQ_DEPTH_MAX);
	/* The receiver: deep queues, so that depth is never the limit. */
	kvmq_peer_create(&self->b, self->dev, self->group, ID_B, NULL,
			 AP_LEN, variant->quota, 0);
	ASSERT_EQ(0, kvmq_ioctl_err(self->b.vmq, KVMQ_VM_SET_QUEUES, &cfg));
	kvmq_grant(self->b.vmq, 0, ID_A);
	kvmq_grant(self->b.vmq, KVMQ_QUEUE_VCPU(0), ID_C);
}

FIXTURE_TEARDOWN(lim)
{
	kvmq_peer_destroy(&self->a);
	kvmq_peer_destroy(&self->b);
	kvmq_peer_destroy(&self->c);
	close(self->group);
	close(self->dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

/* Check the receiver's use once the flood of @n messages stopped. */
static void check_full(struct __test_metadata *_metadata,
		       FIXTURE_DATA(lim) *self,
		       const FIXTURE_VARIANT(lim) *variant, uint64_t n)
{
	struct kvmq_vm_aperture ap = kvmq_get_aperture(self->b.vmq);
	struct kvmq_vm_queues q = kvmq_get_queues(self->b.vmq);
	struct kvmq_peer *all[] = { &self->a, &self->b, &self->c };
	uint64_t limit = variant->mem_limit ?: KVMQ_MEM_LIMIT_DEFAULT;
	uint64_t per = variant->kind == KVMQ_MSG_PAGES ? FLOOD_PAGES * PG :
		       variant->kind == KVMQ_MSG_BLOCKS ? SZ_2M : 0;

	EXPECT_EQ(limit, q.mem_limit);
	EXPECT_EQ(variant->page_limit, q.page_limit);
	EXPECT_EQ(0, ap.held);
	EXPECT_EQ(n * per, ap.queued);
	EXPECT_GE(q.mem_limit, q.mem);
	if (variant->sent) {
		EXPECT_EQ(variant->sent, n);
		EXPECT_EQ(variant->page_limit ?: variant->quota, ap.queued);
	} else {
		/* Bytes: the memory limit is what stopped the flood. */
		ASSERT_LT(0, n);
		EXPECT_EQ(0, q.mem % n);
		EXPECT_LT(q.mem_limit, q.mem + q.mem / n);
		/* What a message costs: its payload, at most doubled. */
		EXPECT_LE(KVMQ_MSG_BYTES_MAX, q.mem / n);
		EXPECT_GE(2 * KVMQ_MSG_BYTES_MAX + 64, q.mem / n);
	}
	check_charged(all, 3);
}

/*
 * A sender that keeps sending fresh pages (or bytes) to a receiver that
 * does not receive is stopped by -ENOBUFS at the receiver's limit, with
 * the failed message intact, and sends again once the receiver took one.
 * What the queued pages leave of the receiver's quota stays its own.
 */
TEST_F(lim, flood)
{
	struct kvmq_peer *all[] = { &self->a, &self->b, &self->c };
	uint64_t touched;
	char byte = 1;
	struct ucall uc;

	set_guest(&self->a, guest_flood, variant->kind, ID_B, 0, 0);
	uc = run_sync(&self->a);
	ASSERT_EQ(1, uc.args[1]);
	EXPECT_EQ(-ENOBUFS, (int64_t)uc.args[3]);
	check_full(_metadata, self, variant, uc.args[2]);

	/* The receiver's VMM touches the rest of the quota: no SIGBUS. */
	touched = variant->quota - kvmq_get_aperture(self->b.vmq).queued;
	memset(self->b.ap, 1, touched);
	EXPECT_EQ(touched, kvmq_aperture_held(self->b.vmq));
	check_charged(all, 3);

	/* A message larger than the page limit could never be queued. */
	if (variant->page_limit) {
		kvmq_grant(self->b.vmq, 0, ID_C);
		set_guest(&self->c, guest_send_one, KVMQ_MSG_BLOCKS, ID_B,
			  -EMSGSIZE, 0);
		kvmq_run_to_done(self->c.vcpu);
	}

	/* The VMM's own posts count against the same memory limit. */
	if (variant->kind == KVMQ_MSG_BYTES) {
		EXPECT_EQ(-ENOBUFS, kvmq_post_err(self->b.vmq, 0, &byte, 1));
	} else {
		EXPECT_EQ(0, kvmq_post_err(self->b.vmq, 0, &byte, 1));
	}

	ASSERT_EQ(2, run_sync(&self->a).args[1]);
	/* Backpressure, not a dead end: the receiver takes one. */
	set_guest(&self->b, guest_take_one, 0, 0, 0, 0);
	kvmq_run_to_done(self->b.vcpu);
	kvmq_run_to_done(self->a.vcpu);
	/* The message taken was given back: what the VMM touched is left. */
	EXPECT_EQ(touched, kvmq_aperture_held(self->b.vmq));
	check_charged(all, 3);
}

/* Two senders into two queues of one receiver share its limits. */
TEST_F(lim, two_senders)
{
	struct kvmq_peer *all[] = { &self->a, &self->b, &self->c };
	struct kvmq_peer *s[2] = { &self->a, &self->c };
	uint64_t n[2] = { 0 }, stopped = 0;
	struct ucall uc;
	int i;

	set_guest(&self->a, guest_flood, variant->kind, ID_B, 0, 1);
	set_guest(&self->c, guest_flood, variant->kind, ID_B,
		  KVMQ_QUEUE_VCPU(0), 1);
	while (stopped != 3) {
		for (i = 0; i < 2; i++) {
			if (stopped & (1 << i))
				continue;
			uc = run_sync(s[i]);
			if (uc.args[1] == 3)
				continue;
			ASSERT_EQ(1, uc.args[1]);
			EXPECT_EQ(-ENOBUFS, (int64_t)uc.args[3]);
			n[i] = uc.args[2];
			stopped |= 1 << i;
		}
	}
	/* They took turns until the receiver's limit stopped both. */
	EXPECT_LT(0, n[0]);
	EXPECT_LT(0, n[1]);
	check_full(_metadata, self, variant, n[0] + n[1]);
	check_charged(all, 3);
}

/*
 * A VM whose quota is full sends pages to its own queue: they are charged
 * to it already, so the send is credited with them and goes through.
 */
static void guest_self_send(uint64_t gva, uint64_t gpa, uint64_t self_id)
{
	struct kvmq_msg *m = (void *)gva;

	build(m, KVMQ_MSG_BLOCKS, 1);		/* the whole 2 MiB quota */
	build(m, KVMQ_MSG_PAGES, 2);		/* 16 of those pages */
	EXPECT_HC(0, KVMQ_HC_SEND, self_id, 0, gpa);
	GUEST_SYNC(1);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT_EQ(m->gpa, AP);		/* the slots they left */
	GUEST_ASSERT(intact(m, KVMQ_MSG_PAGES, 2));
	GUEST_DONE();
}

TEST(self_send)
{
	struct kvmq_vm_aperture ap;
	struct kvmq_peer a;
	int dev, group;

	ASSERT_EQ(0, kvmq_pool_settled());
	dev = kvmq_open_dev();
	group = kvmq_create_group(dev);
	kvmq_peer_create(&a, dev, group, ID_A, guest_self_send, AP_LEN, SZ_2M,
			 4);
	kvmq_grant(a.vmq, 0, ID_A);
	vcpu_args_set(a.vcpu, 3, a.msg_gva, a.msg_gpa, ID_A);

	ASSERT_EQ(1, run_sync(&a).args[1]);
	ap = kvmq_get_aperture(a.vmq);
	EXPECT_EQ(SZ_2M - FLOOD_PAGES * PG, ap.held);
	EXPECT_EQ(FLOOD_PAGES * PG, ap.queued);
	kvmq_run_to_done(a.vcpu);
	ap = kvmq_get_aperture(a.vmq);
	EXPECT_EQ(SZ_2M, ap.held);
	EXPECT_EQ(0, ap.queued);
	EXPECT_EQ(SZ_2M / PG, kvmq_pool_pages());

	kvmq_peer_destroy(&a);
	close(group);
	close(dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

/*
 * Receive and release in a large aperture whose first part is fragmented
 * to the worst: every other page held.  The free-slot search is
 * logarithmic in the pages held; release visits only the pages held.
 * The figures are printed; nothing here asserts a time.
 */
#define SCAN_LEN	(64ULL << 30)
#define SCAN_QUOTA	(512ULL << 20)

static void guest_scan_recv(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t i;

	GUEST_SYNC(1);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);		/* empty aperture */
	GUEST_SYNC_ARGS(2, m->gpa, 0, 0, 0);
	EXPECT_HC(2, KVMQ_HC_RELEASE, m->gpa, 2, 0);
	GUEST_SYNC(3);
	/* The VMM filled the quota: give back every other page. */
	for (i = 1; i < SCAN_QUOTA / PG; i += 2)
		EXPECT_HC(1, KVMQ_HC_RELEASE, AP + i * PG, 1, 0);
	GUEST_SYNC(4);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);		/* 2 pages */
	GUEST_SYNC_ARGS(5, m->gpa, 0, 0, 0);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);		/* a block */
	GUEST_SYNC_ARGS(6, m->gpa, 0, 0, 0);
	GUEST_SYNC_ARGS(7, kvmq_hc(KVMQ_HC_RELEASE, AP, SCAN_LEN / PG, 0),
			0, 0, 0);
	GUEST_DONE();
}

static void guest_scan_send(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;
	int i;

	for (i = 0; i < 2; i++) {
		memset(m, 0, offsetof(struct kvmq_msg, data));
		m->kind = KVMQ_MSG_PAGES;
		m->nr = 2;
		m->len = 2 * PG;
		m->gpas[0] = AP;
		m->gpas[1] = AP + PG;
		*(volatile uint64_t *)AP = 1;
		*(volatile uint64_t *)(AP + PG) = 2;
		EXPECT_HC(0, KVMQ_HC_SEND, peer, 0, gpa);
		GUEST_SYNC(i);
	}
	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = KVMQ_MSG_BLOCKS;
	m->nr = 1;
	m->len = SZ_2M;
	m->gpas[0] = AP + SZ_2M;
	*(volatile uint64_t *)(AP + SZ_2M) = 3;
	EXPECT_HC(0, KVMQ_HC_SEND, peer, 0, gpa);
	GUEST_DONE();
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Run @p from one GUEST_SYNC to the next; return the time, in us. */
static double timed_sync(struct kvmq_peer *p, struct ucall *uc, int stage)
{
	double t = now_us();

	*uc = run_sync(p);
	t = now_us() - t;
	TEST_ASSERT(uc->args[1] == stage, "stage %lu, not %d", uc->args[1],
		    stage);
	return t;
}

FIXTURE(scan) {
	int unused;
};

FIXTURE_SETUP(scan)
{
}

FIXTURE_TEARDOWN(scan)
{
}

/* Minutes on a debug kernel (KASAN, lockdep) under TCG. */
TEST_F_TIMEOUT(scan, worst_case, 900)
{
	uint64_t frag = SCAN_QUOTA / PG / 2, unmaps, i;
	double t_empty, t_pages, t_block, t_release;
	struct kvmq_peer a, b;
	struct ucall uc;
	int dev, group;

	ASSERT_EQ(0, kvmq_pool_settled());
	dev = kvmq_open_dev();
	group = kvmq_create_group(dev);
	kvmq_peer_create(&a, dev, group, ID_A, guest_scan_send, AP_LEN, AP_LEN,
			 4);
	kvmq_peer_create(&b, dev, group, ID_B, guest_scan_recv, SCAN_LEN,
			 SCAN_QUOTA, 4);
	kvmq_grant(b.vmq, 0, ID_A);
	vcpu_args_set(a.vcpu, 3, a.msg_gva, a.msg_gpa, ID_B);

	ASSERT_EQ(1, run_sync(&b).args[1]);
	ASSERT_EQ(0, run_sync(&a).args[1]);
	t_empty = timed_sync(&b, &uc, 2);
	EXPECT_EQ(AP, uc.args[2]);
	ASSERT_EQ(3, run_sync(&b).args[1]);

	/* Fill the quota in 2 MiB blocks, then free every other page. */
	for (i = 0; i < SCAN_QUOTA; i += SZ_2M)
		b.ap[i] = 1;
	EXPECT_EQ(SCAN_QUOTA, kvmq_aperture_held(b.vmq));
	ASSERT_EQ(4, run_sync(&b).args[1]);
	EXPECT_EQ(frag * PG, kvmq_aperture_held(b.vmq));

	/* Two free slots in a row: the last hole and the first slot after. */
	ASSERT_EQ(1, run_sync(&a).args[1]);
	t_pages = timed_sync(&b, &uc, 5);
	EXPECT_EQ(AP + SCAN_QUOTA - PG, uc.args[2]);
	/* A block: the first empty 2 MiB chunk after that. */
	kvmq_run_to_done(a.vcpu);
	t_block = timed_sync(&b, &uc, 6);
	EXPECT_EQ(AP + SCAN_QUOTA + SZ_2M, uc.args[2]);

	unmaps = kvmq_debugfs_stat("unmaps");
	t_release = timed_sync(&b, &uc, 7);
	EXPECT_EQ(frag + 2 + 512, uc.args[2]);
	/* In batches of 8 blocks' worth of pages, one unmap each. */
	EXPECT_EQ((frag + 2 + 512 + 4095) / 4096,
		  kvmq_debugfs_stat("unmaps") - unmaps);
	kvmq_run_to_done(b.vcpu);
	EXPECT_EQ(0, kvmq_aperture_held(b.vmq));

	printf("# scan: aperture %llu GiB, %lu pages held, every other one\n",
	       SCAN_LEN >> 30, frag);
	printf("# scan: receive 2 pages: %.0f us (empty aperture %.0f us)\n",
	       t_pages, t_empty);
	printf("# scan: receive a block: %.0f us\n", t_block);
	printf("# scan: release the whole aperture: %.0f us for %lu pages\n",
	       t_release, frag + 2 + 512);

	kvmq_peer_destroy(&a);
	kvmq_peer_destroy(&b);
	close(group);
	close(dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

KVMQ_TEST_HARNESS_MAIN
