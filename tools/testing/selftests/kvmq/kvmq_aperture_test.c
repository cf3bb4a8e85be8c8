// SPDX-License-Identifier: GPL-2.0
/*
 * Apertures: configuration, mmap, memory shared by guest and VMM, quota,
 * 2 MiB mappings, no access from other processes, and the pool returning
 * to zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "kvm_util.h"
#include "processor.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define AP_GPA		0x40000000ULL
#define AP_LEN		(4ULL << 20)
#define AP_SLOT		10
#define SZ_2M		(2ULL << 20)
#define PG		4096ULL

FIXTURE(ap) {
	int dev, vmq;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	uint8_t *hva;
};

FIXTURE_SETUP(ap)
{
	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->vm = vm_create_with_one_vcpu(&self->vcpu, NULL);
	self->vmq = kvmq_attach(self->dev, self->vm);
	self->hva = MAP_FAILED;
}

FIXTURE_TEARDOWN(ap)
{
	if (self->hva != MAP_FAILED)
		munmap(self->hva, AP_LEN);
	kvm_vm_free(self->vm);
	close(self->vmq);
	close(self->dev);
	/* Everything is closed: every page went back. */
	EXPECT_EQ(0, kvmq_pool_pages());
}

/* Set up a @quota byte aperture, map it, and give it to the guest. */
static void ap_map(FIXTURE_DATA(ap) *self, uint64_t quota)
{
	kvmq_set_aperture(self->vmq, AP_GPA, AP_LEN, quota);
	self->hva = mmap(NULL, AP_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
			 self->vmq, 0);
	TEST_ASSERT(self->hva != MAP_FAILED, "mmap failed, errno %d", errno);
	/* kvmq aligns the mapping so that KVM can use 2 MiB pages. */
	TEST_ASSERT(!((uintptr_t)self->hva & (SZ_2M - 1)),
		    "aperture mapped at %p, not 2 MiB aligned", self->hva);
	vm_set_user_memory_region(self->vm, AP_SLOT, 0, AP_GPA, AP_LEN,
				  self->hva);
	virt_map_level(self->vm, AP_GPA, AP_GPA, AP_LEN, PG_LEVEL_2M);
}

TEST_F(ap, set_get)
{
	struct kvmq_vm_aperture cfg = { .size = sizeof(cfg) };

	EXPECT_EQ(-ENODEV, kvmq_ioctl_err(self->vmq, KVMQ_VM_GET_APERTURE, &cfg));
	kvmq_set_aperture(self->vmq, AP_GPA, AP_LEN, 64 * PG);
	ASSERT_EQ(0, kvmq_ioctl_err(self->vmq, KVMQ_VM_GET_APERTURE, &cfg));
	EXPECT_EQ(AP_GPA, cfg.gpa);
	EXPECT_EQ(AP_LEN, cfg.length);
	EXPECT_EQ(64 * PG, cfg.quota);
	EXPECT_EQ(0, cfg.held);

	/* Set once. */
	EXPECT_EQ(-1, __kvmq_set_aperture(self->vmq, AP_GPA, AP_LEN, 0));
	EXPECT_EQ(EBUSY, errno);
}

TEST_F(ap, set_bad_args)
{
	struct kvmq_vm_aperture cfg = {
		.size = sizeof(cfg), .gpa = AP_GPA, .length = AP_LEN,
	};
	static const struct { uint64_t gpa, len, quota; } bad[] = {
		{ AP_GPA + PG, AP_LEN, 0 },		/* gpa misaligned */
		{ AP_GPA, AP_LEN + PG, 0 },		/* length misaligned */
		{ AP_GPA, 0, 0 },			/* empty */
		{ AP_GPA, KVMQ_APERTURE_MAX + SZ_2M, 0 }, /* too large */
		{ -SZ_2M, 2 * SZ_2M, 0 },		/* wraps */
		{ AP_GPA, AP_LEN, 100 },		/* quota misaligned */
		{ AP_GPA, AP_LEN, AP_LEN + PG },	/* quota > length */
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		EXPECT_EQ(-1, __kvmq_set_aperture(self->vmq, bad[i].gpa,
						  bad[i].len, bad[i].quota));
		EXPECT_EQ(EINVAL, errno);
	}

	cfg.held = PG;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->vmq, KVMQ_VM_SET_APERTURE, &cfg));
	cfg.held = 0;
	cfg.queued = PG;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->vmq, KVMQ_VM_SET_APERTURE, &cfg));
	cfg.queued = 0;
	cfg.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(self->vmq, KVMQ_VM_SET_APERTURE, &cfg));
	cfg.flags = 0;
	cfg.size = offsetof(struct kvmq_vm_aperture, held);
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->vmq, KVMQ_VM_SET_APERTURE, &cfg));
	cfg.size = sizeof(cfg);

	/* Nothing above configured an aperture. */
	EXPECT_EQ(-ENODEV, kvmq_ioctl_err(self->vmq, KVMQ_VM_GET_APERTURE, &cfg));
}

