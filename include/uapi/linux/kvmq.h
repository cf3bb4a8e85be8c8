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
 *  EIO         a per-VM file used by a process other than the VM's
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
#define KVMQ_ABI_VERSION	4

#define KVMQ_TYPE		0xB9

/* Feature bits reported by KVMQ_GET_INFO and KVMQ_HC_FEATURES. */
#define KVMQ_FEATURE_IDENTITY	(1ULL << 0)	/* KVMQ_HC_SELF_ID, identities */
#define KVMQ_FEATURE_APERTURE	(1ULL << 1)	/* KVMQ_VM_SET_APERTURE, mmap */
#define KVMQ_FEATURE_QUEUES	(1ULL << 2)	/* queues, send, receive */
#define KVMQ_FEATURE_LIMITS	(1ULL << 3)	/* queued pages and memory */
#define KVMQ_FEATURE_RINGS	(1ULL << 4)	/* KVMQ_VM_SET_RINGS, SUBMIT */
#define KVMQ_FEATURE_NOTIFY	(1ULL << 5)	/* KVMQ_VM_SET_NOTIFY */
#define KVMQ_FEATURE_STATS	(1ULL << 6)	/* KVMQ_VM_GET_STATS */
#define KVMQ_FEATURE_MOVE	(1ULL << 7)	/* KVMQ_VM_MOVE_APERTURE */
#define KVMQ_FEATURE_QUEUE_INFO	(1ULL << 8)	/* KVMQ_VM_GET_QUEUE */
#define KVMQ_FEATURES_ALL	(KVMQ_FEATURE_IDENTITY | KVMQ_FEATURE_APERTURE | \
				 KVMQ_FEATURE_QUEUES | KVMQ_FEATURE_LIMITS | \
				 KVMQ_FEATURE_RINGS | KVMQ_FEATURE_NOTIFY | \
				 KVMQ_FEATURE_STATS | KVMQ_FEATURE_MOVE | \
				 KVMQ_FEATURE_QUEUE_INFO)

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
 * struct kvmq_create_group - ioctl(KVMQ_CREATE_GROUP)
 * @size: sizeof(struct kvmq_create_group)
 * @flags: must be 0
 *
 * Issued on /dev/kvmq.  Creates a group and returns a new file descriptor
 * (O_RDWR | O_CLOEXEC) for it.  A group is a namespace of identities: VMs
 * exchange messages only with VMs of their own group.  The file descriptor
 * is the capability to name VMs into the group; pass it to each VMM that
 * may join (inheritance, or SCM_RIGHTS over a unix socket).  The group lives
 * while the file or any member VM does.
 *
 * Errors: ENOMEM, EMFILE, ENFILE.
 */
struct kvmq_create_group {
	__u32 size;
	__u32 flags;
};

#define KVMQ_CREATE_GROUP	_IO(KVMQ_TYPE, 0x02)

/**
 * struct kvmq_vm_identity - ioctl(KVMQ_VM_SET_IDENTITY/KVMQ_VM_GET_IDENTITY)
 * @size: sizeof(struct kvmq_vm_identity)
 * @flags: must be 0
 * @id: the VM's identity; input of SET, output of GET.  Identities are
 *	1 to KVMQ_ID_MAX and unique within a group; 0 means "none".
 *	KVMQ_ID_MAX keeps them positive in a 32-bit guest's RAX, where they
 *	cannot be mistaken for a negated errno.
 * @group_fd: input of SET: a group file descriptor (KVMQ_CREATE_GROUP) the
 *	VM joins.  Ignored by GET.
 *
 * Issued on the per-VM kvmq file.  SET makes the VM a member of the group
 * under identity @id: the identity under which its peers address it, which
 * kvmq stamps on every message it sends, and which KVMQ_HC_SELF_ID returns
 * to its guest.  Identity and group are fixed for the lifetime of the
 * attachment.  GET returns the identity (0 if none was assigned).
 *
 * Errors of SET:
 *
 *  ======= ================================================================
 *  EINVAL  @id is 0 or larger than KVMQ_ID_MAX, or @group_fd is not a kvmq
 *          group
 *  EBADF   @group_fd is not an open file descriptor
 *  EBUSY   the VM already has an identity
 *  EEXIST  another VM of the group has the identity @id
 *  ENOMEM  out of memory
 *  ======= ================================================================
 */
struct kvmq_vm_identity {
	__u32 size;
	__u32 flags;
	__u32 id;
	__s32 group_fd;
};

#define KVMQ_ID_MAX		0x7fffffffU

