// SPDX-License-Identifier: GPL-2.0
/*
 * The guest driver's errors, run inside a guest of a kvmq-pci device
 * (kvmq_qemu_test.py): each ioctl with a bad size, flag, reserved field or
 * argument fails with the errno Documentation/guest.rst gives, mmap refuses
 * what it must, and poll() reports an arrival that the guest sends itself
 * (its VMM grants it queue 1 of its own VM).  Prints TAP.
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
#include <linux/kvmq_guest.h>

static int tests, failures;

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

int main(int argc, char *argv[])
{
	const char *dev = argc > 1 ? argv[1] : "/dev/kvmq0";
	char buf[KVMQ_MSG_BYTES_MAX + 1] = "hello";
	struct pollfd pfd;
	uint64_t off;
	void *map;
	int fd, ret;

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

	close(fd);
	printf("1..%d\n", tests);
	return failures ? 1 : 0;
}
