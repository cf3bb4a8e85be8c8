// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifetime: rmmod is refused while a VM is attached, and unloading
 * and reloading kvmq with VMs created and destroyed in between leaves
 * nothing behind.  Needs KVMQ_KO, the path of kvmq.ko, and root.  Leaves
 * the module loaded, as it found it.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>

#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define NR_RELOADS	5

static int load_kvmq(void)
{
	const char *ko = getenv("KVMQ_KO");
	int fd, ret;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0);
	ret = ret ? -errno : 0;
	close(fd);
	return ret;
}

static int unload_kvmq(void)
{
	return syscall(SYS_delete_module, "kvmq", O_NONBLOCK) ? -errno : 0;
}

static bool kvmq_loaded(void)
{
	return !access("/sys/module/kvmq", F_OK);
}

#define ENABLED_FUNCTIONS "/sys/kernel/tracing/enabled_functions"

/* Whether ftrace has a callback on KVM's hypercall emulation. */
static bool hook_installed(void)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(ENABLED_FUNCTIONS, "r");

	TEST_ASSERT(f, "cannot read " ENABLED_FUNCTIONS);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "__kvm_emulate_hypercall ", 24))
			found = true;
	fclose(f);
	return found;
}

static void guest_code(uint64_t attached)
{
	uint64_t expect = attached ? KVMQ_ABI_VERSION : -KVM_ENOSYS;

	GUEST_ASSERT_EQ(kvm_hypercall(KVMQ_HC_VERSION, 0, 0, 0, 0), expect);
	GUEST_DONE();
}

/* Run a guest that checks what KVMQ_HC_VERSION returns. */
static void run_guest(struct kvm_vm *vm, struct kvm_vcpu *vcpu,
		      bool attached)
{
	vcpu_arch_set_entry_point(vcpu, guest_code);
	vcpu_args_set(vcpu, 1, attached);
	kvmq_run_to_done(vcpu);
}

FIXTURE(reload) {
	bool was_loaded;
};

FIXTURE_SETUP(reload)
{
	if (!getenv("KVMQ_KO"))
		SKIP(return, "KVMQ_KO (path of kvmq.ko) not set");
	if (geteuid())
		SKIP(return, "needs root");
	if (access(ENABLED_FUNCTIONS, R_OK))
		SKIP(return, "needs tracefs at /sys/kernel/tracing");
	self->was_loaded = kvmq_loaded();
	if (!self->was_loaded)
		ASSERT_EQ(0, load_kvmq());
}

FIXTURE_TEARDOWN(reload)
{
	if (self->was_loaded && !kvmq_loaded())
		EXPECT_EQ(0, load_kvmq());
	if (!self->was_loaded && kvmq_loaded())
		EXPECT_EQ(0, unload_kvmq());
}

/* Open /dev/kvmq and attached VMs pin the module. */
TEST_F(reload, refused_while_attached)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	int dev, vmq;

	vm = vm_create_with_one_vcpu(&vcpu, NULL);
	dev = kvmq_open_dev();
	EXPECT_EQ(-EWOULDBLOCK, unload_kvmq());

	vmq = kvmq_attach(dev, vm);
	close(dev);
	EXPECT_EQ(-EWOULDBLOCK, unload_kvmq());
	ASSERT_TRUE(kvmq_loaded());
	run_guest(vm, vcpu, true);

	close(vmq);
	EXPECT_EQ(0, unload_kvmq());
	EXPECT_FALSE(kvmq_loaded());
	EXPECT_NE(0, access(KVMQ_DEV_PATH, F_OK));

	/* The VM outlives kvmq and its hypercalls are KVM's again. */
	run_guest(vm, vcpu, false);
	kvm_vm_free(vm);
	ASSERT_EQ(0, load_kvmq());
}

static void guest_spin(void)
{
	for (;;)
		GUEST_ASSERT_EQ(kvm_hypercall(KVMQ_HC_SELF_ID, 0, 0, 0, 0), 7);
}

/*
 * A VMM killed while its guest issues kvmq hypercalls: its attachment,
 * identity and module references all go away with it.
 */