#define KVMQ_VM_SET_IDENTITY	_IO(KVMQ_TYPE, 0x10)
#define KVMQ_VM_GET_IDENTITY	_IO(KVMQ_TYPE, 0x11)

/**
 * struct kvmq_vm_aperture - ioctl(KVMQ_VM_SET_APERTURE/KVMQ_VM_GET_APERTURE)
 * @size: sizeof(struct kvmq_vm_aperture)
 * @flags: must be 0
 * @gpa: guest-physical address at which the VMM registers the aperture as
 *	a KVM memslot; a multiple of KVMQ_APERTURE_ALIGN, or
 *	KVMQ_APERTURE_NO_GPA while the guest cannot reach it (see
 *	KVMQ_VM_MOVE_APERTURE)
 * @length: bytes; a non-zero multiple of KVMQ_APERTURE_ALIGN, at most
 *	KVMQ_APERTURE_MAX
 * @quota: bytes of memory charged to the VM at once, in its aperture and
 *	in messages queued to it; a multiple of 4 KiB, at most @length
 * @held: output of GET: bytes the aperture holds now; must be 0 for SET
 * @queued: output of GET: bytes of pages in messages queued to the VM,
 *	not yet received; must be 0 for SET
 *
 * Issued on the per-VM kvmq file.  SET gives the VM its aperture: a range of
 * memory owned by kvmq that the VMM maps with mmap(MAP_SHARED) of the per-VM
 * file (offsets 0 to @length) and registers as a KVM memslot at @gpa.  kvmq
 * hands out memory on first touch, by the guest or the VMM, and charges it
 * to the faulting task's memory cgroup.  Every page kvmq owns is charged to
 * the quota of exactly one VM: the one whose aperture holds it, or the one
 * to whose queue the message carrying it was sent (@held + @queued never
 * exceed @quota).  A touch that would exceed @quota fails: KVM_RUN returns
 * EFAULT for a guest access, the VMM gets SIGBUS.
 * Naturally aligned 2 MiB ranges are mapped with one PMD where possible, so
 * KVM can map them at 2 MiB.  The aperture is set once per attachment.
 *
 * Errors of SET:
 *
 *  ======= ================================================================
 *  EINVAL  @gpa, @length or @quota misaligned or out of range, @held or
 *          @queued not 0
 *  EBUSY   the VM already has an aperture
 *  ======= ================================================================
 *
 * GET fails with ENODEV if the VM has no aperture.
 *
 * mmap() of the per-VM file fails with ENODEV before SET, EINVAL for a
 * private mapping or a range beyond @length, and EIO in a process other
 * than the VM's.  No other process reaches the aperture through the
 * mapping either.  It is VM_IO and VM_DONTCOPY: a child does not inherit
 * it across fork(), and madvise(MADV_DOFORK) fails with EINVAL.
 * process_vm_readv() and process_vm_writev() fail on it with EFAULT,
 * /proc/PID/mem and ptrace(PTRACE_PEEKDATA/POKEDATA) with EIO, and a
 * fault on it from any mm but the VM's gets SIGBUS.  mremap() cannot grow
 * or duplicate it (EFAULT) nor leave it in place (MREMAP_DONTUNMAP:
 * EINVAL), and userfaultfd cannot register it (EINVAL).
 */
struct kvmq_vm_aperture {
	__u32 size;
	__u32 flags;
	__aligned_u64 gpa;
	__aligned_u64 length;
	__aligned_u64 quota;
	__aligned_u64 held;
	__aligned_u64 queued;
};

#define KVMQ_APERTURE_ALIGN	(1ULL << 21)
#define KVMQ_APERTURE_MAX	(1ULL << 40)
#define KVMQ_APERTURE_NO_GPA	(~0ULL)

#define KVMQ_VM_SET_APERTURE	_IO(KVMQ_TYPE, 0x12)
#define KVMQ_VM_GET_APERTURE	_IO(KVMQ_TYPE, 0x13)

