// SPDX-License-Identifier: GPL-2.0
/*
 * Transports side by side, in one run: kvmq (rings; immediate sends, one
 * doorbell each, or lazy bursts of 64), a VMM relay (the sender exits to
 * its VMM with each message, which copies it into the receiver's memory),
 * and a shared-memory ring (both VMs map the same host memory, the sender
 * copies into it).  Two VMs, each vCPU in a thread of its own; the
 * receiver polls.  The payload is prepared before timing; the receiver
 * reads one word per 4 KiB of each message, so that pages are really
 * mapped.  Machine-independent figures come from KVM's and kvmq's
 * counters; times only make sense as ratios within the run.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include "kvm_util.h"
#include "processor.h"
#include "apic.h"
#include "kvmq_util.h"
#include "kvmq_xbench.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define AP		KVMQ_TEST_AP_GPA
#define AP_LEN		(64ULL << 20)
#define RINGS		KVMQ_TEST_RING_GPA
#define DATA_GPA	0x100000000ULL	/* sender's prepared payloads */
#define DATA_LEN	(64ULL << 20)
#define DATA_SLOT	12
#define XR_GPA		0x140000000ULL	/* baselines' ring */
#define XR_LEN		(36ULL << 20)
#define XR_SLOT		13
#define XR_SLOTS	16
#define XR_HDR		4096
#define RELAY_PORT	0xe0
#define VECTOR		0x40
#define GSI		5
#define BURST		64
#define MSG_SZ		sizeof(struct kvmq_msg)

enum { T_KVMQ, T_RELAY, T_SHMEM };
static const char *const tname[] = { "kvmq", "relay", "shmem" };

/* What the guests need to know; copied into both (@lay: each its own). */
static struct xb_params {
	uint64_t transport, kind, size, n, lazy, halt, touch;
} xp;
static struct kvmq_vm_rings lay;

/* The baselines' ring: two indexes, then XR_SLOTS slots of xp.size. */
struct xring {
	uint32_t prod;
	uint32_t pad0[15];
	uint32_t cons;
	uint32_t wake;		/* the receiver halts: signal it */
	uint32_t pad1[14];
};

static uint64_t unit(void)
{
	return xp.kind == KVMQ_MSG_BLOCKS ? SZ_2M : PG;
}

static void *ring_entry(struct kvmq_ring *r, uint32_t n, size_t size)
{
	return (char *)(r + 1) + (n & (r->entries - 1)) * size;
}

/* Guest, sender: prepare every message, then send them when told. */
static void x_prepare(void)
{
	struct kvmq_msg *m;
	uint64_t i, j, nr;

	for (i = 0; i < xp.n; i++) {
		if (xp.transport != T_KVMQ) {
			for (j = 0; j < xp.size; j += 8)
				*(uint64_t *)(DATA_GPA + i * xp.size + j) = i;
			continue;
		}
		m = (void *)(DATA_GPA + i * MSG_SZ);
		memset(m, 0, offsetof(struct kvmq_msg, data));
		m->kind = xp.kind;
		m->len = xp.size;
		if (xp.kind == KVMQ_MSG_BYTES) {
			memset(m->data, i, xp.size);
			continue;
		}
		nr = xp.size / unit();
		m->nr = nr;
		for (j = 0; j < nr; j++)
			m->gpas[j] = AP + i * xp.size + j * unit();
		for (j = 0; j < xp.size; j += PG)
			*(volatile uint64_t *)(AP + i * xp.size + j) = i;
	}
}

/*
 * Fault in the memory a transport's rings use, so that first touches do
 * not count as transport cost: the receiver reads its kvmq ring, writes
 * the baselines' ring (a read would map the shared zero page, which the
 * first write would replace), and the sender of the shared ring writes it.
 */
static void x_prefault(bool sender)
{
	uint64_t j;

	if (xp.transport == T_KVMQ) {
		for (j = 0; !sender && j < (uint64_t)lay.rx_stride; j += PG)
			(void)*(volatile uint64_t *)(RINGS + j);
		return;
	}
	if (sender && xp.transport == T_RELAY)
		return;
	for (j = XR_HDR; j < XR_HDR + XR_SLOTS * xp.size; j += PG)
		*(volatile uint64_t *)(XR_GPA + j) = 0;
}

/* Touch lane: the sender writes every byte of message @i when it sends. */
static void x_fill(uint64_t i)
{
	struct kvmq_msg *m = (void *)(DATA_GPA + i * MSG_SZ);
	uint64_t j, base;

	if (!xp.touch)
		return;
	if (xp.transport != T_KVMQ)
		base = DATA_GPA + i * xp.size;
	else if (xp.kind == KVMQ_MSG_BYTES)
		base = (uint64_t)m->data;
	else
		base = AP + i * xp.size;
	for (j = 0; j < xp.size; j += 8)
		*(volatile uint64_t *)(base + j) = i + j;
}

