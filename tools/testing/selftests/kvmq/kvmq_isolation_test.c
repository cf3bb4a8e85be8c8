// SPDX-License-Identifier: GPL-2.0
/*
 * Isolation: a guest reaches no memory it does not own and makes kvmq hold
 * no more than its peers' VMMs allowed.  It sends pages it does not hold,
 * reuses pages after sending them, races its own sends, releases and
 * writes from two vCPUs, guesses identities inside and across groups, and
 * floods one receiver from three VMs at once; each attempt fails with the
 * error hypercalls.rst documents, and the pool of pages stays what the VMs
 * hold and have queued, each within its quota.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(8ULL << 20)
/* Where B's aperture is in B: A has nothing there. */
#define AP_B		0x80000000ULL

#define EXPECT_HC(expect, nr, a0, a1, a2) \
	GUEST_ASSERT_EQ(kvmq_hc(nr, a0, a1, a2), (uint64_t)(expect))

/* Guest: a message header with nothing set but what the caller passes. */
static void msg_init(struct kvmq_msg *m, uint32_t kind, uint32_t nr,
		     uint32_t len)
{
	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = kind;
	m->nr = nr;
	m->len = len;
}

/* Guest: a message of the @nr pages of the aperture from page @first. */
static void msg_pages(struct kvmq_msg *m, uint64_t base, uint64_t first,
		      uint32_t nr)
{
	uint32_t i;

	msg_init(m, KVMQ_MSG_PAGES, nr, nr * PG);
	for (i = 0; i < nr; i++)
		m->gpas[i] = base + (first + i) * PG;
}

/* The first word of the page at @addr, read or written once. */
static uint64_t peek(uint64_t addr)
{
	return READ_ONCE(*(uint64_t *)addr);
}

static void poke(uint64_t addr, uint64_t val)
{
	WRITE_ONCE(*(uint64_t *)addr, val);
}

/* The word a test writes at the start of page @i in round @r. */
static uint64_t tag(uint64_t r, uint64_t i)
{
	return 0x150ULL << 48 | r << 24 | i;
}

static void set_guest(struct kvmq_peer *p, void *code, uint64_t a2,
		      uint64_t a3, uint64_t a4, uint64_t a5)
{
	vcpu_arch_set_entry_point(p->vcpu, code);
	vcpu_args_set(p->vcpu, 6, p->msg_gva, p->msg_gpa, a2, a3, a4, a5);
}

/* Run @vcpu to its next GUEST_SYNC and return the ucall. */
static struct ucall run_sync(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT(kvmq_run(vcpu, &uc) == UCALL_SYNC, "expected a sync");
	return uc;
}

/*
 * kvmq_peer_create() with the aperture at @gpa instead of
 * KVMQ_TEST_AP_GPA, mapped at the same virtual address in the guest.
 */
static void peer_create_at(struct kvmq_peer *p, int dev, int group,
			   uint32_t id, uint64_t gpa, uint64_t quota,
			   uint32_t depth)
{
	memset(p, 0, sizeof(*p));
	p->vm = vm_create_with_one_vcpu(&p->vcpu, NULL);
	p->vmq = kvmq_attach(dev, p->vm);
	p->id = id;
	kvmq_set_identity(p->vmq, group, id);
	kvmq_set_queues(p->vmq, 1, 2, depth);
	p->ap_len = AP_LEN;
	kvmq_set_aperture(p->vmq, gpa, AP_LEN, quota);
	p->ap = mmap(NULL, AP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, p->vmq,
		     0);
	TEST_ASSERT(p->ap != MAP_FAILED, "mmap failed, errno %d", errno);
	vm_set_user_memory_region(p->vm, KVMQ_TEST_AP_SLOT, 0, gpa, AP_LEN,
				  p->ap);
	virt_map_level(p->vm, gpa, gpa, AP_LEN, PG_LEVEL_2M);
	p->msg_gva = vm_vaddr_alloc_page(p->vm);
	p->msg_gpa = addr_gva2gpa(p->vm, p->msg_gva);
}

/*
 * The accounting invariant (as in kvmq_limits_test and
 * kvmq_fuzz_hc_test): every page kvmq owns is held by one of the @n VMs'
 * apertures or queued to one of them, none is charged beyond its quota or
 * page limit, and no queue takes more kernel memory than its limit.
 */
static void check_charged(struct kvmq_peer **p, int n)
{
	uint64_t sum = 0;
	int i;

	for (i = 0; i < n; i++) {
		struct kvmq_vm_aperture ap = kvmq_get_aperture(p[i]->vmq);
		struct kvmq_vm_queues q = kvmq_get_queues(p[i]->vmq);

		TEST_ASSERT(ap.held + ap.queued <= ap.quota,
			    "VM %u charged %llu + %llu > quota %llu", p[i]->id,
			    ap.held, ap.queued, ap.quota);
		TEST_ASSERT(!q.page_limit || ap.queued <= q.page_limit,
			    "VM %u queued %llu > page limit %llu", p[i]->id,
			    ap.queued, q.page_limit);
		TEST_ASSERT(q.mem <= q.mem_limit,
			    "VM %u queues take %llu > limit %llu", p[i]->id,
			    q.mem, q.mem_limit);
		sum += ap.held + ap.queued;
	}
	TEST_ASSERT(kvmq_pool_pages() * PG == sum,
		    "pool %lu pages, charged %lu bytes", kvmq_pool_pages(), sum);
}

/*
 * Fixture iso: A (1) and B (2) in one group, 8 MiB apertures and quotas,
 * queues of depth 256; A's aperture at KVMQ_TEST_AP_GPA, B's at AP_B.
 * Setup checks that the pool is empty, teardown that it is again.
 */
#define ID_A		1
#define ID_B		2

FIXTURE(iso) {
	int dev, group;
	struct kvmq_peer a, b;
};

FIXTURE_SETUP(iso)
{
	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	peer_create_at(&self->a, self->dev, self->group, ID_A, AP, AP_LEN, 256);
	peer_create_at(&self->b, self->dev, self->group, ID_B, AP_B, AP_LEN,
		       256);
	kvmq_grant(self->b.vmq, 0, ID_A);
}