/**
 * struct kvmq_vm_move_aperture - ioctl(KVMQ_VM_MOVE_APERTURE)
 * @size: sizeof(struct kvmq_vm_move_aperture)
 * @flags: must be 0
 * @gpa: the aperture's new guest-physical address, a multiple of
 *	KVMQ_APERTURE_ALIGN; or KVMQ_APERTURE_NO_GPA: the guest cannot
 *	reach the aperture now
 *
 * Issued on the per-VM kvmq file, when the VMM moves the aperture's memslot
 * (a PCI BAR the guest reprograms) or removes it (the guest disables the
 * BAR).  The aperture's memory, the pages it holds and their offsets do
 * not change: only the guest-physical addresses that the hypercalls take
 * and return.  A hypercall that runs on another vCPU while the address
 * changes uses either the old or the new one; a message received with the
 * old address reports its pages where they were.
 *
 * While the address is KVMQ_APERTURE_NO_GPA, a send of pages or blocks and
 * a release fail with -EINVAL (no address is in the aperture), and a page
 * or block message stays queued: KVMQ_HC_RECV returns -EFAULT for it, and
 * it enters no receive ring, until the aperture has an address again.
 *
 * Errors:
 *
 *  ======= ================================================================
 *  EINVAL  @gpa misaligned, or the aperture would end beyond 2^64
 *  ENODEV  the VM has no aperture
 *  ======= ================================================================
 */
struct kvmq_vm_move_aperture {
	__u32 size;
	__u32 flags;
	__aligned_u64 gpa;
};

#define KVMQ_VM_MOVE_APERTURE	_IO(KVMQ_TYPE, 0x1c)

/**
 * struct kvmq_vm_queues - ioctl(KVMQ_VM_SET_QUEUES/KVMQ_VM_GET_QUEUES)
 * @size: sizeof(struct kvmq_vm_queues)
 * @flags: must be 0
 * @nr_queues: queues of the VM, numbered 0 to @nr_queues - 1; 1 to
 *	KVMQ_QUEUES_MAX
 * @nr_vcpu_queues: per-vCPU queues, numbered KVMQ_QUEUE_VCPU(vcpu_id) for
 *	vcpu_id 0 to @nr_vcpu_queues - 1; at least the number of vCPUs
 *	created so far, at most KVMQ_VCPU_QUEUES_MAX.  A vCPU whose vcpu_id
 *	is @nr_vcpu_queues or more has no queue of its own.
 * @depth: messages each queue holds at most; 1 to KVMQ_DEPTH_MAX
 * @__reserved: must be 0
 * @page_limit: bytes of pages that messages queued to the VM, in all its
 *	queues, may carry at once; a multiple of 4 KiB.  0: no limit but the
 *	aperture's quota, which queued pages count against in any case.
 *	A VMM that wants to keep part of the quota for its guest's own use
 *	sets it lower than the quota.
 * @mem_limit: bytes of kernel memory that messages queued to the VM, in
 *	all its queues, may take at once (payload, page lists and headers,
 *	as allocated); 0 for KVMQ_MEM_LIMIT_DEFAULT, else KVMQ_MEM_LIMIT_MIN
 *	to KVMQ_MEM_LIMIT_MAX.  GET returns the limit in force.
 * @mem: output of GET: bytes of kernel memory queued messages take now;
 *	must be 0 for SET
 *
 * Issued on the per-VM kvmq file.  SET creates the VM's inbound queues,
 * once per attachment.  Any vCPU of the VM may receive from a VM queue;
 * only the vCPU whose vcpu_id is n receives from KVMQ_QUEUE_VCPU(n).  A new
 * queue accepts messages only from the VMM (KVMQ_VM_POST) until senders are
 * granted with KVMQ_VM_GRANT.  GET returns the configuration.
 *
 * The host memory that peers can make kvmq hold for this VM is bounded by
 * @depth per queue (messages), @mem_limit (kernel memory) and the
 * aperture's quota or @page_limit (pages).  A send or post beyond a limit
 * fails and changes nothing: -EAGAIN for a full queue, -ENOBUFS for a
 * limit on memory or pages.
 *
 * Errors of SET:
 *
 *  ======= ================================================================
 *  EINVAL  a count or @depth out of range, fewer vCPU queues than vCPUs,
 *          @page_limit misaligned or above KVMQ_APERTURE_MAX, @mem_limit
 *          out of range, @mem not 0
 *  EBUSY   the VM already has queues
 *  ENOMEM  out of memory
 *  ======= ================================================================
 *
 * GET fails with ENODEV if the VM has no queues.
 */
struct kvmq_vm_queues {
	__u32 size;
	__u32 flags;
	__u32 nr_queues;
	__u32 nr_vcpu_queues;
	__u32 depth;
	__u32 __reserved;
	__aligned_u64 page_limit;
	__aligned_u64 mem_limit;
	__aligned_u64 mem;
};

