// SPDX-License-Identifier: GPL-2.0
/*
 * kvmq: the command line of a kvmq guest (Documentation/guest.rst).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "libkvmq.h"
#include "uring.h"
#include "xfer.h"

static const char kvmq_usage[] =
"usage: kvmq [-d DEVICE] COMMAND [ARGS]\n"
"  info                         the device and the VM\n"
"  peers                        the peer table: NAME ID per line\n"
"  stat                         info, peers and queue lengths\n"
"  send [--bytes|--pages|--blocks] [-n NR] [--retry SECONDS]\n"
"       NAME_OR_ID[:QUEUE] FILE|-\n"
"                               send a file (queue 1 by default), then an\n"
"                               empty message; NR pages (256) or blocks (1)\n"
"                               per message; a message the destination\n"
"                               refuses while it is away (ENOENT, EACCES)\n"
"                               is sent again for up to SECONDS\n"
"  recv [-q QUEUE] [-o FILE|-] [--count N]\n"
"                               receive until the empty message (or N\n"
"                               messages) and write the payloads\n"
"  forward [-q QUEUE] [--gain NUM/DEN] [--skip BYTES] [--uring]\n"
"          NAME_OR_ID[:QUEUE]   receive until the empty message and send\n"
"                               each message on, its 16-bit samples (after\n"
"                               BYTES of header) times NUM/DEN, clipped;\n"
"                               pages move on in place; --uring: send in\n"
"                               batches through io_uring, lazily\n"
"DEVICE defaults to " KVMQ_CLI_DEVICE ".\n";

static int kvmq_err(const char *what, int ret)
{
	fprintf(stderr, "kvmq: %s: %s\n", what, strerror(-ret));
	return 1;
}

static int cmd_info(struct kvmq *q, const char *device)
{
	struct kvmqg_info info;
	int ret = kvmq_info(q, &info);

	if (ret)
		return kvmq_err("info", ret);
	printf("device: %s\n", device);
	printf("identity: %" PRIu32 "\n", info.identity);
	printf("abi: %" PRIu32 "\n", info.abi_version);
	printf("features: %#" PRIx64 "\n", (uint64_t)info.features);
	printf("queues: %" PRIu32 "\n", info.nr_queues);
	printf("depth: %" PRIu32 "\n", info.depth);
	printf("aperture: %" PRIu64 "\n", (uint64_t)info.aperture_len);
	printf("quota: %" PRIu64 "\n", (uint64_t)info.quota);
	printf("held: %" PRIu64 "\n", (uint64_t)info.held);
	return 0;
}

static int cmd_peers(struct kvmq *q, int stat)
{
	struct kvmqg_peer peers[KVMQG_PEERS_MAX];
	uint32_t count, ignored, i;
	int ret;

	ret = kvmq_peers(q, peers, KVMQG_PEERS_MAX, &count, &ignored);
	if (ret)
		return kvmq_err("peers", ret);
	if (stat)
		printf("peers: %" PRIu32 " (lines ignored: %" PRIu32 ")\n",
		       count, ignored);
	for (i = 0; i < count && i < KVMQG_PEERS_MAX; i++)
		printf("%s%s %" PRIu32 "\n", stat ? "  " : "", peers[i].name,
		       peers[i].id);
	return 0;
}

static int cmd_stat(struct kvmq *q, const char *device)
{
	struct kvmqg_info info;
	uint32_t i, len;
	int ret;

	if (cmd_info(q, device) || cmd_peers(q, 1))
		return 1;
	ret = kvmq_info(q, &info);
	if (ret)
		return kvmq_err("info", ret);
	for (i = 0; i < info.nr_queues; i++) {
		ret = kvmq_qlen(q, i, &len);
		if (ret)
			return kvmq_err("qlen", ret);
		printf("queue %" PRIu32 ": %" PRIu32 "%s\n", i, len,
		       i ? "" : " (control)");
	}
	return 0;
}

/* The identity @target names (a peer, else a number); 0 or an exit status. */
static int cmd_target(struct kvmq *q, const char *cmd, const char *target,
		      uint32_t *dest)
{
	struct kvmqg_peer peers[KVMQG_PEERS_MAX];
	uint32_t count;
	int ret;

	ret = kvmq_peers(q, peers, KVMQG_PEERS_MAX, &count, NULL);
	if (ret)
		return kvmq_err("peers", ret);
	if (count > KVMQG_PEERS_MAX)
		count = KVMQG_PEERS_MAX;
	if (kvmq_target_id(target, peers, count, dest)) {
		fprintf(stderr, "kvmq: %s: no peer '%s'\n", cmd, target);
		return 1;
	}
	return 0;
}

