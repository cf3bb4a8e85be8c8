// SPDX-License-Identifier: GPL-2.0
/*
 * An in-memory stand-in for a kvmq guest device (see fake.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "libkvmq.h"

struct fake_msg {
	struct fake_msg *next;
	uint32_t queue, kind, nr, len;
	uint8_t data[KVMQ_MSG_BYTES_MAX];
	uint8_t *pages;
};

static uint8_t *fake_ap;
static uint8_t fake_owned[FAKE_PAGES];
static struct fake_msg *fake_head[FAKE_QUEUES], **fake_tail[FAKE_QUEUES];
static struct kvmqg_peer fake_peer_table[KVMQG_PEERS_MAX];
static uint32_t fake_nr_peers, fake_alloc_countdown, fake_refusals;
static int fake_refuse_err;

void fake_reset(void)
{
	struct fake_msg *m;
	uint32_t q;

	if (!fake_ap)
		fake_ap = aligned_alloc(KVMQ_MSG_BLOCK_SIZE,
					(size_t)FAKE_PAGES * KVMQ_PAGE_SIZE);
	memset(fake_ap, 0, (size_t)FAKE_PAGES * KVMQ_PAGE_SIZE);
	memset(fake_owned, 0, sizeof(fake_owned));
	for (q = 0; q < FAKE_QUEUES; q++) {
		while ((m = fake_head[q])) {
			fake_head[q] = m->next;
			free(m->pages);
			free(m);
		}
		fake_tail[q] = &fake_head[q];
	}
	fake_nr_peers = 0;
	fake_alloc_countdown = 0;
	fake_refusals = 0;
}

uint32_t fake_held(void)
{
	uint32_t i, n = 0;

	for (i = 0; i < FAKE_PAGES; i++)
		n += fake_owned[i];
	return n;
}

uint32_t fake_queued(uint32_t queue)
{
	struct fake_msg *m;
	uint32_t n = 0;

	for (m = fake_head[queue]; m; m = m->next)
		n++;
	return n;
}

void fake_fail_alloc(uint32_t n)
{
	fake_alloc_countdown = n;
}

void fake_refuse(uint32_t n, int err)
{
	fake_refusals = n;
	fake_refuse_err = err;
}

/* A refusal fake_refuse() asked for, or 0. */
static int fake_refused(void)
{
	if (!fake_refusals)
		return 0;
	fake_refusals--;
	return fake_refuse_err;
}

void fake_add_peer(const char *name, uint32_t id)
{
	struct kvmqg_peer *p = &fake_peer_table[fake_nr_peers++];

	memset(p, 0, sizeof(*p));
	strncpy(p->name, name, sizeof(p->name) - 1);
	p->id = id;
}

int kvmq_open(struct kvmq *q, const char *path)
{
	(void)path;
	memset(q, 0, sizeof(*q));
	q->fd = -1;
	if (!fake_ap)
		fake_reset();
	return 0;
}

void kvmq_close(struct kvmq *q)
{
	uint32_t i;

	/* As the driver does on close. */
	for (i = 0; i < FAKE_PAGES; i++)
		if (fake_owned[i])
			kvmq_release(q, (uint64_t)i * KVMQ_PAGE_SIZE, 1);
	q->map = NULL;
}

int kvmq_info(struct kvmq *q, struct kvmqg_info *info)
{
	(void)q;
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->identity = FAKE_ID;
	info->abi_version = KVMQ_ABI_VERSION;
	info->nr_queues = FAKE_QUEUES;
	info->depth = 64;
	info->aperture_len = (uint64_t)FAKE_PAGES * KVMQ_PAGE_SIZE;
	info->quota = info->aperture_len;
	info->held = (uint64_t)fake_held() * KVMQ_PAGE_SIZE;
	return 0;
}

int kvmq_peers(struct kvmq *q, struct kvmqg_peer *peers, uint32_t max,
	       uint32_t *count, uint32_t *ignored)
{
	(void)q;
	memcpy(peers, fake_peer_table,
	       (max < fake_nr_peers ? max : fake_nr_peers) * sizeof(*peers));
	if (count)
		*count = fake_nr_peers;
	if (ignored)
		*ignored = 0;
	return 0;
}

int kvmq_lookup(struct kvmq *q, const char *name, uint32_t *id)
{
	uint32_t i;

	(void)q;
	for (i = 0; i < fake_nr_peers; i++) {
		if (!strcmp(fake_peer_table[i].name, name)) {
			*id = fake_peer_table[i].id;
			return 0;
		}
	}
	return -ENOENT;
}

int kvmq_qlen(struct kvmq *q, uint32_t queue, uint32_t *len)
{
	(void)q;
	if (queue >= FAKE_QUEUES)
		return -EINVAL;
	*len = fake_queued(queue);
	return 0;
}

static int fake_enqueue(uint32_t dest, uint32_t queue, struct fake_msg *m)
{
	if (dest != FAKE_ID || queue >= FAKE_QUEUES) {
		free(m->pages);
		free(m);
		return -ENOENT;
	}
	m->queue = queue;
	*fake_tail[queue] = m;
	fake_tail[queue] = &m->next;
	return 0;
}

int kvmq_send_bytes(struct kvmq *q, uint32_t dest, uint32_t queue,
		    const void *buf, uint32_t len, uint32_t flags)
{
	struct fake_msg *m;

	(void)q;
	if (flags & ~KVMQG_F_NONBLOCK)
		return -EOPNOTSUPP;
	if (len > KVMQ_MSG_BYTES_MAX)
		return -E2BIG;
	if (fake_refused())
		return fake_refuse_err;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->kind = KVMQ_MSG_BYTES;
	m->len = len;
	if (len)
		memcpy(m->data, buf, len);
	return fake_enqueue(dest, queue, m);
}

