// SPDX-License-Identifier: GPL-2.0
/*
 * Queues and messages: configuration and permissions, ping-pong of each
 * message kind, page ownership, every error of the send and receive
 * hypercalls, VMM posts, teardown with messages in flight, and the
 * three-VM pipeline.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"
#include "kvmq_pipeline.h"
#include "kselftest_harness.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(8ULL << 20)
#define ID_A		1
#define ID_B		2

/* Content of byte @j of a payload made with @seed. */
static uint8_t pat(uint64_t j, uint64_t seed)
{
	return j * 131 + (j >> 12) * 7 + seed * 29 + 1;
}

static void fill(uint8_t *p, uint64_t len, uint64_t seed)
{
	uint64_t j;

	for (j = 0; j < len; j++)
		p[j] = pat(j, seed);
}

/* Whether @p holds @len bytes of @seed's payload, each plus @add. */
static bool check(const uint8_t *p, uint64_t len, uint64_t seed, uint8_t add)
{
	uint64_t j;

	for (j = 0; j < len; j++)
		if (p[j] != (uint8_t)(pat(j, seed) + add))
			return false;
	return true;
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
	uint64_t j;

	for (j = 0; j < len; j++)
		if (p[j])
			return false;
	return true;
}

static uint64_t unit(uint32_t kind)
{
	return kind == KVMQ_MSG_BLOCKS ? SZ_2M : PG;
}

/* Guest: a message header with nothing set but what the caller passes. */
static void msg_init(struct kvmq_msg *m, uint32_t kind, uint32_t nr,
		     uint32_t len)
{
	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = kind;
	m->nr = nr;
	m->len = len;
}

/* Guest: send, yielding to the VMM while the queue (or budget) is full. */
static void send_wait(uint64_t msg_gpa, uint32_t dest, uint32_t queue)
{
	int64_t ret;

	while ((ret = kvmq_hc(KVMQ_HC_SEND, dest, queue, msg_gpa)) == -EAGAIN ||
	       ret == -ENOBUFS)
		GUEST_SYNC(0);
	GUEST_ASSERT_EQ(ret, 0);
}

/* Guest: receive, yielding to the VMM while the queue is empty. */
static void recv_wait(uint64_t msg_gpa, uint32_t queue)
{
	int64_t ret;

	while ((ret = kvmq_hc(KVMQ_HC_RECV, queue, msg_gpa, 0)) == -EAGAIN)
		GUEST_SYNC(0);
	GUEST_ASSERT_EQ(ret, 0);
}

/* Guest: the payload of a received message. */
static uint8_t *payload(struct kvmq_msg *m)
{
	return m->kind == KVMQ_MSG_BYTES ? m->data : (uint8_t *)m->gpa;
}

/* Guest: make @m a message of @kind carrying @seed's payload. */
static void build(struct kvmq_msg *m, uint32_t kind, uint64_t seed)
{
	uint32_t nr = kind == KVMQ_MSG_BYTES ? 0 :
		      kind == KVMQ_MSG_PAGES ? 3 : 1;
	uint32_t len = kind == KVMQ_MSG_BYTES ? 1000 + seed :
		       kind == KVMQ_MSG_PAGES ? 3 * PG - 100 - seed : SZ_2M;
	/* Staging: pages at the aperture's start, the block at 2 MiB. */
	uint8_t *p = kind == KVMQ_MSG_BYTES ? m->data :
		     kind == KVMQ_MSG_PAGES ? (uint8_t *)AP :
		     (uint8_t *)(AP + SZ_2M);
	uint32_t i;

	msg_init(m, kind, nr, len);
	fill(p, len, seed);
	for (i = 0; i < nr; i++)
		m->gpas[i] = (uint64_t)p + i * unit(kind);
}

/* Guest: forward the message just received in @m, as it is. */
static void forward(struct kvmq_msg *m)
{
	uint64_t where = m->gpa;
	uint32_t i;

	m->sender = 0;
	m->gpa = 0;
	for (i = 0; m->kind != KVMQ_MSG_BYTES && i < m->nr; i++)
		m->gpas[i] = where + i * unit(m->kind);
}

/*
 * Ping: send @rounds messages of @kind to @peer; each comes back with
 * every byte incremented, in the same pages for page kinds.
 */
static void guest_ping(uint64_t gva, uint64_t gpa, uint64_t kind,
		       uint64_t peer, uint64_t rounds)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t r, pages;

	for (r = 0; r < rounds; r++) {
		build(m, kind, r);
		send_wait(gpa, peer, 0);
		recv_wait(gpa, 0);
		GUEST_ASSERT_EQ(m->sender, peer);
		GUEST_ASSERT_EQ(m->kind, kind);
		GUEST_ASSERT(check(payload(m), m->len, r, 1));
		if (kind == KVMQ_MSG_BLOCKS)
			GUEST_SYNC(2);
		if (kind != KVMQ_MSG_BYTES) {
			pages = m->nr * unit(kind) / PG;
			GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_RELEASE, m->gpa, pages,
						0), pages);
		}
	}
	GUEST_DONE();
}

static void guest_pong(uint64_t gva, uint64_t gpa, uint64_t kind,
		       uint64_t peer, uint64_t rounds)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t r, j;
	uint8_t *p;

	for (r = 0; r < rounds; r++) {
		recv_wait(gpa, 0);
		GUEST_ASSERT_EQ(m->sender, peer);
		GUEST_ASSERT_EQ(m->kind, kind);
		p = payload(m);
		GUEST_ASSERT(check(p, m->len, r, 0));
		for (j = 0; j < m->len; j++)
			p[j]++;
		if (kind == KVMQ_MSG_BLOCKS) {
			GUEST_ASSERT(!(m->gpa & (SZ_2M - 1)));
			GUEST_SYNC(2);
		}
		forward(m);
		send_wait(gpa, peer, 0);
	}
	GUEST_DONE();
}

/*
 * Run the vCPUs of @n peers in turn until each reached GUEST_DONE.  At a
 * GUEST_SYNC(2), note the VM's count of 2 MiB mappings in @pages_2m.
 */