FIXTURE_TEARDOWN(iso)
{
	kvmq_peer_destroy(&self->a);
	kvmq_peer_destroy(&self->b);
	close(self->group);
	close(self->dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

/*
 * A sends pages it does not hold: never touched, already sent, released,
 * outside its aperture (below, above, in ordinary RAM, at B's aperture's
 * address), alone or beside pages it holds.  Each send fails and moves
 * nothing; one good send in the middle goes through.
 */
static void guest_not_held(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t i;

	/* Pages 0 to 15 of the first block hold their tags. */
	for (i = 0; i < 16; i++)
		poke(AP + i * PG, tag(0, i));

	/* Never touched: the second block. */
	msg_pages(m, AP, 512, 1);
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);
	msg_init(m, KVMQ_MSG_BLOCKS, 1, PG);
	m->gpas[0] = AP + SZ_2M;
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);

	/* Page 0 sent: it goes once, then it is not A's to send again. */
	msg_pages(m, AP, 0, 1);
	EXPECT_HC(0, KVMQ_HC_SEND, ID_B, 0, gpa);
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);
	msg_pages(m, AP, 0, 3);				/* beside held ones */
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);
	m->gpas[0] = AP + 2 * PG;			/* last of the list */
	m->gpas[2] = AP;
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);
	msg_init(m, KVMQ_MSG_BLOCKS, 1, PG);		/* its block */
	m->gpas[0] = AP;
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);

	/* Page 5 released: gone too. */
	EXPECT_HC(1, KVMQ_HC_RELEASE, AP + 5 * PG, 1, 0);
	EXPECT_HC(0, KVMQ_HC_RELEASE, AP + 5 * PG, 1, 0);
	msg_pages(m, AP, 5, 1);
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);
	msg_pages(m, AP, 4, 3);
	EXPECT_HC(-ENXIO, KVMQ_HC_SEND, ID_B, 0, gpa);

	/* Not in A's aperture: below, above, ordinary RAM, B's address. */
	msg_pages(m, AP, 1, 2);
	m->gpas[1] = AP - PG;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, ID_B, 0, gpa);
	m->gpas[1] = AP + AP_LEN;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, ID_B, 0, gpa);
	m->gpas[1] = gpa & ~(PG - 1);
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, ID_B, 0, gpa);
	for (i = 0; i < AP_LEN; i += SZ_2M - PG) {
		m->gpas[1] = AP_B + i;
		EXPECT_HC(-EINVAL, KVMQ_HC_SEND, ID_B, 0, gpa);
	}
	msg_init(m, KVMQ_MSG_BLOCKS, 1, PG);
	m->gpas[0] = AP_B;
	EXPECT_HC(-EINVAL, KVMQ_HC_SEND, ID_B, 0, gpa);
	/* Releasing B's range is refused as well. */
	EXPECT_HC(-EINVAL, KVMQ_HC_RELEASE, AP_B, 1, 0);

	/* What A holds is still there, unchanged. */
	for (i = 1; i < 16; i++) {
		if (i == 5)
			continue;
		GUEST_ASSERT_EQ(peek(AP + i * PG), tag(0, i));
	}
	GUEST_DONE();
}

