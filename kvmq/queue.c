// SPDX-License-Identifier: GPL-2.0
/*
 * Queues and messages: the send and receive hypercalls, inbound
 * permissions, and messages posted by the VMM.
 *
 * A message is BYTES (copied from the sender's guest memory into a kernel
 * buffer, then into the receiver's), PAGES or BLOCKS (pages taken out of
 * the sender's aperture, kvmq_send_commit(), and placed into free slots of
 * the receiver's aperture by kvmq_ap_place()).  While queued, a message owns
 * its pages; nothing maps them.
 *
 * Guest memory is read and written with no kvmq lock held: the access may
 * fault into an aperture, whose fault handler takes kvmq_aperture.lock.
 */
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"
#include "trace.h"

/* The guest ABI's header and this copy of it must not drift apart. */
static void kvmq_msg_hdr_check(void)
{
	BUILD_BUG_ON(offsetof(struct kvmq_msg_hdr, kind) !=
		     offsetof(struct kvmq_msg, kind));
	BUILD_BUG_ON(offsetof(struct kvmq_msg_hdr, flags) !=
		     offsetof(struct kvmq_msg, flags));
	BUILD_BUG_ON(offsetof(struct kvmq_msg_hdr, sender) !=
		     offsetof(struct kvmq_msg, sender));
	BUILD_BUG_ON(offsetof(struct kvmq_msg_hdr, nr) !=
		     offsetof(struct kvmq_msg, nr));
	BUILD_BUG_ON(offsetof(struct kvmq_msg_hdr, len) !=
		     offsetof(struct kvmq_msg, len));
	BUILD_BUG_ON(offsetof(struct kvmq_msg_hdr, __reserved) !=
		     offsetof(struct kvmq_msg, __reserved));
	BUILD_BUG_ON(offsetof(struct kvmq_msg_hdr, gpa) !=
		     offsetof(struct kvmq_msg, gpa));
	BUILD_BUG_ON(offsetof(struct kvmq_msg, data) != KVMQ_MSG_HDR_SIZE);
}

long kvmq_vm_set_queues(void *priv, void *arg)
{
	struct kvmq_vm_queues *cfg = arg;
	struct kvmq_vm *vm = priv;
	struct kvmq_queues *qs;
	u32 i, total;

	if (cfg->__reserved || cfg->mem || !cfg->nr_queues ||
	    cfg->nr_queues > KVMQ_QUEUES_MAX ||
	    cfg->nr_vcpu_queues > KVMQ_VCPU_QUEUES_MAX ||
	    cfg->nr_vcpu_queues < atomic_read(&vm->kvm->online_vcpus) ||
	    !cfg->depth || cfg->depth > KVMQ_DEPTH_MAX ||
	    !PAGE_ALIGNED(cfg->page_limit) ||
	    cfg->page_limit > KVMQ_APERTURE_MAX ||
	    (cfg->mem_limit && (cfg->mem_limit < KVMQ_MEM_LIMIT_MIN ||
				cfg->mem_limit > KVMQ_MEM_LIMIT_MAX)))
		return -EINVAL;

	total = cfg->nr_queues + cfg->nr_vcpu_queues;
	qs = kvzalloc(struct_size(qs, q, total), GFP_KERNEL_ACCOUNT);
	if (!qs)
		return -ENOMEM;
	qs->nr_queues = cfg->nr_queues;
	qs->nr_vcpu_queues = cfg->nr_vcpu_queues;
	qs->depth = cfg->depth;
	qs->nr_total = total;
	qs->page_limit = cfg->page_limit >> PAGE_SHIFT;
	qs->mem_limit = cfg->mem_limit ?: KVMQ_MEM_LIMIT_DEFAULT;
	atomic_long_set(&qs->mem, 0);
	for (i = 0; i < total; i++) {
		mutex_init(&qs->q[i].lock);
		INIT_LIST_HEAD(&qs->q[i].msgs);
		xa_init(&qs->q[i].allow);
		xa_init(&qs->q[i].waiters);
	}

	/* Publish: pairs with smp_load_acquire() in kvmq_vm_queues(). */
	if (cmpxchg_release(&vm->queues, NULL, qs)) {
		kvfree(qs);
		return -EBUSY;
	}
	return 0;
}

long kvmq_vm_get_queues(void *priv, void *arg)
{
	struct kvmq_queues *qs = kvmq_vm_queues(priv);
	struct kvmq_vm_queues *cfg = arg;

	if (cfg->__reserved)
		return -EINVAL;
	if (!qs)
		return -ENODEV;
	cfg->nr_queues = qs->nr_queues;
	cfg->nr_vcpu_queues = qs->nr_vcpu_queues;
	cfg->depth = qs->depth;
	cfg->page_limit = (u64)qs->page_limit << PAGE_SHIFT;
	cfg->mem_limit = qs->mem_limit;
	cfg->mem = atomic_long_read(&qs->mem);
	return 0;
}

