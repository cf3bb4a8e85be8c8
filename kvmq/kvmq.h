/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmq internal interfaces.
 *
 * Lock ordering (the one list is kept in Documentation/locking.rst):
 *
 *   kvmq_lock (mutex)
 *   mmap_lock -> kvmq_aperture.lock (rwsem) -> kvmq_aperture.alloc_lock
 *
 * Hypercall handlers run in a vCPU thread; they find their VM under RCU and
 * hold a reference (kvmq_vm_get_by_kvm()) for the duration of the call.
 */
#ifndef _KVMQ_H
#define _KVMQ_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/kvm_host.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/xarray.h>

/**
 * struct kvmq_aperture - memory of one VM owned by kvmq
 * @lock: held for read by the fault handlers while they look up and map
 *	a page; a page move (taking a page from the aperture) holds it for
 *	write, so that no fault maps a page being moved.
 * @alloc_lock: protects the configuration (set once), insertions into
 *	@pages and @held.  Nests inside @lock.
 * @pages: aperture page index -> struct page (order 0, one reference owned
 *	by the aperture).  Lookups are lockless (xarray RCU).
 * @gpa: guest-physical base the VMM declared
 * @nr_pages: size in pages; 0 until KVMQ_VM_SET_APERTURE, then constant.
 *	Published with smp_store_release() after @gpa and @quota.
 * @quota: the most pages @pages may hold
 * @held: pages in @pages
 */
struct kvmq_aperture {
	struct rw_semaphore lock;	/* faults (read) vs. moves (write) */
	struct mutex alloc_lock;	/* configuration, @pages, @held */
	struct xarray pages;
	u64 gpa;
	unsigned long nr_pages;
	unsigned long quota;
	unsigned long held;
};

/**
 * struct kvmq_vm - kvmq state of one attached KVM VM
 * @kvm: the VM; a reference is held for the life of this object
 * @hnode: entry in the table of attached VMs, keyed by @kvm.  Protected by
 *	kvmq_lock for writers, RCU for readers.
 * @ref: references: one from the per-VM file, one per running hypercall
 * @id: identity assigned by the VMM, 0 if none.  Written once under
 *	kvmq_lock; read locklessly with READ_ONCE().
 * @ap: the VM's aperture
 * @rcu: deferred free, for RCU readers of @hnode
 */
struct kvmq_vm {
	struct kvm *kvm;
	struct hlist_node hnode;
	struct kref ref;
	u32 id;
	struct kvmq_aperture ap;
	struct rcu_head rcu;
};

/* vm.c */
int kvmq_vm_attach(int vm_fd);
bool kvmq_vm_is_attached(struct kvm *kvm);
struct kvmq_vm *kvmq_vm_get_by_kvm(struct kvm *kvm);
void kvmq_vm_put(struct kvmq_vm *vm);

/* aperture.c */
void kvmq_aperture_init(struct kvmq_aperture *ap);
void kvmq_aperture_destroy(struct kvmq_aperture *ap);
long kvmq_vm_set_aperture(void *priv, void *arg);
long kvmq_vm_get_aperture(void *priv, void *arg);
int kvmq_aperture_mmap(struct file *file, struct vm_area_struct *vma);
void kvmq_aperture_module_init(void);
void kvmq_aperture_module_exit(void);

/* dev.c */

/**
 * struct kvmq_ioctl_op - one extensible ioctl
 * @cmd: ioctl number
 * @min_size: size of the first version of the argument structure
 * @size: size of the argument structure this module knows
 * @flags: flags the module accepts in the argument's @flags field
 * @copy_out: write the structure back to userspace on success
 * @fn: handler; @priv is the file's private data, @arg the copied argument
 */
struct kvmq_ioctl_op {
	unsigned int cmd;
	u32 min_size;
	u32 size;
	u32 flags;
	bool copy_out;
	long (*fn)(void *priv, void *arg);
};

/*
 * A table entry: @_last is the last field of the first version of @_struct.
 * No kvmq ioctl takes flags yet.
 */
#define KVMQ_IOCTL_OP(_cmd, _fn, _struct, _last, _copy_out)		\
	{								\
		.cmd = _cmd,						\
		.min_size = offsetofend(_struct, _last),		\
		.size = sizeof(_struct),				\
		.flags = 0,						\
		.copy_out = _copy_out,					\
		.fn = _fn,						\
	}

long kvmq_ioctl_dispatch(const struct kvmq_ioctl_op *ops, size_t nr_ops,
			 void *priv, unsigned int cmd, unsigned long uarg);
int kvmq_dev_init(void);
void kvmq_dev_exit(void);

/* hypercall.c */
int kvmq_hypercall_init(void);
void kvmq_hypercall_exit(void);

#endif /* _KVMQ_H */