/* Receiver: take one message of @nr pages and report where it landed. */
static void guest_recv_report(uint64_t gva, uint64_t gpa, uint64_t nr)
{
	struct kvmq_msg *m = (void *)gva;

	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT_EQ(m->sender, ID_A);
	GUEST_ASSERT_EQ(m->nr, nr);
	GUEST_ASSERT(m->gpa >= AP_B && m->gpa < AP_B + AP_LEN);
	GUEST_SYNC_ARGS(1, m->gpa, peek(m->gpa), 0, 0);
	EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

TEST_F(iso, not_held)
{
	uint64_t moved = kvmq_debugfs_stat("pages_moved");
	struct kvmq_peer *all[] = { &self->a, &self->b };
	struct ucall uc;

	set_guest(&self->a, guest_not_held, 0, 0, 0, 0);
	kvmq_run_to_done(self->a.vcpu);
	/* One page moved; A holds its first block but pages 0 and 5. */
	EXPECT_EQ(1, kvmq_debugfs_stat("pages_moved") - moved);
	EXPECT_EQ(SZ_2M - 2 * PG, kvmq_aperture_held(self->a.vmq));
	EXPECT_EQ(PG, kvmq_get_aperture(self->b.vmq).queued);
	EXPECT_EQ(0, kvmq_aperture_held(self->b.vmq));
	EXPECT_EQ(1, kvmq_get_stats(self->a.vmq).sent[KVMQ_MSG_PAGES - 1]);
	check_charged(all, 2);

	/* B gets exactly that page, with its data, and nothing else. */
	set_guest(&self->b, guest_recv_report, 1, 0, 0, 0);
	uc = run_sync(self->b.vcpu);
	EXPECT_EQ(tag(0, 0), uc.args[3]);
	EXPECT_EQ(tag(0, 0), *(uint64_t *)(self->b.ap + uc.args[2] - AP_B));
	kvmq_run_to_done(self->b.vcpu);
	EXPECT_EQ(PG, kvmq_aperture_held(self->b.vmq));
	check_charged(all, 2);
}

/*
 * Reuse after send, A's side: fill page 0 and page 1 of a 2 MiB quota,
 * send page 0 to B; the slot reads as a fresh zero page (on A's quota),
 * whatever B writes into the page it received, and what A and its VMM
 * write there never reaches B.  A 4 KiB page beyond the quota still
 * fails, so the fresh page was charged to A.
 */
static void guest_reuse_send(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t *p0 = (void *)AP;
	uint64_t i;

	memset((void *)AP, 0xaa, SZ_2M);
	msg_pages(m, AP, 0, 1);
	EXPECT_HC(0, KVMQ_HC_SEND, ID_B, 0, gpa);
	GUEST_SYNC(1);		/* B wrote 0xee; A's VMM wrote its word */
	GUEST_ASSERT_EQ(READ_ONCE(p0[0]), 0x77);
	for (i = 1; i < PG / 8; i++)
		GUEST_ASSERT_EQ(READ_ONCE(p0[i]), 0);
	memset((void *)AP, 0x55, PG);
	GUEST_SYNC(2);		/* B checks that it sees none of it */
	/* The page B received and released is not A's again either. */
	GUEST_ASSERT_EQ(READ_ONCE(p0[1]), 0x5555555555555555ULL);
	/* The quota is full again: the next block's first page is refused. */
	poke(AP + SZ_2M, 1);
	GUEST_DONE();
}

static void guest_reuse_recv(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t *p;
	uint64_t i;

	EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_ASSERT_EQ(m->sender, ID_A);
	p = (uint64_t *)m->gpa;
	for (i = 0; i < PG / 8; i++)
		GUEST_ASSERT_EQ(READ_ONCE(p[i]), 0xaaaaaaaaaaaaaaaaULL);
	memset((void *)m->gpa, 0xee, PG);
	GUEST_SYNC_ARGS(1, m->gpa, 0, 0, 0);
	for (i = 0; i < PG / 8; i++)
		GUEST_ASSERT_EQ(READ_ONCE(p[i]), 0xeeeeeeeeeeeeeeeeULL);
	EXPECT_HC(1, KVMQ_HC_RELEASE, m->gpa, 1, 0);
	/* Its slot is a fresh page now: the data went with the release. */
	for (i = 0; i < PG / 8; i++)
		GUEST_ASSERT_EQ(READ_ONCE(p[i]), 0);
	GUEST_DONE();
}

TEST_F(iso, reuse_after_send)
{
	struct kvmq_peer *all[] = { &self->a, &self->b };
	struct kvmq_peer a2;
	uint64_t off;
	struct ucall uc;

	/* A with a quota of one block: the one it fills. */
	kvmq_peer_destroy(&self->a);
	peer_create_at(&a2, self->dev, self->group, ID_A, AP, SZ_2M, 256);
	self->a = a2;

	set_guest(&self->a, guest_reuse_send, 0, 0, 0, 0);
	set_guest(&self->b, guest_reuse_recv, 0, 0, 0, 0);
	ASSERT_EQ(1, run_sync(self->a.vcpu).args[1]);
	EXPECT_EQ(SZ_2M - PG, kvmq_aperture_held(self->a.vmq));
	EXPECT_EQ(PG, kvmq_get_aperture(self->b.vmq).queued);

	uc = run_sync(self->b.vcpu);
	ASSERT_EQ(1, uc.args[1]);
	off = uc.args[2] - AP_B;
	ASSERT_GT(AP_LEN, off);
	/* A's VMM: a fresh zero page where the sent one was. */
	EXPECT_EQ(0, READ_ONCE(*(uint64_t *)self->a.ap));
	EXPECT_EQ(0, READ_ONCE(*(uint64_t *)(self->a.ap + PG - 8)));
	WRITE_ONCE(*(uint64_t *)self->a.ap, 0x77);
	EXPECT_EQ(SZ_2M, kvmq_aperture_held(self->a.vmq));
	/* B's VMM sees B's data, not A's VMM's word. */
	EXPECT_EQ(0xeeeeeeeeeeeeeeeeULL, *(uint64_t *)(self->b.ap + off));
	check_charged(all, 2);

	ASSERT_EQ(2, run_sync(self->a.vcpu).args[1]);
	/* A's writes to the slot do not reach B's page. */
	EXPECT_EQ(0xeeeeeeeeeeeeeeeeULL, *(uint64_t *)(self->b.ap + off));
	kvmq_run_to_done(self->b.vcpu);

	/* The quota, full again with the fresh page, refuses the next one. */
	EXPECT_EQ(-1, _vcpu_run(self->a.vcpu));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(SZ_2M, kvmq_aperture_held(self->a.vmq));
	EXPECT_EQ(0x55, self->a.ap[PG - 1]);
	check_charged(all, 2);
}

/*
 * A's two vCPUs race for the same pages, RACE_ROUNDS rounds of
 * RACE_PAGES pages freshly tagged by vCPU 0.  vCPU 0 sends the pairs
 * (2k, 2k + 1); vCPU 1 either sends the pairs (2k + 1, 2k + 2), so that
 * each page is in one message of each, with KVMQ_HC_SEND or as one batch
 * of its submission ring, or releases the pages one by one.
 * A page leaves A at most once, with its message whole: B receives it
 * exactly as often as one of its messages succeeded, a release frees it
 * only if no send took it, and a page that neither took is still A's,
 * with its tag.  Every failed send is -ENXIO (a page of the list no
 * longer held); A's aperture holds exactly the pages that stayed.
 */
#define RACE_PAGES	64
#define RACE_PAIRS	(RACE_PAGES / 2)
#define RACE_ROUNDS	32
#define RACE_SEND	1	/* vCPU 1's part: send the odd pairs */
#define RACE_RELEASE	2	/* or release each page */
#define RACE_RING	3	/* or send the odd pairs in one doorbell */
/*
 * Seconds per race test.  On the debug kernel (KASAN, lockdep) they take
 * 9 to 28 s each, and one has taken more than the harness's default 30.
 */
#define RACE_TIMEOUT	300

static uint64_t race_arrived;
/* Per vCPU: each send's result, or each release's for vCPU 1. */
static int64_t race_res[2][RACE_PAGES];
static uint32_t race_seen[RACE_PAGES];
/* For RACE_RING: the ring layout, and vCPU 1's message buffers. */
static struct kvmq_vm_rings race_lay;
static uint64_t race_bufs_gva, race_bufs_gpa;

/* Guest: vCPU 1 sends the odd pairs through its submission ring. */
static void race_ring_sends(void)
{
	uint64_t vcpu = KVMQ_TEST_RING_GPA + race_lay.vcpu_offset +
			race_lay.vcpu_stride;
	struct kvmq_ring *sq = (void *)vcpu;
	struct kvmq_ring *cq = (void *)(vcpu + race_lay.cq_offset);
	struct kvmq_sqe *e;
	struct kvmq_cqe *c;
	struct kvmq_msg *m;
	uint64_t k, i;

	for (k = 0; k < RACE_PAIRS; k++) {
		m = (void *)(race_bufs_gva + k * PG);
		i = 2 * k + 1;
		msg_init(m, KVMQ_MSG_PAGES, 2, 2 * PG);
		m->gpas[0] = AP + i * PG;
		m->gpas[1] = AP + (i + 1) % RACE_PAGES * PG;
		e = (void *)(sq + 1) + (sq->prod & (sq->entries - 1)) *
		    sizeof(*e);
		memset(e, 0, sizeof(*e));
		e->op = KVMQ_OP_SEND;
		e->dest = ID_B;
		e->gpa = race_bufs_gpa + k * PG;
		e->user_data = k;
		__atomic_store_n(&sq->prod, sq->prod + 1, __ATOMIC_RELEASE);
	}
	EXPECT_HC(RACE_PAIRS, KVMQ_HC_SUBMIT, 0, 0, 0);
	for (k = 0; k < RACE_PAIRS; k++) {
		GUEST_ASSERT(__atomic_load_n(&cq->prod, __ATOMIC_ACQUIRE) !=
			     cq->cons);
		c = (void *)(cq + 1) + (cq->cons & (cq->entries - 1)) *
		    sizeof(*c);
		GUEST_ASSERT_EQ(c->user_data, k);
		race_res[1][k] = c->res;
		__atomic_store_n(&cq->cons, cq->cons + 1, __ATOMIC_RELEASE);
	}
}

/* Guest: wait until both vCPUs arrived at barrier @n (from 1). */
static void race_barrier(uint64_t n)
{
	__atomic_add_fetch(&race_arrived, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&race_arrived, __ATOMIC_SEQ_CST) < 2 * n)
		cpu_relax();
}

