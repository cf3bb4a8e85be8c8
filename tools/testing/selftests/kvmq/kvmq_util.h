/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the kvmq selftests.
 *
 * As in the KVM selftest library, __kvmq_foo() returns the raw ioctl result
 * (for negative tests) and kvmq_foo() asserts success.
 */
#ifndef SELFTEST_KVMQ_UTIL_H
#define SELFTEST_KVMQ_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/kvmq.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

#define KVMQ_DEV_PATH "/dev/kvmq"

/* Open /dev/kvmq, or skip the test if the module is not loaded. */
int kvmq_open_dev(void);

int __kvmq_attach(int dev_fd, int vm_fd);
int kvmq_attach(int dev_fd, struct kvm_vm *vm);

/* A new group's file descriptor. */
int kvmq_create_group(int dev_fd);
int __kvmq_set_identity(int vmq_fd, int group_fd, uint32_t id);
void kvmq_set_identity(int vmq_fd, int group_fd, uint32_t id);
uint32_t kvmq_get_identity(int vmq_fd);

/*
 * TEST_HARNESS_MAIN for tests that need kvmq loaded: without /dev/kvmq the
 * whole binary is one skip ("1..0 # SKIP"), never a pass.  Include
 * kselftest_harness.h first.
 */
#define KVMQ_TEST_HARNESS_MAIN						\
	int main(int argc, char **argv)					\
	{								\
		if (access(KVMQ_DEV_PATH, F_OK)) {			\
			ksft_print_header();				\
			ksft_exit_skip(KVMQ_DEV_PATH			\
				       " not found: is kvmq.ko loaded?\n"); \
		}							\
		return test_harness_run(argc, argv);			\
	}

int __kvmq_set_aperture(int vmq_fd, uint64_t gpa, uint64_t length,
			uint64_t quota);
void kvmq_set_aperture(int vmq_fd, uint64_t gpa, uint64_t length,
		       uint64_t quota);
/* KVMQ_VM_GET_APERTURE, asserted to succeed. */
struct kvmq_vm_aperture kvmq_get_aperture(int vmq_fd);
/* Bytes the VM's aperture holds. */
uint64_t kvmq_aperture_held(int vmq_fd);
/* Pages held by all apertures on the host (debugfs). */
uint64_t kvmq_pool_pages(void);
/* The same once it is 0, or after 10 s: for fixtures' setups. */
uint64_t kvmq_pool_settled(void);

/* Run @vcpu to its next ucall and return the ucall's command. */
uint64_t kvmq_run(struct kvm_vcpu *vcpu, struct ucall *uc);
/* Run @vcpu and assert that the next ucall is GUEST_DONE. */
void kvmq_run_to_done(struct kvm_vcpu *vcpu);