static void run_all(struct kvmq_peer *p, int n, uint64_t *pages_2m)
{
	bool done[4] = { false };
	int i, left = n;
	struct ucall uc;

	while (left) {
		for (i = 0; i < n; i++) {
			if (done[i])
				continue;
			if (kvmq_run(p[i].vcpu, &uc) == UCALL_DONE) {
				done[i] = true;
				left--;
			} else if (uc.args[1] == 2) {
				pages_2m[i] = max(pages_2m[i],
						  vm_get_stat(p[i].vm,
							      "pages_2m"));
			}
		}
	}
}

/* Run @p to its next GUEST_SYNC and return the stage. */
static uint64_t run_sync(struct kvmq_peer *p)
{
	struct ucall uc;
	uint64_t cmd = kvmq_run(p->vcpu, &uc);

	TEST_ASSERT(cmd == UCALL_SYNC, "expected a sync, got ucall %lu", cmd);
	return uc.args[1];
}

FIXTURE(q) {
	int dev, group;
	struct kvmq_peer a, b;
};

FIXTURE_SETUP(q)
{
	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	kvmq_peer_create(&self->a, self->dev, self->group, ID_A, NULL,
			 AP_LEN, AP_LEN, 4);
	kvmq_peer_create(&self->b, self->dev, self->group, ID_B, NULL,
			 AP_LEN, AP_LEN, 4);
}

FIXTURE_TEARDOWN(q)
{
	kvmq_peer_destroy(&self->a);
	kvmq_peer_destroy(&self->b);
	close(self->group);
	close(self->dev);
	/* Queued messages and apertures: every page went back. */
	EXPECT_EQ(0, kvmq_pool_pages());
}

static void set_guest(struct kvmq_peer *p, void *code, uint64_t a2,
		      uint64_t a3, uint64_t a4)
{
	vcpu_arch_set_entry_point(p->vcpu, code);
	vcpu_args_set(p->vcpu, 5, p->msg_gva, p->msg_gpa, a2, a3, a4);
}

static void pingpong(FIXTURE_DATA(q) *self, uint32_t kind, int rounds,
		     uint64_t *pages_2m)
{
	struct kvmq_peer both[2] = { self->a, self->b };

	kvmq_grant(self->a.vmq, 0, ID_B);
	kvmq_grant(self->b.vmq, 0, ID_A);
	set_guest(&self->a, guest_ping, kind, ID_B, rounds);
	set_guest(&self->b, guest_pong, kind, ID_A, rounds);
	run_all(both, 2, pages_2m);
}

TEST_F(q, pingpong_bytes)
{
	uint64_t copied = kvmq_debugfs_stat("bytes_copied");
	uint64_t pages_2m[2] = { 0 };

	pingpong(self, KVMQ_MSG_BYTES, 20, pages_2m);
	/* 20 round trips of 1000..1019 bytes, nothing else moved. */
	EXPECT_EQ(2 * (20 * 1000 + 19 * 20 / 2),
		  kvmq_debugfs_stat("bytes_copied") - copied);
}

TEST_F(q, pingpong_pages)
{
	uint64_t moved = kvmq_debugfs_stat("pages_moved");
	uint64_t copied = kvmq_debugfs_stat("bytes_copied");
	uint64_t pages_2m[2] = { 0 };

	pingpong(self, KVMQ_MSG_PAGES, 20, pages_2m);
	/* 3 pages each way per round, moved, not copied. */
	EXPECT_EQ(20 * 2 * 3, kvmq_debugfs_stat("pages_moved") - moved);
	EXPECT_EQ(0, kvmq_debugfs_stat("bytes_copied") - copied);
}

/* A block moved whole is mapped at 2 MiB in the receiver too. */
TEST_F(q, pingpong_blocks)
{
	uint64_t moved = kvmq_debugfs_stat("pages_moved");
	uint64_t pages_2m[2] = { 0 };

	pingpong(self, KVMQ_MSG_BLOCKS, 3, pages_2m);
	EXPECT_EQ(3 * 2 * 512, kvmq_debugfs_stat("pages_moved") - moved);
	/* Each side mapped a block it received at 2 MiB. */
	EXPECT_LE(1, pages_2m[0]);
	EXPECT_LE(1, pages_2m[1]);
}

#define OWN_PAGES	64

/*
 * Sender: fill OWN_PAGES pages, send them in one message, find zeros where
 * they were; later, still zeros: nothing the receiver writes shows through.
 */
static void guest_own_send(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;
	uint8_t *p = (void *)AP;
	uint32_t i;

	msg_init(m, KVMQ_MSG_PAGES, OWN_PAGES, OWN_PAGES * PG);
	fill(p, OWN_PAGES * PG, 7);
	for (i = 0; i < OWN_PAGES; i++)
		m->gpas[i] = AP + i * PG;
	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_SEND, peer, 0, gpa), 0);
	GUEST_ASSERT(all_zero(p, OWN_PAGES * PG));
	GUEST_SYNC(1);
	GUEST_ASSERT(all_zero(p, OWN_PAGES * PG));
	GUEST_DONE();
}

static void guest_own_recv(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;
	uint8_t *p;

	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_RECV, 0, gpa, 0), 0);
	GUEST_ASSERT_EQ(m->sender, peer);
	GUEST_ASSERT_EQ(m->nr, OWN_PAGES);
	p = (void *)m->gpa;
	GUEST_ASSERT(check(p, OWN_PAGES * PG, 7, 0));
	memset(p, 0xee, OWN_PAGES * PG);
	GUEST_SYNC_ARGS(2, m->gpa, 0, 0, 0);
	GUEST_DONE();
}

