// SPDX-License-Identifier: GPL-2.0
/*
 * Apertures: memory owned by kvmq that a VMM maps from its per-VM file and
 * registers as a KVM memslot.
 *
 * The VMM's mapping is VM_PFNMAP and starts empty.  KVM resolves such a
 * memslot through the host page tables (hva_to_pfn_remapped()), calling
 * kvmq_ap_fault()/kvmq_ap_huge_fault() when no entry exists; the same
 * handlers serve the VMM's own accesses.  Pages are refcounted order-0
 * pages: a 2 MiB block is allocated as order 9 without __GFP_COMP and
 * split, because KVM cannot take references on compound tail pages.
 */
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/pfn_t.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"
#include "trace.h"

#define KVMQ_AP_GFP		(GFP_KERNEL_ACCOUNT | __GFP_ZERO)

void kvmq_aperture_init(struct kvmq_aperture *ap)
{
	init_rwsem(&ap->lock);
	mutex_init(&ap->alloc_lock);
	xa_init(&ap->pages);
	mt_init_flags(&ap->used, MT_FLAGS_ALLOC_RANGE);
	mt_init_flags(&ap->chunks, MT_FLAGS_ALLOC_RANGE);
}

/*
 * The indexes of free slots.  @pages is the authority on which slot holds
 * which page; @used (slots) and @chunks (2 MiB chunks) are maple trees that
 * cover at least every slot and chunk in use, and whose gaps are found in
 * logarithmic time.  Marking a range used allocates and may fail: the
 * store of pages then fails before anything changed.  Clearing a range may
 * fail too (a maple tree write can need a node); the range then stays
 * marked, which only hides free slots from kvmq_ap_find_free(), never
 * hands out one in use.
 */
static int kvmq_ap_mark(struct maple_tree *mt, unsigned long first,
			unsigned long last)
{
	return mtree_store_range(mt, first, last, xa_mk_value(1),
				 GFP_KERNEL_ACCOUNT);
}

static void kvmq_ap_unmark(struct maple_tree *mt, unsigned long first,
			   unsigned long last)
{
	mtree_store_range(mt, first, last, NULL, GFP_KERNEL);
}

/*
 * Mark the chunks from @first to @last, one entry each (so that an entry's
 * index is its chunk); most stores fall in one chunk marked already.
 */
static int kvmq_ap_mark_chunks(struct kvmq_aperture *ap, unsigned long first,
			       unsigned long last)
{
	unsigned long c;
	int ret;

	for (c = first; c <= last; c++) {
		if (mtree_load(&ap->chunks, c))
			continue;
		ret = kvmq_ap_mark(&ap->chunks, c, c);
		if (ret)
			return ret;
	}
	return 0;
}

/* Unmark the chunks from @first to @last that no longer hold a page. */
static void kvmq_ap_unmark_chunks(struct kvmq_aperture *ap,
				  unsigned long first, unsigned long last)
{
	unsigned long next = first, c, idx;

	lockdep_assert_held(&ap->alloc_lock);
	/* Only the chunks marked: mt_find() leaves @next past the one found. */
	while (mt_find(&ap->chunks, &next, last)) {
		c = next - 1;
		idx = c * KVMQ_BLOCK_PAGES;
		if (!xa_find(&ap->pages, &idx, idx + KVMQ_BLOCK_PAGES - 1,
			     XA_PRESENT))
			kvmq_ap_unmark(&ap->chunks, c, c);
		if (!next)
			return;		/* wrapped past ULONG_MAX */
	}
}

/*
 * Store @nr pages at free slots from @idx on: all of them, or none.  Page
 * i is @pages[i], or nth_page(@run, i) if @pages is NULL.
 */