static void x_send_kvmq(void)
{
	struct kvmq_ring *sq = (void *)(RINGS + lay.vcpu_offset);
	struct kvmq_ring *cq = (void *)(RINGS + lay.vcpu_offset +
					lay.cq_offset);
	uint64_t i = 0, k, burst;
	struct kvmq_cqe *c;
	struct kvmq_sqe *e;

	while (i < xp.n) {
		burst = xp.lazy ? BURST : 1;
		if (burst > xp.n - i)
			burst = xp.n - i;
		/*
		 * Write a burst's payloads before posting any of it: a fault
		 * while writing is a natural exit, which would run a smaller
		 * batch of what is posted so far.
		 */
		for (k = 0; k < burst; k++)
			x_fill(i + k);
		for (k = 0; k < burst; k++) {
			e = ring_entry(sq, sq->prod, sizeof(*e));
			memset(e, 0, sizeof(*e));
			e->op = KVMQ_OP_SEND;
			e->flags = xp.lazy ? KVMQ_SQE_LAZY : 0;
			e->dest = 2;
			e->gpa = DATA_GPA + (i + k) * MSG_SZ;
			e->user_data = i + k;
			__atomic_store_n(&sq->prod, sq->prod + 1,
					 __ATOMIC_RELEASE);
		}
		if (!xp.lazy)
			GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_SUBMIT, 0, 0, 0), 1);
		/* Lazy: the next exit of this vCPU, a timer tick, runs them. */
		for (k = 0; k < burst; k++) {
			while (__atomic_load_n(&cq->prod, __ATOMIC_ACQUIRE) ==
			       cq->cons)
				cpu_relax();
			c = ring_entry(cq, cq->cons, sizeof(*c));
			GUEST_ASSERT_EQ(c->res, 0);
			__atomic_store_n(&cq->cons, cq->cons + 1,
					 __ATOMIC_RELEASE);
		}
		i += burst;
	}
}

static void x_send_shmem(void)
{
	struct xring *r = (void *)XR_GPA;
	uint64_t i;

	for (i = 0; i < xp.n; i++) {
		while (r->prod - __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE) >=
		       XR_SLOTS)
			cpu_relax();
		x_fill(i);
		memcpy((void *)(XR_GPA + XR_HDR + (r->prod % XR_SLOTS) * xp.size),
		       (void *)(DATA_GPA + i * xp.size), xp.size);
		__atomic_store_n(&r->prod, r->prod + 1, __ATOMIC_RELEASE);
	}
}

static void x_sender(void)
{
	uint64_t i;

	x_prepare();
	x_prefault(true);
	GUEST_SYNC(1);
	switch (xp.transport) {
	case T_KVMQ:
		x_send_kvmq();
		break;
	case T_RELAY:
		for (i = 0; i < xp.n; i++) {
			x_fill(i);
			asm volatile("outl %0, %w1" : : "a"((uint32_t)i),
				     "Nd"(RELAY_PORT) : "memory");
		}
		break;
	case T_SHMEM:
		x_send_shmem();
		break;
	}
	GUEST_SYNC(2);
	GUEST_DONE();
}

/*
 * Guest, receiver: read one word per 4 KiB of each message, or every word
 * in the touch lane.
 */
static uint64_t x_touch(uint64_t addr, uint64_t len)
{
	uint64_t j, sum = 0, step = xp.touch ? 8 : PG;

	for (j = 0; j < len; j += step)
		sum += *(volatile uint64_t *)(addr + j);
	return sum;
}

static void x_irq(struct ex_regs *regs)
{
	xapic_write_reg(APIC_EOI, 0);
}

/*
 * Wait until *@prod moves past @cons: spin, or halt with *@wake set (the
 * full barrier orders the flag before the last look at *@prod).
 */
static void x_wait(uint32_t *prod, uint32_t cons, uint32_t *wake)
{
	while (__atomic_load_n(prod, __ATOMIC_ACQUIRE) == cons) {
		if (!xp.halt) {
			cpu_relax();
			continue;
		}
		*wake = 1;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(prod, __ATOMIC_ACQUIRE) == cons)
			asm volatile("sti; hlt; cli" ::: "memory");
		*wake = 0;
	}
}

