// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

int __kvmq_set_aperture(int vmq_fd, uint64_t gpa, uint64_t length,
			uint64_t quota)
{
	struct kvmq_vm_aperture ap = {
		.size = sizeof(ap),
		.gpa = gpa,
		.length = length,
		.quota = quota,
	};

	return ioctl(vmq_fd, KVMQ_VM_SET_APERTURE, &ap);
}

void kvmq_set_aperture(int vmq_fd, uint64_t gpa, uint64_t length,
		       uint64_t quota)
{
	int ret = __kvmq_set_aperture(vmq_fd, gpa, length, quota);

	TEST_ASSERT(!ret, "KVMQ_VM_SET_APERTURE failed, errno %d", errno);
}

uint64_t kvmq_aperture_held(int vmq_fd)
{
	struct kvmq_vm_aperture ap = { .size = sizeof(ap) };
	int ret = ioctl(vmq_fd, KVMQ_VM_GET_APERTURE, &ap);

	TEST_ASSERT(!ret, "KVMQ_VM_GET_APERTURE failed, errno %d", errno);
	return ap.held;
}

#define KVMQ_POOL_PATH "/sys/kernel/debug/kvmq/aperture_pages"

uint64_t kvmq_pool_pages(void)
{
	unsigned long long pages;
	FILE *f = fopen(KVMQ_POOL_PATH, "r");

	TEST_ASSERT(f, "cannot open " KVMQ_POOL_PATH ", errno %d", errno);
	TEST_ASSERT(fscanf(f, "%llu", &pages) == 1, "bad " KVMQ_POOL_PATH);
	fclose(f);
	return pages;
}

uint64_t kvmq_run(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
	if (get_ucall(vcpu, uc) == UCALL_ABORT)
		REPORT_GUEST_ASSERT(*uc);
	return uc->cmd;
}

void kvmq_run_to_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;
	uint64_t cmd = kvmq_run(vcpu, &uc);

	TEST_ASSERT(cmd == UCALL_DONE, "unexpected ucall %lu", cmd);
}
