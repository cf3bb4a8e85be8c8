// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq demo: a VMM that runs the three VMs of the reference pipeline
 * ("read", "decode", "play"), attaches each to kvmq, names them, and lets
 * each guest discover kvmq and its own identity through hypercalls handled
 * in the host kernel.  Prints what each guest saw and what it cost in exits.
 */
#include <stdio.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kvmq_util.h"

#define NR_VMS		3
#define NR_CALLS	1000

static void guest_code(void)
{
	uint64_t version = kvm_hypercall(KVMQ_HC_VERSION, 0, 0, 0, 0);
	uint64_t features = kvm_hypercall(KVMQ_HC_FEATURES, 0, 0, 0, 0);
	uint64_t id = kvm_hypercall(KVMQ_HC_SELF_ID, 0, 0, 0, 0);
	int i;

	/* Tell the VMM what kvmq answered (ucall args 2..4). */
	GUEST_SYNC_ARGS(0, version, features, id, 0);

	/* Then ask again many times: all handled without leaving the host. */
	for (i = 0; i < NR_CALLS; i++)
		GUEST_ASSERT_EQ(kvm_hypercall(KVMQ_HC_SELF_ID, 0, 0, 0, 0), id);
	GUEST_DONE();
}

struct demo_vm {
	const char *name;
	uint32_t id;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int vmq;
	uint64_t seen[3];	/* version, features, identity */
	uint64_t hypercalls, user_exits;
};

/* Run until the next ucall; count the exits to this VMM. */
static uint64_t run(struct demo_vm *d, struct ucall *uc)
{
	d->user_exits++;
	return kvmq_run(d->vcpu, uc);
}

int main(void)
{
	struct demo_vm vms[NR_VMS] = {
		{ .name = "read", .id = 1 },
		{ .name = "decode", .id = 2 },
		{ .name = "play", .id = 3 },
	};
	struct kvmq_info info = { .size = sizeof(info) };
	uint64_t total_hc = 0, total_exits = 0;
	int dev, group, i, ok = 1;
	struct ucall uc;

	dev = kvmq_open_dev();
	group = kvmq_create_group(dev);
	TEST_ASSERT(!ioctl(dev, KVMQ_GET_INFO, &info), "KVMQ_GET_INFO");
	printf("kvmq: ABI %u, hypercalls 0x%x..0x%x, features 0x%llx\n",
	       info.abi_version, info.hc_base,
	       info.hc_base + info.hc_count - 1,
	       (unsigned long long)info.features);

	for (i = 0; i < NR_VMS; i++) {
		struct demo_vm *d = &vms[i];

		d->vm = vm_create_with_one_vcpu(&d->vcpu, guest_code);
		d->vmq = kvmq_attach(dev, d->vm);
		kvmq_set_identity(d->vmq, group, d->id);
		printf("vm %-6s attached, identity %u\n", d->name, d->id);
	}

	for (i = 0; i < NR_VMS; i++) {
		struct demo_vm *d = &vms[i];
		uint64_t before = kvmq_vcpu_stat(d->vcpu, "hypercalls");

		TEST_ASSERT(run(d, &uc) == UCALL_SYNC, "expected a sync");
		d->seen[0] = uc.args[2];
		d->seen[1] = uc.args[3];
		d->seen[2] = uc.args[4];
		TEST_ASSERT(run(d, &uc) == UCALL_DONE, "expected done");
		d->hypercalls = kvmq_vcpu_stat(d->vcpu, "hypercalls") - before;
	}

	printf("\n%-7s %8s %8s %9s %11s %16s\n", "vm", "abi", "features",
	       "guest id", "hypercalls", "exits to VMM");
	for (i = 0; i < NR_VMS; i++) {
		struct demo_vm *d = &vms[i];

		printf("%-7s %8llu %#8llx %9llu %11llu %16llu\n", d->name,
		       (unsigned long long)d->seen[0],
		       (unsigned long long)d->seen[1],
		       (unsigned long long)d->seen[2],
		       (unsigned long long)d->hypercalls,
		       (unsigned long long)d->user_exits);
		/* Two exits: the guest's report and its "done". */
		if (d->seen[0] != KVMQ_ABI_VERSION || d->seen[2] != d->id ||
		    d->hypercalls != NR_CALLS + 3 || d->user_exits != 2)
			ok = 0;
		total_hc += d->hypercalls;
		total_exits += d->user_exits;
		close(d->vmq);
		kvm_vm_free(d->vm);
	}
	close(group);
	close(dev);

	printf("\n%s: %llu kvmq hypercalls handled in the host kernel, %llu "
	       "exits to the VMM (each guest's report and its end)\n",
	       ok ? "PASS" : "FAIL", (unsigned long long)total_hc,
	       (unsigned long long)total_exits);
	return ok ? 0 : 1;
}
