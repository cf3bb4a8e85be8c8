// SPDX-License-Identifier: GPL-2.0
/*
 * Notifications: arrival eventfds with event suppression in the receive
 * ring, a receiver that halts until the interrupt an arrival raises
 * (KVM_IRQFD, MSI), and the room notification of a sender a full queue
 * refused.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvm_util.h"
#include "processor.h"
#include "apic.h"
#include "kvmq_util.h"
#include "kselftest_harness.h"

#define AP_LEN		(8ULL << 20)
#define RINGS		KVMQ_TEST_RING_GPA
#define ID_A		1
#define ID_B		2
#define DEPTH		4
#define VECTOR		0x40
#define GSI		5

#define EXPECT_HC(expect, nr, a0, a1, a2) \
	GUEST_ASSERT_EQ(kvmq_hc(nr, a0, a1, a2), (uint64_t)(expect))

static struct kvmq_vm_rings lay;

static struct kvmq_ring *rx_ring(void)
{
	return (void *)RINGS;	/* queue 0 */
}

static bool rx_empty(struct kvmq_ring *r)
{
	return __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE) == r->cons;
}

/* Guest: take every message of the ring; return how many. */
static uint32_t rx_drain(struct kvmq_ring *r)
{
	uint32_t n = 0;

	while (!rx_empty(r)) {
		__atomic_store_n(&r->cons, r->cons + 1, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}

/* Sender A: @n bytes messages to B's queue 0; report the last result. */
static void guest_send(uint64_t gva, uint64_t gpa, uint64_t n)
{
	struct kvmq_msg *m = (void *)gva;
	int64_t ret = 0;
	uint64_t i;

	memset(m, 0, offsetof(struct kvmq_msg, data));
	m->kind = KVMQ_MSG_BYTES;
	m->len = 8;
	for (;;) {
		for (i = 0; i < n; i++)
			ret = kvmq_hc(KVMQ_HC_SEND, ID_B, 0, gpa);
		GUEST_SYNC_ARGS(1, ret, 0, 0, 0);
	}
}

FIXTURE(nt) {
	int dev, group, efd;
	struct kvmq_peer a, b;
};

FIXTURE_SETUP(nt)
{
	ASSERT_EQ(0, kvmq_pool_settled());
	self->dev = kvmq_open_dev();
	self->group = kvmq_create_group(self->dev);
	kvmq_peer_create(&self->a, self->dev, self->group, ID_A, NULL,
			 AP_LEN, AP_LEN, DEPTH);
	kvmq_peer_create(&self->b, self->dev, self->group, ID_B, NULL,
			 AP_LEN, AP_LEN, DEPTH);
	kvmq_grant(self->b.vmq, 0, ID_A);
	self->efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, self->efd);
}

FIXTURE_TEARDOWN(nt)
{
	kvmq_peer_destroy(&self->a);
	kvmq_peer_destroy(&self->b);
	close(self->efd);
	close(self->group);
	close(self->dev);
	EXPECT_EQ(0, kvmq_pool_pages());
}

static int set_notify(int vmq, uint32_t queue, int fd)
{
	struct kvmq_vm_notify n = {
		.size = sizeof(n), .queue = queue, .fd = fd,
	};

	return kvmq_ioctl_err(vmq, KVMQ_VM_SET_NOTIFY, &n);
}

/* The eventfd's count, 0 if it was not signalled; resets it. */
static uint64_t efd_take(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, sizeof(v)) != sizeof(v)) {
		TEST_ASSERT(errno == EAGAIN, "eventfd read, errno %d", errno);
		return 0;
	}
	return v;
}

static void send_n(struct kvmq_peer *a, uint64_t n, int64_t expect)
{
	struct ucall uc;

	vcpu_arch_set_entry_point(a->vcpu, guest_send);
	vcpu_args_set(a->vcpu, 3, a->msg_gva, a->msg_gpa, n);
	TEST_ASSERT(kvmq_run(a->vcpu, &uc) == UCALL_SYNC, "sync");
	TEST_ASSERT((int64_t)uc.args[2] == expect, "send: %ld, not %ld",
		    (int64_t)uc.args[2], expect);
}

/* Receiver B with rings: wants interrupts, then polls. */
static void guest_flag(uint64_t gva, uint64_t gpa)
{
	struct kvmq_ring *r = rx_ring();

	r->flags = KVMQ_RING_F_WAKE;
	GUEST_SYNC(1);
	GUEST_ASSERT_EQ(rx_drain(r), 2);
	r->flags = 0;
	GUEST_SYNC(2);
	GUEST_ASSERT_EQ(rx_drain(r), 1);
	GUEST_DONE();
}

