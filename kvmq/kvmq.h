/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmq internal interfaces.
 *
 * Lock ordering (the one list is kept in Documentation/locking.rst):
 *
 *   kvmq_lock (mutex)
 *   kvmq_lazy_lock (mutex)
 *   kvmq_vcpu_rings.lock (mutex)
 *     -> mmap_lock -> kvmq_aperture.lock (rwsem) -> kvmq_queue.lock (mutex)
 *       -> kvmq_aperture.alloc_lock (mutex), kvmq_vm.notify_lock (spinlock)
 *
 * No kvmq lock but kvmq_vcpu_rings.lock is held while guest memory is read
 * or written: such an access may fault into an aperture (mmap_lock,
 * kvmq_aperture.lock), and no fault path takes kvmq_vcpu_rings.lock.
 *
 * Hypercall handlers run in a vCPU thread; they find their VM under RCU and
 * hold a reference (kvmq_vm_get_by_kvm()) for the duration of the call.
 */
#ifndef _KVMQ_H
#define _KVMQ_H

#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/kvm_host.h>
#include <linux/maple_tree.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <uapi/linux/kvmq.h>

/* A 2 MiB block: the unit of KVMQ_MSG_BLOCKS and of PMD mappings. */
#define KVMQ_BLOCK_SHIFT	21
#define KVMQ_BLOCK_ORDER	(KVMQ_BLOCK_SHIFT - PAGE_SHIFT)
#define KVMQ_BLOCK_PAGES	BIT(KVMQ_BLOCK_ORDER)

/**
 * struct kvmq_aperture - memory of one VM owned by kvmq
 * @lock: held for read by the fault handlers while they look up and map
 *	a page; held for write to take pages away (moves, releases) and to
 *	detach, so that no fault maps a page being taken away.
 * @alloc_lock: protects the configuration (set once), every change to
 *	@pages, @used and @chunks, @held and @queued.  Nests inside @lock
 *	and inside kvmq_queue.lock.
 * @pages: aperture page index -> struct page (order 0, one reference owned
 *	by the aperture).  Lookups are lockless (xarray RCU).
 * @used: index of the slots in use, a maple tree whose gaps are the free
 *	runs of slots, found in logarithmic time.  Covers at least every
 *	slot of @pages (see kvmq_ap_mark()).
 * @chunks: the same for 2 MiB chunks, for blocks
 * @gpa: guest-physical base the VMM declared, or KVMQ_APERTURE_NO_GPA;
 *	written under @alloc_lock with WRITE_ONCE(), read once per operation
 * @nr_pages: size in pages; 0 until KVMQ_VM_SET_APERTURE, then constant.
 *	Published with smp_store_release() after @gpa and @quota.
 * @quota: the most pages charged to the VM at once: @held + @queued
 * @held: pages in @pages
 * @queued: pages of messages in the VM's queues, charged to it from the
 *	moment they are queued until they are placed in @pages
 * @placing: set under @alloc_lock while the pages of a message are placed
 *	in @pages and its receive ring entry published (kvmq_ap_placing()):
 *	a fault that finds a page without the lock then waits for the entry
 */
struct kvmq_aperture {
	struct rw_semaphore lock;	/* faults (read) vs. moves (write) */
	struct mutex alloc_lock;	/* configuration, @pages, counts */
	struct xarray pages;
	struct maple_tree used;
	struct maple_tree chunks;
	u64 gpa;
	unsigned long nr_pages;
	unsigned long quota;
	unsigned long held;
	unsigned long queued;
	bool placing;
};

/* The aperture's size in pages, 0 before KVMQ_VM_SET_APERTURE. */
static inline unsigned long kvmq_ap_nr_pages(struct kvmq_aperture *ap)
{
	/* Pairs with smp_store_release() in kvmq_vm_set_aperture(). */
	return smp_load_acquire(&ap->nr_pages);
}

