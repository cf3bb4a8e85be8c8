// SPDX-License-Identifier: GPL-2.0
/*
 * Counters: host-wide ones in debugfs (/sys/kernel/debug/kvmq/), and each
 * VM's, which its VMM reads with KVMQ_VM_GET_STATS.
 */
#include <linux/debugfs.h>
#include <uapi/linux/kvmq.h>

#include "kvmq.h"

/*
 * Pages kvmq owns, in apertures and in queued messages: must return to 0
 * when every VM is gone.
 */
static atomic_long_t kvmq_pool = ATOMIC_LONG_INIT(0);
static struct dentry *kvmq_debugfs;

struct kvmq_stats kvmq_stats;

void kvmq_pool_add(long nr)
{
	atomic_long_add(nr, &kvmq_pool);
}

void kvmq_pool_sub(long nr)
{
	atomic_long_sub(nr, &kvmq_pool);
}

static void kvmq_stats_build_check(void)
{
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, size) != 0);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, flags) != 4);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, sent) != 8);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, sent_bytes) != 32);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, received) != 40);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, received_bytes) != 64);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, pages_moved) != 72);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, unmaps) != 80);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, refused) != 88);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, doorbells) != 96);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, lazy_batches) != 104);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, lazy_entries) != 112);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, notified) != 120);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, suppressed) != 128);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, room_notified) != 136);
	BUILD_BUG_ON(offsetof(struct kvmq_vm_stats, lazy_kicks) != 144);
	BUILD_BUG_ON(sizeof(struct kvmq_vm_stats) != 152);
	BUILD_BUG_ON(KVMQ_MSG_BYTES != 1 || KVMQ_MSG_BLOCKS != 3);
}

long kvmq_vm_get_stats(void *priv, void *arg)
{
	struct kvmq_vm_counters *c = &((struct kvmq_vm *)priv)->stats;
	struct kvmq_vm_stats *st = arg;
	int i;

	kvmq_stats_build_check();
	for (i = 0; i < 3; i++) {
		st->sent[i] = atomic64_read(&c->sent[i]);
		st->received[i] = atomic64_read(&c->received[i]);
	}
	st->sent_bytes = atomic64_read(&c->sent_bytes);
	st->received_bytes = atomic64_read(&c->received_bytes);
	st->pages_moved = atomic64_read(&c->pages_moved);
	st->unmaps = atomic64_read(&c->unmaps);
	st->refused = atomic64_read(&c->refused);
	st->doorbells = atomic64_read(&c->doorbells);
	st->lazy_batches = atomic64_read(&c->lazy_batches);
	st->lazy_entries = atomic64_read(&c->lazy_entries);
	st->notified = atomic64_read(&c->notified);
	st->suppressed = atomic64_read(&c->suppressed);
	st->room_notified = atomic64_read(&c->room_notified);
	st->lazy_kicks = atomic64_read(&c->lazy_kicks);
	return 0;
}

static int kvmq_pool_get(void *data, u64 *val)
{
	*val = atomic_long_read(&kvmq_pool);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(kvmq_pool_fops, kvmq_pool_get, NULL, "%llu\n");

static int kvmq_stat_get(void *data, u64 *val)
{
	*val = atomic64_read(data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(kvmq_stat_fops, kvmq_stat_get, NULL, "%llu\n");

void __init kvmq_stats_module_init(void)
{
	static const struct {
		const char *name;
		atomic64_t *val;
	} stats[] = {
		{ "messages", &kvmq_stats.messages },
		{ "bytes_copied", &kvmq_stats.bytes_copied },
		{ "pages_moved", &kvmq_stats.pages_moved },
		{ "unmaps", &kvmq_stats.unmaps },
		{ "lazy_batches", &kvmq_stats.lazy_batches },
		{ "notify_signalled", &kvmq_stats.notify_signalled },
		{ "notify_suppressed", &kvmq_stats.notify_suppressed },
		{ "space_signalled", &kvmq_stats.space_signalled },
	};
	int i;

	kvmq_debugfs = debugfs_create_dir("kvmq", NULL);
	debugfs_create_file_unsafe("aperture_pages", 0400, kvmq_debugfs, NULL,
				   &kvmq_pool_fops);
	for (i = 0; i < ARRAY_SIZE(stats); i++)
		debugfs_create_file_unsafe(stats[i].name, 0400, kvmq_debugfs,
					   stats[i].val, &kvmq_stat_fops);
}

void kvmq_stats_module_exit(void)
{
	debugfs_remove_recursive(kvmq_debugfs);
}