static int kvmq_ap_store(struct kvmq_aperture *ap, pgoff_t idx,
			 struct page *const *pages, struct page *run,
			 unsigned long nr)
{
	unsigned long i, last = idx + nr - 1;
	int ret;

	lockdep_assert_held(&ap->alloc_lock);
	ret = kvmq_ap_mark(&ap->used, idx, last);
	if (ret)
		return ret;
	ret = kvmq_ap_mark_chunks(ap, idx / KVMQ_BLOCK_PAGES,
				  last / KVMQ_BLOCK_PAGES);
	if (ret)
		goto err_chunks;

	for (i = 0; i < nr; i++) {
		ret = xa_err(xa_store(&ap->pages, idx + i,
				      pages ? pages[i] : nth_page(run, i),
				      GFP_KERNEL_ACCOUNT));
		if (ret)
			goto err_pages;
	}
	return 0;

err_pages:
	while (i--)
		xa_erase(&ap->pages, idx + i);
err_chunks:
	kvmq_ap_unmark_chunks(ap, idx / KVMQ_BLOCK_PAGES,
			      last / KVMQ_BLOCK_PAGES);
	kvmq_ap_unmark(&ap->used, idx, last);
	return ret;
}

/*
 * Erase the pages at the @nr indices @idx (in any order; runs of
 * consecutive indices are unmarked at once) from @ap.
 */
static void kvmq_ap_erase(struct kvmq_aperture *ap, const pgoff_t *idx,
			  unsigned long nr)
{
	unsigned long i, run = 0;

	lockdep_assert_held(&ap->alloc_lock);
	for (i = 0; i < nr; i++) {
		xa_erase(&ap->pages, idx[i]);
		if (i + 1 < nr && idx[i + 1] == idx[i] + 1)
			continue;
		kvmq_ap_unmark(&ap->used, idx[run], idx[i]);
		kvmq_ap_unmark_chunks(ap, idx[run] / KVMQ_BLOCK_PAGES,
				      idx[i] / KVMQ_BLOCK_PAGES);
		run = i + 1;
	}
}

/*
 * Called from kvmq_vm_free(): the per-VM file is released, so no VMA maps
 * the aperture any more (each VMA held the file) and KVM's MMU notifier
 * has zapped every second-level entry that pointed into it.  Drop kvmq's
 * reference on each page; one still pinned by someone else is freed by its
 * last put_page().
 */
void kvmq_aperture_destroy(struct kvmq_aperture *ap)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(&ap->pages, idx, page) {
		put_page(page);
		cond_resched();
	}
	xa_destroy(&ap->pages);
	mtree_destroy(&ap->used);
	mtree_destroy(&ap->chunks);
	kvmq_pool_sub(ap->held);
}

/* An aperture of @length bytes may live at @gpa. */
static bool kvmq_ap_gpa_valid(u64 gpa, u64 length)
{
	return gpa == KVMQ_APERTURE_NO_GPA ||
	       (IS_ALIGNED(gpa, KVMQ_APERTURE_ALIGN) && gpa + length > gpa);
}

long kvmq_vm_set_aperture(void *priv, void *arg)
{
	struct kvmq_vm_aperture *cfg = arg;
	struct kvmq_vm *vm = priv;
	struct kvmq_aperture *ap = &vm->ap;

	if (cfg->held || cfg->queued || !cfg->length || cfg->length > KVMQ_APERTURE_MAX ||
	    !IS_ALIGNED(cfg->length, KVMQ_APERTURE_ALIGN) ||
	    !kvmq_ap_gpa_valid(cfg->gpa, cfg->length) ||
	    !PAGE_ALIGNED(cfg->quota) || cfg->quota > cfg->length)
		return -EINVAL;

	guard(mutex)(&ap->alloc_lock);
	if (ap->nr_pages)
		return -EBUSY;

	WRITE_ONCE(ap->gpa, cfg->gpa);
	ap->quota = cfg->quota >> PAGE_SHIFT;
	/* Publish: pairs with smp_load_acquire() in kvmq_ap_nr_pages(). */
	smp_store_release(&ap->nr_pages, cfg->length >> PAGE_SHIFT);
	return 0;
}

long kvmq_vm_move_aperture(void *priv, void *arg)
{
	struct kvmq_vm_move_aperture *move = arg;
	struct kvmq_vm *vm = priv;
	struct kvmq_aperture *ap = &vm->ap;

	guard(mutex)(&ap->alloc_lock);
	if (!ap->nr_pages)
		return -ENODEV;
	if (!kvmq_ap_gpa_valid(move->gpa, (u64)ap->nr_pages << PAGE_SHIFT))
		return -EINVAL;
	/*
	 * Readers take one snapshot with READ_ONCE() and check every address
	 * against it, so that a move in between cannot mix two bases.
	 */
	WRITE_ONCE(ap->gpa, move->gpa);
	return 0;
}

