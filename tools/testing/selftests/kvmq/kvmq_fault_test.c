// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection: every allocation made on a path of kvmq fails in turn,
 * as iommufd_fail_nth does it.  For each step (an ioctl, a hypercall, a
 * fault on an aperture, a teardown), the step runs with the Nth allocation
 * failing, for N = 1, 2, ... until a run completes with no failure
 * injected.  Each run must end in a clean error (or in a success that
 * absorbed the failure), leave the counters where a clean error leaves
 * them, and leave the VM usable: the step then succeeds.  kmemleak, after
 * the suite, finds whatever was leaked on the way.
 *
 * Failures are injected with /proc/self/task/TID/fail-nth, which counts
 * the allocations of one task: the vCPU thread's own for hypercalls and
 * faults of the guest, written just before KVM_RUN.  Only allocations
 * with kvmq's code on the stack count (the stack filter of failslab and
 * fail_page_alloc, set to kvmq's module address range): a KVM_RUN makes
 * allocations of KVM's own, which are KVM's to test.  Without fault
 * injection (CONFIG_FAULT_INJECTION_DEBUG_FS, CONFIG_FAILSLAB,
 * CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_STACKTRACE_FILTER) every
 * test is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

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
#define DEBUGFS		"/sys/kernel/debug"
/* Runs of one step: far more than any path of kvmq allocates. */
#define MAX_RUNS	2000

/* What the guest does next, written by the VMM (sync_global_to_guest()). */
enum { OP_NONE, OP_HC, OP_TOUCH };

struct fi_box {
	uint64_t op, nr, a0, a1, a2;
};

static struct fi_box box;

/* Guest: run the operation in @box, report its result, and again. */
static void guest_server(void)
{
	uint64_t p;
	int64_t ret;

	for (;;) {
		ret = 0;
		if (READ_ONCE(box.op) == OP_HC)
			ret = kvmq_hc(box.nr, box.a0, box.a1, box.a2);
		else if (READ_ONCE(box.op) == OP_TOUCH)
			for (p = box.a0; p < box.a0 + box.a1; p += PG)
				*(volatile uint8_t *)p = 1;
		GUEST_SYNC(ret);
	}
}

struct fi_ctx {
	int dev, group, nth, zero, efd;
	struct kvmq_peer a, b, c;
	struct kvm_vm *spare;
	int vmq;		/* the spare VM's kvmq file, or -1 */
	int fd;			/* a file a step created, or -1 */
	struct kvmq_vm_rings lay;	/* A's rings */
	uint32_t rx_cons, cq_cons, sq_prod;
	uint64_t held;		/* A's aperture before a fault */
	uint64_t runs, injected;
	char why[320];
};

/* Write a value to a debugfs file; 0 or -1. */
static int put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

/*
 * The text of kmemleak_scan_area(), or [0, 0): kmemleak's own allocation
 * under it, for vmalloc(), must not fail (kmemleak would then log that it
 * scans the whole object, which the runner takes for a report).
 */
static void kmemleak_range(unsigned long long *start, unsigned long long *end)
{
	unsigned long long addr, sym = 0, next = -1ULL;
	char line[256], name[128];
	FILE *f = fopen("/proc/kallsyms", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %*s %127s", &addr, name) != 2)
			continue;
		if (!strcmp(name, "kmemleak_scan_area"))
			sym = addr;
		else if (sym && addr > sym && addr < next)
			next = addr;
	}
	if (f)
		fclose(f);
	*start = sym && next != -1ULL ? sym : 0;
	*end = sym && next != -1ULL ? next : 0;
}

/*
 * Let fail-nth fail any allocation made with kvmq's code on the stack,
 * quietly.  Returns false, with the reason in @c->why, if the kernel
 * cannot inject faults.
 */
