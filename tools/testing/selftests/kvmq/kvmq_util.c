// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/stringify.h>
#include <sys/mman.h>

#include "processor.h"
#include "apic.h"
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

int kvmq_create_group(int dev_fd)
{
	struct kvmq_create_group cg = { .size = sizeof(cg) };
	int fd = ioctl(dev_fd, KVMQ_CREATE_GROUP, &cg);

	TEST_ASSERT(fd >= 0, "KVMQ_CREATE_GROUP failed, errno %d", errno);
	return fd;
}

int __kvmq_set_identity(int vmq_fd, int group_fd, uint32_t id)
{
	struct kvmq_vm_identity ident = {
		.group_fd = group_fd,
		.size = sizeof(ident),
		.id = id,
	};

	return ioctl(vmq_fd, KVMQ_VM_SET_IDENTITY, &ident);
}

void kvmq_set_identity(int vmq_fd, int group_fd, uint32_t id)
{
	int ret = __kvmq_set_identity(vmq_fd, group_fd, id);

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

uint64_t kvmq_stats_fd_read(int fd, const char *name)
{
	struct kvm_stats_header header;
	struct kvm_stats_desc *descs, *desc;
	uint64_t value = 0;
	bool found = false;
	int i;

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

	TEST_ASSERT(found, "statistic '%s' not found", name);
	return value;
}

uint64_t kvmq_vcpu_stat(struct kvm_vcpu *vcpu, const char *name)
{
	int fd = vcpu_get_stats_fd(vcpu);
	uint64_t value = kvmq_stats_fd_read(fd, name);

	close(fd);
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

struct kvmq_vm_aperture kvmq_get_aperture(int vmq_fd)
{
	struct kvmq_vm_aperture ap = { .size = sizeof(ap) };
	int ret = ioctl(vmq_fd, KVMQ_VM_GET_APERTURE, &ap);

	TEST_ASSERT(!ret, "KVMQ_VM_GET_APERTURE failed, errno %d", errno);
	return ap;
}

uint64_t kvmq_aperture_held(int vmq_fd)
{
	return kvmq_get_aperture(vmq_fd).held;
}

uint64_t kvmq_debugfs_stat(const char *name)
{
	unsigned long long val;
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/kvmq/%s", name);
	f = fopen(path, "r");
	TEST_ASSERT(f, "cannot open %s, errno %d", path, errno);
	TEST_ASSERT(fscanf(f, "%llu", &val) == 1, "bad %s", path);
	fclose(f);
	return val;
}

uint64_t kvmq_pool_pages(void)
{
	return kvmq_debugfs_stat("aperture_pages");
}

/*
 * A fixture's setup and test run in a grandchild of the harness, which
 * waits only for the child: when a test times out, both are killed, and
 * the grandchild may still be tearing its VMs down as the next test's
 * setup starts.  So setups wait up to 10 s for the pool to empty.
 */
uint64_t kvmq_pool_settled(void)
{
	uint64_t n;
	int i;

	for (i = 0; (n = kvmq_pool_pages()) && i < 100; i++)
		usleep(100 * 1000);
	return n;
}

int __kvmq_set_queues(int vmq_fd, uint32_t nr_queues, uint32_t nr_vcpu_queues,
		      uint32_t depth)
{
	struct kvmq_vm_queues q = {
		.size = sizeof(q),
		.nr_queues = nr_queues,
		.nr_vcpu_queues = nr_vcpu_queues,
		.depth = depth,
	};

	return ioctl(vmq_fd, KVMQ_VM_SET_QUEUES, &q);
}

void kvmq_set_queues(int vmq_fd, uint32_t nr_queues, uint32_t nr_vcpu_queues,
		     uint32_t depth)
{
	int ret = __kvmq_set_queues(vmq_fd, nr_queues, nr_vcpu_queues, depth);

	TEST_ASSERT(!ret, "KVMQ_VM_SET_QUEUES failed, errno %d", errno);
}

struct kvmq_vm_stats kvmq_get_stats(int vmq_fd)
{
	struct kvmq_vm_stats st = { .size = sizeof(st) };
	int ret = ioctl(vmq_fd, KVMQ_VM_GET_STATS, &st);

	TEST_ASSERT(!ret, "KVMQ_VM_GET_STATS failed, errno %d", errno);
	return st;
}

struct kvmq_vm_queues kvmq_get_queues(int vmq_fd)
{
	struct kvmq_vm_queues q = { .size = sizeof(q) };
	int ret = ioctl(vmq_fd, KVMQ_VM_GET_QUEUES, &q);

	TEST_ASSERT(!ret, "KVMQ_VM_GET_QUEUES failed, errno %d", errno);
	return q;
}

int kvmq_grant_err(int vmq_fd, unsigned long cmd, uint32_t queue,
		   uint32_t sender)
{
	struct kvmq_vm_grant g = {
		.size = sizeof(g), .queue = queue, .sender = sender,
	};

	return kvmq_ioctl_err(vmq_fd, cmd, &g);
}

void kvmq_grant(int vmq_fd, uint32_t queue, uint32_t sender)
{
	int ret = kvmq_grant_err(vmq_fd, KVMQ_VM_GRANT, queue, sender);

	TEST_ASSERT(!ret, "KVMQ_VM_GRANT(%u, %u) failed: %d", queue, sender,
		    ret);
}

int kvmq_post_err(int vmq_fd, uint32_t queue, const void *data, uint32_t len)
{
	struct kvmq_vm_post post = {
		.size = sizeof(post),
		.queue = queue,
		.len = len,
		.data = (uintptr_t)data,
	};

	return kvmq_ioctl_err(vmq_fd, KVMQ_VM_POST, &post);
}

void kvmq_peer_create(struct kvmq_peer *p, int dev_fd, int group_fd,
		      uint32_t id, void *guest_code, uint64_t ap_len,
		      uint64_t quota, uint32_t depth)
{
	p->rings = NULL;
	p->vm = vm_create_with_one_vcpu(&p->vcpu, guest_code);
	p->vmq = kvmq_attach(dev_fd, p->vm);
	p->id = id;
	if (id)
		kvmq_set_identity(p->vmq, group_fd, id);
	if (depth)
		kvmq_set_queues(p->vmq, 1, 2, depth);

	p->ap_len = ap_len;
	kvmq_set_aperture(p->vmq, KVMQ_TEST_AP_GPA, ap_len, quota);
	p->ap = mmap(NULL, ap_len, PROT_READ | PROT_WRITE, MAP_SHARED, p->vmq,
		     0);
	TEST_ASSERT(p->ap != MAP_FAILED, "mmap failed, errno %d", errno);
	vm_set_user_memory_region(p->vm, KVMQ_TEST_AP_SLOT, 0,
				  KVMQ_TEST_AP_GPA, ap_len, p->ap);
	virt_map_level(p->vm, KVMQ_TEST_AP_GPA, KVMQ_TEST_AP_GPA, ap_len,
		       PG_LEVEL_2M);

	p->msg_gva = vm_vaddr_alloc_page(p->vm);
	p->msg_gpa = addr_gva2gpa(p->vm, p->msg_gva);
	vcpu_args_set(p->vcpu, 2, p->msg_gva, p->msg_gpa);
}

void *kvmq_peer_rings(struct kvmq_peer *p, uint32_t rx_entries,
		      uint32_t sq_entries, struct kvmq_vm_rings *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->rx_entries = rx_entries;
	cfg->sq_entries = sq_entries;
	TEST_ASSERT(!ioctl(p->vmq, KVMQ_VM_SET_RINGS, cfg),
		    "KVMQ_VM_SET_RINGS failed, errno %d", errno);
	p->rings_len = cfg->length;
	p->rings = mmap(NULL, cfg->length, PROT_READ | PROT_WRITE, MAP_SHARED,
			p->vmq, KVMQ_RINGS_MMAP_OFFSET);
	TEST_ASSERT(p->rings != MAP_FAILED, "mmap of rings failed, errno %d",
		    errno);
	vm_set_user_memory_region(p->vm, KVMQ_TEST_RING_SLOT, 0,
				  KVMQ_TEST_RING_GPA, cfg->length, p->rings);
	virt_map(p->vm, KVMQ_TEST_RING_GPA, KVMQ_TEST_RING_GPA,
		 cfg->length / getpagesize());
	return p->rings;
}

int kvmq_msi_irqfd(struct kvm_vm *vm, uint32_t gsi, uint8_t vector,
		   void (*handler)(struct ex_regs *regs))
{
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e[1];
	} rt = { .r.nr = 1 };
	struct kvm_irqfd irqfd = { .gsi = gsi };

	vm_install_exception_handler(vm, vector, handler);
	virt_pg_map(vm, APIC_DEFAULT_GPA, APIC_DEFAULT_GPA);
	rt.e[0].gsi = gsi;
	rt.e[0].type = KVM_IRQ_ROUTING_MSI;
	rt.e[0].u.msi.address_lo = 0xfee00000;
	rt.e[0].u.msi.data = vector;
	vm_ioctl(vm, KVM_SET_GSI_ROUTING, &rt.r);
	irqfd.fd = eventfd(0, 0);
	TEST_ASSERT(irqfd.fd >= 0, "eventfd, errno %d", errno);
	vm_ioctl(vm, KVM_IRQFD, &irqfd);
	return irqfd.fd;
}

void kvmq_peer_destroy(struct kvmq_peer *p)
{
	if (!p->vm)
		return;
	kvm_vm_free(p->vm);
	if (p->rings)
		munmap(p->rings, p->rings_len);
	p->rings = NULL;
	munmap(p->ap, p->ap_len);
	close(p->vmq);
	p->vm = NULL;
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

/*
 * The flat 32-bit code segment: base 0, limit 0xfffff in 4 KiB units (G),
 * 32-bit (D), not 64-bit (L), present, DPL 0, execute/read, accessed.
 */
#define KVMQ_CS32_DESC		0x00cf9b000000ffffULL
#define KVMQ_TEST_CS64		0x8	/* the selftest library's KERNEL_CS */

/*
 * The far pointers (m16:32) are absolute 32-bit addresses: the selftests
 * are linked without PIE, low in the address space.  RAX, RBX, RCX, RDX
 * and RSI keep all their 64 bits from their loads to the hypercall; the
 * vendor's instruction is chosen before the switch.  Interrupts are off
 * (IF=0) and nothing uses the stack in compatibility mode.
 */
extern char kvmq_compat_vmcall[], kvmq_compat_vmmcall[], kvmq_compat_back[];
asm(".pushsection .text\n"
	".global __kvmq_hypercall_compat\n"
	".type __kvmq_hypercall_compat, @function\n"
	"__kvmq_hypercall_compat:\n"
	"	push %rbx\n"
	"	mov %rdi, %rax\n"			/* nr */
	"	mov %rsi, %rbx\n"			/* a0 */
	"	xchg %rdx, %rcx\n"			/* a1, a2 */
	"	mov %r8, %rsi\n"			/* a3 */
	"	cmpb $0, host_cpu_is_amd(%rip)\n"
	"	jne 1f\n"
	"	ljmpl *kvmq_compat_vmcall_ptr(%rip)\n"
	"1:	ljmpl *kvmq_compat_vmmcall_ptr(%rip)\n"
	".code32\n"
	"kvmq_compat_vmcall:\n"
	"	vmcall\n"
	"	ljmpl *kvmq_compat_back_ptr\n"
	"kvmq_compat_vmmcall:\n"
	"	vmmcall\n"
	"	ljmpl *kvmq_compat_back_ptr\n"
	".code64\n"
	"kvmq_compat_back:\n"
	"	pop %rbx\n"
	"	ret\n"
	".size __kvmq_hypercall_compat, . - __kvmq_hypercall_compat\n"
	".popsection\n"
	".pushsection .data\n"
	".balign 8\n"
	"kvmq_compat_vmcall_ptr:\n"
	"	.long kvmq_compat_vmcall\n"
	"	.word " __stringify(KVMQ_TEST_CS32) "\n"
	".balign 8\n"
	"kvmq_compat_vmmcall_ptr:\n"
	"	.long kvmq_compat_vmmcall\n"
	"	.word " __stringify(KVMQ_TEST_CS32) "\n"
	".balign 8\n"
	"kvmq_compat_back_ptr:\n"
	"	.long kvmq_compat_back\n"
	"	.word " __stringify(KVMQ_TEST_CS64) "\n"
	".popsection\n");

void kvmq_compat_init(struct kvm_vm *vm)
{
	uint64_t *gdt = addr_gva2hva(vm, vm->arch.gdt);
	uint64_t *desc = &gdt[KVMQ_TEST_CS32 >> 3];
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_vcpu *vcpu;

	TEST_ASSERT((uintptr_t)kvmq_compat_back < (1ULL << 32) &&
		    (uintptr_t)kvmq_compat_vmcall < (1ULL << 32) &&
		    (uintptr_t)kvmq_compat_vmmcall < (1ULL << 32),
		    "32-bit code above 4 GiB");
	TEST_ASSERT(!*desc || *desc == KVMQ_CS32_DESC,
		    "GDT entry 0x%x in use: 0x%lx", KVMQ_TEST_CS32, *desc);
	*desc = KVMQ_CS32_DESC;

	list_for_each_entry(vcpu, &vm->vcpus, list) {
		vcpu_sregs_get(vcpu, &sregs);
		TEST_ASSERT(sregs.gdt.base == vm->arch.gdt &&
			    sregs.gdt.limit >= KVMQ_TEST_CS32 + 7,
			    "vCPU %u: GDT at 0x%llx, limit 0x%x", vcpu->id,
			    sregs.gdt.base, sregs.gdt.limit);
		TEST_ASSERT(sregs.cs.selector == KVMQ_TEST_CS64,
			    "vCPU %u: CS 0x%x", vcpu->id,
			    sregs.cs.selector);
		vcpu_regs_get(vcpu, &regs);
		TEST_ASSERT(regs.rsp < (1ULL << 32),
			    "vCPU %u: stack at 0x%llx, above 4 GiB", vcpu->id,
			    regs.rsp);
	}
}