#define KVMQ_QUEUES_MAX		64
#define KVMQ_VCPU_QUEUES_MAX	4096
#define KVMQ_DEPTH_MAX		4096
#define KVMQ_QUEUE_VCPU_BASE	0x10000U
#define KVMQ_QUEUE_VCPU(vcpu_id)	(KVMQ_QUEUE_VCPU_BASE + (vcpu_id))
#define KVMQ_MEM_LIMIT_DEFAULT	(1ULL << 20)
#define KVMQ_MEM_LIMIT_MIN	(1ULL << 16)
#define KVMQ_MEM_LIMIT_MAX	(1ULL << 28)

#define KVMQ_VM_SET_QUEUES	_IO(KVMQ_TYPE, 0x14)
#define KVMQ_VM_GET_QUEUES	_IO(KVMQ_TYPE, 0x15)

/**
 * struct kvmq_vm_queue_info - ioctl(KVMQ_VM_GET_QUEUE)
 * @size: sizeof(struct kvmq_vm_queue_info)
 * @flags: must be 0
 * @queue: a queue of the VM: 0 to nr_queues - 1, or KVMQ_QUEUE_VCPU(n)
 * @length: output: messages in the queue now, not yet received (with
 *	rings: not yet in its receive ring)
 * @senders: output: identities granted to send to the queue
 * @__reserved: must be 0
 *
 * Issued on the per-VM kvmq file, by a VMM that reports on its queues.
 *
 * Errors:
 *
 *  ======= ================================================================
 *  ENODEV  the VM has no queues
 *  EINVAL  @queue is not a queue of the VM, @__reserved not 0
 *  ======= ================================================================
 */
struct kvmq_vm_queue_info {
	__u32 size;
	__u32 flags;
	__u32 queue;
	__u32 length;
	__u32 senders;
	__u32 __reserved;
};

#define KVMQ_VM_GET_QUEUE	_IO(KVMQ_TYPE, 0x1d)

/**
 * struct kvmq_vm_grant - ioctl(KVMQ_VM_GRANT/KVMQ_VM_REVOKE)
 * @size: sizeof(struct kvmq_vm_grant)
 * @flags: must be 0
 * @queue: a queue of this VM (see struct kvmq_vm_queues)
 * @sender: identity, in this VM's group, of the VM allowed to send
 *
 * Issued on the per-VM kvmq file of the receiving VM: inbound permissions
 * belong to the receiver's VMM.  GRANT lets the VM with identity @sender
 * send to @queue; REVOKE takes that back.  A send checks the permission
 * when it enqueues: once REVOKE returns, no further message of @sender
 * enters @queue.  Messages already queued stay and can be received.  A
 * grant names an identity, not a VM: it applies to whichever VM holds
 * @sender in the group, now or later.
 *
 * Errors:
 *
 *  ======= ================================================================
 *  EINVAL  @queue does not exist, @sender is 0 or larger than KVMQ_ID_MAX
 *  ENODEV  the VM has no queues
 *  ENOENT  REVOKE: @sender was not granted @queue
 *  EEXIST  GRANT: @sender was already granted @queue
 *  ENOMEM  out of memory
 *  ======= ================================================================
 */
struct kvmq_vm_grant {
	__u32 size;
	__u32 flags;
	__u32 queue;
	__u32 sender;
};

#define KVMQ_VM_GRANT		_IO(KVMQ_TYPE, 0x16)
#define KVMQ_VM_REVOKE		_IO(KVMQ_TYPE, 0x17)

/**
 * struct kvmq_vm_post - ioctl(KVMQ_VM_POST)
 * @size: sizeof(struct kvmq_vm_post)
 * @flags: must be 0
 * @queue: a queue of this VM
 * @len: bytes at @data; at most KVMQ_MSG_BYTES_MAX
 * @data: userspace address of the bytes
 *
 * Issued on the per-VM kvmq file.  Posts a KVMQ_MSG_BYTES message into a
 * queue of the VM itself, with sender KVMQ_ID_VMM, which no guest can use.
 * This is how a VMM conveys the identities of peers, or anything else, to
 * its guest.  Permissions do not apply; queue depth does.
 *
 * Errors:
 *
 *  ======== ===============================================================
 *  EINVAL   @queue does not exist
 *  E2BIG    @len is larger than KVMQ_MSG_BYTES_MAX
 *  EFAULT   @data is not readable
 *  ENODEV   the VM has no queues
 *  EAGAIN   the queue is full
 *  ENOBUFS  the VM's queued messages take @mem_limit of kernel memory
 *           (struct kvmq_vm_queues); retry once the guest received some
 *  EMSGSIZE the message alone is larger than @mem_limit
 *  ENOMEM   out of memory
 *  ======== ===============================================================
 */
