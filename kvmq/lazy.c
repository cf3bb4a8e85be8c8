// SPDX-License-Identifier: GPL-2.0
/*
 * The lazy policy: submission entries flagged KVMQ_SQE_LAZY run at their
 * vCPU's next natural exit, with no exit requested by the guest.
 *
 * KVM fires its exported kvm_exit tracepoint on every exit, in the vCPU's
 * thread, with interrupts off.  kvmq's probe, registered while any VM has
 * rings, looks only whether the vCPU's submission ring starts with a lazy
 * entry, or whether messages wait for the VM's receive rings; if so it
 * queues a task_work on the vCPU thread (TWA_RESUME).  KVM runs task work
 * before it enters the guest again (xfer_to_guest_mode_handle_work()), and
 * the kernel before it returns to the VMM, so the batch runs in process
 * context, in the vCPU thread, before the guest runs again.
 *
 * Worst-case delay: a vCPU in guest mode exits at least on every host
 * timer tick (unless its CPU runs nohz_full), and a halting or stopped
 * vCPU exits anyway: a lazy entry runs within one tick of the guest
 * writing it, at no cost in exits.
 */
#include <linux/hrtimer.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/task_work.h>
#include <linux/tracepoint.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

/* Exported by kvm.ko (EXPORT_TRACEPOINT_SYMBOL_GPL(kvm_exit)). */
extern struct tracepoint __tracepoint_kvm_exit;

/* Serialises the probe's registration; counts the VMs with rings. */
static DEFINE_MUTEX(kvmq_lazy_lock);
static unsigned int kvmq_lazy_users;

static void kvmq_lazy_work(struct callback_head *head)
{
	struct kvmq_vcpu_rings *vr = container_of(head, struct kvmq_vcpu_rings,
						  work);
	struct kvmq_vm *vm = vr->vm;
	int idx;

	clear_bit(KVMQ_VR_WORK_QUEUED, &vr->flags);
	/* Not when the thread is exiting: its mm may be gone. */
	if (!(current->flags & PF_EXITING) && current->mm == vm->kvm->mm) {
		idx = srcu_read_lock(&vm->kvm->srcu);
		kvmq_submit_lazy(vm, vr);
		srcu_read_unlock(&vm->kvm->srcu, idx);
	}
	kvmq_vm_put(vm);
}

/* Whether the vCPU has work for a natural exit; reads guest memory once. */
static bool kvmq_lazy_due(struct kvmq_vm *vm, struct kvmq_rings *r,
			  struct kvmq_vcpu_rings *vr)
{
	struct kvmq_queues *qs = kvmq_vm_queues(vm);
	const struct kvmq_sqe *sqe;

	if (atomic_read(&qs->rx_backlog))
		return true;
	if (READ_ONCE(vr->sq->prod) == vr->sq_cons)
		return false;
	sqe = kvmq_sq_entry(vr, r->sq_entries, vr->sq_cons);
	return READ_ONCE(sqe->flags) & KVMQ_SQE_LAZY;
}

/* kvm_exit probe: interrupts off, in the vCPU's thread. */
static void kvmq_exit_probe(void *data, struct kvm_vcpu *vcpu, u32 isa)
{
	struct kvmq_vcpu_rings *vr;
	struct kvmq_rings *r;
	struct kvmq_vm *vm;

	guard(rcu)();
	vm = kvmq_vm_find_rcu(vcpu->kvm);
	if (!vm)
		return;
	r = kvmq_vm_rings(vm);
	if (!r || vcpu->vcpu_id >= r->nr_vcpus)
		return;
	vr = &r->vcpu[vcpu->vcpu_id];
	if (!kvmq_lazy_due(vm, r, vr))
		return;
	if (test_and_set_bit(KVMQ_VR_WORK_QUEUED, &vr->flags))
		return;
	/* The work holds the VM, and with it the rings, until it ran. */
	if (!kref_get_unless_zero(&vm->ref)) {
		clear_bit(KVMQ_VR_WORK_QUEUED, &vr->flags);
		return;
	}
	init_task_work(&vr->work, kvmq_lazy_work);
	if (task_work_add(current, &vr->work, TWA_RESUME)) {
		clear_bit(KVMQ_VR_WORK_QUEUED, &vr->flags);
		kvmq_vm_put_peer(vm);	/* never frees here */
	}
}

