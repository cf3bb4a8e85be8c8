// SPDX-License-Identifier: GPL-2.0
/*
 * Attached VMs: the per-VM kvmq file, groups and identities, and lookup
 * from a vCPU.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/xarray.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

/*
 * kvmq_lock protects: the writers of kvmq_vms, of every group's identities,
 * and the assignment of kvmq_vm::id and ::group.  Taken in process context
 * only.  No KVM lock is taken under it and kvm_put_kvm() is never called
 * with it held; under it kvmq only allocates, creates the per-VM file and
 * takes the xarrays' own locks.
 */
static DEFINE_MUTEX(kvmq_lock);

/* Attached VMs keyed by struct kvm *; RCU readers, writers hold kvmq_lock. */
static DEFINE_HASHTABLE(kvmq_vms, 6);

static void kvmq_group_free(struct kref *ref)
{
	struct kvmq_group *group = container_of(ref, struct kvmq_group, ref);

	/* Members held references: none is left in @ids. */
	WARN_ON_ONCE(!xa_empty(&group->ids));
	xa_destroy(&group->ids);
	kfree_rcu(group, rcu);
}

static void kvmq_group_put(struct kvmq_group *group)
{
	kref_put(&group->ref, kvmq_group_free);
}

static int kvmq_group_release(struct inode *inode, struct file *file)
{
	kvmq_group_put(file->private_data);
	return 0;
}

static const struct file_operations kvmq_group_fops = {
	.owner = THIS_MODULE,
	.release = kvmq_group_release,
	.llseek = noop_llseek,
};

/**
 * kvmq_group_create - create a group and a file descriptor for it
 *
 * Return: the file descriptor, or a negative errno.
 */
int kvmq_group_create(void)
{
	struct kvmq_group *group;
	int fd;

	group = kzalloc(sizeof(*group), GFP_KERNEL_ACCOUNT);
	if (!group)
		return -ENOMEM;
	kref_init(&group->ref);
	xa_init(&group->ids);

	fd = anon_inode_getfd("[kvmq-group]", &kvmq_group_fops, group,
			      O_RDWR | O_CLOEXEC);
	if (fd < 0)
		kfree(group);
	return fd;
}

/* The VM's identity, 0 if none; its group is set once it is not 0. */
u32 kvmq_vm_id(struct kvmq_vm *vm)
{
	/* Pairs with smp_store_release() in kvmq_vm_set_identity(). */
	return smp_load_acquire(&vm->id);
}

/**
 * kvmq_vm_get_peer - take a reference on the VM of @id in @vm's group
 * @vm: a VM with an identity
 * @id: the identity to look up
 *
 * Return: the VM (possibly @vm itself), or NULL if the group has no @id.
 * Drop the reference with kvmq_vm_put().
 */
struct kvmq_vm *kvmq_vm_get_peer(struct kvmq_vm *vm, u32 id)
{
	struct kvmq_vm *peer;

	if (!kvmq_vm_id(vm))
		return NULL;

	guard(rcu)();
	peer = xa_load(&vm->group->ids, id);
	if (peer && !kref_get_unless_zero(&peer->ref))
		peer = NULL;
	return peer;
}

/* Caller holds rcu_read_lock() or kvmq_lock. */
static struct kvmq_vm *kvmq_vm_find(struct kvm *kvm)
{
	struct kvmq_vm *vm;

	hash_for_each_possible_rcu(kvmq_vms, vm, hnode, (unsigned long)kvm,
				   lockdep_is_held(&kvmq_lock))
		if (vm->kvm == kvm)
			return vm;
	return NULL;
}

/**
 * kvmq_vm_find_rcu - the kvmq state of @kvm, without a reference
 * @kvm: a VM that is alive for the duration of the call
 *
 * Caller holds rcu_read_lock(); the object stays valid until it drops it.
 * Its rings are freed only after an RCU grace period (kvmq_vm_free()).
 */
struct kvmq_vm *kvmq_vm_find_rcu(struct kvm *kvm)
{
	return kvmq_vm_find(kvm);
}

/**
 * kvmq_vm_is_attached - whether @kvm has an open per-VM kvmq file
 * @kvm: a VM that is alive for the duration of the call
 *
 * Callable from any context, including the ftrace handler.
 */
bool kvmq_vm_is_attached(struct kvm *kvm)
{
	guard(rcu)();
	return !!kvmq_vm_find(kvm);
}

/**
 * kvmq_vm_get_by_kvm - take a reference on the kvmq state of @kvm
 * @kvm: a VM that is alive for the duration of the call
 *
 * Return: the attached VM, or NULL if @kvm is not (or no longer) attached.
 * Drop the reference with kvmq_vm_put().
 */
struct kvmq_vm *kvmq_vm_get_by_kvm(struct kvm *kvm)
{
	struct kvmq_vm *vm;

	guard(rcu)();
	vm = kvmq_vm_find(kvm);
	if (vm && !kref_get_unless_zero(&vm->ref))
		vm = NULL;
	return vm;
}