struct kvmq_vm_post {
	__u32 size;
	__u32 flags;
	__u32 queue;
	__u32 len;
	__aligned_u64 data;
};

#define KVMQ_VM_POST		_IO(KVMQ_TYPE, 0x18)

/**
 * struct kvmq_vm_rings - ioctl(KVMQ_VM_SET_RINGS)
 * @size: sizeof(struct kvmq_vm_rings)
 * @flags: must be 0
 * @rx_entries: entries of the receive ring of each queue; a power of 2,
 *	1 to KVMQ_RING_ENTRIES_MAX
 * @sq_entries: entries of the submission ring and of the completion ring
 *	of each vCPU; a power of 2, 1 to KVMQ_RING_ENTRIES_MAX
 * @length: output: bytes of the ring area, to map with mmap() of the
 *	per-VM file at offset KVMQ_RINGS_MMAP_OFFSET
 * @rx_stride: output: bytes from the receive ring of one queue to the
 *	next.  The receive ring of queue number q starts at offset
 *	(q < nr_queues ? q : nr_queues + q - KVMQ_QUEUE_VCPU_BASE) *
 *	@rx_stride of the area.
 * @vcpu_offset: output: offset in the area of the submission ring of the
 *	vCPU whose vcpu_id is 0
 * @vcpu_stride: output: bytes from the rings of one vCPU to the next
 * @cq_offset: output: offset of a vCPU's completion ring from its
 *	submission ring
 * @lazy_delay_us: 0, or the longest a KVMQ_SQE_LAZY entry may wait for
 *	its vCPU's next natural exit, in microseconds (KVMQ_LAZY_DELAY_MIN
 *	to KVMQ_LAZY_DELAY_MAX): a timer then checks each vCPU's ring every
 *	@lazy_delay_us and makes the vCPU exit if a lazy entry waits.  With
 *	0, the bound is the host's timer tick, at no cost in exits.
 * @__reserved: must be 0
 *
 * Issued on the per-VM kvmq file, after KVMQ_VM_SET_QUEUES, once per
 * attachment.  Gives every queue of the VM a receive ring, and every vCPU
 * that has a queue of its own (vcpu_id below nr_vcpu_queues) a submission
 * ring and a completion ring, in one area of memory that kvmq owns and
 * never moves.  The VMM maps the area (MAP_SHARED, @length bytes at offset
 * KVMQ_RINGS_MMAP_OFFSET) and registers it as a KVM memslot; the guest
 * then sends and receives with memory accesses alone (struct kvmq_ring).
 * The area's memory is charged to the caller's memory cgroup, and is at
 * most KVMQ_RINGS_MAX bytes.
 *
 * Errors of SET:
 *
 *  ======= ================================================================
 *  EINVAL  an entry count is not a power of 2 or out of range, an output
 *          field or @__reserved is not 0, @lazy_delay_us out of range
 *  ENODEV  the VM has no queues
 *  E2BIG   the area would be larger than KVMQ_RINGS_MAX
 *  EBUSY   the VM already has rings
 *  ENOMEM  out of memory
 *  ======= ================================================================
 *
 * mmap() at KVMQ_RINGS_MMAP_OFFSET fails with ENODEV before SET, EINVAL
 * for a private mapping or one that is not exactly the area.
 */
struct kvmq_vm_rings {
	__u32 size;
	__u32 flags;
	__u32 rx_entries;
	__u32 sq_entries;
	__aligned_u64 length;
	__u32 rx_stride;
	__u32 vcpu_offset;
	__u32 vcpu_stride;
	__u32 cq_offset;
	__u32 lazy_delay_us;
	__u32 __reserved;
};

#define KVMQ_RING_ENTRIES_MAX	4096
#define KVMQ_LAZY_DELAY_MIN	100
#define KVMQ_LAZY_DELAY_MAX	1000000
#define KVMQ_RINGS_MAX		(64ULL << 20)
#define KVMQ_RINGS_MMAP_OFFSET	(1ULL << 40)

#define KVMQ_VM_SET_RINGS	_IO(KVMQ_TYPE, 0x19)