TEST_F(ap, mmap_errors)
{
	int prot = PROT_READ | PROT_WRITE, status;
	void *p;
	pid_t pid;

	p = mmap(NULL, AP_LEN, prot, MAP_SHARED, self->vmq, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENODEV, errno);

	kvmq_set_aperture(self->vmq, AP_GPA, AP_LEN, AP_LEN);
	p = mmap(NULL, AP_LEN, prot, MAP_PRIVATE, self->vmq, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, AP_LEN + PG, prot, MAP_SHARED, self->vmq, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, PG, prot, MAP_SHARED, self->vmq, AP_LEN);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 2 * PG, prot, MAP_SHARED, self->vmq, AP_LEN - PG);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);

	/* A part of the aperture is fine. */
	p = mmap(NULL, PG, prot, MAP_SHARED, self->vmq, AP_LEN - PG);
	ASSERT_NE(MAP_FAILED, p);
	((uint8_t *)p)[0] = 1;

	/* Another process can neither map it nor inherit the mapping. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (mmap(NULL, PG, prot, MAP_SHARED, self->vmq, 0) !=
		    MAP_FAILED || errno != EIO)
			_exit(1);
		/* Not inherited: this faults. */
		signal(SIGSEGV, SIG_DFL);
		(void)*(volatile uint8_t *)p;
		_exit(2);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));

	EXPECT_EQ(PG, kvmq_aperture_held(self->vmq));
	munmap(p, PG);
}

static void guest_share(uint64_t npages)
{
	uint64_t i, *q;

	for (i = 0; i < npages; i++) {
		q = (uint64_t *)(AP_GPA + i * PG);
		q[0] = AP_GPA + i * PG;
	}
	GUEST_SYNC(1);
	for (i = 0; i < npages; i++) {
		q = (uint64_t *)(AP_GPA + i * PG);
		GUEST_ASSERT_EQ(q[1], ~(AP_GPA + i * PG));
	}
	GUEST_DONE();
}

/* The guest and the VMM see the same memory, both ways. */
TEST_F(ap, guest_vmm_share)
{
	const uint64_t npages = AP_LEN / PG;
	struct ucall uc;
	uint64_t i, *q;

	ap_map(self, AP_LEN);
	vcpu_arch_set_entry_point(self->vcpu, guest_share);
	vcpu_args_set(self->vcpu, 1, npages);

	ASSERT_EQ(UCALL_SYNC, kvmq_run(self->vcpu, &uc));
	for (i = 0; i < npages; i++) {
		q = (uint64_t *)(self->hva + i * PG);
		ASSERT_EQ(AP_GPA + i * PG, q[0]);
		q[1] = ~(AP_GPA + i * PG);
	}
	ASSERT_EQ(UCALL_DONE, kvmq_run(self->vcpu, &uc));

	EXPECT_EQ(AP_LEN, kvmq_aperture_held(self->vmq));
	EXPECT_EQ(npages, kvmq_pool_pages());
}

static void guest_touch(uint64_t npages)
{
	uint64_t i;

	for (i = 0; i < npages; i++)
		*(volatile uint64_t *)(AP_GPA + i * PG) = i;
	GUEST_DONE();
}

static sigjmp_buf sigbus_jmp;

static void on_sigbus(int sig)
{
	siglongjmp(sigbus_jmp, 1);
}

/* Write to @p; return whether that raised SIGBUS. */
static bool write_sigbus(volatile uint64_t *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus }, old;
	volatile bool sigbus = true;	/* survives siglongjmp() */

	TEST_ASSERT(!sigaction(SIGBUS, &sa, &old), "sigaction");
	if (!sigsetjmp(sigbus_jmp, 1)) {
		*p = 1;
		sigbus = false;
	}
	TEST_ASSERT(!sigaction(SIGBUS, &old, NULL), "sigaction");
	return sigbus;
}

