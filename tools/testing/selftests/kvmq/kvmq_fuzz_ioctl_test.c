// SPDX-License-Identifier: GPL-2.0
/*
 * A fuzzer of kvmq's ioctls: random numbers in and around kvmq's range on
 * /dev/kvmq, per-VM and group files, kvmq's numbers on files of the wrong
 * kind, random sizes, flags and fields, file descriptors of every kind;
 * meanwhile other threads attach and detach VMs, close files, map and
 * unmap apertures and ring areas, touch them and madvise() them.  Nothing
 * may crash or warn, and once every file is closed kvmq holds no page.
 *
 * KVMQ_FUZZ_SEED sets the seed (printed; each thread's sequence follows
 * from it, their interleaving does not), KVMQ_FUZZ_IOCTLS the number of
 * ioctls (default 100000).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define PG		4096ULL
#define SZ_2M		(2ULL << 20)
#define NR_VMS		4
#define NR_THREADS	4
#define NR_FDS		16

/* xorshift64*: small, fast, and the same everywhere. */
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

/* A seed from the environment, else from the clock. */
static uint64_t fuzz_seed(void)
{
	const char *e = getenv("KVMQ_FUZZ_SEED");
	struct timespec ts;

	if (e && *e)
		return strtoull(e, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000007ULL + ts.tv_nsec;
}

static uint64_t env_count(const char *name, uint64_t def)
{
	const char *e = getenv(name);

	return e && *e ? strtoull(e, NULL, 0) : def;
}

/* One VM and what is attached to it; @lock covers the mappings. */
struct slot {
	pthread_mutex_t lock;
	struct kvm_vm *vm;
	int vmq;			/* -1 when detached */
	uint8_t *map;			/* aperture mapping, or NULL */
	uint64_t map_len;
	uint8_t *rings;			/* ring area mapping, or NULL */
	uint64_t rings_len;
};

enum { C_IOCTL, C_BADIOCTL, C_ATTACH, C_DETACH, C_MMAP, C_MUNMAP, C_TOUCH,
	C_MADVISE, C_OK, C_NR };
static const char *const c_names[C_NR] = {
	"ioctls", "of them wrong kind/number", "attaches", "detaches",
	"mmaps", "munmaps", "touches", "madvises", "ioctls that succeeded",
};

struct fuzz {
	int dev, group, zero, efd, pipe[2], null;
	struct kvm_vcpu *vcpu;		/* of vms[0].vm */
	struct slot vms[NR_VMS];
	uint64_t seed, ioctls;
	int64_t left;			/* ioctls still to issue, shared */
	uint64_t count[C_NR];		/* updated atomically */
};

static void bump(struct fuzz *f, int c)
{
	__atomic_fetch_add(&f->count[c], 1, __ATOMIC_RELAXED);
}

static const unsigned int kvmq_cmds[] = {
	KVMQ_GET_INFO, KVMQ_ATTACH_VM, KVMQ_CREATE_GROUP,
	KVMQ_VM_SET_IDENTITY, KVMQ_VM_GET_IDENTITY, KVMQ_VM_SET_APERTURE,
	KVMQ_VM_GET_APERTURE, KVMQ_VM_SET_QUEUES, KVMQ_VM_GET_QUEUES,
	KVMQ_VM_GRANT, KVMQ_VM_REVOKE, KVMQ_VM_POST, KVMQ_VM_SET_RINGS,
	KVMQ_VM_SET_NOTIFY, KVMQ_VM_GET_STATS,
};

/* A file descriptor of some kind, valid or not. */
static int any_fd(struct fuzz *f, uint64_t *s)
{
	struct slot *sl = &f->vms[below(s, NR_VMS)];

	switch (below(s, 12)) {
	case 0: return f->dev;
	case 1: return f->group;
	case 2: return READ_ONCE(sl->vmq);
	case 3: return sl->vm->fd;
	case 4: return f->vcpu->fd;
	case 5: return f->efd;
	case 6: return f->pipe[below(s, 2)];
	case 7: return f->null;
	case 8: return -1;
	case 9: return below(s, 1024);
	case 10: return (int)rnd(s);
	default: return READ_ONCE(f->vms[0].vmq);
	}
}

/* A value for a field: mostly plausible, sometimes anything. */
static uint64_t any_val(struct fuzz *f, uint64_t *s)
{
	static const uint64_t edges[] = {
		0, 1, 2, 3, 4, 8, 64, 4095, 4096, 4097, SZ_2M, 4 * SZ_2M,
		KVMQ_APERTURE_MAX, KVMQ_APERTURE_MAX + SZ_2M, KVMQ_ID_MAX,
		KVMQ_ID_MAX + 1ULL, KVMQ_QUEUE_VCPU(0), KVMQ_QUEUE_VCPU(1),
		KVMQ_QUEUES_MAX, KVMQ_DEPTH_MAX, KVMQ_MEM_LIMIT_MIN,
		KVMQ_MEM_LIMIT_MAX, KVMQ_NOTIFY_SPACE, KVMQ_RING_ENTRIES_MAX,
		KVMQ_LAZY_DELAY_MIN, 0x7fffffff, 0x80000000, 0xffffffff,
		-1ULL, 1ULL << 32, 1ULL << 63, KVMQ_TEST_AP_GPA,
	};

	switch (below(s, 8)) {
	case 0: return rnd(s);
	case 1: return any_fd(f, s);
	case 2: return below(s, 16);
	case 3: return rnd(s) & ~(SZ_2M - 1) & (KVMQ_APERTURE_MAX - 1);
	default: return edges[below(s, ARRAY_SIZE(edges))];
	}
}

static uint32_t pow2(uint64_t *s)
{
	return 1U << below(s, 6);
}

/*
 * A plausible argument for @cmd in @u (valid or nearly so), then maybe
 * mutated; for other numbers, anything.  Returns the size to declare.
 */
static uint32_t plausible(struct fuzz *f, uint64_t *s, unsigned int cmd,
			  uint8_t *buf)
{
	union {
		struct kvmq_attach_vm at;
		struct kvmq_vm_identity id;
		struct kvmq_vm_aperture ap;
		struct kvmq_vm_queues q;
		struct kvmq_vm_grant g;
		struct kvmq_vm_post p;
		struct kvmq_vm_rings r;
		struct kvmq_vm_notify n;
		struct kvmq_vm_stats st;
		struct kvmq_info info;
	} *u = (void *)buf;
	uint32_t size;

	switch (cmd) {
	case KVMQ_ATTACH_VM:
		size = sizeof(u->at);
		u->at.vm_fd = below(s, 4) ? f->vms[below(s, NR_VMS)].vm->fd :
			      any_fd(f, s);
		break;
	case KVMQ_VM_SET_IDENTITY:
		size = sizeof(u->id);
		u->id.id = below(s, 4) ? 1 + below(s, 8) : any_val(f, s);
		u->id.group_fd = below(s, 4) ? f->group : any_fd(f, s);
		break;
	case KVMQ_VM_SET_APERTURE:
		size = sizeof(u->ap);
		u->ap.gpa = KVMQ_TEST_AP_GPA;
		u->ap.length = (1 + below(s, 8)) * SZ_2M;
		u->ap.quota = below(s, u->ap.length / PG + 1) * PG;
		break;
	case KVMQ_VM_SET_QUEUES:
		size = sizeof(u->q);
		u->q.nr_queues = 1 + below(s, 4);
		u->q.nr_vcpu_queues = 1 + below(s, 4);
		u->q.depth = 1 + below(s, 16);
		u->q.page_limit = below(s, 2) ? 0 : below(s, 64) * PG;
		u->q.mem_limit = below(s, 2) ? 0 : KVMQ_MEM_LIMIT_MIN;
		break;
	case KVMQ_VM_GRANT:
	case KVMQ_VM_REVOKE:
		size = sizeof(u->g);
		u->g.queue = below(s, 2) ? below(s, 3) :
			     KVMQ_QUEUE_VCPU(below(s, 3));
		u->g.sender = 1 + below(s, 8);
		break;
	case KVMQ_VM_POST:
		size = sizeof(u->p);
		u->p.queue = below(s, 2) ? below(s, 3) :
			     KVMQ_QUEUE_VCPU(below(s, 3));
		u->p.len = below(s, 2) ? below(s, 64) : below(s, 2100);
		u->p.data = (uintptr_t)buf + below(s, 2) * (PG / 2);
		break;
	case KVMQ_VM_SET_RINGS:
		size = sizeof(u->r);
		u->r.rx_entries = pow2(s);
		u->r.sq_entries = pow2(s);
		u->r.lazy_delay_us = below(s, 2) ? 0 : 100 + below(s, 1000);
		break;
	case KVMQ_VM_SET_NOTIFY:
		size = sizeof(u->n);
		u->n.queue = below(s, 4) ? below(s, 3) : KVMQ_NOTIFY_SPACE;
		u->n.fd = below(s, 2) ? f->efd : below(s, 2) ? -1 :
			  any_fd(f, s);
		break;
	case KVMQ_VM_GET_STATS:
		size = sizeof(u->st);
		break;
	case KVMQ_CREATE_GROUP:
		size = 8;
		break;
	default:
		size = sizeof(u->ap);	/* the largest of the rest */
		break;
	}
	/* A mutation: a field anything, or a size that is not the kernel's. */
	if (!below(s, 4)) {
		uint32_t *w = (uint32_t *)buf + 2 + below(s, size / 4);

		*w = any_val(f, s);
	}
	if (!below(s, 8))
		size = below(s, 2) ? size + 8 * below(s, 4) : below(s, size);
	return size;
}

/*
 * Fill @buf (a page, followed by an unmapped one) as the argument of
 * @cmd: size, flags, fields.  Returns the pointer to pass.
 */
static void *any_arg(struct fuzz *f, uint64_t *s, unsigned int cmd,
		     uint8_t *buf)
{
	uint32_t *w = (uint32_t *)buf;
	int i, n;

	memset(buf, 0, PG);
	if (below(s, 8)) {
		w[0] = plausible(f, s, cmd, buf);
		w[1] = below(s, 16) ? 0 : 1U << below(s, 32);
	} else {
		/* Anything: most fields 0, some edge values. */
		n = 2 + below(s, 40);
		for (i = 2; i < n; i++)
			if (!below(s, 3))
				w[i] = any_val(f, s);
		w[0] = below(s, 2) ? below(s, 300) : rnd(s);
		w[1] = below(s, 4) ? 0 : rnd(s);
	}
	switch (below(s, 40)) {
	case 0: return NULL;
	case 1: return (void *)-4096L;
	case 2: return buf + PG - below(s, 16);	/* runs into the hole */
	default: return buf;
	}
}

/* An ioctl number: kvmq's, or one next to them. */
static unsigned int any_cmd(uint64_t *s, bool *known)
{
	unsigned int cmd = kvmq_cmds[below(s, ARRAY_SIZE(kvmq_cmds))];

	*known = true;
	switch (below(s, 8)) {
	case 0:		/* another number, another direction, a size */
		*known = false;
		return _IOC(below(s, 4), KVMQ_TYPE + below(s, 3) - 1,
			    below(s, 0x40), below(s, 512));
	case 1:		/* kvmq's number with a direction and a size */
		*known = false;
		return cmd | _IOC(below(s, 4), 0, 0, below(s, 512));
	default:
		return cmd;
	}
}

/* A file an ioctl created: keep it as a slot's attachment, or close it. */
static void adopt(struct fuzz *f, unsigned int cmd, long ret, uint64_t *s)
{
	struct slot *sl = &f->vms[below(s, NR_VMS)];

	if (ret < 0 || (cmd != KVMQ_ATTACH_VM && cmd != KVMQ_CREATE_GROUP))
		return;
	pthread_mutex_lock(&sl->lock);
	if (cmd == KVMQ_ATTACH_VM && sl->vmq < 0) {
		sl->vmq = ret;
		ret = -1;
	}
	pthread_mutex_unlock(&sl->lock);
	if (ret >= 0)
		close(ret);
}

static void do_ioctl(struct fuzz *f, uint64_t *s, uint8_t *buf)
{
	bool known;
	unsigned int cmd = any_cmd(s, &known);
	void *arg = any_arg(f, s, cmd, buf);
	int fd;
	long ret;

	/* kvmq's files get anything; the others only kvmq's numbers. */
	fd = any_fd(f, s);
	if (!known && fd != f->dev && fd != f->group) {
		struct slot *sl = &f->vms[below(s, NR_VMS)];

		fd = READ_ONCE(sl->vmq);
	}
	ret = ioctl(fd, cmd, arg);
	bump(f, C_IOCTL);
	if (!known)
		bump(f, C_BADIOCTL);
	if (ret >= 0)
		bump(f, C_OK);
	adopt(f, cmd, ret, s);
}

/* Touch @len bytes at @p through the kernel: faults end in EFAULT. */
static void touch(struct fuzz *f, uint8_t *p, uint64_t len)
{
	if (read(f->zero, p, len) < 0)
		TEST_ASSERT(errno == EFAULT, "read into a mapping, errno %d",
			    errno);
}

static void do_mapping(struct fuzz *f, uint64_t *s, struct slot *sl)
{
	static const int advice[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
		MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK,
		MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE,
		MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK,
		MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
		MADV_POPULATE_WRITE, 25 /* MADV_COLLAPSE */,
	};
	struct kvmq_vm_aperture ap = { .size = sizeof(ap) };
	uint64_t off, len;
	uint8_t *p;
	int vmq;

	pthread_mutex_lock(&sl->lock);
	vmq = sl->vmq;
	switch (below(s, 6)) {
	case 0:		/* map the aperture, or part of it */
		if (sl->map || vmq < 0 ||
		    ioctl(vmq, KVMQ_VM_GET_APERTURE, &ap))
			break;
		len = below(s, 4) ? ap.length : (below(s, 8) + 1) * PG;
		if (len > (64ULL << 20))
			len = 64ULL << 20;
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vmq, 0);
		bump(f, C_MMAP);
		if (p != MAP_FAILED) {
			sl->map = p;
			sl->map_len = len;
		}
		break;
	case 1:		/* map the ring area: its length is not asked for */
		if (sl->rings || vmq < 0)
			break;
		len = (below(s, 64) + 1) * PG;
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, vmq,
			 KVMQ_RINGS_MMAP_OFFSET);
		bump(f, C_MMAP);
		if (p != MAP_FAILED) {
			sl->rings = p;
			sl->rings_len = len;
		}
		break;
	case 2:		/* unmap, all or part */
		if (sl->map) {
			munmap(sl->map, sl->map_len);
			sl->map = NULL;
			bump(f, C_MUNMAP);
		}
		if (sl->rings && below(s, 2)) {
			munmap(sl->rings, sl->rings_len);
			sl->rings = NULL;
			bump(f, C_MUNMAP);
		}
		break;
	case 3:
	case 4:		/* touch some pages */
		if (!sl->map)
			break;
		off = below(s, sl->map_len / PG) * PG;
		len = (below(s, 4) + 1) * PG;
		if (len > sl->map_len - off)
			len = sl->map_len - off;
		touch(f, sl->map + off, len);
		if (sl->rings)
			touch(f, sl->rings, PG);
		bump(f, C_TOUCH);
		break;
	default:	/* madvise */
		if (!sl->map)
			break;
		off = below(s, sl->map_len / PG) * PG;
		madvise(sl->map + off, below(s, 2) ? PG : sl->map_len - off,
			advice[below(s, ARRAY_SIZE(advice))]);
		bump(f, C_MADVISE);
		break;
	}
	pthread_mutex_unlock(&sl->lock);
}