/**
 * struct kvmq_vm_notify - ioctl(KVMQ_VM_SET_NOTIFY)
 * @size: sizeof(struct kvmq_vm_notify)
 * @flags: must be 0
 * @queue: a queue of the VM, for its arrival notification; or
 *	KVMQ_NOTIFY_SPACE, for the VM's room notification
 * @fd: an eventfd, or -1 to remove the one set
 *
 * Issued on the per-VM kvmq file.  kvmq signals the eventfd (the VMM
 * typically binds it to a guest interrupt with KVM_IRQFD):
 *
 * - arrival notification of @queue: when a message enters the queue's
 *   receive ring while the guest asked for it (KVMQ_RING_F_WAKE in the
 *   ring's @flags); without rings, when a message enters the queue;
 * - room notification (KVMQ_NOTIFY_SPACE): when a queue that refused a
 *   send of this VM (-EAGAIN or -ENOBUFS) may take it now: a message left
 *   it, or its VM released pages; or when the queue's VM went away (the
 *   next send fails with -ENOENT).  One signal per refusal at most.
 *
 * A new eventfd replaces the previous one.  kvmq holds a reference on it
 * until it is replaced, removed or the VM is freed.
 *
 * Errors:
 *
 *  ======= ================================================================
 *  ENODEV  @queue is a queue number but the VM has no queues
 *  EINVAL  @queue is not a queue of the VM, or @fd is not an eventfd
 *  EBADF   @fd is neither -1 nor an open file descriptor
 *  ======= ================================================================
 */
struct kvmq_vm_notify {
	__u32 size;
	__u32 flags;
	__u32 queue;
	__s32 fd;
};

#define KVMQ_NOTIFY_SPACE	0xffffffffU

#define KVMQ_VM_SET_NOTIFY	_IO(KVMQ_TYPE, 0x1a)

/**
 * struct kvmq_vm_stats - ioctl(KVMQ_VM_GET_STATS)
 * @size: sizeof(struct kvmq_vm_stats)
 * @flags: must be 0
 * @sent: output: messages this VM's guest sent (queued), by kind:
 *	[0] bytes, [1] pages, [2] blocks
 * @sent_bytes: output: their payload bytes (@len)
 * @received: output: messages the guest received (KVMQ_HC_RECV, or
 *	delivered into a receive ring), by kind
 * @received_bytes: output: their payload bytes
 * @pages_moved: output: 4 KiB pages that left the aperture in sends
 * @unmaps: output: removals of mappings of the aperture, each with one TLB
 *	flush of the VM's vCPUs: one per batch of page sends, one per
 *	batch of a release
 * @refused: output: sends refused for a full queue or budget (-EAGAIN,
 *	-ENOBUFS)
 * @doorbells: output: KVMQ_HC_SUBMIT hypercalls
 * @lazy_batches: output: lazy batches run at natural exits (with at least
 *	one entry)
 * @lazy_entries: output: submission entries they ran
 * @notified: output: arrival eventfd signals
 * @suppressed: output: arrivals not signalled, the guest was polling
 * @room_notified: output: room eventfd signals
 * @lazy_kicks: output: exits the lazy delay timer caused (lazy_delay_us)
 *
 * Issued on the per-VM kvmq file.  Reads the VM's counters, which start at
 * 0 when the VM is attached.
 */
struct kvmq_vm_stats {
	__u32 size;
	__u32 flags;
	__aligned_u64 sent[3];
	__aligned_u64 sent_bytes;
	__aligned_u64 received[3];
	__aligned_u64 received_bytes;
	__aligned_u64 pages_moved;
	__aligned_u64 unmaps;
	__aligned_u64 refused;
	__aligned_u64 doorbells;
	__aligned_u64 lazy_batches;
	__aligned_u64 lazy_entries;
	__aligned_u64 notified;
	__aligned_u64 suppressed;
	__aligned_u64 room_notified;
	__aligned_u64 lazy_kicks;
};

#define KVMQ_VM_GET_STATS	_IO(KVMQ_TYPE, 0x1b)

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

/*
 * Messages.  RBX = destination identity, RCX = queue, RDX = guest-physical
 * address of a struct kvmq_msg to send.  Returns 0 once the message is in
 * the destination queue; see Documentation/hypercalls.rst for the errors
 * (-EAGAIN: the queue is full; -ENOBUFS: the receiver's budget for queued
 * pages or kernel memory is used up for now; -EMSGSIZE: a message the
 * receiver could never hold).
 */
#define KVMQ_HC_SEND		(KVMQ_HC_BASE + 3)
/*
 * RBX = queue, RCX = guest-physical address of a struct kvmq_msg that kvmq
 * fills with the next message of the queue.  Returns 0, -EAGAIN if the
 * queue is empty, or another error of Documentation/hypercalls.rst.
 */
