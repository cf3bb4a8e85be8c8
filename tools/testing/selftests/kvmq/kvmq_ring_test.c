// SPDX-License-Identifier: GPL-2.0
/*
 * Rings: setup and mapping, receive rings filled without an exit of the
 * receiver, submission and completion rings consumed by KVMQ_HC_SUBMIT,
 * messages that wait for room and keep their order, and guests that
 * corrupt their own rings.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(8ULL << 20)
#define RINGS		KVMQ_TEST_RING_GPA
#define ID_A		1
#define ID_B		2
#define RX_ENTRIES	4
#define SQ_ENTRIES	8
/* Message buffers of guests that send through their submission ring. */
#define BUFS		(AP + (4ULL << 20))

#define EXPECT_HC(expect, nr, a0, a1, a2) \
	GUEST_ASSERT_EQ(kvmq_hc(nr, a0, a1, a2), (uint64_t)(expect))

/* The ring layout, as the VMM learned it; copied into each guest. */
static struct kvmq_vm_rings lay;

static struct kvmq_ring *rx_ring(uint32_t qidx)
{
	return (void *)(RINGS + qidx * lay.rx_stride);
}

static struct kvmq_ring *sq_ring(void)
{
	return (void *)(RINGS + lay.vcpu_offset);	/* vCPU 0 */
}

static struct kvmq_ring *cq_ring(void)
{
	return (void *)(RINGS + lay.vcpu_offset + lay.cq_offset);
}

static void *entry(struct kvmq_ring *r, uint32_t n, size_t size)
{
	return (char *)(r + 1) + (n & (r->entries - 1)) * size;
}

/* Guest: the next message of receive ring @r, or NULL; no exit. */
static struct kvmq_msg *rx_peek(struct kvmq_ring *r)
{
	uint32_t cons = r->cons;

	if (__atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) == cons)
		return NULL;
	return entry(r, cons, sizeof(struct kvmq_msg));
}

static void rx_done(struct kvmq_ring *r)
{
	__atomic_store_n(&r->cons, r->cons + 1, __ATOMIC_RELEASE);
}

/* Guest: post a submission entry; the doorbell is the caller's. */
static void sq_post_flags(uint8_t op, uint8_t flags, uint32_t dest,
			  uint32_t queue, uint32_t nr, uint64_t gpa,
			  uint64_t user_data)
{
	struct kvmq_ring *r = sq_ring();
	struct kvmq_sqe *e = entry(r, r->prod, sizeof(*e));

	memset(e, 0, sizeof(*e));
	e->op = op;
	e->flags = flags;
	e->dest = dest;
	e->queue = queue;
	e->nr = nr;
	e->gpa = gpa;
	e->user_data = user_data;
	__atomic_store_n(&r->prod, r->prod + 1, __ATOMIC_RELEASE);
}

static void sq_post(uint8_t op, uint32_t dest, uint32_t queue, uint32_t nr,
		    uint64_t gpa, uint64_t user_data)
{
	sq_post_flags(op, 0, dest, queue, nr, gpa, user_data);
}

/* Guest: the next completion, which must exist. */
static struct kvmq_cqe cq_take(void)
{
	struct kvmq_ring *r = cq_ring();
	struct kvmq_cqe c;

	GUEST_ASSERT(__atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) != r->cons);
	c = *(struct kvmq_cqe *)entry(r, r->cons, sizeof(c));
	__atomic_store_n(&r->cons, r->cons + 1, __ATOMIC_RELEASE);
	return c;
}

static uint32_t cq_count(void)
{
	struct kvmq_ring *r = cq_ring();

	return __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) - r->cons;
}

/* Guest: message @seq: 100 + seq bytes of (seq + j), or 2 pages. */
static void build(struct kvmq_msg *m, uint32_t kind, uint32_t seq)
{
	uint32_t j;

	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = kind;
	if (kind == KVMQ_MSG_BYTES) {
		m->len = 100 + seq;
		for (j = 0; j < m->len; j++)
			m->data[j] = seq + j;
		return;
	}
	m->nr = 2;
	m->len = 2 * PG;
	for (j = 0; j < 2; j++) {
		m->gpas[j] = AP + (2 * seq + j) * PG;
		*(volatile uint64_t *)m->gpas[j] = seq * 10 + j;
	}
}

/* Guest: whether @m is message @seq of @kind from @sender. */
static bool is_msg(struct kvmq_msg *m, uint32_t kind, uint32_t seq,
		   uint32_t sender)
{
	uint32_t j;

	if (m->kind != kind || m->sender != sender || m->flags ||
	    m->__reserved)
		return false;
	if (kind == KVMQ_MSG_BYTES) {
		if (m->len != 100 + seq || m->gpa)
			return false;
		for (j = 0; j < m->len; j++)
			if (m->data[j] != (uint8_t)(seq + j))
				return false;
		return true;
	}
	if (m->nr != 2 || m->len != 2 * PG || m->gpa < AP ||
	    m->gpa >= AP + AP_LEN)
		return false;
	for (j = 0; j < 2; j++)
		if (*(volatile uint64_t *)(m->gpa + j * PG) != seq * 10 + j)
			return false;
	return true;
}

FIXTURE(ring) {
	int dev, group;
	struct kvmq_peer a, b;
};

FIXTURE_SETUP(ring)
{
	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	kvmq_peer_create(&self->a, self->dev, self->group, ID_A, NULL,
			 AP_LEN, AP_LEN, 16);
	kvmq_peer_create(&self->b, self->dev, self->group, ID_B, NULL,
			 AP_LEN, AP_LEN, 16);
	kvmq_grant(self->b.vmq, 0, ID_A);
	kvmq_grant(self->a.vmq, 0, ID_B);
}

