// SPDX-License-Identifier: GPL-2.0
/*
 * Files over kvmq.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xfer.h"

/* Read until @len bytes or the end of the file. */
static int64_t kvmq_read_full(int fd, void *buf, uint64_t len)
{
	uint64_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		done += (uint64_t)n;
	}
	return (int64_t)done;
}

static int kvmq_write_full(int fd, const void *buf, uint64_t len)
{
	uint64_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (uint64_t)n;
	}
	return 0;
}

static int kvmq_fail(struct kvmq_xfer *x, const char *what, int ret)
{
	x->what = what;
	return ret;
}

#define KVMQ_RETRY_FIRST_MS	10
#define KVMQ_RETRY_MAX_MS	1000

/*
 * Send a bytes message (@kind KVMQ_MSG_BYTES: @buf) or pages (@offsets),
 * again while the destination is away and @x->retry_ms allows
 * (kvmq_send_stream_retry()).
 */
static int kvmq_send_retry(struct kvmq *q, uint32_t dest, uint32_t queue,
			   uint32_t kind, const void *buf,
			   const uint64_t *offsets, uint32_t nr, uint32_t len,
			   struct kvmq_xfer *x)
{
	uint64_t waited = 0, delay = KVMQ_RETRY_FIRST_MS;
	struct timespec ts;
	int ret;

	for (;;) {
		if (kind == KVMQ_MSG_BYTES)
			ret = kvmq_send_bytes(q, dest, queue, buf, len, 0);
		else
			ret = kvmq_send_pages(q, dest, queue, kind, offsets,
					      nr, len, 0);
		if ((ret != -ENOENT && ret != -EACCES) ||
		    waited >= x->retry_ms)
			return ret;
		x->refused++;
		x->refused_err = ret;
		if (delay > x->retry_ms - waited)
			delay = x->retry_ms - waited;
		ts.tv_sec = (time_t)(delay / 1000);
		ts.tv_nsec = (long)(delay % 1000) * 1000000;
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		waited += delay;
		delay *= 2;
		if (delay > KVMQ_RETRY_MAX_MS)
			delay = KVMQ_RETRY_MAX_MS;
	}
}

static int kvmq_send_bytes_stream(struct kvmq *q, int fd, uint32_t dest,
				  uint32_t queue, struct kvmq_xfer *x)
{
	char buf[KVMQ_MSG_BYTES_MAX];
	int64_t n;
	int ret;

	for (;;) {
		n = kvmq_read_full(fd, buf, sizeof(buf));
		if (n < 0)
			return kvmq_fail(x, "read", (int)n);
		if (!n)
			return 0;
		ret = kvmq_send_retry(q, dest, queue, KVMQ_MSG_BYTES, buf,
				      NULL, 0, (uint32_t)n, x);
		if (ret)
			return kvmq_fail(x, "send", ret);
		x->msgs++;
		x->bytes += (uint64_t)n;
		if (n < (int64_t)sizeof(buf))
			return 0;
	}
}

static int kvmq_send_pages_stream(struct kvmq *q, int fd, uint32_t dest,
				  uint32_t queue, uint32_t kind,
				  uint32_t per_msg, struct kvmq_xfer *x)
{
	uint64_t offsets[KVMQ_MSG_PAGES_MAX], unit = kvmq_unit(kind), off;
	uint64_t chunk = unit * per_msg;
	uint32_t nr, i;
	char *map;
	int64_t n;
	int ret;

	if (!unit || !per_msg || per_msg > KVMQ_MSG_PAGES_MAX)
		return kvmq_fail(x, "send", -EINVAL);
	map = kvmq_map(q);
	if (!map)
		return kvmq_fail(x, "mmap", -errno);
	for (;;) {
		ret = kvmq_alloc(q, kind, per_msg, &off);
		if (ret)
			return kvmq_fail(x, "alloc", ret);
		n = kvmq_read_full(fd, map + off, chunk);
		if (n < 0) {
			kvmq_release(q, off, kvmq_unit_pages(kind, per_msg));
			return kvmq_fail(x, "read", (int)n);
		}
		nr = (uint32_t)(((uint64_t)n + unit - 1) / unit);
		if (nr < per_msg) {
			ret = kvmq_release(q, off + nr * unit,
					   kvmq_unit_pages(kind, per_msg - nr));
			if (ret)
				return kvmq_fail(x, "release", ret);
		}
		if (!nr)
			return 0;
		for (i = 0; i < nr; i++)
			offsets[i] = off + i * unit;
		ret = kvmq_send_retry(q, dest, queue, kind, NULL, offsets, nr,
				      (uint32_t)n, x);
		if (ret) {
			kvmq_release(q, off, kvmq_unit_pages(kind, nr));
			return kvmq_fail(x, "send", ret);
		}
		x->msgs++;
		x->bytes += (uint64_t)n;
		if ((uint64_t)n < chunk)
			return 0;
	}
}

int kvmq_send_stream(struct kvmq *q, int fd, uint32_t dest, uint32_t queue,
		     uint32_t kind, uint32_t per_msg, struct kvmq_xfer *x)
{
	return kvmq_send_stream_retry(q, fd, dest, queue, kind, per_msg, 0, x);
}

int kvmq_send_stream_retry(struct kvmq *q, int fd, uint32_t dest,
			   uint32_t queue, uint32_t kind, uint32_t per_msg,
			   uint64_t retry_ms, struct kvmq_xfer *x)
{
	int ret;

	memset(x, 0, sizeof(*x));
	x->retry_ms = retry_ms;
	if (kind == KVMQ_MSG_BYTES)
		ret = kvmq_send_bytes_stream(q, fd, dest, queue, x);
	else
		ret = kvmq_send_pages_stream(q, fd, dest, queue, kind, per_msg,
					     x);
	if (ret)
		return ret;
	ret = kvmq_send_retry(q, dest, queue, KVMQ_MSG_BYTES, NULL, NULL, 0, 0,
			      x);
	return ret ? kvmq_fail(x, "send", ret) : 0;
}