#define KVMQ_HC_RECV		(KVMQ_HC_BASE + 4)
/* RBX = queue.  Returns the number of messages in the queue. */
#define KVMQ_HC_QLEN		(KVMQ_HC_BASE + 5)
/*
 * RBX = guest-physical address (4 KiB aligned) in the aperture, RCX = number
 * of 4 KiB pages.  Gives the pages of that range back: they become free
 * slots.  Returns the number of pages the range held.
 */
#define KVMQ_HC_RELEASE		(KVMQ_HC_BASE + 6)
/*
 * RBX = 0.  Processes every entry of the calling vCPU's submission ring
 * and fills the VM's receive rings from what waits in its queues.
 * Returns the number of submission entries consumed.
 */
#define KVMQ_HC_SUBMIT		(KVMQ_HC_BASE + 7)

/* Identity stamped on messages posted by the VMM (KVMQ_VM_POST). */
#define KVMQ_ID_VMM		0

/* struct kvmq_msg kinds */
#define KVMQ_MSG_BYTES		1	/* @len bytes copied from @data */
#define KVMQ_MSG_PAGES		2	/* @nr 4 KiB pages moved */
#define KVMQ_MSG_BLOCKS		3	/* @nr 2 MiB blocks moved */

#define KVMQ_MSG_BYTES_MAX	2048
#define KVMQ_MSG_PAGES_MAX	256
#define KVMQ_MSG_BLOCKS_MAX	8
#define KVMQ_MSG_BLOCK_SIZE	(1ULL << 21)

/**
 * struct kvmq_msg - a message, in guest memory
 * @kind: KVMQ_MSG_*
 * @flags: must be 0
 * @sender: RECV: identity of the sending VM, stamped by kvmq
 *	(KVMQ_ID_VMM for a message the VMM posted); SEND: must be 0
 * @nr: PAGES and BLOCKS: number of pages or blocks, 1 to
 *	KVMQ_MSG_PAGES_MAX or KVMQ_MSG_BLOCKS_MAX; BYTES: must be 0
 * @len: payload bytes: at most KVMQ_MSG_BYTES_MAX for BYTES, at most
 *	@nr times the page or block size otherwise.  kvmq carries it with the
 *	message; it does not clear the pages beyond it.
 * @__reserved: must be 0
 * @gpa: RECV of PAGES and BLOCKS: guest-physical address in the receiver's
 *	aperture where the @nr pages or blocks now are, contiguous, in the
 *	order the sender listed them.  SEND: must be 0.
 * @data: BYTES: the payload
 * @gpas: SEND of PAGES and BLOCKS: guest-physical addresses of the pages
 *	(4 KiB aligned) or blocks (2 MiB aligned) in the sender's aperture;
 *	no address twice
 *
 * SEND reads the header and the part of @data or @gpas it needs; RECV
 * writes the whole structure (its buffer must be sizeof(struct kvmq_msg)
 * bytes).
 */
struct kvmq_msg {
	__u32 kind;
	__u32 flags;
	__u32 sender;
	__u32 nr;
	__u32 len;
	__u32 __reserved;
	__aligned_u64 gpa;
	union {
		__u8 data[KVMQ_MSG_BYTES_MAX];
		__aligned_u64 gpas[KVMQ_MSG_PAGES_MAX];
	};
};

