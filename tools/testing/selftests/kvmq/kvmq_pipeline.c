// SPDX-License-Identifier: GPL-2.0
/*
 * The reference pipeline over kvmq, three VMs in three VMM processes:
 *
 *   read   generates a deterministic "file" and sends it as a stream of
 *          messages of mixed kinds and sizes: bytes, 4 KiB pages it fills
 *          in its aperture, 2 MiB blocks;
 *   decode transforms each message in place (XOR) and forwards it: page
 *          and block messages leave with the very pages they arrived in;
 *   play   checks each message's kind and size against the stream's
 *          schedule, checksums the payload, and gives the pages back.
 *
 * The VMM processes share one kvmq group, inherited from the parent, and
 * know each other only by identity; each VMM tells its guest the identities
 * of the previous and next VM by posting a message into its vCPU queue.  A guest that finds its queue empty
 * (or its peer's full) yields to its VMM with a ucall; the VMM yields the
 * CPU and runs it again.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "apic.h"
#include "kvmq_util.h"
#include "kvmq_pipeline.h"

#define PG		4096ULL
#define AP_LEN		(8ULL << 20)
#define DEPTH		16
#define XOR_KEY		0x5a
#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

static const uint32_t pl_ids[PL_NR_VMS] = { 1, 2, 3 };

/* What a guest leaves for its VMM (read with sync_global_from_guest()). */
struct pl_result {
	uint64_t messages;
	uint64_t bytes;
	uint64_t hash;
	uint64_t kinds[4];
};
static struct pl_result pl_result;

/* splitmix64: the stream's bytes and the message schedule. */
static uint64_t pl_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Byte @off of the file. */
static uint8_t pl_byte(uint64_t off)
{
	return pl_mix(off >> 3) >> ((off & 7) * 8);
}

struct pl_spec {
	uint32_t kind, nr, len;
};

/*
 * Message @i: mostly bytes and page lists, every 16th a 2 MiB block; sizes
 * vary, and a page message's last page is partly used.
 */
static void pl_spec(uint64_t i, struct pl_spec *s)
{
	uint64_t r = pl_mix(~i);

	if (i % 16 == 15) {
		s->kind = KVMQ_MSG_BLOCKS;
		s->nr = 1;
		s->len = PG + r % (60 * PG);
	} else if (i % 2) {
		s->kind = KVMQ_MSG_PAGES;
		s->nr = 1 + r % 8;
		s->len = (s->nr - 1) * PG + 1 + (r >> 16) % PG;
	} else {
		s->kind = KVMQ_MSG_BYTES;
		s->nr = 0;
		s->len = 1 + r % KVMQ_MSG_BYTES_MAX;
	}
}

static uint64_t pl_page_size(uint32_t kind)
{
	return kind == KVMQ_MSG_BLOCKS ? KVMQ_MSG_BLOCK_SIZE : PG;
}

/* Send @m, yielding to the VMM while the destination is full (queue or budget). */
static void pl_send(struct kvmq_msg *m, uint64_t msg_gpa, uint32_t dest,
		    uint64_t done)
{
	int64_t ret;

	while ((ret = kvmq_hc(KVMQ_HC_SEND, dest, 0, msg_gpa)) == -EAGAIN ||
	       ret == -ENOBUFS)
		GUEST_SYNC_ARGS(0, done, 0, 0, 0);
	GUEST_ASSERT_EQ(ret, 0);
}

/* Receive into @m, yielding to the VMM while the queue is empty. */
static void pl_recv(struct kvmq_msg *m, uint64_t msg_gpa, uint32_t from,
		    uint64_t done)
{
	int64_t ret;

	while ((ret = kvmq_hc(KVMQ_HC_RECV, 0, msg_gpa, 0)) == -EAGAIN)
		GUEST_SYNC_ARGS(0, done, 0, 0, 0);
	GUEST_ASSERT_EQ(ret, 0);
	GUEST_ASSERT_EQ(m->sender, from);
}

/* The VMM's first message: who comes before and after this VM. */
struct pl_peers {
	uint32_t prev, next;
};

static struct pl_peers pl_get_peers(struct kvmq_msg *m, uint64_t msg_gpa)
{
	struct pl_peers peers;

	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_RECV, KVMQ_QUEUE_VCPU(0), msg_gpa, 0),
			0);
	GUEST_ASSERT_EQ(m->sender, KVMQ_ID_VMM);
	GUEST_ASSERT_EQ(m->len, sizeof(peers));
	memcpy(&peers, m->data, sizeof(peers));
	return peers;
}