static bool fi_enable(struct fi_ctx *c)
{
	static const char *const kinds[] = { "failslab", "fail_page_alloc" };
	unsigned long long base = 0, size = 0, rstart, rend;
	char path[128], line[256], start[32], end[32];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/self/task/%d/fail-nth", gettid());
	c->nth = open(path, O_RDWR);
	if (c->nth < 0) {
		snprintf(c->why, sizeof(c->why),
			 "no %s: kernel without CONFIG_FAULT_INJECTION_DEBUG_FS",
			 path);
		return false;
	}
	f = fopen("/proc/modules", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "kvmq %llu %*s %*s %*s %llx", &size, &base) == 2)
			break;
	if (f)
		fclose(f);
	if (!base || !size) {
		snprintf(c->why, sizeof(c->why),
			 "kvmq's address is not in /proc/modules");
		return false;
	}
	kmemleak_range(&rstart, &rend);
	snprintf(start, sizeof(start), "%llu", base);
	snprintf(end, sizeof(end), "%llu", base + size);
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), DEBUGFS "/%s/require-start",
			 kinds[i]);
		if (put(path, start)) {
			snprintf(c->why, sizeof(c->why),
				 "no %s: no %s or no stack trace filter",
				 path, kinds[i]);
			return false;
		}
#define FI_PUT(file, val)						\
		do {							\
			snprintf(path, sizeof(path), DEBUGFS "/%s/" file,	\
				 kinds[i]);				\
			TEST_ASSERT(!put(path, val), "cannot write %s", path); \
		} while (0)
		FI_PUT("require-end", end);
		snprintf(line, sizeof(line), "%llu", rstart);
		FI_PUT("reject-start", line);
		snprintf(line, sizeof(line), "%llu", rend);
		FI_PUT("reject-end", line);
		FI_PUT("stacktrace-depth", "32");
		FI_PUT("verbose", "0");
		FI_PUT("ignore-gfp-wait", "N");
	}
	i = 1;
	FI_PUT("ignore-gfp-highmem", "N");
	FI_PUT("min-order", "0");
#undef FI_PUT
	return true;
}

/* The default filter again: no stack trace needed. */
static void fi_disable(void)
{
	put(DEBUGFS "/failslab/require-start", "0");
	put(DEBUGFS "/failslab/require-end", "18446744073709551615");
	put(DEBUGFS "/fail_page_alloc/require-start", "0");
	put(DEBUGFS "/fail_page_alloc/require-end", "18446744073709551615");
	put(DEBUGFS "/failslab/reject-start", "0");
	put(DEBUGFS "/failslab/reject-end", "0");
	put(DEBUGFS "/fail_page_alloc/reject-start", "0");
	put(DEBUGFS "/fail_page_alloc/reject-end", "0");
}

static void fi_arm(struct fi_ctx *c, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	TEST_ASSERT(pwrite(c->nth, buf, len, 0) == len,
		    "fail-nth write, errno %d", errno);
}

/* Disarm; whether the failure was injected (the count reached 0). */
static bool fi_disarm(struct fi_ctx *c)
{
	char buf[16] = "";

	TEST_ASSERT(pread(c->nth, buf, sizeof(buf) - 1, 0) > 0,
		    "fail-nth read, errno %d", errno);
	TEST_ASSERT(pwrite(c->nth, "0", 1, 0) == 1, "fail-nth write, errno %d",
		    errno);
	return !strtoul(buf, NULL, 10);
}

/* Resume @p's guest to its next report: the result, or -errno of KVM_RUN. */
static long fi_resume(struct kvmq_peer *p)
{
	struct ucall uc;
	uint64_t cmd;

	if (_vcpu_run(p->vcpu))
		return -errno;
	TEST_ASSERT_KVM_EXIT_REASON(p->vcpu, KVM_EXIT_IO);
	cmd = get_ucall(p->vcpu, &uc);
	if (cmd == UCALL_ABORT)
		REPORT_GUEST_ASSERT(uc);
	TEST_ASSERT(cmd == UCALL_SYNC, "unexpected ucall %lu", cmd);
	return uc.args[1];
}

static long fi_op(struct kvmq_peer *p, uint64_t op, uint64_t nr, uint64_t a0,
		  uint64_t a1, uint64_t a2)
{
	box = (struct fi_box){ op, nr, a0, a1, a2 };
	sync_global_to_guest(p->vm, box);
	return fi_resume(p);
}