static void x_receiver(void)
{
	struct kvmq_ring *rx = (void *)RINGS;
	struct xring *r = (void *)XR_GPA;
	uint64_t i, sum = 0;
	struct kvmq_msg *m;

	if (xp.halt)
		xapic_enable();
	x_prefault(false);
	GUEST_SYNC(1);
	for (i = 0; i < xp.n; i++) {
		if (xp.transport == T_KVMQ) {
			x_wait(&rx->prod, rx->cons, &rx->flags);
			m = ring_entry(rx, rx->cons, MSG_SZ);
			GUEST_ASSERT_EQ(m->sender, 1);
			GUEST_ASSERT_EQ(m->len, xp.size);
			sum += m->kind == KVMQ_MSG_BYTES ?
			       x_touch((uint64_t)m->data, m->len) :
			       x_touch(m->gpa, m->len);
			__atomic_store_n(&rx->cons, rx->cons + 1,
					 __ATOMIC_RELEASE);
			continue;
		}
		x_wait(&r->prod, r->cons, &r->wake);
		sum += x_touch(XR_GPA + XR_HDR + (r->cons % XR_SLOTS) * xp.size,
			       xp.size);
		__atomic_store_n(&r->cons, r->cons + 1, __ATOMIC_RELEASE);
	}
	GUEST_SYNC_ARGS(2, sum, 0, 0, 0);
	GUEST_DONE();
}

/* The VMM side of one VM: a vCPU thread. */
struct xvm {
	struct kvmq_peer p;
	pthread_barrier_t *go;
	uint64_t user_exits;	/* returns of KVM_RUN while timed */
	void *peer_ring;	/* relay: the receiver's ring, in this VMM */
	void *data;		/* relay: the sender's payloads */
	int peer_efd;		/* relay: the receiver's interrupt, or -1 */
};

static void x_relay(struct xvm *x, uint32_t i)
{
	struct xring *r = x->peer_ring;

	while (r->prod - __atomic_load_n(&r->cons, __ATOMIC_ACQUIRE) >=
	       XR_SLOTS)
		sched_yield();
	memcpy((char *)r + XR_HDR + (r->prod % XR_SLOTS) * xp.size,
	       (char *)x->data + i * xp.size, xp.size);
	__atomic_store_n(&r->prod, r->prod + 1, __ATOMIC_RELEASE);
	/* Pairs with the receiver's fence between @wake and @prod. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (x->peer_efd >= 0 && __atomic_load_n(&r->wake, __ATOMIC_RELAXED))
		TEST_ASSERT(eventfd_write(x->peer_efd, 1) == 0, "eventfd");
}

static void *x_thread(void *arg)
{
	struct xvm *x = arg;
	struct kvm_run *run = x->p.vcpu->run;
	struct ucall uc;
	bool timed = false;

	for (;;) {
		vcpu_run(x->p.vcpu);
		if (timed)
			x->user_exits++;
		if (run->exit_reason == KVM_EXIT_IO &&
		    run->io.port == RELAY_PORT) {
			x_relay(x, *(uint32_t *)((char *)run +
						 run->io.data_offset));
			continue;
		}
		switch (get_ucall(x->p.vcpu, &uc)) {
		case UCALL_SYNC:
			if (uc.args[1] == 1) {
				/* Ready; the VMM reads the counters; go. */
				pthread_barrier_wait(x->go);
				pthread_barrier_wait(x->go);
				timed = true;
			} else {
				timed = false;
				x->user_exits--;	/* the sync itself */
				pthread_barrier_wait(x->go);
			}
			break;
		case UCALL_DONE:
			return NULL;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
		default:
			TEST_FAIL("unexpected exit %d", run->exit_reason);
		}
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void x_map(struct kvm_vm *vm, uint64_t gpa, uint64_t len, int slot,
		  int fd)
{
	void *hva;

	if (fd < 0) {
		vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, gpa, slot,
					    len / getpagesize(), 0);
	} else {
		hva = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			   0);
		TEST_ASSERT(hva != MAP_FAILED, "mmap");
		vm_set_user_memory_region(vm, slot, 0, gpa, len, hva);
	}
	virt_map_level(vm, gpa, gpa, len, PG_LEVEL_2M);
}

/* Run one case; fill @res. */
void xbench_run(int dev, int group, const struct xb_case *c,
		struct xb_result *res)
{
	struct xvm xa = { 0 }, xb = { 0 };
	uint64_t ea, eb, flushes, moved, copied;
	pthread_barrier_t go;
	pthread_t ta, tb;
	int memfd = -1, efd = -1, sa, sb;
	double t;