static void guest_race(uint64_t gva, uint64_t gpa, uint64_t v, uint64_t how)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t r, k, i;

	for (r = 0; r < RACE_ROUNDS; r++) {
		if (!v)
			for (i = 0; i < RACE_PAGES; i++)
				poke(AP + i * PG, tag(r, i));
		race_barrier(2 * r + 1);
		for (k = 0; v && how == RACE_RELEASE && k < RACE_PAGES; k++)
			race_res[v][k] = kvmq_hc(KVMQ_HC_RELEASE, AP + k * PG,
						 1, 0);
		if (v && how == RACE_RING)
			race_ring_sends();
		for (k = 0; (!v || how == RACE_SEND) && k < RACE_PAIRS; k++) {
			i = 2 * k + v;
			msg_init(m, KVMQ_MSG_PAGES, 2, 2 * PG);
			m->gpas[0] = AP + i * PG;
			m->gpas[1] = AP + (i + 1) % RACE_PAGES * PG;
			race_res[v][k] = kvmq_hc(KVMQ_HC_SEND, ID_B, 0, gpa);
		}
		race_barrier(2 * r + 2);
		GUEST_SYNC(r);
	}
	GUEST_DONE();
}

/* Receiver: count the pages of round @r that arrived, release them. */
static void guest_race_recv(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t r, t, j, n;
	int64_t ret;

	for (r = 0; r < RACE_ROUNDS; r++) {
		memset(race_seen, 0, sizeof(race_seen));
		n = 0;
		while (!(ret = kvmq_hc(KVMQ_HC_RECV, 0, gpa, 0))) {
			GUEST_ASSERT_EQ(m->sender, ID_A);
			GUEST_ASSERT_EQ(m->nr, 2);
			for (j = 0; j < 2; j++) {
				t = peek(m->gpa + j * PG);
				GUEST_ASSERT_EQ(t >> 24, tag(r, 0) >> 24);
				GUEST_ASSERT((t & 0xffffff) < RACE_PAGES);
				race_seen[t & 0xffffff]++;
			}
			EXPECT_HC(2, KVMQ_HC_RELEASE, m->gpa, 2, 0);
			n++;
		}
		GUEST_ASSERT_EQ(ret, -EAGAIN);
		GUEST_SYNC(n);
	}
	GUEST_DONE();
}

static void *run_to_sync(void *arg)
{
	run_sync(arg);
	return NULL;
}

/* Whether send @k of vCPU @v (0 or 1) succeeded and took page @i. */
static bool took(int64_t res[2][RACE_PAGES], int v, int k, int i)
{
	return !res[v][k] && (2 * k + v == i ||
			      (2 * k + v + 1) % RACE_PAGES == i);
}

static void race(struct __test_metadata *_metadata,
		 FIXTURE_DATA(iso) *self, uint64_t how)
{
	struct kvmq_peer *all[] = { &self->a, &self->b };
	uint64_t moved, msgs, gone, enxio = 0, sent = 0, freed = 0, mixed = 0;
	uint64_t won[2];
	int nsend = how == RACE_RELEASE ? 1 : 2;
	int64_t res[2][RACE_PAGES];
	uint32_t seen[RACE_PAGES];
	struct kvm_vcpu *v1;
	uint64_t v1_msg;
	pthread_t t[2];
	int r, k, i, v, n, rel;

	v1 = vm_vcpu_add(self->a.vm, 1, guest_race);
	v1_msg = vm_vaddr_alloc_page(self->a.vm);
	if (how == RACE_RING) {
		kvmq_peer_rings(&self->a, 4, RACE_PAIRS, &race_lay);
		race_bufs_gva = vm_vaddr_alloc(self->a.vm, RACE_PAIRS * PG,
					       KVM_UTIL_MIN_VADDR);
		race_bufs_gpa = addr_gva2gpa(self->a.vm, race_bufs_gva);
		for (k = 0; k < RACE_PAIRS; k++)
			ASSERT_EQ(race_bufs_gpa + k * PG,
				  addr_gva2gpa(self->a.vm,
					       race_bufs_gva + k * PG));
		sync_global_to_guest(self->a.vm, race_lay);
		sync_global_to_guest(self->a.vm, race_bufs_gva);
		sync_global_to_guest(self->a.vm, race_bufs_gpa);
	}
	vcpu_arch_set_entry_point(self->a.vcpu, guest_race);
	vcpu_args_set(self->a.vcpu, 4, self->a.msg_gva, self->a.msg_gpa, 0,
		      how);
	vcpu_args_set(v1, 4, v1_msg, addr_gva2gpa(self->a.vm, v1_msg), 1, how);
	set_guest(&self->b, guest_race_recv, 0, 0, 0, 0);

	for (r = 0; r < RACE_ROUNDS; r++) {
		moved = kvmq_debugfs_stat("pages_moved");
		ASSERT_EQ(0, pthread_create(&t[0], NULL, run_to_sync,
					    self->a.vcpu));
		ASSERT_EQ(0, pthread_create(&t[1], NULL, run_to_sync, v1));
		ASSERT_EQ(0, pthread_join(t[0], NULL));
		ASSERT_EQ(0, pthread_join(t[1], NULL));
		sync_global_from_guest(self->a.vm, race_res);
		memcpy(res, race_res, sizeof(res));
		msgs = 0;
		gone = 0;
		memset(won, 0, sizeof(won));
		for (v = 0; v < nsend; v++)
			for (k = 0; k < RACE_PAIRS; k++) {
				if (!res[v][k])
					won[v]++;
				else if (res[v][k] == -ENXIO)
					enxio++;
				else
					TEST_FAIL("vCPU %d pair %d: %ld", v, k,
						  res[v][k]);
			}
		for (k = 0; how == RACE_RELEASE && k < RACE_PAGES; k++) {
			ASSERT_TRUE(res[1][k] == 0 || res[1][k] == 1)
				TH_LOG("release of page %d: %ld", k, res[1][k]);
			gone += res[1][k];
		}
		msgs = won[0] + won[1];
		/* Both vCPUs took pages: their sends interleaved. */
		mixed += won[0] && (won[1] || gone);
		sent += msgs;
		freed += gone;
		EXPECT_EQ(2 * msgs, kvmq_debugfs_stat("pages_moved") - moved);
		EXPECT_EQ(2 * msgs * PG, kvmq_get_aperture(self->b.vmq).queued);
		/* The first block, but the pages that left. */
		EXPECT_EQ(SZ_2M - (2 * msgs + gone) * PG,
			  kvmq_aperture_held(self->a.vmq));
		check_charged(all, 2);

		ASSERT_EQ(msgs, run_sync(self->b.vcpu).args[1]);
		sync_global_from_guest(self->b.vm, race_seen);
		memcpy(seen, race_seen, sizeof(seen));
		for (i = 0; i < RACE_PAGES; i++) {
			n = 0;
			for (k = 0; k < RACE_PAIRS; k++)
				n += took(res, 0, k, i) +
				     (nsend == 2 && took(res, 1, k, i));
			rel = how == RACE_RELEASE ? res[1][i] : 0;
			ASSERT_GE(1, n + rel) TH_LOG("round %d page %d", r, i);
			ASSERT_EQ(n, seen[i]) TH_LOG("round %d page %d", r, i);
			/* Neither sent nor released: still A's, with its tag. */
			ASSERT_EQ(n + rel ? 0 : tag(r, i),
				  *(uint64_t *)(self->a.ap + i * PG))
				TH_LOG("round %d page %d", r, i);
		}
		EXPECT_EQ(0, kvmq_aperture_held(self->b.vmq));
		check_charged(all, 2);
	}
	kvmq_run_to_done(self->a.vcpu);
	kvmq_run_to_done(v1);
	kvmq_run_to_done(self->b.vcpu);
	EXPECT_EQ(sent, kvmq_get_stats(self->a.vmq).sent[KVMQ_MSG_PAGES - 1]);
	printf("# %lu messages sent, %lu refused with -ENXIO, %lu pages released\n",
	       sent, enxio, freed);
	printf("# both vCPUs took pages in %lu of %d rounds\n", mixed,
	       RACE_ROUNDS);
	/* Each pair of one vCPU overlaps two of the other's. */
	if (how != RACE_RELEASE)
		EXPECT_LE(RACE_ROUNDS * RACE_PAIRS, enxio);
}

