/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The command line of the kvmq CLI: parsing only, no I/O, so that it can be
 * unit-tested on any machine.
 */
#ifndef KVMQ_CLI_H
#define KVMQ_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvmq_guest.h>

enum kvmq_cmd {
	KVMQ_CMD_HELP,
	KVMQ_CMD_INFO,
	KVMQ_CMD_PEERS,
	KVMQ_CMD_STAT,
	KVMQ_CMD_SEND,
	KVMQ_CMD_RECV,
	KVMQ_CMD_FORWARD,
};

#define KVMQ_CLI_DEVICE		"/dev/kvmq0"
#define KVMQ_CLI_QUEUE_DEFAULT	1
#define KVMQ_CLI_PAGES_DEFAULT	KVMQ_MSG_PAGES_MAX	/* per message */
#define KVMQ_CLI_BLOCKS_DEFAULT	1			/* per message */
#define KVMQ_CLI_RETRY_MAX	86400U			/* seconds */

struct kvmq_cli {
	enum kvmq_cmd cmd;
	const char *device;
	/* send */
	uint32_t kind;			/* KVMQ_MSG_* */
	uint32_t per_msg;		/* pages or blocks per message */
	char target[KVMQG_PEER_NAME_LEN];	/* a peer's name or an identity */
	const char *in;			/* "-": standard input */
	uint64_t retry_ms;		/* --retry: a refused send again */
	/* send: the destination queue; recv: the queue */
	uint32_t queue;
	/* recv */
	const char *out;		/* "-": standard output */
	uint64_t count;			/* messages at most; 0: no limit */
	/* forward: from queue @queue to @target's @dest_queue */
	uint32_t dest_queue;
	int32_t gain_num, gain_den;	/* 16-bit samples times num/den */
	uint64_t skip;			/* bytes of the stream left as they are */
	int uring;			/* send through io_uring */
};

/* A decimal number, without sign or trailing characters. */
int kvmq_parse_u32(const char *s, uint32_t *v);
int kvmq_parse_u64(const char *s, uint64_t *v);
/* NAME_OR_ID[:QUEUE] into @name (KVMQG_PEER_NAME_LEN) and *@queue. */
int kvmq_parse_target(const char *s, char *name, uint32_t *queue);
/* The identity @name stands for: a peer of that name, else a number. */
int kvmq_target_id(const char *name, const struct kvmqg_peer *peers,
		   uint32_t count, uint32_t *id);
/* "NUM/DEN", both 1 to 65536, into *@num and *@den. */
int kvmq_parse_gain(const char *s, int32_t *num, int32_t *den);
/* 0, or -EINVAL with a message in @err. */
int kvmq_cli_parse(int argc, char *const argv[], struct kvmq_cli *c,
		   char *err, size_t errlen);

#endif /* KVMQ_CLI_H */
