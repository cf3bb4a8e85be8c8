// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq hypercalls: one ftrace hook on KVM's hypercall emulation.
 *
 * KVM emulates VMCALL/VMMCALL in kvm_emulate_hypercall(), common to Intel
 * and AMD, which calls the exported __kvm_emulate_hypercall() and writes its
 * return value to the guest's RAX.  kvmq attaches an IPMODIFY ftrace handler
 * to __kvm_emulate_hypercall(): for a kvmq hypercall number issued by an
 * attached VM it redirects the call to kvmq_emulate_hypercall(), which has
 * the same prototype and contract.  Every other call runs KVM's code
 * unchanged.  This is the mechanism livepatch uses.
 *
 * Hyper-V and Xen enlightened VMs do not reach __kvm_emulate_hypercall(),
 * and neither do hypercalls of nested (L2) guests, which exit to L1.
 */
#include <linux/ftrace.h>
#include <linux/kvm_host.h>
#include <linux/kvm_para.h>
#include <linux/module.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

#define CREATE_TRACE_POINTS
#include "trace.h"

static bool kvmq_hc_nr_valid(unsigned long nr)
{
	return nr - KVMQ_HC_BASE < KVMQ_HC_COUNT;
}

static unsigned long kvmq_hc_self_id(struct kvmq_vm *vm)
{
	u32 id = kvmq_vm_id(vm);

	if (!id)
		return -ENOENT;
	return id;
}

static unsigned long kvmq_hypercall(struct kvmq_vm *vm,
				    struct kvm_vcpu *vcpu, unsigned long nr,
				    unsigned long a0, unsigned long a1,
				    unsigned long a2, unsigned long a3)
{
	switch (nr) {
	case KVMQ_HC_VERSION:
		return KVMQ_ABI_VERSION;
	case KVMQ_HC_FEATURES:
		return KVMQ_FEATURES_ALL;
	case KVMQ_HC_SELF_ID:
		return kvmq_hc_self_id(vm);
	case KVMQ_HC_SEND:
		if (a0 > U32_MAX || a1 > U32_MAX)
			return -ENOENT;
		return kvmq_hc_send(vm, a0, a1, a2);
	case KVMQ_HC_RECV:
		if (a0 > U32_MAX)
			return -ENOENT;
		return kvmq_hc_recv(vm, vcpu, a0, a1);
	case KVMQ_HC_QLEN:
		if (a0 > U32_MAX)
			return -ENOENT;
		return kvmq_hc_qlen(vm, a0);
	case KVMQ_HC_RELEASE:
		return kvmq_release(vm, a0, a1);
	case KVMQ_HC_SUBMIT:
		return kvmq_hc_submit(vm, vcpu, a0);
	default:
		return -KVM_ENOSYS;
	}
}

/*
 * Replaces __kvm_emulate_hypercall() for kvmq numbers; same prototype and
 * contract: the return value goes to the guest's RAX.  Entered with a module
 * reference taken by kvmq_ftrace_handler().
 */
static unsigned long kvmq_emulate_hypercall(struct kvm_vcpu *vcpu,
					    unsigned long nr, unsigned long a0,
					    unsigned long a1, unsigned long a2,
					    unsigned long a3, int op_64_bit,
					    int cpl)
{
	struct kvmq_vm *vm;
	unsigned long ret;

	if (!op_64_bit) {
		nr &= 0xFFFFFFFF;
		a0 &= 0xFFFFFFFF;
		a1 &= 0xFFFFFFFF;
		a2 &= 0xFFFFFFFF;
		a3 &= 0xFFFFFFFF;
	}

	/* The same checks, in the same order, as KVM. */
	if (cpl) {
		ret = -KVM_EPERM;
	} else if (!kvmq_hc_nr_valid(nr)) {
		ret = -KVM_ENOSYS;
	} else {
		/* NULL if the VM detached after kvmq_ftrace_handler(). */
		vm = kvmq_vm_get_by_kvm(vcpu->kvm);
		if (vm) {
			trace_kvmq_hypercall(kvmq_vm_id(vm), vcpu->vcpu_id,
					     nr, a0, a1, a2, a3);
			ret = kvmq_hypercall(vm, vcpu, nr, a0, a1, a2, a3);
			trace_kvmq_hypercall_done(kvmq_vm_id(vm),
						  vcpu->vcpu_id, nr, ret);
			kvmq_vm_put(vm);
		} else {
			ret = -KVM_ENOSYS;
		}
	}

	++vcpu->stat.hypercalls;

	/*
	 * Drop the reference last.  Module unload waits for an RCU-tasks
	 * grace period after the reference count reached zero, which this
	 * task only passes once it has left this function.
	 */
	module_put(THIS_MODULE);
	return ret;
}

static void notrace kvmq_ftrace_handler(unsigned long ip,
					unsigned long parent_ip,
					struct ftrace_ops *ops,
					struct ftrace_regs *fregs)
{
	struct kvm_vcpu *vcpu = (void *)ftrace_regs_get_argument(fregs, 0);
	unsigned long nr = ftrace_regs_get_argument(fregs, 1);

	/*
	 * Compare the low 32 bits only: a 32-bit guest's number is truncated
	 * later, by kvmq_emulate_hypercall() as by KVM.
	 */
	if (!kvmq_hc_nr_valid((u32)nr))
		return;
	if (!kvmq_vm_is_attached(vcpu->kvm))
		return;
	if (!try_module_get(THIS_MODULE))
		return;

	ftrace_regs_set_instruction_pointer(fregs,
					    (unsigned long)kvmq_emulate_hypercall);
}

/*
 * PERMANENT: "sysctl kernel.ftrace_enabled=0" would silently turn kvmq
 * hypercalls of attached VMs into -KVM_ENOSYS; with this flag the sysctl
 * fails with EBUSY while kvmq is loaded, as it does for livepatch.
 */
static struct ftrace_ops kvmq_ftrace_ops = {
	.func = kvmq_ftrace_handler,
	.flags = FTRACE_OPS_FL_IPMODIFY | FTRACE_OPS_FL_PERMANENT,
};

int __init kvmq_hypercall_init(void)
{
	unsigned long ip = (unsigned long)__kvm_emulate_hypercall;
	int ret;

	ret = ftrace_set_filter_ip(&kvmq_ftrace_ops, ip, 0, 0);
	if (ret) {
		pr_err("cannot trace __kvm_emulate_hypercall: %d\n", ret);
		return ret;
	}

	ret = register_ftrace_function(&kvmq_ftrace_ops);
	if (ret) {
		/*
		 * -EBUSY: another IPMODIFY user (a livepatch?) holds it, or
		 * ftrace is disabled by sysctl.
		 */
		pr_err("cannot hook __kvm_emulate_hypercall: %d\n", ret);
		ftrace_set_filter_ip(&kvmq_ftrace_ops, ip, 1, 0);
		return ret;
	}
	return 0;
}

void kvmq_hypercall_exit(void)
{
	unregister_ftrace_function(&kvmq_ftrace_ops);
	ftrace_set_filter_ip(&kvmq_ftrace_ops,
			     (unsigned long)__kvm_emulate_hypercall, 1, 0);
	/*
	 * A vCPU that was redirected may still be executing the tail of
	 * kvmq_emulate_hypercall() after its module_put(); it leaves module
	 * text before its next voluntary context switch.
	 */
	synchronize_rcu_tasks();
}