TEST_F_TIMEOUT(iso, race_own_sends, RACE_TIMEOUT)
{
	race(_metadata, self, RACE_SEND);
}

TEST_F_TIMEOUT(iso, race_send_release, RACE_TIMEOUT)
{
	race(_metadata, self, RACE_RELEASE);
}

TEST_F_TIMEOUT(iso, race_send_ring, RACE_TIMEOUT)
{
	race(_metadata, self, RACE_RING);
}

/*
 * While vCPU 0 of A sends the 64 pages one by one, vCPU 1 keeps writing
 * to them (a counter in their second word).  Once a send returned, no
 * write of either vCPU, or of A's VMM, reaches the page: B finds in each
 * page what it held when it left, and after B read it, a second pass of
 * writes by both vCPUs and by A's VMM to the same addresses (a mark each,
 * in words 2 to 4) lands in fresh pages of A, never in B's.  A vCPU that
 * kept a stale translation of a sent page would show here.
 */
#define WR_ROUNDS	8
#define WR_MARK		0xdeadbeefULL

static uint64_t wr_stop, wr_passes;
static uint64_t wr_gpa[RACE_PAGES], wr_w1[RACE_PAGES];

static void guest_write_send(uint64_t gva, uint64_t gpa, uint64_t v)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t r, i, seq = 0;

	for (r = 0; r < WR_ROUNDS; r++) {
		if (!v)
			for (i = 0; i < RACE_PAGES; i++) {
				poke(AP + i * PG, tag(r, i));
				memset((void *)(AP + i * PG + 8), 0, 32);
			}
		race_barrier(4 * r + 1);
		while (v && READ_ONCE(wr_stop) <= r) {
			for (i = 0; i < RACE_PAGES; i++)
				poke(AP + i * PG + 8, ++seq);
			wr_passes++;
		}
		for (i = 0; !v && i < RACE_PAGES; i++) {
			msg_pages(m, AP, i, 1);
			EXPECT_HC(0, KVMQ_HC_SEND, ID_B, 0, gpa);
		}
		if (!v)
			WRITE_ONCE(wr_stop, r + 1);
		race_barrier(4 * r + 2);
		GUEST_SYNC(1);		/* B takes the pages */
		race_barrier(4 * r + 3);
		for (i = 0; i < RACE_PAGES; i++)
			poke(AP + i * PG + 16 + 8 * v, WR_MARK + v);
		race_barrier(4 * r + 4);
		GUEST_SYNC(2);		/* B checks them again */
	}
	GUEST_DONE();
}

/* Guest: whether the marks' words of the page at @gpa are clear. */
static bool unmarked(uint64_t gpa)
{
	return !peek(gpa + 16) && !peek(gpa + 24) && !peek(gpa + 32);
}

static void guest_write_recv(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t r, n, i, t;

	for (r = 0; r < WR_ROUNDS; r++) {
		for (n = 0; n < RACE_PAGES; n++) {
			EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
			GUEST_ASSERT_EQ(m->nr, 1);
			t = peek(m->gpa);
			i = t & 0xffffff;
			GUEST_ASSERT_EQ(t, tag(r, i));
			wr_gpa[i] = m->gpa;
			wr_w1[i] = peek(m->gpa + 8);
			GUEST_ASSERT(unmarked(m->gpa));
		}
		EXPECT_HC(-EAGAIN, KVMQ_HC_RECV, 0, gpa, 0);
		GUEST_SYNC(1);
		for (i = 0; i < RACE_PAGES; i++) {
			GUEST_ASSERT_EQ(peek(wr_gpa[i]), tag(r, i));
			GUEST_ASSERT_EQ(peek(wr_gpa[i] + 8), wr_w1[i]);
			GUEST_ASSERT(unmarked(wr_gpa[i]));
			EXPECT_HC(1, KVMQ_HC_RELEASE, wr_gpa[i], 1, 0);
		}
		GUEST_SYNC(2);
	}
	GUEST_DONE();
}

