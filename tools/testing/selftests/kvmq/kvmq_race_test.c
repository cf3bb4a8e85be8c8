// SPDX-License-Identifier: GPL-2.0
/*
 * Teardown races: VMs that send, receive and release, with hypercalls and
 * through rings (lazy batches, doorbells, arrival interrupts), are torn
 * down while all of that is in flight, in a different way each time: the
 * VMM killed, the VMM exiting, a detach while the peers keep sending to
 * the VM, the VM's and vCPUs' file descriptors closed under running vCPU
 * threads, grants revoked and eventfds removed first.  After every
 * iteration kvmq must hold nothing: no page in its pool, no KVM VM alive,
 * no file of its own open.
 *
 * Each VM lives in a VMM process of its own, forked from the test, which
 * shares the group by inheritance.  KVMQ_RACE_SEED sets the seed (printed;
 * the teardowns follow from it, their timing does not), KVMQ_RACE_ITERS
 * the number of iterations (default 120, 40 on a kernel with lockdep).
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "kvm_util.h"
#include "processor.h"
#include "apic.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define PG		4096ULL
#define SZ_1M		(1ULL << 20)
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(8ULL << 20)
#define RINGS		KVMQ_TEST_RING_GPA
#define MAX_VMS		3
#define NR_VCPUS	2
#define DEPTH		8
#define RX_ENTRIES	4
#define SQ_ENTRIES	8
#define GSI		24
#define VECTOR		0x40
#define SYNC_EVERY	8	/* guest loops per exit to the VMM */
#define ITERS		120
#define ITERS_DEBUG	40	/* on a kernel with lockdep, 4 s each */

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

/* How a VM goes, at the end of its iteration. */
enum rc_end {
	END_KILL,		/* the test SIGKILLs its VMM */
	END_EXIT,		/* its VMM exits, vCPU threads running */
	END_DETACH,		/* mappings, then the per-VM file; exit later */
	END_DETACH_FD,		/* the per-VM file, then the mappings */
	END_DESTROY,		/* vCPU and VM files, then detach */
	END_DESTROY_EXIT,	/* vCPU and VM files, then exit */
	NR_ENDS
};

static const char * const end_names[NR_ENDS] = {
	"VMM killed", "VMM exits", "detach", "detach (file first)",
	"VM destroyed, then detach", "VM destroyed, then VMM exits",
};

/* What a VM's VMM may do first, while its VM and the peers still run. */
#define PRE_REVOKE	(1 << 0)	/* revoke every grant */
#define PRE_NOTIFY	(1 << 1)	/* remove and close its eventfds */
#define NR_PRES		2

/* One VM of an iteration, as the test chose it. */
struct rc_vm_cfg {
	uint32_t id;
	bool rings;
	uint32_t lazy_delay_us;
	enum rc_end end;
	uint32_t pre;
	uint32_t warm;		/* guest syncs before the teardown starts */
	uint32_t delay_us;	/* and then this long */
};

/* Shared between the test and its VMM processes. */
struct rc_shared {
	uint64_t syncs[MAX_VMS];
	struct kvmq_vm_stats st[MAX_VMS];
};

/* Guest parameters, per VM (set before the vCPUs start). */
struct rc_guest {
	uint64_t seed[NR_VCPUS];
	uint64_t msg_gva[NR_VCPUS], msg_gpa[NR_VCPUS];
	uint64_t rmsg_gva[NR_VCPUS], rmsg_gpa[NR_VCPUS];
	uint32_t id, nr_vms;
	bool rings;
};

static struct rc_guest g;
static struct kvmq_vm_rings lay;
static volatile uint64_t irqs;

/*
 * The guest's only store to its aperture: the VMM steps over it when KVM
 * cannot map the page (quota full, or the aperture is gone).
 */
void rc_touch(uint64_t gva);
extern char rc_touch_end[];
asm(".pushsection .text\n"
    ".global rc_touch\n"
    "rc_touch:\n"
    "	movb $1, (%rdi)\n"
    ".global rc_touch_end\n"
    "rc_touch_end:\n"
    "	ret\n"
    ".popsection\n");

