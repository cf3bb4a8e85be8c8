// SPDX-License-Identifier: GPL-2.0
/*
 * Rings: one area of memory per VM, owned by kvmq and never moved, holding
 * a receive ring per queue and a submission and a completion ring per
 * vCPU (include/uapi/linux/kvmq.h, struct kvmq_ring).  The VMM maps the
 * area from the per-VM file at KVMQ_RINGS_MMAP_OFFSET and registers it as
 * a KVM memslot; kvmq reaches it through a kernel mapping of its own, from
 * any thread, so a sender's vCPU thread delivers straight into the
 * receiver's ring.
 *
 * This file owns the area and its layout, and the producer side of the
 * receive rings; queue.c decides what goes in them, submit.c consumes the
 * submission rings.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

#define KVMQ_RING_HDR		sizeof(struct kvmq_ring)
#define KVMQ_RINGS_PGOFF	(KVMQ_RINGS_MMAP_OFFSET >> PAGE_SHIFT)

static void kvmq_rings_build_check(void)
{
	BUILD_BUG_ON(sizeof(struct kvmq_ring) != 128);
	BUILD_BUG_ON(offsetof(struct kvmq_ring, prod) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_ring, entries) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_ring, cons) != 64);
	BUILD_BUG_ON(offsetof(struct kvmq_ring, flags) != 68);
	BUILD_BUG_ON(sizeof(struct kvmq_sqe) != 32);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, op) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, flags) != 1);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, __reserved) != 2);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, dest) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, queue) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, nr) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, gpa) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_sqe, user_data) != 24);
	BUILD_BUG_ON(sizeof(struct kvmq_cqe) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_cqe, user_data) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_cqe, res) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_cqe, flags) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, rx_entries) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, sq_entries) != 12);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, length) != 16);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, rx_stride) != 24);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, vcpu_offset) != 28);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, vcpu_stride) != 32);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, cq_offset) != 36);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, lazy_delay_us) != 40);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_rings, __reserved) != 44);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_rings) != 48);
	BUILD_BUG_ON(KVMQ_RINGS_MAX > U32_MAX);
}

/* Bytes of a ring of @entries entries of @size bytes, cache-line aligned. */
static u64 kvmq_ring_bytes(u32 entries, size_t size)
{
	return ALIGN(KVMQ_RING_HDR + (u64)entries * size, SMP_CACHE_BYTES);
}

/* The ring at offset @off of the area, its header initialised. */
static struct kvmq_ring *kvmq_ring_at(struct kvmq_rings *r, u64 off,
				      u32 entries)
{
	struct kvmq_ring *ring = r->base + off;

	ring->entries = entries;
	return ring;
}

/**
 * kvmq_rings_create - allocate and lay out the ring area of a VM
 * @vm: the VM
 * @cfg: the request, checked but for the entry counts; its output fields
 *	are filled on success
 * @nr_queues: queues of the VM, each with a receive ring
 * @nr_vcpus: vCPUs with rings
 *
 * Return: the area, or an ERR_PTR(): -EINVAL (entry counts), -E2BIG (too
 * large), -ENOMEM.
 */
struct kvmq_rings *kvmq_rings_create(struct kvmq_vm *vm,
				     struct kvmq_vm_rings *cfg,
				     u32 nr_queues, u32 nr_vcpus)
{
	u64 rx_stride, sq_bytes, vcpu_stride, vcpu_offset, length;
	struct kvmq_rings *r;
	u32 i;

	kvmq_rings_build_check();
	if (!is_power_of_2(cfg->rx_entries) ||
	    cfg->rx_entries > KVMQ_RING_ENTRIES_MAX ||
	    !is_power_of_2(cfg->sq_entries) ||
	    cfg->sq_entries > KVMQ_RING_ENTRIES_MAX)
		return ERR_PTR(-EINVAL);

	rx_stride = kvmq_ring_bytes(cfg->rx_entries, sizeof(struct kvmq_msg));
	sq_bytes = kvmq_ring_bytes(cfg->sq_entries, sizeof(struct kvmq_sqe));
	vcpu_stride = sq_bytes +
		      kvmq_ring_bytes(cfg->sq_entries, sizeof(struct kvmq_cqe));
	vcpu_offset = nr_queues * rx_stride;
	length = PAGE_ALIGN(vcpu_offset + nr_vcpus * vcpu_stride);
	if (length > KVMQ_RINGS_MAX)
		return ERR_PTR(-E2BIG);

	r = kzalloc(struct_size(r, vcpu, nr_vcpus), GFP_KERNEL_ACCOUNT);
	if (!r)
		return ERR_PTR(-ENOMEM);
	r->nr_vcpus = nr_vcpus;
	r->nr_pages = length >> PAGE_SHIFT;
	r->pages = kvcalloc(r->nr_pages, sizeof(*r->pages), GFP_KERNEL_ACCOUNT);
	if (!r->pages)
		goto err_free;
	for (i = 0; i < r->nr_pages; i++) {
		r->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!r->pages[i])
			goto err_free;
	}
	r->base = vmap(r->pages, r->nr_pages, VM_MAP, PAGE_KERNEL);
	if (!r->base)
		goto err_free;

	r->rx_entries = cfg->rx_entries;
	r->rx_stride = rx_stride;
	for (i = 0; i < nr_queues; i++)
		kvmq_ring_at(r, i * rx_stride, cfg->rx_entries);
	r->sq_entries = cfg->sq_entries;
	r->lazy_delay_ns = (u64)cfg->lazy_delay_us * NSEC_PER_USEC;
	for (i = 0; i < nr_vcpus; i++) {
		u64 off = vcpu_offset + i * vcpu_stride;

		mutex_init(&r->vcpu[i].lock);
		r->vcpu[i].vm = vm;
		r->vcpu[i].sq = kvmq_ring_at(r, off, cfg->sq_entries);
		r->vcpu[i].cq = kvmq_ring_at(r, off + sq_bytes,
					     cfg->sq_entries);
	}

	cfg->length = length;
	cfg->rx_stride = rx_stride;
	cfg->vcpu_offset = vcpu_offset;
	cfg->vcpu_stride = vcpu_stride;
	cfg->cq_offset = sq_bytes;
	return r;