/* Attach a slot's VM, or detach it (close its kvmq file). */
static void do_attach(struct fuzz *f, uint64_t *s, struct slot *sl)
{
	int vmq = -1;

	pthread_mutex_lock(&sl->lock);
	if (sl->vmq < 0) {
		sl->vmq = __kvmq_attach(f->dev, sl->vm->fd);
		bump(f, C_ATTACH);
		/* EEXIST: a mapping still holds the old attachment. */
		TEST_ASSERT(sl->vmq >= 0 || errno == EEXIST,
			    "attach, errno %d", errno);
	} else if (below(s, 2)) {
		vmq = sl->vmq;
		sl->vmq = -1;
		bump(f, C_DETACH);
	}
	pthread_mutex_unlock(&sl->lock);
	if (vmq >= 0)
		close(vmq);
}

struct worker {
	struct fuzz *f;
	uint64_t seed;
};

static void *worker(void *data)
{
	struct worker *w = data;
	struct fuzz *f = w->f;
	uint64_t s = w->seed;
	uint8_t *buf = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(buf != MAP_FAILED, "mmap");
	/* The page after the argument faults. */
	munmap(buf + PG, PG);
	while (__atomic_fetch_sub(&f->left, 1, __ATOMIC_RELAXED) > 0) {
		struct slot *sl = &f->vms[below(&s, NR_VMS)];

		if (!below(&s, 16))
			do_attach(f, &s, sl);
		if (!below(&s, 4))
			do_mapping(f, &s, sl);
		do_ioctl(f, &s, buf);
	}
	munmap(buf, PG);
	return NULL;
}

