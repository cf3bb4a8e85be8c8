/* SPDX-License-Identifier: GPL-2.0 */
/* For guest/kvmq_peers.h built in userspace. */
#include <string.h>
