// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq ioctls: attach/detach and the errno of every bad input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "kvm_util.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

FIXTURE(kvmq) {
	int dev, group;
	struct kvm_vm *vm;
};

FIXTURE_SETUP(kvmq)
{
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	self->vm = vm_create_barebones();
}

FIXTURE_TEARDOWN(kvmq)
{
	kvm_vm_free(self->vm);
	close(self->group);
	close(self->dev);
}

TEST_F(kvmq, get_info)
{
	struct kvmq_info info = { .size = sizeof(info) };

	ASSERT_EQ(0, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, &info));
	EXPECT_EQ(KVMQ_ABI_VERSION, info.abi_version);
	EXPECT_EQ(KVMQ_HC_BASE, info.hc_base);
	EXPECT_EQ(KVMQ_HC_COUNT, info.hc_count);
	EXPECT_EQ(KVMQ_FEATURES_ALL, info.features);
	EXPECT_EQ(sizeof(info), info.size);
}

/* Every size from 0 to a page and beyond, with and without junk. */
TEST_F(kvmq, get_info_sizes)
{
	const size_t ksize = sizeof(struct kvmq_info);
	size_t bufsize = 2 * getpagesize();
	unsigned char *buf = calloc(1, bufsize);
	struct kvmq_info *info = (void *)buf;
	size_t size;

	ASSERT_NE(NULL, buf);
	for (size = 0; size < ksize; size++) {
		memset(buf, 0, bufsize);
		info->size = size;
		EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, buf));
	}

	/* A newer userspace's larger structure: fine while the tail is 0. */
	memset(buf, 0, bufsize);
	info->size = ksize + 64;
	buf[ksize + 64] = 0xaa;	/* beyond size: never read */
	EXPECT_EQ(0, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, buf));
	EXPECT_EQ(KVMQ_ABI_VERSION, info->abi_version);
	EXPECT_EQ(0xaa, buf[ksize + 64]);

	/* ... and rejected when the tail holds something the kernel lacks. */
	memset(buf, 0, bufsize);
	info->size = ksize + 64;
	buf[ksize + 63] = 1;
	EXPECT_EQ(-E2BIG, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, buf));
	EXPECT_EQ(0, info->abi_version);

	memset(buf, 0, bufsize);
	info->size = getpagesize();
	EXPECT_EQ(0, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, buf));

	memset(buf, 0, bufsize);
	info->size = getpagesize() + 1;
	EXPECT_EQ(-E2BIG, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, buf));

	info->size = UINT32_MAX;
	EXPECT_EQ(-E2BIG, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, buf));
	free(buf);
}

TEST_F(kvmq, get_info_bad_input)
{
	struct kvmq_info info = { .size = sizeof(info) };

	info.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, &info));
	info.flags = 1u << 31;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, &info));
	info.flags = 0;
	info.__reserved = 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, &info));
	EXPECT_EQ(0, info.abi_version);

	EXPECT_EQ(-EFAULT, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, NULL));
	EXPECT_EQ(-EFAULT, kvmq_ioctl_err(self->dev, KVMQ_GET_INFO, (void *)8));
}

TEST_F(kvmq, unknown_ioctls)
{
	struct kvmq_info info = { .size = sizeof(info) };
	int vmq = kvmq_attach(self->dev, self->vm);

	EXPECT_EQ(-ENOTTY, kvmq_ioctl_err(self->dev, _IO(KVMQ_TYPE, 0x7f), &info));
	EXPECT_EQ(-ENOTTY, kvmq_ioctl_err(self->dev, _IOR(KVMQ_TYPE, 0x00, int),
				     &info));
	/* Per-VM ioctls are not /dev/kvmq ioctls and vice versa. */
	EXPECT_EQ(-ENOTTY, kvmq_ioctl_err(self->dev, KVMQ_VM_GET_IDENTITY, &info));
	EXPECT_EQ(-ENOTTY, kvmq_ioctl_err(vmq, KVMQ_GET_INFO, &info));
	EXPECT_EQ(-ENOTTY, kvmq_ioctl_err(vmq, KVMQ_ATTACH_VM, &info));
	close(vmq);
}