/*
 * play: check message @i against the stream's schedule; return @hash
 * extended with its payload.
 */
static uint64_t pl_check(struct kvmq_msg *m, uint64_t i, uint64_t hash)
{
	struct pl_spec s;
	uint8_t *p;
	uint64_t j;

	pl_spec(i, &s);
	GUEST_ASSERT_EQ(m->kind, s.kind);
	GUEST_ASSERT_EQ(m->nr, s.nr);
	GUEST_ASSERT_EQ(m->len, s.len);
	p = m->kind == KVMQ_MSG_BYTES ? m->data : (uint8_t *)m->gpa;
	for (j = 0; j < m->len; j++)
		hash = (hash ^ p[j]) * FNV_PRIME;
	return hash;
}

/*
 * read: make @m message @i of the stream, at offset @off of the file:
 * bytes inline, pages staged at @pages, a block at @block.  Return its
 * kind and size in @s.
 */
static void pl_build(struct kvmq_msg *m, uint64_t i, uint64_t off,
		     uint8_t *pages, uint8_t *block, struct pl_spec *s)
{
	uint64_t j;
	uint8_t *p;

	pl_spec(i, s);
	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = s->kind;
	m->nr = s->nr;
	m->len = s->len;
	p = s->kind == KVMQ_MSG_BYTES ? m->data :
	    s->kind == KVMQ_MSG_PAGES ? pages : block;
	for (j = 0; j < s->len; j++)
		p[j] = pl_byte(off + j);
	/* The block goes whole: every page of it must be held. */
	if (s->kind == KVMQ_MSG_BLOCKS)
		for (j = 0; j < KVMQ_MSG_BLOCK_SIZE; j += PG)
			p[j] = pl_byte(off + j);
	for (j = 0; j < s->nr; j++)
		m->gpas[j] = (uint64_t)p + j * pl_page_size(s->kind);
}

static void pl_guest_read(uint64_t msg_gva, uint64_t msg_gpa, uint64_t n)
{
	struct kvmq_msg *m = (void *)msg_gva;
	uint32_t dest = pl_get_peers(m, msg_gpa).next;
	/* Staging: pages at the aperture's start, the block at 2 MiB. */
	uint8_t *pages = (void *)KVMQ_TEST_AP_GPA;
	uint8_t *block = pages + KVMQ_MSG_BLOCK_SIZE;
	uint64_t i, off = 0;
	struct pl_spec s;

	for (i = 0; i < n; i++) {
		pl_build(m, i, off, pages, block, &s);
		pl_send(m, msg_gpa, dest, i);
		off += s.len;
		pl_result.bytes = off;
		pl_result.kinds[s.kind]++;
	}
	pl_result.messages = n;
	GUEST_DONE();
}

static void pl_guest_decode(uint64_t msg_gva, uint64_t msg_gpa, uint64_t n)
{
	struct kvmq_msg *m = (void *)msg_gva;
	struct pl_peers peers = pl_get_peers(m, msg_gpa);
	uint64_t i, j, where;
	uint8_t *p;

	for (i = 0; i < n; i++) {
		pl_recv(m, msg_gpa, peers.prev, i);
		where = m->gpa;
		p = m->kind == KVMQ_MSG_BYTES ? m->data : (uint8_t *)where;
		for (j = 0; j < m->len; j++)
			p[j] ^= XOR_KEY;

		/* Forward: the same bytes, the same pages. */
		m->sender = 0;
		m->gpa = 0;
		for (j = 0; m->kind != KVMQ_MSG_BYTES && j < m->nr; j++)
			m->gpas[j] = where + j * pl_page_size(m->kind);
		pl_send(m, msg_gpa, peers.next, i);
		pl_result.bytes += m->len;
		pl_result.kinds[m->kind]++;
	}
	pl_result.messages = n;
	GUEST_DONE();
}

static void pl_guest_play(uint64_t msg_gva, uint64_t msg_gpa, uint64_t n)
{
	struct kvmq_msg *m = (void *)msg_gva;
	uint32_t from = pl_get_peers(m, msg_gpa).prev;
	uint64_t i, hash = FNV_OFFSET, pages;

	for (i = 0; i < n; i++) {
		pl_recv(m, msg_gpa, from, i);
		hash = pl_check(m, i, hash);

		if (m->kind != KVMQ_MSG_BYTES) {
			pages = m->nr * pl_page_size(m->kind) / PG;
			GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_RELEASE, m->gpa, pages,
						0), pages);
		}
		pl_result.bytes += m->len;
		pl_result.kinds[m->kind]++;
		pl_result.messages = i + 1;
	}
	pl_result.hash = hash;
	GUEST_DONE();
}