static void guest_irq(struct ex_regs *regs)
{
	irqs++;
	xapic_write_reg(APIC_EOI, 0);
}

static void *g_entry(struct kvmq_ring *r, uint32_t n, size_t size,
		     uint32_t entries)
{
	return (char *)(r + 1) + (n & (entries - 1)) * size;
}

/* Guest: the rings of vCPU @v; results are not checked, peers go away. */
struct g_sq {
	struct kvmq_ring *sq, *cq;
	uint32_t posted, done;
};

static void g_sq_reap(struct g_sq *q)
{
	while (__atomic_load_n(&q->cq->prod, __ATOMIC_ACQUIRE) !=
	       q->cq->cons) {
		__atomic_store_n(&q->cq->cons, q->cq->cons + 1,
				 __ATOMIC_RELEASE);
		q->done++;
	}
}

/* Post an entry if the rings have room; ring the doorbell unless lazy. */
static void g_sq_post(struct g_sq *q, uint8_t op, uint8_t flags,
		      uint32_t dest, uint32_t queue, uint32_t nr, uint64_t gpa)
{
	struct kvmq_sqe *e;

	g_sq_reap(q);
	if (q->posted - q->done >= SQ_ENTRIES) {
		kvmq_hc(KVMQ_HC_SUBMIT, 0, 0, 0);
		return;
	}
	e = g_entry(q->sq, q->sq->prod, sizeof(*e), SQ_ENTRIES);
	memset(e, 0, sizeof(*e));
	e->op = op;
	e->flags = flags;
	e->dest = dest;
	e->queue = queue;
	e->nr = nr;
	e->gpa = gpa;
	__atomic_store_n(&q->sq->prod, q->sq->prod + 1, __ATOMIC_RELEASE);
	q->posted++;
	if (!(flags & KVMQ_SQE_LAZY))
		kvmq_hc(KVMQ_HC_SUBMIT, 0, 0, 0);
}

/* Guest: a message of a random kind in @m, to send from vCPU @v. */
static void g_build(uint64_t *s, struct kvmq_msg *m, uint32_t v)
{
	uint64_t base;
	uint32_t j;

	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = 1 + below(s, 3);
	switch (m->kind) {
	case KVMQ_MSG_BYTES:
		m->len = 1 + below(s, 512);
		m->data[0] = v;
		break;
	case KVMQ_MSG_PAGES:
		m->nr = 1 + below(s, 4);
		m->len = m->nr * PG;
		base = AP + v * SZ_1M + below(s, 250) * PG;
		for (j = 0; j < m->nr; j++) {
			m->gpas[j] = base + j * PG;
			rc_touch(m->gpas[j]);
		}
		break;
	default:
		m->nr = 1;
		m->len = SZ_2M;
		m->gpas[0] = AP + 4 * SZ_1M + v * SZ_2M;
		rc_touch(m->gpas[0]);
		break;
	}
}

static uint64_t g_msg_pages(struct kvmq_msg *m)
{
	if (m->kind == KVMQ_MSG_PAGES)
		return m->nr;
	if (m->kind == KVMQ_MSG_BLOCKS)
		return m->nr * (SZ_2M / PG);
	return 0;
}

/* Guest: take what arrived in receive ring @r, releasing its pages. */
static void g_rx_drain(struct kvmq_ring *r, struct g_sq *q, uint64_t *s)
{
	struct kvmq_msg *m;
	uint64_t n;
	int i;

	for (i = 0; i < RX_ENTRIES; i++) {
		if (__atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) == r->cons)
			return;
		m = g_entry(r, r->cons, sizeof(*m), RX_ENTRIES);
		n = g_msg_pages(m);
		if (n && below(s, 2))
			g_sq_post(q, KVMQ_OP_RELEASE, below(s, 2) ?
				  KVMQ_SQE_LAZY : 0, 0, 0, n, m->gpa);
		else if (n)
			kvmq_hc(KVMQ_HC_RELEASE, m->gpa, n, 0);
		__atomic_store_n(&r->cons, r->cons + 1, __ATOMIC_RELEASE);
	}
}