long kvmq_vm_get_aperture(void *priv, void *arg)
{
	struct kvmq_vm_aperture *cfg = arg;
	struct kvmq_vm *vm = priv;
	struct kvmq_aperture *ap = &vm->ap;

	guard(mutex)(&ap->alloc_lock);
	if (!ap->nr_pages)
		return -ENODEV;

	cfg->gpa = ap->gpa;
	cfg->length = (u64)ap->nr_pages << PAGE_SHIFT;
	cfg->quota = (u64)ap->quota << PAGE_SHIFT;
	cfg->held = (u64)ap->held << PAGE_SHIFT;
	cfg->queued = (u64)ap->queued << PAGE_SHIFT;
	return 0;
}

/* Pages @ap may still be charged: its quota less what it holds and queues. */
static unsigned long kvmq_ap_room(struct kvmq_aperture *ap)
{
	lockdep_assert_held(&ap->alloc_lock);
	return ap->quota - ap->held - ap->queued;
}

static void kvmq_ap_account(struct kvmq_aperture *ap, long nr)
{
	lockdep_assert_held(&ap->alloc_lock);
	ap->held += nr;
	kvmq_pool_add(nr);
}

/* The page at @idx, allocated on first use within the quota. */
static struct page *kvmq_ap_page(struct kvmq_aperture *ap, pgoff_t idx)
{
	struct page *page;
	int ret;

	page = xa_load(&ap->pages, idx);
	if (page) {
		/* The page before @placing: pairs with kvmq_ap_placing(). */
		smp_rmb();
		/*
		 * Placed into a receive ring, the entry maybe not published
		 * yet: wait for it.  Pairs with the release in
		 * kvmq_ap_placing(): once clear, the entry is published.
		 */
		if (smp_load_acquire(&ap->placing)) {
			mutex_lock(&ap->alloc_lock);
			mutex_unlock(&ap->alloc_lock);
		}
		return page;
	}

	guard(mutex)(&ap->alloc_lock);
	page = xa_load(&ap->pages, idx);
	if (page)
		return page;
	if (kvmq_ap_room(ap) < 1)
		return ERR_PTR(-EDQUOT);

	page = alloc_page(KVMQ_AP_GFP);
	if (!page)
		return ERR_PTR(-ENOMEM);
	ret = kvmq_ap_store(ap, idx, NULL, page, 1);
	if (ret) {
		put_page(page);
		return ERR_PTR(ret);
	}
	kvmq_ap_account(ap, 1);
	return page;
}

/*
 * The first page of the 2 MiB block at @idx (block aligned), if the block
 * is, or can now be made, one naturally aligned run of pages; else NULL and
 * the fault falls back to 4 KiB.
 */
static struct page *kvmq_ap_block(struct kvmq_aperture *ap, pgoff_t idx)
{
	unsigned long first = idx, i;
	struct page *page;

	guard(mutex)(&ap->alloc_lock);
	page = xa_load(&ap->pages, idx);
	if (page) {
		if (!IS_ALIGNED(page_to_pfn(page), KVMQ_BLOCK_PAGES))
			return NULL;
		for (i = 1; i < KVMQ_BLOCK_PAGES; i++)
			if (xa_load(&ap->pages, idx + i) != nth_page(page, i))
				return NULL;
		return page;
	}

	if (xa_find(&ap->pages, &first, idx + KVMQ_BLOCK_PAGES - 1,
		    XA_PRESENT))
		return NULL;
	if (kvmq_ap_room(ap) < KVMQ_BLOCK_PAGES)
		return NULL;

	page = alloc_pages(KVMQ_AP_GFP | __GFP_NORETRY | __GFP_NOWARN,
			   KVMQ_BLOCK_ORDER);
	if (!page)
		return NULL;
	split_page(page, KVMQ_BLOCK_ORDER);

	if (kvmq_ap_store(ap, idx, NULL, page, KVMQ_BLOCK_PAGES)) {
		for (i = 0; i < KVMQ_BLOCK_PAGES; i++)
			put_page(nth_page(page, i));
		return NULL;
	}
	kvmq_ap_account(ap, KVMQ_BLOCK_PAGES);
	return page;
}