/* Past its quota, a guest access fails KVM_RUN and the VMM gets SIGBUS. */
TEST_F(ap, quota)
{
	ap_map(self, 16 * PG);
	vcpu_arch_set_entry_point(self->vcpu, guest_touch);
	vcpu_args_set(self->vcpu, 1, 17);
	EXPECT_EQ(-1, _vcpu_run(self->vcpu));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(16 * PG, kvmq_aperture_held(self->vmq));

	/* What the guest wrote within its quota is there for the VMM. */
	EXPECT_EQ(15, *(uint64_t *)(self->hva + 15 * PG));
	EXPECT_FALSE(write_sigbus((uint64_t *)(self->hva + 3 * PG)));

	EXPECT_TRUE(write_sigbus((uint64_t *)(self->hva + 20 * PG)));
	EXPECT_EQ(16 * PG, kvmq_aperture_held(self->vmq));
	EXPECT_EQ(16, kvmq_pool_pages());
}

/*
 * A naturally aligned 2 MiB range is held as one block and mapped with one
 * PMD, so KVM maps it at 2 MiB (the guest maps it at 2 MiB too, for the
 * shadow-paging lane).
 */
TEST_F(ap, huge_2m)
{
	struct ucall uc;

	ap_map(self, AP_LEN);
	vcpu_arch_set_entry_point(self->vcpu, guest_touch);
	vcpu_args_set(self->vcpu, 1, 1);
	ASSERT_EQ(UCALL_DONE, kvmq_run(self->vcpu, &uc));
	EXPECT_EQ(SZ_2M, kvmq_aperture_held(self->vmq));
	EXPECT_LE(1, vm_get_stat(self->vm, "pages_2m"));
}

/* Below its quota for a block, the aperture falls back to 4 KiB pages. */
TEST_F(ap, small_quota_4k)
{
	struct ucall uc;

	ap_map(self, 64 * PG);
	vcpu_arch_set_entry_point(self->vcpu, guest_touch);
	vcpu_args_set(self->vcpu, 1, 64);
	ASSERT_EQ(UCALL_DONE, kvmq_run(self->vcpu, &uc));
	EXPECT_EQ(64 * PG, kvmq_aperture_held(self->vmq));
	EXPECT_EQ(0, vm_get_stat(self->vm, "pages_2m"));
}

/* Whether the VMA at @addr has each flag of /proc/PID/smaps in @want. */
static bool vma_has_flags(void *addr, const char * const *want)
{
	char line[512], start[32];
	bool found = false, ok = true;
	FILE *f = fopen("/proc/self/smaps", "r");

	TEST_ASSERT(f, "/proc/self/smaps");
	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, start, strlen(start)))
			found = true;
		else if (found && !strncmp(line, "VmFlags:", 8))
			break;
	}
	fclose(f);
	TEST_ASSERT(found, "no VMA at %p", addr);
	for (; *want; want++)
		ok &= !!strstr(line, *want);
	return ok;
}

/*
 * madvise(MADV_DOFORK) cannot undo VM_DONTCOPY (the VMA is VM_IO), so a
 * child never has the mapping.
 */
TEST_F(ap, no_dofork)
{
	static const char * const flags[] = {
		" io ", " pf ", " dc ", " de ", " dd ", NULL
	};
	int status;
	pid_t pid;

	ap_map(self, 16 * PG);
	EXPECT_TRUE(vma_has_flags(self->hva, flags));
	*(volatile uint64_t *)self->hva = 0x1234;

	EXPECT_EQ(-1, madvise(self->hva, AP_LEN, MADV_DOFORK));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, madvise(self->hva + PG, PG, MADV_DOFORK));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(vma_has_flags(self->hva, flags));

	/*
	 * Not inherited: SIGSEGV.  The page is present in the VMM, and fork()
	 * copies the page table entries of a PFNMAP mapping it copies, so
	 * an inherited mapping would reach the page without a fault.
	 */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		signal(SIGSEGV, SIG_DFL);
		*(volatile uint64_t *)self->hva = 0x5678;
		_exit(1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGSEGV, WTERMSIG(status));

	EXPECT_EQ(0x1234, *(volatile uint64_t *)self->hva);
	EXPECT_EQ(PG, kvmq_aperture_held(self->vmq));
}