FIXTURE_TEARDOWN(ring)
{
	kvmq_peer_destroy(&self->a);
	kvmq_peer_destroy(&self->b);
	close(self->group);
	close(self->dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

static void set_guest(struct kvmq_peer *p, void *code, uint64_t a2,
		      uint64_t a3)
{
	vcpu_arch_set_entry_point(p->vcpu, code);
	vcpu_args_set(p->vcpu, 4, p->msg_gva, p->msg_gpa, a2, a3);
}

static void rings(struct kvmq_peer *p)
{
	kvmq_peer_rings(p, RX_ENTRIES, SQ_ENTRIES, &lay);
	sync_global_to_guest(p->vm, lay);
}

static struct ucall run_sync(struct kvmq_peer *p, int stage)
{
	struct ucall uc;

	TEST_ASSERT(kvmq_run(p->vcpu, &uc) == UCALL_SYNC, "expected a sync");
	TEST_ASSERT(uc.args[1] == stage, "stage %lu, expected %d",
		    uc.args[1], stage);
	return uc;
}

/* Sender A, polled hypercalls: @n messages of @kind to B's queue 0. */
static void guest_send(uint64_t gva, uint64_t gpa, uint64_t kind,
		       uint64_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		build((void *)gva, kind, i);
		EXPECT_HC(0, KVMQ_HC_SEND, ID_B, 0, gpa);
	}
	GUEST_DONE();
}

/*
 * Receiver B: @n messages of @kind arrive in the ring of its queue 0; it
 * reads them with memory accesses only, then checks QLEN and RECV.
 */
static void guest_rx(uint64_t gva, uint64_t gpa, uint64_t kind, uint64_t n)
{
	struct kvmq_ring *r = rx_ring(0);
	struct kvmq_msg *m;
	uint32_t i;

	GUEST_ASSERT_EQ(r->entries, RX_ENTRIES);
	for (i = 0; i < n; i++) {
		m = rx_peek(r);
		GUEST_ASSERT(m);
		GUEST_ASSERT(is_msg(m, kind, i, ID_A));
		rx_done(r);
	}
	GUEST_ASSERT(!rx_peek(r));
	GUEST_SYNC(1);
	EXPECT_HC(0, KVMQ_HC_QLEN, 0, 0, 0);
	EXPECT_HC(-EOPNOTSUPP, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

static void rx_one_kind(FIXTURE_DATA(ring) *self, uint32_t kind)
{
	uint64_t hc;

	rings(&self->b);
	set_guest(&self->a, guest_send, kind, RX_ENTRIES);
	kvmq_run_to_done(self->a.vcpu);

	/* B consumes the ring with no hypercall at all. */
	hc = kvmq_vcpu_stat(self->b.vcpu, "hypercalls");
	set_guest(&self->b, guest_rx, kind, RX_ENTRIES);
	run_sync(&self->b, 1);
	TEST_ASSERT(kvmq_vcpu_stat(self->b.vcpu, "hypercalls") == hc,
		    "the receiver made hypercalls");
	kvmq_run_to_done(self->b.vcpu);
}

TEST_F(ring, rx_bytes)
{
	rx_one_kind(self, KVMQ_MSG_BYTES);
}

TEST_F(ring, rx_pages)
{
	uint64_t held = kvmq_aperture_held(self->b.vmq);

	rx_one_kind(self, KVMQ_MSG_PAGES);
	/* The pages were placed in B's aperture as they reached the ring. */
	EXPECT_EQ(held + RX_ENTRIES * 2 * PG,
		  kvmq_aperture_held(self->b.vmq));
}

/*
 * Sender A with rings: a burst of sends and a release through the
 * submission ring, one doorbell; one completion each, in order.
 */
static void guest_submit(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)BUFS;
	struct kvmq_cqe c;
	uint32_t i;

	/* Each message in its own buffer: the entries point at them. */
	for (i = 0; i < 3; i++) {
		build(m + i, KVMQ_MSG_BYTES, i);
		sq_post(KVMQ_OP_SEND, ID_B, 0, 0, BUFS + i * sizeof(*m),
			100 + i);
	}
	*(volatile uint64_t *)(AP + 64 * PG) = 1;
	sq_post(KVMQ_OP_RELEASE, 0, 0, 1, AP + 64 * PG, 200);
	sq_post(KVMQ_OP_SEND, 99, 0, 0, BUFS, 300);	/* no such VM */
	GUEST_ASSERT_EQ(cq_count(), 0);

	EXPECT_HC(5, KVMQ_HC_SUBMIT, 0, 0, 0);
	GUEST_ASSERT_EQ(sq_ring()->cons, 5);
	for (i = 0; i < 3; i++) {
		c = cq_take();
		GUEST_ASSERT_EQ(c.user_data, 100 + i);
		GUEST_ASSERT_EQ(c.res, 0);
	}
	c = cq_take();
	GUEST_ASSERT_EQ(c.user_data, 200);
	GUEST_ASSERT_EQ(c.res, 1);			/* one page freed */
	c = cq_take();
	GUEST_ASSERT_EQ(c.user_data, 300);
	GUEST_ASSERT_EQ(c.res, -ENOENT);
	GUEST_ASSERT_EQ(cq_count(), 0);
	EXPECT_HC(0, KVMQ_HC_SUBMIT, 0, 0, 0);		/* nothing left */
	EXPECT_HC(-EINVAL, KVMQ_HC_SUBMIT, 1, 0, 0);
	GUEST_DONE();
}

static void guest_recv3(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint32_t i;

	for (i = 0; i < 3; i++) {
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
		GUEST_ASSERT(is_msg(m, KVMQ_MSG_BYTES, i, ID_A));
	}
	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

TEST_F(ring, submit)
{
	uint64_t hc;

	rings(&self->a);
	hc = kvmq_vcpu_stat(self->a.vcpu, "hypercalls");
	set_guest(&self->a, guest_submit, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
	/* Five operations, three doorbells. */
	EXPECT_EQ(3, kvmq_vcpu_stat(self->a.vcpu, "hypercalls") - hc);

	/* B has no rings: it receives with the polled hypercall. */
	set_guest(&self->b, guest_recv3, 0, 0);
	kvmq_run_to_done(self->b.vcpu);
}

/*
 * Two sends of one batch list the same page: the first takes it, the
 * second fails with -ENXIO, as it would on its own afterwards.  The page
 * has one owner: A holds one page less, B receives it once.
 */
static void guest_submit_same_page(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)BUFS;
	struct kvmq_cqe c;
	uint32_t i;

	*(volatile uint64_t *)AP = 7;
	for (i = 0; i < 2; i++) {
		memset(m + i, 0, offsetof(struct kvmq_msg, data));
		m[i].kind = KVMQ_MSG_PAGES;
		m[i].nr = 1;
		m[i].len = PG;
		m[i].gpas[0] = AP;
		sq_post(KVMQ_OP_SEND, ID_B, 0, 0, BUFS + i * sizeof(*m), i);
	}
	EXPECT_HC(2, KVMQ_HC_SUBMIT, 0, 0, 0);
	c = cq_take();
	GUEST_ASSERT_EQ(c.res, 0);
	c = cq_take();
	GUEST_ASSERT_EQ(c.res, -ENXIO);
	GUEST_DONE();
}

static void guest_recv_page(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;

	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT(m->kind == KVMQ_MSG_PAGES && m->nr == 1);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)m->gpa, 7);
	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);
	EXPECT_HC(1, KVMQ_HC_RELEASE, m->gpa, 1, 0);
	GUEST_DONE();
}