/*
 * The end of a struct kvmq_vm.  The per-VM file's release unpublished it
 * (kvmq_vm_release()), so new hypercalls no longer find it; the last of the
 * hypercalls still running drops the last reference and lands here, in
 * process context with no kvmq lock held, which is what kvm_put_kvm() needs.
 * RCU readers may still be looking at the object: free it after a grace
 * period.
 */
static void kvmq_vm_free(struct kref *ref)
{
	struct kvmq_vm *vm = container_of(ref, struct kvmq_vm, ref);

	if (vm->rings) {
		kvmq_lazy_timers_stop(vm->rings);
		/*
		 * The kvm_exit probe may still read them, and the queues'
		 * rx_backlog, under RCU: free both after a grace period.
		 */
		synchronize_rcu();
		kvmq_rings_free(vm->rings);
		kvmq_lazy_put();
	}
	kvmq_queues_destroy(vm);
	kvmq_aperture_destroy(&vm->ap);
	kvmq_notify_destroy(vm);
	if (vm->group)
		kvmq_group_put(vm->group);
	kvm_put_kvm(vm->kvm);
	kfree_rcu(vm, rcu);
}

void kvmq_vm_put(struct kvmq_vm *vm)
{
	kref_put(&vm->ref, kvmq_vm_free);
}

/* Drops the references kvmq_vm_put_peer() could not drop in place. */
static struct workqueue_struct *kvmq_wq;

static void kvmq_vm_put_work(struct work_struct *work)
{
	kvmq_vm_put(container_of(work, struct kvmq_vm, put_work));
}

/**
 * kvmq_vm_put_peer - drop a reference taken by kvmq_vm_get_peer()
 * @vm: the peer
 *
 * Called in the sender's vCPU thread, in the middle of a KVM exit.  If the
 * peer detached meanwhile, this may be its last reference, and freeing it
 * would destroy the peer's KVM VM here, loading and putting the peer's
 * vCPUs on top of the sender's.  That last reference is dropped by a
 * kworker instead.  Only the holder of the last reference queues the work,
 * so it is never queued twice at once.
 */
void kvmq_vm_put_peer(struct kvmq_vm *vm)
{
	if (refcount_dec_not_one(&vm->ref.refcount))
		return;
	queue_work(kvmq_wq, &vm->put_work);
}

int __init kvmq_vm_module_init(void)
{
	kvmq_wq = alloc_workqueue("kvmq", 0, 0);
	return kvmq_wq ? 0 : -ENOMEM;
}

/* After the last file is gone: wait for the last deferred frees. */
void kvmq_vm_module_exit(void)
{
	destroy_workqueue(kvmq_wq);
}

static int kvmq_vm_release(struct inode *inode, struct file *file)
{
	struct kvmq_vm *vm = file->private_data;

	mutex_lock(&kvmq_lock);
	hash_del_rcu(&vm->hnode);
	if (vm->id)
		xa_erase(&vm->group->ids, vm->id);
	mutex_unlock(&kvmq_lock);

	/*
	 * Hypercalls still running hold references; they may not move pages
	 * through the file's mapping any more, nor enqueue messages that no
	 * one would receive.  What is queued is freed with the VM.
	 */
	kvmq_aperture_detach(vm);
	kvmq_queues_kill(vm);
	kvmq_vm_put(vm);
	return 0;
}