TEST_F(q, ownership)
{
	uint64_t flushes, off, unmaps = kvmq_debugfs_stat("unmaps");
	struct ucall uc;

	kvmq_grant(self->b.vmq, 0, ID_A);
	set_guest(&self->a, guest_own_send, ID_B, 0, 0);
	set_guest(&self->b, guest_own_recv, ID_A, 0, 0);

	flushes = vm_get_stat(self->a.vm, "remote_tlb_flush_requests");
	ASSERT_EQ(1, run_sync(&self->a));
	/* 64 pages left the sender with one unmap and one TLB flush. */
	EXPECT_EQ(1, kvmq_debugfs_stat("unmaps") - unmaps);
	EXPECT_EQ(1, vm_get_stat(self->a.vm, "remote_tlb_flush_requests") -
		     flushes);
	/* The VMM's view of the sender agrees: fresh zeroed memory. */
	EXPECT_TRUE(all_zero(self->a.ap, OWN_PAGES * PG));

	ASSERT_EQ(UCALL_SYNC, kvmq_run(self->b.vcpu, &uc));
	ASSERT_EQ(2, uc.args[1]);
	off = uc.args[2] - AP;
	ASSERT_GT(AP_LEN, off);
	/* The receiver's VMM sees what its guest wrote, the sender's not. */
	EXPECT_EQ(0xee, self->b.ap[off]);
	EXPECT_EQ(0xee, self->b.ap[off + OWN_PAGES * PG - 1]);
	EXPECT_TRUE(all_zero(self->a.ap, OWN_PAGES * PG));
	kvmq_run_to_done(self->a.vcpu);
	kvmq_run_to_done(self->b.vcpu);
}

#define EXPECT_HC(expect, nr, a0, a1, a2) \
	GUEST_ASSERT_EQ(kvmq_hc(nr, a0, a1, a2), (uint64_t)(expect))

/* Every way a send can be wrong: each fails and changes nothing. */
static void guest_send_errors(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;
	uint8_t *p = (void *)AP;
	uint64_t i;

	fill(p, 2 * PG, 3);	/* first touch: the aperture's first block */

	msg_init(m, KVMQ_MSG_BYTES, 0, 16);
	EXPECT_HC(-ENOENT, KVMQ_HC_SEND, 99, 0, gpa);	/* unknown identity */
	EXPECT_HC(-ENOENT, KVMQ_HC_SEND, 0, 0, gpa);
	EXPECT_HC(-ENOENT, KVMQ_HC_SEND, peer + (1ULL << 32), 0, gpa);
	EXPECT_HC(-ENOENT, KVMQ_HC_SEND, peer, 5, gpa);	/* no such queue */
	EXPECT_HC(-EACCES, KVMQ_HC_SEND, peer, KVMQ_QUEUE_VCPU(0), gpa);
	EXPECT_HC(-EFAULT, KVMQ_HC_SEND, peer, 0, 1ULL << 40);

	/* Malformed headers; a forged sender is one of them. */
	m->kind = 0;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	m->kind = 4;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BYTES, 0, 16);
	m->sender = peer;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BYTES, 0, 16);
	m->flags = 1;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BYTES, 0, 16);
	m->__reserved = 1;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BYTES, 0, 16);
	m->gpa = AP;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BYTES, 1, 16);
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BYTES, 0, KVMQ_MSG_BYTES_MAX + 1);
	EXPECT_HC(-E2BIG, KVMQ_HC_SEND, peer, 0, gpa);

	/* Page lists. */
	msg_init(m, KVMQ_MSG_PAGES, 0, 0);
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_PAGES, KVMQ_MSG_PAGES_MAX + 1, PG);
	EXPECT_HC(-E2BIG, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_PAGES, 1, PG + 1);
	m->gpas[0] = AP;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);	/* len > pages */

	msg_init(m, KVMQ_MSG_PAGES, 1, PG);
	m->gpas[0] = AP - PG;				/* below */
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	m->gpas[0] = AP + AP_LEN;			/* above */
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	m->gpas[0] = gpa;				/* ordinary RAM */
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	m->gpas[0] = AP + 1;				/* unaligned */
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	m->gpas[0] = AP + SZ_2M + PG;			/* not held */
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, peer, 0, gpa);

	msg_init(m, KVMQ_MSG_PAGES, 3, 3 * PG);		/* duplicate */
	m->gpas[0] = AP;
	m->gpas[1] = AP + PG;
	m->gpas[2] = AP;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	m->gpas[2] = AP + SZ_2M;			/* one not held */
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, peer, 0, gpa);

	/* Blocks. */
	msg_init(m, KVMQ_MSG_BLOCKS, 1, PG);
	m->gpas[0] = AP + PG;				/* unaligned */
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	m->gpas[0] = AP + 2 * SZ_2M;			/* not held */
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BLOCKS, KVMQ_MSG_BLOCKS_MAX + 1, PG);
	EXPECT_HC(-E2BIG, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_BLOCKS, 1, SZ_2M + 1);
	m->gpas[0] = AP;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);

	/* More than the receiver's 8 MiB aperture could ever hold. */
	msg_init(m, KVMQ_MSG_BLOCKS, 5, PG);
	for (i = 0; i < 5; i++)
		m->gpas[i] = AP + i * SZ_2M;
	EXPECT_HC(-EMSGSIZE, KVMQ_HC_SEND, peer, 0, gpa);

	/* Nothing moved: the pages are still here, with their data. */
	GUEST_ASSERT(check(p, 2 * PG, 3, 0));
	GUEST_SYNC(1);

	/* Granted now: fill the queue (depth 4), then one too many. */
	for (i = 0; i < 4; i++) {
		msg_init(m, KVMQ_MSG_BYTES, 0, 8);
		EXPECT_HC(0, KVMQ_HC_SEND, peer, 0, gpa);
	}
	EXPECT_HC(-EAGAIN, KVMQ_HC_SEND, peer, 0, gpa);
	msg_init(m, KVMQ_MSG_PAGES, 2, 2 * PG);
	m->gpas[0] = AP;
	m->gpas[1] = AP + PG;
	EXPECT_HC(-EAGAIN, KVMQ_HC_SEND, peer, 0, gpa);
	GUEST_ASSERT(check(p, 2 * PG, 3, 0));
	GUEST_SYNC(2);

	/* The receiver drained two, then its VMM revoked the grant. */
	EXPECT_HC(-EACCES, KVMQ_HC_SEND, peer, 0, gpa);
	GUEST_ASSERT(check(p, 2 * PG, 3, 0));
	GUEST_DONE();
}

static void guest_drain(uint64_t gva, uint64_t gpa, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_SYNC_ARGS(1, kvmq_hc(KVMQ_HC_QLEN, 0, 0, 0), 0, 0, 0);
	GUEST_DONE();
}

