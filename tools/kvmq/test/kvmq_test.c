// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the kvmq CLI and of the driver's peer parser, on the build
 * machine: the command line, the peer lines (guest/kvmq_peers.h, the very
 * code the driver runs), and files sent and received through an in-memory
 * stand-in of the device (fake_kvmq.c).  TAP output; exit status 1 on
 * failure.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fake.h"
#include "kvmq_peers.h"
#include "xfer.h"

static int tests, failures;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	tests++;
	if (!ok)
		failures++;
	printf("%s %d - ", ok ? "ok" : "not ok", tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* Peers. */

static struct kvmq_peer_table table;

static void apply(const char *text)
{
	kvmq_peers_apply(&table, text, strlen(text));
}

static int has_peer(const char *name, uint32_t id)
{
	int i = kvmq_peer_find(&table, name, strlen(name));

	return i >= 0 && table.peers[i].id == id;
}

static void test_peers(void)
{
	static const char *const bad[] = {
		"peer", "peer a", "peer a 1 2", "peer a 0", "peer a -1",
		"peer a +1", "peer a 4294967296", "peer a 1x", "peer a 0x10",
		"peer a/b 1", "peer a:b 1", "peer \xc3\xa9 1",
		"peer abcdefghijklmnopqrstuvwxyz012345 1", "Peer a 1",
		"peers a 1", "unpeer", "unpeer a b", "unpeer a/b", "hello",
	};
	char buf[4096], name[40];
	size_t i;
	int n;

	memset(&table, 0, sizeof(table));
	apply("peer decode 3\npeer play 4\n");
	check(table.count == 2 && has_peer("decode", 3) && has_peer("play", 4),
	      "peers: two lines");
	check(!strcmp(table.peers[0].name, "decode") &&
	      !strcmp(table.peers[1].name, "play"), "peers: in order");
	apply("peer decode 9\n");
	check(table.count == 2 && has_peer("decode", 9),
	      "peers: a later line replaces");
	apply("unpeer decode\n");
	check(table.count == 1 && !has_peer("decode", 9) &&
	      !strcmp(table.peers[0].name, "play") && !table.peers[1].name[0],
	      "peers: unpeer shifts the rest down");
	apply("unpeer nobody\n\n   \n");
	check(table.count == 1 && !table.ignored,
	      "peers: unpeer of an unknown name, blank lines: not ignored");
	apply("peer last 5");
	check(has_peer("last", 5), "peers: last line without newline");
	apply("peer\tcr.l-f_1   6\r\n");
	check(has_peer("cr.l-f_1", 6), "peers: tabs, spaces, CRLF");
	apply("peer max 4294967295\npeer lead 007\n");
	check(has_peer("max", 4294967295U) && has_peer("lead", 7),
	      "peers: largest id, leading zeros");
	kvmq_peers_apply(&table, "peer nul 8\n\0peer after 9\n", 24);
	check(has_peer("nul", 8) && kvmq_peer_find(&table, "after", 5) < 0,
	      "peers: the text ends at a NUL");

	n = snprintf(name, sizeof(name), "%031d", 1);
	apply("peer 0000000000000000000000000000001 11\n");
	check(n == 31 && has_peer(name, 11), "peers: a 31-character name");
	check(!table.ignored, "peers: nothing ignored so far");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t before = table.ignored, count = table.count;

		apply(bad[i]);
		check(table.ignored == before + 1 && table.count == count,
		      "peers: ignored: '%s'", bad[i]);
	}
	apply("junk\npeer good 12\nmore junk\n");
	check(has_peer("good", 12), "peers: good line among bad ones");

	memset(&table, 0, sizeof(table));
	for (i = 0; i < KVMQG_PEERS_MAX; i++) {
		snprintf(buf, sizeof(buf), "peer p%zu %zu\n", i, i + 1);
		apply(buf);
	}
	check(table.count == KVMQG_PEERS_MAX && !table.ignored,
	      "peers: %d peers fit", KVMQG_PEERS_MAX);
	apply("peer onemore 100\n");
	check(table.count == KVMQG_PEERS_MAX && table.ignored == 1 &&
	      kvmq_peer_find(&table, "onemore", 7) < 0,
	      "peers: a new name in a full table is ignored");
	apply("peer p5 500\n");
	check(has_peer("p5", 500) && table.ignored == 1,
	      "peers: a full table still takes replacements");
	apply("unpeer p0\npeer onemore 100\n");
	check(has_peer("onemore", 100) && table.count == KVMQG_PEERS_MAX &&
	      !strcmp(table.peers[0].name, "p1"),
	      "peers: room again after unpeer");
}