/*
 * The same pipeline over rings.  Every send is a lazy submission entry,
 * linked to the next, in windows of PL_WINDOW: it runs at the sender's
 * next natural exit with the others of its window.  decode and play take
 * messages from their receive rings without an exit, and halt when there
 * is nothing to do; an arrival wakes them with an interrupt.  A window
 * that meets a full receiver is cancelled from the refused entry on
 * (KVMQ_SQE_LINK) and posted again after a yield to the VMM.
 */
#define PL_WINDOW	16
#define PL_VECTOR	0x40
#define PL_GSI		5
/* In the aperture: the window's message buffers, page and block staging. */
#define PL_MBUF		(KVMQ_TEST_AP_GPA + (6ULL << 20))
#define PL_STAGE	KVMQ_TEST_AP_GPA
#define PL_BLOCK	(KVMQ_TEST_AP_GPA + KVMQ_MSG_BLOCK_SIZE)

static struct kvmq_vm_rings pl_lay;

static void *pl_entry(struct kvmq_ring *r, uint32_t n, size_t size)
{
	return (char *)(r + 1) + (n & (r->entries - 1)) * size;
}

static struct kvmq_ring *pl_sq(void)
{
	return (void *)(KVMQ_TEST_RING_GPA + pl_lay.vcpu_offset);
}

static struct kvmq_ring *pl_cq(void)
{
	return (void *)(KVMQ_TEST_RING_GPA + pl_lay.vcpu_offset +
			pl_lay.cq_offset);
}

/* Receive ring of queue index @qidx (0: the VM queue, 1: vCPU 0's). */
static struct kvmq_ring *pl_rx(uint32_t qidx)
{
	return (void *)(KVMQ_TEST_RING_GPA + qidx * pl_lay.rx_stride);
}

static struct kvmq_msg *pl_mbuf(uint32_t k)
{
	return (void *)(PL_MBUF + k * sizeof(struct kvmq_msg));
}

static void pl_irq(struct ex_regs *regs)
{
	xapic_write_reg(APIC_EOI, 0);
}

/* The next message of @r; halts, with interrupts on, until there is one. */
static struct kvmq_msg *pl_rx_wait(struct kvmq_ring *r)
{
	while (__atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) == r->cons) {
		r->flags = KVMQ_RING_F_WAKE;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) == r->cons)
			asm volatile("sti; hlt; cli" ::: "memory");
		r->flags = 0;
	}
	return pl_entry(r, r->cons, sizeof(struct kvmq_msg));
}

static void pl_rx_done(struct kvmq_ring *r)
{
	__atomic_store_n(&r->cons, r->cons + 1, __ATOMIC_RELEASE);
}

static struct pl_peers pl_ring_peers(void)
{
	struct kvmq_ring *r = pl_rx(1);
	struct kvmq_msg *m = pl_rx_wait(r);
	struct pl_peers peers;

	GUEST_ASSERT_EQ(m->sender, KVMQ_ID_VMM);
	memcpy(&peers, m->data, sizeof(peers));
	pl_rx_done(r);
	return peers;
}

static void pl_post(uint8_t op, uint8_t flags, uint32_t dest, uint32_t nr,
		    uint64_t gpa, uint64_t user_data)
{
	struct kvmq_ring *sq = pl_sq();
	struct kvmq_sqe *e = pl_entry(sq, sq->prod, sizeof(*e));

	memset(e, 0, sizeof(*e));
	e->op = op;
	e->flags = flags;
	e->dest = dest;
	e->nr = nr;
	e->gpa = gpa;
	e->user_data = user_data;
	__atomic_store_n(&sq->prod, sq->prod + 1, __ATOMIC_RELEASE);
}

/* The next completion, waited for without an exit: the lazy batch runs. */
static struct kvmq_cqe pl_cq_wait(void)
{
	struct kvmq_ring *cq = pl_cq();
	struct kvmq_cqe c;

	while (__atomic_load_n(&cq->prod, __ATOMIC_ACQUIRE) == cq->cons)
		cpu_relax();
	c = *(struct kvmq_cqe *)pl_entry(cq, cq->cons, sizeof(c));
	__atomic_store_n(&cq->cons, cq->cons + 1, __ATOMIC_RELEASE);
	return c;
}