TEST_F(q, send_errors)
{
	struct ucall uc;
	uint64_t held;

	set_guest(&self->a, guest_send_errors, ID_B, 0, 0);
	ASSERT_EQ(1, run_sync(&self->a));
	held = kvmq_aperture_held(self->a.vmq);
	EXPECT_EQ(SZ_2M, held);

	kvmq_grant(self->b.vmq, 0, ID_A);
	ASSERT_EQ(2, run_sync(&self->a));
	EXPECT_EQ(held, kvmq_aperture_held(self->a.vmq));

	/* Revoked mid-stream: what was queued is still delivered. */
	set_guest(&self->b, guest_drain, 2, 0, 0);
	ASSERT_EQ(UCALL_SYNC, kvmq_run(self->b.vcpu, &uc));
	EXPECT_EQ(2, uc.args[2]);
	kvmq_run_to_done(self->b.vcpu);
	EXPECT_EQ(0, kvmq_grant_err(self->b.vmq, KVMQ_VM_REVOKE, 0, ID_A));
	EXPECT_EQ(-ENOENT, kvmq_grant_err(self->b.vmq, KVMQ_VM_REVOKE, 0, ID_A));
	kvmq_run_to_done(self->a.vcpu);
	EXPECT_EQ(held, kvmq_aperture_held(self->a.vmq));
}

/*
 * Receiver: space.  A queued 2-page message is charged to the receiver's
 * quota from the start, so a receive never exceeds it; it still needs two
 * free slots in a row.  The receiver touches every slot but two that are
 * not next to each other: its quota is full, and the message must wait.
 */
static void guest_recv_errors(uint64_t gva, uint64_t gpa, uint64_t stage)
{
	uint64_t i;

	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);		/* empty */
	EXPECT_HC(-ENOENT, KVMQ_HC_RECV, 7, gpa, 0);		/* no queue */
	EXPECT_HC(-EACCES, KVMQ_HC_RECV, KVMQ_QUEUE_VCPU(1), gpa, 0);
	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, KVMQ_QUEUE_VCPU(0), gpa, 0);
	EXPECT_HC(-ENOENT, KVMQ_HC_QLEN, 7, 0, 0);
	GUEST_SYNC(1);

	/* A 2-page message is queued. */
	EXPECT_HC(-EFAULT, KVMQ_HC_RECV, 0, 1ULL << 40, 0);
	for (i = 0; i < AP_LEN; i += PG)
		if (i != AP_LEN - 3 * PG && i != AP_LEN - PG)
			*(volatile uint8_t *)(AP + i) = 1;
	GUEST_SYNC(2);
	EXPECT_HC(-ENOSPC, KVMQ_HC_RECV, 0, gpa, 0);
	EXPECT_HC(1, KVMQ_HC_QLEN, 0, 0, 0);

	/* Release errors. */
	EXPECT_HC(-EINVAL, KVMQ_HC_RELEASE, AP + 1, 1, 0);
	EXPECT_HC(-EINVAL, KVMQ_HC_RELEASE, AP - PG, 1, 0);
	EXPECT_HC(-EINVAL, KVMQ_HC_RELEASE, AP, AP_LEN / PG + 1, 0);
	EXPECT_HC(-EINVAL, KVMQ_HC_RELEASE, AP, 0, 0);
	EXPECT_HC(0, KVMQ_HC_RELEASE, AP + AP_LEN - PG, 1, 0);	/* free */

	/* Three slots in a row: the message arrives in the first two. */
	EXPECT_HC(1, KVMQ_HC_RELEASE, AP + AP_LEN - 2 * PG, 1, 0);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT_EQ(((struct kvmq_msg *)gva)->gpa, AP + AP_LEN - 3 * PG);
	GUEST_ASSERT(check((uint8_t *)(AP + AP_LEN - 3 * PG), 2 * PG, 5, 0));
	EXPECT_HC(0, KVMQ_HC_QLEN, 0, 0, 0);
	GUEST_DONE();
}

static void guest_send2(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;

	msg_init(m, KVMQ_MSG_PAGES, 2, 2 * PG);
	fill((uint8_t *)AP, 2 * PG, 5);
	m->gpas[0] = AP;
	m->gpas[1] = AP + PG;
	EXPECT_HC(0, KVMQ_HC_SEND, peer, 0, gpa);
	GUEST_DONE();
}