/* Numbers and targets. */

static void test_numbers(void)
{
	char name[KVMQG_PEER_NAME_LEN];
	struct kvmqg_peer peers[2] = {
		{ .name = "decode", .id = 3 }, { .name = "42", .id = 9 },
	};
	uint32_t v, queue;
	uint64_t w;

	check(!kvmq_parse_u32("0", &v) && v == 0, "u32: 0");
	check(!kvmq_parse_u32("4294967295", &v) && v == 4294967295U,
	      "u32: max");
	check(kvmq_parse_u32("4294967296", &v) == -ERANGE, "u32: overflow");
	check(kvmq_parse_u32("", &v) == -EINVAL, "u32: empty");
	check(kvmq_parse_u32("-1", &v) == -EINVAL, "u32: sign");
	check(kvmq_parse_u32("+1", &v) == -EINVAL, "u32: plus");
	check(kvmq_parse_u32("1a", &v) == -EINVAL, "u32: trailing junk");
	check(kvmq_parse_u32(" 1", &v) == -EINVAL, "u32: space");
	check(!kvmq_parse_u64("18446744073709551615", &w) && w == UINT64_MAX,
	      "u64: max");
	check(kvmq_parse_u64("18446744073709551616", &w) == -ERANGE,
	      "u64: overflow");

	check(!kvmq_parse_target("decode", name, &queue) &&
	      !strcmp(name, "decode") && queue == 1, "target: default queue");
	check(!kvmq_parse_target("12:0", name, &queue) && !strcmp(name, "12") &&
	      queue == 0, "target: id and queue");
	check(!kvmq_parse_target("a.b-c_d:65537", name, &queue) &&
	      queue == 65537, "target: vCPU queue number");
	check(kvmq_parse_target(":3", name, &queue) == -EINVAL,
	      "target: no name");
	check(kvmq_parse_target("x:", name, &queue) == -EINVAL,
	      "target: no queue after ':'");
	check(kvmq_parse_target("x:q", name, &queue) == -EINVAL,
	      "target: bad queue");
	check(kvmq_parse_target("a:b:2", name, &queue) == -EINVAL,
	      "target: ':' in the name");
	check(kvmq_parse_target("0123456789012345678901234567890", name,
				&queue) == 0, "target: 31 characters");
	check(kvmq_parse_target("01234567890123456789012345678901", name,
				&queue) == -EINVAL, "target: 32 characters");

	check(!kvmq_target_id("decode", peers, 2, &v) && v == 3,
	      "target id: a peer");
	check(!kvmq_target_id("42", peers, 2, &v) && v == 9,
	      "target id: a peer's name wins over a number");
	check(!kvmq_target_id("17", peers, 2, &v) && v == 17,
	      "target id: a number");
	check(kvmq_target_id("play", peers, 2, &v) == -ENOENT,
	      "target id: unknown name");
}

/* The command line. */

static int parse(struct kvmq_cli *c, ...)
{
	char *argv[16], err[160];
	int argc = 0;
	va_list ap;

	argv[argc++] = "kvmq";
	va_start(ap, c);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return kvmq_cli_parse(argc, argv, c, err, sizeof(err));
}