/*
 * Send the @n messages in the window's buffers 0..@n-1 to @dest, in order:
 * lazy, linked; from a refused one on, again, after a yield.
 */
static void pl_window_send(uint32_t dest, uint32_t n, uint64_t done)
{
	uint32_t k, first = 0, failed;
	struct kvmq_cqe c;

	while (first < n) {
		for (k = first; k < n; k++)
			pl_post(KVMQ_OP_SEND,
				KVMQ_SQE_LAZY | (k + 1 < n ? KVMQ_SQE_LINK : 0),
				dest, 0, (uint64_t)pl_mbuf(k), k);
		failed = n;
		for (k = first; k < n; k++) {
			c = pl_cq_wait();
			GUEST_ASSERT_EQ(c.user_data, k);
			if (c.res && failed == n) {
				GUEST_ASSERT(c.res == -EAGAIN ||
					     c.res == -ENOBUFS);
				failed = k;
			}
		}
		first = failed;
		if (first < n)
			GUEST_SYNC_ARGS(0, done, 0, 0, 0);
	}
}

static void pl_ring_read(uint64_t msg_gva, uint64_t msg_gpa, uint64_t n)
{
	uint32_t dest = pl_ring_peers().next;
	uint64_t i = 0, off = 0;
	struct kvmq_msg *m;
	struct pl_spec s;
	uint32_t k;

	while (i < n) {
		for (k = 0; k < PL_WINDOW && i + k < n; k++) {
			m = pl_mbuf(k);
			pl_build(m, i + k, off,
				 (uint8_t *)(PL_STAGE + k * 8 * PG),
				 (uint8_t *)PL_BLOCK, &s);
			off += s.len;
			pl_result.kinds[s.kind]++;
		}
		pl_window_send(dest, k, i);
		i += k;
		pl_result.bytes = off;
	}
	pl_result.messages = n;
	GUEST_DONE();
}

static void pl_ring_decode(uint64_t msg_gva, uint64_t msg_gpa, uint64_t n)
{
	struct pl_peers peers;
	struct kvmq_ring *r = pl_rx(0);
	struct kvmq_msg *in, *m;
	uint64_t i = 0, j;
	uint32_t k;
	uint8_t *p;

	xapic_enable();		/* for the arrival interrupt */
	peers = pl_ring_peers();
	while (i < n) {
		/* Take what has arrived, up to a window; wait for one. */
		for (k = 0; k < PL_WINDOW && i + k < n; k++) {
			if (k && __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) ==
				 r->cons)
				break;
			in = pl_rx_wait(r);
			GUEST_ASSERT_EQ(in->sender, peers.prev);
			m = pl_mbuf(k);
			memcpy(m, in, offsetof(struct kvmq_msg, data) +
			       (in->kind == KVMQ_MSG_BYTES ? in->len : 0));
			pl_rx_done(r);
			p = m->kind == KVMQ_MSG_BYTES ? m->data :
			    (uint8_t *)m->gpa;
			for (j = 0; j < m->len; j++)
				p[j] ^= XOR_KEY;
			/* Forward: the same bytes, the same pages. */
			m->sender = 0;
			for (j = 0; m->kind != KVMQ_MSG_BYTES && j < m->nr; j++)
				m->gpas[j] = m->gpa + j * pl_page_size(m->kind);
			m->gpa = 0;
			pl_result.bytes += m->len;
			pl_result.kinds[m->kind]++;
		}
		pl_window_send(peers.next, k, i);
		i += k;
	}
	pl_result.messages = n;
	GUEST_DONE();
}

/* A release completed: it freed the pages it named (its user_data). */
static void pl_release_done(void)
{
	struct kvmq_cqe c = pl_cq_wait();

	GUEST_ASSERT_EQ(c.res, c.user_data);
}

