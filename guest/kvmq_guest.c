// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq_guest: the guest driver of the kvmq-pci device.
 *
 * The device (include/uapi/linux/kvmq_pci.h) describes the VM that its VMM
 * attached to kvmq, carries kvmq's arrival and room interrupts, and exposes
 * the VM's aperture as BAR2.  The driver issues the kvmq hypercalls on
 * behalf of processes, which use a misc device per PCI device, /dev/kvmqN
 * (include/uapi/linux/kvmq_guest.h, Documentation/guest.rst).
 *
 * Aperture.  The driver keeps a bitmap of the aperture pages that its files
 * hold: allocated (KVMQG_ALLOC), or received, and not yet sent or released.
 * Every held page is held by one file, recorded as an extent in the file's
 * tree, and given back to kvmq (KVMQ_HC_RELEASE) when the file lets go of
 * it, at the latest when it is closed.  A page no file holds is a free slot
 * of kvmq's aperture, where a receive may place pages: allocations and
 * receives are serialized by dev->lock, so that kvmq never places a message
 * in a range being allocated.  With rings, kvmq places the pages of a
 * message when it enters a receive ring: an allocation skips the slots of
 * the messages there, touches its range, then reads the rings again
 * (kvmqg_claim()), and a block that counts whole is released only once its
 * free slots are touched and no message waits in it (kvmqg_trim()).
 *
 * Quota.  A touch of the aperture beyond its quota makes the VM's KVM_RUN
 * fail in the host, so the driver checks its allocations against the quota
 * first, with an upper bound of the pages the host holds for the aperture
 * (dev->charged).  The first touch of an empty 2 MiB block may make kvmq back
 * the whole block when the quota has room for it: such a block counts as
 * 512 pages (dev->full) until no file holds any of its pages, when the
 * driver releases the whole block.  Pages queued to the VM, which the guest
 * cannot see, count against the quota too: a VMM that wants its guest's
 * allocations to succeed keeps part of the quota out of its peers' reach
 * with the page limit of its queues.
 *
 * Removal.  Operations that use the device hold dev->remove_sem for read and
 * wait for interrupts with it held; remove() marks the device dead, wakes
 * them, frees the interrupts, then takes the semaphore for write: once it
 * has it, nothing uses the hardware any more.  Faults on the mappings of the
 * aperture take dev->map_sem instead (they run under mmap_lock, which the
 * ioctls may take while they copy), and remove() zaps every mapping after it
 * marked the device dead under it.  Files keep the device structure alive
 * (dev->ref) until they are closed.
 *
 * Rings.  A device that offers rings (KVMQ_PCI_REG_RINGS) gets them set up
 * at probe, once the aperture is empty.  Messages then arrive in the
 * receive rings, which the driver reads without an exit; it asks for an
 * arrival interrupt (KVMQ_RING_F_WAKE) only while a receive waits on the
 * ring, or once poll() was used.  Sends submitted through io_uring go into
 * the submission ring of the vCPU the submitter runs on, as lazy entries:
 * kvmq runs them at that vCPU's next natural exit.  A delayed work reaps
 * their completions every tick while any is in flight, and makes a vCPU
 * whose entries wait too long issue KVMQ_HC_SUBMIT.  The pages of a send
 * in flight leave the file's extents when it is posted but stay held
 * (dev->flying) until its completion is reaped: allocations cannot take
 * them, and a receive that finds its pages placed there reaps first.
 *
 * Lock order: remove_sem, then lock, then peers_lock, wake_lock or
 * i_mmap_rwsem; mmap_lock, then map_sem.  No user memory is accessed under
 * lock.  dev->lock also protects the receive rings' consumer indexes and
 * the submission rings.
 */
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/io_uring/cmd.h>
#include <linux/kref.h>
#include <linux/kvm_para.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <asm/smp.h>
#include <uapi/linux/kvmq.h>
#include <uapi/linux/kvmq_guest.h>
#include <uapi/linux/kvmq_pci.h>

#include "kvmq_peers.h"

#define KVMQG_BLOCK_SHIFT	(21 - PAGE_SHIFT)
#define KVMQG_BLOCK_PAGES	BIT(KVMQG_BLOCK_SHIFT)
/* The features the driver uses. */
#define KVMQG_FEATURES		(KVMQ_FEATURE_IDENTITY | KVMQ_FEATURE_APERTURE | \
				 KVMQ_FEATURE_QUEUES)

struct kvmqg_dev;
struct kvmqg_req;

/* A queue's receive ring: kvmq produces, the driver consumes. */
struct kvmqg_rx {
	struct kvmq_ring *ring;
	struct kvmq_msg *msgs;
	u32 cons;		/* under dev->lock; the guest's copy */
	unsigned int waiters;	/* under dev->wake_lock */
};

/* One vCPU's submission and completion rings; under dev->lock. */
struct kvmqg_sq {
	struct kvmqg_dev *dev;
	struct kvmq_ring *sq;
	struct kvmq_sqe *sqes;
	struct kvmq_ring *cq;
	struct kvmq_cqe *cqes;
	u32 prod;		/* entries written */
	u32 cq_cons;		/* completions consumed */
	unsigned int stalled;	/* reaps without a completion */
	struct kvmqg_req **reqs;	/* in flight, at index & (entries - 1) */
	/*
	 * The file whose KVMQG_F_LINK send is the last entry written: kvmq
	 * ties the next entry to it.  Another file's entry, or the file's own
	 * with KVMQG_F_CHAIN_START, is preceded by an entry that ends the
	 * chain.  KVMQG_CHAIN_ORPHAN: the file was closed.
	 */
	struct kvmqg_file *chain;
	int cpu;		/* the guest CPU that is this vCPU, or -1 */
	struct work_struct kick;
};

/* An io_uring send. */
struct kvmqg_req {
	struct io_uring_cmd *ioucmd;
	struct kvmqg_file *f;
	struct kvmq_msg *msg;
	struct kvmqg_pages *pg;
	struct list_head node;
	u32 idx;
	int res;
};

struct kvmqg_vec {
	struct kvmqg_dev *dev;
	u32 queue;
};

struct kvmqg_dev {
	struct kref ref;
	struct pci_dev *pdev;
	struct miscdevice misc;
	char name[16];
	int index;

	/* Set at probe, constant. */
	void __iomem *regs;
	void *aperture;
	phys_addr_t ap_base;
	unsigned long nr_pages;
	unsigned long quota_pages;
	u64 features;
	u32 abi_version;
	u32 nr_queues;
	u32 depth;

	/* Interrupts: vector q for queue q, vector nr_queues for room. */
	struct kvmqg_vec *vecs;
	unsigned int nr_irqs;
	atomic_t *arrivals;
	atomic_t room;
	wait_queue_head_t rxwq;
	wait_queue_head_t roomwq;

	/* The control queue, drained by ctl_work. */
	struct work_struct ctl_work;
	struct kvmq_msg *ctl_msg;
	spinlock_t peers_lock;		/* protects peers */
	struct kvmq_peer_table peers;

	struct rw_semaphore remove_sem;
	struct rw_semaphore map_sem;
	bool dead;

	/* Rings, if the device has them: set at probe, constant. */
	void *rings;
	u64 rings_len;
	u32 rx_entries;
	u32 sq_entries;
	u32 nr_vcpu_queues;
	u32 tag;			/* high half of our sqe user_data */
	struct kvmqg_rx *rx;		/* per queue */
	struct kvmqg_sq *sqs;		/* per vCPU queue */
	spinlock_t wake_lock;		/* protects rx[].waiters, polled */
	bool polled;
	struct delayed_work reap;
	atomic_t inflight;		/* io_uring sends in the rings */
	unsigned long *flying;		/* their pages, under lock */

	/* Protects what follows and the extents of every file. */
	struct mutex lock;
	unsigned long *held;
	unsigned long *full;
	u16 *blk_held;
	unsigned long nr_held;
	unsigned long charged;
	struct list_head files;
};

/*
 * A blocked send or receive tries again when its interrupt comes, and at
 * the latest after this long: an interrupt that a (nested, emulated)
 * platform delivers late or not at all then costs a pause, not a hang.
 */
#define KVMQG_RECHECK		HZ

/* The room count sampled before a send was refused, and this bit. */
#define KVMQG_REFUSED		BIT_ULL(32)

struct kvmqg_file {
	struct kvmqg_dev *dev;
	struct list_head node;
	struct address_space *mapping;
	struct rb_root exts;
	u64 refused;
};

/* A range of aperture pages a file holds; never adjacent to another. */
struct kvmqg_ext {
	struct rb_node node;
	unsigned long first;
	unsigned long nr;
};

/* The pages of a send, in runs of consecutive pages. */
struct kvmqg_run {
	unsigned long first;
	unsigned long nr;
};

struct kvmqg_pages {
	unsigned long *idx;
	struct kvmqg_run *runs;
	struct kvmqg_ext **spares;
	unsigned int nr_runs;
};

static DEFINE_IDA(kvmqg_ida);

/* Hypercalls; -KVM_ENOSYS: the VM is not attached (any more). */
static long kvmqg_hc_ret(long ret)
{
	return ret == -KVM_ENOSYS ? -ENODEV : ret;
}

static long kvmqg_hc0(unsigned int nr)
{
	return kvmqg_hc_ret(kvm_hypercall0(nr));
}

static long kvmqg_hc1(unsigned int nr, unsigned long a0)
{
	return kvmqg_hc_ret(kvm_hypercall1(nr, a0));
}

static long kvmqg_hc2(unsigned int nr, unsigned long a0, unsigned long a1)
{
	return kvmqg_hc_ret(kvm_hypercall2(nr, a0, a1));
}

static long kvmqg_hc3(unsigned int nr, unsigned long a0, unsigned long a1,
		      unsigned long a2)
{
	return kvmqg_hc_ret(kvm_hypercall3(nr, a0, a1, a2));
}

static long kvmqg_hc_release(struct kvmqg_dev *dev, unsigned long first,
			     unsigned long nr)
{
	return kvmqg_hc2(KVMQ_HC_RELEASE,
			 dev->ap_base + ((u64)first << PAGE_SHIFT), nr);
}

static int kvmqg_enter(struct kvmqg_dev *dev)
{
	down_read(&dev->remove_sem);
	if (READ_ONCE(dev->dead)) {
		up_read(&dev->remove_sem);
		return -ENODEV;
	}
	return 0;
}

static void kvmqg_leave(struct kvmqg_dev *dev)
{
	up_read(&dev->remove_sem);
}

/* Extents. */

static struct kvmqg_ext *kvmqg_ext_find(struct kvmqg_file *f,
					unsigned long pg)
{
	struct rb_node *n = f->exts.rb_node;

	while (n) {
		struct kvmqg_ext *e = rb_entry(n, struct kvmqg_ext, node);

		if (pg < e->first)
			n = n->rb_left;
		else if (pg >= e->first + e->nr)
			n = n->rb_right;
		else
			return e;
	}
	return NULL;
}

static bool kvmqg_owns(struct kvmqg_file *f, unsigned long first,
		       unsigned long nr)
{
	unsigned long pg = first;

	lockdep_assert_held(&f->dev->lock);
	while (pg < first + nr) {
		struct kvmqg_ext *e = kvmqg_ext_find(f, pg);

		if (!e)
			return false;
		pg = e->first + e->nr;
	}
	return true;
}

/* Insert @new, which overlaps no extent of @f, merging it with neighbours. */
static void kvmqg_ext_insert(struct kvmqg_file *f, struct kvmqg_ext *new)
{
	struct rb_node **link = &f->exts.rb_node, *parent = NULL, *n;
	struct kvmqg_ext *e;

	while (*link) {
		parent = *link;
		e = rb_entry(parent, struct kvmqg_ext, node);
		link = new->first < e->first ? &parent->rb_left :
					       &parent->rb_right;
	}
	rb_link_node(&new->node, parent, link);
	rb_insert_color(&new->node, &f->exts);

	n = rb_prev(&new->node);
	e = n ? rb_entry(n, struct kvmqg_ext, node) : NULL;
	if (e && e->first + e->nr == new->first) {
		e->nr += new->nr;
		rb_erase(&new->node, &f->exts);
		kfree(new);
		new = e;
	}
	n = rb_next(&new->node);
	e = n ? rb_entry(n, struct kvmqg_ext, node) : NULL;
	if (e && new->first + new->nr == e->first) {
		new->nr += e->nr;
		rb_erase(&e->node, &f->exts);
		kfree(e);
	}
}

