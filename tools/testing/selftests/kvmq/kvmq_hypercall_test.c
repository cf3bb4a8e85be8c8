// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq hypercalls: values, no exit to userspace, and KVM's behaviour kept
 * for everything that is not a kvmq hypercall of an attached VM.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm_para.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define NR_LOOPS	500
#define TEST_ID		0x2a

static uint64_t hc(uint64_t nr)
{
	return kvm_hypercall(nr, 0, 0, 0, 0);
}

/* Guest of an attached VM whose identity is @id (0: none assigned). */
static void guest_attached(uint64_t id, uint64_t loops)
{
	uint64_t i;

	for (i = 0; i < loops; i++) {
		GUEST_ASSERT_EQ(hc(KVMQ_HC_VERSION), KVMQ_ABI_VERSION);
		GUEST_ASSERT_EQ(hc(KVMQ_HC_FEATURES), KVMQ_FEATURES_ALL);
		GUEST_ASSERT_EQ(hc(KVMQ_HC_SELF_ID), id ? id : -ENOENT);
	}

	/* Unassigned numbers in kvmq's range, and just outside it. */
	GUEST_ASSERT_EQ(hc(KVMQ_HC_BASE + KVMQ_HC_COUNT - 1), -KVM_ENOSYS);
	GUEST_ASSERT_EQ(hc(KVMQ_HC_BASE + KVMQ_HC_COUNT), -KVM_ENOSYS);
	GUEST_ASSERT_EQ(hc(KVMQ_HC_BASE - 1), -KVM_ENOSYS);
	/* A 64-bit guest's number is not truncated: not a kvmq number. */
	GUEST_ASSERT_EQ(hc(KVMQ_HC_VERSION | (1ULL << 32)), -KVM_ENOSYS);
	GUEST_DONE();
}

/* Guest of a VM that is not attached: kvmq numbers are unknown to KVM. */
static void guest_unattached(void)
{
	GUEST_ASSERT_EQ(hc(KVMQ_HC_VERSION), -KVM_ENOSYS);
	GUEST_ASSERT_EQ(hc(KVMQ_HC_FEATURES), -KVM_ENOSYS);
	GUEST_ASSERT_EQ(hc(KVMQ_HC_SELF_ID), -KVM_ENOSYS);
	GUEST_DONE();
}

/* KVM's own hypercalls, and a number nobody implements. */
static void guest_kvm_hypercalls(void)
{
	GUEST_ASSERT_EQ(hc(KVM_HC_VAPIC_POLL_IRQ), 0);
	GUEST_ASSERT_EQ(kvm_hypercall(KVM_HC_SCHED_YIELD, 0, 0, 0, 0), 0);
	GUEST_ASSERT_EQ(hc(12345), -KVM_ENOSYS);
	GUEST_DONE();
}

/*
 * Bits 63:32 that 64-bit code left in the registers before switching to
 * compatibility mode: KVM and kvmq ignore them there.
 */
#define JUNK		0xdead5a5a00000000ULL
#define JUNKED(x)	(JUNK | (uint32_t)(x))

/* From compatibility mode, a3 junk too; the result sign-extended. */
static int64_t hc32(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return kvmq_hypercall_compat(nr, a0, a1, a2, JUNK);
}

/*
 * Guest of an attached VM with identity @id (positive as a signed 32-bit
 * value), queue 0 granted to itself, a struct kvmq_msg below 4 GiB: each
 * hypercall issued from compatibility mode with junk in bits 63:32 of the
 * number and the arguments behaves as the truncated call, and the same
 * values in 64-bit mode are refused.
 */