/*
 * The lazy delay timer of a vCPU (lazy_delay_us): every period, if a lazy
 * entry waits at the head of the vCPU's submission ring, make the vCPU
 * exit; the kvm_exit probe then does the rest.  It reads the ring as the
 * probe does; a stale count only costs a needless exit, or a period.  An
 * idle ring costs no exit: the timer kicks only when an entry waits.
 */
static enum hrtimer_restart kvmq_lazy_timer(struct hrtimer *t)
{
	struct kvmq_vcpu_rings *vr = container_of(t, struct kvmq_vcpu_rings,
						  timer);
	struct kvmq_vm *vm = vr->vm;
	struct kvmq_rings *r = kvmq_vm_rings(vm);
	const struct kvmq_sqe *sqe;
	struct kvm_vcpu *vcpu;
	u32 cons = READ_ONCE(vr->sq_cons);

	if (READ_ONCE(vr->sq->prod) != cons) {
		sqe = kvmq_sq_entry(vr, r->sq_entries, cons);
		vcpu = kvm_get_vcpu_by_id(vm->kvm, vr - r->vcpu);
		if (READ_ONCE(sqe->flags) & KVMQ_SQE_LAZY && vcpu) {
			kvm_vcpu_kick(vcpu);
			atomic64_inc(&vm->stats.lazy_kicks);
		}
	}
	hrtimer_forward_now(t, ns_to_ktime(r->lazy_delay_ns));
	return HRTIMER_RESTART;
}

/* Start the lazy delay timers of the rings' vCPUs, if they have one. */
void kvmq_lazy_timers_start(struct kvmq_rings *r)
{
	u32 i;

	for (i = 0; r->lazy_delay_ns && i < r->nr_vcpus; i++) {
		hrtimer_init(&r->vcpu[i].timer, CLOCK_MONOTONIC,
			     HRTIMER_MODE_REL);
		r->vcpu[i].timer.function = kvmq_lazy_timer;
		hrtimer_start(&r->vcpu[i].timer,
			      ns_to_ktime(r->lazy_delay_ns), HRTIMER_MODE_REL);
	}
}

/* Stop them, before the rings and the VM go; process context. */
void kvmq_lazy_timers_stop(struct kvmq_rings *r)
{
	u32 i;

	for (i = 0; r->lazy_delay_ns && i < r->nr_vcpus; i++)
		hrtimer_cancel(&r->vcpu[i].timer);
}

/**
 * kvmq_lazy_get - a VM got rings: make sure the probe is registered
 *
 * Return: 0 or the error of tracepoint_probe_register().
 */
int kvmq_lazy_get(void)
{
	int ret = 0;

	guard(mutex)(&kvmq_lazy_lock);
	if (!kvmq_lazy_users)
		ret = tracepoint_probe_register(&__tracepoint_kvm_exit,
						kvmq_exit_probe, NULL);
	if (!ret)
		kvmq_lazy_users++;
	return ret;
}

/*
 * A VM with rings is freed: unregister the probe with the last of them,
 * and wait until no CPU runs it.  Process context, no kvmq lock held.
 */
void kvmq_lazy_put(void)
{
	guard(mutex)(&kvmq_lazy_lock);
	if (--kvmq_lazy_users)
		return;
	tracepoint_probe_unregister(&__tracepoint_kvm_exit, kvmq_exit_probe,
				    NULL);
	tracepoint_synchronize_unregister();
}