/*
 * Guest, on each vCPU: send to anyone (itself included) messages of every
 * kind, with KVMQ_HC_SEND, or, with rings, through the submission ring,
 * lazily or with a doorbell; take what arrived and release its pages.
 * vCPU 0 takes the arrival interrupts of queue 0.  Nothing is asserted:
 * any peer may be gone at any time.
 */
static void guest_race(uint64_t v)
{
	struct kvmq_msg *m = (void *)g.msg_gva[v];
	struct kvmq_msg *rm = (void *)g.rmsg_gva[v];
	uint32_t queues[2] = { 0, KVMQ_QUEUE_VCPU(v) };
	uint64_t s = g.seed[v], i, n;
	struct kvmq_ring *rx[2];
	struct g_sq q = { 0 };
	uint32_t dest, queue;
	int64_t ret;
	int k;

	if (g.rings) {
		q.sq = (void *)(RINGS + lay.vcpu_offset + v * lay.vcpu_stride);
		q.cq = (void *)((char *)q.sq + lay.cq_offset);
		rx[0] = (void *)RINGS;
		rx[1] = (void *)(RINGS + (1 + v) * lay.rx_stride);
	}
	if (!v) {
		xapic_enable();
		if (g.rings)
			rx[0]->flags = KVMQ_RING_F_WAKE;
		asm volatile("sti");
	}
	for (i = 0;; i++) {
		g_build(&s, m, v);
		dest = 1 + below(&s, g.nr_vms);
		queue = below(&s, 2) ? 0 : KVMQ_QUEUE_VCPU(below(&s, NR_VCPUS));
		if (g.rings && below(&s, 4))
			g_sq_post(&q, KVMQ_OP_SEND, below(&s, 2) ?
				  KVMQ_SQE_LAZY : 0, dest, queue, 0,
				  g.msg_gpa[v]);
		else
			kvmq_hc(KVMQ_HC_SEND, dest, queue, g.msg_gpa[v]);

		for (k = 0; k < 2; k++) {
			if (g.rings) {
				g_rx_drain(rx[k], &q, &s);
				continue;
			}
			ret = kvmq_hc(KVMQ_HC_RECV, queues[k], g.rmsg_gpa[v], 0);
			n = ret >= 0 ? g_msg_pages(rm) : 0;
			if (n)
				kvmq_hc(KVMQ_HC_RELEASE, rm->gpa, n, 0);
		}
		if (!(i % SYNC_EVERY))
			GUEST_SYNC(i);
	}
}

/* The VMM process of one VM. */
struct rc_vmm {
	struct rc_vm_cfg *cfg;
	struct rc_shared *sh;
	int idx;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu[NR_VCPUS];
	int vmq, efd, sfd;
	uint8_t *ap;
	void *rings;
	uint64_t rings_len;
	/*
	 * Set, with @lock held for write, before the VMM takes its mappings
	 * or vCPU files away; a vCPU thread holds @lock for read while it
	 * handles an exit, so the files stay open meanwhile.
	 */
	pthread_rwlock_t lock;
	bool detached, destroyed;
};

struct rc_thread {
	struct rc_vmm *vmm;
	struct kvm_vcpu *vcpu;
	int fd;		/* the vCPU's fd, kept: the VMM may close it */
	pthread_t t;
};

/*
 * A vCPU thread: run to the next sync, count it, again.  It steps over a
 * touch KVM could not map, and ends when its vCPU's file is gone, or at a
 * fault elsewhere once the VMM took the aperture or rings away.
 */