/* ioctl() as 0 or -errno, for compact errno assertions. */
static inline int kvmq_ioctl_err(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* Read one statistic of a vCPU from KVM's binary stats interface. */
uint64_t kvmq_vcpu_stat(struct kvm_vcpu *vcpu, const char *name);
/*
 * The same from a stats file descriptor opened before (vcpu_get_stats_fd()):
 * unlike opening one, reading it does not wait for a running vCPU.
 */
uint64_t kvmq_stats_fd_read(int fd, const char *name);

/* A host-wide kvmq counter from /sys/kernel/debug/kvmq/. */
uint64_t kvmq_debugfs_stat(const char *name);

int __kvmq_set_queues(int vmq_fd, uint32_t nr_queues, uint32_t nr_vcpu_queues,
		      uint32_t depth);
void kvmq_set_queues(int vmq_fd, uint32_t nr_queues, uint32_t nr_vcpu_queues,
		     uint32_t depth);
/* KVMQ_VM_GET_STATS, asserted to succeed. */
struct kvmq_vm_stats kvmq_get_stats(int vmq_fd);
/* KVMQ_VM_GET_QUEUES, asserted to succeed. */
struct kvmq_vm_queues kvmq_get_queues(int vmq_fd);
/* KVMQ_VM_GRANT or KVMQ_VM_REVOKE (@cmd) as 0 or -errno. */
int kvmq_grant_err(int vmq_fd, unsigned long cmd, uint32_t queue,
		   uint32_t sender);
void kvmq_grant(int vmq_fd, uint32_t queue, uint32_t sender);
/* KVMQ_VM_POST as 0 or -errno. */
int kvmq_post_err(int vmq_fd, uint32_t queue, const void *data, uint32_t len);

/*
 * A VM set up for messages: one vCPU running @guest_code, attached, named
 * @id in @group, with an aperture of @ap_len bytes (quota @quota) at
 * KVMQ_TEST_AP_GPA that the guest maps at the same virtual address (2 MiB
 * pages), one VM queue and two vCPU queues (one more than vCPUs) of depth
 * @depth (no queues if @depth is 0: the caller sets them), and a page for a
 * struct kvmq_msg at @msg_gva / @msg_gpa.  The guest's first two arguments
 * are @msg_gva and @msg_gpa.
 */
#define KVMQ_TEST_AP_GPA	0x40000000ULL
#define KVMQ_TEST_AP_SLOT	10
#define KVMQ_TEST_RING_GPA	0xc0000000ULL
#define KVMQ_TEST_RING_SLOT	11

struct kvmq_peer {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int vmq;
	uint32_t id;
	uint8_t *ap;		/* the VMM's view of the aperture */
	uint64_t ap_len;
	void *rings;		/* the VMM's view of the ring area, or NULL */
	uint64_t rings_len;
	uint64_t msg_gva, msg_gpa;
};

void kvmq_peer_create(struct kvmq_peer *p, int dev_fd, int group_fd,
		      uint32_t id, void *guest_code, uint64_t ap_len,
		      uint64_t quota, uint32_t depth);
void kvmq_peer_destroy(struct kvmq_peer *p);

/*
 * Give @p rings (KVMQ_VM_SET_RINGS with @rx_entries and @sq_entries), map
 * the area, register it at KVMQ_TEST_RING_GPA and map it in the guest at
 * the same address.  @cfg receives the layout; the VMM's view of the area
 * is returned.
 */
void *kvmq_peer_rings(struct kvmq_peer *p, uint32_t rx_entries,
		      uint32_t sq_entries, struct kvmq_vm_rings *cfg);

/*
 * Bind a new eventfd to an interrupt of @vm's vCPU 0 (APIC ID 0): an MSI
 * route on @gsi to @vector (it replaces the VM's GSI routing), KVM_IRQFD,
 * and @handler for @vector in the guest, which must enable its xAPIC.
 * Returns the eventfd.
 */
struct ex_regs;
int kvmq_msi_irqfd(struct kvm_vm *vm, uint32_t gsi, uint8_t vector,
		   void (*handler)(struct ex_regs *regs));

/* Guest side: a kvmq hypercall. */
static inline int64_t kvmq_hc(uint64_t nr, uint64_t a0, uint64_t a1,
			      uint64_t a2)
{
	return kvm_hypercall(nr, a0, a1, a2, 0);
}

/*
 * Hypercalls from compatibility mode (32-bit code under the guest's 64-bit
 * page tables).  kvmq_compat_init() writes a flat 32-bit code descriptor
 * (base 0, limit 4 GiB, D=1, L=0, DPL 0) at KVMQ_TEST_CS32 in @vm's GDT,
 * after the selftest library's KERNEL_CS (0x8), KERNEL_DS (0x10) and
 * 16-byte TSS descriptor (0x18); it asserts that the helper below and the
 * stacks of @vm's vCPUs lie below 4 GiB.  Call it once the vCPUs exist.
 */
#define KVMQ_TEST_CS32		0x28

void kvmq_compat_init(struct kvm_vm *vm);

/*
 * Guest side: load RAX, RBX, RCX, RDX and RSI with @nr and @a0 to @a3, all
 * 64 bits of them, far-jump to compatibility mode, issue VMCALL or VMMCALL
 * there, and far-jump back.  Bits 63:32 reach KVM untouched, which must
 * ignore them.  Returns RAX as the hypercall left it: the 32-bit result,
 * zero-extended by KVM.
 */
uint64_t __kvmq_hypercall_compat(uint64_t nr, uint64_t a0, uint64_t a1,
				 uint64_t a2, uint64_t a3);

/* The same, the 32-bit result sign-extended: errors are negative. */
static inline int64_t kvmq_hypercall_compat(uint64_t nr, uint64_t a0,
					    uint64_t a1, uint64_t a2,
					    uint64_t a3)
{
	return (int32_t)__kvmq_hypercall_compat(nr, a0, a1, a2, a3);
}

#endif /* SELFTEST_KVMQ_UTIL_H */
