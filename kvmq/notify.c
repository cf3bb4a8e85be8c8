// SPDX-License-Identifier: GPL-2.0
/*
 * Notifications through eventfds (KVMQ_VM_SET_NOTIFY), which a VMM binds
 * to guest interrupts with KVM_IRQFD: a message arrived in a queue, or a
 * queue that refused one of the VM's sends has room.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/slab.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

/* The eventfd of @fd, NULL for -1, or an ERR_PTR(). */
static struct eventfd_ctx *kvmq_eventfd_get(int fd)
{
	struct eventfd_ctx *ctx;

	if (fd == -1)
		return NULL;
	CLASS(fd, f)(fd);
	if (fd_empty(f))
		return ERR_PTR(-EBADF);
	ctx = eventfd_ctx_fileget(fd_file(f));
	return IS_ERR(ctx) ? ERR_PTR(-EINVAL) : ctx;
}

long kvmq_vm_set_notify(void *priv, void *arg)
{
	struct kvmq_vm_notify *n = arg;
	struct kvmq_vm *vm = priv;
	struct eventfd_ctx *ctx, *old;
	struct kvmq_queue *q = NULL;

	if (n->queue != KVMQ_NOTIFY_SPACE) {
		if (!kvmq_vm_queues(vm))
			return -ENODEV;
		q = kvmq_queue(kvmq_vm_queues(vm), n->queue);
		if (!q)
			return -EINVAL;
	}
	ctx = kvmq_eventfd_get(n->fd);
	if (IS_ERR(ctx))
		return PTR_ERR(ctx);

	if (q) {
		scoped_guard(mutex, &q->lock) {
			old = q->notify;
			q->notify = ctx;
		}
	} else {
		scoped_guard(spinlock, &vm->notify_lock) {
			old = vm->space;
			vm->space = ctx;
		}
	}
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

/**
 * kvmq_notify_arrival - messages entered @q: signal its eventfd if wanted
 * @vm: the VM @q belongs to
 * @q: a queue, locked
 *
 * With a receive ring, only if the guest set KVMQ_RING_F_WAKE: the full
 * barrier orders the caller's publication of the ring's @prod before the
 * read of @flags, and pairs with the guest's barrier between setting the
 * flag and reading @prod again (include/uapi/linux/kvmq.h).
 */
void kvmq_notify_arrival(struct kvmq_vm *vm, struct kvmq_queue *q)
{
	lockdep_assert_held(&q->lock);
	if (!q->notify)
		return;
	if (q->rx) {
		/* @prod before @flags; pairs with the guest's full barrier. */
		smp_mb();
		if (!(READ_ONCE(q->rx->flags) & KVMQ_RING_F_WAKE)) {
			atomic64_inc(&kvmq_stats.notify_suppressed);
			atomic64_inc(&vm->stats.suppressed);
			return;
		}
	}
	eventfd_signal(q->notify);
	atomic64_inc(&kvmq_stats.notify_signalled);
	atomic64_inc(&vm->stats.notified);
}

/*
 * A send of @sender was refused by @q, full or over budget: remember to
 * tell it when @q has room.  One entry per identity, so the memory is
 * bounded by the senders the queue's VMM granted.  A failure to remember
 * costs only the notification.
 */
void kvmq_notify_refused(struct kvmq_queue *q, u32 sender)
{
	lockdep_assert_held(&q->lock);
	if (sender != KVMQ_ID_VMM)
		xa_store(&q->waiters, sender, xa_mk_value(1),
			 GFP_KERNEL_ACCOUNT);
}

/* Signal the room notification of the VM @id of @group, if it has one. */
static void kvmq_notify_space(struct kvmq_group *group, u32 id)
{
	struct kvmq_vm *vm;

	guard(rcu)();
	vm = xa_load(&group->ids, id);
	if (!vm)
		return;
	guard(spinlock)(&vm->notify_lock);
	if (vm->space) {
		eventfd_signal(vm->space);
		atomic64_inc(&kvmq_stats.space_signalled);
		atomic64_inc(&vm->stats.room_notified);
	}
}

/**
 * kvmq_notify_room - @q, a queue of @vm, may take more: tell who waits
 * @vm: the VM the queue belongs to
 * @q: the queue, locked
 */
void kvmq_notify_room(struct kvmq_vm *vm, struct kvmq_queue *q)
{
	unsigned long id;
	void *entry;

	lockdep_assert_held(&q->lock);
	if (xa_empty(&q->waiters))
		return;
	xa_for_each(&q->waiters, id, entry) {
		xa_erase(&q->waiters, id);
		/* The group is set with the identity, before any send. */
		if (vm->group)
			kvmq_notify_space(vm->group, id);
	}
}

/*
 * Called when the VM is freed.  A peer may still be in kvmq_notify_space()
 * for it: it found the VM in the group's identities under RCU before the
 * per-VM file's release erased it, and holds no reference.  The object
 * itself outlives that peer's RCU read-side section (kfree_rcu()), the
 * room eventfd does not: take it away under the lock the peer signals it
 * under, so that the peer either signals it before it is put or finds none.
 */
void kvmq_notify_destroy(struct kvmq_vm *vm)
{
	struct eventfd_ctx *space;

	scoped_guard(spinlock, &vm->notify_lock) {
		space = vm->space;
		vm->space = NULL;
	}
	if (space)
		eventfd_ctx_put(space);
}