/*
 * Take [first, first + nr), which @f holds, out of its extents.  Splitting
 * an extent in two takes *@spare, which must then be set; at most one split
 * happens.
 */
static void kvmqg_ext_remove(struct kvmqg_file *f, unsigned long first,
			     unsigned long nr, struct kvmqg_ext **spare)
{
	unsigned long pg = first, end = first + nr;

	while (pg < end) {
		struct kvmqg_ext *e = kvmqg_ext_find(f, pg), *tail;
		unsigned long e_end, stop;

		if (WARN_ON_ONCE(!e))
			return;
		e_end = e->first + e->nr;
		stop = min(e_end, end);
		if (e->first < pg && e_end > stop) {
			tail = *spare;
			if (WARN_ON_ONCE(!tail))
				return;
			*spare = NULL;
			e->nr = pg - e->first;
			tail->first = stop;
			tail->nr = e_end - stop;
			kvmqg_ext_insert(f, tail);
		} else if (e->first < pg) {
			e->nr = pg - e->first;
		} else if (e_end > stop) {
			e->first = stop;
			e->nr = e_end - stop;
		} else {
			rb_erase(&e->node, &f->exts);
			kfree(e);
		}
		pg = stop;
	}
}

/* Make the host back every page of the range: a read faults it in. */
static void kvmqg_touch(struct kvmqg_dev *dev, unsigned long first,
			unsigned long nr)
{
	const u8 *p = dev->aperture + (first << PAGE_SHIFT);
	unsigned long i;

	for (i = 0; i < nr; i++) {
		(void)READ_ONCE(p[i << PAGE_SHIFT]);
		if (!((i + 1) % KVMQG_BLOCK_PAGES))
			cond_resched();
	}
}

/*
 * With rings, a message that waits in a receive ring has its pages placed in
 * the aperture already, in slots that no file holds.  Find, among the runs of
 * such pages that overlap [first, first + nr), the one that starts first:
 * true and [*start, *end) if there is one.  kvmq publishes an entry before a
 * fault can find its pages (a fault that finds a page being placed waits for
 * the placement to end, entry included), so once the range is touched, every
 * message placed in it is seen here.
 */
static bool kvmqg_rx_placed(struct kvmqg_dev *dev, unsigned long first,
			    unsigned long nr, unsigned long *start,
			    unsigned long *end)
{
	unsigned long pg, n_pg;
	bool found = false;
	u32 q, i, n, kind;
	u64 gpa;

	lockdep_assert_held(&dev->lock);
	if (!dev->rx)
		return false;
	for (q = 0; q < dev->nr_queues; q++) {
		struct kvmqg_rx *rx = &dev->rx[q];

		/* Pairs with kvmq's store-release of prod. */
		n = min(smp_load_acquire(&rx->ring->prod) - rx->cons,
			dev->rx_entries);
		for (i = 0; i < n; i++) {
			const struct kvmq_msg *e;

			e = &rx->msgs[(rx->cons + i) & (dev->rx_entries - 1)];
			kind = READ_ONCE(e->kind);
			n_pg = READ_ONCE(e->nr);
			gpa = READ_ONCE(e->gpa);
			if (kind == KVMQ_MSG_BLOCKS)
				n_pg <<= KVMQG_BLOCK_SHIFT;
			else if (kind != KVMQ_MSG_PAGES)
				continue;
			if (gpa < dev->ap_base ||
			    (gpa - dev->ap_base) >> PAGE_SHIFT >= dev->nr_pages)
				continue;
			pg = (gpa - dev->ap_base) >> PAGE_SHIFT;
			if (pg >= first + nr || pg + n_pg <= first ||
			    (found && pg >= *start))
				continue;
			*start = pg;
			*end = pg + n_pg;
			found = true;
		}
	}
	return found;
}

/* Accounting of the aperture. */

/*
 * The pages the host may come to hold when [first, first + nr) becomes held:
 * received pages (@touch false) count one each, unless their block counts
 * whole already; touched pages too, except that the first touch of an empty
 * block counts the whole block if the quota has room for it.  With @commit,
 * account the range as held.
 */
static unsigned long kvmqg_charge(struct kvmqg_dev *dev, unsigned long first,
				  unsigned long nr, bool touch, bool commit)
{
	unsigned long pg = first, end = first + nr, extra = 0;

	lockdep_assert_held(&dev->lock);
	while (pg < end) {
		unsigned long b = pg >> KVMQG_BLOCK_SHIFT;
		unsigned long stop = min(end, (b + 1) << KVMQG_BLOCK_SHIFT);

		if (test_bit(b, dev->full)) {
			/* Counted whole already. */
		} else if (touch && !dev->blk_held[b] &&
			   dev->charged + extra + KVMQG_BLOCK_PAGES <=
			   dev->quota_pages) {
			extra += KVMQG_BLOCK_PAGES;
			if (commit)
				__set_bit(b, dev->full);
		} else {
			extra += stop - pg;
		}
		if (commit)
			dev->blk_held[b] += stop - pg;
		pg = stop;
	}
	if (commit) {
		bitmap_set(dev->held, first, nr);
		dev->nr_held += nr;
		dev->charged += extra;
	}
	return extra;
}

/* [first, first + nr), held, has left the aperture or is to be released. */
static void kvmqg_uncharge(struct kvmqg_dev *dev, unsigned long first,
			   unsigned long nr)
{
	unsigned long pg = first, end = first + nr;

	lockdep_assert_held(&dev->lock);
	while (pg < end) {
		unsigned long b = pg >> KVMQG_BLOCK_SHIFT;
		unsigned long stop = min(end, (b + 1) << KVMQG_BLOCK_SHIFT);

		dev->blk_held[b] -= stop - pg;
		if (!test_bit(b, dev->full))
			dev->charged -= stop - pg;
		pg = stop;
	}
	bitmap_clear(dev->held, first, nr);
	dev->nr_held -= nr;
}

/*
 * Release the blocks of [first, first + nr) that count whole but that no
 * file holds a page of any more: the host may still hold pages of them that
 * no file knows of.  Best effort: a block whose release fails still counts.
 */
static void kvmqg_trim(struct kvmqg_dev *dev, unsigned long first,
		       unsigned long nr)
{
	unsigned long b, last = (first + nr - 1) >> KVMQG_BLOCK_SHIFT;
	long ret;

	lockdep_assert_held(&dev->lock);
	for (b = first >> KVMQG_BLOCK_SHIFT; b <= last; b++) {
		unsigned long pg = b << KVMQG_BLOCK_SHIFT, s, e;

		if (dev->blk_held[b] || !test_bit(b, dev->full))
			continue;
		/*
		 * Its free slots may have received the pages of a message that
		 * waits in a receive ring: touch them, so that none can land any
		 * more, and keep the block while one is there.
		 */
		if (dev->rx) {
			kvmqg_touch(dev, pg, KVMQG_BLOCK_PAGES);
			if (kvmqg_rx_placed(dev, pg, KVMQG_BLOCK_PAGES, &s, &e))
				continue;
		}
		ret = kvmqg_hc_release(dev, pg, KVMQG_BLOCK_PAGES);
		if (ret < 0) {
			dev_warn_ratelimited(&dev->pdev->dev,
					     "release of block %lu: %ld\n",
					     b, ret);
			continue;
		}
		__clear_bit(b, dev->full);
		dev->charged -= KVMQG_BLOCK_PAGES;
	}
}

/* Give back [first, first + nr), which @f holds, to kvmq. */
static int kvmqg_give_back(struct kvmqg_file *f, unsigned long first,
			   unsigned long nr, struct kvmqg_ext **spare)
{
	struct kvmqg_dev *dev = f->dev;
	long ret;

	ret = kvmqg_hc_release(dev, first, nr);
	if (ret < 0)
		return ret;
	kvmqg_ext_remove(f, first, nr, spare);
	kvmqg_uncharge(dev, first, nr);
	kvmqg_trim(dev, first, nr);
	return 0;
}

/* Drop every extent of @f; with @release, give the pages back first. */
static void kvmqg_drop_all(struct kvmqg_file *f, bool release)
{
	struct kvmqg_dev *dev = f->dev;
	struct rb_node *n;
	long ret;

	lockdep_assert_held(&dev->lock);
	while ((n = rb_first(&f->exts))) {
		struct kvmqg_ext *e = rb_entry(n, struct kvmqg_ext, node);

		rb_erase(n, &f->exts);
		if (release) {
			ret = kvmqg_hc_release(dev, e->first, e->nr);
			if (ret < 0)
				dev_warn_ratelimited(&dev->pdev->dev,
						     "release of %lu pages at %lu: %ld\n",
						     e->nr, e->first, ret);
			kvmqg_uncharge(dev, e->first, e->nr);
			kvmqg_trim(dev, e->first, e->nr);
		}
		kfree(e);
		cond_resched();
	}
}

/* Receive rings. */

/* Whether queue @q's receive ring has entries: a hint, without lock. */
static bool kvmqg_rx_pending(struct kvmqg_dev *dev, u32 q)
{
	struct kvmqg_rx *rx = &dev->rx[q];

	/* Pairs with kvmq's store-release of prod. */
	return smp_load_acquire(&rx->ring->prod) != READ_ONCE(rx->cons);
}

/* Take the oldest entry of queue @q's receive ring into @msg. */
static long kvmqg_rx_take(struct kvmqg_dev *dev, u32 q, struct kvmq_msg *msg)
{
	struct kvmqg_rx *rx = &dev->rx[q];
	const struct kvmq_msg *e;
	u32 prod, n;

	lockdep_assert_held(&dev->lock);
	/* Pairs with kvmq's store-release of prod: the entry is written. */
	prod = smp_load_acquire(&rx->ring->prod);
	n = prod - rx->cons;
	if (!n)
		return -EAGAIN;
	if (n > dev->rx_entries) {
		dev_err_ratelimited(&dev->pdev->dev,
				    "receive ring %u holds %u entries of %u\n",
				    q, n, dev->rx_entries);
		return -EIO;
	}
	e = &rx->msgs[rx->cons & (dev->rx_entries - 1)];
	memcpy(msg, e, offsetof(struct kvmq_msg, data));
	if (msg->kind == KVMQ_MSG_BYTES)
		memcpy(msg->data, e->data,
		       min_t(u32, msg->len, KVMQ_MSG_BYTES_MAX));
	WRITE_ONCE(rx->cons, rx->cons + 1);
	/* Pairs with kvmq's load-acquire of cons: the slot is free. */
	smp_store_release(&rx->ring->cons, rx->cons);
	/* A full ring may have kept messages waiting in kvmq: let them in. */
	if (n == dev->rx_entries)
		kvmqg_hc1(KVMQ_HC_SUBMIT, 0);
	return 0;
}

/* Receive from queue @q: from its ring, else with KVMQ_HC_RECV. */
static long kvmqg_recv_msg(struct kvmqg_dev *dev, u32 q, struct kvmq_msg *msg)
{
	if (dev->rx)
		return kvmqg_rx_take(dev, q, msg);
	return kvmqg_hc2(KVMQ_HC_RECV, q, virt_to_phys(msg));
}

/*
 * Ask for queue @q's arrival interrupt (@want), or stop asking.  The control
 * queue always asks; a device whose files were polled asks on every queue.
 */
static void kvmqg_rx_wake(struct kvmqg_dev *dev, u32 q, bool want)
{
	struct kvmqg_rx *rx = &dev->rx[q];

	spin_lock(&dev->wake_lock);
	if (want)
		rx->waiters++;
	else
		rx->waiters--;
	WRITE_ONCE(rx->ring->flags, rx->waiters || dev->polled || !q ?
		   KVMQ_RING_F_WAKE : 0);
	spin_unlock(&dev->wake_lock);
	/*
	 * Pairs with kvmq's smp_mb() between its store of prod and its read of
	 * flags: the caller reads prod next, and either sees the new entry or
	 * kvmq sees the flag and interrupts.
	 */
	smp_mb();
}