static void *rc_vcpu_thread(void *data)
{
	struct rc_thread *th = data;
	struct rc_vmm *p = th->vmm;
	struct kvm_regs regs;
	struct ucall uc;
	int ret;

	for (;;) {
		ret = ioctl(th->fd, KVM_RUN, NULL) ? errno : 0;
		if (ret == EINTR)
			continue;
		/* The VMM closes the vCPU's file only between two of these. */
		pthread_rwlock_rdlock(&p->lock);
		if (p->destroyed) {
			pthread_rwlock_unlock(&p->lock);
			return NULL;
		}
		if (ret) {
			TEST_ASSERT(ret == EFAULT, "KVM_RUN, errno %d", ret);
			vcpu_regs_get(th->vcpu, &regs);
			if (regs.rip != (uint64_t)rc_touch) {
				TEST_ASSERT(p->detached, "EFAULT at %llx",
					    regs.rip);
				pthread_rwlock_unlock(&p->lock);
				return NULL;
			}
			regs.rip = (uint64_t)rc_touch_end;
			vcpu_regs_set(th->vcpu, &regs);
		} else {
			TEST_ASSERT_KVM_EXIT_REASON(th->vcpu, KVM_EXIT_IO);
			switch (get_ucall(th->vcpu, &uc)) {
			case UCALL_SYNC:
				__atomic_add_fetch(&p->sh->syncs[p->idx], 1,
						   __ATOMIC_RELAXED);
				break;
			case UCALL_ABORT:
				REPORT_GUEST_ASSERT(uc);
			default:
				TEST_FAIL("unexpected ucall");
			}
		}
		pthread_rwlock_unlock(&p->lock);
	}
}

static int rc_set_notify(int vmq, uint32_t queue, int fd)
{
	struct kvmq_vm_notify n = {
		.size = sizeof(n), .queue = queue, .fd = fd,
	};

	return kvmq_ioctl_err(vmq, KVMQ_VM_SET_NOTIFY, &n);
}

static void rc_vmm_setup(struct rc_vmm *p, int dev, int group, uint64_t seed,
			 uint32_t nr_vms)
{
	struct kvmq_vm_queues qs = {
		.size = sizeof(qs), .nr_queues = 1, .nr_vcpu_queues = NR_VCPUS,
		.depth = DEPTH, .page_limit = AP_LEN / 2,
	};
	struct rc_vm_cfg *c = p->cfg;
	uint64_t gva;
	uint32_t id, v;

	p->vm = vm_create_with_vcpus(NR_VCPUS, guest_race, p->vcpu);
	p->vmq = kvmq_attach(dev, p->vm);
	kvmq_set_identity(p->vmq, group, c->id);
	TEST_ASSERT(!ioctl(p->vmq, KVMQ_VM_SET_QUEUES, &qs), "queues");
	for (id = 1; id <= MAX_VMS; id++) {
		kvmq_grant(p->vmq, 0, id);
		for (v = 0; v < NR_VCPUS; v++)
			kvmq_grant(p->vmq, KVMQ_QUEUE_VCPU(v), id);
	}
	kvmq_set_aperture(p->vmq, AP, AP_LEN, AP_LEN);
	p->ap = mmap(NULL, AP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		     p->vmq, 0);
	TEST_ASSERT(p->ap != MAP_FAILED, "mmap, errno %d", errno);
	vm_set_user_memory_region(p->vm, KVMQ_TEST_AP_SLOT, 0, AP, AP_LEN,
				  p->ap);
	virt_map_level(p->vm, AP, AP, AP_LEN, PG_LEVEL_2M);

	if (c->rings) {
		lay = (struct kvmq_vm_rings){
			.size = sizeof(lay), .rx_entries = RX_ENTRIES,
			.sq_entries = SQ_ENTRIES,
			.lazy_delay_us = c->lazy_delay_us,
		};
		TEST_ASSERT(!ioctl(p->vmq, KVMQ_VM_SET_RINGS, &lay), "rings");
		p->rings_len = lay.length;
		p->rings = mmap(NULL, lay.length, PROT_READ | PROT_WRITE,
				MAP_SHARED, p->vmq, KVMQ_RINGS_MMAP_OFFSET);
		TEST_ASSERT(p->rings != MAP_FAILED, "mmap of rings");
		vm_set_user_memory_region(p->vm, KVMQ_TEST_RING_SLOT, 0, RINGS,
					  lay.length, p->rings);
		virt_map(p->vm, RINGS, RINGS, lay.length / PG);
		sync_global_to_guest(p->vm, lay);
	}

	/* Arrivals in queue 0 interrupt vCPU 0; refusals signal @sfd. */
	p->efd = kvmq_msi_irqfd(p->vm, GSI, VECTOR, guest_irq);
	TEST_ASSERT(!rc_set_notify(p->vmq, 0, p->efd), "arrival eventfd");
	p->sfd = eventfd(0, EFD_CLOEXEC);
	TEST_ASSERT(p->sfd >= 0, "eventfd");
	TEST_ASSERT(!rc_set_notify(p->vmq, KVMQ_NOTIFY_SPACE, p->sfd),
		    "room eventfd");

	g = (struct rc_guest){ .id = c->id, .nr_vms = nr_vms,
			       .rings = c->rings };
	for (v = 0; v < NR_VCPUS; v++) {
		g.seed[v] = (seed ^ ((c->id * NR_VCPUS + v + 1) *
				     0x9e3779b97f4a7c15ULL)) | 1;
		gva = vm_vaddr_alloc(p->vm, 4 * PG, KVM_UTIL_MIN_VADDR);
		g.msg_gva[v] = gva;
		g.msg_gpa[v] = addr_gva2gpa(p->vm, gva);
		g.rmsg_gva[v] = gva + 2 * PG;
		g.rmsg_gpa[v] = addr_gva2gpa(p->vm, gva + 2 * PG);
		vcpu_args_set(p->vcpu[v], 1, v);
	}
	sync_global_to_guest(p->vm, g);
}