/**
 * struct kvmq_group - a namespace of identities
 * @ref: one reference from the group file, one per member VM
 * @ids: identity -> struct kvmq_vm; writers hold kvmq_lock, readers RCU
 * @rcu: deferred free, for RCU readers of @ids
 */
struct kvmq_group {
	struct kref ref;
	struct xarray ids;
	struct rcu_head rcu;
};

/**
 * struct kvmq_kmsg - a message in a queue
 * @node: entry in kvmq_queue::msgs
 * @kind: KVMQ_MSG_*
 * @sender: identity stamped at send time (KVMQ_ID_VMM for a post)
 * @nr: pages or blocks, as the sender gave it
 * @len: payload bytes
 * @mem: bytes of kernel memory the message takes, charged to the
 *	receiver's kvmq_queues::mem while it is queued
 * @npages: entries of @pages (0 for BYTES)
 * @pages: PAGES and BLOCKS: the pages, owned by the message
 * @data: BYTES: the payload
 */
struct kvmq_kmsg {
	struct list_head node;
	u32 kind;
	u32 sender;
	u32 nr;
	u32 len;
	u32 mem;
	u32 npages;
	union {
		DECLARE_FLEX_ARRAY(struct page *, pages);
		DECLARE_FLEX_ARRAY(u8, data);
	};
};

/**
 * struct kvmq_queue - one inbound queue
 * @lock: protects every other field
 * @msgs: struct kvmq_kmsg, oldest first: messages not yet received, or,
 *	with a receive ring, not yet in it (ring full, or no room in the
 *	aperture for its pages yet)
 * @len: messages in @msgs; read locklessly by KVMQ_HC_QLEN
 * @dead: the VM detached; nothing more is enqueued
 * @allow: sender identity -> xa_mk_value(1): who may send here
 * @rx: the receive ring in the VM's ring area, NULL without rings; set
 *	once, with @rx_entries
 * @rx_entries: entries of @rx (kvmq's copy; the ring's is guest-writable)
 * @rx_prod: entries produced into @rx (kvmq's copy of its @prod)
 * @notify: arrival eventfd (KVMQ_VM_SET_NOTIFY), or NULL
 * @waiters: identities of senders this queue refused (-EAGAIN,
 *	-ENOBUFS), to notify when it has room
 */
struct kvmq_queue {
	struct mutex lock;		/* all of the queue */
	struct list_head msgs;
	u32 len;
	bool dead;
	struct xarray allow;
	struct kvmq_ring *rx;
	u32 rx_entries;
	u32 rx_prod;
	struct eventfd_ctx *notify;
	struct xarray waiters;
};

/**
 * struct kvmq_queues - the inbound queues of one VM
 * @nr_queues: VM queues, first in @q
 * @nr_vcpu_queues: per-vCPU queues, after the VM queues in @q
 * @depth: the most messages in one queue
 * @nr_total: entries of @q
 * @page_limit: the most pages queued to the VM at once, 0 for no limit
 *	but the aperture's quota
 * @mem_limit: the most bytes of kernel memory that messages queued to the
 *	VM may take at once
 * @mem: bytes of kernel memory that messages queued to the VM take now;
 *	charged and uncharged under the lock of the message's queue
 * @rx_backlog: messages in the lists of queues that have a receive ring,
 *	waiting for room; changed under the queue's lock
 * @q: the queues
 */
struct kvmq_queues {
	u32 nr_queues;
	u32 nr_vcpu_queues;
	u32 depth;
	u32 nr_total;
	unsigned long page_limit;
	unsigned long mem_limit;
	atomic_long_t mem;
	atomic_t rx_backlog;
	struct kvmq_queue q[] __counted_by(nr_total);
};