static struct kvmq_queue *kvmq_grant_queue(struct kvmq_vm *vm,
					   struct kvmq_vm_grant *g)
{
	struct kvmq_queues *qs = kvmq_vm_queues(vm);
	struct kvmq_queue *q;

	if (!qs)
		return ERR_PTR(-ENODEV);
	q = kvmq_queue(qs, g->queue);
	if (!q || !g->sender || g->sender > KVMQ_ID_MAX)
		return ERR_PTR(-EINVAL);
	return q;
}

long kvmq_vm_get_queue(void *priv, void *arg)
{
	struct kvmq_queues *qs = kvmq_vm_queues(priv);
	struct kvmq_vm_queue_info *info = arg;
	struct kvmq_queue *q;
	unsigned long id;
	void *entry;
	u32 n = 0;

	if (info->__reserved)
		return -EINVAL;
	if (!qs)
		return -ENODEV;
	q = kvmq_queue(qs, info->queue);
	if (!q)
		return -EINVAL;

	guard(mutex)(&q->lock);
	info->length = q->len;
	xa_for_each(&q->allow, id, entry)
		n++;
	info->senders = n;
	return 0;
}

long kvmq_vm_grant(void *priv, void *arg)
{
	struct kvmq_vm_grant *g = arg;
	struct kvmq_queue *q;
	int ret;

	q = kvmq_grant_queue(priv, g);
	if (IS_ERR(q))
		return PTR_ERR(q);

	guard(mutex)(&q->lock);
	ret = xa_insert(&q->allow, g->sender, xa_mk_value(1),
			GFP_KERNEL_ACCOUNT);
	return ret == -EBUSY ? -EEXIST : ret;
}

long kvmq_vm_revoke(void *priv, void *arg)
{
	struct kvmq_vm_grant *g = arg;
	struct kvmq_queue *q;

	q = kvmq_grant_queue(priv, g);
	if (IS_ERR(q))
		return PTR_ERR(q);

	/* Under q->lock: no send that saw the grant is still enqueueing. */
	guard(mutex)(&q->lock);
	return xa_erase(&q->allow, g->sender) ? 0 : -ENOENT;
}

void kvmq_kmsg_free(struct kvmq_kmsg *msg)
{
	u32 i;

	for (i = 0; i < msg->npages; i++)
		put_page(msg->pages[i]);
	kvmq_pool_sub(msg->npages);
	kvfree(msg);
}

static struct kvmq_kmsg *kvmq_kmsg_alloc(u32 kind, u32 sender, u32 len,
					 u32 npages)
{
	size_t size = kind == KVMQ_MSG_BYTES ?
		struct_size_t(struct kvmq_kmsg, data, len) :
		struct_size_t(struct kvmq_kmsg, pages, npages);
	struct kvmq_kmsg *msg;

	/* What the allocator really hands out is what the message costs. */
	size = kmalloc_size_roundup(size);
	msg = kvmalloc(size, GFP_KERNEL_ACCOUNT);
	if (!msg)
		return NULL;
	msg->kind = kind;
	msg->sender = sender;
	msg->nr = 0;
	msg->len = len;
	msg->mem = size;
	msg->npages = npages;
	return msg;
}

/*
 * Unlink the head message @msg of @q, a queue of @vm, locked: it is no
 * longer charged, and the queue has room for a sender it refused.
 */
static void kvmq_dequeue_locked(struct kvmq_vm *vm, struct kvmq_queues *qs,
				struct kvmq_queue *q, struct kvmq_kmsg *msg)
{
	lockdep_assert_held(&q->lock);
	list_del(&msg->node);
	WRITE_ONCE(q->len, q->len - 1);
	atomic_long_sub(msg->mem, &qs->mem);
	if (q->rx)
		atomic_dec(&qs->rx_backlog);
	kvmq_notify_room(vm, q);
}

/*
 * Write @msg, received by @vm from @q, to @out: as KVMQ_HC_RECV and receive
 * rings show it.
 */
static void kvmq_msg_out(struct kvmq_vm *vm, struct kvmq_queue *q,
			 struct kvmq_msg *out, const struct kvmq_kmsg *msg,
			 gpa_t where)
{
	struct kvmq_queues *qs = kvmq_vm_queues(vm);

	trace_kvmq_consume(kvmq_vm_id(vm), q - qs->q, msg->sender, msg->kind,
			   where);
	atomic64_inc(&vm->stats.received[msg->kind - 1]);
	atomic64_add(msg->len, &vm->stats.received_bytes);
	out->kind = msg->kind;
	out->flags = 0;
	out->sender = msg->sender;
	out->nr = msg->nr;
	out->len = msg->len;
	out->__reserved = 0;
	out->gpa = where;
	if (msg->kind == KVMQ_MSG_BYTES)
		memcpy(out->data, msg->data, msg->len);
}