static long fi_hc(struct kvmq_peer *p, uint64_t nr, uint64_t a0, uint64_t a1,
		  uint64_t a2)
{
	return fi_op(p, OP_HC, nr, a0, a1, a2);
}

/* Guest: touch every page from @gpa for @len bytes (unarmed: must work). */
static void touch(struct kvmq_peer *p, uint64_t gpa, uint64_t len)
{
	long ret = fi_op(p, OP_TOUCH, 0, gpa, len, 0);

	TEST_ASSERT(!ret, "touch failed: %ld", ret);
}

static void release_all(struct kvmq_peer *p)
{
	long ret = fi_hc(p, KVMQ_HC_RELEASE, AP, p->ap_len / PG, 0);

	TEST_ASSERT(ret >= 0, "release failed: %ld", ret);
	TEST_ASSERT(!kvmq_aperture_held(p->vmq), "pages left after release");
}

static struct kvmq_msg *msg_of(struct kvmq_peer *p)
{
	return addr_gva2hva(p->vm, p->msg_gva);
}

static void msg_bytes(struct kvmq_msg *m, uint32_t len)
{
	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = KVMQ_MSG_BYTES;
	m->len = len;
	memset(m->data, 0x5a, len);
}

static void msg_pages(struct kvmq_msg *m, uint32_t kind, uint32_t nr,
		      uint64_t gpa)
{
	uint64_t unit = kind == KVMQ_MSG_BLOCKS ? SZ_2M : PG;
	uint32_t i;

	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = kind;
	m->nr = nr;
	m->len = nr * unit;
	for (i = 0; i < nr; i++)
		m->gpas[i] = gpa + i * unit;
}

/* B receives what waits in its queue 0; the number of messages. */
static int recv_all(struct fi_ctx *c)
{
	int n = 0;
	long ret;

	while (!(ret = fi_hc(&c->b, KVMQ_HC_RECV, 0, c->b.msg_gpa, 0))) {
		TEST_ASSERT(msg_of(&c->b)->sender == ID_A ||
			    msg_of(&c->b)->sender == KVMQ_ID_VMM,
			    "message from %u", msg_of(&c->b)->sender);
		n++;
	}
	TEST_ASSERT(ret == -EAGAIN, "receive failed: %ld", ret);
	return n;
}

/* What a failed step must leave as it found it. */
struct fi_snap {
	uint64_t pool, held[2], queued[2], mem[2];
	uint64_t sent[2][3], recv[2][3], moved[2];
};

static void snap(struct fi_ctx *c, struct fi_snap *s)
{
	struct kvmq_peer *p[2] = { &c->a, &c->b };
	struct kvmq_vm_aperture ap;
	struct kvmq_vm_stats st;
	int i, k;

	memset(s, 0, sizeof(*s));
	s->pool = kvmq_pool_pages();
	for (i = 0; i < 2; i++) {
		ap = kvmq_get_aperture(p[i]->vmq);
		st = kvmq_get_stats(p[i]->vmq);
		s->held[i] = ap.held;
		s->queued[i] = ap.queued;
		s->mem[i] = kvmq_get_queues(p[i]->vmq).mem;
		for (k = 0; k < 3; k++) {
			s->sent[i][k] = st.sent[k];
			s->recv[i][k] = st.received[k];
		}
		s->moved[i] = st.pages_moved;
	}
}

/* Between steps: nothing held, queued or charged anywhere. */
static void baseline(struct fi_ctx *c)
{
	struct fi_snap s;

	snap(c, &s);
	TEST_ASSERT(!s.pool && !s.held[0] && !s.held[1] && !s.queued[0] &&
		    !s.queued[1] && !s.mem[0] && !s.mem[1],
		    "not back to zero: pool %lu, held %lu %lu, queued %lu %lu, mem %lu %lu",
		    s.pool, s.held[0], s.held[1], s.queued[0], s.queued[1],
		    s.mem[0], s.mem[1]);
}

struct fi_step {
	const char *name;
	/* Bring the state to just before the call; nothing armed. */
	void (*prep)(struct fi_ctx *c);
	/* The call: 0 (or a count), or a negative errno. */
	long (*call)(struct fi_ctx *c);
	/* After the call succeeded: check, and undo; nothing armed. */
	void (*done)(struct fi_ctx *c, bool injected);
	/* An error the call may return besides -ENOMEM. */
	long err;
};