/**
 * struct kvmq_vcpu_rings - the submission and completion rings of a vCPU
 * @lock: held while the rings are run (KVMQ_HC_SUBMIT, or a lazy batch)
 * @sq: submission ring, in the VM's ring area
 * @cq: completion ring, in the VM's ring area
 * @sq_cons: entries of @sq consumed (kvmq's copy of its @cons)
 * @cq_prod: entries of @cq produced (kvmq's copy of its @prod)
 * @vm: the VM, for the lazy batch's task_work
 * @work: the lazy batch, queued on the vCPU's thread
 * @flags: KVMQ_VR_WORK_QUEUED while @work is queued
 * @timer: the lazy delay timer (KVMQ_VM_SET_RINGS' lazy_delay_us)
 * @link: the last entry consumed carried KVMQ_SQE_LINK: the next one
 *	depends on it
 * @last_res: the result of the last entry that completed
 *
 * The rings are run in the vCPU's own thread, by the hypercall or by the
 * task_work the kvm_exit probe queued; @lock covers a KVM_RUN from another
 * thread of the VMM meanwhile.  The probe reads @sq_cons without it: a
 * stale value only queues a batch that finds nothing, or one exit later.
 */
struct kvmq_vcpu_rings {
	struct mutex lock;		/* running the rings */
	struct kvmq_ring *sq;
	struct kvmq_ring *cq;
	u32 sq_cons;
	u32 cq_prod;
	struct kvmq_vm *vm;
	struct callback_head work;
	unsigned long flags;
	struct hrtimer timer;
	bool link;
	long last_res;
};

#define KVMQ_VR_WORK_QUEUED	0

/**
 * struct kvmq_rings - the ring area of one VM (KVMQ_VM_SET_RINGS)
 * @pages: the @nr_pages pages of the area, zeroed; a reference each
 * @nr_pages: pages in the area
 * @base: kvmq's own mapping of the area (vmap())
 * @rx_entries: entries of each receive ring
 * @rx_stride: bytes from one receive ring to the next
 * @sq_entries: entries of each submission and completion ring
 * @lazy_delay_ns: period of the lazy delay timers, 0 for none
 * @nr_vcpus: vCPUs with rings (vcpu_id below this)
 * @vcpu: the vCPUs' rings
 *
 * Constant once published; freed with the VM.
 */
struct kvmq_rings {
	struct page **pages;
	unsigned long nr_pages;
	void *base;
	u32 rx_entries;
	u32 rx_stride;
	u32 sq_entries;
	u64 lazy_delay_ns;
	u32 nr_vcpus;
	struct kvmq_vcpu_rings vcpu[] __counted_by(nr_vcpus);
};

/**
 * struct kvmq_vm_counters - what happened to one VM (KVMQ_VM_GET_STATS)
 *
 * The fields mirror struct kvmq_vm_stats.
 */
struct kvmq_vm_counters {
	atomic64_t sent[3];
	atomic64_t sent_bytes;
	atomic64_t received[3];
	atomic64_t received_bytes;
	atomic64_t pages_moved;
	atomic64_t unmaps;
	atomic64_t refused;
	atomic64_t doorbells;
	atomic64_t lazy_batches;
	atomic64_t lazy_entries;
	atomic64_t notified;
	atomic64_t suppressed;
	atomic64_t room_notified;
	atomic64_t lazy_kicks;
};

/**
 * struct kvmq_vm - kvmq state of one attached KVM VM
 * @kvm: the VM; a reference is held for the life of this object
 * @hnode: entry in the table of attached VMs, keyed by @kvm.  Protected by
 *	kvmq_lock for writers, RCU for readers.
 * @ref: references: one from the per-VM file, one per running hypercall
 *	of the VM, one per send in progress to it (dropped with
 *	kvmq_vm_put_peer())
 * @id: identity assigned by the VMM, 0 if none.  Written once under
 *	kvmq_lock, after @group; read locklessly with smp_load_acquire().
 * @group: the group the VM joined with its identity, NULL if none
 * @mapping: address space of the per-VM file, through which the aperture
 *	is mapped; NULL once the file is released.  Written under @ap.lock
 *	held for write, read under @ap.lock.
 * @queues: inbound queues; NULL until KVMQ_VM_SET_QUEUES, then constant.
 *	Published with smp_store_release().
 * @ap: the VM's aperture
 * @rings: ring area; NULL until KVMQ_VM_SET_RINGS, then constant.
 *	Published with smp_store_release().
 * @notify_lock: protects @space, which other VMs' threads signal
 * @space: room eventfd (KVMQ_NOTIFY_SPACE), or NULL
 * @stats: counters, atomic
 * @put_work: drops a sender's last reference outside its vCPU thread
 * @rcu: deferred free, for RCU readers of @hnode
 */