FIXTURE(fz) {
	struct fuzz f;
};

FIXTURE_SETUP(fz)
{
	struct fuzz *f = &self->f;
	int i;

	memset(f, 0, sizeof(*f));
	ASSERT_EQ(0, kvmq_pool_settled());
	f->dev = kvmq_open_dev();
	f->group = kvmq_create_group(f->dev);
	f->zero = open("/dev/zero", O_RDONLY);
	f->null = open("/dev/null", O_RDWR);
	f->efd = eventfd(0, 0);
	ASSERT_EQ(0, pipe(f->pipe));
	for (i = 0; i < NR_VMS; i++) {
		struct slot *sl = &f->vms[i];

		pthread_mutex_init(&sl->lock, NULL);
		if (i)
			sl->vm = vm_create_barebones();
		else
			sl->vm = vm_create_with_one_vcpu(&f->vcpu, NULL);
		sl->vmq = kvmq_attach(f->dev, sl->vm);
	}
	f->seed = fuzz_seed();
	f->ioctls = env_count("KVMQ_FUZZ_IOCTLS", 100000);
	printf("# seed %#lx (KVMQ_FUZZ_SEED), %lu ioctls (KVMQ_FUZZ_IOCTLS)\n",
	       f->seed, f->ioctls);
}

FIXTURE_TEARDOWN(fz)
{
	struct fuzz *f = &self->f;
	int i;

	for (i = 0; i < NR_VMS; i++)
		kvm_vm_free(f->vms[i].vm);
	close(f->pipe[0]);
	close(f->pipe[1]);
	close(f->efd);
	close(f->null);
	close(f->zero);
	close(f->group);
	close(f->dev);
	/* Every kvmq file is closed: every page went back. */
	EXPECT_EQ(0, kvmq_pool_pages());
}