/*
 * Run @st with the Nth allocation failing, for N = 1, 2, ... until a run
 * injects nothing.  A failed call must have changed nothing, and succeed
 * when called again.
 */
static void sweep(struct fi_ctx *c, const struct fi_step *st)
{
	struct fi_snap before, after;
	unsigned int n, failed = 0;
	bool injected;
	long ret;

	for (n = 1; ; n++) {
		TEST_ASSERT(n < MAX_RUNS, "%s: more than %d runs", st->name,
			    MAX_RUNS);
		if (st->prep)
			st->prep(c);
		snap(c, &before);
		fi_arm(c, n);
		ret = st->call(c);
		injected = fi_disarm(c);
		c->runs++;
		c->injected += injected;
		if (ret < 0) {
			TEST_ASSERT(injected, "%s failed without injection: %ld",
				    st->name, ret);
			TEST_ASSERT(ret == -ENOMEM || (st->err && ret == st->err),
				    "%s: run %u failed with %ld", st->name, n, ret);
			snap(c, &after);
			TEST_ASSERT(!memcmp(&before, &after, sizeof(before)),
				    "%s: run %u failed and changed counters",
				    st->name, n);
			failed++;
			ret = st->call(c);
			TEST_ASSERT(ret >= 0, "%s: unusable after run %u: %ld",
				    st->name, n, ret);
		}
		if (st->done)
			st->done(c, injected);
		baseline(c);
		if (!injected)
			break;
	}
	printf("# %-12s %4u failures injected, %4u failed cleanly, the rest absorbed\n",
	       st->name, n - 1, failed);
}

/* ioctls, on a spare VM attached afresh for each run. */
static void prep_attach(struct fi_ctx *c)
{
	c->vmq = __kvmq_attach(c->dev, c->spare->fd);
	TEST_ASSERT(c->vmq >= 0, "attach, errno %d", errno);
}

static void prep_attach_queues(struct fi_ctx *c)
{
	prep_attach(c);
	kvmq_set_queues(c->vmq, 2, 1, 4);
}

static void done_detach(struct fi_ctx *c, bool injected)
{
	close(c->vmq);
	c->vmq = -1;
}

static void done_close(struct fi_ctx *c, bool injected)
{
	close(c->fd);
	c->fd = -1;
}

static long call_attach(struct fi_ctx *c)
{
	c->vmq = __kvmq_attach(c->dev, c->spare->fd);
	return c->vmq < 0 ? -errno : 0;
}

static long call_group(struct fi_ctx *c)
{
	struct kvmq_create_group cg = { .size = sizeof(cg) };

	c->fd = ioctl(c->dev, KVMQ_CREATE_GROUP, &cg);
	return c->fd < 0 ? -errno : 0;
}

static long call_identity(struct fi_ctx *c)
{
	return __kvmq_set_identity(c->vmq, c->group, KVMQ_ID_MAX) ? -errno : 0;
}

static long call_queues(struct fi_ctx *c)
{
	return __kvmq_set_queues(c->vmq, 2, 1, 4) ? -errno : 0;
}

static long call_aperture(struct fi_ctx *c)
{
	return __kvmq_set_aperture(c->vmq, AP, 4 * SZ_2M, SZ_2M) ? -errno : 0;
}

static long call_rings(struct fi_ctx *c)
{
	struct kvmq_vm_rings r = {
		.size = sizeof(r), .rx_entries = 4, .sq_entries = 4,
	};

	return kvmq_ioctl_err(c->vmq, KVMQ_VM_SET_RINGS, &r);
}

static long call_notify(struct fi_ctx *c)
{
	struct kvmq_vm_notify n = { .size = sizeof(n), .fd = c->efd };

	return kvmq_ioctl_err(c->vmq, KVMQ_VM_SET_NOTIFY, &n);
}

static long call_grant(struct fi_ctx *c)
{
	return kvmq_grant_err(c->b.vmq, KVMQ_VM_GRANT, KVMQ_QUEUE_VCPU(0),
			      ID_A);
}

