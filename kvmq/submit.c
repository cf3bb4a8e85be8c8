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
#include <linux/slab.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"
#include "trace.h"

/* Sends of one submission ring run together, sharing one unmap. */
#define KVMQ_SEND_BATCH		64

/* Check a submission entry, already copied out of the ring. */
static int kvmq_sqe_check(const struct kvmq_sqe *sqe)
{
	if (sqe->flags & ~(KVMQ_SQE_LAZY | KVMQ_SQE_LINK) || sqe->__reserved)
		return -EINVAL;

	switch (sqe->op) {
	case KVMQ_OP_SEND:
		return sqe->nr ? -EINVAL : 0;
	case KVMQ_OP_RELEASE:
		return sqe->dest || sqe->queue ? -EINVAL : 0;
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

/* Post a completion; the caller checked that the ring has room. */
static void kvmq_cq_post(struct kvmq_vcpu_rings *vr, u32 entries,
			 u64 user_data, long res)
{
	struct kvmq_cqe *cqe = kvmq_ring_entry(vr->cq, entries, vr->cq_prod,
					       sizeof(*cqe));

	cqe->user_data = user_data;
	cqe->res = res;
	cqe->flags = 0;
	/* Pairs with the guest's load-acquire of the CQ's @prod. */
	smp_store_release(&vr->cq->prod, ++vr->cq_prod);
}

/* Run the sends gathered in @s and post their completions, in order. */
static void kvmq_sq_flush(struct kvmq_vm *vm, struct kvmq_vcpu_rings *vr,
			  u32 entries, struct kvmq_send *s, const u64 *ud,
			  u32 n)
{
	u32 i;

	kvmq_send_batch(vm, s, n);
	for (i = 0; i < n; i++)
		kvmq_cq_post(vr, entries, ud[i], s[i].ret);
	vr->last_res = s[n - 1].ret;
	memset(s, 0, n * sizeof(*s));
}

/*
 * Consume the submission ring of @vr while the completion ring has room;
 * with @lazy, only as far as the entries are KVMQ_SQE_LAZY.  Consecutive
 * sends, up to KVMQ_SEND_BATCH of them, run as one batch: their page
 * moves share one unmap (kvmq_send_batch()).  @s and @ud hold a batch.
 * Return the number of entries consumed.
 */
static long kvmq_sq_run(struct kvmq_vm *vm, struct kvmq_vcpu_rings *vr,
			u32 entries, bool lazy, struct kvmq_send *s, u64 *ud)
{
	u32 prod, cons, room, nsend = 0;
	struct kvmq_sqe sqe;
	bool batch, dep;
	long n = 0, res;

	lockdep_assert_held(&vr->lock);
	/* Pairs with the guest's store-release of @prod: the entries are in. */
	prod = smp_load_acquire(&vr->sq->prod);
	if (prod - vr->sq_cons > entries)
		return 0;	/* not sane: nothing to consume */
	/* Pairs with the guest's store-release of the CQ's @cons. */
	cons = smp_load_acquire(&vr->cq->cons);
	room = vr->cq_prod - cons <= entries ? entries - (vr->cq_prod - cons) : 0;

	while (vr->sq_cons != prod && room) {
		memcpy(&sqe, kvmq_sq_entry(vr, entries, vr->sq_cons),
		       sizeof(sqe));
		if (lazy && !(sqe.flags & KVMQ_SQE_LAZY))
			break;	/* waits for the doorbell */
		/* Done with the entry: the guest may reuse its slot. */
		smp_store_release(&vr->sq->cons, ++vr->sq_cons);
		room--;
		n++;
		trace_kvmq_submit(kvmq_vm_id(vm), vr - kvmq_vm_rings(vm)->vcpu,
				  sqe.op, sqe.flags, sqe.user_data);

		res = kvmq_sqe_check(&sqe);
		batch = !res && sqe.op == KVMQ_OP_SEND && s;
		/* Does this entry depend on the one before (KVMQ_SQE_LINK)? */
		dep = vr->link;
		vr->link = sqe.flags & KVMQ_SQE_LINK;
		if (dep && nsend && !batch) {
			/* It is in the batch: learn its result. */
			kvmq_sq_flush(vm, vr, entries, s, ud, nsend);
			nsend = 0;
		}
		if (dep && !nsend && vr->last_res < 0) {
			res = res ?: -ECANCELED;
			batch = false;
		}

		if (batch) {
			/* kvmq_send_commit() cancels it if the one before fails. */
			s[nsend].dep = dep && nsend;
			s[nsend].dest = sqe.dest;
			s[nsend].queue = sqe.queue;
			s[nsend].gpa = sqe.gpa;
			ud[nsend++] = sqe.user_data;
			if (nsend == KVMQ_SEND_BATCH) {
				kvmq_sq_flush(vm, vr, entries, s, ud, nsend);
				nsend = 0;
			}
			continue;
		}

		/* Anything else runs alone, after the sends before it. */
		if (nsend) {
			kvmq_sq_flush(vm, vr, entries, s, ud, nsend);
			nsend = 0;
		}
		if (!res)
			res = sqe.op == KVMQ_OP_SEND ?
			      kvmq_hc_send(vm, sqe.dest, sqe.queue, sqe.gpa) :
			      kvmq_release(vm, sqe.gpa, sqe.nr);
		kvmq_cq_post(vr, entries, sqe.user_data, res);
		vr->last_res = res;
		cond_resched();
	}
	if (nsend)
		kvmq_sq_flush(vm, vr, entries, s, ud, nsend);
	return n;
}

/*
 * Run the rings of @vr.  Without memory for a batch, sends run one by one
 * (kvmq_sq_run() with no @s).
 */
static long kvmq_sq_run_all(struct kvmq_vm *vm, struct kvmq_vcpu_rings *vr,
			    u32 entries, bool lazy)
{
	struct kvmq_send *s;
	u64 *ud;
	long n;

	s = kcalloc(KVMQ_SEND_BATCH, sizeof(*s), GFP_KERNEL);
	ud = kcalloc(KVMQ_SEND_BATCH, sizeof(*ud), GFP_KERNEL);
	if (!s || !ud) {
		kfree(s);
		s = NULL;
	}
	scoped_guard(mutex, &vr->lock)
		n = kvmq_sq_run(vm, vr, entries, lazy, s, ud);
	kfree(ud);
	kfree(s);
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
	atomic64_inc(&vm->stats.doorbells);

	n = kvmq_sq_run_all(vm, &r->vcpu[vcpu->vcpu_id], r->sq_entries, false);
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

	n = kvmq_sq_run_all(vm, vr, r->sq_entries, true);
	if (n) {
		atomic64_inc(&kvmq_stats.lazy_batches);
		atomic64_inc(&vm->stats.lazy_batches);
		atomic64_add(n, &vm->stats.lazy_entries);
	}
	kvmq_rx_refill(vm);
}