static vm_fault_t kvmq_ap_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct kvmq_vm *vm = vma->vm_file->private_data;
	struct kvmq_aperture *ap = &vm->ap;
	struct page *page;
	vm_fault_t ret;

	/* Not the VM's process: see kvmq_aperture_mmap(). */
	if (vma->vm_mm != vm->kvm->mm)
		return VM_FAULT_SIGBUS;
	if (vmf->pgoff >= kvmq_ap_nr_pages(ap))
		return VM_FAULT_SIGBUS;

	down_read(&ap->lock);
	page = kvmq_ap_page(ap, vmf->pgoff);
	if (IS_ERR(page))
		ret = PTR_ERR(page) == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	else
		ret = vmf_insert_pfn(vma, vmf->address, page_to_pfn(page));
	up_read(&ap->lock);
	return ret;
}

#ifdef CONFIG_ARCH_SUPPORTS_PMD_PFNMAP
static vm_fault_t kvmq_ap_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct kvmq_vm *vm = vma->vm_file->private_data;
	struct kvmq_aperture *ap = &vm->ap;
	unsigned long addr = vmf->address & PMD_MASK;
	struct page *page;
	vm_fault_t ret;
	pgoff_t idx;

	/* Not the VM's process: see kvmq_aperture_mmap(). */
	if (vma->vm_mm != vm->kvm->mm)
		return VM_FAULT_SIGBUS;
	if (order != PMD_ORDER || PMD_ORDER != KVMQ_BLOCK_ORDER)
		return VM_FAULT_FALLBACK;
	if (addr < vma->vm_start || addr + PMD_SIZE > vma->vm_end)
		return VM_FAULT_FALLBACK;
	idx = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
	if (!IS_ALIGNED(idx, KVMQ_BLOCK_PAGES))
		return VM_FAULT_FALLBACK;

	down_read(&ap->lock);
	page = kvmq_ap_block(ap, idx);
	/*
	 * Not a write fault even when it is one, as vfio-pci does: the entry
	 * is writable through vm_page_prot anyway, and insert_pfn_pmd() warns
	 * on a write fault over an existing entry.
	 */
	if (page)
		ret = vmf_insert_pfn_pmd(vmf,
					 __pfn_to_pfn_t(page_to_pfn(page), 0),
					 false);
	else
		ret = VM_FAULT_FALLBACK;
	up_read(&ap->lock);
	return ret;
}
#endif

static const struct vm_operations_struct kvmq_ap_vm_ops = {
	.fault = kvmq_ap_fault,
#ifdef CONFIG_ARCH_SUPPORTS_PMD_PFNMAP
	.huge_fault = kvmq_ap_huge_fault,
#endif
};

/*
 * Only the VM's own process may reach the aperture: its memory is the
 * guest's, charged to the guest's quota.  VM_DONTCOPY keeps the mapping out
 * of a child at fork(), and VM_IO makes madvise(MADV_DOFORK) fail so that
 * the VMM cannot clear VM_DONTCOPY.  VM_IO | VM_PFNMAP also keep
 * get_user_pages() off the mapping, which with no ->access handler closes
 * process_vm_readv(), /proc/PID/mem and ptrace; VM_DONTEXPAND | VM_PFNMAP
 * refuse growing or duplicating it with mremap() and MREMAP_DONTUNMAP, and
 * VM_SPECIAL refuses userfaultfd.  Should a mapping reach another mm
 * anyway, the fault handlers refuse it.
 */
int kvmq_aperture_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kvmq_vm *vm = file->private_data;
	unsigned long nr = kvmq_ap_nr_pages(&vm->ap);

	if (vm->kvm->mm != current->mm)
		return -EIO;
	if (!nr)
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= nr || vma_pages(vma) > nr - vma->vm_pgoff)
		return -EINVAL;

	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP |
		     VM_DONTCOPY);
	vma->vm_ops = &kvmq_ap_vm_ops;
	return 0;
}

/**
 * kvmq_ap_charge - charge the pages of a message queued to @to
 * @to: the receiving VM
 * @from: the sending VM, whose aperture holds the pages until they are
 *	queued
 * @nr: pages of the message
 * @charge: charge them; else only check
 *
 * The pages count against @to's quota (held and queued) and page limit.
 * When @to is @from, they are already charged to it, as held: the check
 * credits them, and from the charge until kvmq_ap_erase_sent() they count
 * twice, which can only make concurrent checks stricter.
 *
 * Return: 0, or -ENOBUFS if @to has no room for them now.
 */