/* Ways of another process to reach one word of the VMM's memory. */
enum {
	VIA_READV, VIA_WRITEV, VIA_MEM_READ, VIA_MEM_WRITE, VIA_PEEK, VIA_POKE,
	NR_VIA
};

static const struct {
	const char *name;
	bool read;
	int err;		/* on an aperture address */
} via[NR_VIA] = {
	[VIA_READV] = { "process_vm_readv", true, EFAULT },
	[VIA_WRITEV] = { "process_vm_writev", false, EFAULT },
	[VIA_MEM_READ] = { "pread /proc/PID/mem", true, EIO },
	[VIA_MEM_WRITE] = { "pwrite /proc/PID/mem", false, EIO },
	[VIA_PEEK] = { "PTRACE_PEEKDATA", true, EIO },
	[VIA_POKE] = { "PTRACE_POKEDATA", false, EIO },
};

/* What each way is tried on. */
enum { AT_PRESENT, AT_ABSENT, AT_ORDINARY, NR_AT };

static const char * const at_name[NR_AT] = {
	[AT_PRESENT] = "present aperture page",
	[AT_ABSENT] = "absent aperture page",
	[AT_ORDINARY] = "ordinary memory",
};

/* 0 if @ret is @want, else errno (-1 for a short transfer). */
static int via_result(long ret, long want)
{
	return ret == want ? 0 : errno ? errno : -1;
}

/* Read or write the word at @addr of tracee @pid through @i. */
static int via_access(int i, pid_t pid, int mem, uint64_t addr,
		      uint64_t *val)
{
	struct iovec local = { val, sizeof(*val) };
	struct iovec remote = { (void *)addr, sizeof(*val) };
	long word;

	errno = 0;
	switch (i) {
	case VIA_READV:
		return via_result(process_vm_readv(pid, &local, 1, &remote, 1, 0),
				  sizeof(*val));
	case VIA_WRITEV:
		return via_result(process_vm_writev(pid, &local, 1, &remote, 1, 0),
				  sizeof(*val));
	case VIA_MEM_READ:
		return via_result(pread(mem, val, sizeof(*val), addr),
				  sizeof(*val));
	case VIA_MEM_WRITE:
		return via_result(pwrite(mem, val, sizeof(*val), addr),
				  sizeof(*val));
	case VIA_PEEK:
		word = ptrace(PTRACE_PEEKDATA, pid, addr, NULL);
		if (errno)
			return errno;
		*val = word;
		return 0;
	case VIA_POKE:
		return via_result(ptrace(PTRACE_POKEDATA, pid, addr, *val), 0);
	}
	return -1;
}

#define AP_WORD		0xa9e7000000000001ULL
#define CTL_OLD		0x5eed0000ULL
#define CTL_NEW		0x5eed0100ULL

/* Words of the VMM's ordinary memory, one per way: each must reach its own. */
static volatile uint64_t ctl[NR_VIA];

/*
 * In a child of the VMM: stop the VMM under ptrace, then try each way on
 * each target.  @res gets the errno of each attempt, or -2 for a read of
 * ordinary memory that returned the wrong word.
 */
static void other_mm_child(pid_t vmm, uint8_t *hva, int res[NR_AT][NR_VIA])
{
	uint64_t addr[NR_AT] = {
		[AT_PRESENT] = (uintptr_t)hva,
		[AT_ABSENT] = (uintptr_t)(hva + PG),
	};
	char path[64];
	uint64_t val;
	int t, i, mem, status;

	if (ptrace(PTRACE_SEIZE, vmm, NULL, NULL) ||
	    ptrace(PTRACE_INTERRUPT, vmm, NULL, NULL) ||
	    waitpid(vmm, &status, __WALL) != vmm || !WIFSTOPPED(status))
		_exit(10);
	snprintf(path, sizeof(path), "/proc/%d/mem", vmm);
	mem = open(path, O_RDWR);
	if (mem < 0)
		_exit(11);

	for (t = 0; t < NR_AT; t++) {
		for (i = 0; i < NR_VIA; i++) {
			if (t == AT_ORDINARY)
				addr[t] = (uintptr_t)&ctl[i];
			val = CTL_NEW + i;
			res[t][i] = via_access(i, vmm, mem, addr[t], &val);
			if (t == AT_ORDINARY && !res[t][i] && via[i].read &&
			    val != CTL_OLD + i)
				res[t][i] = -2;
		}
	}
	close(mem);
	if (ptrace(PTRACE_DETACH, vmm, NULL, NULL))
		_exit(12);
}