TEST_F(ring, batch_same_page)
{
	uint64_t held;

	rings(&self->a);
	set_guest(&self->a, guest_submit_same_page, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
	held = kvmq_aperture_held(self->a.vmq);
	/* The page left once; B's queue holds it once. */
	EXPECT_EQ(PG, kvmq_get_aperture(self->b.vmq).queued);
	EXPECT_EQ(kvmq_pool_pages() * PG,
		  held + kvmq_get_aperture(self->b.vmq).queued);
	set_guest(&self->b, guest_recv_page, 0, 0);
	kvmq_run_to_done(self->b.vcpu);
	EXPECT_EQ(0, kvmq_aperture_held(self->b.vmq));
	EXPECT_EQ(held, kvmq_pool_pages() * PG);
}

/*
 * B's ring takes RX_ENTRIES messages; the rest wait in the kernel, in
 * order, until B consumed some and rang (or exited on its own): then they
 * follow, in order.  A message whose pages find no free slots waits the
 * same way.
 */
static void guest_rx_wait(uint64_t gva, uint64_t gpa, uint64_t kind,
			  uint64_t n)
{
	struct kvmq_ring *r = rx_ring(0);
	struct kvmq_msg *m;
	uint32_t i;

	EXPECT_HC(n, KVMQ_HC_QLEN, 0, 0, 0);
	for (i = 0; i < n; i++) {
		m = rx_peek(r);
		if (!m) {
			/*
			 * Consumed all it had: make the kernel refill.  (An
			 * exit of the vCPU meanwhile may have refilled part
			 * of the ring already.)
			 */
			GUEST_ASSERT(i);
			EXPECT_HC(0, KVMQ_HC_SUBMIT, 0, 0, 0);
			m = rx_peek(r);
			GUEST_ASSERT(m);
		}
		GUEST_ASSERT(is_msg(m, kind, i, ID_A));
		if (kind != KVMQ_MSG_BYTES)
			EXPECT_HC(2, KVMQ_HC_RELEASE, m->gpa, 2, 0);
		rx_done(r);
	}
	GUEST_ASSERT(!rx_peek(r));
	EXPECT_HC(0, KVMQ_HC_SUBMIT, 0, 0, 0);
	GUEST_ASSERT(!rx_peek(r));
	EXPECT_HC(0, KVMQ_HC_QLEN, 0, 0, 0);
	GUEST_DONE();
}

TEST_F(ring, rx_full_bytes)
{
	rings(&self->b);
	set_guest(&self->a, guest_send, KVMQ_MSG_BYTES, 3 * RX_ENTRIES);
	kvmq_run_to_done(self->a.vcpu);
	set_guest(&self->b, guest_rx_wait, KVMQ_MSG_BYTES, 3 * RX_ENTRIES);
	kvmq_run_to_done(self->b.vcpu);
}

TEST_F(ring, rx_full_pages)
{
	struct kvmq_vm_aperture ap;

	rings(&self->b);
	set_guest(&self->a, guest_send, KVMQ_MSG_PAGES, 3 * RX_ENTRIES);
	kvmq_run_to_done(self->a.vcpu);
	/* The ring's messages are placed, the others still queued. */
	ap = kvmq_get_aperture(self->b.vmq);
	EXPECT_EQ(RX_ENTRIES * 2 * PG, ap.held);
	EXPECT_EQ(2 * RX_ENTRIES * 2 * PG, ap.queued);
	set_guest(&self->b, guest_rx_wait, KVMQ_MSG_PAGES, 3 * RX_ENTRIES);
	kvmq_run_to_done(self->b.vcpu);
	ap = kvmq_get_aperture(self->b.vmq);
	EXPECT_EQ(0, ap.held);
	EXPECT_EQ(0, ap.queued);
}

/* Messages queued before the rings existed go to the rings, in order. */
TEST_F(ring, queued_before)
{
	char hello[] = "hello";

	EXPECT_EQ(0, kvmq_post_err(self->b.vmq, 0, hello, sizeof(hello)));
	set_guest(&self->a, guest_send, KVMQ_MSG_BYTES, 2);
	kvmq_run_to_done(self->a.vcpu);
	rings(&self->b);
	EXPECT_EQ(3, ((struct kvmq_ring *)self->b.rings)->prod);
	EXPECT_EQ(0, strcmp((char *)self->b.rings + sizeof(struct kvmq_ring) +
			    offsetof(struct kvmq_msg, data), hello));
}

/*
 * A guest that scribbles on its rings: every malformed entry completes
 * with -EINVAL and the others run; an insane producer index makes kvmq
 * consume nothing; a full completion ring holds submissions back; an
 * insane consumer index of a receive ring keeps messages in the kernel.
 */
static void guest_corrupt(uint64_t gva, uint64_t gpa)
{
	struct kvmq_ring *sq = sq_ring(), *rx = rx_ring(0);
	struct kvmq_sqe *e;
	struct kvmq_cqe c;
	uint32_t i, good;

	build((void *)gva, KVMQ_MSG_BYTES, 0);
	sq_post(0, ID_B, 0, 0, gpa, 1);				/* no op */
	sq_post(9, ID_B, 0, 0, gpa, 2);				/* unknown */
	sq_post(KVMQ_OP_SEND, ID_B, 0, 1, gpa, 3);		/* nr */
	sq_post(KVMQ_OP_RELEASE, ID_B, 0, 1, AP, 4);		/* dest */
	sq_post(KVMQ_OP_SEND, ID_B, 0, 0, gpa, 5);
	e = entry(sq, sq->prod - 1, sizeof(*e));
	e->flags = 0x80;					/* flags */
	sq_post(KVMQ_OP_SEND, ID_B, 0, 0, gpa, 6);
	e = entry(sq, sq->prod - 1, sizeof(*e));
	e->__reserved = 1;					/* reserved */
	sq_post(KVMQ_OP_SEND, ID_B, 0, 0, 1ULL << 40, 7);	/* EFAULT */
	sq_post(KVMQ_OP_SEND, ID_B, 0, 0, gpa, 8);		/* good */
	EXPECT_HC(SQ_ENTRIES, KVMQ_HC_SUBMIT, 0, 0, 0);
	for (i = 1; i <= 6; i++) {
		c = cq_take();
		GUEST_ASSERT_EQ(c.user_data, i);
		GUEST_ASSERT_EQ(c.res, -EINVAL);
	}
	c = cq_take();
	GUEST_ASSERT_EQ(c.res, -EFAULT);
	c = cq_take();
	GUEST_ASSERT_EQ(c.user_data, 8);
	GUEST_ASSERT_EQ(c.res, 0);

	/* A producer index more than a ring ahead: nothing is consumed. */
	good = sq->prod;
	sq->prod = good + SQ_ENTRIES + 1;
	EXPECT_HC(0, KVMQ_HC_SUBMIT, 0, 0, 0);
	GUEST_ASSERT_EQ(sq->cons, good);
	sq->prod = good;

	/* The completion ring full: submissions wait for room. */
	for (i = 0; i < SQ_ENTRIES; i++)
		sq_post(KVMQ_OP_RELEASE, 0, 0, 1, AP + SZ_2M, 10 + i);
	cq_ring()->cons -= 2;	/* claims two completions unread */
	EXPECT_HC(SQ_ENTRIES - 2, KVMQ_HC_SUBMIT, 0, 0, 0);
	cq_ring()->cons += 2;
	for (i = 0; i < SQ_ENTRIES - 2; i++)
		GUEST_ASSERT_EQ(cq_take().user_data, 10 + i);
	EXPECT_HC(2, KVMQ_HC_SUBMIT, 0, 0, 0);
	GUEST_ASSERT_EQ(cq_take().user_data, 10 + SQ_ENTRIES - 2);
	GUEST_ASSERT_EQ(cq_take().user_data, 10 + SQ_ENTRIES - 1);

	/* Its own receive ring: a consumer index out of range. */
	rx->cons = rx->prod + 100;
	GUEST_SYNC(1);
	/* A sent a message meanwhile: it waits in the kernel. */
	GUEST_ASSERT_EQ(__atomic_load_n(&rx->prod, __ATOMIC_ACQUIRE),
			rx->cons - 100);
	EXPECT_HC(1, KVMQ_HC_QLEN, 0, 0, 0);
	rx->cons -= 100;
	EXPECT_HC(0, KVMQ_HC_SUBMIT, 0, 0, 0);
	GUEST_ASSERT(rx_peek(rx));
	GUEST_ASSERT(is_msg(rx_peek(rx), KVMQ_MSG_BYTES, 0, ID_A));
	rx_done(rx);
	GUEST_DONE();
}

TEST_F(ring, corrupt)
{
	kvmq_grant(self->b.vmq, 0, ID_B);	/* B sends to itself */
	rings(&self->b);
	set_guest(&self->b, guest_corrupt, 0, 0);
	run_sync(&self->b, 1);
	/* B's ring holds its self-sent message, unread. */
	set_guest(&self->a, guest_send, KVMQ_MSG_BYTES, 1);
	kvmq_run_to_done(self->a.vcpu);
	kvmq_run_to_done(self->b.vcpu);
}

/* Teardown with entries everywhere: rings, kernel queues, apertures. */
static void guest_leave(uint64_t gva, uint64_t gpa)
{
	uint32_t i;

	for (i = 0; i < SQ_ENTRIES / 2; i++) {
		build((void *)BUFS + i * sizeof(struct kvmq_msg),
		      KVMQ_MSG_PAGES, i);
		sq_post(KVMQ_OP_SEND, ID_B, 0, 0,
			BUFS + i * sizeof(struct kvmq_msg), i);
	}
	EXPECT_HC(SQ_ENTRIES / 2, KVMQ_HC_SUBMIT, 0, 0, 0);
	/* More posted, never submitted. */
	for (i = 0; i < SQ_ENTRIES / 2; i++)
		sq_post(KVMQ_OP_SEND, ID_B, 0, 0, gpa, i);
	GUEST_DONE();
}

TEST_F(ring, leave_pending)
{
	rings(&self->a);
	rings(&self->b);
	set_guest(&self->a, guest_leave, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
	set_guest(&self->a, guest_send, KVMQ_MSG_PAGES, RX_ENTRIES);
	kvmq_run_to_done(self->a.vcpu);
	/* B's ring is full, RX_ENTRIES more wait; the pool holds them all. */
	EXPECT_NE(0, kvmq_pool_pages());
}

/*
 * Lazy sends: entries flagged KVMQ_SQE_LAZY run at the vCPU's next natural
 * exit, in one batch, without a hypercall.  Here the exit is the
 * GUEST_SYNC, an exit to the VMM: the batch has run by the time the VMM
 * sees it.
 */
#define LAZY_N		SQ_ENTRIES

static void post_lazy_sends(uint32_t kind, uint32_t n)
{
	struct kvmq_msg *m = (void *)BUFS;
	uint32_t i;

	for (i = 0; i < n; i++) {
		build(m + i, kind, i);
		sq_post_flags(KVMQ_OP_SEND, KVMQ_SQE_LAZY, ID_B, 0, 0,
			      BUFS + i * sizeof(*m), i);
	}
}

static void check_completions(uint32_t n)
{
	struct kvmq_cqe c;
	uint32_t i;

	GUEST_ASSERT_EQ(cq_count(), n);
	for (i = 0; i < n; i++) {
		c = cq_take();
		GUEST_ASSERT_EQ(c.user_data, i);
		GUEST_ASSERT_EQ(c.res, 0);
	}
}

static void guest_lazy_sync(uint64_t gva, uint64_t gpa)
{
	post_lazy_sends(KVMQ_MSG_BYTES, LAZY_N);
	GUEST_SYNC(1);
	check_completions(LAZY_N);
	GUEST_DONE();
}

static void guest_recv_n(uint64_t gva, uint64_t gpa, uint64_t n)
{
	struct kvmq_msg *m = (void *)gva;
	uint32_t i;

	for (i = 0; i < n; i++) {
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
		GUEST_ASSERT(is_msg(m, KVMQ_MSG_BYTES, i, ID_A));
	}
	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

TEST_F(ring, lazy_sync)
{
	uint64_t batches = kvmq_debugfs_stat("lazy_batches");
	uint64_t hc, msgs = kvmq_debugfs_stat("messages");

	rings(&self->a);
	hc = kvmq_vcpu_stat(self->a.vcpu, "hypercalls");
	set_guest(&self->a, guest_lazy_sync, 0, 0);
	run_sync(&self->a, 1);
	/* All of them went at that exit, with no hypercall. */
	EXPECT_EQ(LAZY_N, kvmq_debugfs_stat("messages") - msgs);
	EXPECT_LE(1, kvmq_debugfs_stat("lazy_batches") - batches);
	EXPECT_EQ(0, kvmq_vcpu_stat(self->a.vcpu, "hypercalls") - hc);
	kvmq_run_to_done(self->a.vcpu);
	set_guest(&self->b, guest_recv_n, LAZY_N, 0);
	kvmq_run_to_done(self->b.vcpu);
}

/* An entry without the flag holds the ring, lazy ones behind it too. */
static void guest_lazy_blocked(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)BUFS;

	build(m, KVMQ_MSG_BYTES, 0);
	build(m + 1, KVMQ_MSG_BYTES, 1);
	sq_post(KVMQ_OP_SEND, ID_B, 0, 0, BUFS, 0);
	sq_post_flags(KVMQ_OP_SEND, KVMQ_SQE_LAZY, ID_B, 0, 0,
		      BUFS + sizeof(*m), 1);
	GUEST_SYNC(1);
	GUEST_ASSERT_EQ(cq_count(), 0);
	GUEST_ASSERT_EQ(sq_ring()->cons, 0);
	EXPECT_HC(2, KVMQ_HC_SUBMIT, 0, 0, 0);
	check_completions(2);
	GUEST_DONE();
}

TEST_F(ring, lazy_blocked)
{
	rings(&self->a);
	set_guest(&self->a, guest_lazy_blocked, 0, 0);
	run_sync(&self->a, 1);
	kvmq_run_to_done(self->a.vcpu);
	set_guest(&self->b, guest_recv_n, 2, 0);
	kvmq_run_to_done(self->b.vcpu);
}

/*
 * No exit requested at all: A posts lazy sends and spins on its completion
 * ring; B spins on its receive ring, which holds only half of them, and
 * gets the rest as it exits on its own.  Neither makes a hypercall; the
 * exits are the host's timer ticks.
 */
#define SPIN_MAX	(1ULL << 32)

static void guest_lazy_spin_send(uint64_t gva, uint64_t gpa)
{
	uint64_t spins = 0;

	post_lazy_sends(KVMQ_MSG_BYTES, LAZY_N);
	while (cq_count() < LAZY_N && ++spins < SPIN_MAX)
		cpu_relax();
	GUEST_ASSERT(spins < SPIN_MAX);
	check_completions(LAZY_N);
	GUEST_DONE();
}

static void guest_lazy_spin_recv(uint64_t gva, uint64_t gpa)
{
	struct kvmq_ring *r = rx_ring(0);
	uint64_t spins = 0;
	struct kvmq_msg *m;
	uint32_t i;

	for (i = 0; i < LAZY_N; i++) {
		while (!(m = rx_peek(r)) && ++spins < SPIN_MAX)
			cpu_relax();
		GUEST_ASSERT(m);
		GUEST_ASSERT(is_msg(m, KVMQ_MSG_BYTES, i, ID_A));
		rx_done(r);
	}
	GUEST_DONE();
}

TEST_F(ring, lazy_no_exit)
{
	uint64_t hc_a, hc_b;

	rings(&self->a);
	rings(&self->b);
	hc_a = kvmq_vcpu_stat(self->a.vcpu, "hypercalls");
	hc_b = kvmq_vcpu_stat(self->b.vcpu, "hypercalls");
	set_guest(&self->a, guest_lazy_spin_send, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
	set_guest(&self->b, guest_lazy_spin_recv, 0, 0);
	kvmq_run_to_done(self->b.vcpu);
	EXPECT_EQ(0, kvmq_vcpu_stat(self->a.vcpu, "hypercalls") - hc_a);
	EXPECT_EQ(0, kvmq_vcpu_stat(self->b.vcpu, "hypercalls") - hc_b);
}

/*
 * The lazy delay timer: with lazy_delay_us set, a lazy entry waits no
 * longer than that even if the vCPU does not exit on its own: the timer
 * makes it exit (lazy_kicks).  On an idle ring it makes no exit.
 */
#define TIMER_ROUNDS	16	/* B's queue depth */

/* B: @n copies of message 0 from A. */
static void guest_recv_same(uint64_t gva, uint64_t gpa, uint64_t n)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t i;

	for (i = 0; i < n; i++) {
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
		GUEST_ASSERT(is_msg(m, KVMQ_MSG_BYTES, 0, ID_A));
	}
	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

static void guest_lazy_timer(uint64_t gva, uint64_t gpa)
{
	uint64_t spins, r;

	/* Idle: spin a while with nothing posted. */
	for (spins = 0; spins < (1ULL << 22); spins++)
		cpu_relax();
	GUEST_SYNC(1);
	/*
	 * Rounds of one lazy send each, waited for by spinning: some may go
	 * at an exit of the vCPU's own, the others at the timer's.
	 */
	for (r = 0; r < TIMER_ROUNDS; r++) {
		post_lazy_sends(KVMQ_MSG_BYTES, 1);
		for (spins = 0; !cq_count() && spins < SPIN_MAX; spins++)
			cpu_relax();
		check_completions(1);
	}
	GUEST_DONE();
}

TEST_F(ring, lazy_timer)
{
	uint64_t hc;

	memset(&lay, 0, sizeof(lay));
	lay.size = sizeof(lay);
	lay.rx_entries = RX_ENTRIES;
	lay.sq_entries = SQ_ENTRIES;
	lay.lazy_delay_us = 1;			/* below KVMQ_LAZY_DELAY_MIN */
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->a.vmq, KVMQ_VM_SET_RINGS,
					  &lay));
	lay.lazy_delay_us = KVMQ_LAZY_DELAY_MAX + 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->a.vmq, KVMQ_VM_SET_RINGS,
					  &lay));
	lay.lazy_delay_us = 500;
	ASSERT_EQ(0, kvmq_ioctl_err(self->a.vmq, KVMQ_VM_SET_RINGS, &lay));
	self->a.rings_len = lay.length;
	self->a.rings = mmap(NULL, lay.length, PROT_READ | PROT_WRITE,
			     MAP_SHARED, self->a.vmq, KVMQ_RINGS_MMAP_OFFSET);
	ASSERT_NE(MAP_FAILED, self->a.rings);
	vm_set_user_memory_region(self->a.vm, KVMQ_TEST_RING_SLOT, 0, RINGS,
				  lay.length, self->a.rings);
	virt_map(self->a.vm, RINGS, RINGS, lay.length / PG);
	sync_global_to_guest(self->a.vm, lay);

	hc = kvmq_vcpu_stat(self->a.vcpu, "hypercalls");
	set_guest(&self->a, guest_lazy_timer, 0, 0);
	run_sync(&self->a, 1);
	EXPECT_EQ(0, kvmq_get_stats(self->a.vmq).lazy_kicks);	/* idle */
	kvmq_run_to_done(self->a.vcpu);
	EXPECT_LE(1, kvmq_get_stats(self->a.vmq).lazy_kicks);
	EXPECT_EQ(0, kvmq_vcpu_stat(self->a.vcpu, "hypercalls") - hc);
	set_guest(&self->b, guest_recv_same, TIMER_ROUNDS, 0);
	kvmq_run_to_done(self->b.vcpu);
}