/* poll() cannot tell when it stops waiting: ask on every queue from now. */
static void kvmqg_rx_polled(struct kvmqg_dev *dev)
{
	u32 q;

	spin_lock(&dev->wake_lock);
	if (!dev->polled) {
		dev->polled = true;
		for (q = 0; q < dev->nr_queues; q++)
			WRITE_ONCE(dev->rx[q].ring->flags, KVMQ_RING_F_WAKE);
	}
	spin_unlock(&dev->wake_lock);
	/* As in kvmqg_rx_wake(). */
	smp_mb();
}

/*
 * Wait for an arrival in queue @q, after the arrival count @seq: 0 to try
 * again, -ERESTARTSYS or -ENODEV.
 */
static int kvmqg_wait_arrival(struct kvmqg_dev *dev, u32 q, u32 seq)
{
	long ret = 1;

	if (dev->rx) {
		kvmqg_rx_wake(dev, q, true);
		if (kvmqg_rx_pending(dev, q))
			goto out;
	}
	ret = wait_event_interruptible_timeout(dev->rxwq,
					       atomic_read(&dev->arrivals[q]) != seq ||
					       READ_ONCE(dev->dead),
					       KVMQG_RECHECK);
out:
	if (dev->rx)
		kvmqg_rx_wake(dev, q, false);
	if (ret < 0)
		return -ERESTARTSYS;
	return READ_ONCE(dev->dead) ? -ENODEV : 0;
}

/* Interrupts. */

static irqreturn_t kvmqg_queue_irq(int irq, void *data)
{
	struct kvmqg_vec *vec = data;
	struct kvmqg_dev *dev = vec->dev;

	atomic_inc(&dev->arrivals[vec->queue]);
	if (vec->queue)
		wake_up_interruptible_all(&dev->rxwq);
	else
		schedule_work(&dev->ctl_work);
	return IRQ_HANDLED;
}

static irqreturn_t kvmqg_room_irq(int irq, void *data)
{
	struct kvmqg_vec *vec = data;
	struct kvmqg_dev *dev = vec->dev;

	atomic_inc(&dev->room);
	wake_up_interruptible_all(&dev->roomwq);
	return IRQ_HANDLED;
}

/* Release the pages of a page or block message the driver does not keep. */
static void kvmqg_discard(struct kvmqg_dev *dev, const struct kvmq_msg *msg)
{
	u64 pages = (u64)msg->nr << (msg->kind == KVMQ_MSG_BLOCKS ?
				     KVMQG_BLOCK_SHIFT : 0);
	long ret;

	ret = kvmqg_hc2(KVMQ_HC_RELEASE, msg->gpa, pages);
	if (ret < 0)
		dev_warn_ratelimited(&dev->pdev->dev,
				     "release of a discarded message: %ld\n",
				     ret);
}

/*
 * Drain the control queue: the VMM's messages update the peer table.  At
 * most a queue's depth of messages per run, then the work runs again.
 */
static void kvmqg_ctl_work(struct work_struct *work)
{
	struct kvmqg_dev *dev = container_of(work, struct kvmqg_dev, ctl_work);
	struct kvmq_msg *msg = dev->ctl_msg;
	long ret = 0;
	u32 i;

	if (kvmqg_enter(dev))
		return;
	for (i = 0; i < dev->depth; i++) {
		mutex_lock(&dev->lock);
		ret = kvmqg_recv_msg(dev, 0, msg);
		if (!ret && msg->kind != KVMQ_MSG_BYTES)
			kvmqg_discard(dev, msg);
		mutex_unlock(&dev->lock);
		if (ret)
			break;

		spin_lock(&dev->peers_lock);
		if (msg->kind == KVMQ_MSG_BYTES && msg->sender == KVMQ_ID_VMM)
			kvmq_peers_apply(&dev->peers, msg->data,
					 min_t(u32, msg->len,
					       KVMQ_MSG_BYTES_MAX));
		else
			dev->peers.ignored++;
		spin_unlock(&dev->peers_lock);
	}
	if (!ret)
		schedule_work(&dev->ctl_work);
	else if (ret != -EAGAIN)
		dev_warn_ratelimited(&dev->pdev->dev,
				     "receive from the control queue: %ld\n",
				     ret);
	kvmqg_leave(dev);
}

/* ioctls. */

struct kvmqg_head {
	__u32 size;
	__u32 flags;
};

/*
 * Copy in an ioctl's argument of @size bytes, whose @flags may only have
 * bits of @flags_ok: -EINVAL for another size, -EOPNOTSUPP for other flags.
 */
static int kvmqg_get_arg(void *arg, u32 size, const void __user *uarg,
			 u32 flags_ok)
{
	struct kvmqg_head *head = arg;
	u32 usize;

	if (get_user(usize, (const u32 __user *)uarg))
		return -EFAULT;
	if (usize != size)
		return -EINVAL;
	if (copy_from_user(arg, uarg, size))
		return -EFAULT;
	/* Userspace may have changed it meanwhile. */
	if (head->size != size)
		return -EINVAL;
	if (head->flags & ~flags_ok)
		return -EOPNOTSUPP;
	return 0;
}

static long kvmqg_ioctl_info(struct kvmqg_file *f, void __user *uarg)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmqg_info info;
	long ret;

	ret = kvmqg_get_arg(&info, sizeof(info), uarg, 0);
	if (ret)
		return ret;

	ret = kvmqg_enter(dev);
	if (ret)
		return ret;
	ret = kvmqg_hc0(KVMQ_HC_SELF_ID);
	info.identity = ret > 0 ? ret : 0;
	info.abi_version = dev->abi_version;
	info.features = dev->features;
	info.nr_queues = dev->nr_queues;
	info.depth = dev->depth;
	info.aperture_len = (u64)dev->nr_pages << PAGE_SHIFT;
	info.quota = (u64)dev->quota_pages << PAGE_SHIFT;
	mutex_lock(&dev->lock);
	info.held = (u64)dev->nr_held << PAGE_SHIFT;
	mutex_unlock(&dev->lock);
	kvmqg_leave(dev);

	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* Check a message as kvmq would, with its errnos. */
static int kvmqg_check_msg(u32 kind, u32 nr, u32 len)
{
	u64 unit;
	u32 max;

	switch (kind) {
	case KVMQ_MSG_BYTES:
		if (nr)
			return -EINVAL;
		return len > KVMQ_MSG_BYTES_MAX ? -E2BIG : 0;
	case KVMQ_MSG_PAGES:
		max = KVMQ_MSG_PAGES_MAX;
		unit = PAGE_SIZE;
		break;
	case KVMQ_MSG_BLOCKS:
		max = KVMQ_MSG_BLOCKS_MAX;
		unit = KVMQ_MSG_BLOCK_SIZE;
		break;
	default:
		return -EINVAL;
	}
	if (!nr)
		return -EINVAL;
	if (nr > max)
		return -E2BIG;
	return len > nr * unit ? -EINVAL : 0;
}

static int kvmqg_cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a;
	unsigned long y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

static void kvmqg_pages_free(struct kvmqg_pages *pg)
{
	unsigned int i;

	if (pg->spares)
		for (i = 0; i < pg->nr_runs; i++)
			kfree(pg->spares[i]);
	kfree(pg->spares);
	kfree(pg->runs);
	kfree(pg->idx);
}

/*
 * Read the aperture offsets of a page or block send into @msg, check them
 * and turn them into guest-physical addresses; prepare the runs of pages
 * they make, and an extent per run for the splits the send may cause.
 */
static int kvmqg_pages_prepare(struct kvmqg_dev *dev, struct kvmq_msg *msg,
			       const void __user *uoffs, struct kvmqg_pages *pg)
{
	unsigned long upages = msg->kind == KVMQ_MSG_BLOCKS ?
			       KVMQG_BLOCK_PAGES : 1;
	u64 unit = (u64)upages << PAGE_SHIFT;
	u64 ap_len = (u64)dev->nr_pages << PAGE_SHIFT;
	unsigned int i, n = 0;

	if (copy_from_user(msg->gpas, uoffs, msg->nr * sizeof(msg->gpas[0])))
		return -EFAULT;
	pg->idx = kmalloc_array(msg->nr, sizeof(*pg->idx), GFP_KERNEL);
	pg->runs = kmalloc_array(msg->nr, sizeof(*pg->runs), GFP_KERNEL);
	if (!pg->idx || !pg->runs)
		return -ENOMEM;

	for (i = 0; i < msg->nr; i++) {
		u64 off = msg->gpas[i];

		if (!IS_ALIGNED(off, unit) || off >= ap_len)
			return -EINVAL;
		pg->idx[i] = off >> PAGE_SHIFT;
		msg->gpas[i] = dev->ap_base + off;
	}
	sort(pg->idx, msg->nr, sizeof(*pg->idx), kvmqg_cmp_ulong, NULL);
	for (i = 0; i < msg->nr; i++) {
		if (i && pg->idx[i] == pg->idx[i - 1])
			return -EINVAL;
		if (n && pg->runs[n - 1].first + pg->runs[n - 1].nr ==
			 pg->idx[i]) {
			pg->runs[n - 1].nr += upages;
		} else {
			pg->runs[n].first = pg->idx[i];
			pg->runs[n].nr = upages;
			n++;
		}
	}

	pg->nr_runs = n;
	pg->spares = kcalloc(n, sizeof(*pg->spares), GFP_KERNEL);
	if (!pg->spares)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		pg->spares[i] = kmalloc(sizeof(*pg->spares[i]), GFP_KERNEL);
		if (!pg->spares[i])
			return -ENOMEM;
	}
	return 0;
}

static bool kvmqg_pages_owned(struct kvmqg_file *f, struct kvmqg_pages *pg)
{
	unsigned int i;

	for (i = 0; i < pg->nr_runs; i++)
		if (!kvmqg_owns(f, pg->runs[i].first, pg->runs[i].nr))
			return false;
	return true;
}

/* The pages of @pg left the aperture. */
static void kvmqg_pages_sent(struct kvmqg_file *f, struct kvmqg_pages *pg)
{
	struct kvmqg_dev *dev = f->dev;
	unsigned int i;

	for (i = 0; i < pg->nr_runs; i++) {
		kvmqg_ext_remove(f, pg->runs[i].first, pg->runs[i].nr,
				 &pg->spares[i]);
		kvmqg_uncharge(dev, pg->runs[i].first, pg->runs[i].nr);
	}
	for (i = 0; i < pg->nr_runs; i++)
		kvmqg_trim(dev, pg->runs[i].first, pg->runs[i].nr);
}

static long kvmqg_send(struct kvmqg_file *f, u32 dest, u32 queue,
		       struct kvmq_msg *msg, struct kvmqg_pages *pg,
		       bool nonblock)
{
	struct kvmqg_dev *dev = f->dev;
	long ret;
	u32 seq;

	ret = kvmqg_enter(dev);
	if (ret)
		return ret;
	for (;;) {
		seq = atomic_read(&dev->room);
		if (msg->kind == KVMQ_MSG_BYTES) {
			ret = kvmqg_hc3(KVMQ_HC_SEND, dest, queue,
					virt_to_phys(msg));
		} else {
			mutex_lock(&dev->lock);
			if (kvmqg_pages_owned(f, pg))
				ret = kvmqg_hc3(KVMQ_HC_SEND, dest, queue,
						virt_to_phys(msg));
			else
				ret = -EINVAL;
			if (!ret)
				kvmqg_pages_sent(f, pg);
			mutex_unlock(&dev->lock);
		}
		if (ret != -EAGAIN && ret != -ENOBUFS)
			break;

		WRITE_ONCE(f->refused, KVMQG_REFUSED | seq);
		if (nonblock)
			break;
		if (wait_event_interruptible_timeout(dev->roomwq,
						     atomic_read(&dev->room) != seq ||
						     READ_ONCE(dev->dead),
						     KVMQG_RECHECK) < 0) {
			ret = -ERESTARTSYS;
			break;
		}
		if (READ_ONCE(dev->dead)) {
			ret = -ENODEV;
			break;
		}
	}
	if (!ret)
		WRITE_ONCE(f->refused, 0);
	kvmqg_leave(dev);
	return ret;
}