static void test_cli(void)
{
	struct kvmq_cli c;

	check(!parse(&c, "info", NULL) && c.cmd == KVMQ_CMD_INFO &&
	      !strcmp(c.device, "/dev/kvmq0"), "cli: info");
	check(!parse(&c, "info", "-d", "/dev/kvmq1", NULL) &&
	      !strcmp(c.device, "/dev/kvmq1"), "cli: info -d");
	check(!parse(&c, "-d", "/dev/kvmq2", "peers", NULL) &&
	      c.cmd == KVMQ_CMD_PEERS && !strcmp(c.device, "/dev/kvmq2"),
	      "cli: -d before the command");
	check(!parse(&c, "stat", "--device=/dev/x", NULL) &&
	      c.cmd == KVMQ_CMD_STAT && !strcmp(c.device, "/dev/x"),
	      "cli: --device=");
	check(!parse(&c, "send", "decode", "f", NULL) &&
	      c.cmd == KVMQ_CMD_SEND && c.kind == KVMQ_MSG_BYTES &&
	      !strcmp(c.target, "decode") && c.queue == 1 &&
	      !strcmp(c.in, "f"), "cli: send, bytes by default");
	check(!parse(&c, "send", "--pages", "3:2", "-", NULL) &&
	      c.kind == KVMQ_MSG_PAGES && c.per_msg == 256 && c.queue == 2 &&
	      !strcmp(c.target, "3") && !strcmp(c.in, "-"),
	      "cli: send --pages, stdin");
	check(!parse(&c, "send", "--blocks", "x", "f", NULL) &&
	      c.kind == KVMQ_MSG_BLOCKS && c.per_msg == 1,
	      "cli: send --blocks");
	check(!parse(&c, "send", "--blocks", "-n", "8", "x", "f", NULL) &&
	      c.per_msg == 8, "cli: send --blocks -n 8");
	check(parse(&c, "send", "--blocks", "-n", "9", "x", "f", NULL) ==
	      -EINVAL, "cli: 9 blocks per message");
	check(!parse(&c, "send", "--pages", "--nr=1", "x", "f", NULL) &&
	      c.per_msg == 1, "cli: --nr=1");
	check(parse(&c, "send", "--pages", "--nr=0", "x", "f", NULL) == -EINVAL,
	      "cli: --nr=0");
	check(parse(&c, "send", "-n", "2", "x", "f", NULL) == -EINVAL,
	      "cli: -n with bytes");
	check(!parse(&c, "send", "--pages", "--bytes", "x", "f", NULL) &&
	      c.kind == KVMQ_MSG_BYTES, "cli: the last kind wins");
	check(!parse(&c, "send", "x", "--", "-f", NULL) && !strcmp(c.in, "-f"),
	      "cli: -- ends the options");
	check(!parse(&c, "send", "--blocks", "--retry", "30", "x", "f", NULL) &&
	      c.retry_ms == 30000, "cli: send --retry 30");
	check(!parse(&c, "send", "x", "f", NULL) && !c.retry_ms,
	      "cli: no retry by default");
	check(parse(&c, "send", "--retry=86401", "x", "f", NULL) == -EINVAL &&
	      parse(&c, "send", "--retry=1s", "x", "f", NULL) == -EINVAL,
	      "cli: --retry out of range");
	check(parse(&c, "recv", "--retry", "1", NULL) == -EINVAL,
	      "cli: --retry with recv");
	check(parse(&c, "send", "x", NULL) == -EINVAL, "cli: send without file");
	check(parse(&c, "send", "x", "f", "g", NULL) == -EINVAL,
	      "cli: send with two files");
	check(parse(&c, "send", "a/b", "f", NULL) == -EINVAL,
	      "cli: send to a bad name");
	check(!parse(&c, "recv", NULL) && c.cmd == KVMQ_CMD_RECV &&
	      c.queue == 1 && !strcmp(c.out, "-") && !c.count,
	      "cli: recv defaults");
	check(!parse(&c, "recv", "-q", "3", "-o", "out", "--count", "5",
		     NULL) && c.queue == 3 && !strcmp(c.out, "out") &&
	      c.count == 5, "cli: recv -q -o --count");
	check(!parse(&c, "recv", "--count=2", "--queue=2", "--output=-",
		     NULL) && c.count == 2 && c.queue == 2,
	      "cli: recv long options with =");
	check(parse(&c, "recv", "-q", "0", NULL) == -EINVAL,
	      "cli: recv from the control queue");
	check(parse(&c, "recv", "--count", "0", NULL) == -EINVAL,
	      "cli: --count 0");
	check(parse(&c, "recv", "-q", NULL) == -EINVAL, "cli: -q without value");
	check(parse(&c, "recv", "x", NULL) == -EINVAL, "cli: recv with argument");
	check(parse(&c, "info", "--pages", NULL) == -EINVAL,
	      "cli: send option with info");
	check(parse(&c, "send", "-q", "2", "x", "f", NULL) == -EINVAL,
	      "cli: recv option with send");
	check(parse(&c, "peers", "x", NULL) == -EINVAL,
	      "cli: peers with argument");
	check(parse(&c, "bogus", NULL) == -EINVAL, "cli: unknown command");
	check(parse(&c, "info", "--bogus", NULL) == -EINVAL,
	      "cli: unknown option");
	check(parse(&c, NULL) == -EINVAL, "cli: no command");
	check(!parse(&c, "-h", NULL) && c.cmd == KVMQ_CMD_HELP, "cli: -h");
	check(!parse(&c, "send", "--help", NULL) && c.cmd == KVMQ_CMD_HELP,
	      "cli: send --help");
}