TEST_F(kvmq, attach_detach)
{
	int vmq, flags;

	vmq = kvmq_attach(self->dev, self->vm);
	flags = fcntl(vmq, F_GETFD);
	EXPECT_TRUE(flags & FD_CLOEXEC);

	/* One attachment per VM. */
	EXPECT_EQ(-1, __kvmq_attach(self->dev, self->vm->fd));
	EXPECT_EQ(EEXIST, errno);

	/* Closing the per-VM file detaches: the VM can be attached again. */
	close(vmq);
	vmq = kvmq_attach(self->dev, self->vm);
	close(vmq);
}

TEST_F(kvmq, attach_outlives_vm_fd)
{
	struct kvm_vm *vm = vm_create_barebones();
	int vmq = kvmq_attach(self->dev, vm);

	/* The per-VM file holds the VM; closing the VM fd first is fine. */
	kvm_vm_free(vm);
	EXPECT_EQ(0, kvmq_get_identity(vmq));
	kvmq_set_identity(vmq, self->group, 77);
	EXPECT_EQ(77, kvmq_get_identity(vmq));
	close(vmq);
}

TEST_F(kvmq, attach_bad_fd)
{
	struct kvmq_attach_vm attach = { .size = sizeof(attach) };
	int fds[2];

	attach.vm_fd = -1;
	EXPECT_EQ(-EBADF, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &attach));
	attach.vm_fd = INT32_MAX;
	EXPECT_EQ(-EBADF, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &attach));

	/* Open, but not a KVM VM: a pipe, /dev/kvm, a vCPU, kvmq itself. */
	ASSERT_EQ(0, pipe(fds));
	attach.vm_fd = fds[0];
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &attach));
	close(fds[0]);
	close(fds[1]);

	attach.vm_fd = self->vm->kvm_fd;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &attach));

	attach.vm_fd = __vm_vcpu_add(self->vm, 0)->fd;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &attach));

	attach.vm_fd = self->dev;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &attach));
}

/* Out of file descriptors: EMFILE, and the VM is left unattached. */
TEST_F(kvmq, attach_emfile)
{
	struct rlimit rl;
	int fd, vmq;

	/* The lowest free descriptor is the one the attach would get. */
	fd = dup(self->dev);
	ASSERT_LE(0, fd);
	close(fd);
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	rl.rlim_cur = fd;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));

	EXPECT_EQ(-1, __kvmq_attach(self->dev, self->vm->fd));
	EXPECT_EQ(EMFILE, errno);

	rl.rlim_cur = fd + 1;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	vmq = kvmq_attach(self->dev, self->vm);
	EXPECT_EQ(fd, vmq);
	close(vmq);
}

TEST_F(kvmq, attach_bad_struct)
{
	struct {
		struct kvmq_attach_vm attach;
		uint64_t tail;
	} arg = { .attach.size = sizeof(arg.attach) };
	int vmq;

	arg.attach.vm_fd = self->vm->fd;

	arg.attach.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &arg));
	arg.attach.flags = 0;

	arg.attach.__reserved = 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &arg));
	arg.attach.__reserved = 0;

	arg.attach.size = sizeof(arg.attach) - 1;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &arg));
	arg.attach.size = 0;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &arg));

	arg.attach.size = sizeof(arg);
	arg.tail = 1;
	EXPECT_EQ(-E2BIG, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &arg));

	/* None of the failures attached the VM. */
	arg.tail = 0;
	vmq = ioctl(self->dev, KVMQ_ATTACH_VM, &arg);
	ASSERT_LE(0, vmq);
	close(vmq);

	EXPECT_EQ(-EFAULT, kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, NULL));
}

/* A VM of another process (another mm) cannot be attached or driven. */
TEST_F(kvmq, other_process)
{
	int vmq = kvmq_attach(self->dev, self->vm);
	struct kvm_vm *vm2 = vm_create_barebones();
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kvmq_vm_identity ident = { .size = sizeof(ident) };
		struct kvmq_attach_vm attach = {
			.size = sizeof(attach),
			.vm_fd = vm2->fd,
		};
		int ret = 0;

		if (kvmq_ioctl_err(self->dev, KVMQ_ATTACH_VM, &attach) != -EPERM)
			ret |= 1;
		if (kvmq_ioctl_err(vmq, KVMQ_VM_GET_IDENTITY, &ident) != -EIO)
			ret |= 2;
		ident.id = 5;
		ident.group_fd = self->group;
		if (kvmq_ioctl_err(vmq, KVMQ_VM_SET_IDENTITY, &ident) != -EIO)
			ret |= 4;
		_exit(ret);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	/* The child's attempt did not attach vm2, nor name the VM. */
	EXPECT_EQ(0, kvmq_get_identity(vmq));
	close(kvmq_attach(self->dev, vm2));
	kvm_vm_free(vm2);
	close(vmq);
}

