/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libkvmq: the ioctls of a kvmq guest device (include/uapi/linux/kvmq_guest.h)
 * as functions.  Every function returns 0 or a negated errno value.
 */
#ifndef LIBKVMQ_H
#define LIBKVMQ_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvmq_guest.h>

#define KVMQ_PAGE_SIZE		4096U

struct kvmq {
	int fd;
	void *map;		/* the whole aperture, once kvmq_map() */
	uint64_t map_len;
};

int kvmq_open(struct kvmq *q, const char *path);
void kvmq_close(struct kvmq *q);

int kvmq_info(struct kvmq *q, struct kvmqg_info *info);
/* Up to @max entries into @peers; the table's size into *@count. */
int kvmq_peers(struct kvmq *q, struct kvmqg_peer *peers, uint32_t max,
	       uint32_t *count, uint32_t *ignored);
/* The identity of peer @name; -ENOENT if the table has no such name. */
int kvmq_lookup(struct kvmq *q, const char *name, uint32_t *id);
int kvmq_qlen(struct kvmq *q, uint32_t queue, uint32_t *len);

int kvmq_send_bytes(struct kvmq *q, uint32_t dest, uint32_t queue,
		    const void *buf, uint32_t len, uint32_t flags);
/* @nr pages or blocks (@kind) at aperture @offsets, @len payload bytes. */
int kvmq_send_pages(struct kvmq *q, uint32_t dest, uint32_t queue,
		    uint32_t kind, const uint64_t *offsets, uint32_t nr,
		    uint32_t len, uint32_t flags);
/* A bytes payload goes to @buf (@buflen bytes); the rest into *@r. */
int kvmq_recv(struct kvmq *q, uint32_t queue, struct kvmqg_recv *r,
	      void *buf, uint32_t buflen, uint32_t flags);
int kvmq_alloc(struct kvmq *q, uint32_t kind, uint32_t nr, uint64_t *offset);
int kvmq_release(struct kvmq *q, uint64_t offset, uint32_t nr_pages);

/* Map the whole aperture (once); NULL with errno set on failure. */
void *kvmq_map(struct kvmq *q);

/* Bytes of a page (KVMQ_MSG_PAGES) or a block (KVMQ_MSG_BLOCKS); else 0. */
static inline uint64_t kvmq_unit(uint32_t kind)
{
	switch (kind) {
	case KVMQ_MSG_PAGES:
		return KVMQ_PAGE_SIZE;
	case KVMQ_MSG_BLOCKS:
		return KVMQ_MSG_BLOCK_SIZE;
	default:
		return 0;
	}
}

/* 4 KiB pages of @nr units of @kind. */
static inline uint32_t kvmq_unit_pages(uint32_t kind, uint32_t nr)
{
	return (uint32_t)(kvmq_unit(kind) / KVMQ_PAGE_SIZE) * nr;
}

#endif /* LIBKVMQ_H */