/* Copy in and check a struct kvmqg_send whose flags may be @flags_ok. */
static int kvmqg_get_send(struct kvmqg_send *s, const void __user *uarg,
			  u32 flags_ok)
{
	int ret;

	ret = kvmqg_get_arg(s, sizeof(*s), uarg, flags_ok);
	if (ret)
		return ret;
	if (s->__reserved)
		return -EINVAL;
	return kvmqg_check_msg(s->kind, s->nr, s->len);
}

/* Build the message of the send @s, checked, into @msg and @pg. */
static int kvmqg_send_prepare(struct kvmqg_dev *dev, const struct kvmqg_send *s,
			      struct kvmq_msg *msg, struct kvmqg_pages *pg)
{
	msg->kind = s->kind;
	msg->nr = s->nr;
	msg->len = s->len;
	if (s->kind != KVMQ_MSG_BYTES)
		return kvmqg_pages_prepare(dev, msg, u64_to_user_ptr(s->data),
					   pg);
	if (copy_from_user(msg->data, u64_to_user_ptr(s->data), s->len))
		return -EFAULT;
	return 0;
}

static long kvmqg_ioctl_send(struct kvmqg_file *f, struct file *file,
			     void __user *uarg)
{
	struct kvmqg_pages pg = {};
	struct kvmqg_send s;
	struct kvmq_msg *msg;
	bool nonblock;
	long ret;

	ret = kvmqg_get_send(&s, uarg, KVMQG_F_NONBLOCK);
	if (ret)
		return ret;
	nonblock = (s.flags & KVMQG_F_NONBLOCK) || (file->f_flags & O_NONBLOCK);

	msg = kzalloc(sizeof(*msg), GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	ret = kvmqg_send_prepare(f->dev, &s, msg, &pg);
	if (!ret)
		ret = kvmqg_send(f, s.dest, s.queue, msg, &pg, nonblock);
	kvmqg_pages_free(&pg);
	kfree(msg);
	return ret;
}

static void kvmqg_settle(struct kvmqg_dev *dev, unsigned long first,
			 unsigned long nr);

/*
 * Give @f the pages of a message just received into @msg; *@first is set
 * to their first page.  Under dev->lock.
 */
static int kvmqg_recv_pages(struct kvmqg_file *f, struct kvmq_msg *msg,
			    struct kvmqg_ext **ext, unsigned long *first)
{
	struct kvmqg_dev *dev = f->dev;
	unsigned long upages = KVMQG_BLOCK_PAGES, nr;
	u32 max = KVMQ_MSG_BLOCKS_MAX;
	u64 off = msg->gpa - dev->ap_base;

	if (msg->kind == KVMQ_MSG_PAGES) {
		upages = 1;
		max = KVMQ_MSG_PAGES_MAX;
	}
	nr = msg->nr * upages;
	if ((msg->kind != KVMQ_MSG_PAGES && msg->kind != KVMQ_MSG_BLOCKS) ||
	    !msg->nr || msg->nr > max || msg->gpa < dev->ap_base ||
	    !IS_ALIGNED(off, upages << PAGE_SHIFT) ||
	    (off >> PAGE_SHIFT) + nr > dev->nr_pages) {
		dev_err_ratelimited(&dev->pdev->dev,
				    "received message of kind %u, %u at %#llx, outside the aperture\n",
				    msg->kind, msg->nr, msg->gpa);
		return -EIO;
	}
	*first = off >> PAGE_SHIFT;
	if (dev->flying)
		kvmqg_settle(dev, *first, nr);
	if (find_next_bit(dev->held, *first + nr, *first) < *first + nr) {
		dev_err_ratelimited(&dev->pdev->dev,
				    "received %lu pages at %lu, where pages are held\n",
				    nr, *first);
		kvmqg_hc_release(dev, *first, nr);
		return -EIO;
	}
	kvmqg_charge(dev, *first, nr, false, true);
	(*ext)->first = *first;
	(*ext)->nr = nr;
	kvmqg_ext_insert(f, *ext);
	*ext = NULL;
	return 0;
}

/* Give back pages whose offset could not reach userspace. */
static void kvmqg_undo(struct kvmqg_file *f, unsigned long first,
		       unsigned long nr, struct kvmqg_ext **spare)
{
	struct kvmqg_dev *dev = f->dev;

	if (kvmqg_enter(dev))
		return;
	mutex_lock(&dev->lock);
	if (kvmqg_owns(f, first, nr))
		kvmqg_give_back(f, first, nr, spare);
	mutex_unlock(&dev->lock);
	kvmqg_leave(dev);
}

/* KVMQG_RECV; with @nowait, fail with -EAGAIN rather than wait. */
static long kvmqg_recv(struct kvmqg_file *f, struct file *file,
		       void __user *uarg, bool nowait)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmqg_ext *ext = NULL, *spare = NULL;
	unsigned long first = 0, nr = 0;
	struct kvmqg_recv r;
	struct kvmq_msg *msg;
	bool nonblock;
	long ret;
	u32 seq;

	ret = kvmqg_get_arg(&r, sizeof(r), uarg, KVMQG_F_NONBLOCK);
	if (ret)
		return ret;
	if (!r.queue || r.queue >= dev->nr_queues)
		return -EINVAL;
	nonblock = (r.flags & KVMQG_F_NONBLOCK) ||
		   (file->f_flags & O_NONBLOCK) || nowait;

	msg = kmalloc(sizeof(*msg), GFP_KERNEL);
	ext = kmalloc(sizeof(*ext), GFP_KERNEL);
	spare = kmalloc(sizeof(*spare), GFP_KERNEL);
	if (!msg || !ext || !spare) {
		ret = -ENOMEM;
		goto out;
	}

	ret = kvmqg_enter(dev);
	if (ret)
		goto out;
	for (;;) {
		seq = atomic_read(&dev->arrivals[r.queue]);
		mutex_lock(&dev->lock);
		ret = kvmqg_recv_msg(dev, r.queue, msg);
		if (!ret && msg->kind != KVMQ_MSG_BYTES)
			ret = kvmqg_recv_pages(f, msg, &ext, &first);
		mutex_unlock(&dev->lock);
		if (ret != -EAGAIN || nonblock)
			break;
		ret = kvmqg_wait_arrival(dev, r.queue, seq);
		if (ret)
			break;
	}
	kvmqg_leave(dev);
	if (ret)
		goto out;

	r.kind = msg->kind;
	r.sender = msg->sender;
	r.nr = msg->nr;
	r.len = msg->len;
	r.offset = 0;
	if (msg->kind == KVMQ_MSG_BYTES) {
		u32 len = min3(msg->len, r.data_len, (u32)KVMQ_MSG_BYTES_MAX);

		if (copy_to_user(u64_to_user_ptr(r.data), msg->data, len))
			ret = -EFAULT;
	} else {
		r.offset = (u64)first << PAGE_SHIFT;
		nr = r.nr << (msg->kind == KVMQ_MSG_BLOCKS ?
			      KVMQG_BLOCK_SHIFT : 0);
	}
	if (!ret && copy_to_user(uarg, &r, sizeof(r)))
		ret = -EFAULT;
	if (ret && nr)
		kvmqg_undo(f, first, nr, &spare);
out:
	kfree(spare);
	kfree(ext);
	kfree(msg);
	return ret;
}

/* io_uring sends, in the submission rings. */

/* Reaps after which a vCPU whose entries wait is made to run them. */
#define KVMQG_STALL		3
#define KVMQG_CHAIN_ORPHAN	((struct kvmqg_file *)1)

static void kvmqg_req_free(struct kvmqg_req *req)
{
	if (req->pg) {
		kvmqg_pages_free(req->pg);
		kfree(req->pg);
	}
	kfree(req->msg);
	kfree(req);
}

/* In the submitter's task: post the completion. */
static void kvmqg_req_done(struct io_uring_cmd *ioucmd,
			   unsigned int issue_flags)
{
	struct kvmqg_req *req = *io_uring_cmd_to_pdu(ioucmd,
						     struct kvmqg_req *);

	io_uring_cmd_done(ioucmd, req->res, 0, issue_flags);
	kvmqg_req_free(req);
}

/* The pages of @pg are in flight: no longer @f's, still held. */
static void kvmqg_pages_fly(struct kvmqg_file *f, struct kvmqg_pages *pg)
{
	unsigned int i;

	for (i = 0; i < pg->nr_runs; i++) {
		kvmqg_ext_remove(f, pg->runs[i].first, pg->runs[i].nr,
				 &pg->spares[i]);
		bitmap_set(f->dev->flying, pg->runs[i].first, pg->runs[i].nr);
	}
}

/* A send's end: its pages left the aperture (@res 0), or are @f's again. */
static void kvmqg_pages_land(struct kvmqg_file *f, struct kvmqg_pages *pg,
			     int res)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmqg_ext *ext;
	unsigned int i;

	lockdep_assert_held(&dev->lock);
	for (i = 0; i < pg->nr_runs; i++) {
		unsigned long first = pg->runs[i].first, nr = pg->runs[i].nr;

		bitmap_clear(dev->flying, first, nr);
		if (res) {
			ext = kmalloc(sizeof(*ext), GFP_KERNEL);
			if (ext) {
				ext->first = first;
				ext->nr = nr;
				kvmqg_ext_insert(f, ext);
				continue;
			}
			/* The file cannot have them back: kvmq gets them. */
			kvmqg_hc_release(dev, first, nr);
		}
		kvmqg_uncharge(dev, first, nr);
	}
	for (i = 0; i < pg->nr_runs; i++)
		kvmqg_trim(dev, pg->runs[i].first, pg->runs[i].nr);
}

/* Move the completions of @sq's ring to @done; under dev->lock. */
static void kvmqg_sq_reap(struct kvmqg_sq *sq, struct list_head *done)
{
	struct kvmqg_dev *dev = sq->dev;
	u32 mask = dev->sq_entries - 1, prod;

	lockdep_assert_held(&dev->lock);
	/* Pairs with kvmq's store-release of prod: the entries are written. */
	prod = smp_load_acquire(&sq->cq->prod);
	if (prod - sq->cq_cons > dev->sq_entries) {
		dev_err_ratelimited(&dev->pdev->dev,
				    "completion ring holds %u entries of %u\n",
				    prod - sq->cq_cons, dev->sq_entries);
		return;
	}
	while (sq->cq_cons != prod) {
		const struct kvmq_cqe *c = &sq->cqes[sq->cq_cons & mask];
		u64 data = READ_ONCE(c->user_data);
		int res = READ_ONCE(c->res);
		struct kvmqg_req *req;

		sq->cq_cons++;
		/* Another tag: an entry of an earlier driver. */
		if (data >> 32 != dev->tag)
			continue;
		req = sq->reqs[(u32)data & mask];
		if (!req || req->idx != (u32)data)
			continue;
		sq->reqs[(u32)data & mask] = NULL;
		req->res = res;
		list_add_tail(&req->node, done);
		atomic_dec(&dev->inflight);
	}
	/* Pairs with kvmq's load-acquire of cons: the slots are free. */
	smp_store_release(&sq->cq->cons, sq->cq_cons);
}

/* Settle the pages of the sends in @done and complete them. */
static void kvmqg_finish(struct kvmqg_dev *dev, struct list_head *done)
{
	struct kvmqg_req *req, *tmp;

	lockdep_assert_held(&dev->lock);
	list_for_each_entry_safe(req, tmp, done, node) {
		list_del(&req->node);
		if (req->pg->nr_runs)
			kvmqg_pages_land(req->f, req->pg, req->res);
		io_uring_cmd_complete_in_task(req->ioucmd, kvmqg_req_done);
	}
}

static void kvmqg_reap_all(struct kvmqg_dev *dev)
{
	LIST_HEAD(done);
	u32 v;

	for (v = 0; v < dev->nr_vcpu_queues; v++)
		kvmqg_sq_reap(&dev->sqs[v], &done);
	kvmqg_finish(dev, &done);
}

/*
 * Pages just received at [first, first + nr) may be those of a send whose
 * completion kvmq is about to write: reap until they land, briefly.
 */
static void kvmqg_settle(struct kvmqg_dev *dev, unsigned long first,
			 unsigned long nr)
{
	unsigned int i;

	for (i = 0; i < 100; i++) {
		if (find_next_bit(dev->flying, first + nr, first) >= first + nr)
			return;
		kvmqg_reap_all(dev);
		if (find_next_bit(dev->flying, first + nr, first) >= first + nr)
			return;
		usleep_range(100, 200);
	}
}