TEST_F_TIMEOUT(iso, race_write_send, RACE_TIMEOUT)
{
	struct kvmq_peer *all[] = { &self->a, &self->b };
	struct kvm_vcpu *v1;
	uint64_t v1_msg, passes;
	pthread_t t[2];
	int r, i, phase;

	v1 = vm_vcpu_add(self->a.vm, 1, guest_write_send);
	v1_msg = vm_vaddr_alloc_page(self->a.vm);
	vcpu_arch_set_entry_point(self->a.vcpu, guest_write_send);
	vcpu_args_set(self->a.vcpu, 3, self->a.msg_gva, self->a.msg_gpa, 0);
	vcpu_args_set(v1, 3, v1_msg, addr_gva2gpa(self->a.vm, v1_msg), 1);
	set_guest(&self->b, guest_write_recv, 0, 0, 0, 0);

	for (r = 0; r < WR_ROUNDS; r++) {
		for (phase = 1; phase <= 2; phase++) {
			ASSERT_EQ(0, pthread_create(&t[0], NULL, run_to_sync,
						    self->a.vcpu));
			ASSERT_EQ(0, pthread_create(&t[1], NULL, run_to_sync,
						    v1));
			ASSERT_EQ(0, pthread_join(t[0], NULL));
			ASSERT_EQ(0, pthread_join(t[1], NULL));
			if (phase == 2)
				/* A's VMM writes to the same addresses. */
				for (i = 0; i < RACE_PAGES; i++)
					WRITE_ONCE(*(uint64_t *)(self->a.ap +
								 i * PG + 32),
						   WR_MARK + 2);
			check_charged(all, 2);
			ASSERT_EQ(phase, run_sync(self->b.vcpu).args[1]);
		}
		/* The marks went to A's fresh pages, which hold them. */
		for (i = 0; i < RACE_PAGES; i++) {
			uint64_t *w = (uint64_t *)(self->a.ap + i * PG);

			ASSERT_EQ(0, READ_ONCE(w[0]));
			ASSERT_EQ(WR_MARK, READ_ONCE(w[2]));
			ASSERT_EQ(WR_MARK + 1, READ_ONCE(w[3]));
			ASSERT_EQ(WR_MARK + 2, READ_ONCE(w[4]));
		}
	}
	kvmq_run_to_done(self->a.vcpu);
	kvmq_run_to_done(v1);
	kvmq_run_to_done(self->b.vcpu);
	sync_global_from_guest(self->a.vm, wr_passes);
	passes = wr_passes;
	printf("# vCPU 1 wrote the pages %lu times while they were sent\n",
	       passes);
	EXPECT_EQ(WR_ROUNDS * RACE_PAGES,
		  kvmq_get_stats(self->a.vmq).sent[KVMQ_MSG_PAGES - 1]);
}

/*
 * Guessing identities.  Group 1: A (1) and B (2); group 2: C (3) and D
 * (2, as B).  Only B grants A its queue 0 (the fixture) and C grants D its
 * queue 0; the other grants name identities of the other group: A grants
 * 2 and 3 its queue 0, B grants 3 its queue 0, D grants 1 its queue 0.
 * Each of A, C and D sends to identities 1 to GUESS_IDS and a few beyond,
 * on every queue number worth guessing, bytes and then a page: only its
 * one grant takes a message; the queues of its own group's VMs refuse
 * with -EACCES, every other identity and queue with -ENOENT, whatever the
 * other group granted.
 */
#define GUESS_IDS	64

static const uint64_t guess_queues[] = {
	0, 1, 63, KVMQ_QUEUE_VCPU(0), KVMQ_QUEUE_VCPU(1), KVMQ_QUEUE_VCPU(2),
	KVMQ_QUEUE_VCPU(4095), 0xffffffff, 1ULL << 32,
};

static const uint64_t guess_far[] = {
	0, KVMQ_ID_MAX, KVMQ_ID_MAX + 1ULL, 0xffffffff, 1ULL << 32 | ID_B,
	~0ULL,
};

/*
 * The answer to a send to queue @q of identity @id in a group where the
 * identities of @ids exist and only queue 0 of @granted takes messages.
 */
static int64_t guess_expect(uint64_t id, uint64_t q, uint64_t ids,
			    uint64_t granted)
{
	if (id > 0xffffffff || q > 0xffffffff)
		return -ENOENT;
	if (id >= 64 || !(ids & 1ULL << id))
		return -ENOENT;
	if (q != 0 && q != KVMQ_QUEUE_VCPU(0) && q != KVMQ_QUEUE_VCPU(1))
		return -ENOENT;
	return id == granted && !q ? 0 : -EACCES;
}

static void guest_guess(uint64_t gva, uint64_t gpa, uint64_t ids,
			uint64_t granted)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t n, qi, dest, q, ok = 0;
	int64_t expect, ret;

	poke(AP, tag(1, 1));
	for (n = 1; n <= GUESS_IDS + ARRAY_SIZE(guess_far); n++) {
		dest = n <= GUESS_IDS ? n : guess_far[n - GUESS_IDS - 1];
		for (qi = 0; qi < ARRAY_SIZE(guess_queues); qi++) {
			q = guess_queues[qi];
			expect = guess_expect(dest, q, ids, granted);
			msg_init(m, KVMQ_MSG_BYTES, 0, 8);
			ret = kvmq_hc(KVMQ_HC_SEND, dest, q, gpa);
			__GUEST_ASSERT(ret == expect, "send to %lu/%lx: %ld",
				       dest, q, ret);
			ok += !ret;
			if (!expect)
				continue;
			/* A page: the same answer, and it stays. */
			msg_pages(m, AP, 0, 1);
			EXPECT_HC(expect, KVMQ_HC_SEND, dest, q, gpa);
		}
	}
	GUEST_ASSERT_EQ(peek(AP), tag(1, 1));
	GUEST_SYNC_ARGS(1, ok, 0, 0, 0);
	GUEST_DONE();
}

/* Report the lengths of the three queues and the sender at queue 0. */
static void guest_qlens(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t sender = 0, l0 = kvmq_hc(KVMQ_HC_QLEN, 0, 0, 0);

	if (l0 == 1) {
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
		sender = m->sender;
	}
	GUEST_SYNC_ARGS(1, l0, kvmq_hc(KVMQ_HC_QLEN, KVMQ_QUEUE_VCPU(0), 0, 0),
			kvmq_hc(KVMQ_HC_QLEN, KVMQ_QUEUE_VCPU(1), 0, 0),
			sender);
	GUEST_DONE();
}