static void guest_compat(uint64_t id, uint64_t msg_gva, uint64_t msg_gpa)
{
	static const char text[] = "from compatibility mode";
	struct kvmq_msg *m = (void *)msg_gva;

	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_VERSION), JUNK, JUNK, JUNK),
			KVMQ_ABI_VERSION);
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_FEATURES), JUNK, JUNK, JUNK),
			KVMQ_FEATURES_ALL);
	/* Bit 32 of the number: a kvmq number only in 32-bit mode. */
	GUEST_ASSERT_EQ(hc32(KVMQ_HC_SELF_ID | (1ULL << 32), 0, 0, 0), id);
	GUEST_ASSERT_EQ(hc(KVMQ_HC_SELF_ID | (1ULL << 32)), -KVM_ENOSYS);
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_SELF_ID), JUNK, JUNK, JUNK), id);

	/* a0 junk: queue 0 in 32-bit mode, too large in 64-bit mode. */
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_QLEN), JUNKED(0), JUNK, JUNK), 0);
	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_QLEN, JUNKED(0), 0, 0), -ENOENT);

	memset(m, 0, sizeof(*m));
	m->kind = KVMQ_MSG_BYTES;
	m->len = sizeof(text);
	memcpy(m->data, text, sizeof(text));
	/* In 64-bit mode: no such VM, no such queue, no message there. */
	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_SEND, JUNKED(id), 0, msg_gpa), -ENOENT);
	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_SEND, id, JUNKED(0), msg_gpa), -ENOENT);
	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_SEND, id, 0, (1ULL << 32) | msg_gpa),
			-EFAULT);
	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_QLEN, 0, 0, 0), 0);
	/* In 32-bit mode a0 to a2 are 32-bit: the message is the one below. */
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_SEND), JUNKED(id), JUNKED(0),
			     JUNKED(msg_gpa)), 0);
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_QLEN), JUNKED(0), JUNK, JUNK), 1);
	GUEST_ASSERT_EQ(kvmq_hc(KVMQ_HC_QLEN, 0, 0, 0), 1);

	/* The same struct kvmq_msg layout in either mode. */
	memset(m, 0xff, sizeof(*m));
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_RECV), JUNKED(0), JUNKED(msg_gpa),
			     JUNK), 0);
	GUEST_ASSERT_EQ(m->kind, KVMQ_MSG_BYTES);
	GUEST_ASSERT_EQ(m->flags, 0);
	GUEST_ASSERT_EQ(m->sender, id);
	GUEST_ASSERT_EQ(m->nr, 0);
	GUEST_ASSERT_EQ(m->len, sizeof(text));
	GUEST_ASSERT_EQ(m->gpa, 0);
	GUEST_ASSERT(!memcmp(m->data, text, sizeof(text)));
	GUEST_ASSERT_EQ(m->data[sizeof(text)], 0);
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_RECV), JUNKED(0), JUNKED(msg_gpa),
			     JUNK), -EAGAIN);

	/*
	 * Errors are 32-bit values, 0xfffff001 to 0xffffffff, zero-extended
	 * in RAX: negative once sign-extended.
	 */
	GUEST_ASSERT_EQ(__kvmq_hypercall_compat(JUNKED(KVMQ_HC_QLEN), JUNKED(7),
						JUNK, JUNK, JUNK),
			(uint32_t)-ENOENT);
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_QLEN), JUNKED(7), JUNK, JUNK),
			-ENOENT);
	GUEST_ASSERT_EQ(__kvmq_hypercall_compat(JUNKED(KVMQ_HC_BASE +
						       KVMQ_HC_COUNT - 1),
						0, 0, 0, 0),
			(uint32_t)-KVM_ENOSYS);
	GUEST_ASSERT_EQ(hc32(JUNKED(KVMQ_HC_BASE - 1), 0, 0, 0), -KVM_ENOSYS);
	GUEST_DONE();
}

FIXTURE(hc) {
	int dev, group;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
};

FIXTURE_SETUP(hc)
{
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	self->vm = vm_create_with_one_vcpu(&self->vcpu, NULL);
}

FIXTURE_TEARDOWN(hc)
{
	kvm_vm_free(self->vm);
	close(self->group);
	close(self->dev);
}

TEST_F(hc, values)
{
	int vmq = kvmq_attach(self->dev, self->vm);

	kvmq_set_identity(vmq, self->group, TEST_ID);
	vcpu_arch_set_entry_point(self->vcpu, guest_attached);
	vcpu_args_set(self->vcpu, 2, TEST_ID, 1);
	kvmq_run_to_done(self->vcpu);
	close(vmq);
}