err_free:
	kvmq_rings_free(r);
	return ERR_PTR(-ENOMEM);
}

void kvmq_rings_free(struct kvmq_rings *r)
{
	unsigned long i;

	if (r->base)
		vunmap(r->base);
	for (i = 0; r->pages && i < r->nr_pages; i++)
		if (r->pages[i])
			put_page(r->pages[i]);
	kvfree(r->pages);
	kfree(r);
}

/* The receive ring of the queue at index @i of the VM's queues. */
struct kvmq_ring *kvmq_rings_rx(struct kvmq_rings *r, u32 i)
{
	return r->base + (u64)i * r->rx_stride;
}

/**
 * kvmq_rx_slot - the next free entry of the receive ring of @q
 * @q: a queue with a receive ring, locked
 *
 * Reads the guest's consumer index once, with the load-acquire that pairs
 * with the guest's store-release: the guest is done with the entry kvmq
 * reuses.
 *
 * Return: the entry, or NULL if the ring is full or its consumer index is
 * not sane (more than @entries behind).
 */
struct kvmq_msg *kvmq_rx_slot(struct kvmq_queue *q)
{
	u32 cons;

	lockdep_assert_held(&q->lock);
	/* The ring's own @entries is guest-writable: use kvmq's copy. */
	cons = smp_load_acquire(&q->rx->cons);
	if (q->rx_prod - cons >= q->rx_entries)
		return NULL;
	return (void *)(q->rx + 1) +
	       (q->rx_prod & (q->rx_entries - 1)) * sizeof(struct kvmq_msg);
}

/* Publish the entry kvmq_rx_slot() returned, now written. */
void kvmq_rx_publish(struct kvmq_queue *q)
{
	lockdep_assert_held(&q->lock);
	WRITE_ONCE(q->rx_prod, q->rx_prod + 1);
	/* Pairs with the guest's load-acquire of @prod. */
	smp_store_release(&q->rx->prod, q->rx_prod);
}

/*
 * Entries of the receive ring of @q that the guest has not consumed, 0 if
 * its consumer index is not sane.
 */
u32 kvmq_rx_pending(struct kvmq_queue *q)
{
	u32 n = READ_ONCE(q->rx_prod) - READ_ONCE(q->rx->cons);

	return n <= q->rx_entries ? n : 0;
}

static vm_fault_t kvmq_rings_fault(struct vm_fault *vmf)
{
	struct kvmq_vm *vm = vmf->vma->vm_file->private_data;
	struct kvmq_rings *r = kvmq_vm_rings(vm);
	pgoff_t idx = vmf->pgoff - KVMQ_RINGS_PGOFF;

	if (vmf->vma->vm_mm != vm->kvm->mm || !r || idx >= r->nr_pages)
		return VM_FAULT_SIGBUS;
	vmf->page = r->pages[idx];
	get_page(vmf->page);
	return 0;
}

static const struct vm_operations_struct kvmq_rings_vm_ops = {
	.fault = kvmq_rings_fault,
};

int kvmq_rings_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kvmq_vm *vm = file->private_data;
	struct kvmq_rings *r = kvmq_vm_rings(vm);

	if (vm->kvm->mm != current->mm)
		return -EIO;
	if (!r)
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED) || vma->vm_pgoff != KVMQ_RINGS_PGOFF ||
	    vma_pages(vma) != r->nr_pages)
		return -EINVAL;

	/*
	 * Ordinary pages, which KVM maps like the rest of guest memory.  Not
	 * inherited across fork(); a fault from another mm gets SIGBUS.
	 */
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP | VM_DONTCOPY);
	vma->vm_ops = &kvmq_rings_vm_ops;
	return 0;
}