TEST_F(iso, guess_identities)
{
	int group2 = kvmq_create_group(self->dev);
	struct kvmq_peer c, d;
	struct kvmq_peer *all[] = { &self->a, &self->b, &c, &d };
	/* Each sender, its group's identities and the one that granted it. */
	struct {
		struct kvmq_peer *p;
		uint64_t ids, granted;
	} g[] = {
		{ &self->a, 1 << ID_A | 1 << ID_B, ID_B },
		{ &c, 1 << 3 | 1 << ID_B, 0 },
		{ &d, 1 << 3 | 1 << ID_B, 3 },
	};
	/* Each VM, and the sender of the one message it should have. */
	struct {
		struct kvmq_peer *p;
		uint32_t from;
	} got[] = {
		{ &self->a, 0 }, { &self->b, ID_A }, { &c, ID_B }, { &d, 0 },
	};
	struct ucall uc;
	int i;

	peer_create_at(&c, self->dev, group2, 3, AP, AP_LEN, 256);
	peer_create_at(&d, self->dev, group2, ID_B, AP, AP_LEN, 256);
	kvmq_grant(self->a.vmq, 0, ID_B);
	kvmq_grant(self->a.vmq, 0, 3);
	kvmq_grant(self->b.vmq, 0, 3);
	kvmq_grant(d.vmq, 0, ID_A);
	kvmq_grant(c.vmq, 0, ID_B);

	for (i = 0; i < ARRAY_SIZE(g); i++) {
		set_guest(g[i].p, guest_guess, g[i].ids, g[i].granted, 0, 0);
		EXPECT_EQ(!!g[i].granted, run_sync(g[i].p->vcpu).args[2]);
		kvmq_run_to_done(g[i].p->vcpu);
	}
	check_charged(all, 4);

	/* What the one grant of each took, and nothing anywhere else. */
	for (i = 0; i < ARRAY_SIZE(got); i++) {
		set_guest(got[i].p, guest_qlens, 0, 0, 0, 0);
		uc = run_sync(got[i].p->vcpu);
		EXPECT_EQ(!!got[i].from, uc.args[2]) TH_LOG("VM %d", i);
		EXPECT_EQ(0, uc.args[3]);
		EXPECT_EQ(0, uc.args[4]);
		EXPECT_EQ(got[i].from, uc.args[5]);
		kvmq_run_to_done(got[i].p->vcpu);
	}
	EXPECT_EQ(0, kvmq_get_stats(self->a.vmq).sent[KVMQ_MSG_PAGES - 1]);
	EXPECT_EQ(0, kvmq_get_stats(c.vmq).sent[KVMQ_MSG_BYTES - 1]);
	EXPECT_EQ(0, kvmq_get_stats(d.vmq).sent[KVMQ_MSG_PAGES - 1]);
	kvmq_peer_destroy(&c);
	kvmq_peer_destroy(&d);
	close(group2);
}

/*
 * Fixture flood: three senders, S1 to S3 (identities 2 to 4), send to
 * R (1) at once, each vCPU in a thread of its own, until R refuses them:
 * R never receives.  Variants:
 *
 * - depth: bytes, R's queues of depth 64: 64 go through, then -EAGAIN;
 * - quota: 16-page messages, R's quota 2 MiB: 32, then -ENOBUFS;
 * - page_limit: 16-page messages, R's page limit 1 MiB: 16, -ENOBUFS;
 * - blocks: one 2 MiB block each, R's quota 8 MiB: 4, -ENOBUFS;
 * - mem: 2 KiB of bytes, R's memory limit KVMQ_MEM_LIMIT_MIN: -ENOBUFS
 *   once the queue's kernel memory is at its limit.
 *
 * The three together get exactly what the limit allows, each failed
 * message is intact in its sender, and the invariant holds; once R took
 * every message and gave the pages back, it holds still, with R charged
 * nothing.
 */
#define FLOOD_PAGES	16
#define ID_R		1
#define NR_SENDERS	3

FIXTURE(flood) {
	int dev, group;
	struct kvmq_peer r, s[NR_SENDERS];
};

FIXTURE_VARIANT(flood) {
	uint32_t kind;
	uint32_t depth;
	uint64_t quota;
	uint64_t page_limit;
	uint64_t mem_limit;
	int64_t refusal;
	uint32_t total;		/* messages that fit; 0: the memory limit */
};

FIXTURE_VARIANT_ADD(flood, depth) {
	.kind = KVMQ_MSG_BYTES, .depth = 64, .quota = AP_LEN,
	.refusal = -EAGAIN, .total = 64,
};

FIXTURE_VARIANT_ADD(flood, quota) {
	.kind = KVMQ_MSG_PAGES, .depth = KVMQ_DEPTH_MAX, .quota = SZ_2M,
	.refusal = -ENOBUFS, .total = 32,
};

FIXTURE_VARIANT_ADD(flood, page_limit) {
	.kind = KVMQ_MSG_PAGES, .depth = KVMQ_DEPTH_MAX, .quota = AP_LEN,
	.page_limit = 1 << 20, .refusal = -ENOBUFS, .total = 16,
};

FIXTURE_VARIANT_ADD(flood, blocks) {
	.kind = KVMQ_MSG_BLOCKS, .depth = KVMQ_DEPTH_MAX, .quota = AP_LEN,
	.refusal = -ENOBUFS, .total = 4,
};

FIXTURE_VARIANT_ADD(flood, mem) {
	.kind = KVMQ_MSG_BYTES, .depth = KVMQ_DEPTH_MAX, .quota = AP_LEN,
	.mem_limit = KVMQ_MEM_LIMIT_MIN, .refusal = -ENOBUFS,
};

FIXTURE_SETUP(flood)
{
	struct kvmq_vm_queues cfg = {
		.size = sizeof(cfg), .nr_queues = 1, .nr_vcpu_queues = 2,
		.depth = variant->depth, .page_limit = variant->page_limit,
		.mem_limit = variant->mem_limit,
	};
	int i;

	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	kvmq_peer_create(&self->r, self->dev, self->group, ID_R, NULL,
			 AP_LEN, variant->quota, 0);
	ASSERT_EQ(0, kvmq_ioctl_err(self->r.vmq, KVMQ_VM_SET_QUEUES, &cfg));
	for (i = 0; i < NR_SENDERS; i++) {
		kvmq_peer_create(&self->s[i], self->dev, self->group, 2 + i,
				 NULL, AP_LEN, AP_LEN, 4);
		kvmq_grant(self->r.vmq, 0, 2 + i);
	}
}