/*
 * A batch of sends from one submission ring moves its pages with one unmap
 * of the sender's aperture and one TLB flush, whatever the number of page
 * messages in it; a bytes message among them keeps its place in the queue.
 */
#define MIXED_BYTES	3	/* the one bytes message of the batch */

static uint32_t mixed_kind(uint32_t seq)
{
	return seq == MIXED_BYTES ? KVMQ_MSG_BYTES : KVMQ_MSG_PAGES;
}

static void guest_batch_send(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)BUFS;
	struct kvmq_ring *sq = sq_ring();
	struct kvmq_sqe *e;
	uint32_t i;

	/*
	 * Build every message first, then publish all the entries with one
	 * store: an exit in between (a fault while building, frequent with
	 * shadow paging) would otherwise run part of the burst as a batch.
	 */
	for (i = 0; i < LAZY_N; i++)
		build(m + i, mixed_kind(i), i);
	for (i = 0; i < LAZY_N; i++) {
		e = entry(sq, sq->prod + i, sizeof(*e));
		memset(e, 0, sizeof(*e));
		e->op = KVMQ_OP_SEND;
		e->flags = KVMQ_SQE_LAZY;
		e->dest = ID_B;
		e->gpa = BUFS + i * sizeof(*m);
		e->user_data = i;
	}
	__atomic_store_n(&sq->prod, sq->prod + LAZY_N, __ATOMIC_RELEASE);
	GUEST_SYNC(1);
	check_completions(LAZY_N);
	GUEST_DONE();
}