int kvmq_ap_charge(struct kvmq_vm *to, struct kvmq_vm *from, u32 nr,
		   bool charge)
{
	unsigned long limit = to->queues->page_limit;
	struct kvmq_aperture *ap = &to->ap;
	unsigned long credit = to == from ? nr : 0;

	guard(mutex)(&ap->alloc_lock);
	if (kvmq_ap_room(ap) + credit < nr ||
	    (limit && limit - ap->queued < nr))
		return -ENOBUFS;
	if (charge)
		ap->queued += nr;
	return 0;
}

/* Undo kvmq_ap_charge(): the message was not queued after all. */
void kvmq_ap_uncharge(struct kvmq_vm *to, u32 nr)
{
	guard(mutex)(&to->ap.alloc_lock);
	to->ap.queued -= nr;
}

/*
 * Page moves, in three steps under the sender's aperture lock held for
 * write (kvmq_ap_take_begin() to kvmq_ap_take_end()), which keeps the
 * sender's faults from mapping its pages again meanwhile:
 *
 * 1. kvmq_ap_lookup_pages() finds the pages of each message;
 * 2. kvmq_ap_unmap() removes every mapping of the range that covers all
 *    the messages of the batch, once: the VMM's page tables, and through
 *    KVM's MMU notifier the VM's second-level entries, with one TLB flush;
 * 3. for each message, kvmq_ap_pinned() checks that only the aperture
 *    holds its pages, and once the message is queued (and charged to the
 *    receiver, kvmq_ap_charge()), kvmq_ap_erase_sent() erases them from
 *    the sender's aperture.
 *
 * The sender thus loses access before any receiver can gain it: the
 * message is queued only after step 2.  A message that fails in step 3
 * leaves its pages in the aperture, unchanged; they fault back in.
 */

/* Return: 0, or -ENOTCONN if the VM detached (no mapping any more). */
int kvmq_ap_take_begin(struct kvmq_vm *vm)
{
	down_write(&vm->ap.lock);
	if (vm->mapping)
		return 0;
	up_write(&vm->ap.lock);
	return -ENOTCONN;
}

void kvmq_ap_take_end(struct kvmq_vm *vm)
{
	up_write(&vm->ap.lock);
}

/* Find the @nr pages at @idx.  Return 0 or -ENXIO (a page is not held). */
int kvmq_ap_lookup_pages(struct kvmq_vm *vm, const pgoff_t *idx, u32 nr,
			 struct page **pages)
{
	u32 i;

	lockdep_assert_held_write(&vm->ap.lock);
	for (i = 0; i < nr; i++) {
		pages[i] = xa_load(&vm->ap.pages, idx[i]);
		if (!pages[i])
			return -ENXIO;
	}
	return 0;
}

void kvmq_ap_unmap(struct kvmq_vm *vm, pgoff_t lo, pgoff_t hi)
{
	lockdep_assert_held_write(&vm->ap.lock);
	trace_kvmq_move(kvmq_vm_id(vm), lo, hi);
	unmap_mapping_pages(vm->mapping, lo, hi - lo + 1, false);
	atomic64_inc(&kvmq_stats.unmaps);
	atomic64_inc(&vm->stats.unmaps);
}

/* Return 0, or -EBUSY if anyone but the aperture holds one of the pages. */
int kvmq_ap_pinned(struct page *const *pages, u32 nr)
{
	u32 i;

	for (i = 0; i < nr; i++)
		if (page_ref_count(pages[i]) != 1)
			return -EBUSY;
	return 0;
}

/* The @nr pages at @idx were queued: they leave the sender's aperture. */
void kvmq_ap_erase_sent(struct kvmq_vm *vm, const pgoff_t *idx, u32 nr)
{
	struct kvmq_aperture *ap = &vm->ap;

	lockdep_assert_held_write(&ap->lock);
	guard(mutex)(&ap->alloc_lock);
	kvmq_ap_erase(ap, idx, nr);
	ap->held -= nr;
	atomic64_add(nr, &kvmq_stats.pages_moved);
	atomic64_add(nr, &vm->stats.pages_moved);
}