int kvmq_recv_stream(struct kvmq *q, int fd, uint32_t queue, uint64_t count,
		     struct kvmq_xfer *x)
{
	char buf[KVMQ_MSG_BYTES_MAX], *map = NULL;
	struct kvmqg_recv r;
	uint64_t len;
	uint32_t pages;
	int ret, rel;

	memset(x, 0, sizeof(*x));
	while (!count || x->msgs < count) {
		ret = kvmq_recv(q, queue, &r, buf, sizeof(buf), 0);
		if (ret)
			return kvmq_fail(x, "recv", ret);
		if (r.kind == KVMQ_MSG_BYTES) {
			if (!r.len) {
				x->end = 1;
				return 0;
			}
			if (r.len > sizeof(buf))
				return kvmq_fail(x, "recv", -EMSGSIZE);
			ret = kvmq_write_full(fd, buf, r.len);
			if (ret)
				return kvmq_fail(x, "write", ret);
		} else {
			pages = kvmq_unit_pages(r.kind, r.nr);
			if (!map)
				map = kvmq_map(q);
			if (!map) {
				ret = -errno;
				kvmq_release(q, r.offset, pages);
				return kvmq_fail(x, "mmap", ret);
			}
			len = r.len;
			if (len > (uint64_t)pages * KVMQ_PAGE_SIZE)
				len = (uint64_t)pages * KVMQ_PAGE_SIZE;
			ret = kvmq_write_full(fd, map + r.offset, len);
			rel = kvmq_release(q, r.offset, pages);
			if (ret)
				return kvmq_fail(x, "write", ret);
			if (rel)
				return kvmq_fail(x, "release", rel);
		}
		x->msgs++;
		x->bytes += r.len;
	}
	return 0;
}

void kvmq_pcm16_gain(uint8_t *p, uint64_t len, uint64_t pos, uint64_t skip,
		     int32_t num, int32_t den)
{
	uint64_t i = 0;
	int64_t v;

	if (pos + len <= skip)
		return;
	if (pos < skip)
		i = skip - pos;
	if ((pos + i - skip) & 1)
		i++;
	for (; i + 1 < len; i += 2) {
		v = (int16_t)(uint16_t)(p[i] | p[i + 1] << 8);
		v = v * num / den;
		if (v > INT16_MAX)
			v = INT16_MAX;
		if (v < INT16_MIN)
			v = INT16_MIN;
		p[i] = (uint8_t)((uint16_t)v & 0xff);
		p[i + 1] = (uint8_t)((uint16_t)v >> 8);
	}
}

int kvmq_forward_stream(struct kvmq *q, uint32_t queue, uint32_t dest,
			uint32_t dest_queue, int32_t num, int32_t den,
			uint64_t skip, const struct kvmq_sender *snd,
			struct kvmq_xfer *x)
{
	uint64_t offsets[KVMQ_MSG_PAGES_MAX], unit, len;
	uint8_t buf[KVMQ_MSG_BYTES_MAX], *map = NULL;
	struct kvmqg_recv r;
	uint32_t i, pages;
	int ret;

	memset(x, 0, sizeof(*x));
	for (;;) {
		ret = kvmq_recv(q, queue, &r, buf, sizeof(buf), 0);
		if (ret)
			return kvmq_fail(x, "recv", ret);
		if (r.kind == KVMQ_MSG_BYTES) {
			if (r.len > sizeof(buf))
				return kvmq_fail(x, "recv", -EMSGSIZE);
			kvmq_pcm16_gain(buf, r.len, x->bytes, skip, num, den);
			if (snd && !r.len)
				ret = snd->flush(snd->ctx);
			else if (snd)
				ret = snd->send(snd->ctx, KVMQ_MSG_BYTES, 0, 0,
						buf, r.len);
			if (ret)
				return kvmq_fail(x, "send", ret);
			if (!snd || !r.len)
				ret = kvmq_send_bytes(q, dest, dest_queue, buf,
						      r.len, 0);
			if (ret)
				return kvmq_fail(x, "send", ret);
			if (!r.len) {
				x->end = 1;
				return 0;
			}
		} else {
			unit = kvmq_unit(r.kind);
			pages = kvmq_unit_pages(r.kind, r.nr);
			if (!map)
				map = kvmq_map(q);
			if (!map || r.nr > KVMQ_MSG_PAGES_MAX) {
				ret = map ? -EMSGSIZE : -errno;
				kvmq_release(q, r.offset, pages);
				return kvmq_fail(x, "recv", ret);
			}
			len = r.len;
			if (len > (uint64_t)pages * KVMQ_PAGE_SIZE)
				len = (uint64_t)pages * KVMQ_PAGE_SIZE;
			kvmq_pcm16_gain(map + r.offset, len, x->bytes, skip, num,
					den);
			if (snd) {
				/* In flight, the pages are not ours to free. */
				ret = snd->send(snd->ctx, r.kind, r.offset, r.nr,
						NULL, r.len);
				if (ret)
					return kvmq_fail(x, "send", ret);
				x->msgs++;
				x->bytes += r.len;
				continue;
			}
			for (i = 0; i < r.nr; i++)
				offsets[i] = r.offset + i * unit;
			ret = kvmq_send_pages(q, dest, dest_queue, r.kind,
					      offsets, r.nr, r.len, 0);
			if (ret) {
				kvmq_release(q, r.offset, pages);
				return kvmq_fail(x, "send", ret);
			}
		}
		x->msgs++;
		x->bytes += r.len;
	}
}