TEST_F(kvmq, identity)
{
	struct kvm_vm *vm2 = vm_create_barebones();
	int vmq = kvmq_attach(self->dev, self->vm);
	int vmq2 = kvmq_attach(self->dev, vm2);
	int g = self->group;

	EXPECT_EQ(0, kvmq_get_identity(vmq));
	kvmq_set_identity(vmq, g, 1);
	EXPECT_EQ(1, kvmq_get_identity(vmq));

	/* Set once. */
	EXPECT_EQ(-1, __kvmq_set_identity(vmq, g, 2));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(1, kvmq_get_identity(vmq));

	/* Unique within the group; 0 is not an identity. */
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, g, 1));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, g, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, g, KVMQ_ID_MAX + 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, g, UINT32_MAX));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, kvmq_get_identity(vmq2));
	kvmq_set_identity(vmq2, g, KVMQ_ID_MAX);
	EXPECT_EQ(KVMQ_ID_MAX, kvmq_get_identity(vmq2));

	/* Detaching releases the identity. */
	close(vmq);
	vmq = kvmq_attach(self->dev, self->vm);
	kvmq_set_identity(vmq, g, 1);

	close(vmq);
	close(vmq2);
	kvm_vm_free(vm2);
}

/* Groups are separate namespaces; only a group fd names a VM into one. */
TEST_F(kvmq, groups)
{
	struct kvmq_create_group cg = { .size = sizeof(cg) };
	struct kvm_vm *vm2 = vm_create_barebones();
	int vmq = kvmq_attach(self->dev, self->vm);
	int vmq2 = kvmq_attach(self->dev, vm2);
	int g2 = kvmq_create_group(self->dev);

	/* The same identity in two groups. */
	kvmq_set_identity(vmq, self->group, 5);
	kvmq_set_identity(vmq2, g2, 5);
	EXPECT_EQ(5, kvmq_get_identity(vmq2));

	/* A group outlives its fd while it has members. */
	close(g2);
	EXPECT_EQ(5, kvmq_get_identity(vmq2));
	close(vmq2);
	vmq2 = kvmq_attach(self->dev, vm2);

	/* Not a group: a closed fd, the device, a per-VM file, a VM fd. */
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, -1, 6));
	EXPECT_EQ(EBADF, errno);
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, self->dev, 6));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, vmq, 6));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, __kvmq_set_identity(vmq2, vm2->fd, 6));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, kvmq_get_identity(vmq2));
	kvmq_set_identity(vmq2, self->group, 6);

	cg.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(self->dev, KVMQ_CREATE_GROUP, &cg));
	cg.flags = 0;
	cg.size = 4;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(self->dev, KVMQ_CREATE_GROUP, &cg));

	close(vmq);
	close(vmq2);
	kvm_vm_free(vm2);
}

TEST_F(kvmq, identity_bad_struct)
{
	struct kvmq_vm_identity ident = {
		.size = sizeof(ident), .id = 9, .group_fd = self->group,
	};
	int vmq = kvmq_attach(self->dev, self->vm);

	ident.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(vmq, KVMQ_VM_SET_IDENTITY, &ident));
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(vmq, KVMQ_VM_GET_IDENTITY, &ident));
	ident.flags = 0;
	ident.size = sizeof(ident) - 4;
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(vmq, KVMQ_VM_SET_IDENTITY, &ident));
	EXPECT_EQ(-EFAULT, kvmq_ioctl_err(vmq, KVMQ_VM_SET_IDENTITY, NULL));

	/* Nothing above assigned an identity. */
	EXPECT_EQ(0, kvmq_get_identity(vmq));
	close(vmq);
}

KVMQ_TEST_HARNESS_MAIN