/* Whether @ap could ever hold @nr more pages: size and quota. */
bool kvmq_ap_fits(struct kvmq_aperture *ap, u32 nr)
{
	unsigned long nr_pages = kvmq_ap_nr_pages(ap);

	/* @quota was set before @nr_pages was published. */
	return nr_pages && nr <= nr_pages && nr <= ap->quota;
}

/*
 * The first index of @nr free slots in a row (of @nr / 512 free 2 MiB
 * chunks in a row if @block), or -ENOSPC.  A slot is free when the
 * aperture holds no page there.  The maple trees keep the size of the
 * largest gap below each node: the search is logarithmic in the number of
 * ranges marked, however fragmented the aperture.
 */
static long kvmq_ap_find_free(struct kvmq_aperture *ap, unsigned long nr,
			      bool block)
{
	MA_STATE(mas, block ? &ap->chunks : &ap->used, 0, 0);
	unsigned int shift = block ? KVMQ_BLOCK_ORDER : 0;
	int ret;

	lockdep_assert_held(&ap->alloc_lock);
	mtree_lock(mas.tree);
	ret = mas_empty_area(&mas, 0, (ap->nr_pages >> shift) - 1,
			     nr >> shift);
	mtree_unlock(mas.tree);
	return ret ? -ENOSPC : mas.index << shift;
}

/**
 * kvmq_ap_place_locked - put the pages of a dequeued message into free slots
 * @ap: the receiver's aperture, alloc_lock held
 * @msg: the message at the head of its queue, queue locked
 * @gpa: output, guest-physical address of the first page
 *
 * The pages go to @msg->npages free slots in a row (2 MiB aligned for
 * BLOCKS, so that a block moved whole is mapped at 2 MiB again).  Free
 * slots have no mapping, so nothing needs to be unmapped; the receiver's
 * next access faults the pages in.  On success the aperture owns the pages;
 * they were charged to its quota since they were queued.
 *
 * Return: 0, -ENOSPC (no free run of slots), -ENOMEM, -EFAULT (the
 * aperture has no guest-physical address), -ENODEV (no aperture, which a
 * send refuses before); on error nothing changed.
 */
int kvmq_ap_place_locked(struct kvmq_aperture *ap, struct kvmq_kmsg *msg,
			 gpa_t *gpa)
{
	u32 nr = msg->npages;
	long start;
	int ret;

	lockdep_assert_held(&ap->alloc_lock);
	/* Not queued without an aperture (-EMSGSIZE at send); be sure. */
	if (!ap->nr_pages)
		return -ENODEV;
	/* No address to report: the message waits for one. */
	if (ap->gpa == KVMQ_APERTURE_NO_GPA)
		return -EFAULT;
	start = kvmq_ap_find_free(ap, nr, msg->kind == KVMQ_MSG_BLOCKS);
	if (start < 0)
		return start;
	ret = kvmq_ap_store(ap, start, msg->pages, NULL, nr);
	if (ret)
		return ret;
	ap->queued -= nr;
	ap->held += nr;
	*gpa = ap->gpa + ((u64)start << PAGE_SHIFT);
	return 0;
}

/*
 * Around a placement into a receive ring (@on, then not): the pages are
 * stored, then the ring entry that names them is published, under
 * alloc_lock.  A fault that finds one of the pages without the lock sees
 * @placing and waits for the lock (kvmq_ap_page()), so the guest access
 * that faulted comes after the entry: a guest that takes free slots by
 * touching them, then reads its receive rings, sees every message whose
 * pages its touch found.
 */
void kvmq_ap_placing(struct kvmq_aperture *ap, bool on)
{
	lockdep_assert_held(&ap->alloc_lock);
	if (on) {
		WRITE_ONCE(ap->placing, true);
		/* @placing before the pages: pairs with kvmq_ap_page(). */
		smp_wmb();
	} else {
		/* The entry before @placing: pairs with kvmq_ap_page(). */
		smp_store_release(&ap->placing, false);
	}
}

/* kvmq_ap_place_locked() under the aperture's alloc_lock. */
int kvmq_ap_place(struct kvmq_aperture *ap, struct kvmq_kmsg *msg,
		  gpa_t *gpa)
{
	guard(mutex)(&ap->alloc_lock);
	return kvmq_ap_place_locked(ap, msg, gpa);
}

