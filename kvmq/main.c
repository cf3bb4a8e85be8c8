// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq: hypervisor-managed queues between KVM virtual machines.
 */
#include <linux/module.h>

#include "kvmq.h"

static int __init kvmq_init(void)
{
	int ret;

	kvmq_stats_module_init();

	ret = kvmq_vm_module_init();
	if (ret)
		goto err_stats;

	ret = kvmq_hypercall_init();
	if (ret)
		goto err_vm;

	ret = kvmq_dev_init();
	if (ret)
		goto err_hypercall;

	pr_info("loaded\n");
	return 0;

err_hypercall:
	kvmq_hypercall_exit();
err_vm:
	kvmq_vm_module_exit();
err_stats:
	kvmq_stats_module_exit();
	return ret;
}

static void __exit kvmq_exit(void)
{
	kvmq_dev_exit();
	kvmq_hypercall_exit();
	kvmq_vm_module_exit();
	kvmq_stats_module_exit();
	pr_info("unloaded\n");
}

module_init(kvmq_init);
module_exit(kvmq_exit);
MODULE_DESCRIPTION("Hypervisor-managed queues between KVM virtual machines");
MODULE_LICENSE("GPL");
MODULE_SOFTDEP("pre: kvm");