TEST_F(q, recv_errors)
{
	struct kvmq_vm_aperture ap;

	kvmq_grant(self->b.vmq, 0, ID_A);
	set_guest(&self->b, guest_recv_errors, 0, 0, 0);
	ASSERT_EQ(1, run_sync(&self->b));
	set_guest(&self->a, guest_send2, ID_B, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
	ASSERT_EQ(2, run_sync(&self->b));
	/* Held and queued fill the quota exactly. */
	ap = kvmq_get_aperture(self->b.vmq);
	EXPECT_EQ(AP_LEN - 2 * PG, ap.held);
	EXPECT_EQ(2 * PG, ap.queued);
	kvmq_run_to_done(self->b.vcpu);
	ap = kvmq_get_aperture(self->b.vmq);
	EXPECT_EQ(AP_LEN - PG, ap.held);
	EXPECT_EQ(0, ap.queued);
}

/* A VM without an identity cannot send; its queues still work. */
static void guest_anonymous(uint64_t gva, uint64_t gpa)
{
	msg_init((void *)gva, KVMQ_MSG_BYTES, 0, 4);
	EXPECT_HC(-ENOTCONN, KVMQ_HC_SEND, ID_A, 0, gpa);
	EXPECT_HC(1, KVMQ_HC_QLEN, 0, 0, 0);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

TEST_F(q, no_identity)
{
	struct kvmq_peer c;
	char hello[] = "hi";

	kvmq_peer_create(&c, self->dev, self->group, 0, guest_anonymous,
			 AP_LEN, AP_LEN, 1);
	EXPECT_EQ(0, kvmq_post_err(c.vmq, 0, hello, sizeof(hello)));
	kvmq_run_to_done(c.vcpu);
	kvmq_peer_destroy(&c);
}

/* A VM without an aperture has no pages to send or give back. */
static void guest_no_aperture(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;

	msg_init(m, KVMQ_MSG_PAGES, 1, PG);
	m->gpas[0] = AP;
	EXPECT_HC(-ENODEV, KVMQ_HC_SEND, peer, 0, gpa);
	EXPECT_HC(-ENODEV, KVMQ_HC_RELEASE, AP, 1, 0);
	msg_init(m, KVMQ_MSG_BYTES, 0, 4);
	EXPECT_HC(0, KVMQ_HC_SEND, peer, 0, gpa);
	GUEST_DONE();
}

TEST_F(q, no_aperture)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_with_one_vcpu(&vcpu, guest_no_aperture);
	int vmq = kvmq_attach(self->dev, vm);
	uint64_t gva = vm_vaddr_alloc_page(vm);

	kvmq_set_identity(vmq, self->group, 3);
	kvmq_grant(self->b.vmq, 0, 3);
	vcpu_args_set(vcpu, 3, gva, addr_gva2gpa(vm, gva), ID_B);
	kvmq_run_to_done(vcpu);
	kvm_vm_free(vm);
	close(vmq);
}

#define MOVED		0x80000000ULL

static int move_err(int vmq, uint64_t gpa)
{
	struct kvmq_vm_move_aperture mv = { .size = sizeof(mv), .gpa = gpa };

	return kvmq_ioctl_err(vmq, KVMQ_VM_MOVE_APERTURE, &mv);
}

/* Move @p's aperture memslot to @gpa (KVMQ_APERTURE_NO_GPA: remove it). */
static void move_aperture(struct kvmq_peer *p, uint64_t gpa)
{
	if (kvmq_get_aperture(p->vmq).gpa != KVMQ_APERTURE_NO_GPA)
		vm_set_user_memory_region(p->vm, KVMQ_TEST_AP_SLOT, 0, 0, 0,
					  NULL);
	if (gpa != KVMQ_APERTURE_NO_GPA)
		vm_set_user_memory_region(p->vm, KVMQ_TEST_AP_SLOT, 0, gpa,
					  p->ap_len, p->ap);
	TEST_ASSERT(!move_err(p->vmq, gpa), "KVMQ_VM_MOVE_APERTURE failed");
}

/*
 * Sender: 4 pages sent from the aperture at its first address; then, with
 * no address, nothing of the aperture can be named.
 */
static void guest_move_send(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;
	uint32_t i;

	msg_init(m, KVMQ_MSG_PAGES, 4, 4 * PG);
	fill((void *)(AP + 8 * PG), 4 * PG, 5);
	for (i = 0; i < 4; i++)
		m->gpas[i] = AP + (i + 8) * PG;
	EXPECT_HC(0, KVMQ_HC_SEND, peer, 0, gpa);
	GUEST_SYNC(1);
	msg_init(m, KVMQ_MSG_PAGES, 1, PG);
	m->gpas[0] = AP;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, peer, 0, gpa);
	EXPECT_HC(-EINVAL, KVMQ_HC_RELEASE, AP, 1, 0);
	GUEST_DONE();
}

/*
 * Receiver: without an address the message waits; at the new address the
 * pages are there, and are given back there.
 */
static void guest_move_recv(uint64_t gva, uint64_t gpa, uint64_t peer)
{
	struct kvmq_msg *m = (void *)gva;

	EXPECT_HC(-EFAULT, KVMQ_HC_RECV, 0, gpa, 0);
	EXPECT_HC(1, KVMQ_HC_QLEN, 0, 0, 0);
	GUEST_SYNC(1);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT_EQ(m->sender, peer);
	GUEST_ASSERT(m->gpa >= MOVED && m->gpa < MOVED + AP_LEN);
	GUEST_ASSERT(check((void *)m->gpa, 4 * PG, 5, 0));
	EXPECT_HC(-EINVAL, KVMQ_HC_RELEASE, m->gpa - MOVED + AP, 4, 0);
	EXPECT_HC(4, KVMQ_HC_RELEASE, m->gpa, 4, 0);
	GUEST_DONE();
}

TEST_F(q, move_aperture)
{
	struct kvmq_vm_aperture ap;

	kvmq_grant(self->b.vmq, 0, ID_A);
	set_guest(&self->a, guest_move_send, ID_B, 0, 0);
	set_guest(&self->b, guest_move_recv, ID_A, 0, 0);
	virt_map_level(self->b.vm, MOVED, MOVED, AP_LEN, PG_LEVEL_2M);

	EXPECT_EQ(1, run_sync(&self->a));
	move_aperture(&self->a, KVMQ_APERTURE_NO_GPA);
	move_aperture(&self->b, KVMQ_APERTURE_NO_GPA);
	ap = kvmq_get_aperture(self->b.vmq);
	EXPECT_EQ(KVMQ_APERTURE_NO_GPA, ap.gpa);
	EXPECT_EQ(4 * PG, ap.queued);
	kvmq_run_to_done(self->a.vcpu);

	EXPECT_EQ(1, run_sync(&self->b));
	move_aperture(&self->b, MOVED);
	EXPECT_EQ(MOVED, kvmq_get_aperture(self->b.vmq).gpa);
	kvmq_run_to_done(self->b.vcpu);
	EXPECT_EQ(0, kvmq_get_aperture(self->b.vmq).queued);
}

TEST_F(q, move_aperture_errors)
{
	struct kvmq_vm_move_aperture mv = { .size = sizeof(mv), .flags = 1 };
	struct kvm_vm *vm = vm_create_barebones();
	int vmq = kvmq_attach(self->dev, vm);

	/* Misaligned, or ending beyond 2^64. */
	EXPECT_EQ(-EINVAL, move_err(self->a.vmq, MOVED + PG));
	EXPECT_EQ(-EINVAL, move_err(self->a.vmq, -SZ_2M));
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(self->a.vmq,
					      KVMQ_VM_MOVE_APERTURE, &mv));
	EXPECT_EQ(AP, kvmq_get_aperture(self->a.vmq).gpa);
	/* No aperture. */
	EXPECT_EQ(-ENODEV, move_err(vmq, MOVED));
	close(vmq);
	kvm_vm_free(vm);
}

