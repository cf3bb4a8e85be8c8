// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "kvmq_util.h"
#include "test_util.h"

int kvmq_open_dev(void)
{
	int fd = open(KVMQ_DEV_PATH, O_RDWR | O_CLOEXEC);

	__TEST_REQUIRE(fd >= 0 || errno != ENOENT,
		       KVMQ_DEV_PATH " not found: is kvmq.ko loaded?");
	TEST_ASSERT(fd >= 0, "open(" KVMQ_DEV_PATH ") failed, errno %d", errno);
	return fd;
}

int __kvmq_attach(int dev_fd, int vm_fd)
{
	struct kvmq_attach_vm attach = {
		.size = sizeof(attach),
		.vm_fd = vm_fd,
	};

	return ioctl(dev_fd, KVMQ_ATTACH_VM, &attach);
}

int kvmq_attach(int dev_fd, struct kvm_vm *vm)
{
	int fd = __kvmq_attach(dev_fd, vm->fd);

	TEST_ASSERT(fd >= 0, "KVMQ_ATTACH_VM failed, errno %d", errno);
	return fd;
}

int __kvmq_set_identity(int vmq_fd, uint32_t id)
{
	struct kvmq_vm_identity ident = {
		.size = sizeof(ident),
		.id = id,
	};

	return ioctl(vmq_fd, KVMQ_VM_SET_IDENTITY, &ident);
}

void kvmq_set_identity(int vmq_fd, uint32_t id)
{
	int ret = __kvmq_set_identity(vmq_fd, id);

	TEST_ASSERT(!ret, "KVMQ_VM_SET_IDENTITY(%u) failed, errno %d", id,
		    errno);
}

uint32_t kvmq_get_identity(int vmq_fd)
{
	struct kvmq_vm_identity ident = { .size = sizeof(ident) };
	int ret = ioctl(vmq_fd, KVMQ_VM_GET_IDENTITY, &ident);

	TEST_ASSERT(!ret, "KVMQ_VM_GET_IDENTITY failed, errno %d", errno);
	return ident.id;
}

uint64_t kvmq_vcpu_stat(struct kvm_vcpu *vcpu, const char *name)
{
	struct kvm_stats_header header;
	struct kvm_stats_desc *descs, *desc;
	uint64_t value = 0;
	bool found = false;
	int fd, i;

	fd = vcpu_get_stats_fd(vcpu);
	read_stats_header(fd, &header);
	descs = read_stats_descriptors(fd, &header);

	for (i = 0; i < header.num_desc; i++) {
		desc = get_stats_descriptor(descs, i, &header);
		if (strcmp(desc->name, name))
			continue;
		read_stat_data(fd, &header, desc, &value, 1);
		found = true;
		break;
	}
	free(descs);
	close(fd);

	TEST_ASSERT(found, "vCPU statistic '%s' not found", name);
	return value;
}