/*
 * Another process, even the VMM's tracer, reaches no aperture page:
 * process_vm_readv/writev fail with EFAULT, /proc/PID/mem and ptrace
 * PEEKDATA/POKEDATA with EIO, on present and absent pages alike, and
 * nothing is allocated on the guest's quota.  The same ways reach the
 * VMM's ordinary memory.
 */
TEST_F(ap, other_mm_access)
{
	int t, i, want, res[NR_AT][NR_VIA], pipefd[2], status;
	pid_t pid;

	ap_map(self, 16 * PG);
	*(volatile uint64_t *)self->hva = AP_WORD;
	for (i = 0; i < NR_VIA; i++)
		ctl[i] = CTL_OLD + i;

	/* Only needed for Yama without CAP_SYS_PTRACE. */
	(void)prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(pipefd[0]);
		other_mm_child(getppid(), self->hva, res);
		_exit(write(pipefd[1], res, sizeof(res)) == sizeof(res) ?
		      0 : 13);
	}
	close(pipefd[1]);
	/* Stopped under ptrace meanwhile; the read restarts. */
	EXPECT_EQ(sizeof(res), read(pipefd[0], res, sizeof(res)));
	close(pipefd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	for (t = 0; t < NR_AT; t++) {
		for (i = 0; i < NR_VIA; i++) {
			want = t == AT_ORDINARY ? 0 : via[i].err;
			if (res[t][i] != want)
				ksft_print_msg("%s, %s: %d, not %d\n", via[i].name,
					       at_name[t], res[t][i], want);
			EXPECT_EQ(want, res[t][i]);
		}
	}
	/* Each write reached its word of ordinary memory, no read changed one. */
	for (i = 0; i < NR_VIA; i++)
		EXPECT_EQ(via[i].read ? CTL_OLD + i : CTL_NEW + i, ctl[i]);

	/* Nothing written, nothing faulted in on the guest's quota. */
	EXPECT_EQ(AP_WORD, *(volatile uint64_t *)self->hva);
	EXPECT_EQ(PG, kvmq_aperture_held(self->vmq));
	EXPECT_EQ(1, kvmq_pool_pages());
}

/*
 * mremap() can neither grow nor duplicate the mapping, nor leave it behind
 * (MREMAP_DONTUNMAP); moving it whole keeps the pages, which the guest
 * sees again once the memslot follows.
 */
