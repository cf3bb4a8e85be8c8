/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmq: hypervisor-managed queues between KVM virtual machines.
 *
 * Two interfaces are defined here:
 *
 * - ioctls issued by the VMM on /dev/kvmq and on the per-VM kvmq file
 *   descriptor returned by KVMQ_ATTACH_VM;
 * - hypercalls issued by guests of an attached VM.
 *
 * ioctl conventions: every argument structure starts with ``__u32 size`` and
 * ``__u32 flags``.  ``size`` is sizeof() the structure as userspace knows it;
 * the kernel accepts any size from the first version of the structure up to
 * a page, treating bytes it does not know as reserved.  Reserved fields and
 * unknown trailing bytes must be zero, unknown flags are rejected.  Output
 * fields are written back up to the smaller of the two sizes.
 *
 * Errors shared by all ioctls:
 *
 *  =========== ============================================================
 *  EFAULT      the argument pointer is not readable/writable
 *  EINVAL      ``size`` is smaller than the first version of the structure,
 *              or a reserved field is not zero
 *  E2BIG       ``size`` is larger than the kernel's structure and the extra
 *              bytes are not zero, or ``size`` is larger than a page
 *  EOPNOTSUPP  ``flags`` contains a bit the kernel does not know
 *  ENOTTY      the ioctl number is not a kvmq ioctl for this file
 *  =========== ============================================================
 *
 * Errors specific to one ioctl are listed next to it, and in
 * Documentation/api.rst.
 */
#ifndef _UAPI_LINUX_KVMQ_H
#define _UAPI_LINUX_KVMQ_H

#include <linux/types.h>
#include <linux/ioctl.h>

/* Version of the ABI described by this header (ioctls and hypercalls). */
#define KVMQ_ABI_VERSION	1

#define KVMQ_TYPE		0xB9

/* Feature bits reported by KVMQ_GET_INFO and KVMQ_HC_FEATURES. */
#define KVMQ_FEATURE_IDENTITY	(1ULL << 0)	/* KVMQ_HC_SELF_ID, identities */
#define KVMQ_FEATURE_APERTURE	(1ULL << 1)	/* KVMQ_VM_SET_APERTURE, mmap */
#define KVMQ_FEATURES_ALL	(KVMQ_FEATURE_IDENTITY | KVMQ_FEATURE_APERTURE)

/**
 * struct kvmq_info - ioctl(KVMQ_GET_INFO)
 * @size: sizeof(struct kvmq_info)
 * @flags: must be 0
 * @abi_version: output, KVMQ_ABI_VERSION of the running module
 * @hc_base: output, the first hypercall number kvmq handles (KVMQ_HC_BASE)
 * @features: output, KVMQ_FEATURE_* bits the module implements
 * @hc_count: output, number of hypercall numbers kvmq reserves from @hc_base
 * @__reserved: must be 0
 *
 * Issued on /dev/kvmq.  Reports what the loaded module implements, so a VMM
 * discovers capabilities without relying on kernel or module versions.
 */
struct kvmq_info {
	__u32 size;
	__u32 flags;
	__u32 abi_version;
	__u32 hc_base;
	__aligned_u64 features;
	__u32 hc_count;
	__u32 __reserved;
};

#define KVMQ_GET_INFO		_IO(KVMQ_TYPE, 0x00)

/**
 * struct kvmq_attach_vm - ioctl(KVMQ_ATTACH_VM)
 * @size: sizeof(struct kvmq_attach_vm)
 * @flags: must be 0
 * @vm_fd: a KVM VM file descriptor (from KVM_CREATE_VM) of the caller
 * @__reserved: must be 0
 *
 * Issued on /dev/kvmq.  Attaches the VM to kvmq and returns a new file
 * descriptor (O_RDWR | O_CLOEXEC) for it: the per-VM kvmq file.  kvmq
 * hypercalls of the VM are handled while that file is open; closing the
 * last reference detaches the VM.  The per-VM file holds a reference on the
 * VM, so the VM lives at least as long as it.
 *
 * Errors:
 *
 *  ======= ================================================================
 *  EBADF   @vm_fd is not an open file descriptor
 *  EINVAL  @vm_fd is not a KVM VM file descriptor
 *  EPERM   the VM belongs to another process (another mm)
 *  EEXIST  the VM is already attached
 *  ENOMEM  out of memory
 *  EMFILE  no free file descriptor in the process
 *  ENFILE  the system's limit on open files was reached
 *  ======= ================================================================
 *
 * A Linux security module may deny creating the file with its own errno.
 */
struct kvmq_attach_vm {
	__u32 size;
	__u32 flags;
	__s32 vm_fd;
	__u32 __reserved;
};

#define KVMQ_ATTACH_VM		_IO(KVMQ_TYPE, 0x01)