/* Files through the stand-in. */

static int tmpfile_with(const void *data, size_t len)
{
	char path[] = "/tmp/kvmq_test.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int same_content(int fd, const uint8_t *data, size_t len)
{
	uint8_t *got = malloc(len + 1);
	ssize_t n;
	int ok;

	if (!got)
		return 0;
	lseek(fd, 0, SEEK_SET);
	n = read(fd, got, len + 1);
	ok = n == (ssize_t)len && !memcmp(got, data, len);
	free(got);
	return ok;
}

static void roundtrip(uint32_t kind, uint32_t per_msg, size_t len,
		      uint64_t msgs)
{
	static const char *const kinds[] = { "", "bytes", "pages", "blocks" };
	struct kvmq_xfer sx, rx;
	int in, out, sret, rret;
	uint8_t *data;
	struct kvmq q;
	size_t i;

	data = malloc(len + 1);
	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 7 + i / 4096 + 1);
	in = tmpfile_with(data, len);
	out = tmpfile_with(NULL, 0);
	fake_reset();
	kvmq_open(&q, "fake");
	sret = kvmq_send_stream(&q, in, FAKE_ID, 2, kind, per_msg, &sx);
	rret = kvmq_recv_stream(&q, out, 2, 0, &rx);
	check(!sret && !rret && rx.end && sx.msgs == msgs &&
	      rx.msgs == msgs && sx.bytes == len && rx.bytes == len &&
	      same_content(out, data, len) && !fake_held() &&
	      !fake_queued(2),
	      "xfer: %s, %u per message, %zu bytes: %llu messages", kinds[kind],
	      per_msg, len, (unsigned long long)msgs);
	kvmq_close(&q);
	close(in);
	close(out);
	free(data);
}