struct kvmq_vm {
	struct kvm *kvm;
	struct hlist_node hnode;
	struct kref ref;
	u32 id;
	struct kvmq_group *group;
	struct address_space *mapping;
	struct kvmq_queues *queues;
	struct kvmq_aperture ap;
	struct kvmq_rings *rings;
	spinlock_t notify_lock;		/* @space */
	struct eventfd_ctx *space;
	struct kvmq_vm_counters stats;
	struct work_struct put_work;
	struct rcu_head rcu;
};

static inline struct kvmq_queues *kvmq_vm_queues(struct kvmq_vm *vm)
{
	/* Pairs with smp_store_release() in kvmq_vm_set_queues(). */
	return smp_load_acquire(&vm->queues);
}

/* The queue numbered @queue in @qs, or NULL. */
static inline struct kvmq_queue *kvmq_queue(struct kvmq_queues *qs, u32 queue)
{
	if (!qs)
		return NULL;
	if (queue < qs->nr_queues)
		return &qs->q[queue];
	if (queue >= KVMQ_QUEUE_VCPU_BASE &&
	    queue - KVMQ_QUEUE_VCPU_BASE < qs->nr_vcpu_queues)
		return &qs->q[qs->nr_queues + queue - KVMQ_QUEUE_VCPU_BASE];
	return NULL;
}

static inline struct kvmq_rings *kvmq_vm_rings(struct kvmq_vm *vm)
{
	/* Pairs with smp_store_release() in kvmq_vm_set_rings(). */
	return smp_load_acquire(&vm->rings);
}

/* vm.c */
int kvmq_vm_attach(int vm_fd);
bool kvmq_vm_is_attached(struct kvm *kvm);
struct kvmq_vm *kvmq_vm_find_rcu(struct kvm *kvm);
struct kvmq_vm *kvmq_vm_get_by_kvm(struct kvm *kvm);
struct kvmq_vm *kvmq_vm_get_peer(struct kvmq_vm *vm, u32 id);
void kvmq_vm_put(struct kvmq_vm *vm);
void kvmq_vm_put_peer(struct kvmq_vm *vm);
int kvmq_vm_module_init(void);
void kvmq_vm_module_exit(void);
u32 kvmq_vm_id(struct kvmq_vm *vm);
int kvmq_group_create(void);

/* The fixed part of struct kvmq_msg, which a send reads first. */
struct kvmq_msg_hdr {
	u32 kind;
	u32 flags;
	u32 sender;
	u32 nr;
	u32 len;
	u32 __reserved;
	u64 gpa;
};

#define KVMQ_MSG_HDR_SIZE	sizeof(struct kvmq_msg_hdr)

/**
 * struct kvmq_send - one send, KVMQ_HC_SEND or a submission entry
 * @dest: identity of the receiving VM (input)
 * @queue: queue of the receiving VM (input)
 * @gpa: guest-physical address of the struct kvmq_msg (input)
 * @ret: the result, 0 or a negative errno (output)
 * @hdr: the message's header, read once
 * @peer: the receiving VM, referenced
 * @q: its queue
 * @msg: the message being built; NULL once queued
 * @idx: page and block messages: the aperture indices of the pages
 * @dep: runs only if the send before it in the batch succeeds
 *	(KVMQ_SQE_LINK); else completes with -ECANCELED
 */
struct kvmq_send {
	u32 dest;
	u32 queue;
	gpa_t gpa;
	long ret;
	struct kvmq_msg_hdr hdr;
	struct kvmq_vm *peer;
	struct kvmq_queue *q;
	struct kvmq_kmsg *msg;
	pgoff_t *idx;
	bool dep;
};