TEST_F(hc, no_identity)
{
	int vmq = kvmq_attach(self->dev, self->vm);

	vcpu_arch_set_entry_point(self->vcpu, guest_attached);
	vcpu_args_set(self->vcpu, 2, 0, 1);
	kvmq_run_to_done(self->vcpu);
	close(vmq);
}

/*
 * Many hypercalls, one KVM_RUN: none of them exited to userspace, and KVM
 * counted each as a hypercall and as an exit handled in the kernel.
 */
TEST_F(hc, no_userspace_exit)
{
	int vmq = kvmq_attach(self->dev, self->vm);
	uint64_t hcalls, exits, nr_hc;

	kvmq_set_identity(vmq, self->group, TEST_ID);
	vcpu_arch_set_entry_point(self->vcpu, guest_attached);
	vcpu_args_set(self->vcpu, 2, TEST_ID, NR_LOOPS);

	/* One KVM_RUN, ending in GUEST_DONE: no exit to userspace before. */
	hcalls = kvmq_vcpu_stat(self->vcpu, "hypercalls");
	exits = kvmq_vcpu_stat(self->vcpu, "exits");
	kvmq_run_to_done(self->vcpu);

	nr_hc = 3 * NR_LOOPS + 4;
	EXPECT_EQ(nr_hc, kvmq_vcpu_stat(self->vcpu, "hypercalls") - hcalls);
	EXPECT_LE(nr_hc, kvmq_vcpu_stat(self->vcpu, "exits") - exits);
	close(vmq);
}

TEST_F(hc, unattached)
{
	vcpu_arch_set_entry_point(self->vcpu, guest_unattached);
	kvmq_run_to_done(self->vcpu);
}

TEST_F(hc, detached)
{
	int vmq = kvmq_attach(self->dev, self->vm);

	kvmq_set_identity(vmq, self->group, TEST_ID);
	close(vmq);
	vcpu_arch_set_entry_point(self->vcpu, guest_unattached);
	kvmq_run_to_done(self->vcpu);
}

/* Another VM's attachment does not make this one's numbers valid. */
TEST_F(hc, other_vm_attached)
{
	struct kvm_vm *vm2 = vm_create_barebones();
	int vmq2 = kvmq_attach(self->dev, vm2);

	vcpu_arch_set_entry_point(self->vcpu, guest_unattached);
	kvmq_run_to_done(self->vcpu);
	close(vmq2);
	kvm_vm_free(vm2);
}

TEST_F(hc, kvm_hypercalls_attached)
{
	int vmq = kvmq_attach(self->dev, self->vm);

	vcpu_arch_set_entry_point(self->vcpu, guest_kvm_hypercalls);
	kvmq_run_to_done(self->vcpu);
	close(vmq);
}

TEST_F(hc, kvm_hypercalls_unattached)
{
	vcpu_arch_set_entry_point(self->vcpu, guest_kvm_hypercalls);
	kvmq_run_to_done(self->vcpu);
}

/*
 * 64-bit code switched to compatibility mode: kvmq truncates the number and
 * the arguments, KVM the result.
 */
TEST_F(hc, compat_mode)
{
	int vmq = kvmq_attach(self->dev, self->vm);
	uint64_t msg_gva = vm_vaddr_alloc_page(self->vm);
	uint64_t msg_gpa = addr_gva2gpa(self->vm, msg_gva);

	ASSERT_GT(1ULL << 32, msg_gpa);
	kvmq_set_identity(vmq, self->group, KVMQ_ID_MAX);
	kvmq_set_queues(vmq, 1, 1, 4);
	kvmq_grant(vmq, 0, KVMQ_ID_MAX);
	kvmq_compat_init(self->vm);
	vcpu_arch_set_entry_point(self->vcpu, guest_compat);
	vcpu_args_set(self->vcpu, 3, KVMQ_ID_MAX, msg_gva, msg_gpa);
	kvmq_run_to_done(self->vcpu);
	close(vmq);
}

/*
 * A new flat 32-bit protected-mode vCPU, paging off, running at @cpl, issues
 * one hypercall with number @nr and reports RAX through an OUT to port
 * 0x10 (IOPL is 3, so the OUT is allowed at any CPL).  Returns RAX.
 */
