/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmq guest driver: the character devices /dev/kvmq0, /dev/kvmq1, ... of
 * the kvmq-pci devices (include/uapi/linux/kvmq_pci.h) of a guest.
 *
 * Through them a guest process sends and receives the messages of kvmq
 * (include/uapi/linux/kvmq.h, Documentation/hypercalls.rst): the driver
 * issues the hypercalls, waits for the device's interrupts, keeps the
 * peer table that the VMM posts on queue 0, and hands out the pages of the
 * VM's aperture, which a process maps with mmap() of the device.
 *
 * ioctl conventions: every argument structure starts with ``__u32 size``
 * and ``__u32 flags``; @size must be sizeof() the structure, reserved
 * fields must be 0, output fields are ignored on input.
 *
 * Errors shared by all ioctls:
 *
 *  =========== ============================================================
 *  EFAULT      the argument, or memory it points to, is not accessible
 *  EINVAL      @size is not sizeof() the structure, or a reserved field is
 *              not 0
 *  EOPNOTSUPP  @flags has a bit the ioctl does not know
 *  ENOTTY      not an ioctl of this device
 *  ENODEV      the device was removed; only close() is left to do
 *  =========== ============================================================
 *
 * Documentation/guest.rst lists the errors of each ioctl.
 */
#ifndef _UAPI_LINUX_KVMQ_GUEST_H
#define _UAPI_LINUX_KVMQ_GUEST_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/kvmq.h>

/*
 * kvmq's ioctl type; the guest's numbers start at 0x40, so that an ioctl
 * issued on the wrong kind of kvmq file fails with ENOTTY.
 */
#define KVMQG_TYPE		KVMQ_TYPE

/* SEND and RECV: fail with EAGAIN (or ENOBUFS) instead of waiting. */
#define KVMQG_F_NONBLOCK	(1U << 0)
/*
 * SEND through io_uring only (struct kvmqg_uring).  KVMQG_F_LINK: the
 * file's next send through io_uring on the same CPU runs only if this one
 * succeeds.  KVMQG_F_CHAIN_START: this send runs whatever became of the
 * file's sends before it.
 */
#define KVMQG_F_LINK		(1U << 1)
#define KVMQG_F_CHAIN_START	(1U << 2)

/**
 * struct kvmqg_info - ioctl(KVMQG_INFO)
 * @size: sizeof(struct kvmqg_info)
 * @flags: must be 0
 * @identity: output: the VM's kvmq identity (KVMQ_HC_SELF_ID), 0 if its
 *	VMM has not assigned one yet
 * @abi_version: output: kvmq's ABI version (KVMQ_HC_VERSION)
 * @features: output: KVMQ_FEATURE_* bits (KVMQ_HC_FEATURES)
 * @nr_queues: output: queues of the VM; 0 is the control queue, data
 *	queues are 1 to @nr_queues - 1
 * @depth: output: messages each queue holds at most
 * @aperture_len: output: bytes of the aperture, the extent of mmap()
 * @quota: output: bytes of memory the aperture may hold (the pages queued
 *	to the VM count against it too)
 * @held: output: bytes of the aperture the device's files hold now:
 *	allocated or received, not sent or released yet
 */
struct kvmqg_info {
	__u32 size;
	__u32 flags;
	__u32 identity;
	__u32 abi_version;
	__aligned_u64 features;
	__u32 nr_queues;
	__u32 depth;
	__aligned_u64 aperture_len;
	__aligned_u64 quota;
	__aligned_u64 held;
};

