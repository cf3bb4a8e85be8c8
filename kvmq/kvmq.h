/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmq internal interfaces.
 *
 * Lock ordering (the one list is kept in Documentation/locking.rst):
 *
 *   kvmq_lock (mutex)
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

/**
 * struct kvmq_vm - kvmq state of one attached KVM VM
 * @kvm: the VM; a reference is held for the life of this object
 * @hnode: entry in the table of attached VMs, keyed by @kvm.  Protected by
 *	kvmq_lock for writers, RCU for readers.
 * @ref: references: one from the per-VM file, one per running hypercall
 * @id: identity assigned by the VMM, 0 if none.  Written once under
 *	kvmq_lock; read locklessly with READ_ONCE().
 * @rcu: deferred free, for RCU readers of @hnode
 */
struct kvmq_vm {
	struct kvm *kvm;
	struct hlist_node hnode;
	struct kref ref;
	u32 id;
	struct rcu_head rcu;
};

/* vm.c */
int kvmq_vm_attach(int vm_fd);
bool kvmq_vm_is_attached(struct kvm *kvm);
struct kvmq_vm *kvmq_vm_get_by_kvm(struct kvm *kvm);
void kvmq_vm_put(struct kvmq_vm *vm);

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

long kvmq_ioctl_dispatch(const struct kvmq_ioctl_op *ops, size_t nr_ops,
			 void *priv, unsigned int cmd, unsigned long uarg);
int kvmq_dev_init(void);
void kvmq_dev_exit(void);

/* hypercall.c */
int kvmq_hypercall_init(void);
void kvmq_hypercall_exit(void);

#endif /* _KVMQ_H */