/*
 * What kvmq holds for an attached VM is within what its VMM allowed: the
 * quota for pages held and queued, the memory limit for queued messages;
 * the pool is at least their sum (detached VMs still mapped hold more).
 */
static void check_bounds(struct fuzz *f)
{
	struct kvmq_vm_aperture ap;
	struct kvmq_vm_queues q;
	uint64_t sum = 0;
	int i;

	for (i = 0; i < NR_VMS; i++) {
		int vmq = f->vms[i].vmq;

		if (vmq < 0)
			continue;
		memset(&ap, 0, sizeof(ap));
		ap.size = sizeof(ap);
		if (!ioctl(vmq, KVMQ_VM_GET_APERTURE, &ap)) {
			TEST_ASSERT(ap.held + ap.queued <= ap.quota,
				    "VM %d: held %llu + queued %llu > quota %llu",
				    i, ap.held, ap.queued, ap.quota);
			sum += ap.held + ap.queued;
		}
		memset(&q, 0, sizeof(q));
		q.size = sizeof(q);
		if (!ioctl(vmq, KVMQ_VM_GET_QUEUES, &q))
			TEST_ASSERT(q.mem <= q.mem_limit,
				    "VM %d: mem %llu > limit %llu", i, q.mem,
				    q.mem_limit);
	}
	TEST_ASSERT(kvmq_pool_pages() * PG >= sum, "pool %lu pages < %lu bytes",
		    kvmq_pool_pages(), sum);
}