/**
 * struct kvmqg_send - ioctl(KVMQG_SEND)
 * @size: sizeof(struct kvmqg_send)
 * @flags: 0 or KVMQG_F_NONBLOCK
 * @dest: identity of the receiving VM
 * @queue: queue of the receiving VM
 * @kind: KVMQ_MSG_BYTES, KVMQ_MSG_PAGES or KVMQ_MSG_BLOCKS
 * @nr: pages or blocks: their number, 1 to KVMQ_MSG_PAGES_MAX or
 *	KVMQ_MSG_BLOCKS_MAX; bytes: must be 0
 * @len: payload bytes: at most KVMQ_MSG_BYTES_MAX for bytes, at most @nr
 *	pages or blocks otherwise
 * @__reserved: must be 0
 * @data: user address: bytes: the @len bytes of payload; pages and
 *	blocks: an array of @nr __u64 aperture offsets, of pages (4 KiB
 *	aligned) or blocks (2 MiB aligned) that this file holds
 *
 * The pages or blocks sent leave the file (and the aperture) once the
 * ioctl returns 0.
 */
struct kvmqg_send {
	__u32 size;
	__u32 flags;
	__u32 dest;
	__u32 queue;
	__u32 kind;
	__u32 nr;
	__u32 len;
	__u32 __reserved;
	__aligned_u64 data;
};

/**
 * struct kvmqg_recv - ioctl(KVMQG_RECV)
 * @size: sizeof(struct kvmqg_recv)
 * @flags: 0 or KVMQG_F_NONBLOCK
 * @queue: a data queue of the VM, 1 to nr_queues - 1
 * @kind: output: KVMQ_MSG_*
 * @sender: output: identity of the sending VM (KVMQ_ID_VMM for the VMM)
 * @nr: output: pages or blocks received; 0 for bytes
 * @len: output: payload bytes of the message
 * @data_len: bytes at @data
 * @offset: output: pages and blocks: aperture offset where they are now,
 *	contiguous; the file holds them until it releases (KVMQG_RELEASE),
 *	sends or closes.  0 for bytes.
 * @data: user address of a buffer of @data_len bytes for the payload of a
 *	bytes message; the first min(@len, @data_len) bytes are written
 *	(@len larger than @data_len: the rest is lost)
 */
struct kvmqg_recv {
	__u32 size;
	__u32 flags;
	__u32 queue;
	__u32 kind;
	__u32 sender;
	__u32 nr;
	__u32 len;
	__u32 data_len;
	__aligned_u64 offset;
	__aligned_u64 data;
};

/**
 * struct kvmqg_alloc - ioctl(KVMQG_ALLOC)
 * @size: sizeof(struct kvmqg_alloc)
 * @flags: must be 0
 * @kind: KVMQ_MSG_PAGES or KVMQ_MSG_BLOCKS
 * @nr: pages (1 to KVMQ_MSG_PAGES_MAX) or blocks (1 to KVMQ_MSG_BLOCKS_MAX)
 * @offset: output: aperture offset of the range, 2 MiB aligned for blocks
 *
 * Gives the file a free range of the aperture, backed by the host (zeroed
 * pages where nothing was) so that no received message lands there.
 */
struct kvmqg_alloc {
	__u32 size;
	__u32 flags;
	__u32 kind;
	__u32 nr;
	__aligned_u64 offset;
};

/**
 * struct kvmqg_release - ioctl(KVMQG_RELEASE)
 * @size: sizeof(struct kvmqg_release)
 * @flags: must be 0
 * @offset: aperture offset, 4 KiB aligned
 * @nr: number of 4 KiB pages, at least 1
 * @__reserved: must be 0
 *
 * Gives back pages the file holds (allocated or received): the host frees
 * them with their contents.
 */
struct kvmqg_release {
	__u32 size;
	__u32 flags;
	__aligned_u64 offset;
	__u32 nr;
	__u32 __reserved;
};

#define KVMQG_PEERS_MAX		64
#define KVMQG_PEER_NAME_LEN	32	/* with the terminating NUL */

/**
 * struct kvmqg_peer - an entry of the peer table
 * @name: 1 to KVMQG_PEER_NAME_LEN - 1 characters of [A-Za-z0-9_.-],
 *	NUL-terminated, NUL-padded
 * @id: the VM identity of @name
 * @__reserved: 0
 */
struct kvmqg_peer {
	char name[KVMQG_PEER_NAME_LEN];
	__u32 id;
	__u32 __reserved;
};