static void guest_batch_recv(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint32_t i;

	for (i = 0; i < LAZY_N; i++) {
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
		GUEST_ASSERT(is_msg(m, mixed_kind(i), i, ID_A));
	}
	GUEST_DONE();
}

TEST_F(ring, batch_one_unmap)
{
	uint64_t unmaps, moved, flushes;
	struct kvmq_vm_stats st;

	rings(&self->a);
	set_guest(&self->a, guest_batch_send, 0, 0);
	unmaps = kvmq_debugfs_stat("unmaps");
	moved = kvmq_debugfs_stat("pages_moved");
	flushes = vm_get_stat(self->a.vm, "remote_tlb_flush_requests");
	run_sync(&self->a, 1);
	EXPECT_EQ(1, kvmq_debugfs_stat("unmaps") - unmaps);
	EXPECT_EQ((LAZY_N - 1) * 2, kvmq_debugfs_stat("pages_moved") - moved);
	EXPECT_EQ(1, vm_get_stat(self->a.vm, "remote_tlb_flush_requests") -
		     flushes);
	kvmq_run_to_done(self->a.vcpu);
	set_guest(&self->b, guest_batch_recv, 0, 0);
	kvmq_run_to_done(self->b.vcpu);

	/* Each VM's own account of it. */
	st = kvmq_get_stats(self->a.vmq);
	EXPECT_EQ(1, st.sent[0]);
	EXPECT_EQ(LAZY_N - 1, st.sent[1]);
	EXPECT_EQ(0, st.sent[2]);
	EXPECT_EQ((LAZY_N - 1) * 2 * PG + 100 + MIXED_BYTES, st.sent_bytes);
	EXPECT_EQ((LAZY_N - 1) * 2, st.pages_moved);
	EXPECT_EQ(1, st.unmaps);
	EXPECT_EQ(0, st.doorbells);
	EXPECT_EQ(1, st.lazy_batches);
	EXPECT_EQ(LAZY_N, st.lazy_entries);
	EXPECT_EQ(0, st.refused);
	st = kvmq_get_stats(self->b.vmq);
	EXPECT_EQ(1, st.received[0]);
	EXPECT_EQ(LAZY_N - 1, st.received[1]);
	EXPECT_EQ((LAZY_N - 1) * 2 * PG + 100 + MIXED_BYTES,
		  st.received_bytes);
	EXPECT_EQ(0, st.sent[0] + st.sent[1] + st.sent[2]);
}