static void done_grant(struct fi_ctx *c, bool injected)
{
	TEST_ASSERT(!kvmq_grant_err(c->b.vmq, KVMQ_VM_REVOKE,
				    KVMQ_QUEUE_VCPU(0), ID_A), "revoke");
}

static long call_post(struct fi_ctx *c)
{
	static const char data[100];

	return kvmq_post_err(c->b.vmq, 0, data, sizeof(data));
}

static void done_recv_one(struct fi_ctx *c, bool injected)
{
	TEST_ASSERT(recv_all(c) == 1, "not exactly one message");
}

static const struct fi_step ioctl_steps[] = {
	{ "attach", NULL, call_attach, done_detach },
	{ "group", NULL, call_group, done_close },
	{ "identity", prep_attach, call_identity, done_detach },
	{ "queues", prep_attach, call_queues, done_detach },
	{ "aperture", prep_attach, call_aperture, done_detach },
	{ "rings", prep_attach_queues, call_rings, done_detach },
	{ "notify", prep_attach_queues, call_notify, done_detach },
	{ "grant", NULL, call_grant, done_grant },
	{ "post", NULL, call_post, done_recv_one },
};

/* Faults on A's aperture: a fresh 2 MiB block, a 4 KiB page, the VMM's. */
static long call_touch_2m(struct fi_ctx *c)
{
	return fi_op(&c->a, OP_TOUCH, 0, AP + SZ_2M, 1, 0);
}

static void done_release_a(struct fi_ctx *c, bool injected)
{
	TEST_ASSERT(kvmq_aperture_held(c->a.vmq), "nothing held");
	release_all(&c->a);
}

/*
 * Pages 0 and 6 held, page 5 not: a fault there is a 4 KiB one, whether
 * block 0 was mapped as a block or not.
 */
static void prep_hole(struct fi_ctx *c)
{
	long ret;

	touch(&c->a, AP, 1);
	touch(&c->a, AP + 6 * PG, 1);
	ret = fi_hc(&c->a, KVMQ_HC_RELEASE, AP + 5 * PG, 1, 0);
	TEST_ASSERT(ret == 0 || ret == 1, "release of page 5: %ld", ret);
	c->held = kvmq_aperture_held(c->a.vmq);
}

static long call_touch_4k(struct fi_ctx *c)
{
	return fi_op(&c->a, OP_TOUCH, 0, AP + 5 * PG, 1, 0);
}

static long call_touch_vmm(struct fi_ctx *c)
{
	return read(c->zero, c->a.ap + 5 * PG, 1) < 0 ? -errno : 0;
}

static void done_hole(struct fi_ctx *c, bool injected)
{
	TEST_ASSERT(kvmq_aperture_held(c->a.vmq) == c->held + PG,
		    "page 5 missing");
	release_all(&c->a);
}

static const struct fi_step fault_steps[] = {
	{ "touch_2m", NULL, call_touch_2m, done_release_a },
	{ "touch_4k", prep_hole, call_touch_4k, done_hole, -EFAULT },
	{ "touch_vmm", prep_hole, call_touch_vmm, done_hole, -EFAULT },
};

/* Sends from A to B's queue 0, receives of B, B's releases. */
static void prep_bytes(struct fi_ctx *c)
{
	msg_bytes(msg_of(&c->a), 1000);
}

static void prep_pages(struct fi_ctx *c)
{
	touch(&c->a, AP, 4 * PG);
	msg_pages(msg_of(&c->a), KVMQ_MSG_PAGES, 4, AP);
}

static void prep_blocks(struct fi_ctx *c)
{
	touch(&c->a, AP + SZ_2M, SZ_2M);
	msg_pages(msg_of(&c->a), KVMQ_MSG_BLOCKS, 1, AP + SZ_2M);
}

static long call_send(struct fi_ctx *c)
{
	return fi_hc(&c->a, KVMQ_HC_SEND, ID_B, 0, c->a.msg_gpa);
}

static void done_send(struct fi_ctx *c, bool injected)
{
	TEST_ASSERT(recv_all(c) == 1, "not exactly one message");
	release_all(&c->b);
	release_all(&c->a);
}

