// SPDX-License-Identifier: GPL-2.0
/*
 * Apertures: configuration, mmap, memory shared by guest and VMM, quota,
 * 2 MiB mappings, and the pool returning to zero.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

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
	ASSERT_EQ(0, kvmq_pool_pages());
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

/* A VMM killed while its guest uses the aperture gives every page back. */
TEST(vmm_killed)
{
	int i, pipefd[2], status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, kvmq_pool_pages());
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