/**
 * struct kvmq_vm_identity - ioctl(KVMQ_VM_SET_IDENTITY/KVMQ_VM_GET_IDENTITY)
 * @size: sizeof(struct kvmq_vm_identity)
 * @flags: must be 0
 * @id: the VM's identity; input of SET, output of GET.  Identities are
 *	1 to KVMQ_ID_MAX and unique among attached VMs on the host; 0 means
 *	"none".  KVMQ_ID_MAX keeps them positive in a 32-bit guest's RAX,
 *	where they cannot be mistaken for a negated errno.
 * @__reserved: must be 0
 *
 * Issued on the per-VM kvmq file.  SET assigns the identity under which the
 * VM is known to its peers and which KVMQ_HC_SELF_ID returns to its guest.
 * The identity is fixed for the lifetime of the attachment.  GET returns it
 * (0 if none was assigned).
 *
 * Errors of SET:
 *
 *  ======= ================================================================
 *  EINVAL  @id is 0 or larger than KVMQ_ID_MAX
 *  EBUSY   the VM already has an identity
 *  EEXIST  another attached VM has the identity @id
 *  ENOMEM  out of memory
 *  ======= ================================================================
 */
struct kvmq_vm_identity {
	__u32 size;
	__u32 flags;
	__u32 id;
	__u32 __reserved;
};

#define KVMQ_ID_MAX		0x7fffffffU

#define KVMQ_VM_SET_IDENTITY	_IO(KVMQ_TYPE, 0x10)
#define KVMQ_VM_GET_IDENTITY	_IO(KVMQ_TYPE, 0x11)

/**
 * struct kvmq_vm_aperture - ioctl(KVMQ_VM_SET_APERTURE/KVMQ_VM_GET_APERTURE)
 * @size: sizeof(struct kvmq_vm_aperture)
 * @flags: must be 0
 * @gpa: guest-physical address at which the VMM registers the aperture as
 *	a KVM memslot; a multiple of KVMQ_APERTURE_ALIGN
 * @length: bytes; a non-zero multiple of KVMQ_APERTURE_ALIGN, at most
 *	KVMQ_APERTURE_MAX
 * @quota: bytes of memory the VM's aperture may hold at once; a multiple of
 *	4 KiB, at most @length
 * @held: output of GET: bytes the aperture holds now; must be 0 for SET
 *
 * Issued on the per-VM kvmq file.  SET gives the VM its aperture: a range of
 * memory owned by kvmq that the VMM maps with mmap(MAP_SHARED) of the per-VM
 * file (offsets 0 to @length) and registers as a KVM memslot at @gpa.  kvmq
 * hands out memory on first touch, by the guest or the VMM, and charges it
 * to the faulting task's memory cgroup.  A touch that would exceed @quota
 * fails: KVM_RUN returns EFAULT for a guest access, the VMM gets SIGBUS.
 * Naturally aligned 2 MiB ranges are mapped with one PMD where possible, so
 * KVM can map them at 2 MiB.  The aperture is set once per attachment.
 *
 * Errors of SET:
 *
 *  ======= ================================================================
 *  EINVAL  @gpa, @length or @quota misaligned or out of range, @held not 0
 *  EBUSY   the VM already has an aperture
 *  ======= ================================================================
 *
 * GET fails with ENODEV if the VM has no aperture.
 *
 * mmap() of the per-VM file fails with ENODEV before SET, EINVAL for a
 * private mapping or a range beyond @length, and EIO in a process other
 * than the VM's.  The mapping is not inherited across fork().
 */
struct kvmq_vm_aperture {
	__u32 size;
	__u32 flags;
	__aligned_u64 gpa;
	__aligned_u64 length;
	__aligned_u64 quota;
	__aligned_u64 held;
};

#define KVMQ_APERTURE_ALIGN	(1ULL << 21)
#define KVMQ_APERTURE_MAX	(1ULL << 40)

#define KVMQ_VM_SET_APERTURE	_IO(KVMQ_TYPE, 0x12)
#define KVMQ_VM_GET_APERTURE	_IO(KVMQ_TYPE, 0x13)

/*
 * Hypercalls.
 *
 * A guest of an attached VM issues a kvmq hypercall with the instruction KVM
 * uses for its own hypercalls (VMCALL on Intel, VMMCALL on AMD; KVM patches
 * the wrong one) and KVM's register convention:
 *
 *   RAX = hypercall number, RBX, RCX, RDX, RSI = arguments 0..3,
 *   result in RAX.
 *
 * In 32-bit guest mode the number, arguments and result are truncated to 32
 * bits, as for KVM's hypercalls.  A result in [-4095, -1] is a negated Linux
 * errno value; -1000 (-KVM_ENOSYS) means "no such hypercall".  Other
 * registers are preserved.  The hypercall is handled in the host kernel: it
 * causes no exit to the VMM.
 *
 * Numbers from KVMQ_HC_BASE to KVMQ_HC_BASE + KVMQ_HC_COUNT - 1 belong to
 * kvmq.  In a VM that is not attached they behave as without kvmq (KVM
 * returns -KVM_ENOSYS).  Issued from guest CPL > 0 they return -KVM_EPERM
 * (-EPERM), as KVM's hypercalls do.
 */
#define KVMQ_HC_BASE		0x4b510000UL
#define KVMQ_HC_COUNT		0x100

/* Returns KVMQ_ABI_VERSION. */
#define KVMQ_HC_VERSION		(KVMQ_HC_BASE + 0)
/* Returns the KVMQ_FEATURE_* bits available to this VM. */
#define KVMQ_HC_FEATURES	(KVMQ_HC_BASE + 1)
/*
 * Returns the identity the VMM assigned with KVMQ_VM_SET_IDENTITY, or
 * -ENOENT if it has not assigned one yet.
 */
#define KVMQ_HC_SELF_ID		(KVMQ_HC_BASE + 2)

#endif /* _UAPI_LINUX_KVMQ_H */
