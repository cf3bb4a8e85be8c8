/* SPDX-License-Identifier: GPL-2.0 */
/* The kernel's type names, for guest/kvmq_peers.h built in userspace. */
#ifndef KVMQ_TEST_SHIM_TYPES_H
#define KVMQ_TEST_SHIM_TYPES_H

#include_next <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#endif