/*
 * Linked entries (KVMQ_SQE_LINK): after one fails, the rest of its chain
 * completes with -ECANCELED without running; an entry that is not linked
 * to a failed one runs.  Across a batch of sends, across an entry that
 * runs alone, and across doorbells.
 */
static void guest_link(uint64_t gva, uint64_t gpa)
{
	static const struct { uint8_t op, flags; uint32_t dest; int64_t res; }
	e[] = {
		{ KVMQ_OP_SEND, KVMQ_SQE_LINK, ID_B, 0 },		/* 0 */
		{ KVMQ_OP_SEND, KVMQ_SQE_LINK, 99, -ENOENT },
		{ KVMQ_OP_SEND, KVMQ_SQE_LINK, ID_B, -ECANCELED },
		{ KVMQ_OP_SEND, 0, ID_B, -ECANCELED },
		{ KVMQ_OP_SEND, 0, ID_B, 0 },				/* 4 */
		{ KVMQ_OP_RELEASE, KVMQ_SQE_LINK, 0, -EINVAL },
		{ KVMQ_OP_SEND, 0, ID_B, -ECANCELED },
	};
	struct kvmq_msg *m = (void *)BUFS;
	struct kvmq_cqe c;
	uint32_t i;

	for (i = 0; i < ARRAY_SIZE(e); i++) {
		build(m + i, KVMQ_MSG_BYTES, i);
		/* The release has no pages: -EINVAL. */
		sq_post_flags(e[i].op, e[i].flags, e[i].dest, 0, 0,
			      e[i].op == KVMQ_OP_RELEASE ? AP :
			      BUFS + i * sizeof(*m), i);
	}
	EXPECT_HC(ARRAY_SIZE(e), KVMQ_HC_SUBMIT, 0, 0, 0);
	for (i = 0; i < ARRAY_SIZE(e); i++) {
		c = cq_take();
		GUEST_ASSERT_EQ(c.user_data, i);
		GUEST_ASSERT_EQ(c.res, e[i].res);
	}

	/* A chain across doorbells: the failure cancels the next entry. */
	sq_post_flags(KVMQ_OP_SEND, KVMQ_SQE_LINK, 99, 0, 0, BUFS, 10);
	EXPECT_HC(1, KVMQ_HC_SUBMIT, 0, 0, 0);
	GUEST_ASSERT_EQ(cq_take().res, -ENOENT);
	sq_post(KVMQ_OP_SEND, ID_B, 0, 0, BUFS, 11);
	EXPECT_HC(1, KVMQ_HC_SUBMIT, 0, 0, 0);
	GUEST_ASSERT_EQ(cq_take().res, -ECANCELED);
	GUEST_DONE();
}