static int fake_owns(uint64_t offset, uint32_t pages)
{
	uint64_t first = offset / KVMQ_PAGE_SIZE, i;

	if (offset % KVMQ_PAGE_SIZE || first + pages > FAKE_PAGES)
		return 0;
	for (i = first; i < first + pages; i++)
		if (!fake_owned[i])
			return 0;
	return 1;
}

int kvmq_send_pages(struct kvmq *q, uint32_t dest, uint32_t queue,
		    uint32_t kind, const uint64_t *offsets, uint32_t nr,
		    uint32_t len, uint32_t flags)
{
	uint64_t unit = kvmq_unit(kind);
	uint32_t upages = kvmq_unit_pages(kind, 1), i, j;
	struct fake_msg *m;

	(void)q;
	if (flags & ~KVMQG_F_NONBLOCK)
		return -EOPNOTSUPP;
	if (!unit || !nr || len > nr * unit)
		return -EINVAL;
	if (nr > (kind == KVMQ_MSG_PAGES ? KVMQ_MSG_PAGES_MAX :
		  KVMQ_MSG_BLOCKS_MAX))
		return -E2BIG;
	for (i = 0; i < nr; i++) {
		if (offsets[i] % unit || !fake_owns(offsets[i], upages))
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (offsets[j] == offsets[i])
				return -EINVAL;
	}
	if (fake_refused())
		return fake_refuse_err;
	/* As kvmq: a refused send leaves the pages with the sender. */
	if (dest != FAKE_ID || queue >= FAKE_QUEUES)
		return -ENOENT;
	m = calloc(1, sizeof(*m));
	if (m)
		m->pages = malloc(nr * unit);
	if (!m || !m->pages) {
		free(m);
		return -ENOMEM;
	}
	m->kind = kind;
	m->nr = nr;
	m->len = len;
	for (i = 0; i < nr; i++) {
		memcpy(m->pages + i * unit, fake_ap + offsets[i], unit);
		memset(fake_ap + offsets[i], 0, unit);
		memset(&fake_owned[offsets[i] / KVMQ_PAGE_SIZE], 0, upages);
	}
	return fake_enqueue(dest, queue, m);
}

/* First free run of @pages pages, aligned to @align pages. */
static int64_t fake_find(uint32_t pages, uint32_t align)
{
	uint32_t first, i;

	for (first = 0; first + pages <= FAKE_PAGES; first += align) {
		for (i = 0; i < pages; i++)
			if (fake_owned[first + i])
				break;
		if (i == pages)
			return first;
	}
	return -1;
}

int kvmq_recv(struct kvmq *q, uint32_t queue, struct kvmqg_recv *r,
	      void *buf, uint32_t buflen, uint32_t flags)
{
	struct fake_msg *m;
	uint32_t pages;
	int64_t first;

	(void)q;
	(void)flags;
	memset(r, 0, sizeof(*r));
	if (!queue || queue >= FAKE_QUEUES)
		return -EINVAL;
	m = fake_head[queue];
	if (!m)
		return -EAGAIN;	/* the fake never blocks */
	r->kind = m->kind;
	r->sender = FAKE_ID;
	r->nr = m->nr;
	r->len = m->len;
	if (m->kind == KVMQ_MSG_BYTES) {
		memcpy(buf, m->data, m->len < buflen ? m->len : buflen);
	} else {
		pages = kvmq_unit_pages(m->kind, m->nr);
		first = fake_find(pages, kvmq_unit_pages(m->kind, 1));
		if (first < 0)
			return -ENOSPC;
		memcpy(fake_ap + first * KVMQ_PAGE_SIZE, m->pages,
		       (size_t)pages * KVMQ_PAGE_SIZE);
		memset(&fake_owned[first], 1, pages);
		r->offset = (uint64_t)first * KVMQ_PAGE_SIZE;
	}
	fake_head[queue] = m->next;
	if (!m->next)
		fake_tail[queue] = &fake_head[queue];
	free(m->pages);
	free(m);
	return 0;
}

int kvmq_alloc(struct kvmq *q, uint32_t kind, uint32_t nr, uint64_t *offset)
{
	uint32_t pages = kvmq_unit_pages(kind, nr);
	int64_t first;

	(void)q;
	if (!pages)
		return -EINVAL;
	if (fake_alloc_countdown && !--fake_alloc_countdown)
		return -ENOBUFS;
	first = fake_find(pages, kvmq_unit_pages(kind, 1));
	if (first < 0)
		return -ENOSPC;
	memset(&fake_owned[first], 1, pages);
	*offset = (uint64_t)first * KVMQ_PAGE_SIZE;
	return 0;
}

int kvmq_release(struct kvmq *q, uint64_t offset, uint32_t nr_pages)
{
	(void)q;
	if (!nr_pages || !fake_owns(offset, nr_pages))
		return -EINVAL;
	memset(fake_ap + offset, 0, (size_t)nr_pages * KVMQ_PAGE_SIZE);
	memset(&fake_owned[offset / KVMQ_PAGE_SIZE], 0, nr_pages);
	return 0;
}

void *kvmq_map(struct kvmq *q)
{
	q->map = fake_ap;
	q->map_len = (uint64_t)FAKE_PAGES * KVMQ_PAGE_SIZE;
	return fake_ap;
}