FIXTURE_TEARDOWN(flood)
{
	int i;

	kvmq_peer_destroy(&self->r);
	for (i = 0; i < NR_SENDERS; i++)
		kvmq_peer_destroy(&self->s[i]);
	close(self->group);
	close(self->dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

/* Guest: message @n of @kind, from fresh pages at the aperture's start. */
static void flood_build(struct kvmq_msg *m, uint32_t kind, uint64_t n)
{
	uint64_t i, pages = kind == KVMQ_MSG_BLOCKS ? 512 : FLOOD_PAGES;

	switch (kind) {
	case KVMQ_MSG_BYTES:
		msg_init(m, kind, 0, KVMQ_MSG_BYTES_MAX);
		memset(m->data, (uint8_t)n, KVMQ_MSG_BYTES_MAX);
		return;
	case KVMQ_MSG_PAGES:
		msg_pages(m, AP, 0, FLOOD_PAGES);
		break;
	default:
		msg_init(m, kind, 1, SZ_2M);
		m->gpas[0] = AP;
	}
	for (i = 0; i < pages; i++)
		poke(AP + i * PG, tag(n, i));
}

/* Guest: whether the message build(@kind, @n) is still whole here. */
static bool flood_intact(struct kvmq_msg *m, uint32_t kind, uint64_t n)
{
	uint64_t i, pages = kind == KVMQ_MSG_BLOCKS ? 512 : FLOOD_PAGES;

	if (kind == KVMQ_MSG_BYTES) {
		for (i = 0; i < KVMQ_MSG_BYTES_MAX; i++)
			if (m->data[i] != (uint8_t)n)
				return false;
		return true;
	}
	for (i = 0; i < pages; i++)
		if (peek(AP + i * PG) != tag(n, i))
			return false;
	return true;
}

static void guest_flood(uint64_t gva, uint64_t gpa, uint64_t kind)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t n = 0;
	int64_t ret;

	GUEST_SYNC(0);		/* ready: the VMM starts the three at once */
	for (;;) {
		flood_build(m, kind, n);
		ret = kvmq_hc(KVMQ_HC_SEND, ID_R, 0, gpa);
		if (ret)
			break;
		n++;
	}
	GUEST_ASSERT(flood_intact(m, kind, n));
	GUEST_SYNC_ARGS(1, n, ret, 0, 0);
	GUEST_DONE();
}

static uint64_t drained[NR_SENDERS];

/* Receiver: take everything, release the pages; count per sender. */
static void guest_drain(uint64_t gva, uint64_t gpa)
{
	struct kvmq_msg *m = (void *)gva;
	uint64_t n = 0, pages;
	int64_t ret;

	while (!(ret = kvmq_hc(KVMQ_HC_RECV, 0, gpa, 0))) {
		GUEST_ASSERT(m->sender >= 2 && m->sender < 2 + NR_SENDERS);
		if (m->kind != KVMQ_MSG_BYTES) {
			pages = m->kind == KVMQ_MSG_PAGES ? m->nr : m->nr * 512;
			EXPECT_HC(pages, KVMQ_HC_RELEASE, m->gpa, pages, 0);
		}
		drained[m->sender - 2]++;
		n++;
	}
	GUEST_ASSERT_EQ(ret, -EAGAIN);
	GUEST_SYNC_ARGS(1, n, 0, 0, 0);
	GUEST_DONE();
}

struct flood_run {
	pthread_barrier_t *start;
	struct kvm_vcpu *vcpu;
	uint64_t sent;
	int64_t ret;
};

static void *flood_thread(void *arg)
{
	struct flood_run *fr = arg;
	struct ucall uc;

	TEST_ASSERT(!run_sync(fr->vcpu).args[1], "not ready");
	pthread_barrier_wait(fr->start);
	uc = run_sync(fr->vcpu);
	fr->sent = uc.args[2];
	fr->ret = uc.args[3];
	kvmq_run_to_done(fr->vcpu);
	return NULL;
}

TEST_F(flood, concurrent)
{
	struct kvmq_peer *all[] = {
		&self->r, &self->s[0], &self->s[1], &self->s[2],
	};
	uint64_t per = variant->kind == KVMQ_MSG_PAGES ? FLOOD_PAGES * PG :
		       variant->kind == KVMQ_MSG_BLOCKS ? SZ_2M : 0;
	struct flood_run fr[NR_SENDERS];
	pthread_t t[NR_SENDERS];
	pthread_barrier_t start;
	struct kvmq_vm_aperture ap;
	struct kvmq_vm_queues q;
	struct kvmq_vm_stats st;
	uint64_t total = 0;
	int i;

	ASSERT_EQ(0, pthread_barrier_init(&start, NULL, NR_SENDERS));
	for (i = 0; i < NR_SENDERS; i++) {
		set_guest(&self->s[i], guest_flood, variant->kind, 0, 0, 0);
		fr[i].vcpu = self->s[i].vcpu;
		fr[i].start = &start;
	}
	for (i = 0; i < NR_SENDERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, flood_thread, &fr[i]));
	for (i = 0; i < NR_SENDERS; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	pthread_barrier_destroy(&start);

	for (i = 0; i < NR_SENDERS; i++) {
		EXPECT_EQ(variant->refusal, fr[i].ret) TH_LOG("sender %d", i);
		st = kvmq_get_stats(self->s[i].vmq);
		EXPECT_EQ(fr[i].sent, st.sent[variant->kind - 1]);
		total += fr[i].sent;
	}
	printf("# sent %lu + %lu + %lu\n", fr[0].sent, fr[1].sent, fr[2].sent);
	ap = kvmq_get_aperture(self->r.vmq);
	q = kvmq_get_queues(self->r.vmq);
	EXPECT_EQ(0, ap.held);
	EXPECT_EQ(total * per, ap.queued);
	if (variant->total) {
		EXPECT_EQ(variant->total, total);
	} else {
		/* The memory limit stopped them: one more would not fit. */
		ASSERT_LT(0, total);
		EXPECT_GE(q.mem_limit, q.mem);
		EXPECT_LT(q.mem_limit, q.mem + q.mem / total);
	}
	check_charged(all, 4);

	set_guest(&self->r, guest_drain, 0, 0, 0, 0);
	EXPECT_EQ(total, run_sync(self->r.vcpu).args[2]);
	kvmq_run_to_done(self->r.vcpu);
	sync_global_from_guest(self->r.vm, drained);
	for (i = 0; i < NR_SENDERS; i++)
		EXPECT_EQ(fr[i].sent, drained[i]) TH_LOG("sender %d", i);
	ap = kvmq_get_aperture(self->r.vmq);
	EXPECT_EQ(0, ap.held + ap.queued);
	EXPECT_EQ(0, kvmq_get_queues(self->r.vmq).mem);
	check_charged(all, 4);
}

KVMQ_TEST_HARNESS_MAIN