/* queue.c */
long kvmq_vm_set_queues(void *priv, void *arg);
long kvmq_vm_get_queues(void *priv, void *arg);
long kvmq_vm_grant(void *priv, void *arg);
long kvmq_vm_revoke(void *priv, void *arg);
long kvmq_vm_post(void *priv, void *arg);
void kvmq_queues_kill(struct kvmq_vm *vm);
void kvmq_queues_destroy(struct kvmq_vm *vm);
long kvmq_hc_send(struct kvmq_vm *vm, u32 dest, u32 queue, gpa_t gpa);
void kvmq_send_batch(struct kvmq_vm *vm, struct kvmq_send *s, u32 n);
long kvmq_release(struct kvmq_vm *vm, gpa_t gpa, unsigned long nr);
long kvmq_hc_recv(struct kvmq_vm *vm, struct kvm_vcpu *vcpu, u32 queue,
		  gpa_t gpa);
long kvmq_hc_qlen(struct kvmq_vm *vm, u32 queue);
long kvmq_vm_set_rings(void *priv, void *arg);
void kvmq_rx_refill(struct kvmq_vm *vm);

/* ring.c */
struct kvmq_vm_rings;
struct kvmq_rings *kvmq_rings_create(struct kvmq_vm *vm,
				     struct kvmq_vm_rings *cfg,
				     u32 nr_queues, u32 nr_vcpus);
void kvmq_rings_free(struct kvmq_rings *r);
struct kvmq_ring *kvmq_rings_rx(struct kvmq_rings *r, u32 i);
struct kvmq_msg *kvmq_rx_slot(struct kvmq_queue *q);
void kvmq_rx_publish(struct kvmq_queue *q);
u32 kvmq_rx_pending(struct kvmq_queue *q);
int kvmq_rings_mmap(struct file *file, struct vm_area_struct *vma);

/* submit.c */
long kvmq_hc_submit(struct kvmq_vm *vm, struct kvm_vcpu *vcpu,
		    unsigned long flags);
void kvmq_submit_lazy(struct kvmq_vm *vm, struct kvmq_vcpu_rings *vr);
const struct kvmq_sqe *kvmq_sq_entry(struct kvmq_vcpu_rings *vr,
				     u32 entries, u32 n);

/* notify.c */
long kvmq_vm_set_notify(void *priv, void *arg);
void kvmq_notify_arrival(struct kvmq_vm *vm, struct kvmq_queue *q);
void kvmq_notify_refused(struct kvmq_queue *q, u32 sender);
void kvmq_notify_room(struct kvmq_vm *vm, struct kvmq_queue *q);
void kvmq_notify_destroy(struct kvmq_vm *vm);

/* lazy.c */
int kvmq_lazy_get(void);
void kvmq_lazy_put(void);
void kvmq_lazy_timers_start(struct kvmq_rings *r);
void kvmq_lazy_timers_stop(struct kvmq_rings *r);
void kvmq_kmsg_free(struct kvmq_kmsg *msg);
int kvmq_enqueue_check(struct kvmq_vm *to, struct kvmq_queue *q,
		       const struct kvmq_kmsg *msg);
int kvmq_enqueue_locked(struct kvmq_vm *to, struct kvmq_queue *q,
			struct kvmq_kmsg *msg);

/* aperture.c */
void kvmq_aperture_init(struct kvmq_aperture *ap);
void kvmq_aperture_destroy(struct kvmq_aperture *ap);
long kvmq_vm_set_aperture(void *priv, void *arg);
long kvmq_vm_get_aperture(void *priv, void *arg);
long kvmq_vm_move_aperture(void *priv, void *arg);
long kvmq_vm_get_queue(void *priv, void *arg);
int kvmq_aperture_mmap(struct file *file, struct vm_area_struct *vma);

int kvmq_ap_charge(struct kvmq_vm *to, struct kvmq_vm *from, u32 nr,
		   bool charge);