TEST_F(nt, arrival_suppressed)
{
	uint64_t sig = kvmq_debugfs_stat("notify_signalled");
	uint64_t sup = kvmq_debugfs_stat("notify_suppressed");
	struct ucall uc;

	kvmq_peer_rings(&self->b, 4, 4, &lay);
	sync_global_to_guest(self->b.vm, lay);
	ASSERT_EQ(0, set_notify(self->b.vmq, 0, self->efd));
	vcpu_arch_set_entry_point(self->b.vcpu, guest_flag);

	ASSERT_EQ(UCALL_SYNC, kvmq_run(self->b.vcpu, &uc));
	send_n(&self->a, 2, 0);
	EXPECT_EQ(2, efd_take(self->efd));	/* the guest asked */
	ASSERT_EQ(UCALL_SYNC, kvmq_run(self->b.vcpu, &uc));
	send_n(&self->a, 1, 0);
	EXPECT_EQ(0, efd_take(self->efd));	/* polling: suppressed */
	kvmq_run_to_done(self->b.vcpu);
	EXPECT_EQ(2, kvmq_debugfs_stat("notify_signalled") - sig);
	EXPECT_EQ(1, kvmq_debugfs_stat("notify_suppressed") - sup);
	EXPECT_EQ(2, kvmq_get_stats(self->b.vmq).notified);
	EXPECT_EQ(1, kvmq_get_stats(self->b.vmq).suppressed);

	/* Removed: no more signals. */
	ASSERT_EQ(0, set_notify(self->b.vmq, 0, -1));
	send_n(&self->a, 1, 0);
	EXPECT_EQ(0, efd_take(self->efd));
}

/* Without rings, each message entering the queue signals. */
TEST_F(nt, arrival_no_rings)
{
	ASSERT_EQ(0, set_notify(self->b.vmq, 0, self->efd));
	send_n(&self->a, 3, 0);
	EXPECT_EQ(3, efd_take(self->efd));
	EXPECT_EQ(0, kvmq_post_err(self->b.vmq, 0, "x", 1));
	EXPECT_EQ(1, efd_take(self->efd));
}

/*
 * Room: A's sends fill B's queue; the refused one is noted, and A's room
 * eventfd is signalled when B takes a message, once.
 */
static void guest_take(uint64_t gva, uint64_t gpa, uint64_t n)
{
	uint64_t i;

	for (i = 0; i < n; i++)
		EXPECT_HC(0, KVMQ_HC_RECV, 0, gpa, 0);
	GUEST_DONE();
}

TEST_F(nt, room)
{
	uint64_t sig = kvmq_debugfs_stat("space_signalled");

	ASSERT_EQ(0, set_notify(self->a.vmq, KVMQ_NOTIFY_SPACE, self->efd));
	send_n(&self->a, DEPTH + 1, -EAGAIN);
	EXPECT_EQ(0, efd_take(self->efd));
	vcpu_arch_set_entry_point(self->b.vcpu, guest_take);
	vcpu_args_set(self->b.vcpu, 3, self->b.msg_gva, self->b.msg_gpa, 2);
	kvmq_run_to_done(self->b.vcpu);
	/* Signalled once for the refusal, not once per message taken. */
	EXPECT_EQ(1, efd_take(self->efd));
	EXPECT_EQ(1, kvmq_debugfs_stat("space_signalled") - sig);
	EXPECT_EQ(1, kvmq_get_stats(self->a.vmq).room_notified);
	EXPECT_EQ(1, kvmq_get_stats(self->a.vmq).refused);
	EXPECT_EQ(DEPTH, kvmq_get_stats(self->a.vmq).sent[0]);
	send_n(&self->a, 2, 0);
	EXPECT_EQ(0, efd_take(self->efd));
}

/*
 * The receiver goes away while A waits for room: A is told, and its next
 * send finds no such VM instead of waiting for room that never comes.
 */
TEST_F(nt, room_receiver_gone)
{
	ASSERT_EQ(0, set_notify(self->a.vmq, KVMQ_NOTIFY_SPACE, self->efd));
	send_n(&self->a, DEPTH + 1, -EAGAIN);
	EXPECT_EQ(0, efd_take(self->efd));
	kvmq_peer_destroy(&self->b);
	EXPECT_EQ(1, efd_take(self->efd));
	EXPECT_EQ(1, kvmq_get_stats(self->a.vmq).room_notified);
	send_n(&self->a, 1, -ENOENT);
	/* For the teardown. */
	kvmq_peer_create(&self->b, self->dev, self->group, ID_B, NULL,
			 AP_LEN, AP_LEN, DEPTH);
}

/*
 * A receiver that halts: it asks for an interrupt, checks its ring once
 * more, and halts; an arrival raises the MSI its VMM bound to the queue's
 * eventfd, which wakes it.  While it waits it makes no exit.
 */