static void rc_detach(struct rc_vmm *p, bool file_first)
{
	pthread_rwlock_wrlock(&p->lock);
	p->detached = true;
	pthread_rwlock_unlock(&p->lock);
	if (file_first)
		TEST_ASSERT(!close(p->vmq), "close of the per-VM file");
	if (p->rings)
		TEST_ASSERT(!munmap(p->rings, p->rings_len), "munmap rings");
	TEST_ASSERT(!munmap(p->ap, AP_LEN), "munmap aperture");
	if (!file_first)
		TEST_ASSERT(!close(p->vmq), "close of the per-VM file");
}

/*
 * Close the VM's and its vCPUs' files under the running vCPU threads: a
 * vCPU file goes when its thread's KVM_RUN returns, the VM when kvmq lets
 * it go.  kvm_run's mapping holds its vCPU file too: an anonymous mapping
 * replaces it.  A vCPU thread in KVM_RUN meanwhile finds @destroyed set
 * when it returns, and ends.
 */
static void rc_destroy(struct rc_vmm *p)
{
	int v, sz = ioctl(p->vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);

	TEST_ASSERT(sz > 0, "KVM_GET_VCPU_MMAP_SIZE");
	pthread_rwlock_wrlock(&p->lock);
	p->destroyed = true;
	for (v = 0; v < NR_VCPUS; v++) {
		TEST_ASSERT(mmap(p->vcpu[v]->run, sz,
				 PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				 -1, 0) != MAP_FAILED, "mmap over kvm_run");
		TEST_ASSERT(!close(p->vcpu[v]->fd), "close of a vCPU");
	}
	TEST_ASSERT(!close(p->vm->fd), "close of the VM");
	TEST_ASSERT(!close(p->vm->kvm_fd), "close of /dev/kvm");
	pthread_rwlock_unlock(&p->lock);
}

/* Wait until the VM's guests synced @n times, at most 20 s. */
static bool rc_wait_syncs(struct rc_shared *sh, int idx, uint64_t n)
{
	int i;

	for (i = 0; i < 20000; i++) {
		if (__atomic_load_n(&sh->syncs[idx], __ATOMIC_RELAXED) >= n)
			return true;
		usleep(1000);
	}
	return false;
}