/* The VMM tells its guest who its peers are by posting into its queues. */
static void guest_posted(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;

	EXPECT_HC(2, KVMQ_HC_QLEN, 0, 0, 0);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT_EQ(m->sender, KVMQ_ID_VMM);
	GUEST_ASSERT_EQ(m->kind, KVMQ_MSG_BYTES);
	GUEST_ASSERT_EQ(m->len, 8);
	GUEST_ASSERT_EQ(*(uint32_t *)m->data, ID_B);
	GUEST_ASSERT_EQ(*(uint32_t *)(m->data + 4), ID_A);
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT_EQ(m->len, 0);
	EXPECT_HC(0, KVMQ_HC_RECV, KVMQ_QUEUE_VCPU(0), gpa, 0);
	GUEST_ASSERT_EQ(m->len, KVMQ_MSG_BYTES_MAX);
	GUEST_ASSERT(check(m->data, m->len, 9, 0));
	GUEST_DONE();
}

TEST_F(q, vmm_post)
{
	uint32_t ids[2] = { ID_B, ID_A };
	uint8_t big[KVMQ_MSG_BYTES_MAX + 1];
	int i;

	fill(big, sizeof(big), 9);
	EXPECT_EQ(0, kvmq_post_err(self->a.vmq, 0, ids, sizeof(ids)));
	EXPECT_EQ(0, kvmq_post_err(self->a.vmq, 0, NULL, 0));
	EXPECT_EQ(0, kvmq_post_err(self->a.vmq, KVMQ_QUEUE_VCPU(0), big,
				   KVMQ_MSG_BYTES_MAX));
	EXPECT_EQ(-E2BIG, kvmq_post_err(self->a.vmq, 0, big, sizeof(big)));
	EXPECT_EQ(-EINVAL, kvmq_post_err(self->a.vmq, 1, big, 1));
	EXPECT_EQ(-EINVAL, kvmq_post_err(self->a.vmq, KVMQ_QUEUE_VCPU(2),
					 big, 1));
	EXPECT_EQ(-EFAULT, kvmq_post_err(self->a.vmq, 0, (void *)8, 1));

	/* Depth 4 per queue; permissions do not apply to the VMM. */
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, kvmq_post_err(self->b.vmq, 0, big, 1));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, kvmq_post_err(self->b.vmq, 0, big, 1));
	EXPECT_EQ(-EAGAIN, kvmq_post_err(self->b.vmq, 0, big, 1));

	set_guest(&self->a, guest_posted, 0, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
}

static int queue_info(int vmq, uint32_t queue, struct kvmq_vm_queue_info *qi)
{
	memset(qi, 0, sizeof(*qi));
	qi->size = sizeof(*qi);
	qi->queue = queue;
	return kvmq_ioctl_err(vmq, KVMQ_VM_GET_QUEUE, qi);
}

/* What a VMM reports: each queue's length and how many may send to it. */
TEST_F(q, queue_info)
{
	struct kvm_vm *vm = vm_create_barebones();
	int vmq = kvmq_attach(self->dev, vm);
	struct kvmq_vm_queue_info qi;
	char hi[] = "hi";

	EXPECT_EQ(0, queue_info(self->b.vmq, 0, &qi));
	EXPECT_EQ(0, qi.length);
	EXPECT_EQ(0, qi.senders);
	kvmq_grant(self->b.vmq, 0, ID_A);
	kvmq_grant(self->b.vmq, 0, 7);
	EXPECT_EQ(0, kvmq_post_err(self->b.vmq, 0, hi, sizeof(hi)));
	EXPECT_EQ(0, kvmq_post_err(self->b.vmq, 0, hi, sizeof(hi)));
	EXPECT_EQ(0, kvmq_post_err(self->b.vmq, KVMQ_QUEUE_VCPU(1), hi, 1));
	EXPECT_EQ(0, queue_info(self->b.vmq, 0, &qi));
	EXPECT_EQ(2, qi.length);
	EXPECT_EQ(2, qi.senders);
	EXPECT_EQ(0, queue_info(self->b.vmq, KVMQ_QUEUE_VCPU(1), &qi));
	EXPECT_EQ(1, qi.length);
	EXPECT_EQ(0, qi.senders);
	EXPECT_EQ(0, kvmq_grant_err(self->b.vmq, KVMQ_VM_REVOKE, 0, 7));
	EXPECT_EQ(0, queue_info(self->b.vmq, 0, &qi));
	EXPECT_EQ(1, qi.senders);

	EXPECT_EQ(-EINVAL, queue_info(self->b.vmq, 1, &qi));
	EXPECT_EQ(-EINVAL, queue_info(self->b.vmq, KVMQ_QUEUE_VCPU(2), &qi));
	qi.__reserved = 1;
	qi.queue = 0;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->b.vmq, KVMQ_VM_GET_QUEUE, &qi));
	EXPECT_EQ(-ENODEV, queue_info(vmq, 0, &qi));
	close(vmq);
	kvm_vm_free(vm);
}

