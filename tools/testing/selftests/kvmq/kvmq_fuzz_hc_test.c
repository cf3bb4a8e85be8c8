// SPDX-License-Identifier: GPL-2.0
/*
 * A fuzzer of kvmq's hypercalls, run by the guests themselves: three VMs
 * of two vCPUs each, every vCPU in a thread of its own, issue hypercalls
 * with numbers in and around kvmq's range and random arguments, random
 * message headers and address lists (in the aperture and outside it), and
 * the VM with rings writes random entries and indexes into its rings.
 * In variant "mixed" vCPU 1 of each VM issues its hypercalls from
 * compatibility mode (32-bit code), half of them with junk in bits 63:32
 * of the number and the arguments, which must not matter.
 * Nothing may crash or warn; afterwards every VM holds no more than its
 * quota and memory limit allow, the pool of pages is exactly what the VMs
 * hold and have queued, and empty once they are gone.
 *
 * KVMQ_FUZZ_SEED sets the seed (printed; each vCPU's sequence follows from
 * it, their interleaving does not), KVMQ_FUZZ_HYPERCALLS the number of
 * hypercalls of all vCPUs together per variant (default 250000: a million
 * in the two variants of the two lanes of make check).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(8ULL << 20)
#define AP_PAGES	(AP_LEN / PG)
#define HOT		64	/* pages touched and sent most */
#define RINGS		KVMQ_TEST_RING_GPA
#define NR_VMS		3
#define NR_VCPUS	2
#define RING_VM		2	/* the VM with rings */

/* xorshift64*, in guest and host alike. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(uint64_t *s, uint64_t n)
{
	return rnd(s) % n;
}

/* Per vCPU: hypercalls issued (compat: from 32-bit code), how they ended. */
struct fz_count {
	uint64_t calls, compat, ok, enosys, err;
};

static struct fz_count cnt[NR_VCPUS];
/* The vCPUs that issue their hypercalls from compatibility mode. */
static uint32_t compat_mask;
/* The ring layout of the ring VM, copied into its guest. */
static struct kvmq_vm_rings lay;

/*
 * The guest's only store to its aperture, so that the VMM can step over it
 * when the quota refuses the page (KVM_RUN fails with EFAULT).
 */
void fz_touch(uint64_t gva);
extern char fz_touch_end[];
asm(".pushsection .text\n"
    ".global fz_touch\n"
    "fz_touch:\n"
    "	movb $1, (%rdi)\n"
    ".global fz_touch_end\n"
    "fz_touch_end:\n"
    "	ret\n"
    ".popsection\n");

/* Guest: an address: in the aperture (aligned or not), a buffer, anything. */
static uint64_t g_gpa(uint64_t *s, uint64_t buf)
{
	switch (below(s, 10)) {
	case 0: return rnd(s);
	case 1: return AP + rnd(s) % AP_LEN;		/* unaligned */
	case 2: return AP + below(s, AP_LEN / SZ_2M) * SZ_2M;
	case 3: return AP - PG * (1 + below(s, 4));	/* just below */
	case 4: return AP + AP_LEN + PG * below(s, 4);	/* just above */
	case 5: return buf;
	default: return AP + below(s, AP_PAGES) * PG;
	}
}

static uint64_t g_any(uint64_t *s)
{
	static const uint64_t edges[] = {
		0, 1, 2, 3, 4, 0xffffffff, 1ULL << 32, -1ULL, 1ULL << 63,
		KVMQ_ID_MAX, KVMQ_QUEUE_VCPU(0), KVMQ_QUEUE_VCPU(NR_VCPUS),
		KVMQ_MSG_PAGES_MAX + 1, AP_PAGES, AP_PAGES + 1,
	};

	return below(s, 2) ? rnd(s) : edges[below(s, ARRAY_SIZE(edges))];
}

static uint32_t g_queue(uint64_t *s)
{
	switch (below(s, 6)) {
	case 0: return 1;	/* not granted */
	case 1: return below(s, 8);
	case 2: return KVMQ_QUEUE_VCPU(below(s, NR_VCPUS + 1));
	case 3: return g_any(s);
	default: return below(s, 2) ? 0 : KVMQ_QUEUE_VCPU(below(s, NR_VCPUS));
	}
}