static void guest_recv_seq(uint64_t gva, uint64_t gpa, uint64_t a,
			   uint64_t b)
{
	struct kvmq_msg *m = (void *)gva;

	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT(is_msg(m, KVMQ_MSG_BYTES, a, ID_A));
	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT(is_msg(m, KVMQ_MSG_BYTES, b, ID_A));
	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

TEST_F(ring, link)
{
	rings(&self->a);
	set_guest(&self->a, guest_link, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
	/* Only entries 0 and 4 were sent. */
	set_guest(&self->b, guest_recv_seq, 0, 4);
	kvmq_run_to_done(self->b.vcpu);
}

/*
 * Concurrency: A's two vCPUs, each in a thread, send CONC_N messages each
 * to B's queue 0 through their own submission rings (vCPU 0 lazily, vCPU
 * 1 with a doorbell), retrying what a full queue refuses; B, in a third
 * thread, takes them from its receive ring as they come.  Every message
 * arrives once, in each sender's order.
 */
#define CONC_N		64

static void guest_conc_send(uint64_t gva, uint64_t gpa, uint64_t vcpu)
{
	struct kvmq_ring *sq = (void *)(RINGS + lay.vcpu_offset +
					vcpu * lay.vcpu_stride);
	struct kvmq_ring *cq = (void *)((char *)sq + lay.cq_offset);
	struct kvmq_msg *m;
	struct kvmq_sqe *e;
	struct kvmq_cqe *c;
	uint64_t i, res;

	for (i = 0; i < CONC_N; i++) {
		m = (void *)(BUFS + (vcpu * CONC_N + i) * sizeof(*m));
		memset(m, 0, offsetof(struct kvmq_msg, data));
		m->kind = KVMQ_MSG_BYTES;
		m->len = 16;
		((uint64_t *)m->data)[0] = vcpu;
		((uint64_t *)m->data)[1] = i;
		do {
			e = entry(sq, sq->prod, sizeof(*e));
			memset(e, 0, sizeof(*e));
			e->op = KVMQ_OP_SEND;
			e->flags = vcpu ? 0 : KVMQ_SQE_LAZY;
			e->dest = ID_B;
			e->gpa = (uint64_t)m;
			__atomic_store_n(&sq->prod, sq->prod + 1,
					 __ATOMIC_RELEASE);
			if (vcpu)
				EXPECT_HC(1, KVMQ_HC_SUBMIT, 0, 0, 0);
			while (__atomic_load_n(&cq->prod, __ATOMIC_ACQUIRE) ==
			       cq->cons)
				cpu_relax();
			c = entry(cq, cq->cons, sizeof(*c));
			res = c->res;
			__atomic_store_n(&cq->cons, cq->cons + 1,
					 __ATOMIC_RELEASE);
		} while (res == (uint64_t)-EAGAIN);
		GUEST_ASSERT_EQ(res, 0);
	}
	GUEST_DONE();
}

static void guest_conc_recv(uint64_t gva, uint64_t gpa)
{
	struct kvmq_ring *r = rx_ring(0);
	uint64_t next[2] = { 0, 0 }, i, v, seq;
	struct kvmq_msg *m;

	for (i = 0; i < 2 * CONC_N; i++) {
		while (!(m = rx_peek(r)))
			cpu_relax();
		GUEST_ASSERT_EQ(m->sender, ID_A);
		v = ((uint64_t *)m->data)[0];
		seq = ((uint64_t *)m->data)[1];
		GUEST_ASSERT(v < 2);
		GUEST_ASSERT_EQ(seq, next[v]);
		next[v]++;
		rx_done(r);
	}
	GUEST_ASSERT(!rx_peek(r));
	GUEST_DONE();
}

static void *conc_run(void *arg)
{
	kvmq_run_to_done(arg);
	return NULL;
}

TEST_F(ring, concurrent)
{
	struct kvm_vcpu *v1;
	pthread_t t[3];
	int i;

	v1 = vm_vcpu_add(self->a.vm, 1, guest_conc_send);
	rings(&self->a);
	rings(&self->b);
	set_guest(&self->a, guest_conc_send, 0, 0);
	vcpu_args_set(v1, 3, self->a.msg_gva, self->a.msg_gpa, 1);
	set_guest(&self->b, guest_conc_recv, 0, 0);
	ASSERT_EQ(0, pthread_create(&t[0], NULL, conc_run, self->b.vcpu));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, conc_run, self->a.vcpu));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, conc_run, v1));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	EXPECT_EQ(2 * CONC_N, kvmq_get_stats(self->b.vmq).received[0]);
	EXPECT_EQ(2 * CONC_N, kvmq_get_stats(self->a.vmq).sent[0]);
}

/*
 * A guest that rewrites its submission ring while kvmq reads it: vCPU 1
 * scribbles over vCPU 0's ring (entries and producer index) while vCPU 0
 * posts sends and rings.  Every completion kvmq writes is one of the
 * errors a send can have, or 0; whatever reaches B is a well-formed
 * message from A; nothing else is disturbed, and the pool empties.
 */
#define SCRIBBLES	20000

