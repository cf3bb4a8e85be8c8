// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kvmq: the VMM-facing misc device, and the extensible-ioctl helper
 * shared by all kvmq files.
 */
#include <linux/build_bug.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/stddef.h>
#include <linux/uaccess.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

/* Large enough for any kvmq ioctl argument. */
union kvmq_ioctl_buf {
	struct kvmq_info info;
	struct kvmq_attach_vm attach;
	struct kvmq_vm_identity identity;
	struct kvmq_vm_aperture aperture;
	struct kvmq_vm_move_aperture move;
	struct kvmq_create_group group;
	struct kvmq_vm_queues queues;
	struct kvmq_vm_queue_info queue;
	struct kvmq_vm_grant grant;
	struct kvmq_vm_post post;
	struct kvmq_vm_rings rings;
	struct kvmq_vm_notify notify;
	struct kvmq_vm_stats stats;
};

/* Every argument structure starts with the same two fields. */
struct kvmq_ioctl_head {
	__u32 size;
	__u32 flags;
};

long kvmq_ioctl_dispatch(const struct kvmq_ioctl_op *ops, size_t nr_ops,
			 void *priv, unsigned int cmd, unsigned long uarg)
{
	void __user *up = (void __user *)uarg;
	const struct kvmq_ioctl_op *op;
	union kvmq_ioctl_buf buf;
	struct kvmq_ioctl_head *head = (void *)&buf;
	u32 usize;
	long ret;

	for (op = ops; op < ops + nr_ops; op++)
		if (op->cmd == cmd)
			break;
	if (op == ops + nr_ops)
		return -ENOTTY;

	if (get_user(usize, (u32 __user *)up))
		return -EFAULT;
	if (usize < op->min_size)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;

	ret = copy_struct_from_user(&buf, op->size, up, usize);
	if (ret)
		return ret;
	if (head->flags & ~op->flags)
		return -EOPNOTSUPP;

	ret = op->fn(priv, &buf);
	if (ret < 0 || !op->copy_out)
		return ret;

	if (copy_to_user(up, &buf, min_t(u32, usize, op->size)))
		return -EFAULT;
	return ret;
}

static long kvmq_get_info(void *priv, void *arg)
{
	struct kvmq_info *info = arg;

	if (info->__reserved)
		return -EINVAL;

	info->abi_version = KVMQ_ABI_VERSION;
	info->hc_base = KVMQ_HC_BASE;
	info->hc_count = KVMQ_HC_COUNT;
	info->features = KVMQ_FEATURES_ALL;
	return 0;
}

static long kvmq_ioctl_attach_vm(void *priv, void *arg)
{
	struct kvmq_attach_vm *attach = arg;

	if (attach->__reserved)
		return -EINVAL;

	return kvmq_vm_attach(attach->vm_fd);
}

static long kvmq_ioctl_create_group(void *priv, void *arg)
{
	return kvmq_group_create();
}

static const struct kvmq_ioctl_op kvmq_dev_ioctls[] = {
	KVMQ_IOCTL_OP(KVMQ_GET_INFO, kvmq_get_info, struct kvmq_info,
		      __reserved, true),
	KVMQ_IOCTL_OP(KVMQ_ATTACH_VM, kvmq_ioctl_attach_vm,
		      struct kvmq_attach_vm, __reserved, false),
	KVMQ_IOCTL_OP(KVMQ_CREATE_GROUP, kvmq_ioctl_create_group,
		      struct kvmq_create_group, flags, false),
};

static long kvmq_dev_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	return kvmq_ioctl_dispatch(kvmq_dev_ioctls,
				   ARRAY_SIZE(kvmq_dev_ioctls), NULL, cmd, arg);
}

static const struct file_operations kvmq_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = kvmq_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kvmq_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kvmq",
	.fops = &kvmq_dev_fops,
};

/* The UAPI layout, proven at build time: no implicit padding anywhere. */
static void __init kvmq_build_check_abi(void)
{
	BUILD_BUG_ON(sizeof(struct kvmq_ioctl_head) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_info, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_info, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_info, abi_version) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_info, hc_base) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_info, features) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_info, hc_count) != 24);
	BUILD_BUG_ON(offsetof(struct kvmq_info, __reserved) != 28);
	BUILD_BUG_ON(sizeof(struct kvmq_info) != 32);

	BUILD_BUG_ON(offsetof(struct kvmq_attach_vm, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_attach_vm, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_attach_vm, vm_fd) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_attach_vm, __reserved) != 12);
	BUILD_BUG_ON(sizeof(struct kvmq_attach_vm) != 16);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_identity, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_identity, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_identity, id) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_identity, group_fd) != 12);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_identity) != 16);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_aperture, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_aperture, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_aperture, gpa) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_aperture, length) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_aperture, quota) != 24);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_aperture, held) != 32);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_aperture, queued) != 40);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_aperture) != 48);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_move_aperture, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_move_aperture, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_move_aperture, gpa) != 8);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_move_aperture) != 16);

	BUILD_BUG_ON(offsetof(struct kvmq_create_group, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_create_group, flags) != 4);
	BUILD_BUG_ON(sizeof(struct kvmq_create_group) != 8);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, nr_queues) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, nr_vcpu_queues) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, depth) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, __reserved) != 20);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, page_limit) != 24);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, mem_limit) != 32);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queues, mem) != 40);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_queues) != 48);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_queue_info, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queue_info, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queue_info, queue) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queue_info, length) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queue_info, senders) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_queue_info, __reserved) != 20);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_queue_info) != 24);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_grant, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_grant, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_grant, queue) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_grant, sender) != 12);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_grant) != 16);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_post, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_post, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_post, queue) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_post, len) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_post, data) != 16);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_post) != 24);

	BUILD_BUG_ON(offsetof(struct kvmq_vm_notify, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_notify, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_notify, queue) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_notify, fd) != 12);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_notify) != 16);

	/* The guest ABI: same layout for 32- and 64-bit guests. */
	BUILD_BUG_ON(offsetof(struct kvmq_msg, kind) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, sender) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, nr) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, len) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, __reserved) != 20);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, gpa) != 24);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, data) != 32);
	BUILD_BUG_ON(offsetof(struct kvmq_msg, gpas) != 32);
	BUILD_BUG_ON(sizeof(struct kvmq_msg) != 32 + KVMQ_MSG_BYTES_MAX);
	BUILD_BUG_ON(KVMQ_MSG_PAGES_MAX * sizeof(__u64) != KVMQ_MSG_BYTES_MAX);
	BUILD_BUG_ON(KVMQ_MSG_BLOCK_SIZE != 1ULL << KVMQ_BLOCK_SHIFT);

	BUILD_BUG_ON(sizeof(union kvmq_ioctl_buf) > 256);
}

int __init kvmq_dev_init(void)
{
	kvmq_build_check_abi();
	return misc_register(&kvmq_misc);
}

void kvmq_dev_exit(void)
{
	misc_deregister(&kvmq_misc);
}