/**
 * struct kvmqg_peers - ioctl(KVMQG_PEERS)
 * @size: sizeof(struct kvmqg_peers)
 * @flags: must be 0
 * @max: entries the array at @peers has room for (0: only count)
 * @count: output: entries in the peer table (at most KVMQG_PEERS_MAX); the
 *	first min(@max, @count) are written to @peers, in the order the VMM
 *	first named them
 * @peers: user address of an array of @max struct kvmqg_peer
 * @ignored: output: lines of the control queue the driver did not
 *	understand, or could not apply (the table was full), since the
 *	device was probed
 * @__reserved: must be 0
 */
struct kvmqg_peers {
	__u32 size;
	__u32 flags;
	__u32 max;
	__u32 count;
	__aligned_u64 peers;
	__u32 ignored;
	__u32 __reserved;
};

/**
 * struct kvmqg_qlen - ioctl(KVMQG_QLEN)
 * @size: sizeof(struct kvmqg_qlen)
 * @flags: must be 0
 * @queue: a queue of the VM, 0 to nr_queues - 1
 * @len: output: messages in the queue (KVMQ_HC_QLEN), a snapshot
 */
struct kvmqg_qlen {
	__u32 size;
	__u32 flags;
	__u32 queue;
	__u32 len;
};

#define KVMQG_INFO		_IO(KVMQG_TYPE, 0x40)
#define KVMQG_SEND		_IO(KVMQG_TYPE, 0x41)
#define KVMQG_RECV		_IO(KVMQG_TYPE, 0x42)
#define KVMQG_ALLOC		_IO(KVMQG_TYPE, 0x43)
#define KVMQG_RELEASE		_IO(KVMQG_TYPE, 0x44)
#define KVMQG_PEERS		_IO(KVMQG_TYPE, 0x45)
#define KVMQG_QLEN		_IO(KVMQG_TYPE, 0x46)

/**
 * struct kvmqg_uring - the command of an io_uring IORING_OP_URING_CMD
 * @arg: user address of the struct kvmqg_send or struct kvmqg_recv, as
 *	the ioctl takes it
 * @flags: must be 0
 * @__reserved: must be 0
 *
 * An IORING_OP_URING_CMD entry on the device, with 64-byte entries, has
 * sqe->cmd_op KVMQG_SEND or KVMQG_RECV and this structure in sqe->cmd.
 * The structure at @arg, and the payload or offsets it points to, must
 * stay valid until the completion.  The completion's res is what the
 * ioctl would have returned: 0, or a negated errno; -EINVAL for a bad
 * command, -EOPNOTSUPP for another cmd_op or flags.
 *
 * KVMQG_SEND never waits: a full queue completes it with -EAGAIN or
 * -ENOBUFS, the file keeping the pages.  Where the device has rings, the
 * driver writes the send into the submission ring of the vCPU the
 * submitter runs on, as a lazy entry (Documentation/hypercalls.rst,
 * "Rings"): it runs at that vCPU's next natural exit, without an exit of
 * its own, and completes after it ran.  Sends submitted on one CPU run in
 * the order they were submitted; a program that needs order keeps to one
 * CPU (sched_setaffinity()).  Without rings the send runs at once.
 *
 * KVMQG_F_LINK keeps a stream in order across refusals: the file's next
 * send on the same CPU runs only if this one succeeds, else it completes
 * with -ECANCELED, and so on along the sends that carry the flag, however
 * late they were submitted.  A send with KVMQG_F_CHAIN_START starts a new
 * chain: a stream resends the refused one and those cancelled behind it,
 * the first of them with that flag, once all of them completed.  A send
 * of another file on that CPU in between also ends the chain, as does
 * closing the file.
 *
 * KVMQG_RECV is the ioctl: it completes at once when a message is there,
 * else it waits in an io_uring worker, unless KVMQG_F_NONBLOCK is set.
 */
struct kvmqg_uring {
	__aligned_u64 arg;
	__u32 flags;
	__u32 __reserved;
};

#endif /* _UAPI_LINUX_KVMQ_GUEST_H */
