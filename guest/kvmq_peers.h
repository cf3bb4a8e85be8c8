/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The peer table of a kvmq guest, fed by the VMM's messages on queue 0.
 *
 * A message's payload is text: lines "peer NAME ID" (NAME is VM identity ID;
 * a later line for the same NAME replaces it) and "unpeer NAME" (forget
 * NAME).  NAME is 1 to 31 characters of [A-Za-z0-9_.-], ID a decimal
 * identity, 1 to 4294967295.  Words are separated by spaces or tabs, lines
 * end with '\n' or with the payload, and the text ends at the first NUL
 * byte if any.  Blank lines are skipped; other lines, and "peer" lines for a
 * new NAME while the table has KVMQG_PEERS_MAX entries, are ignored and
 * counted.  A line never continues in the next message.
 *
 * Plain C on the caller's memory, without allocation or locking, so that
 * the unit test of tools/kvmq can build it in userspace.
 */
#ifndef _KVMQ_PEERS_H
#define _KVMQ_PEERS_H

#include <linux/string.h>
#include <linux/types.h>
#include <uapi/linux/kvmq_guest.h>

struct kvmq_peer_table {
	u32 count;
	u32 ignored;
	struct kvmqg_peer peers[KVMQG_PEERS_MAX];
};

static inline bool kvmq_peer_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static inline bool kvmq_peer_name_ok(const char *s, size_t len)
{
	size_t i;

	if (!len || len >= KVMQG_PEER_NAME_LEN)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return true;
}

static inline bool kvmq_peer_id_ok(const char *s, size_t len, u32 *id)
{
	u64 v = 0;
	size_t i;

	if (!len)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > 0xffffffffULL)
			return false;
	}
	if (!v)
		return false;
	*id = v;
	return true;
}

/* Index of the entry for NAME (@len characters), or -1. */
static inline int kvmq_peer_find(const struct kvmq_peer_table *t,
				 const char *name, size_t len)
{
	u32 i;

	for (i = 0; i < t->count; i++)
		if (!memcmp(t->peers[i].name, name, len) &&
		    !t->peers[i].name[len])
			return i;
	return -1;
}

/* Apply one line, without its '\n'.  False if it is to be ignored. */
static inline bool kvmq_peer_line(struct kvmq_peer_table *t, const char *s,
				  size_t len)
{
	const char *word[3];
	size_t wlen[3];
	unsigned int n = 0;
	size_t i = 0;
	u32 id;
	int idx;

	while (i < len) {
		while (i < len && kvmq_peer_space(s[i]))
			i++;
		if (i == len)
			break;
		if (n == 3)
			return false;
		word[n] = s + i;
		while (i < len && !kvmq_peer_space(s[i]))
			i++;
		wlen[n] = s + i - word[n];
		n++;
	}
	if (!n)
		return true;
	if (n < 2 || !kvmq_peer_name_ok(word[1], wlen[1]))
		return false;

	if (n == 3 && wlen[0] == 4 && !memcmp(word[0], "peer", 4)) {
		if (!kvmq_peer_id_ok(word[2], wlen[2], &id))
			return false;
		idx = kvmq_peer_find(t, word[1], wlen[1]);
		if (idx < 0) {
			if (t->count == KVMQG_PEERS_MAX)
				return false;
			idx = t->count++;
			memset(&t->peers[idx], 0, sizeof(t->peers[idx]));
			memcpy(t->peers[idx].name, word[1], wlen[1]);
		}
		t->peers[idx].id = id;
		return true;
	}
	if (n == 2 && wlen[0] == 6 && !memcmp(word[0], "unpeer", 6)) {
		idx = kvmq_peer_find(t, word[1], wlen[1]);
		if (idx >= 0) {
			t->count--;
			memmove(&t->peers[idx], &t->peers[idx + 1],
				(t->count - idx) * sizeof(t->peers[0]));
			memset(&t->peers[t->count], 0, sizeof(t->peers[0]));
		}
		return true;
	}
	return false;
}

/* Apply the text of one control message of @len bytes to @t. */
static inline void kvmq_peers_apply(struct kvmq_peer_table *t,
				    const char *text, size_t len)
{
	const char *end = memchr(text, '\0', len);
	const char *nl;

	if (end)
		len = end - text;
	while (len) {
		nl = memchr(text, '\n', len);
		end = nl ? nl : text + len;
		if (!kvmq_peer_line(t, text, end - text))
			t->ignored++;
		if (!nl)
			break;
		len -= nl + 1 - text;
		text = nl + 1;
	}
}

#endif /* _KVMQ_PEERS_H */
