// SPDX-License-Identifier: GPL-2.0
/*
 * The guest driver's errors, run inside a guest of a kvmq-pci device
 * (kvmq_qemu_test.py): each ioctl with a bad size, flag, reserved field or
 * argument fails with the errno Documentation/guest.rst gives, mmap refuses
 * what it must, and poll() reports an arrival that the guest sends itself
 * (its VMM grants it queue 1 of its own VM).  Then io_uring: bad commands,
 * a burst of linked sends larger than the receive ring, a page sent and
 * received, a receive that waits in an io_uring worker.  Prints TAP.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <liburing.h>
#include <linux/kvmq_guest.h>

static int tests, failures;
/* Whether the device has rings: argv[2] "norings" says it has not. */
static int rings = 1;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	tests++;
	if (!ok)
		failures++;
	printf("%sok %d - ", ok ? "" : "not ", tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* The ioctl's result: 0, or -errno. */
static int io(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

#define ARG(type, var)	type var; memset(&var, 0, sizeof(var)); \
			var.size = sizeof(var)

/* Queue an IORING_OP_URING_CMD of @op on @fd with @arg; user_data @data. */
static void prep_cmd(struct io_uring *ring, int fd, uint32_t op, void *arg,
		     uint64_t data, uint32_t flags, uint32_t reserved)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct kvmqg_uring *c;

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = op;
	c = (struct kvmqg_uring *)sqe->cmd;
	memset(c, 0, sizeof(*c));
	c->arg = (uintptr_t)arg;
	c->flags = flags;
	c->__reserved = reserved;
	io_uring_sqe_set_data64(sqe, data);
}

/* Submit what is queued and wait for one completion: its res, *@data. */
static int uring_one(struct io_uring *ring, uint64_t *data)
{
	struct io_uring_cqe *cqe;
	int ret;

	io_uring_submit(ring);
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret)
		return ret;
	ret = cqe->res;
	if (data)
		*data = cqe->user_data;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/* Sends in the burst: more than a receive ring (16) holds. */
#define BURST	40

static void test_uring(int fd)
{
	ARG(struct kvmqg_info, info);
	ARG(struct kvmqg_recv, r);
	struct kvmqg_send s[BURST];
	char msgs[BURST][8], got[KVMQ_MSG_BYTES_MAX];
	struct io_uring ring;
	uint64_t data, off, seen = 0;
	volatile uint8_t *map;
	int i, ret, bad = 0;

	ret = io_uring_queue_init(64, &ring, 0);
	check(!ret, "io_uring: set up (%d)", ret);
	if (ret)
		return;
	io(fd, KVMQG_INFO, &info);

	prep_cmd(&ring, fd, KVMQG_INFO, &info, 1, 0, 0);
	check(uring_one(&ring, NULL) == -EOPNOTSUPP,
	      "io_uring: a command other than send and recv");
	memset(&s[0], 0, sizeof(s[0]));
	s[0].size = sizeof(s[0]);
	s[0].dest = info.identity;
	s[0].queue = 1;
	s[0].kind = KVMQ_MSG_BYTES;
	s[0].len = 2;
	s[0].data = (uintptr_t)"hi";
	prep_cmd(&ring, fd, KVMQG_SEND, &s[0], 1, 1, 0);
	check(uring_one(&ring, NULL) == -EOPNOTSUPP, "io_uring: command flags");
	prep_cmd(&ring, fd, KVMQG_SEND, &s[0], 1, 0, 1);
	check(uring_one(&ring, NULL) == -EINVAL, "io_uring: command reserved");
	s[0].flags = 8;
	prep_cmd(&ring, fd, KVMQG_SEND, &s[0], 1, 0, 0);
	check(uring_one(&ring, NULL) == -EOPNOTSUPP,
	      "io_uring: send: unknown flag");
	s[0].flags = KVMQG_F_LINK;
	s[0].dest = 999;
	prep_cmd(&ring, fd, KVMQG_SEND, &s[0], 1, 0, 0);
	check(uring_one(&ring, NULL) == -ENOENT,
	      "io_uring: send: no such VM, linked");
	/* Linked to a send that failed: cancelled, until a new chain. */
	s[0].dest = info.identity;
	prep_cmd(&ring, fd, KVMQG_SEND, &s[0], 1, 0, 0);
	ret = uring_one(&ring, NULL);
	check(ret == (rings ? -ECANCELED : 0),
	      "io_uring: a send linked to a failed one: %d", ret);
	if (!ret)
		io(fd, KVMQG_RECV, &(struct kvmqg_recv){
			.size = sizeof(struct kvmqg_recv), .queue = 1,
			.data = (uintptr_t)got, .data_len = sizeof(got) });

	/* A burst of linked sends, one submission: all arrive, in order. */
	for (i = 0; i < BURST; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].size = sizeof(s[i]);
		s[i].flags = KVMQG_F_LINK | (i ? 0 : KVMQG_F_CHAIN_START);
		s[i].dest = info.identity;
		s[i].queue = 1;
		s[i].kind = KVMQ_MSG_BYTES;
		s[i].len = (uint32_t)snprintf(msgs[i], sizeof(msgs[i]),
					      "m%03d", i);
		s[i].data = (uintptr_t)msgs[i];
		prep_cmd(&ring, fd, KVMQG_SEND, &s[i], (uint64_t)i, 0, 0);
	}
	io_uring_submit(&ring);
	for (i = 0; i < BURST; i++) {
		ret = uring_one(&ring, &data);
		if (ret || data >= BURST || (seen & (1ULL << data)))
			bad++;
		else
			seen |= 1ULL << data;
	}
	check(!bad && seen == (1ULL << BURST) - 1,
	      "io_uring: %d linked sends to itself completed", BURST);
	r.queue = 1;
	r.flags = KVMQG_F_NONBLOCK;
	r.data = (uintptr_t)got;
	r.data_len = sizeof(got);
	for (bad = 0, i = 0; i < BURST; i++) {
		ret = io(fd, KVMQG_RECV, &r);
		if (ret == -EAGAIN) {
			/* Past a full ring: kvmq lets the rest in now. */
			usleep(20000);
			ret = io(fd, KVMQG_RECV, &r);
		}
		if (ret || r.len != 4 || memcmp(got, msgs[i], 4))
			bad++;
	}
	check(!bad, "io_uring: the %d messages received in order", BURST);

	/* A page: allocated, written, sent lazily, received where it lands. */
	{
		ARG(struct kvmqg_alloc, a);
		ARG(struct kvmqg_info, after);

		a.kind = KVMQ_MSG_PAGES;
		a.nr = 1;
		map = mmap(NULL, info.aperture_len, PROT_READ | PROT_WRITE,
			   MAP_SHARED, fd, 0);
		ret = map == MAP_FAILED ? -errno : io(fd, KVMQG_ALLOC, &a);
		check(!ret, "io_uring: a page to send (%d)", ret);
		if (ret)
			goto out;
		for (i = 0; i < 4096; i++)
			map[a.offset + i] = (uint8_t)(i * 7);
		off = a.offset;
		memset(&s[0], 0, sizeof(s[0]));
		s[0].size = sizeof(s[0]);
		s[0].dest = info.identity;
		s[0].queue = 1;
		s[0].kind = KVMQ_MSG_PAGES;
		s[0].nr = 1;
		s[0].len = 4096;
		s[0].data = (uintptr_t)&off;
		prep_cmd(&ring, fd, KVMQG_SEND, &s[0], 7, 0, 0);
		check(!uring_one(&ring, NULL), "io_uring: send a page");
		prep_cmd(&ring, fd, KVMQG_SEND, &s[0], 7, 0, 0);
		check(uring_one(&ring, NULL) == -EINVAL,
		      "io_uring: send the page again: no longer held");
		r.flags = 0;
		ret = io(fd, KVMQG_RECV, &r);
		for (bad = 0, i = 0; !ret && i < 4096; i++)
			bad += map[r.offset + i] != (uint8_t)(i * 7);
		check(!ret && r.kind == KVMQ_MSG_PAGES && !bad,
		      "io_uring: the page received, its content intact");
		io(fd, KVMQG_INFO, &after);
		check(after.held == 4096, "io_uring: held: the received page");
	}

	/* A receive that must wait runs in an io_uring worker. */
	r.flags = 0;
	r.len = 0;
	prep_cmd(&ring, fd, KVMQG_RECV, &r, 9, 0, 0);
	io_uring_submit(&ring);
	usleep(100000);
	s[1].flags = 0;
	check(!io(fd, KVMQG_SEND, &s[1]), "io_uring: a send for the waiting "
	      "receive");
	ret = uring_one(&ring, &data);
	check(!ret && data == 9 && r.len == 4 && !memcmp(got, "m001", 4),
	      "io_uring: the waiting receive got it (%d)", ret);
out:
	io_uring_queue_exit(&ring);
}

