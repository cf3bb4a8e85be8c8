/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmq-pci: the PCI device through which a VMM exposes one kvmq-attached VM
 * to its guest (register interface version 1).
 *
 * BAR0	4 KiB of 32-bit little-endian registers at the offsets
 *	KVMQ_PCI_REG_* below, read-only but for KVMQ_PCI_REG_RINGS (writes
 *	to the others are ignored).
 * BAR1	the MSI-X table and PBA.  Vector q, for q below NR_QUEUES, fires
 *	when a message enters queue q; vector NR_QUEUES fires when a queue
 *	that refused a send of this VM (-EAGAIN, -ENOBUFS) may take it now.
 *	Interrupts may be spurious or coalesced.
 * BAR2	the VM's kvmq aperture: 64-bit prefetchable memory, APERTURE bytes
 *	(a power of 2, at least 2 MiB), RAM on the host, to be mapped
 *	write-back.  Its guest-physical address is the aperture's: kvmq
 *	hypercalls take and return guest-physical addresses inside it.
 * BAR4	present if KVMQ_PCI_REG_RINGS has KVMQ_PCI_RINGS_OFFERED: the VM's
 *	rings (KVMQ_VM_SET_RINGS in kvmq.h), 64-bit prefetchable memory,
 *	RAM on the host, to be mapped write-back.  The driver writes
 *	KVMQ_PCI_RINGS_SETUP to KVMQ_PCI_REG_RINGS, once it has released
 *	the pages an earlier driver held; the device then sets the rings up
 *	(once per attachment: a reset keeps them) and maps them at offset 0
 *	of the BAR, and the register reads KVMQ_PCI_RINGS_READY with the
 *	layout in KVMQ_PCI_REG_RX_ENTRIES to KVMQ_PCI_REG_RINGS_LEN.  From
 *	then on KVMQ_HC_RECV fails with -EOPNOTSUPP: messages arrive in the
 *	receive rings, and an arrival interrupt fires only while the ring's
 *	flags ask for it (KVMQ_RING_F_WAKE).
 *
 * The guest talks to kvmq itself with the hypercalls of
 * include/uapi/linux/kvmq.h; the device only describes the VM and carries
 * the interrupts.
 */
#ifndef _UAPI_LINUX_KVMQ_PCI_H
#define _UAPI_LINUX_KVMQ_PCI_H

#define KVMQ_PCI_VENDOR_ID	0x1b36
#define KVMQ_PCI_DEVICE_ID	0x0120
#define KVMQ_PCI_REVISION	1
/* PCI_CLASS_OTHERS */
#define KVMQ_PCI_CLASS		0xff00

#define KVMQ_PCI_REGS_BAR	0
#define KVMQ_PCI_MSIX_BAR	1
#define KVMQ_PCI_APERTURE_BAR	2
#define KVMQ_PCI_RINGS_BAR	4
#define KVMQ_PCI_REGS_SIZE	0x1000

#define KVMQ_PCI_MAGIC		0x514d564b	/* "KVMQ", little-endian */
#define KVMQ_PCI_REGS_VERSION	1

/* Register offsets in BAR0, each a 32-bit little-endian value. */
#define KVMQ_PCI_REG_MAGIC		0x00	/* KVMQ_PCI_MAGIC */
#define KVMQ_PCI_REG_REGS_VERSION	0x04	/* KVMQ_PCI_REGS_VERSION */
#define KVMQ_PCI_REG_ABI		0x08	/* kvmq's KVMQ_ABI_VERSION */
/* The VM's kvmq identity, 0 if none yet; KVMQ_HC_SELF_ID is the authority. */
#define KVMQ_PCI_REG_IDENTITY		0x0c
/* Queues 0 to NR_QUEUES - 1; queue 0 is the control queue (VMM posts). */
#define KVMQ_PCI_REG_NR_QUEUES		0x10
#define KVMQ_PCI_REG_NR_VCPU_QUEUES	0x14	/* per-vCPU queues */
#define KVMQ_PCI_REG_DEPTH		0x18	/* messages per queue */
#define KVMQ_PCI_REG_NR_VECTORS		0x1c	/* MSI-X vectors: NR_QUEUES + 1 */
#define KVMQ_PCI_REG_APERTURE_LO	0x20	/* aperture bytes, low 32 bits */
#define KVMQ_PCI_REG_APERTURE_HI	0x24	/* high 32 bits */
#define KVMQ_PCI_REG_QUOTA_LO		0x28	/* aperture quota bytes, low */
#define KVMQ_PCI_REG_QUOTA_HI		0x2c	/* high */
/* Read: KVMQ_PCI_RINGS_*; write KVMQ_PCI_RINGS_SETUP to set them up. */
#define KVMQ_PCI_REG_RINGS		0x30
/* Once KVMQ_PCI_RINGS_READY: struct kvmq_vm_rings's fields, else 0. */
#define KVMQ_PCI_REG_RX_ENTRIES		0x34
#define KVMQ_PCI_REG_SQ_ENTRIES		0x38
#define KVMQ_PCI_REG_RX_STRIDE		0x3c
#define KVMQ_PCI_REG_VCPU_OFFSET	0x40
#define KVMQ_PCI_REG_VCPU_STRIDE	0x44
#define KVMQ_PCI_REG_CQ_OFFSET		0x48
#define KVMQ_PCI_REG_RINGS_LEN		0x4c	/* bytes, at most 64 MiB */

#define KVMQ_PCI_RINGS_OFFERED		(1U << 0)	/* read */
#define KVMQ_PCI_RINGS_READY		(1U << 1)	/* read */
#define KVMQ_PCI_RINGS_SETUP		1		/* write */

#endif /* _UAPI_LINUX_KVMQ_PCI_H */