static void guest_scribble(uint64_t gva, uint64_t gpa, uint64_t vcpu)
{
	struct kvmq_ring *sq = sq_ring(), *cq = cq_ring();
	uint64_t x = 0x9e3779b97f4a7c15ULL, i;
	struct kvmq_cqe *c;
	int64_t res;

	if (vcpu) {
		for (i = 0; i < SCRIBBLES; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 8 == 0)
				__atomic_store_n(&sq->prod, (uint32_t)(x >> 32),
						 __ATOMIC_RELAXED);
			else
				((uint64_t *)(sq + 1))[x % (SQ_ENTRIES * 4)] =
					x >> 3;
		}
		GUEST_DONE();
	}
	build((void *)BUFS, KVMQ_MSG_BYTES, 1);
	for (i = 0; i < SCRIBBLES / 64; i++) {
		sq_post(KVMQ_OP_SEND, ID_B, 0, 0, BUFS, i);
		kvmq_hc(KVMQ_HC_SUBMIT, 0, 0, 0);
		while (__atomic_load_n(&cq->prod, __ATOMIC_ACQUIRE) != cq->cons) {
			c = entry(cq, cq->cons, sizeof(*c));
			res = c->res;
			GUEST_ASSERT(res == 0 || res == -EINVAL ||
				     res == -EFAULT || res == -ENOENT ||
				     res == -EAGAIN || res == -ENOBUFS ||
				     res == -ENXIO || res == -E2BIG ||
				     res == -EMSGSIZE || res == -EACCES ||
				     res == -ECANCELED || res == -ENODEV ||
				     res > 0);
			__atomic_store_n(&cq->cons, cq->cons + 1,
					 __ATOMIC_RELEASE);
		}
	}
	GUEST_DONE();
}

static void guest_check_all(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	int64_t ret;

	while ((ret = kvmq_hc(KVMQ_HC_RECV, 0, gpa, 0)) == 0) {
		GUEST_ASSERT_EQ(m->sender, ID_A);
		GUEST_ASSERT(m->kind >= KVMQ_MSG_BYTES &&
			     m->kind <= KVMQ_MSG_BLOCKS);
		GUEST_ASSERT(m->kind != KVMQ_MSG_BYTES ||
			     m->len <= KVMQ_MSG_BYTES_MAX);
		if (m->kind != KVMQ_MSG_BYTES)
			kvmq_hc(KVMQ_HC_RELEASE, m->gpa,
				m->nr * (m->kind == KVMQ_MSG_BLOCKS ? 512 : 1),
				0);
	}
	GUEST_ASSERT_EQ(ret, -EAGAIN);
	GUEST_DONE();
}

TEST_F(ring, scribble)
{
	struct kvm_vcpu *v1;
	pthread_t t[2];
	int i;

	v1 = vm_vcpu_add(self->a.vm, 1, guest_scribble);
	rings(&self->a);
	set_guest(&self->a, guest_scribble, 0, 0);
	vcpu_args_set(v1, 3, self->a.msg_gva, self->a.msg_gpa, 1);
	ASSERT_EQ(0, pthread_create(&t[0], NULL, conc_run, self->a.vcpu));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, conc_run, v1));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	/* B, without rings, takes what came, all of it well-formed. */
	for (i = 0; i < 4; i++) {
		set_guest(&self->b, guest_check_all, 0, 0);
		kvmq_run_to_done(self->b.vcpu);
	}
}

TEST(config)
{
	struct kvmq_vm_rings cfg = { .size = sizeof(cfg) }, out;
	int dev = kvmq_open_dev();
	struct kvmq_peer p;
	void *m;

	kvmq_peer_create(&p, dev, -1, 0, NULL, AP_LEN, AP_LEN, 0);
	cfg.rx_entries = 4;
	cfg.sq_entries = 4;
	EXPECT_EQ(-ENODEV, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	m = mmap(NULL, PG, PROT_READ, MAP_SHARED, p.vmq,
		 KVMQ_RINGS_MMAP_OFFSET);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(ENODEV, errno);
	kvmq_set_queues(p.vmq, 6, 2, 8);

	cfg.rx_entries = 3;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg.rx_entries = 0;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg.rx_entries = 2 * KVMQ_RING_ENTRIES_MAX;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg.rx_entries = 4;
	cfg.sq_entries = 6;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg.sq_entries = 4;
	cfg.length = 1;				/* output */
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg.length = 0;
	cfg.__reserved = 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg.__reserved = 0;
	/* 8 queues x 4096 entries of 2080 bytes: more than 64 MiB. */
	cfg.rx_entries = KVMQ_RING_ENTRIES_MAX;
	EXPECT_EQ(-E2BIG, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg.rx_entries = 4;

	ASSERT_EQ(0, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	/* 8 receive rings (6 VM queues, 2 vCPU queues), then 2 vCPUs. */
	EXPECT_EQ(128 + 4 * sizeof(struct kvmq_msg), cfg.rx_stride);
	EXPECT_EQ(8 * cfg.rx_stride, cfg.vcpu_offset);
	EXPECT_EQ(128 + 4 * sizeof(struct kvmq_sqe), cfg.cq_offset);
	EXPECT_EQ(cfg.cq_offset + 128 + 4 * sizeof(struct kvmq_cqe),
		  cfg.vcpu_stride);
	EXPECT_EQ((cfg.vcpu_offset + 2 * cfg.vcpu_stride + PG - 1) & ~(PG - 1),
		  cfg.length);
	out = cfg;
	memset(&cfg.length, 0, sizeof(cfg) - offsetof(typeof(cfg), length));
	EXPECT_EQ(-EBUSY, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_RINGS, &cfg));
	cfg = out;

	/* Only the whole area, shared. */
	m = mmap(NULL, PG, PROT_READ, MAP_SHARED, p.vmq,
		 KVMQ_RINGS_MMAP_OFFSET);
	EXPECT_EQ(MAP_FAILED, m);
	EXPECT_EQ(EINVAL, errno);
	m = mmap(NULL, cfg.length, PROT_READ, MAP_PRIVATE, p.vmq,
		 KVMQ_RINGS_MMAP_OFFSET);
	EXPECT_EQ(MAP_FAILED, m);
	m = mmap(NULL, cfg.length, PROT_READ, MAP_SHARED, p.vmq,
		 KVMQ_RINGS_MMAP_OFFSET);
	ASSERT_NE(MAP_FAILED, m);
	/* Every ring header says its size. */
	EXPECT_EQ(4, ((struct kvmq_ring *)m)->entries);
	EXPECT_EQ(4, ((struct kvmq_ring *)(m + cfg.vcpu_offset +
					   cfg.vcpu_stride +
					   cfg.cq_offset))->entries);
	munmap(m, cfg.length);
	kvmq_peer_destroy(&p);
	close(dev);
}

KVMQ_TEST_HARNESS_MAIN