/* On the vCPU's own CPU: run its submission ring now. */
static void kvmqg_kick_work(struct work_struct *work)
{
	struct kvmqg_sq *sq = container_of(work, struct kvmqg_sq, kick);

	preempt_disable();
	/* Not if the CPU went offline and the work ran elsewhere. */
	if (smp_processor_id() == sq->cpu)
		kvmqg_hc1(KVMQ_HC_SUBMIT, 0);
	preempt_enable();
}

/* Every tick while sends are in flight: complete those that ran. */
static void kvmqg_reap_work(struct work_struct *work)
{
	struct kvmqg_dev *dev = container_of(to_delayed_work(work),
					     struct kvmqg_dev, reap);
	LIST_HEAD(done);
	u32 v;

	/* Not remove_sem: remove() cancels this work while it holds it. */
	mutex_lock(&dev->lock);
	if (READ_ONCE(dev->dead)) {
		mutex_unlock(&dev->lock);
		return;
	}
	for (v = 0; v < dev->nr_vcpu_queues; v++) {
		struct kvmqg_sq *sq = &dev->sqs[v];
		u32 before = sq->cq_cons;

		kvmqg_sq_reap(sq, &done);
		if (sq->prod == sq->cq_cons || sq->cq_cons != before) {
			sq->stalled = 0;
		} else if (++sq->stalled >= KVMQG_STALL && sq->cpu >= 0) {
			/* The vCPU has not exited since: an idle guest CPU. */
			sq->stalled = 0;
			schedule_work_on(sq->cpu, &sq->kick);
		}
	}
	kvmqg_finish(dev, &done);
	if (atomic_read(&dev->inflight))
		schedule_delayed_work(&dev->reap, 1);
	mutex_unlock(&dev->lock);
}

/*
 * End the chain of links at the tail of @sq's ring: a release of no page
 * fails with -EINVAL (or -ECANCELED), changes nothing, and has no link.
 * Its completion, under tag 0, is nobody's.  @sq has room for it.
 */
static void kvmqg_sq_end_chain(struct kvmqg_sq *sq)
{
	struct kvmqg_dev *dev = sq->dev;

	sq->sqes[sq->prod & (dev->sq_entries - 1)] = (struct kvmq_sqe) {
		.op = KVMQ_OP_RELEASE,
		.flags = KVMQ_SQE_LAZY,
		.gpa = dev->ap_base,
	};
	sq->prod++;
	sq->chain = NULL;
}

/* Whether the next entry of @f in @sq needs the chain ended first. */
static bool kvmqg_sq_needs_end(struct kvmqg_sq *sq, struct kvmqg_file *f,
			       u32 flags)
{
	return sq->chain &&
	       (sq->chain != f || (flags & KVMQG_F_CHAIN_START));
}

/* @f is being closed: no entry may be tied to its last send any more. */
static void kvmqg_sq_orphan(struct kvmqg_dev *dev, struct kvmqg_file *f)
{
	u32 v;

	lockdep_assert_held(&dev->lock);
	for (v = 0; dev->sqs && v < dev->nr_vcpu_queues; v++)
		if (dev->sqs[v].chain == f)
			dev->sqs[v].chain = KVMQG_CHAIN_ORPHAN;
}

/*
 * Write @req into the submission ring of the vCPU we run on, as a lazy
 * entry, linked to the next one with KVMQG_F_LINK in @flags; under
 * dev->lock.  1 if this CPU has no ring.
 */
static int kvmqg_sq_post(struct kvmqg_dev *dev, struct kvmqg_req *req,
			 u32 dest, u32 queue, u32 flags,
			 struct list_head *done)
{
	u32 mask = dev->sq_entries - 1, v, need;
	struct kvmqg_sq *sq;
	long ret = 0;

	lockdep_assert_held(&dev->lock);
	preempt_disable();
	v = cpu_physical_id(smp_processor_id());
	if (v >= dev->nr_vcpu_queues) {
		preempt_enable();
		return 1;
	}
	sq = &dev->sqs[v];
	need = kvmqg_sq_needs_end(sq, req->f, flags) ? 2 : 1;
	if (sq->prod - sq->cq_cons > dev->sq_entries - need) {
		kvmqg_sq_reap(sq, done);
		/* Still full: run the ring now, one exit for all its entries. */
		if (sq->prod - sq->cq_cons > dev->sq_entries - need) {
			ret = kvmqg_hc1(KVMQ_HC_SUBMIT, 0);
			kvmqg_sq_reap(sq, done);
		}
	}
	if (sq->prod - sq->cq_cons > dev->sq_entries - need) {
		preempt_enable();
		return ret < 0 ? ret : -EBUSY;
	}
	if (need == 2)
		kvmqg_sq_end_chain(sq);
	sq->sqes[sq->prod & mask] = (struct kvmq_sqe) {
		.op = KVMQ_OP_SEND,
		.flags = KVMQ_SQE_LAZY |
			 (flags & KVMQG_F_LINK ? KVMQ_SQE_LINK : 0),
		.dest = dest,
		.queue = queue,
		.gpa = virt_to_phys(req->msg),
		.user_data = (u64)dev->tag << 32 | sq->prod,
	};
	req->idx = sq->prod;
	sq->reqs[sq->prod & mask] = req;
	sq->chain = flags & KVMQG_F_LINK ? req->f : NULL;
	sq->prod++;
	atomic_inc(&dev->inflight);
	/* Pairs with kvmq's load-acquire of prod: the entry is written. */
	smp_store_release(&sq->sq->prod, sq->prod);
	preempt_enable();
	return 0;
}

static int kvmqg_uring_send(struct kvmqg_file *f, struct io_uring_cmd *ioucmd,
			    const void __user *uarg)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmqg_req *req;
	struct kvmqg_send s;
	LIST_HEAD(done);
	int ret;

	ret = kvmqg_get_send(&s, uarg, KVMQG_F_NONBLOCK | KVMQG_F_LINK |
			     KVMQG_F_CHAIN_START);
	if (ret)
		return ret;

	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	req->ioucmd = ioucmd;
	req->f = f;
	req->msg = kzalloc(sizeof(*req->msg), GFP_KERNEL);
	req->pg = kzalloc(sizeof(*req->pg), GFP_KERNEL);
	if (!req->msg || !req->pg) {
		ret = -ENOMEM;
		goto out;
	}
	ret = kvmqg_send_prepare(dev, &s, req->msg, req->pg);
	if (ret)
		goto out;
	*io_uring_cmd_to_pdu(ioucmd, struct kvmqg_req *) = req;

	if (dev->sqs) {
		ret = kvmqg_enter(dev);
		if (ret)
			goto out;
		mutex_lock(&dev->lock);
		if (req->pg->nr_runs && !kvmqg_pages_owned(f, req->pg)) {
			ret = -EINVAL;
		} else {
			ret = kvmqg_sq_post(dev, req, s.dest, s.queue,
					    s.flags, &done);
			if (!ret)
				kvmqg_pages_fly(f, req->pg);
		}
		kvmqg_finish(dev, &done);
		mutex_unlock(&dev->lock);
		if (!ret)
			schedule_delayed_work(&dev->reap, 1);
		kvmqg_leave(dev);
		if (!ret)
			return -EIOCBQUEUED;
		if (ret < 0)
			goto out;
	}
	/* No ring for this CPU: send now. */
	ret = kvmqg_send(f, s.dest, s.queue, req->msg, req->pg, true);
out:
	kvmqg_req_free(req);
	return ret;
}

static int kvmqg_uring_cmd(struct io_uring_cmd *ioucmd,
			   unsigned int issue_flags)
{
	struct kvmqg_file *f = ioucmd->file->private_data;
	const struct kvmqg_uring *c = io_uring_sqe_cmd(ioucmd->sqe);
	u64 arg = READ_ONCE(c->arg);

	if (READ_ONCE(c->__reserved))
		return -EINVAL;
	if (READ_ONCE(c->flags))
		return -EOPNOTSUPP;
	switch (ioucmd->cmd_op) {
	case KVMQG_SEND:
		return kvmqg_uring_send(f, ioucmd, u64_to_user_ptr(arg));
	case KVMQG_RECV:
		/* -EAGAIN makes io_uring issue it again from a worker. */
		return kvmqg_recv(f, ioucmd->file, u64_to_user_ptr(arg),
				  issue_flags & IO_URING_F_NONBLOCK);
	default:
		return -EOPNOTSUPP;
	}
}

/*
 * Release [first, end) but the pages of the messages that wait in the receive
 * rings (*@kept of them): the pages freed, or the first error of kvmq, where
 * the release stops.
 */
static long kvmqg_release_unplaced(struct kvmqg_dev *dev, unsigned long first,
				   unsigned long end, u32 *kept)
{
	unsigned long pg = first, stop, next, s, e;
	long ret, freed = 0;

	while (pg < end) {
		stop = end;
		next = end;
		if (kvmqg_rx_placed(dev, pg, end - pg, &s, &e)) {
			stop = max(s, pg);
			next = min(e, end);
			(*kept)++;
		}
		if (stop > pg) {
			ret = kvmqg_hc_release(dev, pg, stop - pg);
			if (ret < 0)
				return ret;
			freed += ret;
		}
		pg = next;
	}
	return freed;
}

/*
 * Give back the slots of [first, first + nr), just charged and touched, but
 * for the pages of messages that wait in the receive rings: those are the
 * messages', which kvmq placed there before the touch.
 */
static void kvmqg_unclaim(struct kvmqg_dev *dev, unsigned long first,
			  unsigned long nr)
{
	u32 kept = 0;
	long ret = kvmqg_release_unplaced(dev, first, first + nr, &kept);

	if (ret < 0)
		dev_warn_ratelimited(&dev->pdev->dev,
				     "release of %lu pages at %lu: %ld\n",
				     nr, first, ret);
	kvmqg_uncharge(dev, first, nr);
	kvmqg_trim(dev, first, nr);
}

/*
 * Find @nr free slots in a row (2 MiB aligned for @block), charge and touch
 * them: *@first.  With rings, slots that no file holds may have received the
 * pages of a message that waits in a receive ring, before the touch or
 * during it: such slots are the message's, and the search goes on past it.
 */
static int kvmqg_claim(struct kvmqg_dev *dev, unsigned long nr, bool block,
		       unsigned long *first)
{
	unsigned long start = 0, s, e;

	lockdep_assert_held(&dev->lock);
	for (;;) {
		*first = bitmap_find_next_zero_area(dev->held, dev->nr_pages,
						    start, nr, block ?
						    KVMQG_BLOCK_PAGES - 1 : 0);
		if (*first + nr > dev->nr_pages)
			return -ENOSPC;
		/* Every area from *first to e meets the message's pages. */
		if (kvmqg_rx_placed(dev, *first, nr, &s, &e)) {
			start = e;
			continue;
		}
		if (dev->charged + kvmqg_charge(dev, *first, nr, true, false) >
		    dev->quota_pages)
			return -ENOBUFS;
		kvmqg_charge(dev, *first, nr, true, true);
		kvmqg_touch(dev, *first, nr);
		if (!kvmqg_rx_placed(dev, *first, nr, &s, &e))
			return 0;
		kvmqg_unclaim(dev, *first, nr);
		start = e;
	}
}

static long kvmqg_ioctl_alloc(struct kvmqg_file *f, void __user *uarg)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmqg_ext *ext = NULL, *spare = NULL;
	unsigned long first, nr;
	struct kvmqg_alloc a;
	u32 max;
	long ret;

	ret = kvmqg_get_arg(&a, sizeof(a), uarg, 0);
	if (ret)
		return ret;
	if (a.kind == KVMQ_MSG_PAGES) {
		max = KVMQ_MSG_PAGES_MAX;
		nr = a.nr;
	} else if (a.kind == KVMQ_MSG_BLOCKS) {
		max = KVMQ_MSG_BLOCKS_MAX;
		nr = (unsigned long)a.nr << KVMQG_BLOCK_SHIFT;
	} else {
		return -EINVAL;
	}
	if (!a.nr)
		return -EINVAL;
	if (a.nr > max)
		return -E2BIG;

	ext = kmalloc(sizeof(*ext), GFP_KERNEL);
	spare = kmalloc(sizeof(*spare), GFP_KERNEL);
	if (!ext || !spare) {
		ret = -ENOMEM;
		goto out;
	}

	ret = kvmqg_enter(dev);
	if (ret)
		goto out;
	mutex_lock(&dev->lock);
	ret = kvmqg_claim(dev, nr, a.kind == KVMQ_MSG_BLOCKS, &first);
	if (!ret) {
		ext->first = first;
		ext->nr = nr;
		kvmqg_ext_insert(f, ext);
		ext = NULL;
	}
	mutex_unlock(&dev->lock);
	kvmqg_leave(dev);
	if (ret)
		goto out;

	a.offset = (u64)first << PAGE_SHIFT;
	if (copy_to_user(uarg, &a, sizeof(a))) {
		kvmqg_undo(f, first, nr, &spare);
		ret = -EFAULT;
	}