/* Free a message that was received: its pages now belong to the aperture. */
static void kvmq_kmsg_received(struct kvmq_kmsg *msg)
{
	if (msg->kind == KVMQ_MSG_BYTES)
		kvmq_kmsg_free(msg);
	else
		kvfree(msg);
}

/*
 * Write @msg, the head of @q, to @out, the next entry of its receive ring,
 * and publish it.  The pages of a page or block message are placed and the
 * entry published under the receiver's alloc_lock, with the aperture's
 * @placing set (kvmq_ap_placing()): a guest access that finds a placed page
 * in a slot it took for free comes after the entry that names the page, so
 * that the guest can tell (the guest driver allocates by touching free
 * slots, then reads its receive rings).
 */
static int kvmq_rx_put(struct kvmq_vm *vm, struct kvmq_queue *q,
		       struct kvmq_msg *out, struct kvmq_kmsg *msg)
{
	struct kvmq_aperture *ap = &vm->ap;
	gpa_t where = 0;
	int ret;

	if (!msg->npages) {
		kvmq_msg_out(vm, q, out, msg, 0);
		kvmq_rx_publish(q);
		return 0;
	}
	guard(mutex)(&ap->alloc_lock);
	kvmq_ap_placing(ap, true);
	ret = kvmq_ap_place_locked(ap, msg, &where);
	if (!ret) {
		kvmq_msg_out(vm, q, out, msg, where);
		kvmq_rx_publish(q);
	}
	kvmq_ap_placing(ap, false);
	return ret;
}

/*
 * Move messages from the head of @q into its receive ring, in order, while
 * the ring has room and, for pages, the receiver's aperture has free slots.
 * What stays waits for kvmq_rx_refill().
 *
 * A message leaves the queue's count only after its entry is published:
 * kvmq_rx_refill(), which takes the lock of every queue it counts messages
 * in, returns after any fill under way (the guest driver, binding again,
 * waits so for its rings to stop taking pages).
 */
static void kvmq_rx_fill_locked(struct kvmq_vm *vm, struct kvmq_queues *qs,
				struct kvmq_queue *q)
{
	bool published = false;
	struct kvmq_kmsg *msg;
	struct kvmq_msg *out;

	lockdep_assert_held(&q->lock);
	while (q->rx && !list_empty(&q->msgs)) {
		msg = list_first_entry(&q->msgs, struct kvmq_kmsg, node);
		out = kvmq_rx_slot(q);
		if (!out || kvmq_rx_put(vm, q, out, msg))
			break;
		kvmq_dequeue_locked(vm, qs, q, msg);
		kvmq_kmsg_received(msg);
		published = true;
	}
	if (published)
		kvmq_notify_arrival(vm, q);
}

/**
 * kvmq_enqueue_check - whether @q would take @msg now
 * @to: the receiving VM
 * @q: one of its queues, locked
 * @msg: the message, with its sender stamped
 *
 * The pages of a page or block message are charged by kvmq_ap_charge().
 *
 * Return: 0, -ENOENT if the receiver detached, -EACCES if the sender is not
 * allowed, -EAGAIN if the queue is full, -EMSGSIZE if the message is larger
 * than the receiver's budget for kernel memory, -ENOBUFS if that budget has
 * no room for it now.
 */
int kvmq_enqueue_check(struct kvmq_vm *to, struct kvmq_queue *q,
		       const struct kvmq_kmsg *msg)
{
	struct kvmq_queues *qs = kvmq_vm_queues(to);

	lockdep_assert_held(&q->lock);

	if (q->dead)
		return -ENOENT;
	if (msg->sender != KVMQ_ID_VMM && !xa_load(&q->allow, msg->sender))
		return -EACCES;
	if (q->len >= qs->depth) {
		kvmq_notify_refused(q, msg->sender);
		return -EAGAIN;
	}
	if (msg->mem > qs->mem_limit)
		return -EMSGSIZE;
	if (atomic_long_read(&qs->mem) > qs->mem_limit - msg->mem) {
		kvmq_notify_refused(q, msg->sender);
		return -ENOBUFS;
	}
	return 0;
}

/**
 * kvmq_enqueue_locked - append @msg to @q if the queue takes it
 * @to: the receiving VM
 * @q: one of its queues, locked
 * @msg: the message, with its sender stamped
 *
 * Charges the message's kernel memory to the receiver.  The budget for
 * kernel memory is shared by all queues of the VM, which have
 * locks of their own: it is charged with an atomic add, undone if it went
 * over.
 *
 * Return: 0 or an error of kvmq_enqueue_check().
 */