TEST(queues_config)
{
	struct kvmq_vm_queues cfg = { .size = sizeof(cfg) };
	int dev = kvmq_open_dev();
	struct kvm_vcpu *vcpu[2];
	struct kvm_vm *vm = vm_create_with_vcpus(2, NULL, vcpu);
	int vmq = kvmq_attach(dev, vm);
	static const struct { uint32_t nr, nr_vcpu, depth; } bad[] = {
		{ 0, 2, 1 },			/* no VM queue */
		{ KVMQ_QUEUES_MAX + 1, 2, 1 },
		{ 1, 1, 1 },			/* fewer than vCPUs */
		{ 1, KVMQ_VCPU_QUEUES_MAX + 1, 1 },
		{ 1, 2, 0 },
		{ 1, 2, KVMQ_DEPTH_MAX + 1 },
	};
	int i;

	EXPECT_EQ(-ENODEV, kvmq_ioctl_err(vmq, KVMQ_VM_GET_QUEUES, &cfg));
	EXPECT_EQ(-ENODEV, kvmq_grant_err(vmq, KVMQ_VM_GRANT, 0, 1));
	EXPECT_EQ(-ENODEV, kvmq_grant_err(vmq, KVMQ_VM_REVOKE, 0, 1));
	EXPECT_EQ(-ENODEV, kvmq_post_err(vmq, 0, &cfg, 1));

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-1, __kvmq_set_queues(vmq, bad[i].nr, bad[i].nr_vcpu,
						bad[i].depth));
		EXPECT_EQ(EINVAL, errno);
	}
	cfg.nr_queues = 1;
	cfg.nr_vcpu_queues = 2;
	cfg.depth = 1;
	cfg.__reserved = 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(vmq, KVMQ_VM_SET_QUEUES, &cfg));
	cfg.__reserved = 0;
	cfg.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(vmq, KVMQ_VM_SET_QUEUES, &cfg));
	cfg.flags = 0;
	/* Limits: pages 4 KiB aligned; memory 0 (default) or in range. */
	cfg.page_limit = PG - 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(vmq, KVMQ_VM_SET_QUEUES, &cfg));
	cfg.page_limit = KVMQ_APERTURE_MAX + PG;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(vmq, KVMQ_VM_SET_QUEUES, &cfg));
	cfg.page_limit = 0;
	cfg.mem_limit = KVMQ_MEM_LIMIT_MIN - 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(vmq, KVMQ_VM_SET_QUEUES, &cfg));
	cfg.mem_limit = KVMQ_MEM_LIMIT_MAX + 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(vmq, KVMQ_VM_SET_QUEUES, &cfg));
	cfg.mem_limit = 0;
	cfg.mem = 1;					/* output only */
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(vmq, KVMQ_VM_SET_QUEUES, &cfg));
	cfg.mem = 0;
	EXPECT_EQ(-ENODEV, kvmq_ioctl_err(vmq, KVMQ_VM_GET_QUEUES, &cfg));

	kvmq_set_queues(vmq, KVMQ_QUEUES_MAX, 2, KVMQ_DEPTH_MAX);
	EXPECT_EQ(-1, __kvmq_set_queues(vmq, 1, 2, 1));
	EXPECT_EQ(EBUSY, errno);
	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	ASSERT_EQ(0, kvmq_ioctl_err(vmq, KVMQ_VM_GET_QUEUES, &cfg));
	EXPECT_EQ(KVMQ_QUEUES_MAX, cfg.nr_queues);
	EXPECT_EQ(2, cfg.nr_vcpu_queues);
	EXPECT_EQ(KVMQ_DEPTH_MAX, cfg.depth);
	/* Nothing set: no page limit but the quota, the default memory. */
	EXPECT_EQ(0, cfg.page_limit);
	EXPECT_EQ(KVMQ_MEM_LIMIT_DEFAULT, cfg.mem_limit);
	EXPECT_EQ(0, cfg.mem);

	/* Grants name an identity on an existing queue, once. */
	EXPECT_EQ(0, kvmq_grant_err(vmq, KVMQ_VM_GRANT, KVMQ_QUEUES_MAX - 1, 5));
	EXPECT_EQ(-EEXIST, kvmq_grant_err(vmq, KVMQ_VM_GRANT, KVMQ_QUEUES_MAX - 1, 5));
	EXPECT_EQ(0, kvmq_grant_err(vmq, KVMQ_VM_GRANT, KVMQ_QUEUE_VCPU(1), 5));
	EXPECT_EQ(-EINVAL, kvmq_grant_err(vmq, KVMQ_VM_GRANT, KVMQ_QUEUES_MAX, 5));
	EXPECT_EQ(-EINVAL, kvmq_grant_err(vmq, KVMQ_VM_GRANT, KVMQ_QUEUE_VCPU(2), 5));
	EXPECT_EQ(-EINVAL, kvmq_grant_err(vmq, KVMQ_VM_GRANT, 0, 0));
	EXPECT_EQ(-EINVAL, kvmq_grant_err(vmq, KVMQ_VM_GRANT, 0, KVMQ_ID_MAX + 1));
	EXPECT_EQ(-ENOENT, kvmq_grant_err(vmq, KVMQ_VM_REVOKE, 0, 5));
	EXPECT_EQ(0, kvmq_grant_err(vmq, KVMQ_VM_REVOKE, KVMQ_QUEUE_VCPU(1), 5));
	EXPECT_EQ(-EINVAL, kvmq_grant_err(vmq, KVMQ_VM_REVOKE, 0, 0));

	close(vmq);
	kvm_vm_free(vm);
	close(dev);
}

/* A: send @n 2-page messages of @seed's payload to @peer. */
static void guest_send_n(uint64_t gva, uint64_t gpa, uint64_t peer,
			 uint64_t n, uint64_t seed)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t i;

	for (i = 0; i < n; i++) {
		msg_init(m, KVMQ_MSG_PAGES, 2, 2 * PG);
		fill((uint8_t *)AP, 2 * PG, seed + i);
		m->gpas[0] = AP;
		m->gpas[1] = AP + PG;
		EXPECT_HC(0, KVMQ_HC_SEND, peer, 0, gpa);
	}
	GUEST_DONE();
}

/* B: receive @n messages and check them. */
static void guest_recv_n(uint64_t gva, uint64_t gpa, uint64_t peer,
			 uint64_t n, uint64_t seed)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t i;

	for (i = 0; i < n; i++) {
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
		GUEST_ASSERT_EQ(m->sender, peer);
		GUEST_ASSERT(check((uint8_t *)m->gpa, 2 * PG, seed + i, 0));
	}
	GUEST_DONE();
}

/*
 * Messages queued both ways when VMs go away: what was sent to a VM that
 * is gone is freed with it; what a VM sent before going away is still
 * delivered, intact.
 */