/* Guest: a message header and list at @m: mostly plausible. */
static void g_msg(uint64_t *s, struct kvmq_msg *m, uint64_t buf)
{
	uint32_t i, nr;

	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = below(s, 8) ? 1 + below(s, 3) : g_any(s);
	nr = m->kind == KVMQ_MSG_BLOCKS ? 1 + below(s, 2) :
	     m->kind == KVMQ_MSG_PAGES ? 1 + below(s, 8) : 0;
	if (!below(s, 16))
		nr = g_any(s);
	m->nr = nr;
	m->len = m->kind == KVMQ_MSG_BYTES ? below(s, 2100) :
		 below(s, (uint64_t)(nr & 0xff) * PG + 2);
	if (!below(s, 16)) {
		switch (below(s, 4)) {
		case 0: m->flags = g_any(s); break;
		case 1: m->sender = g_any(s); break;
		case 2: m->__reserved = g_any(s); break;
		default: m->gpa = g_any(s); break;
		}
	}
	for (i = 0; i < nr && i < KVMQ_MSG_PAGES_MAX; i++) {
		if (m->kind == KVMQ_MSG_BLOCKS && below(s, 4))
			m->gpas[i] = AP + below(s, AP_LEN / SZ_2M) * SZ_2M;
		else if (below(s, 4))
			m->gpas[i] = AP + below(s, below(s, 4) ? HOT :
						   AP_PAGES) * PG;
		else
			m->gpas[i] = i ? m->gpas[i - 1] : g_gpa(s, buf);
	}
}

static void *g_entry(struct kvmq_ring *r, uint32_t n, size_t size,
		     uint32_t entries)
{
	return (char *)(r + 1) + (n & (entries - 1)) * size;
}

/* Guest of the ring VM: scribble on the rings of vCPU @v and its queues. */
static void g_rings(uint64_t *s, uint32_t v, uint64_t buf)
{
	struct kvmq_ring *sq = (void *)(RINGS + lay.vcpu_offset +
					v * lay.vcpu_stride);
	struct kvmq_ring *cq = (void *)((char *)sq + lay.cq_offset);
	struct kvmq_ring *rx = (void *)(RINGS + below(s, 2 + NR_VCPUS) *
					lay.rx_stride);
	struct kvmq_sqe *e;
	uint32_t i, n = below(s, 4);

	for (i = 0; i < n; i++) {
		e = g_entry(sq, sq->prod, sizeof(*e), lay.sq_entries);
		memset(e, 0, sizeof(*e));
		e->op = below(s, 8) ? 1 + below(s, 2) : rnd(s);
		e->flags = below(s, 4);
		if (!below(s, 16))
			e->__reserved = rnd(s);
		e->dest = e->op == KVMQ_OP_SEND ? 1 + below(s, NR_VMS) : 0;
		e->queue = e->op == KVMQ_OP_SEND ? g_queue(s) : 0;
		e->nr = e->op == KVMQ_OP_RELEASE ? below(s, 16) : 0;
		e->gpa = e->op == KVMQ_OP_SEND ? buf : g_gpa(s, buf);
		e->user_data = rnd(s);
		__atomic_store_n(&sq->prod, sq->prod + 1, __ATOMIC_RELEASE);
	}
	/* Consume what arrived, mostly sanely. */
	switch (below(s, 16)) {
	case 0: sq->prod += rnd(s); break;
	case 1: cq->cons = rnd(s); break;
	case 2: rx->cons = rnd(s); break;
	case 3: rx->flags = rnd(s); break;
	default:
		__atomic_store_n(&cq->cons, cq->prod, __ATOMIC_RELEASE);
		__atomic_store_n(&rx->cons, rx->prod, __ATOMIC_RELEASE);
		break;
	}
	/* The kernel's indexes are its own: put sane ones back, sometimes. */
	if (!below(s, 4)) {
		sq->prod = sq->cons;
		cq->cons = cq->prod;
		rx->cons = rx->prod;
	}
}