static void test_xfer(void)
{
	const size_t mib = 1 << 20;
	struct kvmq_xfer x;
	struct kvmq q;
	int in, out, ret;
	char small[5000];

	roundtrip(KVMQ_MSG_BYTES, 0, 0, 0);
	roundtrip(KVMQ_MSG_BYTES, 0, 1, 1);
	roundtrip(KVMQ_MSG_BYTES, 0, 2048, 1);
	roundtrip(KVMQ_MSG_BYTES, 0, 2049, 2);
	roundtrip(KVMQ_MSG_BYTES, 0, 10000, 5);
	roundtrip(KVMQ_MSG_PAGES, 256, 0, 0);
	roundtrip(KVMQ_MSG_PAGES, 256, 1, 1);
	roundtrip(KVMQ_MSG_PAGES, 256, 4096, 1);
	roundtrip(KVMQ_MSG_PAGES, 256, mib, 1);
	roundtrip(KVMQ_MSG_PAGES, 256, mib + 1, 2);
	roundtrip(KVMQ_MSG_PAGES, 256, 3 * mib + 123, 4);
	roundtrip(KVMQ_MSG_PAGES, 3, 5 * 4096 - 1, 2);
	roundtrip(KVMQ_MSG_BLOCKS, 1, 0, 0);
	roundtrip(KVMQ_MSG_BLOCKS, 1, 5, 1);
	roundtrip(KVMQ_MSG_BLOCKS, 1, 2 * mib, 1);
	roundtrip(KVMQ_MSG_BLOCKS, 1, 5 * mib, 3);
	roundtrip(KVMQ_MSG_BLOCKS, 2, 5 * mib, 2);
	roundtrip(KVMQ_MSG_BLOCKS, 8, 16 * mib + 1, 2);

	/* --count stops early; the rest stays queued. */
	memset(small, 'x', sizeof(small));
	in = tmpfile_with(small, sizeof(small));
	out = tmpfile_with(NULL, 0);
	fake_reset();
	kvmq_open(&q, "fake");
	ret = kvmq_send_stream(&q, in, FAKE_ID, 1, KVMQ_MSG_BYTES, 0, &x);
	ret |= kvmq_recv_stream(&q, out, 1, 2, &x);
	check(!ret && x.msgs == 2 && !x.end && x.bytes == 4096 &&
	      fake_queued(1) == 2, "xfer: recv --count 2");
	kvmq_close(&q);
	close(in);
	close(out);

	/* A failed allocation: an error naming the step, nothing held. */
	in = tmpfile_with(small, sizeof(small));
	fake_reset();
	kvmq_open(&q, "fake");
	fake_fail_alloc(2);
	ret = kvmq_send_stream(&q, in, FAKE_ID, 1, KVMQ_MSG_PAGES, 1, &x);
	check(ret == -ENOBUFS && !strcmp(x.what, "alloc") && x.msgs == 1 &&
	      !fake_held(), "xfer: failed allocation");
	kvmq_close(&q);
	close(in);

	/* An unknown destination: the send fails, its pages stay nowhere. */
	in = tmpfile_with(small, sizeof(small));
	fake_reset();
	kvmq_open(&q, "fake");
	ret = kvmq_send_stream(&q, in, FAKE_ID + 1, 1, KVMQ_MSG_PAGES, 256, &x);
	check(ret == -ENOENT && !strcmp(x.what, "send") && !fake_held(),
	      "xfer: send to nobody");
	kvmq_close(&q);
	close(in);

	/*
	 * --retry: refused while the destination is away, each message is
	 * sent again, and the stream arrives whole.
	 */
	in = tmpfile_with(small, sizeof(small));
	out = tmpfile_with(NULL, 0);
	fake_reset();
	kvmq_open(&q, "fake");
	fake_refuse(3, -ENOENT);
	ret = kvmq_send_stream_retry(&q, in, FAKE_ID, 1, KVMQ_MSG_PAGES, 1,
				     1000, &x);
	check(!ret && x.refused == 3 && x.refused_err == -ENOENT &&
	      x.msgs == 2 && !fake_held(), "xfer: retry while away");
	ret = kvmq_recv_stream(&q, out, 1, 0, &x);
	check(!ret && x.end && same_content(out, (const uint8_t *)small,
					    sizeof(small)),
	      "xfer: retry: the stream arrives whole");
	kvmq_close(&q);
	close(in);
	close(out);

	/* The end marker refused for want of a grant, then taken. */
	in = tmpfile_with(small, 10);
	fake_reset();
	kvmq_open(&q, "fake");
	fake_refuse(2, -EACCES);
	ret = kvmq_send_stream_retry(&q, in, FAKE_ID, 1, KVMQ_MSG_BYTES, 0, 1000,
				     &x);
	check(!ret && x.refused == 2 && x.refused_err == -EACCES &&
	      fake_queued(1) == 2, "xfer: retry after EACCES");
	kvmq_close(&q);
	close(in);

	/* Away for longer than the bound: the error, nothing held. */
	in = tmpfile_with(small, sizeof(small));
	fake_reset();
	kvmq_open(&q, "fake");
	ret = kvmq_send_stream_retry(&q, in, FAKE_ID + 1, 1, KVMQ_MSG_PAGES, 1,
				     50, &x);
	check(ret == -ENOENT && !strcmp(x.what, "send") && x.refused >= 2 &&
	      !x.msgs && !fake_held(), "xfer: retry bound");
	kvmq_close(&q);
	close(in);

	/* Other errors are not retried. */
	in = tmpfile_with(small, sizeof(small));
	fake_reset();
	kvmq_open(&q, "fake");
	fake_refuse(1, -EMSGSIZE);
	ret = kvmq_send_stream_retry(&q, in, FAKE_ID, 1, KVMQ_MSG_PAGES, 1,
				     1000, &x);
	check(ret == -EMSGSIZE && !x.refused && !fake_held(),
	      "xfer: retry only while away");
	kvmq_close(&q);
	close(in);
}