int kvmq_enqueue_locked(struct kvmq_vm *to, struct kvmq_queue *q,
			struct kvmq_kmsg *msg)
{
	struct kvmq_queues *qs = kvmq_vm_queues(to);
	int ret = kvmq_enqueue_check(to, q, msg);

	if (ret)
		return ret;
	if (atomic_long_add_return(msg->mem, &qs->mem) > qs->mem_limit) {
		atomic_long_sub(msg->mem, &qs->mem);
		kvmq_notify_refused(q, msg->sender);
		return -ENOBUFS;
	}
	list_add_tail(&msg->node, &q->msgs);
	WRITE_ONCE(q->len, q->len + 1);
	atomic64_inc(&kvmq_stats.messages);
	trace_kvmq_deliver(kvmq_vm_id(to), q - qs->q, msg->sender, msg->kind,
			   msg->len);
	if (q->rx) {
		atomic_inc(&qs->rx_backlog);
		/*
		 * Order the count above before the fill's read of the ring's
		 * cons.  Pairs with the guest's store of cons before its
		 * KVMQ_HC_SUBMIT (a VM exit): either kvmq_rx_refill() sees the
		 * message counted and waits for this fill under the queue
		 * lock, or this fill sees the guest's cons.
		 */
		smp_mb__after_atomic();
		kvmq_rx_fill_locked(to, qs, q);
	} else {
		kvmq_notify_arrival(to, q);
	}
	return 0;
}

/**
 * kvmq_rx_refill - move waiting messages of @vm's queues into their rings
 * @vm: a VM with rings
 *
 * Messages wait in a queue with a receive ring when the ring was full or
 * the aperture had no free slots for their pages; the guest makes room with
 * memory writes kvmq does not see, then issues KVMQ_HC_SUBMIT, which calls
 * this.
 */
void kvmq_rx_refill(struct kvmq_vm *vm)
{
	struct kvmq_queues *qs = kvmq_vm_queues(vm);
	u32 i;

	for (i = 0; qs && i < qs->nr_total; i++) {
		struct kvmq_queue *q = &qs->q[i];

		if (!READ_ONCE(q->len) || !READ_ONCE(q->rx))
			continue;
		guard(mutex)(&q->lock);
		kvmq_rx_fill_locked(vm, qs, q);
	}
}

long kvmq_vm_set_rings(void *priv, void *arg)
{
	struct kvmq_vm_rings *cfg = arg;
	struct kvmq_vm *vm = priv;
	struct kvmq_queues *qs = kvmq_vm_queues(vm);
	struct kvmq_rings *r;
	u32 i;
	int ret;

	if (cfg->length || cfg->rx_stride || cfg->vcpu_offset ||
	    cfg->vcpu_stride || cfg->cq_offset || cfg->__reserved ||
	    (cfg->lazy_delay_us &&
	     (cfg->lazy_delay_us < KVMQ_LAZY_DELAY_MIN ||
	      cfg->lazy_delay_us > KVMQ_LAZY_DELAY_MAX)))
		return -EINVAL;
	if (!qs)
		return -ENODEV;

	r = kvmq_rings_create(vm, cfg, qs->nr_total, qs->nr_vcpu_queues);
	if (IS_ERR(r))
		return PTR_ERR(r);
	ret = kvmq_lazy_get();
	if (ret) {
		kvmq_rings_free(r);
		return ret;
	}
	/* Publish: pairs with smp_load_acquire() in kvmq_vm_rings(). */
	if (cmpxchg_release(&vm->rings, NULL, r)) {
		kvmq_rings_free(r);
		kvmq_lazy_put();
		return -EBUSY;
	}

	/* From now on what enters a queue goes on to its ring, in order. */
	for (i = 0; i < qs->nr_total; i++) {
		struct kvmq_queue *q = &qs->q[i];

		guard(mutex)(&q->lock);
		q->rx_entries = r->rx_entries;
		WRITE_ONCE(q->rx, kvmq_rings_rx(r, i));
		atomic_add(q->len, &qs->rx_backlog);
		kvmq_rx_fill_locked(vm, qs, q);
	}
	kvmq_lazy_timers_start(r);
	return 0;
}

/* Queue a BYTES message, its payload filled in; it is freed on error. */
static int kvmq_enqueue_bytes(struct kvmq_vm *to, struct kvmq_queue *q,
			      struct kvmq_kmsg *msg)
{
	/* Once queued, @msg belongs to the receiver. */
	u32 len = msg->len;
	int ret;

	scoped_guard(mutex, &q->lock)
		ret = kvmq_enqueue_locked(to, q, msg);
	if (ret) {
		kvmq_kmsg_free(msg);
		return ret;
	}
	atomic64_add(len, &kvmq_stats.bytes_copied);
	return 0;
}