static void guest_fuzz(uint64_t seed, uint64_t iters, uint64_t buf_gva,
		       uint64_t buf_gpa, uint64_t rings, uint64_t v)
{
	struct kvmq_msg *m = (void *)buf_gva;
	struct fz_count *c = &cnt[v];
	bool compat = compat_mask & (1U << v);
	uint64_t s = seed, nr, a0, a1, a2, a3;
	int64_t ret;

	while (c->calls < iters) {
		if (!below(&s, 4))
			fz_touch(AP + below(&s, below(&s, 4) ? HOT : AP_PAGES) *
				 PG);
		if (rings && !below(&s, 2))
			g_rings(&s, v, buf_gpa);

		nr = KVMQ_HC_BASE + below(&s, 8);
		a0 = a1 = a2 = 0;
		switch (nr) {
		case KVMQ_HC_SEND:
			g_msg(&s, m, buf_gpa);
			a0 = below(&s, 8) ? 1 + below(&s, NR_VMS) : g_any(&s);
			a1 = g_queue(&s);
			a2 = below(&s, 8) ? buf_gpa : g_gpa(&s, buf_gpa);
			break;
		case KVMQ_HC_RECV:
			a0 = g_queue(&s);
			a1 = below(&s, 8) ? buf_gpa : g_gpa(&s, buf_gpa);
			break;
		case KVMQ_HC_QLEN:
			a0 = g_queue(&s);
			break;
		case KVMQ_HC_RELEASE:
			a0 = g_gpa(&s, buf_gpa);
			a1 = below(&s, 2) ? below(&s, 8) : below(&s, 4) ?
			     below(&s, AP_PAGES + 2) : g_any(&s);
			break;
		case KVMQ_HC_SUBMIT:
			a0 = below(&s, 8) ? 0 : g_any(&s);
			break;
		}
		/* Numbers around kvmq's, never below 256 (KVM's own). */
		switch (below(&s, 32)) {
		case 0: nr = KVMQ_HC_BASE + below(&s, KVMQ_HC_COUNT); break;
		case 1: nr = KVMQ_HC_BASE - 1 - below(&s, 4); break;
		case 2: nr = KVMQ_HC_BASE + KVMQ_HC_COUNT + below(&s, 4); break;
		case 3: nr |= 1ULL << (32 + below(&s, 32)); break;
		case 4: nr = rnd(&s) | 0x100; break;
		}
		/* An argument anything at all. */
		if (!below(&s, 8)) {
			switch (below(&s, 4)) {
			case 0: a0 = g_any(&s); break;
			case 1: a1 = g_any(&s); break;
			default: a2 = g_any(&s); break;
			}
		}
		a3 = g_any(&s);
		if (!compat) {
			ret = kvm_hypercall(nr, a0, a1, a2, a3);
		} else {
			/* Bits 63:32 are ignored: junk in them, often. */
			if (below(&s, 2)) {
				nr |= rnd(&s) << 32;
				a0 |= rnd(&s) << 32;
				a1 |= rnd(&s) << 32;
				a2 |= rnd(&s) << 32;
				a3 |= rnd(&s) << 32;
			}
			ret = kvmq_hypercall_compat(nr, a0, a1, a2, a3);
			c->compat++;
		}
		c->calls++;
		if (ret >= 0)
			c->ok++;
		else if (ret == -KVM_ENOSYS)
			c->enosys++;
		else
			c->err++;
	}
	GUEST_DONE();
}

struct fz_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu[NR_VCPUS];
	int vmq;
	uint8_t *ap;
	void *rings;
	uint64_t rings_len;
};

struct fz_thread {
	struct kvm_vcpu *vcpu;
	pthread_t t;
	uint64_t refused;	/* touches the quota refused */
};

/* Run a vCPU to GUEST_DONE, stepping over the touches the quota refuses. */
static void *vcpu_thread(void *data)
{
	struct fz_thread *th = data;
	struct kvm_regs regs;
	struct ucall uc;

	for (;;) {
		if (_vcpu_run(th->vcpu)) {
			TEST_ASSERT(errno == EFAULT, "KVM_RUN, errno %d", errno);
			vcpu_regs_get(th->vcpu, &regs);
			TEST_ASSERT(regs.rip == (uint64_t)fz_touch,
				    "EFAULT at %llx", regs.rip);
			regs.rip = (uint64_t)fz_touch_end;
			vcpu_regs_set(th->vcpu, &regs);
			th->refused++;
			continue;
		}
		TEST_ASSERT_KVM_EXIT_REASON(th->vcpu, KVM_EXIT_IO);
		switch (get_ucall(th->vcpu, &uc)) {
		case UCALL_DONE:
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("unexpected ucall");
		}
	}
}