TEST_F_TIMEOUT(fz, ioctls, 3600)
{
	struct fuzz *f = &self->f;
	struct worker w[NR_THREADS];
	pthread_t t[NR_THREADS];
	uint64_t s;
	int i;

	f->left = f->ioctls;
	for (i = 0; i < NR_THREADS; i++) {
		s = f->seed + i * 0x9e3779b97f4a7c15ULL;
		w[i] = (struct worker){ f, s ? s : 1 };
		pthread_create(&t[i], NULL, worker, &w[i]);
	}
	for (i = 0; i < NR_THREADS; i++)
		pthread_join(t[i], NULL);

	check_bounds(f);
	for (i = 0; i < C_NR; i++)
		printf("# %8lu %s\n", f->count[i], c_names[i]);

	/* Unmap and detach everything: kvmq holds nothing any more. */
	for (i = 0; i < NR_VMS; i++) {
		struct slot *sl = &f->vms[i];

		if (sl->map)
			munmap(sl->map, sl->map_len);
		if (sl->rings)
			munmap(sl->rings, sl->rings_len);
		if (sl->vmq >= 0)
			close(sl->vmq);
		sl->vmq = -1;
	}
	EXPECT_EQ(0, kvmq_pool_pages());
}

KVMQ_TEST_HARNESS_MAIN