static void rc_snapshot(struct rc_vmm *p)
{
	p->sh->st[p->idx] = kvmq_get_stats(p->vmq);
}

/* The VMM process: set up, wait for "go", run, tear down as told; exits. */
static void rc_vmm_run(struct rc_vmm *p, int dev, int group, uint64_t seed,
		       uint32_t nr_vms, int ready, int go)
{
	struct rc_vm_cfg *c = p->cfg;
	struct rc_thread th[NR_VCPUS];
	uint32_t id, v;
	char ch;

	pthread_rwlock_init(&p->lock, NULL);
	rc_vmm_setup(p, dev, group, seed, nr_vms);
	TEST_ASSERT(write(ready, "r", 1) == 1, "ready");
	TEST_ASSERT(read(go, &ch, 1) == 1, "go");
	for (v = 0; v < NR_VCPUS; v++) {
		th[v] = (struct rc_thread){ .vmm = p, .vcpu = p->vcpu[v],
					    .fd = p->vcpu[v]->fd };
		TEST_ASSERT(!pthread_create(&th[v].t, NULL, rc_vcpu_thread,
					    &th[v]), "pthread_create");
	}

	TEST_ASSERT(rc_wait_syncs(p->sh, p->idx, c->warm),
		    "VM %u: no progress", c->id);
	if (c->end == END_KILL) {
		/* The test kills this process; until then, keep counting. */
		for (;;) {
			rc_snapshot(p);
			usleep(500);
		}
	}
	usleep(c->delay_us);
	rc_snapshot(p);

	if (c->pre & PRE_REVOKE) {
		for (id = 1; id <= MAX_VMS; id++) {
			TEST_ASSERT(!kvmq_grant_err(p->vmq, KVMQ_VM_REVOKE, 0,
						    id), "revoke");
			for (v = 0; v < NR_VCPUS; v++)
				TEST_ASSERT(!kvmq_grant_err(p->vmq,
							    KVMQ_VM_REVOKE,
							    KVMQ_QUEUE_VCPU(v),
							    id), "revoke");
		}
	}
	if (c->pre & PRE_NOTIFY) {
		TEST_ASSERT(!rc_set_notify(p->vmq, 0, -1), "arrival off");
		TEST_ASSERT(!rc_set_notify(p->vmq, KVMQ_NOTIFY_SPACE, -1),
			    "room off");
		close(p->sfd);
	}
	if (c->pre)
		usleep(c->delay_us);

	switch (c->end) {
	case END_DETACH:
	case END_DETACH_FD:
		rc_detach(p, c->end == END_DETACH_FD);
		usleep(c->delay_us);
		break;
	case END_DESTROY:
	case END_DESTROY_EXIT:
		rc_destroy(p);
		for (v = 0; v < NR_VCPUS; v++)
			pthread_join(th[v].t, NULL);
		if (c->end == END_DESTROY)
			rc_detach(p, seed & 1);
		break;
	default:
		break;
	}
	_exit(0);
}

/* VMs KVM has alive: its debugfs directories "PID-FD". */
static int kvm_vms_alive(void)
{
	DIR *d = opendir("/sys/kernel/debug/kvm");
	struct dirent *e;
	int n = 0, pid, fd;
	char tail;

	TEST_ASSERT(d, "/sys/kernel/debug/kvm, errno %d", errno);
	while ((e = readdir(d)))
		if (sscanf(e->d_name, "%d-%d%c", &pid, &fd, &tail) == 2)
			n++;
	closedir(d);
	return n;
}

/* References to the kvmq module: its open files, running hypercalls. */
static int kvmq_module_refs(void)
{
	FILE *f = fopen("/sys/module/kvmq/refcnt", "r");
	int n = -1;

	TEST_ASSERT(f, "/sys/module/kvmq/refcnt, errno %d", errno);
	TEST_ASSERT(fscanf(f, "%d", &n) == 1, "refcnt");
	fclose(f);
	return n;
}