static void prep_recv_bytes(struct fi_ctx *c)
{
	prep_bytes(c);
	TEST_ASSERT(!call_send(c), "send");
}

static void prep_recv_pages(struct fi_ctx *c)
{
	prep_pages(c);
	TEST_ASSERT(!call_send(c), "send");
}

static void prep_recv_blocks(struct fi_ctx *c)
{
	prep_blocks(c);
	TEST_ASSERT(!call_send(c), "send");
}

static long call_recv(struct fi_ctx *c)
{
	return fi_hc(&c->b, KVMQ_HC_RECV, 0, c->b.msg_gpa, 0);
}

static void done_recv(struct fi_ctx *c, bool injected)
{
	struct kvmq_msg *m = msg_of(&c->b);

	TEST_ASSERT(m->sender == ID_A && m->kind && m->len, "bad message");
	if (m->kind == KVMQ_MSG_BYTES)
		TEST_ASSERT(m->data[m->len - 1] == 0x5a, "bad payload");
	release_all(&c->b);
	release_all(&c->a);
}

/* B holds a block and a block less one page; releases everything. */
static void prep_release(struct fi_ctx *c)
{
	touch(&c->b, AP, 1);
	touch(&c->b, AP + SZ_2M, 1);
	TEST_ASSERT(fi_hc(&c->b, KVMQ_HC_RELEASE, AP + SZ_2M + 7 * PG, 1, 0) == 1,
		    "release of one page");
}

static long call_release(struct fi_ctx *c)
{
	long ret = fi_hc(&c->b, KVMQ_HC_RELEASE, AP, AP_LEN / PG, 0);

	TEST_ASSERT(ret < 0 || ret == 1023, "released %ld pages", ret);
	return ret;
}

static const struct fi_step msg_steps[] = {
	{ "send_bytes", prep_bytes, call_send, done_send },
	{ "send_pages", prep_pages, call_send, done_send },
	{ "send_blocks", prep_blocks, call_send, done_send },
	{ "recv_bytes", prep_recv_bytes, call_recv, done_recv },
	{ "recv_pages", prep_recv_pages, call_recv, done_recv },
	{ "recv_blocks", prep_recv_blocks, call_recv, done_recv },
	{ "release", prep_release, call_release, NULL },
};

/* A's rings: its submission ring, and its receive ring (queue 0). */
static struct kvmq_ring *ring_at(struct fi_ctx *c, uint64_t off)
{
	return (void *)((char *)c->a.rings + off);
}

static void *ring_entry(struct kvmq_ring *r, uint32_t n, size_t size)
{
	return (char *)(r + 1) + (n & (r->entries - 1)) * size;
}

/*
 * A sends B a bytes message (A's message page) and a 2-page message
 * (header at AP + 4 MiB) through its submission ring; @flags on both.
 */
static void prep_sqes(struct fi_ctx *c, uint8_t flags)
{
	struct kvmq_ring *sq = ring_at(c, c->lay.vcpu_offset);
	struct kvmq_sqe *e;
	int i;

	touch(&c->a, AP, 2 * PG);
	msg_bytes(msg_of(&c->a), 64);
	msg_pages((void *)(c->a.ap + (4ULL << 20)), KVMQ_MSG_PAGES, 2, AP);
	for (i = 0; i < 2; i++) {
		e = ring_entry(sq, c->sq_prod, sizeof(*e));
		memset(e, 0, sizeof(*e));
		e->op = KVMQ_OP_SEND;
		e->flags = flags;
		e->dest = ID_B;
		e->gpa = i ? AP + (4ULL << 20) : c->a.msg_gpa;
		e->user_data = i;
		__atomic_store_n(&sq->prod, ++c->sq_prod, __ATOMIC_RELEASE);
	}
}

static void prep_submit(struct fi_ctx *c)
{
	prep_sqes(c, 0);
}

static void prep_lazy(struct fi_ctx *c)
{
	prep_sqes(c, KVMQ_SQE_LAZY);
}

