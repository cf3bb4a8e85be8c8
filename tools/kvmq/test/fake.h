/* SPDX-License-Identifier: GPL-2.0 */
/*
 * An in-memory stand-in for a kvmq guest device, behind the functions of
 * libkvmq.h: one VM, identity FAKE_ID, that sends to itself.  Pages move as
 * with kvmq: a send takes them out of the aperture (zeroed), a receive
 * places them in the first free range.
 */
#ifndef KVMQ_FAKE_H
#define KVMQ_FAKE_H

#include <stdint.h>

#define FAKE_ID		7
#define FAKE_QUEUES	4
#define FAKE_PAGES	16384		/* a 64 MiB aperture */

void fake_reset(void);
/* Pages the device's file holds now. */
uint32_t fake_held(void);
/* Messages waiting in @queue. */
uint32_t fake_queued(uint32_t queue);
/* Make the @n-th next kvmq_alloc() fail with -ENOBUFS (0: never). */
void fake_fail_alloc(uint32_t n);
/* Make the @n next sends fail with @err, changing nothing. */
void fake_refuse(uint32_t n, int err);
void fake_add_peer(const char *name, uint32_t id);

#endif