long kvmq_vm_post(void *priv, void *arg)
{
	struct kvmq_queues *qs = kvmq_vm_queues(priv);
	struct kvmq_vm_post *post = arg;
	struct kvmq_kmsg *msg;
	struct kvmq_queue *q;

	if (!qs)
		return -ENODEV;
	q = kvmq_queue(qs, post->queue);
	if (!q)
		return -EINVAL;
	if (post->len > KVMQ_MSG_BYTES_MAX)
		return -E2BIG;

	msg = kvmq_kmsg_alloc(KVMQ_MSG_BYTES, KVMQ_ID_VMM, post->len, 0);
	if (!msg)
		return -ENOMEM;
	if (copy_from_user(msg->data, u64_to_user_ptr(post->data),
			   post->len)) {
		kvmq_kmsg_free(msg);
		return -EFAULT;
	}
	return kvmq_enqueue_bytes(priv, q, msg);
}

/*
 * Called when the per-VM file is released: refuse further messages, and
 * wake the senders waiting for room, whose next send finds the VM gone
 * rather than waiting for room that never comes.
 */
void kvmq_queues_kill(struct kvmq_vm *vm)
{
	struct kvmq_queues *qs = kvmq_vm_queues(vm);
	u32 i;

	for (i = 0; qs && i < qs->nr_total; i++) {
		guard(mutex)(&qs->q[i].lock);
		qs->q[i].dead = true;
		kvmq_notify_room(vm, &qs->q[i]);
	}
}

/* Called when the VM is freed: nobody else can reach the queues. */
void kvmq_queues_destroy(struct kvmq_vm *vm)
{
	struct kvmq_queues *qs = vm->queues;
	struct kvmq_kmsg *msg, *tmp;
	u32 i;

	if (!qs)
		return;
	for (i = 0; i < qs->nr_total; i++) {
		list_for_each_entry_safe(msg, tmp, &qs->q[i].msgs, node)
			kvmq_kmsg_free(msg);
		xa_destroy(&qs->q[i].allow);
		xa_destroy(&qs->q[i].waiters);
		if (qs->q[i].notify)
			eventfd_ctx_put(qs->q[i].notify);
		mutex_destroy(&qs->q[i].lock);
	}
	kvfree(qs);
}