TEST_F(q, inflight_close)
{
	int i;

	kvmq_grant(self->a.vmq, 0, ID_B);
	kvmq_grant(self->b.vmq, 0, ID_A);
	for (i = 0; i < 3; i++) {
		set_guest(&self->a, guest_send_n, ID_B, 3, 10 * i);
		set_guest(&self->b, guest_send_n, ID_A, 4, 0);
		kvmq_run_to_done(self->a.vcpu);
		kvmq_run_to_done(self->b.vcpu);
		/* Queued: 3 + 4 messages of 2 pages; held: each staging block. */
		EXPECT_EQ((3 + 4) * 2 + 2 * (512 - 2), kvmq_pool_pages());

		/*
		 * A goes: VM fd first, then the kvmq file and mapping; or the
		 * kvmq file first; or A detaches (the mapping and the kvmq
		 * file go) while its VM lives on.
		 */
		if (i == 1) {
			close(self->a.vmq);
			self->a.vmq = -1;
		} else if (i == 2) {
			munmap(self->a.ap, self->a.ap_len);
			self->a.ap_len = 0;
			close(self->a.vmq);
			self->a.vmq = -1;
			/* Gone: A's aperture and what B sent A. */
			EXPECT_EQ(3 * 2 + (512 - 2), kvmq_pool_pages());
		}
		kvmq_peer_destroy(&self->a);
		set_guest(&self->b, guest_recv_n, ID_A, 3, 10 * i);
		kvmq_run_to_done(self->b.vcpu);

		kvmq_peer_destroy(&self->b);
		EXPECT_EQ(0, kvmq_pool_pages());
		kvmq_peer_create(&self->a, self->dev, self->group, ID_A, NULL,
				 AP_LEN, AP_LEN, 4);
		kvmq_peer_create(&self->b, self->dev, self->group, ID_B, NULL,
				 AP_LEN, AP_LEN, 4);
		kvmq_grant(self->a.vmq, 0, ID_B);
		kvmq_grant(self->b.vmq, 0, ID_A);
	}
}

/*
 * A VMM in another process, sharing the group by inheritance, sends pages
 * to this one's VM and is SIGKILLed with messages queued both ways.
 */
TEST_F(q, vmm_killed)
{
	int i, ready[2], status;
	struct kvmq_peer c;
	pid_t pid;
	char ch;

	kvmq_grant(self->b.vmq, 0, 3);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, pipe(ready));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			kvmq_peer_create(&c, self->dev, self->group, 3,
					 guest_send_n, AP_LEN, AP_LEN, 4);
			kvmq_grant(c.vmq, 0, ID_B);
			vcpu_args_set(c.vcpu, 5, c.msg_gva, c.msg_gpa, ID_B, 3,
				      100 * i);
			kvmq_run_to_done(c.vcpu);
			TEST_ASSERT(write(ready[1], "r", 1) == 1, "pipe");
			pause();
			_exit(1);
		}
		ASSERT_EQ(1, read(ready[0], &ch, 1));
		close(ready[0]);
		close(ready[1]);

		/* B sends into the child's VM, which never receives. */
		set_guest(&self->b, guest_send_n, 3, 2, 0);
		kvmq_run_to_done(self->b.vcpu);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));

		set_guest(&self->b, guest_recv_n, 3, 3, 100 * i);
		kvmq_run_to_done(self->b.vcpu);
		/* B's own block from guest_send_n's staging, nothing else. */
		kvmq_peer_destroy(&self->b);
		EXPECT_EQ(0, kvmq_pool_pages());
		kvmq_peer_create(&self->b, self->dev, self->group, ID_B, NULL,
				 AP_LEN, AP_LEN, 4);
		kvmq_grant(self->b.vmq, 0, 3);
	}
}

FIXTURE(pipeline) {
	int unused;
};

FIXTURE_SETUP(pipeline)
{
	ASSERT_EQ(0, kvmq_pool_settled());
}

FIXTURE_TEARDOWN(pipeline)
{
}

/*
 * read -> decode -> play, three VMMs, 1000 messages of every kind: the
 * bytes arrive in order, decoded, and page messages are never copied.
 */
TEST_F_TIMEOUT(pipeline, read_decode_play, 900)
{
	struct kvmq_pipeline_report r;
	int i;

	kvmq_pipeline_run(1000, 0, false, &r);
	EXPECT_TRUE(r.verified);
	EXPECT_EQ(1000, r.messages);
	EXPECT_EQ(r.expect_bytes, r.bytes);
	EXPECT_EQ(r.expect_hash, r.hash);
	EXPECT_LT(0, r.kinds[KVMQ_MSG_BYTES]);
	EXPECT_LT(0, r.kinds[KVMQ_MSG_PAGES]);
	EXPECT_LT(0, r.kinds[KVMQ_MSG_BLOCKS]);
	EXPECT_EQ(r.expect_pages_moved, r.pages_moved);
	EXPECT_EQ(r.expect_bytes_copied, r.bytes_copied);
	/* One unmap per page message each hop, one per release in play. */
	EXPECT_EQ(3 * r.page_messages, r.unmaps);
	/*
	 * KVM's count agrees that flushes go per message, not per page: the
	 * 1000 messages move some 68,000 pages; each VM flushes about once
	 * per page message, and some more on a slower (debug) kernel, but
	 * far fewer than once per 16 pages.
	 */
	for (i = 0; i < 3; i++)
		EXPECT_GT(r.pages_moved / 16, r.vm[i].tlb_flushes);
	EXPECT_LE(r.page_messages, r.vm[PL_READ].tlb_flushes);
	EXPECT_EQ(0, r.pool_pages_after);
}

/*
 * The same over rings: lazy linked sends, receive rings, receivers that
 * halt until an arrival interrupt.  No VM makes a hypercall; the page
 * moves of a window share an unmap.
 */
TEST_F_TIMEOUT(pipeline, read_decode_play_rings, 900)
{
	struct kvmq_pipeline_report r;
	int i;

	kvmq_pipeline_run(500, 0, true, &r);
	EXPECT_TRUE(r.verified);
	EXPECT_EQ(500, r.messages);
	EXPECT_EQ(r.expect_hash, r.hash);
	EXPECT_EQ(r.expect_pages_moved, r.pages_moved);
	EXPECT_EQ(r.expect_bytes_copied, r.bytes_copied);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, r.vm[i].hypercalls);
	/* play's releases, one each; fewer sends than page messages. */
	EXPECT_LE(r.page_messages, r.unmaps);
	EXPECT_GT(3 * r.page_messages, r.unmaps);
	EXPECT_EQ(0, r.pool_pages_after);
}

KVMQ_TEST_HARNESS_MAIN