out:
	kfree(spare);
	kfree(ext);
	return ret;
}

static long kvmqg_ioctl_release(struct kvmqg_file *f, void __user *uarg)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmqg_release r;
	struct kvmqg_ext *spare;
	unsigned long first;
	long ret;

	ret = kvmqg_get_arg(&r, sizeof(r), uarg, 0);
	if (ret)
		return ret;
	if (r.__reserved || !r.nr || !PAGE_ALIGNED(r.offset) ||
	    r.offset >> PAGE_SHIFT >= dev->nr_pages ||
	    r.nr > dev->nr_pages - (r.offset >> PAGE_SHIFT))
		return -EINVAL;
	first = r.offset >> PAGE_SHIFT;

	spare = kmalloc(sizeof(*spare), GFP_KERNEL);
	if (!spare)
		return -ENOMEM;
	ret = kvmqg_enter(dev);
	if (!ret) {
		mutex_lock(&dev->lock);
		if (kvmqg_owns(f, first, r.nr))
			ret = kvmqg_give_back(f, first, r.nr, &spare);
		else
			ret = -EINVAL;
		mutex_unlock(&dev->lock);
		kvmqg_leave(dev);
	}
	kfree(spare);
	return ret;
}

static long kvmqg_ioctl_peers(struct kvmqg_file *f, void __user *uarg)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmq_peer_table *t;
	struct kvmqg_peers p;
	long ret;
	u32 nr;

	ret = kvmqg_get_arg(&p, sizeof(p), uarg, 0);
	if (ret)
		return ret;
	if (p.__reserved)
		return -EINVAL;

	t = kmalloc(sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	/* Drains scheduled so far are done: posts made before boot are in. */
	flush_work(&dev->ctl_work);
	ret = kvmqg_enter(dev);
	if (ret)
		goto out;
	spin_lock(&dev->peers_lock);
	memcpy(t, &dev->peers, sizeof(*t));
	spin_unlock(&dev->peers_lock);
	kvmqg_leave(dev);

	p.count = t->count;
	p.ignored = t->ignored;
	nr = min(p.max, t->count);
	if (nr && copy_to_user(u64_to_user_ptr(p.peers), t->peers,
			       nr * sizeof(t->peers[0])))
		ret = -EFAULT;
	else if (copy_to_user(uarg, &p, sizeof(p)))
		ret = -EFAULT;
out:
	kfree(t);
	return ret;
}

static long kvmqg_ioctl_qlen(struct kvmqg_file *f, void __user *uarg)
{
	struct kvmqg_dev *dev = f->dev;
	struct kvmqg_qlen q;
	long ret;

	ret = kvmqg_get_arg(&q, sizeof(q), uarg, 0);
	if (ret)
		return ret;
	if (q.queue >= dev->nr_queues)
		return -EINVAL;

	ret = kvmqg_enter(dev);
	if (ret)
		return ret;
	ret = kvmqg_hc1(KVMQ_HC_QLEN, q.queue);
	kvmqg_leave(dev);
	if (ret < 0)
		return ret;
	q.len = ret;
	return copy_to_user(uarg, &q, sizeof(q)) ? -EFAULT : 0;
}

static long kvmqg_ioctl(struct file *file, unsigned int cmd,
			unsigned long arg)
{
	struct kvmqg_file *f = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case KVMQG_INFO:
		return kvmqg_ioctl_info(f, uarg);
	case KVMQG_SEND:
		return kvmqg_ioctl_send(f, file, uarg);
	case KVMQG_RECV:
		return kvmqg_recv(f, file, uarg, false);
	case KVMQG_ALLOC:
		return kvmqg_ioctl_alloc(f, uarg);
	case KVMQG_RELEASE:
		return kvmqg_ioctl_release(f, uarg);
	case KVMQG_PEERS:
		return kvmqg_ioctl_peers(f, uarg);
	case KVMQG_QLEN:
		return kvmqg_ioctl_qlen(f, uarg);
	default:
		return -ENOTTY;
	}
}

static __poll_t kvmqg_poll(struct file *file, poll_table *wait)
{
	struct kvmqg_file *f = file->private_data;
	struct kvmqg_dev *dev = f->dev;
	__poll_t mask = 0;
	u64 refused;
	u32 q;

	poll_wait(file, &dev->rxwq, wait);
	poll_wait(file, &dev->roomwq, wait);
	if (READ_ONCE(dev->dead))
		return EPOLLERR | EPOLLHUP;

	if (dev->rx)
		kvmqg_rx_polled(dev);
	for (q = 1; q < dev->nr_queues; q++) {
		if (kvmqg_hc1(KVMQ_HC_QLEN, q) > 0) {
			mask |= EPOLLIN | EPOLLRDNORM;
			break;
		}
	}
	refused = READ_ONCE(f->refused);
	if (!(refused & KVMQG_REFUSED) ||
	    (u32)refused != (u32)atomic_read(&dev->room))
		mask |= EPOLLOUT | EPOLLWRNORM;
	return mask;
}

static vm_fault_t kvmqg_fault(struct vm_fault *vmf)
{
	struct kvmqg_file *f = vmf->vma->vm_file->private_data;
	struct kvmqg_dev *dev = f->dev;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	if (vmf->pgoff >= dev->nr_pages)
		return VM_FAULT_SIGBUS;
	down_read(&dev->map_sem);
	if (!dev->dead)
		ret = vmf_insert_pfn(vmf->vma, vmf->address,
				     PHYS_PFN(dev->ap_base) + vmf->pgoff);
	up_read(&dev->map_sem);
	return ret;
}

static const struct vm_operations_struct kvmqg_vm_ops = {
	.fault = kvmqg_fault,
};

static int kvmqg_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kvmqg_file *f = file->private_data;
	struct kvmqg_dev *dev = f->dev;

	if (READ_ONCE(dev->dead))
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= dev->nr_pages ||
	    vma_pages(vma) > dev->nr_pages - vma->vm_pgoff)
		return -EINVAL;
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &kvmqg_vm_ops;
	return 0;
}

static void kvmqg_dev_free(struct kref *ref)
{
	struct kvmqg_dev *dev = container_of(ref, struct kvmqg_dev, ref);
	u32 v;

	for (v = 0; dev->sqs && v < dev->nr_vcpu_queues; v++)
		kfree(dev->sqs[v].reqs);
	kfree(dev->sqs);
	kfree(dev->rx);
	bitmap_free(dev->flying);

	kfree(dev->ctl_msg);
	kfree(dev->vecs);
	kfree(dev->arrivals);
	kvfree(dev->blk_held);
	kvfree(dev->full);
	kvfree(dev->held);
	kfree(dev);
}

static int kvmqg_open(struct inode *inode, struct file *file)
{
	struct kvmqg_dev *dev = container_of(file->private_data,
					     struct kvmqg_dev, misc);
	struct kvmqg_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	f->dev = dev;
	f->exts = RB_ROOT;
	f->mapping = file->f_mapping;
	/* misc_open() holds misc_mtx: remove() has not deregistered yet. */
	kref_get(&dev->ref);
	mutex_lock(&dev->lock);
	list_add(&f->node, &dev->files);
	mutex_unlock(&dev->lock);
	file->private_data = f;
	return nonseekable_open(inode, file);
}

static int kvmqg_release(struct inode *inode, struct file *file)
{
	struct kvmqg_file *f = file->private_data;
	struct kvmqg_dev *dev = f->dev;
	bool alive = !kvmqg_enter(dev);

	/* Once the device is dead, remove() dropped every extent already. */
	mutex_lock(&dev->lock);
	if (alive)
		kvmqg_drop_all(f, true);
	kvmqg_sq_orphan(dev, f);
	list_del(&f->node);
	mutex_unlock(&dev->lock);
	if (alive)
		kvmqg_leave(dev);

	kfree(f);
	kref_put(&dev->ref, kvmqg_dev_free);
	return 0;
}

static const struct file_operations kvmqg_fops = {
	.owner = THIS_MODULE,
	.open = kvmqg_open,
	.release = kvmqg_release,
	.unlocked_ioctl = kvmqg_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = kvmqg_poll,
	.mmap = kvmqg_mmap,
	.uring_cmd = kvmqg_uring_cmd,
};

/* Probe and remove. */

static u64 kvmqg_read64(struct kvmqg_dev *dev, unsigned int lo)
{
	return ioread32(dev->regs + lo) |
	       (u64)ioread32(dev->regs + lo + 4) << 32;
}

static int kvmqg_read_config(struct kvmqg_dev *dev)
{
	struct device *d = &dev->pdev->dev;
	u32 magic, version, nr_vectors;
	u64 ap_len, quota, bar_len;

	magic = ioread32(dev->regs + KVMQ_PCI_REG_MAGIC);
	version = ioread32(dev->regs + KVMQ_PCI_REG_REGS_VERSION);
	if (magic != KVMQ_PCI_MAGIC || version != KVMQ_PCI_REGS_VERSION) {
		dev_err(d, "magic %#x, register version %u: not supported\n",
			magic, version);
		return -ENODEV;
	}
	dev->nr_queues = ioread32(dev->regs + KVMQ_PCI_REG_NR_QUEUES);
	dev->nr_vcpu_queues = ioread32(dev->regs + KVMQ_PCI_REG_NR_VCPU_QUEUES);
	dev->depth = ioread32(dev->regs + KVMQ_PCI_REG_DEPTH);
	nr_vectors = ioread32(dev->regs + KVMQ_PCI_REG_NR_VECTORS);
	ap_len = kvmqg_read64(dev, KVMQ_PCI_REG_APERTURE_LO);
	quota = kvmqg_read64(dev, KVMQ_PCI_REG_QUOTA_LO);
	dev->ap_base = pci_resource_start(dev->pdev, KVMQ_PCI_APERTURE_BAR);
	bar_len = pci_resource_len(dev->pdev, KVMQ_PCI_APERTURE_BAR);

	if (!dev->nr_queues || dev->nr_queues > KVMQ_QUEUES_MAX ||
	    dev->nr_vcpu_queues > KVMQ_VCPU_QUEUES_MAX ||
	    !dev->depth || dev->depth > KVMQ_DEPTH_MAX ||
	    nr_vectors != dev->nr_queues + 1) {
		dev_err(d, "%u queues of %u, %u vectors: not supported\n",
			dev->nr_queues, dev->depth, nr_vectors);
		return -EINVAL;
	}
	if (!is_power_of_2(ap_len) || ap_len < KVMQ_MSG_BLOCK_SIZE ||
	    ap_len > KVMQ_APERTURE_MAX || ap_len != bar_len ||
	    !IS_ALIGNED(dev->ap_base, KVMQ_MSG_BLOCK_SIZE) ||
	    !(pci_resource_flags(dev->pdev, KVMQ_PCI_APERTURE_BAR) &
	      IORESOURCE_MEM) ||
	    quota > ap_len || !PAGE_ALIGNED(quota)) {
		dev_err(d, "aperture of %#llx bytes at %pa (BAR of %#llx), quota %#llx: not supported\n",
			ap_len, &dev->ap_base, bar_len, quota);
		return -EINVAL;
	}
	dev->nr_pages = ap_len >> PAGE_SHIFT;
	dev->quota_pages = quota >> PAGE_SHIFT;
	dev->abi_version = ioread32(dev->regs + KVMQ_PCI_REG_ABI);
	return 0;
}

