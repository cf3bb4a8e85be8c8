// SPDX-License-Identifier: GPL-2.0
/*
 * Submission and completion rings: KVMQ_HC_SUBMIT consumes the calling
 * vCPU's submission ring, runs each entry as the hypercall it names, and
 * produces one completion per entry, in order.
 *
 * Only the vCPU's own thread runs this, and KVM runs a vCPU with its mutex
 * held, so the vCPU's ring state (struct kvmq_vcpu_rings) needs no lock.
 * The rings themselves are guest memory: every index and entry is read
 * once, checked, then used (include/uapi/linux/kvmq.h, struct kvmq_ring).
 */
#include <linux/sched.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

/* Run one submission entry, already copied out of the ring. */
static long kvmq_sqe_run(struct kvmq_vm *vm, const struct kvmq_sqe *sqe)
{
	if (sqe->flags & ~KVMQ_SQE_LAZY || sqe->__reserved)
		return -EINVAL;

	switch (sqe->op) {
	case KVMQ_OP_SEND:
		if (sqe->nr)
			return -EINVAL;
		return kvmq_hc_send(vm, sqe->dest, sqe->queue, sqe->gpa);
	case KVMQ_OP_RELEASE:
		if (sqe->dest || sqe->queue)
			return -EINVAL;
		return kvmq_ap_release(vm, sqe->gpa, sqe->nr);
	default:
		return -EINVAL;
	}
}

static void *kvmq_ring_entry(struct kvmq_ring *ring, u32 entries, u32 n,
			     size_t size)
{
	return (void *)(ring + 1) + (n & (entries - 1)) * size;
}

/* Entry @n of the submission ring of @vr, which has @entries entries. */
const struct kvmq_sqe *kvmq_sq_entry(struct kvmq_vcpu_rings *vr,
				     u32 entries, u32 n)
{
	return kvmq_ring_entry(vr->sq, entries, n, sizeof(struct kvmq_sqe));
}

/*
 * Consume the submission ring of @vr while the completion ring has room;
 * with @lazy, only as far as the entries are KVMQ_SQE_LAZY.  Return the
 * number of entries consumed.
 */
static long kvmq_sq_run(struct kvmq_vm *vm, struct kvmq_vcpu_rings *vr,
			u32 entries, bool lazy)
{
	struct kvmq_cqe *cqe;
	struct kvmq_sqe sqe;
	u32 prod, cons;
	long n = 0, res;

	lockdep_assert_held(&vr->lock);
	/* Pairs with the guest's store-release of @prod: the entries are in. */
	prod = smp_load_acquire(&vr->sq->prod);
	if (prod - vr->sq_cons > entries)
		return 0;	/* not sane: nothing to consume */

	while (vr->sq_cons != prod) {
		/* Pairs with the guest's store-release of the CQ's @cons. */
		cons = smp_load_acquire(&vr->cq->cons);
		if (vr->cq_prod - cons >= entries)
			break;	/* full, or not sane */

		memcpy(&sqe, kvmq_sq_entry(vr, entries, vr->sq_cons),
		       sizeof(sqe));
		if (lazy && !(sqe.flags & KVMQ_SQE_LAZY))
			break;	/* waits for the doorbell */
		/* Done with the entry: the guest may reuse its slot. */
		smp_store_release(&vr->sq->cons, ++vr->sq_cons);

		res = kvmq_sqe_run(vm, &sqe);

		cqe = kvmq_ring_entry(vr->cq, entries, vr->cq_prod,
				      sizeof(*cqe));
		cqe->user_data = sqe.user_data;
		cqe->res = res;
		cqe->flags = 0;
		/* Pairs with the guest's load-acquire of the CQ's @prod. */
		smp_store_release(&vr->cq->prod, ++vr->cq_prod);
		n++;
		cond_resched();
	}
	return n;
}

/**
 * kvmq_hc_submit - KVMQ_HC_SUBMIT
 * @vm: the VM
 * @vcpu: the calling vCPU, whose submission ring is consumed
 * @flags: must be 0
 *
 * Return: the number of submission entries consumed (the rest wait for
 * room in the completion ring), or -EINVAL (@flags), -ENODEV (no rings),
 * -ENOENT (the vCPU has no rings).
 */
long kvmq_hc_submit(struct kvmq_vm *vm, struct kvm_vcpu *vcpu,
		    unsigned long flags)
{
	struct kvmq_rings *r = kvmq_vm_rings(vm);
	long n;

	if (flags)
		return -EINVAL;
	if (!r)
		return -ENODEV;
	if (vcpu->vcpu_id >= r->nr_vcpus)
		return -ENOENT;

	scoped_guard(mutex, &r->vcpu[vcpu->vcpu_id].lock)
		n = kvmq_sq_run(vm, &r->vcpu[vcpu->vcpu_id], r->sq_entries,
				false);
	kvmq_rx_refill(vm);
	return n;
}

/**
 * kvmq_submit_lazy - a lazy batch, at a natural exit of the vCPU of @vr
 * @vm: the VM, with rings
 * @vr: the vCPU's rings
 *
 * Runs the leading KVMQ_SQE_LAZY entries of the vCPU's submission ring and
 * fills the VM's receive rings.  Called in the vCPU's thread, with the
 * VM's SRCU read lock held, from the task_work of lazy.c.
 */
void kvmq_submit_lazy(struct kvmq_vm *vm, struct kvmq_vcpu_rings *vr)
{
	struct kvmq_rings *r = kvmq_vm_rings(vm);
	long n;

	scoped_guard(mutex, &vr->lock)
		n = kvmq_sq_run(vm, vr, r->sq_entries, true);
	if (n)
		atomic64_inc(&kvmq_stats.lazy_batches);
	kvmq_rx_refill(vm);
}