TEST_F(reload, vmm_killed)
{
	int i, dev, vmq, group, pipefd[2], status;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	char c;
	pid_t pid;

	/* The killed VMMs inherit the group. */
	dev = kvmq_open_dev();
	group = kvmq_create_group(dev);
	close(dev);

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, pipe(pipefd));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			int dev = kvmq_open_dev();

			vm = vm_create_with_one_vcpu(&vcpu, guest_spin);
			kvmq_set_identity(kvmq_attach(dev, vm), group, 7);
			close(dev);
			TEST_ASSERT(write(pipefd[1], "r", 1) == 1, "pipe");
			vcpu_run(vcpu);
			_exit(1);	/* the guest never stops by itself */
		}
		close(pipefd[1]);
		ASSERT_EQ(1, read(pipefd[0], &c, 1));
		close(pipefd[0]);
		usleep(100000 * (i + 1));
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status));
	}

	/* The identity is free again ... */
	dev = kvmq_open_dev();
	vm = vm_create_barebones();
	vmq = kvmq_attach(dev, vm);
	kvmq_set_identity(vmq, group, 7);
	close(vmq);
	close(group);
	close(dev);
	kvm_vm_free(vm);

	/* ... and nothing the killed VMMs had pins the module. */
	ASSERT_EQ(0, unload_kvmq());
	ASSERT_EQ(0, load_kvmq());
}

#define FTRACE_ENABLED "/proc/sys/kernel/ftrace_enabled"

/* Write @val to ftrace_enabled; return 0 or -errno. */
static int set_ftrace_enabled(const char *val)
{
	int fd = open(FTRACE_ENABLED, O_WRONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* While kvmq is loaded, ftrace cannot be turned off under its feet. */
TEST_F(reload, ftrace_sysctl)
{
	int ret;

	ASSERT_TRUE(kvmq_loaded());
	ret = set_ftrace_enabled("0");
	if (ret != -EBUSY)
		set_ftrace_enabled("1");
	ASSERT_EQ(-EBUSY, ret);
	ASSERT_TRUE(hook_installed());

	/* Without kvmq the sysctl works, and kvmq refuses to load then. */
	ASSERT_EQ(0, unload_kvmq());
	ASSERT_EQ(0, set_ftrace_enabled("0"));
	ret = load_kvmq();
	ASSERT_EQ(0, set_ftrace_enabled("1"));
	ASSERT_EQ(-EBUSY, ret);
	ASSERT_FALSE(kvmq_loaded());
	ASSERT_EQ(0, load_kvmq());
}

TEST_F(reload, loop)
{
	struct kvm_vcpu *vcpu[2];
	struct kvm_vm *vm[2];
	int i, j, dev, group, vmq[2];

	for (i = 0; i < NR_RELOADS; i++) {
		if (!kvmq_loaded())
			ASSERT_EQ(0, load_kvmq());

		/* VMs created before the attach, some destroyed after. */
		for (j = 0; j < 2; j++)
			vm[j] = vm_create_with_one_vcpu(&vcpu[j], NULL);
		dev = kvmq_open_dev();
		group = kvmq_create_group(dev);
		for (j = 0; j < 2; j++) {
			vmq[j] = kvmq_attach(dev, vm[j]);
			kvmq_set_identity(vmq[j], group, j + 1);
			run_guest(vm[j], vcpu[j], true);
		}
		close(group);
		close(dev);

		/* VM 0: VM fd first, then the kvmq file. */
		kvm_vm_free(vm[0]);
		close(vmq[0]);
		/* VM 1: detached, still running, destroyed after unload. */
		close(vmq[1]);
		run_guest(vm[1], vcpu[1], false);

		ASSERT_TRUE(hook_installed());
		ASSERT_EQ(0, unload_kvmq());
		ASSERT_FALSE(kvmq_loaded());
		/* Nothing left behind: no ftrace hook, KVM's hypercalls. */
		ASSERT_FALSE(hook_installed());
		EXPECT_NE(0, access(KVMQ_DEV_PATH, F_OK));
		run_guest(vm[1], vcpu[1], false);
		kvm_vm_free(vm[1]);
	}
	ASSERT_EQ(0, load_kvmq());
	EXPECT_EQ(-EEXIST, load_kvmq());
}

TEST_HARNESS_MAIN