static void pl_ring_play(uint64_t msg_gva, uint64_t msg_gpa, uint64_t n)
{
	uint32_t from;
	struct kvmq_ring *r = pl_rx(0), *cq = pl_cq();
	uint64_t i, hash = FNV_OFFSET, pages;
	struct kvmq_msg *m;

	xapic_enable();		/* for the arrival interrupt */
	from = pl_ring_peers().prev;
	for (i = 0; i < n; i++) {
		m = pl_rx_wait(r);
		GUEST_ASSERT_EQ(m->sender, from);
		hash = pl_check(m, i, hash);
		/* Give the pages back lazily, with room in the rings. */
		if (m->kind != KVMQ_MSG_BYTES) {
			pages = m->nr * pl_page_size(m->kind) / PG;
			while (pl_sq()->prod - cq->cons >= PL_WINDOW)
				pl_release_done();
			pl_post(KVMQ_OP_RELEASE, KVMQ_SQE_LAZY, 0, pages,
				m->gpa, pages);
		}
		pl_rx_done(r);
		pl_result.bytes += m->len;
		pl_result.kinds[m->kind]++;
		pl_result.messages = i + 1;
	}
	/* Every page given back before the end. */
	while (cq->cons != pl_sq()->prod)
		pl_release_done();
	pl_result.hash = hash;
	GUEST_DONE();
}

static void *const pl_ring_guest[PL_NR_VMS] = {
	pl_ring_read, pl_ring_decode, pl_ring_play,
};

/*
 * Rings for a VM of the pipeline; for decode and play, an arrival
 * interrupt on queue 0 (an eventfd bound to an MSI with KVM_IRQFD).
 */
static void pl_vmm_rings(struct kvmq_peer *p, int role)
{
	struct kvmq_vm_notify n = { .size = sizeof(n), .queue = 0 };

	kvmq_peer_rings(p, PL_WINDOW * 4, PL_WINDOW * 2, &pl_lay);
	sync_global_to_guest(p->vm, pl_lay);
	if (role == PL_READ)
		return;
	n.fd = kvmq_msi_irqfd(p->vm, PL_GSI, PL_VECTOR, pl_irq);
	TEST_ASSERT(!ioctl(p->vmq, KVMQ_VM_SET_NOTIFY, &n), "notify");
}

static void *const pl_guest[PL_NR_VMS] = {
	pl_guest_read, pl_guest_decode, pl_guest_play,
};

/* What a VMM process sends back to the parent. */
struct pl_child_report {
	struct kvmq_pipeline_vm vm;
	struct pl_result res;
	int ok;
};

/* One VMM process: set up VM @role, wait for "go", run it to the end. */
static void pl_vmm(int role, int dev, int group, uint32_t nr_msgs,
		   uint32_t progress, bool rings, int ready_fd, int go_fd,
		   int report_fd)
{
	struct pl_peers peers = {
		.prev = role > PL_READ ? pl_ids[role - 1] : 0,
		.next = role < PL_PLAY ? pl_ids[role + 1] : 0,
	};
	struct pl_child_report rep = { 0 };
	struct kvmq_peer p;
	uint64_t last = 0;
	struct ucall uc;
	char c = 'r';

	kvmq_peer_create(&p, dev, group, pl_ids[role],
			 rings ? pl_ring_guest[role] : pl_guest[role],
			 AP_LEN, AP_LEN, DEPTH);
	vcpu_args_set(p.vcpu, 3, p.msg_gva, p.msg_gpa, nr_msgs);
	/* Inbound permission, granted by the receiver's VMM. */
	if (peers.prev)
		kvmq_grant(p.vmq, 0, peers.prev);
	TEST_ASSERT(!kvmq_post_err(p.vmq, KVMQ_QUEUE_VCPU(0), &peers,
				   sizeof(peers)), "post");
	/* The post waits in the queue and enters the ring with it. */
	if (rings)
		pl_vmm_rings(&p, role);

	TEST_ASSERT(write(ready_fd, &c, 1) == 1, "ready");
	TEST_ASSERT(read(go_fd, &c, 1) == 1, "go");

	for (;;) {
		uint64_t cmd = kvmq_run(p.vcpu, &uc);

		rep.vm.user_exits++;
		if (cmd == UCALL_DONE)
			break;
		TEST_ASSERT(cmd == UCALL_SYNC, "unexpected ucall %lu", cmd);
		if (progress && role == PL_PLAY &&
		    uc.args[2] / progress != last / progress)
			printf("  play: %lu/%u messages\n", uc.args[2],
			       nr_msgs);
		fflush(stdout);
		last = uc.args[2];
		sched_yield();
	}

	sync_global_from_guest(p.vm, pl_result);
	rep.res = pl_result;
	rep.vm.messages = pl_result.messages;
	rep.vm.tlb_flushes = vm_get_stat(p.vm, "remote_tlb_flush_requests");
	rep.vm.hypercalls = kvmq_vcpu_stat(p.vcpu, "hypercalls");
	rep.vm.exits = kvmq_vcpu_stat(p.vcpu, "exits");
	rep.ok = 1;
	kvmq_peer_destroy(&p);
	TEST_ASSERT(write(report_fd, &rep, sizeof(rep)) == sizeof(rep),
		    "report");
	_exit(0);
}