static long kvmq_vm_set_identity(void *priv, void *arg)
{
	struct kvmq_vm_identity *ident = arg;
	struct kvmq_vm *vm = priv;
	struct kvmq_group *group;
	int ret;

	if (!ident->id || ident->id > KVMQ_ID_MAX)
		return -EINVAL;

	CLASS(fd, f)(ident->group_fd);
	if (fd_empty(f))
		return -EBADF;
	if (fd_file(f)->f_op != &kvmq_group_fops)
		return -EINVAL;
	group = fd_file(f)->private_data;

	guard(mutex)(&kvmq_lock);
	if (vm->id)
		return -EBUSY;

	ret = xa_insert(&group->ids, ident->id, vm, GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret == -EBUSY ? -EEXIST : ret;

	kref_get(&group->ref);
	vm->group = group;
	/* Publish: pairs with smp_load_acquire() in kvmq_vm_id(). */
	smp_store_release(&vm->id, ident->id);
	return 0;
}

static long kvmq_vm_get_identity(void *priv, void *arg)
{
	struct kvmq_vm_identity *ident = arg;

	ident->id = kvmq_vm_id(priv);
	return 0;
}

static const struct kvmq_ioctl_op kvmq_vm_ioctls[] = {
	KVMQ_IOCTL_OP(KVMQ_VM_SET_IDENTITY, kvmq_vm_set_identity,
		      struct kvmq_vm_identity, group_fd, false),
	KVMQ_IOCTL_OP(KVMQ_VM_GET_IDENTITY, kvmq_vm_get_identity,
		      struct kvmq_vm_identity, group_fd, true),
	KVMQ_IOCTL_OP(KVMQ_VM_SET_APERTURE, kvmq_vm_set_aperture,
		      struct kvmq_vm_aperture, held, false),
	KVMQ_IOCTL_OP(KVMQ_VM_GET_APERTURE, kvmq_vm_get_aperture,
		      struct kvmq_vm_aperture, held, true),
	KVMQ_IOCTL_OP(KVMQ_VM_MOVE_APERTURE, kvmq_vm_move_aperture,
		      struct kvmq_vm_move_aperture, gpa, false),
	KVMQ_IOCTL_OP(KVMQ_VM_SET_QUEUES, kvmq_vm_set_queues,
		      struct kvmq_vm_queues, __reserved, false),
	KVMQ_IOCTL_OP(KVMQ_VM_GET_QUEUES, kvmq_vm_get_queues,
		      struct kvmq_vm_queues, __reserved, true),
	KVMQ_IOCTL_OP(KVMQ_VM_GET_QUEUE, kvmq_vm_get_queue,
		      struct kvmq_vm_queue_info, __reserved, true),
	KVMQ_IOCTL_OP(KVMQ_VM_GRANT, kvmq_vm_grant,
		      struct kvmq_vm_grant, sender, false),
	KVMQ_IOCTL_OP(KVMQ_VM_REVOKE, kvmq_vm_revoke,
		      struct kvmq_vm_grant, sender, false),
	KVMQ_IOCTL_OP(KVMQ_VM_POST, kvmq_vm_post,
		      struct kvmq_vm_post, data, false),
	KVMQ_IOCTL_OP(KVMQ_VM_SET_RINGS, kvmq_vm_set_rings,
		      struct kvmq_vm_rings, __reserved, true),
	KVMQ_IOCTL_OP(KVMQ_VM_SET_NOTIFY, kvmq_vm_set_notify,
		      struct kvmq_vm_notify, fd, false),
	KVMQ_IOCTL_OP(KVMQ_VM_GET_STATS, kvmq_vm_get_stats,
		      struct kvmq_vm_stats, room_notified, true),
};

/* The aperture from offset 0, the ring area at KVMQ_RINGS_MMAP_OFFSET. */
static int kvmq_vm_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff >= KVMQ_RINGS_MMAP_OFFSET >> PAGE_SHIFT)
		return kvmq_rings_mmap(file, vma);
	return kvmq_aperture_mmap(file, vma);
}

static long kvmq_vm_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct kvmq_vm *vm = file->private_data;

	/* Like KVM's own files: only the VM's process may drive it. */
	if (vm->kvm->mm != current->mm)
		return -EIO;

	return kvmq_ioctl_dispatch(kvmq_vm_ioctls, ARRAY_SIZE(kvmq_vm_ioctls),
				   vm, cmd, arg);
}

static const struct file_operations kvmq_vm_fops = {
	.owner = THIS_MODULE,
	.release = kvmq_vm_release,
	.unlocked_ioctl = kvmq_vm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = kvmq_vm_mmap,
	.get_unmapped_area = thp_get_unmapped_area,
	.llseek = noop_llseek,
};

/**
 * kvmq_vm_attach - attach a KVM VM and create its per-VM kvmq file
 * @vm_fd: a KVM VM file descriptor of the calling process
 *
 * Return: the new file descriptor, or a negative errno.
 */
int kvmq_vm_attach(int vm_fd)
{
	struct kvmq_vm *vm;
	struct file *file;
	struct kvm *kvm;
	int fd, ret;

	CLASS(fd, f)(vm_fd);
	if (fd_empty(f))
		return -EBADF;
	if (!file_is_kvm(fd_file(f)))
		return -EINVAL;

	kvm = fd_file(f)->private_data;
	if (kvm->mm != current->mm)
		return -EPERM;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		return -ENOMEM;
	kref_init(&vm->ref);
	spin_lock_init(&vm->notify_lock);
	INIT_WORK(&vm->put_work, kvmq_vm_put_work);
	vm->kvm = kvm;
	kvmq_aperture_init(&vm->ap);

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_free;
	}

	mutex_lock(&kvmq_lock);
	if (kvmq_vm_find(kvm)) {
		ret = -EEXIST;
		goto err_unlock;
	}

	file = anon_inode_create_getfile("[kvmq-vm]", &kvmq_vm_fops, vm,
					 O_RDWR, NULL);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_unlock;
	}

	vm->mapping = file->f_mapping;
	/* The VM fd is held (f), so the VM is alive to take a reference. */
	kvm_get_kvm(kvm);
	hash_add_rcu(kvmq_vms, &vm->hnode, (unsigned long)kvm);
	mutex_unlock(&kvmq_lock);

	fd_install(fd, file);
	return fd;

err_unlock:
	mutex_unlock(&kvmq_lock);
	put_unused_fd(fd);
err_free:
	kfree(vm);
	return ret;
}