static volatile uint32_t irqs;

static void guest_irq(struct ex_regs *regs)
{
	irqs++;
	xapic_write_reg(APIC_EOI, 0);
}

static void guest_halt(uint64_t gva, uint64_t gpa)
{
	struct kvmq_ring *r = rx_ring();
	uint32_t got = 0;

	xapic_enable();
	while (!got) {
		r->flags = KVMQ_RING_F_WAKE;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (rx_empty(r))
			asm volatile("sti; hlt; cli");
		r->flags = 0;
		got = rx_drain(r);
	}
	GUEST_ASSERT_EQ(got, 1);
	GUEST_ASSERT_EQ(irqs, 1);
	GUEST_DONE();
}

static void *run_b(void *arg)
{
	kvmq_run_to_done(arg);
	return NULL;
}

TEST_F(nt, halt_wake)
{
	uint64_t exits;
	pthread_t t;
	int i, sfd;

	kvmq_peer_rings(&self->b, 4, 4, &lay);
	sync_global_to_guest(self->b.vm, lay);
	close(self->efd);
	self->efd = kvmq_msi_irqfd(self->b.vm, GSI, VECTOR, guest_irq);
	ASSERT_EQ(0, set_notify(self->b.vmq, 0, self->efd));

	vcpu_arch_set_entry_point(self->b.vcpu, guest_halt);
	/* Opened before: a vCPU ioctl would wait for the running vCPU. */
	sfd = vcpu_get_stats_fd(self->b.vcpu);
	ASSERT_EQ(0, pthread_create(&t, NULL, run_b, self->b.vcpu));
	for (i = 0; i < 1000 && !kvmq_stats_fd_read(sfd, "halt_exits"); i++)
		usleep(10000);
	ASSERT_NE(0, kvmq_stats_fd_read(sfd, "halt_exits"));

	/* Halted: no exit while it waits. */
	exits = kvmq_stats_fd_read(sfd, "exits");
	usleep(200000);
	EXPECT_EQ(exits, kvmq_stats_fd_read(sfd, "exits"));

	send_n(&self->a, 1, 0);
	ASSERT_EQ(0, pthread_join(t, NULL));
	close(sfd);
}

TEST(config)
{
	struct kvmq_vm_notify n = { .size = sizeof(n), .queue = 0, .fd = -1 };
	struct kvmq_vm_stats st = { .size = sizeof(st) };
	int dev = kvmq_open_dev(), efd = eventfd(0, 0);
	struct kvmq_peer p;

	kvmq_peer_create(&p, dev, -1, 0, NULL, AP_LEN, AP_LEN, 0);
	EXPECT_EQ(-ENODEV, set_notify(p.vmq, 0, efd));
	EXPECT_EQ(0, set_notify(p.vmq, KVMQ_NOTIFY_SPACE, efd));
	kvmq_set_queues(p.vmq, 1, 2, 4);
	EXPECT_EQ(-EINVAL, set_notify(p.vmq, 1, efd));
	EXPECT_EQ(-EINVAL, set_notify(p.vmq, KVMQ_QUEUE_VCPU(2), efd));
	EXPECT_EQ(-EINVAL, set_notify(p.vmq, 0, p.vmq));	/* no eventfd */
	EXPECT_EQ(-EBADF, set_notify(p.vmq, 0, 1000));
	EXPECT_EQ(-EBADF, set_notify(p.vmq, 0, -2));
	EXPECT_EQ(0, set_notify(p.vmq, KVMQ_QUEUE_VCPU(1), efd));
	EXPECT_EQ(0, set_notify(p.vmq, KVMQ_QUEUE_VCPU(1), efd)); /* again */
	EXPECT_EQ(0, set_notify(p.vmq, KVMQ_QUEUE_VCPU(1), -1));
	n.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(p.vmq, KVMQ_VM_SET_NOTIFY, &n));

	/* The statistics: flags rejected, a size below the first version. */
	st.flags = 1;
	EXPECT_EQ(-EOPNOTSUPP, kvmq_ioctl_err(p.vmq, KVMQ_VM_GET_STATS, &st));
	st.flags = 0;
	st.size = offsetof(struct kvmq_vm_stats, room_notified);
	EXPECT_EQ(-EINVAL, kvmq_ioctl_err(p.vmq, KVMQ_VM_GET_STATS, &st));
	st.size = sizeof(st);
	EXPECT_EQ(0, kvmq_ioctl_err(p.vmq, KVMQ_VM_GET_STATS, &st));
	EXPECT_EQ(0, st.sent[0] + st.received[0] + st.doorbells);
	kvmq_peer_destroy(&p);
	close(efd);
	close(dev);
}

KVMQ_TEST_HARNESS_MAIN