/*
 * Pages a release frees under one hold of the aperture's locks: the
 * largest message, so that giving back one message costs one unmap.
 */
#define KVMQ_RELEASE_BATCH	(KVMQ_MSG_BLOCKS_MAX * KVMQ_BLOCK_PAGES)

/*
 * Free the next batch of pages of @ap from @idx to @last: at most
 * KVMQ_RELEASE_BATCH pages, the range from @idx to the last of them
 * unmapped first.  Return the index where the next batch starts (past
 * @last when done) and add the pages freed to @freed.
 */
static pgoff_t kvmq_ap_release_batch(struct kvmq_vm *vm, pgoff_t idx,
				     pgoff_t last, long *freed)
{
	struct kvmq_aperture *ap = &vm->ap;
	pgoff_t end = last, i;
	struct page *page;
	long n = 0;

	lockdep_assert_held_write(&ap->lock);
	xa_for_each_range(&ap->pages, i, page, idx, last) {
		if (++n == KVMQ_RELEASE_BATCH) {
			end = i;
			break;
		}
	}

	/* A free slot has no mapping: only the span of the pages matters. */
	unmap_mapping_pages(vm->mapping, idx, end - idx + 1, false);
	atomic64_inc(&kvmq_stats.unmaps);
	atomic64_inc(&vm->stats.unmaps);

	guard(mutex)(&ap->alloc_lock);
	xa_for_each_range(&ap->pages, i, page, idx, end) {
		xa_erase(&ap->pages, i);
		put_page(page);
	}
	kvmq_ap_unmark(&ap->used, idx, end);
	kvmq_ap_unmark_chunks(ap, idx / KVMQ_BLOCK_PAGES,
			      end / KVMQ_BLOCK_PAGES);
	ap->held -= n;
	kvmq_pool_sub(n);
	*freed += n;
	return end + 1;
}

/**
 * kvmq_ap_release - give back the pages of a range of @vm's aperture
 * @vm: the VM
 * @gpa: guest-physical address of the first page, 4 KiB aligned
 * @nr: pages in the range
 *
 * The range's pages are unmapped and freed; the slots become free.  A slot
 * the range does not hold is skipped: the work is bounded by the pages
 * held, not by @nr.  It is done in batches of KVMQ_RELEASE_BATCH pages,
 * each with one unmap (one TLB flush), and the locks are dropped and the
 * CPU yielded between batches, so that a release of a large aperture does
 * not hold up the VM's faults, its receives or the senders waiting for its
 * queues.  A page that enters the part of the range not yet released
 * (another vCPU touching it, or receiving into it) is released too.
 *
 * Return: the number of pages freed, or -ENODEV (no aperture), -EINVAL
 * (range misaligned or outside the aperture), -ENOTCONN (detached before
 * the first batch; a detach between batches ends the release early).
 */
long kvmq_ap_release(struct kvmq_vm *vm, gpa_t gpa, unsigned long nr)
{
	struct kvmq_aperture *ap = &vm->ap;
	unsigned long nr_pages = kvmq_ap_nr_pages(ap);
	pgoff_t idx, first, last;
	long freed = 0;
	u64 base;

	if (!nr_pages)
		return -ENODEV;
	base = READ_ONCE(ap->gpa);
	if (!nr || !PAGE_ALIGNED(gpa) || gpa < base ||
	    (gpa - base) >> PAGE_SHIFT >= nr_pages ||
	    nr > nr_pages - ((gpa - base) >> PAGE_SHIFT))
		return -EINVAL;
	first = (gpa - base) >> PAGE_SHIFT;
	idx = first;
	last = idx + nr - 1;

	do {
		if (idx != first)
			cond_resched();
		guard(rwsem_write)(&ap->lock);
		if (!vm->mapping)
			return freed ?: -ENOTCONN;
		idx = kvmq_ap_release_batch(vm, idx, last, &freed);
	} while (idx <= last);
	return freed;
}

/* Called when the per-VM file is released: no VMA maps the aperture. */
void kvmq_aperture_detach(struct kvmq_vm *vm)
{
	guard(rwsem_write)(&vm->ap.lock);
	vm->mapping = NULL;
}