/* The reference gain of one sample: C's division, then clipping. */
static int16_t gain_ref(int16_t s, int32_t num, int32_t den)
{
	int64_t v = (int64_t)s * num / den;

	return v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v;
}

static void test_gain(void)
{
	uint8_t b[8] = { 0x00, 0x60, 0x01, 0x00, 0xff, 0xff, 0x00, 0xa0 };
	uint8_t h[6] = { 'H', 'd', 0x10, 0x7f, 0x00, 0x33 };
	uint8_t t[3] = { 0x10, 0x7f, 0x00 };

	/* 24576 * 3/2 clips; 1 and -1 truncate toward 0; -24576 clips. */
	kvmq_pcm16_gain(b, sizeof(b), 0, 0, 3, 2);
	check(b[0] == 0xff && b[1] == 0x7f && b[2] == 1 && b[3] == 0 &&
	      b[4] == 0xff && b[5] == 0xff && b[6] == 0x00 && b[7] == 0x80,
	      "gain: 3/2 on 24576, 1, -1, -24576");
	/*
	 * A 3-byte header: samples at stream offsets 3-4, 5-6; the second is
	 * cut by the message's end and stays.
	 */
	kvmq_pcm16_gain(h, sizeof(h), 0, 3, 2, 1);
	check(h[0] == 'H' && h[1] == 'd' && h[2] == 0x10 && h[3] == 0xfe &&
	      h[4] == 0x00 && h[5] == 0x33, "gain: the header is left alone");
	/* A message at stream offset 4, inside the sample 3-4: 5-6 is 127. */
	kvmq_pcm16_gain(t, sizeof(t), 4, 3, 2, 1);
	check(t[0] == 0x10 && t[1] == 0xfe && t[2] == 0x00,
	      "gain: a message starting inside a sample");
}

/* A sender that holds up to 8 messages back, as io_uring's lazy sends do. */
struct defer {
	struct kvmq *q;
	uint32_t dest, queue;
	int n, flushes, sends;
	struct {
		uint32_t kind, nr, len;
		uint64_t offset;
		uint8_t buf[KVMQ_MSG_BYTES_MAX];
	} m[8];
};

static int defer_flush(void *ctx)
{
	struct defer *d = ctx;
	uint64_t offs[KVMQ_MSG_PAGES_MAX];
	uint32_t i;
	int k, ret = 0;

	for (k = 0; k < d->n && !ret; k++) {
		if (d->m[k].kind == KVMQ_MSG_BYTES) {
			ret = kvmq_send_bytes(d->q, d->dest, d->queue,
					      d->m[k].buf, d->m[k].len, 0);
			continue;
		}
		for (i = 0; i < d->m[k].nr; i++)
			offs[i] = d->m[k].offset +
				  i * kvmq_unit(d->m[k].kind);
		ret = kvmq_send_pages(d->q, d->dest, d->queue, d->m[k].kind,
				      offs, d->m[k].nr, d->m[k].len, 0);
	}
	d->n = 0;
	d->flushes++;
	return ret;
}