static int cmd_send(struct kvmq *q, const struct kvmq_cli *c)
{
	struct kvmq_xfer x;
	uint32_t dest;
	int fd = 0, ret;

	ret = cmd_target(q, "send", c->target, &dest);
	if (ret)
		return ret;
	if (strcmp(c->in, "-")) {
		fd = open(c->in, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return kvmq_err(c->in, -errno);
	}
	ret = kvmq_send_stream_retry(q, fd, dest, c->queue, c->kind,
				     c->per_msg, c->retry_ms, &x);
	if (fd)
		close(fd);
	if (x.refused)
		fprintf(stderr,
			"kvmq: send: %" PRIu64 " refused (last: %s), sent again\n",
			x.refused, strerror(-x.refused_err));
	if (ret)
		return kvmq_err(x.what, ret);
	return 0;
}

static int usend(void *ctx, uint32_t kind, uint64_t offset, uint32_t nr,
		 const void *buf, uint32_t len)
{
	return kvmq_usender_send(ctx, kind, offset, nr, buf, len);
}

static int uflush(void *ctx)
{
	return kvmq_usender_flush(ctx);
}

static int cmd_forward(struct kvmq *q, const struct kvmq_cli *c)
{
	struct kvmq_usender u;
	struct kvmq_sender snd = {
		.send = usend,
		.flush = uflush,
		.ctx = &u,
	};
	struct kvmq_xfer x;
	uint32_t dest;
	int ret;

	ret = cmd_target(q, "forward", c->target, &dest);
	if (ret)
		return ret;
	if (c->uring) {
		ret = kvmq_usender_init(&u, q, dest, c->dest_queue);
		if (ret)
			return kvmq_err("io_uring", ret);
	}
	ret = kvmq_forward_stream(q, c->queue, dest, c->dest_queue,
				  c->gain_num, c->gain_den, c->skip,
				  c->uring ? &snd : NULL, &x);
	if (c->uring) {
		fprintf(stderr, "kvmq: io_uring: %" PRIu64 " sends, %" PRIu64
			" refused and resent, %" PRIu64 " cancelled and resent\n",
			u.submitted, u.refused, u.cancelled);
		kvmq_usender_exit(&u);
	}
	if (ret)
		return kvmq_err(x.what, ret);
	fprintf(stderr, "kvmq: forwarded %" PRIu64 " messages, %" PRIu64
		" bytes\n", x.msgs, x.bytes);
	return 0;
}

static int cmd_recv(struct kvmq *q, const struct kvmq_cli *c)
{
	struct kvmq_xfer x;
	int fd = 1, ret;

	if (strcmp(c->out, "-")) {
		fd = open(c->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0644);
		if (fd < 0)
			return kvmq_err(c->out, -errno);
	}
	ret = kvmq_recv_stream(q, fd, c->queue, c->count, &x);
	if (fd != 1 && close(fd) && !ret) {
		x.what = c->out;
		ret = -errno;
	}
	if (ret)
		return kvmq_err(x.what, ret);
	return 0;
}

int main(int argc, char *argv[])
{
	struct kvmq_cli c;
	struct kvmq q;
	char err[160];
	int ret;

	if (kvmq_cli_parse(argc, argv, &c, err, sizeof(err))) {
		fprintf(stderr, "kvmq: %s\n%s", err, kvmq_usage);
		return 2;
	}
	if (c.cmd == KVMQ_CMD_HELP) {
		fputs(kvmq_usage, stdout);
		return 0;
	}
	ret = kvmq_open(&q, c.device);
	if (ret)
		return kvmq_err(c.device, ret);

	switch (c.cmd) {
	case KVMQ_CMD_INFO:
		ret = cmd_info(&q, c.device);
		break;
	case KVMQ_CMD_PEERS:
		ret = cmd_peers(&q, 0);
		break;
	case KVMQ_CMD_STAT:
		ret = cmd_stat(&q, c.device);
		break;
	case KVMQ_CMD_SEND:
		ret = cmd_send(&q, &c);
		break;
	case KVMQ_CMD_RECV:
		ret = cmd_recv(&q, &c);
		break;
	case KVMQ_CMD_FORWARD:
		ret = cmd_forward(&q, &c);
		break;
	default:
		ret = 2;
		break;
	}
	kvmq_close(&q);
	if (fflush(stdout) && !ret)
		ret = kvmq_err("stdout", -errno);
	return ret;
}
