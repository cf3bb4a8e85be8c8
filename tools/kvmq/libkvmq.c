// SPDX-License-Identifier: GPL-2.0
/*
 * libkvmq: the ioctls of a kvmq guest device as functions.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libkvmq.h"

static int kvmq_ioctl(struct kvmq *q, unsigned long cmd, void *arg)
{
	return ioctl(q->fd, cmd, arg) ? -errno : 0;
}

int kvmq_open(struct kvmq *q, const char *path)
{
	memset(q, 0, sizeof(*q));
	q->fd = open(path, O_RDWR | O_CLOEXEC);
	return q->fd < 0 ? -errno : 0;
}

void kvmq_close(struct kvmq *q)
{
	if (q->map)
		munmap(q->map, q->map_len);
	if (q->fd >= 0)
		close(q->fd);
	q->map = NULL;
	q->fd = -1;
}

int kvmq_info(struct kvmq *q, struct kvmqg_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return kvmq_ioctl(q, KVMQG_INFO, info);
}

int kvmq_peers(struct kvmq *q, struct kvmqg_peer *peers, uint32_t max,
	       uint32_t *count, uint32_t *ignored)
{
	struct kvmqg_peers p = {
		.size = sizeof(p),
		.max = max,
		.peers = (uintptr_t)peers,
	};
	int ret = kvmq_ioctl(q, KVMQG_PEERS, &p);

	if (ret)
		return ret;
	if (count)
		*count = p.count;
	if (ignored)
		*ignored = p.ignored;
	return 0;
}

int kvmq_lookup(struct kvmq *q, const char *name, uint32_t *id)
{
	struct kvmqg_peer peers[KVMQG_PEERS_MAX];
	uint32_t count, i;
	int ret;

	ret = kvmq_peers(q, peers, KVMQG_PEERS_MAX, &count, NULL);
	if (ret)
		return ret;
	for (i = 0; i < count && i < KVMQG_PEERS_MAX; i++) {
		if (!strcmp(peers[i].name, name)) {
			*id = peers[i].id;
			return 0;
		}
	}
	return -ENOENT;
}

int kvmq_qlen(struct kvmq *q, uint32_t queue, uint32_t *len)
{
	struct kvmqg_qlen a = { .size = sizeof(a), .queue = queue };
	int ret = kvmq_ioctl(q, KVMQG_QLEN, &a);

	if (!ret)
		*len = a.len;
	return ret;
}

int kvmq_send_bytes(struct kvmq *q, uint32_t dest, uint32_t queue,
		    const void *buf, uint32_t len, uint32_t flags)
{
	struct kvmqg_send s = {
		.size = sizeof(s),
		.flags = flags,
		.dest = dest,
		.queue = queue,
		.kind = KVMQ_MSG_BYTES,
		.len = len,
		.data = (uintptr_t)buf,
	};

	return kvmq_ioctl(q, KVMQG_SEND, &s);
}

int kvmq_send_pages(struct kvmq *q, uint32_t dest, uint32_t queue,
		    uint32_t kind, const uint64_t *offsets, uint32_t nr,
		    uint32_t len, uint32_t flags)
{
	struct kvmqg_send s = {
		.size = sizeof(s),
		.flags = flags,
		.dest = dest,
		.queue = queue,
		.kind = kind,
		.nr = nr,
		.len = len,
		.data = (uintptr_t)offsets,
	};

	return kvmq_ioctl(q, KVMQG_SEND, &s);
}

int kvmq_recv(struct kvmq *q, uint32_t queue, struct kvmqg_recv *r,
	      void *buf, uint32_t buflen, uint32_t flags)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->flags = flags;
	r->queue = queue;
	r->data = (uintptr_t)buf;
	r->data_len = buflen;
	return kvmq_ioctl(q, KVMQG_RECV, r);
}

int kvmq_alloc(struct kvmq *q, uint32_t kind, uint32_t nr, uint64_t *offset)
{
	struct kvmqg_alloc a = { .size = sizeof(a), .kind = kind, .nr = nr };
	int ret = kvmq_ioctl(q, KVMQG_ALLOC, &a);

	if (!ret)
		*offset = a.offset;
	return ret;
}

int kvmq_release(struct kvmq *q, uint64_t offset, uint32_t nr_pages)
{
	struct kvmqg_release r = {
		.size = sizeof(r),
		.offset = offset,
		.nr = nr_pages,
	};

	return kvmq_ioctl(q, KVMQG_RELEASE, &r);
}

void *kvmq_map(struct kvmq *q)
{
	struct kvmqg_info info;
	void *p;
	int ret;

	if (q->map)
		return q->map;
	ret = kvmq_info(q, &info);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	p = mmap(NULL, info.aperture_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 q->fd, 0);
	if (p == MAP_FAILED)
		return NULL;
	q->map = p;
	q->map_len = info.aperture_len;
	return p;
}