TEST_F(ap, remap)
{
	const uint64_t npages = AP_LEN / PG;
	uint8_t *res, *dst, *old;
	struct ucall uc;
	uint64_t i, *q;

	ap_map(self, AP_LEN);
	vcpu_arch_set_entry_point(self->vcpu, guest_share);
	vcpu_args_set(self->vcpu, 1, npages);
	ASSERT_EQ(UCALL_SYNC, kvmq_run(self->vcpu, &uc));
	ASSERT_EQ(AP_LEN, kvmq_aperture_held(self->vmq));

	EXPECT_EQ(MAP_FAILED, mremap(self->hva, AP_LEN, AP_LEN + PG, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(MAP_FAILED, mremap(self->hva, PG, 2 * PG, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(MAP_FAILED, mremap(self->hva, AP_LEN, 2 * AP_LEN,
				     MREMAP_MAYMOVE));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(MAP_FAILED, mremap(self->hva, 0, PG, MREMAP_MAYMOVE));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(MAP_FAILED, mremap(self->hva, AP_LEN, AP_LEN,
				     MREMAP_MAYMOVE | MREMAP_DONTUNMAP));
	EXPECT_EQ(EINVAL, errno);

	/* Move it whole to a 2 MiB aligned address. */
	res = mmap(NULL, AP_LEN + SZ_2M, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	dst = (uint8_t *)(((uintptr_t)res + SZ_2M - 1) & ~(SZ_2M - 1));
	if (dst > res)
		munmap(res, dst - res);
	munmap(dst + AP_LEN, res + SZ_2M - dst);
	old = self->hva;
	ASSERT_EQ(dst, mremap(old, AP_LEN, AP_LEN,
			      MREMAP_MAYMOVE | MREMAP_FIXED, dst));
	self->hva = dst;
	EXPECT_EQ(-1, madvise(old, PG, MADV_NORMAL));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_EQ(-1, madvise(dst, AP_LEN, MADV_DOFORK));
	EXPECT_EQ(EINVAL, errno);

	for (i = 0; i < npages; i++) {
		q = (uint64_t *)(dst + i * PG);
		ASSERT_EQ(AP_GPA + i * PG, q[0]);
		q[1] = ~(AP_GPA + i * PG);
	}
	EXPECT_EQ(AP_LEN, kvmq_aperture_held(self->vmq));

	vm_set_user_memory_region(self->vm, AP_SLOT, 0, AP_GPA, 0, NULL);
	vm_set_user_memory_region(self->vm, AP_SLOT, 0, AP_GPA, AP_LEN, dst);
	ASSERT_EQ(UCALL_DONE, kvmq_run(self->vcpu, &uc));
	EXPECT_EQ(AP_LEN, kvmq_aperture_held(self->vmq));
	EXPECT_EQ(npages, kvmq_pool_pages());
}

/* A userfaultfd with @features, or -1. */
static int uffd_open(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd >= 0 && ioctl(uffd, UFFDIO_API, &api)) {
		close(uffd);
		return -1;
	}
	return uffd;
}

/* Register @len bytes at @addr in @mode and unregister: 0 or errno. */
static int uffd_register(int uffd, void *addr, uint64_t len, uint64_t mode)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = mode,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return errno;
	TEST_ASSERT(!ioctl(uffd, UFFDIO_UNREGISTER, &reg.range),
		    "UFFDIO_UNREGISTER");
	return 0;
}

/*
 * userfaultfd cannot register the mapping, in any mode, also with
 * UFFD_FEATURE_WP_ASYNC (which takes any kind of memory); an anonymous
 * mapping registers each time.
 */
TEST_F(ap, uffd)
{
	static const uint64_t features[] = { 0, UFFD_FEATURE_WP_ASYNC };
	static const uint64_t modes[] = {
		UFFDIO_REGISTER_MODE_MISSING,
		UFFDIO_REGISTER_MODE_WP,
		UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};
	int f, m, uffd;
	void *anon;

	uffd = uffd_open(0);
	if (uffd < 0)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	close(uffd);

	ap_map(self, 16 * PG);
	*(volatile uint64_t *)self->hva = 1;
	anon = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);

	for (f = 0; f < ARRAY_SIZE(features); f++) {
		uffd = uffd_open(features[f]);
		ASSERT_LE(0, uffd)
			TH_LOG("features %#llx: %s",
			       (unsigned long long)features[f], strerror(errno));
		for (m = 0; m < ARRAY_SIZE(modes); m++) {
			EXPECT_EQ(0, uffd_register(uffd, anon, PG, modes[m]));
			EXPECT_EQ(EINVAL, uffd_register(uffd, self->hva, PG,
							modes[m]));
			EXPECT_EQ(EINVAL, uffd_register(uffd, self->hva,
							AP_LEN, modes[m]));
		}
		close(uffd);
	}
	munmap(anon, PG);
	EXPECT_EQ(PG, kvmq_aperture_held(self->vmq));
}

/* A VMM killed while its guest uses the aperture gives every page back. */
TEST(vmm_killed)
{
	int i, pipefd[2], status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, kvmq_pool_settled());
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, pipe(pipefd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			FIXTURE_DATA(ap) d = { .hva = MAP_FAILED };
			struct ucall uc;

			d.dev = kvmq_open_dev();
			d.vm = vm_create_with_one_vcpu(&d.vcpu, guest_touch);
			d.vmq = kvmq_attach(d.dev, d.vm);
			ap_map(&d, AP_LEN);
			vcpu_args_set(d.vcpu, 1, AP_LEN / PG);
			TEST_ASSERT(kvmq_run(d.vcpu, &uc) == UCALL_DONE, "run");
			TEST_ASSERT(write(pipefd[1], "r", 1) == 1, "pipe");
			pause();
			_exit(1);
		}
		close(pipefd[1]);
		ASSERT_EQ(1, read(pipefd[0], &c, 1));
		close(pipefd[0]);
		EXPECT_EQ(AP_LEN / PG, kvmq_pool_pages());
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_EQ(0, kvmq_pool_pages());
	}
}

KVMQ_TEST_HARNESS_MAIN
