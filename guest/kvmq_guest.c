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
 * in a range being allocated.
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
 * Lock order: remove_sem, then lock, then peers_lock or i_mmap_rwsem;
 * mmap_lock, then map_sem.  No user memory is accessed under lock.
 */
#include <linux/bitmap.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/kvm_para.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/rbtree.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
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
		if (dev->blk_held[b] || !test_bit(b, dev->full))
			continue;
		ret = kvmqg_hc_release(dev, b << KVMQG_BLOCK_SHIFT,
				       KVMQG_BLOCK_PAGES);
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
		ret = kvmqg_hc2(KVMQ_HC_RECV, 0, virt_to_phys(msg));
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

static long kvmqg_ioctl_send(struct kvmqg_file *f, struct file *file,
			     void __user *uarg)
{
	struct kvmqg_pages pg = {};
	struct kvmqg_send s;
	struct kvmq_msg *msg;
	bool nonblock;
	long ret;

	ret = kvmqg_get_arg(&s, sizeof(s), uarg, KVMQG_F_NONBLOCK);
	if (ret)
		return ret;
	if (s.__reserved)
		return -EINVAL;
	ret = kvmqg_check_msg(s.kind, s.nr, s.len);
	if (ret)
		return ret;
	nonblock = (s.flags & KVMQG_F_NONBLOCK) || (file->f_flags & O_NONBLOCK);

	msg = kzalloc(sizeof(*msg), GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	msg->kind = s.kind;
	msg->nr = s.nr;
	msg->len = s.len;
	if (s.kind != KVMQ_MSG_BYTES)
		ret = kvmqg_pages_prepare(f->dev, msg, u64_to_user_ptr(s.data),
					  &pg);
	else if (copy_from_user(msg->data, u64_to_user_ptr(s.data), s.len))
		ret = -EFAULT;
	if (!ret)
		ret = kvmqg_send(f, s.dest, s.queue, msg, &pg, nonblock);
	kvmqg_pages_free(&pg);
	kfree(msg);
	return ret;
}

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

static long kvmqg_ioctl_recv(struct kvmqg_file *f, struct file *file,
			     void __user *uarg)
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
	nonblock = (r.flags & KVMQG_F_NONBLOCK) || (file->f_flags & O_NONBLOCK);

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
		ret = kvmqg_hc2(KVMQ_HC_RECV, r.queue, virt_to_phys(msg));
		if (!ret && msg->kind != KVMQ_MSG_BYTES)
			ret = kvmqg_recv_pages(f, msg, &ext, &first);
		mutex_unlock(&dev->lock);
		if (ret != -EAGAIN || nonblock)
			break;
		if (wait_event_interruptible_timeout(dev->rxwq,
						     atomic_read(&dev->arrivals[r.queue]) != seq ||
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
	first = bitmap_find_next_zero_area(dev->held, dev->nr_pages, 0, nr,
					   a.kind == KVMQ_MSG_BLOCKS ?
					   KVMQG_BLOCK_PAGES - 1 : 0);
	if (first + nr > dev->nr_pages) {
		ret = -ENOSPC;
	} else if (dev->charged + kvmqg_charge(dev, first, nr, true, false) >
		   dev->quota_pages) {
		ret = -ENOBUFS;
	} else {
		kvmqg_charge(dev, first, nr, true, true);
		kvmqg_touch(dev, first, nr);
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
		return kvmqg_ioctl_recv(f, file, uarg);
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
	dev->depth = ioread32(dev->regs + KVMQ_PCI_REG_DEPTH);
	nr_vectors = ioread32(dev->regs + KVMQ_PCI_REG_NR_VECTORS);
	ap_len = kvmqg_read64(dev, KVMQ_PCI_REG_APERTURE_LO);
	quota = kvmqg_read64(dev, KVMQ_PCI_REG_QUOTA_LO);
	dev->ap_base = pci_resource_start(dev->pdev, KVMQ_PCI_APERTURE_BAR);
	bar_len = pci_resource_len(dev->pdev, KVMQ_PCI_APERTURE_BAR);

	if (!dev->nr_queues || dev->nr_queues > KVMQ_QUEUES_MAX ||
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

	/* Pages left by an earlier driver, or touched by the firmware. */
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
	dev->aperture = memremap(dev->ap_base, (u64)dev->nr_pages << PAGE_SHIFT,
				 MEMREMAP_WB);
	if (!dev->aperture) {
		ret = -ENOMEM;
		goto err_iounmap;
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
		 "/dev/%s: kvmq ABI %u, %u queues of %u, aperture of %lu MiB at %pa, quota %lu MiB\n",
		 dev->name, dev->abi_version, dev->nr_queues, dev->depth,
		 dev->nr_pages >> (20 - PAGE_SHIFT), &dev->ap_base,
		 dev->quota_pages >> (20 - PAGE_SHIFT));
	return 0;

err_irqs:
	kvmqg_free_irqs(dev);
	cancel_work_sync(&dev->ctl_work);
	pci_free_irq_vectors(pdev);
err_memunmap:
	pci_clear_master(pdev);
	memunmap(dev->aperture);
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
	mutex_lock(&dev->lock);
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
	ret = kvmqg_hc_release(dev, 0, dev->nr_pages);
	if (ret < 0)
		dev_warn(&pdev->dev, "release of the aperture: %ld\n", ret);
	mutex_unlock(&dev->lock);
	up_write(&dev->remove_sem);

	pci_free_irq_vectors(pdev);
	pci_clear_master(pdev);
	memunmap(dev->aperture);
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