/*
 * Rings (KVMQ_VM_SET_RINGS).  Three kinds, one layout: a struct kvmq_ring
 * header of 128 bytes, then @entries entries (a power of 2) of a fixed
 * size; entry n is at index n & (@entries - 1).
 *
 *   receive ring, one per queue: kvmq produces struct kvmq_msg entries
 *	(a message as KVMQ_HC_RECV would write it: the payload of a bytes
 *	message inline, the pages of a page or block message already placed
 *	in the aperture at @gpa); the guest consumes them.
 *   submission ring, one per vCPU: the guest produces struct kvmq_sqe
 *	entries; kvmq consumes them when the vCPU issues KVMQ_HC_SUBMIT, or,
 *	for KVMQ_SQE_LAZY entries, at the vCPU's next natural exit.
 *   completion ring, one per vCPU: kvmq produces one struct kvmq_cqe per
 *	submission entry consumed, in order; the guest consumes them.
 *
 * @prod and @cons count entries produced and consumed since the ring was
 * set up, modulo 2^32; @prod - @cons entries are in the ring.  Who writes
 * what, and the barriers:
 *
 *   @prod	written by the producer only, after the entries it covers,
 *		with a store-release (smp_store_release() in kvmq); the
 *		consumer reads it with a load-acquire before it reads the
 *		entries.
 *   @cons	written by the consumer only, after it is done with the
 *		entries it covers, with a store-release; the producer reads it
 *		with a load-acquire before it reuses their slots.  A guest may
 *		also move a receive ring's @cons back to @prod - @entries: the
 *		ring then looks full, and kvmq moves no message into it (nor
 *		places its pages) until @cons moves on.  A KVMQ_HC_SUBMIT
 *		issued after that returns once any move that had begun is
 *		published.
 *   @entries	written by kvmq at setup, constant.
 *   @flags	written by the consumer: KVMQ_RING_F_WAKE (receive rings),
 *		else 0.
 *
 * Arrival notification (KVMQ_VM_SET_NOTIFY) and KVMQ_RING_F_WAKE: after
 * it publishes @prod, kvmq issues a full barrier (smp_mb()) and reads
 * @flags; if KVMQ_RING_F_WAKE is set it signals the queue's eventfd.  A
 * guest that wants to wait sets the flag, issues a full barrier (MFENCE,
 * or a locked instruction), and reads @prod again before it halts: either
 * it sees the new entry, or kvmq sees the flag.  A guest that polls
 * clears the flag and gets no interrupt.
 *
 * kvmq keeps its own copy of every index it writes and never reads one
 * back: it reads the guest's index once per pass, with the load-acquire,
 * and checks it.  An index that would put more than @entries entries in
 * the ring makes kvmq treat the ring as full (receive, completion) or
 * empty (submission) until the guest writes a sane value.  It copies each
 * submission entry once, then checks and uses the copy.  A guest that
 * corrupts its rings thus disturbs only itself.
 */
#define KVMQ_RING_F_WAKE	(1U << 0)

struct kvmq_ring {
	__u32 prod;
	__u32 entries;
	__u32 __pad0[14];
	__u32 cons;
	__u32 flags;
	__u32 __pad1[14];
};

/* struct kvmq_sqe operations */
#define KVMQ_OP_SEND		1	/* KVMQ_HC_SEND of the message at @gpa */
#define KVMQ_OP_RELEASE		2	/* KVMQ_HC_RELEASE of @nr pages at @gpa */

/*
 * struct kvmq_sqe flags.  KVMQ_SQE_LAZY: the entry may run at the vCPU's
 * next natural exit, without KVMQ_HC_SUBMIT.  kvmq runs the entries at the
 * start of the ring that carry it, in a batch, at any exit of the vCPU it
 * did not request (a timer interrupt, a halt, an exit to the VMM); an
 * entry without it waits for KVMQ_HC_SUBMIT, and so do the entries after
 * it.  A vCPU running the guest exits at least once per host timer tick,
 * which bounds the delay.
 */
#define KVMQ_SQE_LAZY		(1 << 0)
/*
 * KVMQ_SQE_LINK: the next entry runs only if this one succeeds; if this
 * one fails (or is cancelled), the next completes with -ECANCELED without
 * running, and so on along a chain of linked entries.  A chain keeps a
 * stream in order across refusals: a sender that finds its first refused
 * entry posts it and the rest again.
 */
#define KVMQ_SQE_LINK		(1 << 1)

/**
 * struct kvmq_sqe - an entry of a submission ring, written by the guest
 * @op: KVMQ_OP_*
 * @flags: KVMQ_SQE_LAZY, KVMQ_SQE_LINK
 * @__reserved: must be 0
 * @dest: KVMQ_OP_SEND: identity of the receiving VM; else 0
 * @queue: KVMQ_OP_SEND: queue of the receiving VM; else 0
 * @nr: KVMQ_OP_RELEASE: number of 4 KiB pages; else 0
 * @gpa: KVMQ_OP_SEND: guest-physical address of a struct kvmq_msg;
 *	KVMQ_OP_RELEASE: of the first page of the range
 * @user_data: copied to the completion
 *
 * The operation has the effect, and the result, of the hypercall it names,
 * as if the vCPU issued it when kvmq consumes the entry.
 */
struct kvmq_sqe {
	__u8 op;
	__u8 flags;
	__u16 __reserved;
	__u32 dest;
	__u32 queue;
	__u32 nr;
	__aligned_u64 gpa;
	__aligned_u64 user_data;
};

/**
 * struct kvmq_cqe - an entry of a completion ring, written by kvmq
 * @user_data: the submission entry's
 * @res: its result: what the hypercall would have returned (0 or a count,
 *	or a negated errno; -EINVAL for a malformed entry)
 * @flags: 0
 */
struct kvmq_cqe {
	__aligned_u64 user_data;
	__s32 res;
	__u32 flags;
};

#endif /* _UAPI_LINUX_KVMQ_H */