/* Check that kvmq answers, and start from an empty aperture. */
static int kvmqg_check_kvmq(struct kvmqg_dev *dev)
{
	struct device *d = &dev->pdev->dev;
	long version, features, ret;

	version = kvmqg_hc0(KVMQ_HC_VERSION);
	features = kvmqg_hc0(KVMQ_HC_FEATURES);
	if (version <= 0 || features < 0) {
		dev_err(d, "kvmq does not answer (%ld): the VM is not attached\n",
			version);
		return -ENODEV;
	}
	if ((features & KVMQG_FEATURES) != KVMQG_FEATURES) {
		dev_err(d, "kvmq features %#lx lack %#llx\n", features,
			KVMQG_FEATURES);
		return -ENODEV;
	}
	if (version != dev->abi_version)
		dev_warn(d, "kvmq ABI %ld, the device says %u\n", version,
			 dev->abi_version);
	dev->abi_version = version;
	dev->features = features;

	/*
	 * Pages left by an earlier driver, or touched by the firmware.  Rings
	 * set up before may hold messages whose pages are in the aperture:
	 * then kvmqg_release_stale() does it, once the rings are mapped.
	 */
	if (ioread32(dev->regs + KVMQ_PCI_REG_RINGS) & KVMQ_PCI_RINGS_READY)
		return 0;
	ret = kvmqg_hc_release(dev, 0, dev->nr_pages);
	if (ret < 0) {
		dev_err(d, "kvmq refuses the aperture at %pa: %ld\n",
			&dev->ap_base, ret);
		return ret == -ENODEV ? -ENODEV : -EINVAL;
	}
	if (ret)
		dev_info(d, "released %ld pages the aperture held\n", ret);
	return 0;
}

static long kvmqg_submit_here(void *unused)
{
	return kvmqg_hc1(KVMQ_HC_SUBMIT, 0);
}

/*
 * KVMQ_HC_SUBMIT from a vCPU that has rings: it takes the lock of every
 * queue with messages waiting, so once it returns, no fill of a receive ring
 * that began before is still under way.
 */
static long kvmqg_sync_fills(struct kvmqg_dev *dev)
{
	long ret = kvmqg_submit_here(NULL);
	u32 v;

	for (v = 0; ret == -ENOENT && v < dev->nr_vcpu_queues; v++) {
		int cpu = dev->sqs[v].cpu;

		if (cpu >= 0 && cpu_online(cpu))
			ret = work_on_cpu(cpu, kvmqg_submit_here, NULL);
	}
	return ret;
}

/*
 * With rings set up before (a reset of the guest, or an earlier driver),
 * give back every page of the aperture but those of the messages that wait
 * in the receive rings: the pages an earlier driver held, or the firmware
 * touched, go; the messages stay, to be received.  kvmq places pages only
 * when it fills a receive ring, so each ring is first made to look full
 * (its cons moved back by the ring's size), and KVMQ_HC_SUBMIT waits for
 * any fill that saw it open.  Then no page lands any more, the rings show
 * every message placed, and the rest of the aperture is released; the
 * rings are opened again last.
 */
static int kvmqg_release_stale(struct kvmqg_dev *dev)
{
	struct device *d = &dev->pdev->dev;
	u32 q, prod, kept = 0;
	long ret, freed = 0;

	for (q = 0; q < dev->nr_queues; q++) {
		struct kvmqg_rx *rx = &dev->rx[q];

		/* Pairs with kvmq's store-release of prod. */
		prod = smp_load_acquire(&rx->ring->prod);
		if (prod - rx->cons > dev->rx_entries) {
			dev_info(d, "receive ring %u is not sane (%u, %u): its entries are dropped\n",
				 q, prod, rx->cons);
			rx->cons = prod;
		}
		/* Pairs with kvmq's load-acquire of cons: the ring is full. */
		smp_store_release(&rx->ring->cons, prod - dev->rx_entries);
	}
	ret = kvmqg_sync_fills(dev);
	if (ret < 0) {
		dev_err(d, "kvmq refuses KVMQ_HC_SUBMIT: %ld\n", ret);
	} else {
		mutex_lock(&dev->lock);
		freed = kvmqg_release_unplaced(dev, 0, dev->nr_pages, &kept);
		mutex_unlock(&dev->lock);
	}

	for (q = 0; q < dev->nr_queues; q++)
		/* Pairs with kvmq's load-acquire of cons. */
		smp_store_release(&dev->rx[q].ring->cons, dev->rx[q].cons);
	if (ret < 0)
		return -EIO;
	if (freed < 0) {
		dev_err(d, "kvmq refuses the aperture at %pa: %ld\n",
			&dev->ap_base, freed);
		return freed == -ENODEV ? -ENODEV : -EINVAL;
	}
	/* Let in what waited meanwhile. */
	kvmqg_hc1(KVMQ_HC_SUBMIT, 0);
	if (freed || kept)
		dev_info(d, "released %ld pages the aperture held, kept %u page messages of the receive rings\n",
			 freed, kept);
	return 0;
}

/*
 * Set up the device's rings, if it offers them, once the aperture is
 * empty: messages that enter the receive rings then keep their pages.  Rings
 * set up before (a reset, or an earlier driver) may hold messages of the
 * earlier life: they are kept (kvmqg_release_stale()).
 */
static int kvmqg_setup_rings(struct kvmqg_dev *dev)
{
	struct device *d = &dev->pdev->dev;
	u32 st, rx_stride, vcpu_offset, vcpu_stride, cq_offset, v, q;
	u32 nr_all = dev->nr_queues + dev->nr_vcpu_queues;
	u64 rx_bytes, sq_bytes, cq_bytes, bar_len;
	bool reused;

	st = ioread32(dev->regs + KVMQ_PCI_REG_RINGS);
	if (!(st & KVMQ_PCI_RINGS_OFFERED))
		return 0;
	reused = st & KVMQ_PCI_RINGS_READY;
	if (!reused) {
		iowrite32(KVMQ_PCI_RINGS_SETUP, dev->regs + KVMQ_PCI_REG_RINGS);
		st = ioread32(dev->regs + KVMQ_PCI_REG_RINGS);
		if (!(st & KVMQ_PCI_RINGS_READY)) {
			dev_err(d, "the device could not set up its rings\n");
			return -EIO;
		}
	}
	dev->rx_entries = ioread32(dev->regs + KVMQ_PCI_REG_RX_ENTRIES);
	dev->sq_entries = ioread32(dev->regs + KVMQ_PCI_REG_SQ_ENTRIES);
	rx_stride = ioread32(dev->regs + KVMQ_PCI_REG_RX_STRIDE);
	vcpu_offset = ioread32(dev->regs + KVMQ_PCI_REG_VCPU_OFFSET);
	vcpu_stride = ioread32(dev->regs + KVMQ_PCI_REG_VCPU_STRIDE);
	cq_offset = ioread32(dev->regs + KVMQ_PCI_REG_CQ_OFFSET);
	dev->rings_len = ioread32(dev->regs + KVMQ_PCI_REG_RINGS_LEN);
	bar_len = pci_resource_len(dev->pdev, KVMQ_PCI_RINGS_BAR);

	rx_bytes = sizeof(struct kvmq_ring) +
		   (u64)dev->rx_entries * sizeof(struct kvmq_msg);
	sq_bytes = sizeof(struct kvmq_ring) +
		   (u64)dev->sq_entries * sizeof(struct kvmq_sqe);
	cq_bytes = sizeof(struct kvmq_ring) +
		   (u64)dev->sq_entries * sizeof(struct kvmq_cqe);
	if (!is_power_of_2(dev->rx_entries) ||
	    dev->rx_entries > KVMQ_RING_ENTRIES_MAX ||
	    !is_power_of_2(dev->sq_entries) ||
	    dev->sq_entries > KVMQ_RING_ENTRIES_MAX ||
	    rx_stride < rx_bytes || cq_offset < sq_bytes ||
	    vcpu_stride < (u64)cq_offset + cq_bytes ||
	    vcpu_offset < (u64)nr_all * rx_stride ||
	    dev->rings_len < vcpu_offset +
			     (u64)dev->nr_vcpu_queues * vcpu_stride ||
	    dev->rings_len > bar_len ||
	    !(pci_resource_flags(dev->pdev, KVMQ_PCI_RINGS_BAR) &
	      IORESOURCE_MEM)) {
		dev_err(d, "rings of %u and %u entries, %#x, %#x, %#x, %#x, %#llx bytes in a BAR of %#llx: not supported\n",
			dev->rx_entries, dev->sq_entries, rx_stride,
			vcpu_offset, vcpu_stride, cq_offset, dev->rings_len,
			bar_len);
		return -EINVAL;
	}

	dev->rx = kcalloc(dev->nr_queues, sizeof(*dev->rx), GFP_KERNEL);
	dev->sqs = kcalloc(dev->nr_vcpu_queues, sizeof(*dev->sqs), GFP_KERNEL);
	dev->flying = bitmap_zalloc(dev->nr_pages, GFP_KERNEL);
	if (!dev->rx || !dev->sqs || !dev->flying)
		return -ENOMEM;
	for (v = 0; v < dev->nr_vcpu_queues; v++) {
		dev->sqs[v].reqs = kcalloc(dev->sq_entries,
					   sizeof(*dev->sqs[v].reqs),
					   GFP_KERNEL);
		if (!dev->sqs[v].reqs)
			return -ENOMEM;
	}
	dev->rings = memremap(pci_resource_start(dev->pdev, KVMQ_PCI_RINGS_BAR),
			      dev->rings_len, MEMREMAP_WB);
	if (!dev->rings)
		return -ENOMEM;

	for (q = 0; q < dev->nr_queues; q++) {
		struct kvmqg_rx *rx = &dev->rx[q];

		rx->ring = dev->rings + (u64)q * rx_stride;
		rx->msgs = (void *)(rx->ring + 1);
		if (READ_ONCE(rx->ring->entries) != dev->rx_entries) {
			dev_err(d, "receive ring %u has %u entries\n", q,
				READ_ONCE(rx->ring->entries));
			return -EINVAL;
		}
		rx->cons = READ_ONCE(rx->ring->cons);
		WRITE_ONCE(rx->ring->flags, q ? 0 : KVMQ_RING_F_WAKE);
	}
	for (v = 0; v < dev->nr_vcpu_queues; v++) {
		struct kvmqg_sq *sq = &dev->sqs[v];
		unsigned int cpu;

		sq->dev = dev;
		sq->sq = dev->rings + vcpu_offset + (u64)v * vcpu_stride;
		sq->sqes = (void *)(sq->sq + 1);
		sq->cq = (void *)sq->sq + cq_offset;
		sq->cqes = (void *)(sq->cq + 1);
		/* Entries an earlier driver left complete under its own tag. */
		sq->prod = READ_ONCE(sq->sq->prod);
		sq->cq_cons = READ_ONCE(sq->cq->cons);
		sq->cpu = -1;
		for_each_possible_cpu(cpu)
			if (cpu_physical_id(cpu) == v)
				sq->cpu = cpu;
		INIT_WORK(&sq->kick, kvmqg_kick_work);
	}
	/* Never 0, the tag of the entries that end chains. */
	dev->tag = get_random_u32() | 1;
	return reused ? kvmqg_release_stale(dev) : 0;
}

static int kvmqg_alloc_state(struct kvmqg_dev *dev)
{
	unsigned long nr_blocks = dev->nr_pages >> KVMQG_BLOCK_SHIFT;

	dev->held = kvcalloc(BITS_TO_LONGS(dev->nr_pages),
			     sizeof(unsigned long), GFP_KERNEL);
	dev->full = kvcalloc(BITS_TO_LONGS(nr_blocks), sizeof(unsigned long),
			     GFP_KERNEL);
	dev->blk_held = kvcalloc(nr_blocks, sizeof(*dev->blk_held),
				 GFP_KERNEL);
	dev->arrivals = kcalloc(dev->nr_queues, sizeof(*dev->arrivals),
				GFP_KERNEL);
	dev->vecs = kcalloc(dev->nr_queues + 1, sizeof(*dev->vecs),
			    GFP_KERNEL);
	dev->ctl_msg = kmalloc(sizeof(*dev->ctl_msg), GFP_KERNEL);
	if (!dev->held || !dev->full || !dev->blk_held || !dev->arrivals ||
	    !dev->vecs || !dev->ctl_msg)
		return -ENOMEM;
	return 0;
}