	xp = (struct xb_params){ c->transport, c->kind, c->size, c->n,
				 c->lazy, c->halt, c->touch };
	xa.peer_efd = -1;
	xb.peer_efd = -1;
	pthread_barrier_init(&go, NULL, 3);
	xa.go = xb.go = &go;
	kvmq_peer_create(&xa.p, dev, group, 1, x_sender, AP_LEN, AP_LEN,
			 KVMQ_DEPTH_MAX);
	kvmq_peer_create(&xb.p, dev, group, 2, x_receiver, AP_LEN, AP_LEN,
			 KVMQ_DEPTH_MAX);
	kvmq_grant(xb.p.vmq, 0, 1);
	x_map(xa.p.vm, DATA_GPA, DATA_LEN, DATA_SLOT, -1);
	if (c->transport == T_KVMQ) {
		/* Each guest gets its own VM's layout. */
		kvmq_peer_rings(&xa.p, 4, BURST, &lay);
		sync_global_to_guest(xa.p.vm, lay);
		kvmq_peer_rings(&xb.p, KVMQ_RING_ENTRIES_MAX, 4, &lay);
		sync_global_to_guest(xb.p.vm, lay);
		if (c->halt) {
			struct kvmq_vm_notify nt = {
				.size = sizeof(nt), .queue = 0,
				.fd = kvmq_msi_irqfd(xb.p.vm, GSI, VECTOR,
						      x_irq),
			};

			TEST_ASSERT(!ioctl(xb.p.vmq, KVMQ_VM_SET_NOTIFY, &nt),
				    "notify");
			efd = nt.fd;
		}
	} else if (c->transport == T_SHMEM) {
		memfd = memfd_create("xring", 0);
		TEST_ASSERT(memfd >= 0 && !ftruncate(memfd, XR_LEN), "memfd");
		x_map(xa.p.vm, XR_GPA, XR_LEN, XR_SLOT, memfd);
		x_map(xb.p.vm, XR_GPA, XR_LEN, XR_SLOT, memfd);
	} else {
		x_map(xb.p.vm, XR_GPA, XR_LEN, XR_SLOT, -1);
		xa.peer_ring = addr_gpa2hva(xb.p.vm, XR_GPA);
		xa.data = addr_gpa2hva(xa.p.vm, DATA_GPA);
		if (c->halt) {
			efd = kvmq_msi_irqfd(xb.p.vm, GSI, VECTOR, x_irq);
			xa.peer_efd = efd;
		}
	}
	sync_global_to_guest(xa.p.vm, xp);
	sync_global_to_guest(xb.p.vm, xp);

	sa = vcpu_get_stats_fd(xa.p.vcpu);
	sb = vcpu_get_stats_fd(xb.p.vcpu);
	pthread_create(&ta, NULL, x_thread, &xa);
	pthread_create(&tb, NULL, x_thread, &xb);

	pthread_barrier_wait(&go);		/* both prepared, stopped */
	ea = kvmq_stats_fd_read(sa, "exits");
	eb = kvmq_stats_fd_read(sb, "exits");
	flushes = vm_get_stat(xa.p.vm, "remote_tlb_flush_requests");
	moved = kvmq_debugfs_stat("pages_moved");
	copied = kvmq_debugfs_stat("bytes_copied");
	t = now();
	pthread_barrier_wait(&go);		/* go */
	pthread_barrier_wait(&go);		/* both done */
	t = now() - t;
	/* Less the two GUEST_SYNC exits that bracket the timed part. */
	ea = kvmq_stats_fd_read(sa, "exits") - ea - 1;
	eb = kvmq_stats_fd_read(sb, "exits") - eb - 1;
	flushes = vm_get_stat(xa.p.vm, "remote_tlb_flush_requests") - flushes;
	moved = kvmq_debugfs_stat("pages_moved") - moved;
	copied = kvmq_debugfs_stat("bytes_copied") - copied;
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);

	res->msgs_per_s = c->n / t;
	res->bytes_per_s = c->n * c->size / t;
	res->sender_exits_per_msg = (double)ea / c->n;
	res->receiver_exits_per_msg = (double)eb / c->n;
	res->user_exits_per_msg = (double)(xa.user_exits + xb.user_exits) /
				  c->n;
	res->flushes_per_page = moved ? (double)flushes / moved : 0;
	/*
	 * kvmq copies a bytes payload twice (into the kernel, into the
	 * receiver's ring) and moves pages; the baselines copy once each.
	 */
	res->copied_per_byte = c->transport == T_KVMQ ?
			       2.0 * copied / (c->n * c->size) : 1.0;

	close(sa);
	close(sb);
	kvmq_peer_destroy(&xa.p);
	kvmq_peer_destroy(&xb.p);
	if (memfd >= 0)
		close(memfd);
	if (efd >= 0)
		close(efd);
	pthread_barrier_destroy(&go);
}

const char *xbench_transport(int t)
{
	return tname[t];
}