void kvmq_pipeline_run(uint32_t nr_msgs, uint32_t progress, bool rings,
		       struct kvmq_pipeline_report *r)
{
	int dev = kvmq_open_dev(), group = kvmq_create_group(dev);
	int ready[2], go[2], report[PL_NR_VMS][2], i, n, status;
	uint64_t moved, copied, unmaps, off;
	struct pl_child_report rep;
	pid_t pid[PL_NR_VMS];
	struct pl_spec s;
	char c;

	memset(r, 0, sizeof(*r));
	moved = kvmq_debugfs_stat("pages_moved");
	copied = kvmq_debugfs_stat("bytes_copied");
	unmaps = kvmq_debugfs_stat("unmaps");

	TEST_ASSERT(!pipe(ready) && !pipe(go), "pipe");
	fflush(stdout);
	for (i = 0; i < PL_NR_VMS; i++) {
		TEST_ASSERT(!pipe(report[i]), "pipe");
		pid[i] = fork();
		TEST_ASSERT(pid[i] >= 0, "fork");
		if (!pid[i])
			pl_vmm(i, dev, group, nr_msgs, progress, rings,
			       ready[1], go[0], report[i][1]);
		close(report[i][1]);
	}
	/* Every VM is named and has its grants before any guest runs. */
	for (i = 0; i < PL_NR_VMS; i++)
		TEST_ASSERT(read(ready[0], &c, 1) == 1, "ready");
	for (i = 0; i < PL_NR_VMS; i++)
		TEST_ASSERT(write(go[1], "g", 1) == 1, "go");

	/* A VMM that fails leaves its peers waiting: stop them all. */
	r->verified = true;
	for (n = 0; n < PL_NR_VMS; n++) {
		pid_t dead = waitpid(-1, &status, 0);

		TEST_ASSERT(dead > 0, "waitpid");
		if (WIFEXITED(status) && !WEXITSTATUS(status))
			continue;
		r->verified = false;
		for (i = 0; i < PL_NR_VMS; i++)
			if (pid[i] != dead)
				kill(pid[i], SIGKILL);
	}

	for (i = 0; i < PL_NR_VMS; i++) {
		if (read(report[i][0], &rep, sizeof(rep)) != sizeof(rep) ||
		    !rep.ok) {
			r->verified = false;
			memset(&rep, 0, sizeof(rep));
		}
		close(report[i][0]);
		r->vm[i] = rep.vm;
		if (i == PL_PLAY) {
			r->messages = rep.res.messages;
			r->bytes = rep.res.bytes;
			r->hash = rep.res.hash;
			memcpy(r->kinds, rep.res.kinds, sizeof(r->kinds));
		}
	}

	/* What play must have seen: the file, decoded, in order. */
	r->expect_hash = FNV_OFFSET;
	/* Each VMM posted its guest's peers. */
	r->expect_bytes_copied = PL_NR_VMS * sizeof(struct pl_peers);
	for (i = 0, off = 0; i < nr_msgs; i++) {
		pl_spec(i, &s);
		r->expect_bytes += s.len;
		/* Moved twice (read to decode, decode to play) or copied. */
		if (s.kind == KVMQ_MSG_BYTES) {
			r->expect_bytes_copied += 2 * s.len;
		} else {
			r->expect_pages_moved += 2 * s.nr *
						 (pl_page_size(s.kind) / PG);
			r->page_messages++;
		}
	}
	for (off = 0; off < r->expect_bytes; off++)
		r->expect_hash = (r->expect_hash ^ (uint8_t)(pl_byte(off) ^
							     XOR_KEY)) *
				 FNV_PRIME;

	r->pages_moved = kvmq_debugfs_stat("pages_moved") - moved;
	r->bytes_copied = kvmq_debugfs_stat("bytes_copied") - copied;
	r->unmaps = kvmq_debugfs_stat("unmaps") - unmaps;
	close(group);
	close(dev);
	r->pool_pages_after = kvmq_pool_pages();

	r->verified = r->verified && r->messages == nr_msgs &&
		      r->bytes == r->expect_bytes &&
		      r->hash == r->expect_hash && !r->pool_pages_after;
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
}