void kvmq_ap_uncharge(struct kvmq_vm *to, u32 nr);
int kvmq_ap_take_begin(struct kvmq_vm *vm);
void kvmq_ap_take_end(struct kvmq_vm *vm);
int kvmq_ap_lookup_pages(struct kvmq_vm *vm, const pgoff_t *idx, u32 nr,
			 struct page **pages);
void kvmq_ap_unmap(struct kvmq_vm *vm, pgoff_t lo, pgoff_t hi);
int kvmq_ap_pinned(struct page *const *pages, u32 nr);
void kvmq_ap_erase_sent(struct kvmq_vm *vm, const pgoff_t *idx, u32 nr);
bool kvmq_ap_fits(struct kvmq_aperture *ap, u32 nr);
int kvmq_ap_place_locked(struct kvmq_aperture *ap, struct kvmq_kmsg *msg,
			 gpa_t *gpa);
void kvmq_ap_placing(struct kvmq_aperture *ap, bool on);
int kvmq_ap_place(struct kvmq_aperture *ap, struct kvmq_kmsg *msg,
		  gpa_t *gpa);
long kvmq_ap_release(struct kvmq_vm *vm, gpa_t gpa, unsigned long nr);

void kvmq_aperture_detach(struct kvmq_vm *vm);

/* stats.c */
void kvmq_pool_add(long nr);
void kvmq_pool_sub(long nr);
long kvmq_vm_get_stats(void *priv, void *arg);
void kvmq_stats_module_init(void);
void kvmq_stats_module_exit(void);

/**
 * struct kvmq_stats - host-wide counters, in debugfs
 * @messages: messages sent (guests and VMMs)
 * @bytes_copied: payload bytes of BYTES messages, copied twice each
 * @pages_moved: pages moved from a sender's aperture into a queue
 * @unmaps: unmap_mapping_pages() calls of moves and releases
 * @lazy_batches: lazy batches that ran at a natural exit and consumed at
 *	least one submission entry
 * @notify_signalled: arrival eventfds signalled
 * @notify_suppressed: arrivals not signalled: the guest was polling
 * @space_signalled: room eventfds signalled
 */
struct kvmq_stats {
	atomic64_t messages;
	atomic64_t bytes_copied;
	atomic64_t pages_moved;
	atomic64_t unmaps;
	atomic64_t lazy_batches;
	atomic64_t notify_signalled;
	atomic64_t notify_suppressed;
	atomic64_t space_signalled;
};

extern struct kvmq_stats kvmq_stats;

/* dev.c */

/**
 * struct kvmq_ioctl_op - one extensible ioctl
 * @cmd: ioctl number
 * @min_size: size of the first version of the argument structure
 * @size: size of the argument structure this module knows
 * @flags: flags the module accepts in the argument's @flags field
 * @copy_out: write the structure back to userspace on success
 * @fn: handler; @priv is the file's private data, @arg the copied argument
 */
struct kvmq_ioctl_op {
	unsigned int cmd;
	u32 min_size;
	u32 size;
	u32 flags;
	bool copy_out;
	long (*fn)(void *priv, void *arg);
};

/*
 * A table entry: @_last is the last field of the first version of @_struct.
 * No kvmq ioctl takes flags yet.
 */
#define KVMQ_IOCTL_OP(_cmd, _fn, _struct, _last, _copy_out)		\
	{								\
		.cmd = _cmd,						\
		.min_size = offsetofend(_struct, _last),		\
		.size = sizeof(_struct),				\
		.flags = 0,						\
		.copy_out = _copy_out,					\
		.fn = _fn,						\
	}

long kvmq_ioctl_dispatch(const struct kvmq_ioctl_op *ops, size_t nr_ops,
			 void *priv, unsigned int cmd, unsigned long uarg);
int kvmq_dev_init(void);
void kvmq_dev_exit(void);

/* hypercall.c */
int kvmq_hypercall_init(void);
void kvmq_hypercall_exit(void);

#endif /* _KVMQ_H */