static int defer_send(void *ctx, uint32_t kind, uint64_t offset, uint32_t nr,
		      const void *buf, uint32_t len)
{
	struct defer *d = ctx;
	int ret;

	if (d->n == 8) {
		ret = defer_flush(d);
		if (ret)
			return ret;
	}
	d->m[d->n].kind = kind;
	d->m[d->n].offset = offset;
	d->m[d->n].nr = nr;
	d->m[d->n].len = len;
	if (kind == KVMQ_MSG_BYTES)
		memcpy(d->m[d->n].buf, buf, len);
	d->n++;
	d->sends++;
	return 0;
}

/*
 * read -> forward (gain 3/2 after a 44-byte header) -> recv, by kind; with
 * @deferred, forward sends through struct kvmq_sender, as with io_uring.
 */
static void forward(uint32_t kind, uint32_t per_msg, size_t len, int deferred)
{
	struct defer d = { .dest = FAKE_ID, .queue = 2 };
	struct kvmq_sender snd = {
		.send = defer_send,
		.flush = defer_flush,
		.ctx = &d,
	};
	static const char *const kinds[] = { "", "bytes", "pages", "blocks" };
	struct kvmq_xfer sx, fx, rx;
	uint8_t *data, *want, *got;
	int in, out, ret;
	struct kvmq q;
	size_t i;

	data = malloc(len);
	want = malloc(len);
	got = malloc(len + 1);
	for (i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 131 + i / 7);
	memcpy(want, data, len);
	for (i = 44; i + 1 < len; i += 2) {
		int16_t v = gain_ref((int16_t)(uint16_t)(data[i] |
							 data[i + 1] << 8),
				     3, 2);

		want[i] = (uint8_t)((uint16_t)v & 0xff);
		want[i + 1] = (uint8_t)((uint16_t)v >> 8);
	}
	in = tmpfile_with(data, len);
	out = tmpfile_with(NULL, 0);
	fake_reset();
	kvmq_open(&q, "fake");
	d.q = &q;
	ret = kvmq_send_stream(&q, in, FAKE_ID, 1, kind, per_msg, &sx);
	ret |= kvmq_forward_stream(&q, 1, FAKE_ID, 2, 3, 2, 44,
				   deferred ? &snd : NULL, &fx);
	ret |= kvmq_recv_stream(&q, out, 2, 0, &rx);
	lseek(out, 0, SEEK_SET);
	check(!ret && fx.end && rx.end && fx.msgs == sx.msgs &&
	      rx.bytes == len && read(out, got, len + 1) == (ssize_t)len &&
	      !memcmp(got, want, len) && !fake_held() &&
	      (!deferred || (d.sends == (int)sx.msgs && d.flushes > 0)),
	      "forward%s: %s, %zu bytes, samples times 3/2 after the header",
	      deferred ? " (deferred sends)" : "", kinds[kind], len);
	kvmq_close(&q);
	close(in);
	close(out);
	free(data);
	free(want);
	free(got);
}

int main(void)
{
	test_peers();
	test_numbers();
	test_cli();
	test_xfer();
	test_gain();
	forward(KVMQ_MSG_BYTES, 0, 10001, 0);
	forward(KVMQ_MSG_PAGES, 16, 300000, 0);
	forward(KVMQ_MSG_BLOCKS, 1, 5 << 20, 0);
	forward(KVMQ_MSG_BYTES, 0, 50001, 1);
	forward(KVMQ_MSG_PAGES, 16, 1000000, 1);
	forward(KVMQ_MSG_BLOCKS, 1, 11 << 20, 1);
	printf("1..%d\n", tests);
	if (failures)
		printf("# %d of %d failed\n", failures, tests);
	return failures ? 1 : 0;
}