static uint64_t race_seed(void)
{
	const char *e = getenv("KVMQ_RACE_SEED");
	struct timespec ts;

	if (e && *e)
		return strtoull(e, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000007ULL + ts.tv_nsec;
}

FIXTURE(race) {
	int dev;
	int refs, vms;
	struct rc_shared *sh;
};

FIXTURE_SETUP(race)
{
	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->refs = kvmq_module_refs();
	self->vms = kvm_vms_alive();
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
}

FIXTURE_TEARDOWN(race)
{
	munmap(self->sh, sizeof(*self->sh));
	close(self->dev);
}

/* Fork the VMM of @c; returns its pid. */
static pid_t rc_fork(struct rc_shared *sh, struct rc_vm_cfg *c, int idx,
		     int dev, int group, uint64_t seed, uint32_t nr_vms,
		     int ready[2], int go[2])
{
	struct rc_vmm p = { .cfg = c, .sh = sh, .idx = idx };
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork, errno %d", errno);
	if (pid)
		return pid;
	/* A VMM left waiting for its SIGKILL dies with a failed test. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(ready[0]);
	close(go[1]);
	rc_vmm_run(&p, dev, group, seed, nr_vms, ready[1], go[0]);
	_exit(1);
}

/*
 * Wait until kvmq holds nothing the iteration created: the pool is
 * empty, every VM is gone (each attached VM holds a reference on its KVM
 * VM until kvmq frees it), and no file of kvmq's but /dev/kvmq is open.
 * The last references may be dropped by a kworker: allow 10 s.
 */
static bool rc_settled(int refs, int vms, uint64_t *pool, int *r, int *v)
{
	int i;

	for (i = 0; i < 1000; i++) {
		*pool = kvmq_pool_pages();
		*r = kvmq_module_refs();
		*v = kvm_vms_alive();
		if (!*pool && *r == refs && *v == vms)
			return true;
		usleep(10000);
	}
	return false;
}

TEST_F_TIMEOUT(race, teardowns, 1800)
{
	const char *e = getenv("KVMQ_RACE_ITERS");
	uint64_t iters = e && *e ? strtoull(e, NULL, 0) :
			 access("/proc/lockdep_stats", F_OK) ? ITERS : ITERS_DEBUG;
	uint64_t seed = race_seed(), s = seed | 1, pool;
	uint64_t ends[NR_ENDS] = { 0 }, pres[NR_PRES] = { 0 };
	uint64_t sent[3] = { 0 }, recv[3] = { 0 }, moved = 0, lazy = 0;
	uint64_t doorbells = 0, notified = 0, refused = 0, syncs = 0;
	struct rc_vm_cfg cfg[MAX_VMS];
	pid_t pid[MAX_VMS];
	int ready[2], go[2], status, refs, vms;
	time_t start = time(NULL);
	uint32_t nr_vms, it, i;
	struct pollfd pfd;
	char ch;

	printf("# seed %#lx (KVMQ_RACE_SEED), %lu iterations (KVMQ_RACE_ITERS)\n",
	       seed, iters);
	for (it = 0; it < iters; it++) {
		int group = kvmq_create_group(self->dev);

		memset(self->sh, 0, sizeof(*self->sh));
		nr_vms = 2 + below(&s, MAX_VMS - 1);
		for (i = 0; i < nr_vms; i++) {
			cfg[i] = (struct rc_vm_cfg){
				.id = i + 1,
				.rings = below(&s, 2),
				.lazy_delay_us = below(&s, 2) ? 0 : 200,
				.end = below(&s, NR_ENDS),
				.pre = below(&s, 4) ? 0 : 1 + below(&s, 3),
				.warm = 1 + below(&s, 4),
				.delay_us = below(&s, 5000),
			};
			ends[cfg[i].end]++;
			pres[0] += !!(cfg[i].pre & PRE_REVOKE);
			pres[1] += !!(cfg[i].pre & PRE_NOTIFY);
		}
		ASSERT_EQ(0, pipe(ready));
		ASSERT_EQ(0, pipe(go));
		for (i = 0; i < nr_vms; i++)
			pid[i] = rc_fork(self->sh, &cfg[i], i, self->dev, group,
					 rnd(&s), nr_vms, ready, go);
		close(ready[1]);
		close(go[0]);
		pfd = (struct pollfd){ .fd = ready[0], .events = POLLIN };
		for (i = 0; i < nr_vms; i++) {
			ASSERT_EQ(1, poll(&pfd, 1, 60000)) {
				TH_LOG("iteration %u: VMM %u not ready", it, i);
			}
			ASSERT_EQ(1, read(ready[0], &ch, 1)) {
				TH_LOG("iteration %u: a VMM failed", it);
			}
		}
		/* The group lives on in the VMMs only, now and then. */
		if (below(&s, 2)) {
			close(group);
			group = -1;
		}
		for (i = 0; i < nr_vms; i++)
			ASSERT_EQ(1, write(go[1], "g", 1));
		close(ready[0]);
		close(go[1]);

		for (i = 0; i < nr_vms; i++) {
			if (cfg[i].end != END_KILL)
				continue;
			ASSERT_TRUE(rc_wait_syncs(self->sh, i, cfg[i].warm)) {
				TH_LOG("iteration %u: VM %u made no progress",
				       it, i + 1);
			}
			usleep(cfg[i].delay_us);
			ASSERT_EQ(0, kill(pid[i], SIGKILL));
		}
		for (i = 0; i < nr_vms; i++) {
			ASSERT_EQ(pid[i], waitpid(pid[i], &status, 0));
			if (cfg[i].end == END_KILL) {
				ASSERT_TRUE(WIFSIGNALED(status) &&
					    WTERMSIG(status) == SIGKILL) {
					TH_LOG("iteration %u: VM %u: status %#x",
					       it, i + 1, status);
				}
			} else {
				ASSERT_TRUE(WIFEXITED(status) &&
					    !WEXITSTATUS(status)) {
					TH_LOG("iteration %u: VM %u (%s): status %#x",
					       it, i + 1, end_names[cfg[i].end],
					       status);
				}
			}
		}
		if (group >= 0)
			close(group);

		ASSERT_TRUE(rc_settled(self->refs, self->vms, &pool, &refs,
				       &vms)) {
			TH_LOG("iteration %u: %lu pages in the pool, %d module references (%d before), %d VMs alive (%d before)",
			       it, pool, refs, self->refs, vms, self->vms);
		}
		for (i = 0; i < nr_vms; i++) {
			struct kvmq_vm_stats *st = &self->sh->st[i];
			int k;

			for (k = 0; k < 3; k++) {
				sent[k] += st->sent[k];
				recv[k] += st->received[k];
			}
			moved += st->pages_moved;
			lazy += st->lazy_batches;
			doorbells += st->doorbells;
			notified += st->notified;
			refused += st->refused;
			syncs += self->sh->syncs[i];
		}
	}

	printf("# teardowns:");
	for (i = 0; i < NR_ENDS; i++)
		printf(" %s %lu;", end_names[i], ends[i]);
	printf(" after a revoke %lu, after removing eventfds %lu\n",
	       pres[0], pres[1]);
	printf("# before teardown: sent %lu/%lu/%lu, received %lu/%lu/%lu (bytes/pages/blocks), %lu pages moved, %lu refused, %lu doorbells, %lu lazy batches, %lu arrivals signalled, %lu guest syncs; %ld s\n",
	       sent[0], sent[1], sent[2], recv[0], recv[1], recv[2], moved,
	       refused, doorbells, lazy, notified, syncs,
	       (long)(time(NULL) - start));
	/* The races raced something. */
	for (i = 0; i < 3; i++) {
		EXPECT_LT(0, sent[i]);
		EXPECT_LT(0, recv[i]);
	}
	EXPECT_LT(0, lazy);
	EXPECT_LT(0, doorbells);
	EXPECT_LT(0, notified);
}

KVMQ_TEST_HARNESS_MAIN