static void kvmqg_free_irqs(struct kvmqg_dev *dev)
{
	while (dev->nr_irqs) {
		dev->nr_irqs--;
		pci_free_irq(dev->pdev, dev->nr_irqs,
			     &dev->vecs[dev->nr_irqs]);
	}
}

static int kvmqg_request_irqs(struct kvmqg_dev *dev)
{
	unsigned int nvec = dev->nr_queues + 1, i;
	int ret;

	ret = pci_alloc_irq_vectors(dev->pdev, nvec, nvec, PCI_IRQ_MSIX);
	if (ret < 0)
		return ret;
	for (i = 0; i < nvec; i++) {
		dev->vecs[i].dev = dev;
		dev->vecs[i].queue = i;
		if (i < dev->nr_queues)
			ret = pci_request_irq(dev->pdev, i, kvmqg_queue_irq,
					      NULL, &dev->vecs[i], "%s-q%u",
					      dev->name, i);
		else
			ret = pci_request_irq(dev->pdev, i, kvmqg_room_irq,
					      NULL, &dev->vecs[i], "%s-room",
					      dev->name);
		if (ret) {
			kvmqg_free_irqs(dev);
			pci_free_irq_vectors(dev->pdev);
			return ret;
		}
		dev->nr_irqs++;
	}
	return 0;
}

static int kvmqg_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct kvmqg_dev *dev;
	int ret;

	if (!kvm_para_available()) {
		dev_err(&pdev->dev, "not a KVM guest\n");
		return -ENODEV;
	}

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	kref_init(&dev->ref);
	dev->pdev = pdev;
	atomic_set(&dev->room, 0);
	init_waitqueue_head(&dev->rxwq);
	init_waitqueue_head(&dev->roomwq);
	INIT_WORK(&dev->ctl_work, kvmqg_ctl_work);
	INIT_DELAYED_WORK(&dev->reap, kvmqg_reap_work);
	atomic_set(&dev->inflight, 0);
	spin_lock_init(&dev->wake_lock);
	spin_lock_init(&dev->peers_lock);
	init_rwsem(&dev->remove_sem);
	init_rwsem(&dev->map_sem);
	mutex_init(&dev->lock);
	INIT_LIST_HEAD(&dev->files);

	dev->index = ida_alloc(&kvmqg_ida, GFP_KERNEL);
	if (dev->index < 0) {
		ret = dev->index;
		goto err_free;
	}
	snprintf(dev->name, sizeof(dev->name), "kvmq%d", dev->index);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_ida;
	ret = pci_request_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;
	if (!(pci_resource_flags(pdev, KVMQ_PCI_REGS_BAR) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, KVMQ_PCI_REGS_BAR) < KVMQ_PCI_REGS_SIZE) {
		dev_err(&pdev->dev, "no register BAR\n");
		ret = -ENODEV;
		goto err_regions;
	}
	dev->regs = pci_iomap(pdev, KVMQ_PCI_REGS_BAR, KVMQ_PCI_REGS_SIZE);
	if (!dev->regs) {
		ret = -ENOMEM;
		goto err_regions;
	}
	ret = kvmqg_read_config(dev);
	if (ret)
		goto err_iounmap;
	ret = kvmqg_check_kvmq(dev);
	if (ret)
		goto err_iounmap;
	ret = kvmqg_alloc_state(dev);
	if (ret)
		goto err_iounmap;
	ret = kvmqg_setup_rings(dev);
	if (ret)
		goto err_rings;
	dev->aperture = memremap(dev->ap_base, (u64)dev->nr_pages << PAGE_SHIFT,
				 MEMREMAP_WB);
	if (!dev->aperture) {
		ret = -ENOMEM;
		goto err_rings;
	}

	pci_set_master(pdev);
	ret = kvmqg_request_irqs(dev);
	if (ret)
		goto err_memunmap;

	dev->misc.minor = MISC_DYNAMIC_MINOR;
	dev->misc.name = dev->name;
	dev->misc.fops = &kvmqg_fops;
	dev->misc.parent = &pdev->dev;
	dev->misc.mode = 0600;
	ret = misc_register(&dev->misc);
	if (ret)
		goto err_irqs;
	pci_set_drvdata(pdev, dev);

	/* Peers the VMM posted before the interrupts were set up. */
	schedule_work(&dev->ctl_work);
	dev_info(&pdev->dev,
		 "/dev/%s: kvmq ABI %u, %u queues of %u, aperture of %lu MiB at %pa, quota %lu MiB, %s\n",
		 dev->name, dev->abi_version, dev->nr_queues, dev->depth,
		 dev->nr_pages >> (20 - PAGE_SHIFT), &dev->ap_base,
		 dev->quota_pages >> (20 - PAGE_SHIFT),
		 dev->rings ? "rings" : "no rings");
	return 0;

err_irqs:
	kvmqg_free_irqs(dev);
	cancel_work_sync(&dev->ctl_work);
	pci_free_irq_vectors(pdev);
err_memunmap:
	pci_clear_master(pdev);
	memunmap(dev->aperture);
err_rings:
	if (dev->rings)
		memunmap(dev->rings);
err_iounmap:
	pci_iounmap(pdev, dev->regs);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_ida:
	ida_free(&kvmqg_ida, dev->index);
err_free:
	kref_put(&dev->ref, kvmqg_dev_free);
	return ret;
}

/*
 * At removal, under dev->lock: have every vCPU run the sends in its ring,
 * and complete them.  A send that still did not run keeps its message,
 * which kvmq may read yet: that memory is left allocated.
 */
static void kvmqg_flush_sends(struct kvmqg_dev *dev)
{
	struct kvmqg_req *req;
	u32 v, i;

	for (v = 0; v < dev->nr_vcpu_queues; v++) {
		struct kvmqg_sq *sq = &dev->sqs[v];

		cancel_work_sync(&sq->kick);
		if (sq->prod != sq->cq_cons && sq->cpu >= 0 &&
		    schedule_work_on(sq->cpu, &sq->kick))
			flush_work(&sq->kick);
	}
	kvmqg_reap_all(dev);
	for (v = 0; v < dev->nr_vcpu_queues; v++) {
		for (i = 0; i < dev->sq_entries; i++) {
			req = dev->sqs[v].reqs[i];
			if (!req)
				continue;
			dev->sqs[v].reqs[i] = NULL;
			req->msg = NULL;
			req->res = -ENODEV;
			io_uring_cmd_complete_in_task(req->ioucmd,
						      kvmqg_req_done);
		}
	}
}

static void kvmqg_remove(struct pci_dev *pdev)
{
	struct kvmqg_dev *dev = pci_get_drvdata(pdev);
	struct kvmqg_file *f;
	long ret;

	/* No new file; those open fail from now on. */
	misc_deregister(&dev->misc);
	down_write(&dev->map_sem);
	WRITE_ONCE(dev->dead, true);
	up_write(&dev->map_sem);
	wake_up_all(&dev->rxwq);
	wake_up_all(&dev->roomwq);
	kvmqg_free_irqs(dev);
	cancel_work_sync(&dev->ctl_work);

	down_write(&dev->remove_sem);
	/* No send can queue it any more; once run, it sees dev->dead. */
	cancel_delayed_work_sync(&dev->reap);
	mutex_lock(&dev->lock);
	if (dev->sqs)
		kvmqg_flush_sends(dev);
	list_for_each_entry(f, &dev->files, node) {
		unmap_mapping_range(f->mapping, 0, 0, 1);
		kvmqg_drop_all(f, false);
	}
	bitmap_zero(dev->held, dev->nr_pages);
	bitmap_zero(dev->full, dev->nr_pages >> KVMQG_BLOCK_SHIFT);
	memset(dev->blk_held, 0,
	       (dev->nr_pages >> KVMQG_BLOCK_SHIFT) * sizeof(*dev->blk_held));
	dev->nr_held = 0;
	dev->charged = 0;
	/* With rings, the messages in them stay for the next driver. */
	ret = dev->rx ? 0 : kvmqg_hc_release(dev, 0, dev->nr_pages);
	mutex_unlock(&dev->lock);
	if (dev->rx)
		ret = kvmqg_release_stale(dev);
	if (ret < 0)
		dev_warn(&pdev->dev, "release of the aperture: %ld\n", ret);
	up_write(&dev->remove_sem);

	pci_free_irq_vectors(pdev);
	pci_clear_master(pdev);
	memunmap(dev->aperture);
	if (dev->rings)
		memunmap(dev->rings);
	pci_iounmap(pdev, dev->regs);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	ida_free(&kvmqg_ida, dev->index);
	kref_put(&dev->ref, kvmqg_dev_free);
}

static const struct pci_device_id kvmqg_ids[] = {
	{ PCI_DEVICE(KVMQ_PCI_VENDOR_ID, KVMQ_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, kvmqg_ids);

static struct pci_driver kvmqg_driver = {
	.name = KBUILD_MODNAME,
	.id_table = kvmqg_ids,
	.probe = kvmqg_probe,
	.remove = kvmqg_remove,
};

static int __init kvmqg_init(void)
{
	/* The ABI: no implicit padding, same layout for 32-bit processes. */
	BUILD_BUG_ON(sizeof(struct kvmqg_head) != 8);
	BUILD_BUG_ON(offsetof(struct kvmqg_info, features) != 16);
	BUILD_BUG_ON(offsetof(struct kvmqg_info, aperture_len) != 32);
	BUILD_BUG_ON(offsetof(struct kvmqg_info, held) != 48);
	BUILD_BUG_ON(sizeof(struct kvmqg_info) != 56);
	BUILD_BUG_ON(offsetof(struct kvmqg_send, __reserved) != 28);
	BUILD_BUG_ON(offsetof(struct kvmqg_send, data) != 32);
	BUILD_BUG_ON(sizeof(struct kvmqg_send) != 40);
	BUILD_BUG_ON(offsetof(struct kvmqg_recv, data_len) != 28);
	BUILD_BUG_ON(offsetof(struct kvmqg_recv, offset) != 32);
	BUILD_BUG_ON(offsetof(struct kvmqg_recv, data) != 40);
	BUILD_BUG_ON(sizeof(struct kvmqg_recv) != 48);
	BUILD_BUG_ON(offsetof(struct kvmqg_alloc, nr) != 12);
	BUILD_BUG_ON(offsetof(struct kvmqg_alloc, offset) != 16);
	BUILD_BUG_ON(sizeof(struct kvmqg_alloc) != 24);
	BUILD_BUG_ON(offsetof(struct kvmqg_release, offset) != 8);
	BUILD_BUG_ON(offsetof(struct kvmqg_release, nr) != 16);
	BUILD_BUG_ON(sizeof(struct kvmqg_release) != 24);
	BUILD_BUG_ON(offsetof(struct kvmqg_peer, id) != KVMQG_PEER_NAME_LEN);
	BUILD_BUG_ON(sizeof(struct kvmqg_peer) != KVMQG_PEER_NAME_LEN + 8);
	BUILD_BUG_ON(offsetof(struct kvmqg_peers, peers) != 16);
	BUILD_BUG_ON(offsetof(struct kvmqg_peers, ignored) != 24);
	BUILD_BUG_ON(sizeof(struct kvmqg_peers) != 32);
	BUILD_BUG_ON(sizeof(struct kvmqg_qlen) != 16);
	BUILD_BUG_ON(offsetof(struct kvmqg_uring, flags) != 8);
	BUILD_BUG_ON(sizeof(struct kvmqg_uring) != 16);
	BUILD_BUG_ON(sizeof(struct kvmq_msg) != 32 + KVMQ_MSG_BYTES_MAX);
	/* Blocks of the aperture: a 2 MiB block is 512 pages. */
	BUILD_BUG_ON(KVMQG_BLOCK_PAGES << PAGE_SHIFT != KVMQ_MSG_BLOCK_SIZE);
	BUILD_BUG_ON(KVMQG_BLOCK_PAGES > U16_MAX);

	return pci_register_driver(&kvmqg_driver);
}
module_init(kvmqg_init);

static void __exit kvmqg_exit(void)
{
	pci_unregister_driver(&kvmqg_driver);
}
module_exit(kvmqg_exit);

MODULE_DESCRIPTION("kvmq guest driver: queues between KVM virtual machines");
MODULE_LICENSE("GPL");