static int kvmq_cmp_idx(const void *a, const void *b)
{
	pgoff_t x = *(const pgoff_t *)a, y = *(const pgoff_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Translate the sender's list of @nr addresses, each of @shift size, into
 * aperture page indices, one per page, in list order.  Rejects addresses
 * outside the aperture, misaligned, or listed twice.
 */
static int kvmq_msg_indices(struct kvmq_aperture *ap, const u64 *gpas,
			    u32 nr, unsigned int shift, pgoff_t *idx)
{
	unsigned long per = 1UL << (shift - PAGE_SHIFT);
	unsigned long nr_pages = kvmq_ap_nr_pages(ap);
	pgoff_t *sorted;
	u32 i, j;
	int ret = 0;
	u64 base;

	if (!nr_pages)
		return -ENODEV;
	/* One base for the whole list (KVMQ_VM_MOVE_APERTURE). */
	base = READ_ONCE(ap->gpa);

	sorted = kmalloc_array(nr, sizeof(*sorted), GFP_KERNEL);
	if (!sorted)
		return -ENOMEM;

	for (i = 0; i < nr; i++) {
		u64 off = gpas[i] - base;

		if (gpas[i] < base || off >= (u64)nr_pages << PAGE_SHIFT ||
		    off & ((1ULL << shift) - 1)) {
			ret = -EINVAL;
			goto out;
		}
		sorted[i] = off >> PAGE_SHIFT;
		for (j = 0; j < per; j++)
			idx[i * per + j] = sorted[i] + j;
	}

	sort(sorted, nr, sizeof(*sorted), kvmq_cmp_idx, NULL);
	for (i = 1; i < nr; i++) {
		if (sorted[i] == sorted[i - 1]) {
			ret = -EINVAL;
			break;
		}
	}
out:
	kfree(sorted);
	return ret;
}

static u32 kvmq_msg_pages(const struct kvmq_msg_hdr *hdr)
{
	return hdr->kind == KVMQ_MSG_BLOCKS ? hdr->nr * KVMQ_BLOCK_PAGES :
					      hdr->nr;
}

/* Check a header read from the sender; 0 or the errno of the hypercall. */
static int kvmq_msg_check(const struct kvmq_msg_hdr *hdr)
{
	if (hdr->flags || hdr->sender || hdr->__reserved || hdr->gpa)
		return -EINVAL;

	switch (hdr->kind) {
	case KVMQ_MSG_BYTES:
		if (hdr->nr)
			return -EINVAL;
		return hdr->len > KVMQ_MSG_BYTES_MAX ? -E2BIG : 0;
	case KVMQ_MSG_PAGES:
		if (!hdr->nr)
			return -EINVAL;
		if (hdr->nr > KVMQ_MSG_PAGES_MAX)
			return -E2BIG;
		return hdr->len > (u64)hdr->nr * PAGE_SIZE ? -EINVAL : 0;
	case KVMQ_MSG_BLOCKS:
		if (!hdr->nr)
			return -EINVAL;
		if (hdr->nr > KVMQ_MSG_BLOCKS_MAX)
			return -E2BIG;
		return hdr->len > hdr->nr * KVMQ_MSG_BLOCK_SIZE ? -EINVAL : 0;
	default:
		return -EINVAL;
	}
}

/* Read the payload of a bytes message, or the page list of a page one. */
static int kvmq_send_read(struct kvmq_vm *vm, struct kvmq_send *s)
{
	unsigned int shift = s->hdr.kind == KVMQ_MSG_BLOCKS ?
			     KVMQ_BLOCK_SHIFT : PAGE_SHIFT;
	u32 npages = kvmq_msg_pages(&s->hdr);
	u64 *gpas;
	int ret;

	if (s->hdr.kind == KVMQ_MSG_BYTES) {
		s->msg = kvmq_kmsg_alloc(KVMQ_MSG_BYTES, kvmq_vm_id(vm),
					 s->hdr.len, 0);
		if (!s->msg)
			return -ENOMEM;
		if (kvm_read_guest(vm->kvm, s->gpa + KVMQ_MSG_HDR_SIZE,
				   s->msg->data, s->hdr.len))
			return -EFAULT;
		return 0;
	}

	gpas = kmalloc_array(s->hdr.nr, sizeof(*gpas), GFP_KERNEL);
	s->idx = kvmalloc_array(npages, sizeof(*s->idx), GFP_KERNEL);
	s->msg = kvmq_kmsg_alloc(s->hdr.kind, kvmq_vm_id(vm), s->hdr.len,
				 npages);
	if (!gpas || !s->idx || !s->msg) {
		ret = -ENOMEM;
		goto out;
	}
	s->msg->nr = s->hdr.nr;

	ret = kvm_read_guest(vm->kvm, s->gpa + KVMQ_MSG_HDR_SIZE, gpas,
			     s->hdr.nr * sizeof(*gpas)) ? -EFAULT : 0;
	if (!ret)
		ret = kvmq_msg_indices(&vm->ap, gpas, s->hdr.nr, shift, s->idx);
out:
	kfree(gpas);
	return ret;
}

/*
 * First half of a send: everything that reads guest memory, which must be
 * done with no kvmq lock held.  Sets @s->ret to 0, or to the hypercall's
 * error if the send is over already.
 */
static void kvmq_send_prepare(struct kvmq_vm *vm, struct kvmq_send *s)
{
	struct kvmq_queues *qs;
	int ret;

	if (!kvmq_vm_id(vm)) {
		s->ret = -ENOTCONN;
		return;
	}
	if (kvm_read_guest(vm->kvm, s->gpa, &s->hdr, KVMQ_MSG_HDR_SIZE)) {
		s->ret = -EFAULT;
		return;
	}
	ret = kvmq_msg_check(&s->hdr);
	if (ret) {
		s->ret = ret;
		return;
	}

	s->peer = kvmq_vm_get_peer(vm, s->dest);
	if (!s->peer) {
		s->ret = -ENOENT;
		return;
	}
	qs = kvmq_vm_queues(s->peer);
	s->q = kvmq_queue(qs, s->queue);
	if (!s->q) {
		s->ret = -ENOENT;
		return;
	}
	/* Pages that could never be queued, or placed, would wait for ever. */
	if (s->hdr.kind != KVMQ_MSG_BYTES &&
	    (!kvmq_ap_fits(&s->peer->ap, kvmq_msg_pages(&s->hdr)) ||
	     (qs->page_limit && kvmq_msg_pages(&s->hdr) > qs->page_limit))) {
		s->ret = -EMSGSIZE;
		return;
	}
	s->ret = kvmq_send_read(vm, s);
}

/* Queue a prepared page or block message; the sender's aperture locked. */
static int kvmq_send_pages_commit(struct kvmq_vm *vm, struct kvmq_send *s)
{
	u32 nr = s->msg->npages;
	int ret;

	/*
	 * An earlier message of the batch may have listed some of the same
	 * pages and taken them: look the pages up again, under the lock.
	 */
	ret = kvmq_ap_lookup_pages(vm, s->idx, nr, s->msg->pages);
	if (!ret)
		ret = kvmq_ap_pinned(s->msg->pages, nr);
	if (ret)
		return ret;

	guard(mutex)(&s->q->lock);
	ret = kvmq_ap_charge(s->peer, vm, nr, true);
	if (ret) {
		kvmq_notify_refused(s->q, s->msg->sender);
		return ret;
	}
	ret = kvmq_enqueue_locked(s->peer, s->q, s->msg);
	if (ret) {
		kvmq_ap_uncharge(s->peer, nr);
		return ret;
	}
	/*
	 * Queued: the message belongs to the receiver, which may have taken
	 * and freed it already (a receive ring).  Only @s->idx is ours.
	 */
	s->msg = NULL;
	kvmq_ap_erase_sent(vm, s->idx, nr);
	return 0;
}

/*
 * Second half: queue the prepared sends @s[0..@n - 1] in order.  The page
 * and block messages among them move with one unmap of the sender's
 * aperture, one TLB flush, for all of them: their pages are looked up and
 * checked against their queues first, then unmapped together, then queued
 * one by one.
 */
static void kvmq_send_commit(struct kvmq_vm *vm, struct kvmq_send *s, u32 n)
{
	pgoff_t lo = ULONG_MAX, hi = 0;
	bool moved = false, taken;
	u32 i, j;
	int ret;

	for (i = 0; i < n && !moved; i++)
		moved = !s[i].ret && s[i].msg->npages;
	taken = moved && !kvmq_ap_take_begin(vm);

	for (i = 0; moved && i < n; i++) {
		if (!s[i].ret && s[i].dep && s[i - 1].ret)
			s[i].ret = -ECANCELED;
		if (s[i].ret || !s[i].msg->npages)
			continue;
		if (!taken) {
			s[i].ret = -ENOTCONN;
			continue;
		}
		ret = kvmq_ap_lookup_pages(vm, s[i].idx, s[i].msg->npages,
					   s[i].msg->pages);
		/*
		 * A full queue or budget is the common failure: see it
		 * before paying for the unmap.
		 */
		if (!ret) {
			guard(mutex)(&s[i].q->lock);
			ret = kvmq_enqueue_check(s[i].peer, s[i].q, s[i].msg);
			if (!ret)
				ret = kvmq_ap_charge(s[i].peer, vm,
						     s[i].msg->npages, false);
			if (ret == -ENOBUFS)
				kvmq_notify_refused(s[i].q, s[i].msg->sender);
		}
		s[i].ret = ret;
		for (j = 0; !ret && j < s[i].msg->npages; j++) {
			lo = min(lo, s[i].idx[j]);
			hi = max(hi, s[i].idx[j]);
		}
	}
	if (taken && lo <= hi)
		kvmq_ap_unmap(vm, lo, hi);

	for (i = 0; i < n; i++) {
		if (!s[i].ret && s[i].dep && s[i - 1].ret)
			s[i].ret = -ECANCELED;
		if (s[i].ret)
			continue;
		if (s[i].msg->npages) {
			s[i].ret = kvmq_send_pages_commit(vm, &s[i]);
		} else {
			s[i].ret = kvmq_enqueue_bytes(s[i].peer, s[i].q,
						      s[i].msg);
			s[i].msg = NULL;	/* queued, or freed */
		}
	}
	if (taken)
		kvmq_ap_take_end(vm);

	for (i = 0; i < n; i++) {
		if (!s[i].ret) {
			atomic64_inc(&vm->stats.sent[s[i].hdr.kind - 1]);
			atomic64_add(s[i].hdr.len, &vm->stats.sent_bytes);
		} else if (s[i].ret == -EAGAIN || s[i].ret == -ENOBUFS) {
			atomic64_inc(&vm->stats.refused);
		}
	}
}

/* Free what a send still holds. */
static void kvmq_send_done(struct kvmq_send *s)
{
	if (s->msg)
		kvfree(s->msg);	/* owns no page: none was queued */
	kvfree(s->idx);
	if (s->peer)
		kvmq_vm_put_peer(s->peer);
}

/**
 * kvmq_send_batch - send @n messages, in order
 * @vm: the sending VM
 * @s: the sends, with @dest, @queue and @gpa set and the rest zeroed
 * @n: how many
 *
 * Each send has the effect, and gets in @ret the result, of KVMQ_HC_SEND
 * of its own; the page and block messages among them share one unmap of
 * the sender's aperture (kvmq_send_commit()).
 */
void kvmq_send_batch(struct kvmq_vm *vm, struct kvmq_send *s, u32 n)
{
	u32 i;

	kvmq_msg_hdr_check();
	for (i = 0; i < n; i++)
		kvmq_send_prepare(vm, &s[i]);
	kvmq_send_commit(vm, s, n);
	for (i = 0; i < n; i++)
		kvmq_send_done(&s[i]);
}

/**
 * kvmq_hc_send - KVMQ_HC_SEND
 * @vm: the sending VM
 * @dest: identity of the receiving VM, in @vm's group
 * @queue: queue of the receiving VM
 * @gpa: guest-physical address of the sender's struct kvmq_msg
 *
 * Return: 0 once the message is queued, else a negative errno and nothing
 * changed (a PAGES or BLOCKS send that fails after taking the sender's
 * mappings away leaves the pages in place; they refault unchanged).
 * Pages that the receiver could never hold (size, quota, page limit) get
 * -EMSGSIZE: queued, they would block the head of the queue.
 */
long kvmq_hc_send(struct kvmq_vm *vm, u32 dest, u32 queue, gpa_t gpa)
{
	struct kvmq_send s = { .dest = dest, .queue = queue, .gpa = gpa };

	kvmq_send_batch(vm, &s, 1);
	return s.ret;
}

/**
 * kvmq_release - KVMQ_HC_RELEASE, and KVMQ_OP_RELEASE entries
 * @vm: the VM
 * @gpa: guest-physical address of the first page
 * @nr: pages in the range
 *
 * Freeing pages gives room in the VM's quota: senders its queues refused
 * with -ENOBUFS are told.
 *
 * Return: as kvmq_ap_release().
 */
long kvmq_release(struct kvmq_vm *vm, gpa_t gpa, unsigned long nr)
{
	struct kvmq_queues *qs = kvmq_vm_queues(vm);
	long ret = kvmq_ap_release(vm, gpa, nr);
	u32 i;

	for (i = 0; ret > 0 && qs && i < qs->nr_total; i++) {
		if (xa_empty(&qs->q[i].waiters))
			continue;
		guard(mutex)(&qs->q[i].lock);
		kvmq_notify_room(vm, &qs->q[i]);
	}
	return ret;
}

/**
 * kvmq_hc_recv - KVMQ_HC_RECV
 * @vm: the receiving VM
 * @vcpu: the receiving vCPU
 * @queue: the queue to dequeue from
 * @gpa: guest-physical address of the struct kvmq_msg to fill
 *
 * Return: 0, or a negative errno.  The message stays at the head of the
 * queue, except on -EFAULT from the final write of @gpa (the VMM removed
 * the memslot since the first): the message is consumed then, its pages
 * left in the aperture.
 */
long kvmq_hc_recv(struct kvmq_vm *vm, struct kvm_vcpu *vcpu, u32 queue,
		  gpa_t gpa)
{
	struct kvmq_queues *qs = kvmq_vm_queues(vm);
	struct kvmq_queue *q = kvmq_queue(qs, queue);
	struct kvmq_kmsg *msg;
	struct kvmq_msg *out;
	gpa_t where = 0;
	int ret;

	if (!q)
		return -ENOENT;
	if (queue >= KVMQ_QUEUE_VCPU_BASE &&
	    queue - KVMQ_QUEUE_VCPU_BASE != vcpu->vcpu_id)
		return -EACCES;
	/* Messages of a queue with a ring arrive in the ring. */
	if (READ_ONCE(q->rx))
		return -EOPNOTSUPP;
	if (!READ_ONCE(q->len))
		return -EAGAIN;

	out = kzalloc(sizeof(*out), GFP_KERNEL);
	if (!out)
		return -ENOMEM;

	/*
	 * Prove the buffer writable before taking the message off the
	 * queue; the final write below can then only fail if the VMM
	 * removes the memslot in between.
	 */
	if (kvm_write_guest(vm->kvm, gpa, out, sizeof(*out))) {
		ret = -EFAULT;
		goto out;
	}

	scoped_guard(mutex, &q->lock) {
		msg = list_first_entry_or_null(&q->msgs, struct kvmq_kmsg,
					       node);
		if (!msg) {
			ret = -EAGAIN;
			goto out;
		}
		if (msg->npages) {
			ret = kvmq_ap_place(&vm->ap, msg, &where);
			if (ret)
				goto out;
		}
		kvmq_dequeue_locked(vm, qs, q, msg);
	}

	kvmq_msg_out(vm, q, out, msg, where);
	kvmq_kmsg_received(msg);

	ret = kvm_write_guest(vm->kvm, gpa, out, sizeof(*out)) ? -EFAULT : 0;
out:
	kfree(out);
	return ret;
}

long kvmq_hc_qlen(struct kvmq_vm *vm, u32 queue)
{
	struct kvmq_queue *q = kvmq_queue(kvmq_vm_queues(vm), queue);

	if (!q)
		return -ENOENT;
	if (READ_ONCE(q->rx))
		return READ_ONCE(q->len) + kvmq_rx_pending(q);
	return READ_ONCE(q->len);
}