#define FLAT_CODE_GPA	0x10000ULL
#define FLAT_PORT	0x10
#define FLAT_IOPL3	(3UL << 12)

static uint64_t flat32_hypercall(struct kvm_vm *vm, uint32_t vcpu_id,
				 unsigned int cpl, uint32_t nr)
{
	static const uint8_t vmcall[] = { 0x0f, 0x01, 0xc1 };
	static const uint8_t vmmcall[] = { 0x0f, 0x01, 0xd9 };
	struct kvm_segment code = {
		.limit = 0xffffffff, .type = 0xb, .present = 1, .dpl = cpl,
		.db = 1, .s = 1, .g = 1, .selector = 0x8 | cpl,
	};
	struct kvm_segment data = code;
	struct kvm_vcpu *vcpu;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint8_t *p;

	p = addr_gpa2hva(vm, FLAT_CODE_GPA);
	*p++ = 0xb8;				/* mov $nr, %eax */
	memcpy(p, &nr, 4);
	p += 4;
	memcpy(p, host_cpu_is_amd ? vmmcall : vmcall, 3);
	p += 3;
	*p++ = 0xe7;				/* out %eax, $FLAT_PORT */
	*p++ = FLAT_PORT;

	vcpu = __vm_vcpu_add(vm, vcpu_id);
	vcpu_sregs_get(vcpu, &sregs);
	data.type = 0x3;
	data.selector = 0x10 | cpl;
	sregs.cs = code;
	sregs.ss = sregs.ds = sregs.es = sregs.fs = sregs.gs = data;
	sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs.cr4 = 0;
	sregs.efer = 0;
	vcpu_sregs_set(vcpu, &sregs);

	memset(&regs, 0, sizeof(regs));
	regs.rip = FLAT_CODE_GPA;
	regs.rflags = X86_EFLAGS_FIXED | FLAT_IOPL3;
	vcpu_regs_set(vcpu, &regs);

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	TEST_ASSERT(vcpu->run->io.port == FLAT_PORT,
		    "unexpected port 0x%x", vcpu->run->io.port);
	vcpu_regs_get(vcpu, &regs);
	return regs.rax;
}

static struct kvm_vm *flat32_vm(void)
{
	struct kvm_vm *vm = vm_create_barebones();

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, FLAT_CODE_GPA,
				    1, 1, 0);
	return vm;
}

/* CPL > 0 gets KVM's permission error, attached or not. */
TEST(cpl3)
{
	int dev = kvmq_open_dev();
	int group = kvmq_create_group(dev);
	struct kvm_vm *vm = flat32_vm();
	int vmq;

	EXPECT_EQ((uint32_t)-KVM_EPERM, flat32_hypercall(vm, 0, 3, KVMQ_HC_VERSION));
	kvm_vm_free(vm);

	vm = flat32_vm();
	vmq = kvmq_attach(dev, vm);
	kvmq_set_identity(vmq, group, TEST_ID);
	EXPECT_EQ((uint32_t)-KVM_EPERM, flat32_hypercall(vm, 0, 3, KVMQ_HC_SELF_ID));
	close(vmq);
	kvm_vm_free(vm);
	close(group);
	close(dev);
}

/* A 32-bit guest at CPL 0 reaches kvmq; the result is truncated. */
TEST(guest_32bit)
{
	int dev = kvmq_open_dev();
	int group = kvmq_create_group(dev);
	struct kvm_vm *vm = flat32_vm();
	int vmq = kvmq_attach(dev, vm);

	EXPECT_EQ(KVMQ_ABI_VERSION, flat32_hypercall(vm, 0, 0, KVMQ_HC_VERSION));
	EXPECT_EQ((uint32_t)-ENOENT, flat32_hypercall(vm, 1, 0, KVMQ_HC_SELF_ID));
	/* The largest identity is still positive as a 32-bit value. */
	kvmq_set_identity(vmq, group, KVMQ_ID_MAX);
	EXPECT_EQ(KVMQ_ID_MAX, flat32_hypercall(vm, 2, 0, KVMQ_HC_SELF_ID));
	close(vmq);
	kvm_vm_free(vm);
	close(group);
	close(dev);
}

KVMQ_TEST_HARNESS_MAIN