static long call_submit(struct fi_ctx *c)
{
	long ret = fi_hc(&c->a, KVMQ_HC_SUBMIT, 0, 0, 0);

	TEST_ASSERT(ret < 0 || ret == 2, "submit consumed %ld", ret);
	return ret < 0 ? ret : 0;
}

/* An exit of A, at which its lazy entries run. */
static long call_exit(struct fi_ctx *c)
{
	return fi_op(&c->a, OP_NONE, 0, 0, 0, 0);
}

/* Both completions are in; what succeeded reached B. */
static void done_sqes(struct fi_ctx *c, bool injected)
{
	struct kvmq_ring *cq = ring_at(c, c->lay.vcpu_offset +
				       c->lay.cq_offset);
	struct kvmq_cqe *e;
	int i, ok = 0;

	TEST_ASSERT(__atomic_load_n(&cq->prod, __ATOMIC_ACQUIRE) ==
		    c->cq_cons + 2, "completions: %u, expected %u", cq->prod,
		    c->cq_cons + 2);
	for (i = 0; i < 2; i++) {
		e = ring_entry(cq, c->cq_cons++, sizeof(*e));
		TEST_ASSERT(e->user_data == i, "completion order");
		TEST_ASSERT(!e->res || e->res == -ENOMEM, "result %d", e->res);
		TEST_ASSERT(!e->res || injected, "failed without injection");
		ok += !e->res;
	}
	__atomic_store_n(&cq->cons, c->cq_cons, __ATOMIC_RELEASE);
	TEST_ASSERT(recv_all(c) == ok, "B did not get the %d sent", ok);
	release_all(&c->b);
	release_all(&c->a);
}

/* B sends two pages into A's receive ring (A grants B its queue 0). */
static void prep_rx(struct fi_ctx *c)
{
	touch(&c->b, AP, 2 * PG);
	msg_pages(msg_of(&c->b), KVMQ_MSG_PAGES, 2, AP);
}

static long call_rx(struct fi_ctx *c)
{
	return fi_hc(&c->b, KVMQ_HC_SEND, ID_A, 0, c->b.msg_gpa);
}

/*
 * The message is in A's ring, or, if placing its pages failed, waits in
 * the kernel until A's doorbell.
 */
static void done_rx(struct fi_ctx *c, bool injected)
{
	struct kvmq_ring *rx = ring_at(c, 0);
	struct kvmq_msg *m;

	if (__atomic_load_n(&rx->prod, __ATOMIC_ACQUIRE) == c->rx_cons) {
		TEST_ASSERT(injected, "not delivered without injection");
		TEST_ASSERT(kvmq_get_aperture(c->a.vmq).queued == 2 * PG,
			    "the message is nowhere");
		TEST_ASSERT(fi_hc(&c->a, KVMQ_HC_SUBMIT, 0, 0, 0) == 0,
			    "doorbell");
	}
	TEST_ASSERT(rx->prod == c->rx_cons + 1, "not delivered");
	m = ring_entry(rx, c->rx_cons++, sizeof(*m));
	TEST_ASSERT(m->kind == KVMQ_MSG_PAGES && m->nr == 2 &&
		    m->sender == ID_B, "bad message");
	__atomic_store_n(&rx->cons, c->rx_cons, __ATOMIC_RELEASE);
	release_all(&c->a);
	release_all(&c->b);
}

static const struct fi_step ring_steps[] = {
	{ "submit", prep_submit, call_submit, done_sqes },
	{ "lazy", prep_lazy, call_exit, done_sqes },
	{ "rx_deliver", prep_rx, call_rx, done_rx },
};

/*
 * C, with rings of one entry, gets a bytes message in its ring and a
 * 2-page one waiting in the kernel, and holds a block; then it goes.
 */