static uint64_t fuzz_seed(void)
{
	const char *e = getenv("KVMQ_FUZZ_SEED");
	struct timespec ts;

	if (e && *e)
		return strtoull(e, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000007ULL + ts.tv_nsec;
}

static void fz_vm_create(struct fz_vm *v, int dev, int group, uint32_t id)
{
	struct kvmq_vm_queues q = {
		.size = sizeof(q), .nr_queues = 2, .nr_vcpu_queues = NR_VCPUS,
		.depth = 8, .page_limit = AP_LEN / 2,
	};
	uint32_t sender, i;

	v->vm = vm_create_with_vcpus(NR_VCPUS, guest_fuzz, v->vcpu);
	v->vmq = kvmq_attach(dev, v->vm);
	kvmq_set_identity(v->vmq, group, id);
	TEST_ASSERT(!ioctl(v->vmq, KVMQ_VM_SET_QUEUES, &q), "queues");
	/* Everyone may send to queue 0 and the vCPU queues; none to 1. */
	for (sender = 1; sender <= NR_VMS; sender++) {
		kvmq_grant(v->vmq, 0, sender);
		for (i = 0; i < NR_VCPUS; i++)
			kvmq_grant(v->vmq, KVMQ_QUEUE_VCPU(i), sender);
	}
	kvmq_set_aperture(v->vmq, AP, AP_LEN, AP_LEN);
	v->ap = mmap(NULL, AP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		     v->vmq, 0);
	TEST_ASSERT(v->ap != MAP_FAILED, "mmap, errno %d", errno);
	vm_set_user_memory_region(v->vm, KVMQ_TEST_AP_SLOT, 0, AP, AP_LEN,
				  v->ap);
	virt_map_level(v->vm, AP, AP, AP_LEN, PG_LEVEL_2M);
}

static void fz_vm_rings(struct fz_vm *v)
{
	lay = (struct kvmq_vm_rings){
		.size = sizeof(lay), .rx_entries = 4, .sq_entries = 8,
	};
	TEST_ASSERT(!ioctl(v->vmq, KVMQ_VM_SET_RINGS, &lay), "rings");
	v->rings_len = lay.length;
	v->rings = mmap(NULL, lay.length, PROT_READ | PROT_WRITE, MAP_SHARED,
			v->vmq, KVMQ_RINGS_MMAP_OFFSET);
	TEST_ASSERT(v->rings != MAP_FAILED, "mmap of rings, errno %d", errno);
	vm_set_user_memory_region(v->vm, KVMQ_TEST_RING_SLOT, 0, RINGS,
				  lay.length, v->rings);
	virt_map(v->vm, RINGS, RINGS, lay.length / PG);
	sync_global_to_guest(v->vm, lay);
}

FIXTURE(fh) {
	int dev, group;
	struct fz_vm vms[NR_VMS];
};

/* Bit n: vCPU n of each VM issues its hypercalls in compatibility mode. */
FIXTURE_VARIANT(fh) {
	uint32_t compat_mask;
};

FIXTURE_VARIANT_ADD(fh, all_64bit) {
	.compat_mask = 0,
};

FIXTURE_VARIANT_ADD(fh, mixed) {
	.compat_mask = 1U << 1,
};

FIXTURE_SETUP(fh)
{
	int i;

	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	compat_mask = variant->compat_mask;
	for (i = 0; i < NR_VMS; i++) {
		fz_vm_create(&self->vms[i], self->dev, self->group, i + 1);
		kvmq_compat_init(self->vms[i].vm);
		sync_global_to_guest(self->vms[i].vm, compat_mask);
	}
	fz_vm_rings(&self->vms[RING_VM]);
}

FIXTURE_TEARDOWN(fh)
{
	int i;

	for (i = 0; i < NR_VMS; i++) {
		kvm_vm_free(self->vms[i].vm);
		if (self->vms[i].rings)
			munmap(self->vms[i].rings, self->vms[i].rings_len);
		munmap(self->vms[i].ap, AP_LEN);
		close(self->vms[i].vmq);
	}
	close(self->group);
	close(self->dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

TEST_F_TIMEOUT(fh, guests, 3600)
{
	const char *e = getenv("KVMQ_FUZZ_HYPERCALLS");
	uint64_t total = e && *e ? strtoull(e, NULL, 0) : 250000;
	uint64_t per = total / (NR_VMS * NR_VCPUS) + 1;
	uint64_t seed = fuzz_seed(), sum = 0, refused = 0;
	struct fz_thread th[NR_VMS][NR_VCPUS];
	struct fz_count all = { 0 };
	struct kvmq_vm_aperture ap;
	struct kvmq_vm_queues q;
	struct kvmq_vm_stats st;
	struct fz_count *c;
	struct fz_vm *v;
	time_t start = time(NULL);
	int i, j;

	printf("# seed %#lx (KVMQ_FUZZ_SEED), %lu hypercalls per vCPU (KVMQ_FUZZ_HYPERCALLS=%lu)\n",
	       seed, per, total);
	for (i = 0; i < NR_VMS; i++) {
		v = &self->vms[i];
		for (j = 0; j < NR_VCPUS; j++) {
			uint64_t s = seed ^ ((i * NR_VCPUS + j + 1) *
					     0x9e3779b97f4a7c15ULL);
			uint64_t gva = vm_vaddr_alloc_page(v->vm);

			vcpu_args_set(v->vcpu[j], 6, s ? s : 1, per, gva,
				      addr_gva2gpa(v->vm, gva), !!v->rings, j);
			th[i][j] = (struct fz_thread){ .vcpu = v->vcpu[j] };
		}
	}
	for (i = 0; i < NR_VMS; i++)
		for (j = 0; j < NR_VCPUS; j++)
			pthread_create(&th[i][j].t, NULL, vcpu_thread,
				       &th[i][j]);
	for (i = 0; i < NR_VMS; i++)
		for (j = 0; j < NR_VCPUS; j++) {
			pthread_join(th[i][j].t, NULL);
			refused += th[i][j].refused;
		}

	/* Within the quota, the page limit and the memory limit; the pool
	 * is exactly what the VMs hold and have queued.
	 */
	for (i = 0; i < NR_VMS; i++) {
		v = &self->vms[i];
		ap = kvmq_get_aperture(v->vmq);
		q = kvmq_get_queues(v->vmq);
		st = kvmq_get_stats(v->vmq);
		EXPECT_LE(ap.held + ap.queued, ap.quota);
		EXPECT_LE(ap.queued, q.page_limit);
		EXPECT_LE(q.mem, q.mem_limit);
		sum += ap.held + ap.queued;
		for (j = 0; j < NR_VCPUS; j++) {
			c = addr_gva2hva(v->vm, (vm_vaddr_t)&cnt[j]);
			all.calls += c->calls;
			all.compat += c->compat;
			all.ok += c->ok;
			all.enosys += c->enosys;
			all.err += c->err;
		}
		printf("# VM %d: sent %llu/%llu/%llu, received %llu/%llu/%llu, %llu pages moved, %llu refused, %llu doorbells, %llu lazy batches; holds %llu KiB, queued %llu KiB\n",
		       i + 1, st.sent[0], st.sent[1], st.sent[2],
		       st.received[0], st.received[1], st.received[2],
		       st.pages_moved, st.refused, st.doorbells,
		       st.lazy_batches, ap.held >> 10, ap.queued >> 10);
	}
	EXPECT_EQ(sum, kvmq_pool_pages() * PG);
	printf("# %lu hypercalls (%lu in 64-bit mode, %lu in 32-bit mode): %lu succeeded, %lu -KVM_ENOSYS, %lu other errors; %lu touches refused by the quota; %ld s\n",
	       all.calls, all.calls - all.compat, all.compat, all.ok,
	       all.enosys, all.err, refused, (long)(time(NULL) - start));
	EXPECT_EQ(per * NR_VMS * NR_VCPUS, all.calls);
	EXPECT_EQ(per * NR_VMS * __builtin_popcount(variant->compat_mask),
		  all.compat);
}

KVMQ_TEST_HARNESS_MAIN