/*
 * With rings, a page message sent to itself waits in the receive ring, its
 * pages placed in slots no file holds.  Allocations made meanwhile, 4 pages
 * at a time until they have swept RING_ALLOC_CHUNKS * 4 slots by first fit,
 * must all take other slots, and the message must arrive intact.
 */
#define RING_ALLOC_CHUNKS	256
static uint64_t chunk[RING_ALLOC_CHUNKS];

static void test_ring_alloc(int fd)
{
	ARG(struct kvmqg_info, info);
	ARG(struct kvmqg_alloc, a);
	ARG(struct kvmqg_send, s);
	ARG(struct kvmqg_recv, r);
	ARG(struct kvmqg_release, rel);
	int i, n, ret, bad = 0, apart = 1;
	volatile uint8_t *map;
	uint64_t offs[4];

	io(fd, KVMQG_INFO, &info);
	map = mmap(NULL, info.aperture_len, PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	a.kind = KVMQ_MSG_PAGES;
	a.nr = 4;
	ret = map == MAP_FAILED ? -errno : io(fd, KVMQG_ALLOC, &a);
	check(!ret, "ring alloc: 4 pages to send (%d)", ret);
	if (ret)
		return;
	for (i = 0; i < 4 * 4096; i++)
		map[a.offset + i] = (uint8_t)(i * 5 + 1);
	for (i = 0; i < 4; i++)
		offs[i] = a.offset + (uint64_t)i * 4096;
	s.dest = info.identity;
	s.queue = 1;
	s.kind = KVMQ_MSG_PAGES;
	s.nr = 4;
	s.len = 4 * 4096;
	s.data = (uintptr_t)offs;
	check(!io(fd, KVMQG_SEND, &s), "ring alloc: sent to itself");

	for (n = 0; n < RING_ALLOC_CHUNKS; n++) {
		if (io(fd, KVMQG_ALLOC, &a))
			break;
		chunk[n] = a.offset;
		for (i = 0; i < 4 * 4096; i++)
			map[a.offset + i] = 0xee;
	}
	check(n > 0, "ring alloc: %d allocations while the message waits", n);
	r.queue = 1;
	ret = io(fd, KVMQG_RECV, &r);
	for (i = 0; !ret && i < 4 * 4096; i++)
		bad += map[r.offset + i] != (uint8_t)(i * 5 + 1);
	for (i = 0; !ret && i < n; i++)
		apart &= r.offset + 4 * 4096 <= chunk[i] ||
			 chunk[i] + 4 * 4096 <= r.offset;
	check(!ret && r.kind == KVMQ_MSG_PAGES && r.nr == 4 && !bad && apart,
	      "ring alloc: the message intact, apart (%d, %d, page %llu)",
	      ret, bad, (unsigned long long)r.offset / 4096);
	rel.nr = 4;
	rel.offset = r.offset;
	if (!ret)
		io(fd, KVMQG_RELEASE, &rel);
	for (i = 0; i < n; i++) {
		rel.offset = chunk[i];
		io(fd, KVMQG_RELEASE, &rel);
	}
	munmap((void *)map, info.aperture_len);
}

int main(int argc, char *argv[])
{
	const char *dev = argc > 1 ? argv[1] : "/dev/kvmq0";
	char buf[KVMQ_MSG_BYTES_MAX + 1] = "hello";
	struct pollfd pfd;
	uint64_t off;
	void *map;
	int fd, ret;

	rings = !(argc > 2 && !strcmp(argv[2], "norings"));
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("Bail out! %s: %s\n", dev, strerror(errno));
		return 1;
	}

	{
		ARG(struct kvmqg_info, info);
		info.size--;
		check(io(fd, KVMQG_INFO, &info) == -EINVAL, "info: bad size");
		info.size++;
		info.flags = 1;
		check(io(fd, KVMQG_INFO, &info) == -EOPNOTSUPP,
		      "info: unknown flag");
		info.flags = 0;
		ret = io(fd, KVMQG_INFO, &info);
		check(!ret && info.identity && info.nr_queues == 2 &&
		      !info.held, "info: identity %u", info.identity);
	}
	check(io(fd, KVMQG_INFO + 0x10, buf) == -ENOTTY, "unknown ioctl");
	check(io(fd, KVMQG_INFO, (void *)8) == -EFAULT, "info: bad address");

	{
		ARG(struct kvmqg_info, info);
		ARG(struct kvmqg_send, s);

		io(fd, KVMQG_INFO, &info);
		s.dest = info.identity;
		s.queue = 1;
		s.kind = KVMQ_MSG_BYTES;
		s.len = 5;
		s.data = (uintptr_t)buf;
		s.flags = 2;
		check(io(fd, KVMQG_SEND, &s) == -EOPNOTSUPP,
		      "send: unknown flag");
		s.flags = KVMQG_F_NONBLOCK;
		s.__reserved = 1;
		check(io(fd, KVMQG_SEND, &s) == -EINVAL, "send: reserved");
		s.__reserved = 0;
		s.kind = 9;
		check(io(fd, KVMQG_SEND, &s) == -EINVAL, "send: unknown kind");
		s.kind = KVMQ_MSG_BYTES;
		s.nr = 1;
		check(io(fd, KVMQG_SEND, &s) == -EINVAL, "send: bytes with nr");
		s.nr = 0;
		s.len = KVMQ_MSG_BYTES_MAX + 1;
		check(io(fd, KVMQG_SEND, &s) == -E2BIG, "send: 2049 bytes");
		s.len = 5;
		s.dest = 999;
		check(io(fd, KVMQG_SEND, &s) == -ENOENT, "send: no such VM");
		s.dest = info.identity;
		s.queue = 7;
		check(io(fd, KVMQG_SEND, &s) == -ENOENT, "send: no such queue");
		s.queue = 1;
		s.kind = KVMQ_MSG_PAGES;
		s.nr = 1;
		s.len = 4096;
		off = 0;
		s.data = (uintptr_t)&off;
		check(io(fd, KVMQG_SEND, &s) == -EINVAL,
		      "send: a page the file does not hold");
	}

	{
		ARG(struct kvmqg_recv, r);

		r.queue = 0;
		r.flags = KVMQG_F_NONBLOCK;
		check(io(fd, KVMQG_RECV, &r) == -EINVAL, "recv: queue 0");
		r.queue = 2;
		check(io(fd, KVMQG_RECV, &r) == -EINVAL, "recv: no queue 2");
		r.queue = 1;
		check(io(fd, KVMQG_RECV, &r) == -EAGAIN,
		      "recv: non-blocking, empty");
	}

	{
		ARG(struct kvmqg_alloc, a);
		ARG(struct kvmqg_release, rel);

		a.kind = KVMQ_MSG_PAGES;
		check(io(fd, KVMQG_ALLOC, &a) == -EINVAL, "alloc: nr 0");
		a.nr = KVMQ_MSG_PAGES_MAX + 1;
		check(io(fd, KVMQG_ALLOC, &a) == -E2BIG, "alloc: 257 pages");
		a.kind = KVMQ_MSG_BYTES;
		a.nr = 1;
		check(io(fd, KVMQG_ALLOC, &a) == -EINVAL, "alloc: bytes");
		a.kind = KVMQ_MSG_PAGES;
		ret = io(fd, KVMQG_ALLOC, &a);
		check(!ret, "alloc: one page at %llu",
		      (unsigned long long)a.offset);
		rel.offset = a.offset + 4096;
		rel.nr = 1;
		check(io(fd, KVMQG_RELEASE, &rel) == -EINVAL,
		      "release: a page the file does not hold");
		rel.offset = a.offset + 1;
		check(io(fd, KVMQG_RELEASE, &rel) == -EINVAL,
		      "release: misaligned");
		rel.offset = a.offset;
		rel.nr = 0;
		check(io(fd, KVMQG_RELEASE, &rel) == -EINVAL, "release: nr 0");
		rel.nr = 1;
		rel.__reserved = 1;
		check(io(fd, KVMQG_RELEASE, &rel) == -EINVAL,
		      "release: reserved");
		rel.__reserved = 0;
		check(!io(fd, KVMQG_RELEASE, &rel), "release: the page");
		check(io(fd, KVMQG_RELEASE, &rel) == -EINVAL,
		      "release: the page again");
	}

	{
		ARG(struct kvmqg_qlen, q);
		ARG(struct kvmqg_peers, p);

		q.queue = 2;
		check(io(fd, KVMQG_QLEN, &q) == -EINVAL, "qlen: no queue 2");
		p.__reserved = 1;
		check(io(fd, KVMQG_PEERS, &p) == -EINVAL, "peers: reserved");
		p.__reserved = 0;
		ret = io(fd, KVMQG_PEERS, &p);
		check(!ret && p.count == 1, "peers: count only, %u", p.count);
	}

	map = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	check(map == MAP_FAILED && errno == EINVAL, "mmap: private");
	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 1ULL << 40);
	check(map == MAP_FAILED && errno == EINVAL, "mmap: beyond the aperture");

	/* poll: room, no arrival; then the guest's own message arrives. */
	pfd.fd = fd;
	pfd.events = POLLIN | POLLOUT;
	check(poll(&pfd, 1, 0) == 1 && pfd.revents == POLLOUT,
	      "poll: writable, nothing to read");
	{
		ARG(struct kvmqg_info, info);
		ARG(struct kvmqg_send, s);
		ARG(struct kvmqg_recv, r);
		char got[KVMQ_MSG_BYTES_MAX];

		io(fd, KVMQG_INFO, &info);
		s.dest = info.identity;
		s.queue = 1;
		s.kind = KVMQ_MSG_BYTES;
		s.len = 5;
		s.data = (uintptr_t)buf;
		check(!io(fd, KVMQG_SEND, &s), "send: to itself, granted");
		pfd.events = POLLIN;
		check(poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN),
		      "poll: readable after the arrival");
		r.queue = 1;
		r.data = (uintptr_t)got;
		r.data_len = sizeof(got);
		check(!io(fd, KVMQG_RECV, &r) && r.len == 5 &&
		      r.sender == info.identity && !memcmp(got, "hello", 5),
		      "recv: the message, from itself");
		check(poll(&pfd, 1, 0) == 0, "poll: nothing to read again");
	}
	test_uring(fd);
	if (rings)
		test_ring_alloc(fd);

	close(fd);
	printf("1..%d\n", tests);
	return failures ? 1 : 0;
}