static void prep_teardown(struct fi_ctx *c)
{
	struct kvmq_vm_rings lay;

	kvmq_peer_create(&c->c, c->dev, c->group, ID_C, guest_server,
			 4 * SZ_2M, 4 * SZ_2M, 4);
	kvmq_grant(c->c.vmq, 0, ID_B);
	kvmq_peer_rings(&c->c, 1, 1, &lay);
	TEST_ASSERT(!fi_op(&c->c, OP_NONE, 0, 0, 0, 0), "first run");
	touch(&c->c, AP + SZ_2M, 1);
	msg_bytes(msg_of(&c->b), 100);
	TEST_ASSERT(!fi_hc(&c->b, KVMQ_HC_SEND, ID_C, 0, c->b.msg_gpa), "send");
	touch(&c->b, AP, 2 * PG);
	msg_pages(msg_of(&c->b), KVMQ_MSG_PAGES, 2, AP);
	TEST_ASSERT(!fi_hc(&c->b, KVMQ_HC_SEND, ID_C, 0, c->b.msg_gpa), "send");
	TEST_ASSERT(kvmq_get_aperture(c->c.vmq).queued == 2 * PG, "not queued");
}

static long call_teardown(struct fi_ctx *c)
{
	kvmq_peer_destroy(&c->c);
	return 0;
}

static void done_teardown(struct fi_ctx *c, bool injected)
{
	release_all(&c->b);
}

static const struct fi_step teardown_steps[] = {
	{ "teardown", prep_teardown, call_teardown, done_teardown },
};

FIXTURE(fault) {
	struct fi_ctx c;
};

FIXTURE_SETUP(fault)
{
	struct fi_ctx *c = &self->c;

	memset(c, 0, sizeof(*c));
	c->vmq = c->fd = -1;
	if (!fi_enable(c))
		SKIP(return, "%s", c->why);
	ASSERT_EQ(0, kvmq_pool_settled());
	c->dev = kvmq_open_dev();
	c->group = kvmq_create_group(c->dev);
	c->zero = open("/dev/zero", O_RDONLY);
	c->efd = eventfd(0, 0);
	ASSERT_LE(0, c->zero);
	ASSERT_LE(0, c->efd);
	kvmq_peer_create(&c->a, c->dev, c->group, ID_A, guest_server, AP_LEN,
			 AP_LEN, 4);
	kvmq_peer_create(&c->b, c->dev, c->group, ID_B, guest_server, AP_LEN,
			 AP_LEN, 4);
	kvmq_grant(c->b.vmq, 0, ID_A);
	kvmq_grant(c->a.vmq, 0, ID_B);
	ASSERT_EQ(0, fi_op(&c->a, OP_NONE, 0, 0, 0, 0));
	ASSERT_EQ(0, fi_op(&c->b, OP_NONE, 0, 0, 0, 0));
	c->spare = vm_create_barebones();
}

FIXTURE_TEARDOWN(fault)
{
	struct fi_ctx *c = &self->c;

	if (c->nth < 0)
		return;
	close(c->nth);
	fi_disable();
	if (!c->dev)
		return;
	kvmq_peer_destroy(&c->c);
	kvmq_peer_destroy(&c->a);
	kvmq_peer_destroy(&c->b);
	kvm_vm_free(c->spare);
	close(c->efd);
	close(c->zero);
	close(c->group);
	close(c->dev);
	EXPECT_EQ(0, kvmq_pool_pages());
	printf("# %lu runs, %lu allocation failures injected\n", c->runs,
	       c->injected);
}

static void sweep_all(struct fi_ctx *c, const struct fi_step *st, int n)
{
	int i;

	for (i = 0; i < n; i++)
		sweep(c, &st[i]);
}

TEST_F(fault, ioctls)
{
	sweep_all(&self->c, ioctl_steps, ARRAY_SIZE(ioctl_steps));
}

TEST_F(fault, faults)
{
	sweep_all(&self->c, fault_steps, ARRAY_SIZE(fault_steps));
}

TEST_F(fault, messages)
{
	sweep_all(&self->c, msg_steps, ARRAY_SIZE(msg_steps));
}

/* A gets rings here: elsewhere no VM has rings, or only C. */
TEST_F(fault, rings)
{
	kvmq_peer_rings(&self->c.a, 4, 8, &self->c.lay);
	sweep_all(&self->c, ring_steps, ARRAY_SIZE(ring_steps));
}

TEST_F(fault, detach)
{
	sweep_all(&self->c, teardown_steps, ARRAY_SIZE(teardown_steps));
}

KVMQ_TEST_HARNESS_MAIN
