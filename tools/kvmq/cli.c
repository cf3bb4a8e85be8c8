// SPDX-License-Identifier: GPL-2.0
/*
 * The command line of the kvmq CLI.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int kvmq_parse_u64(const char *s, uint64_t *v)
{
	uint64_t n = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*v = n;
	return 0;
}

int kvmq_parse_u32(const char *s, uint32_t *v)
{
	uint64_t n;
	int ret = kvmq_parse_u64(s, &n);

	if (ret)
		return ret;
	if (n > UINT32_MAX)
		return -ERANGE;
	*v = (uint32_t)n;
	return 0;
}

static bool kvmq_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

int kvmq_parse_target(const char *s, char *name, uint32_t *queue)
{
	const char *colon = strrchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);
	size_t i;

	if (!len || len >= KVMQG_PEER_NAME_LEN)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!kvmq_name_char(s[i]))
			return -EINVAL;
	*queue = KVMQ_CLI_QUEUE_DEFAULT;
	if (colon && kvmq_parse_u32(colon + 1, queue))
		return -EINVAL;
	memcpy(name, s, len);
	name[len] = '\0';
	return 0;
}

int kvmq_target_id(const char *name, const struct kvmqg_peer *peers,
		   uint32_t count, uint32_t *id)
{
	uint32_t i;

	for (i = 0; i < count; i++) {
		if (!strncmp(peers[i].name, name, KVMQG_PEER_NAME_LEN)) {
			*id = peers[i].id;
			return 0;
		}
	}
	return kvmq_parse_u32(name, id) ? -ENOENT : 0;
}

static int kvmq_cli_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * Whether argv[*i] is option @sname or @lname taking a value: "-x VALUE",
 * "--long VALUE" or "--long=VALUE".  1 with *@val set, 0 if not this
 * option, -1 if the value is missing.
 */
static int kvmq_opt_val(int argc, char *const argv[], int *i,
			const char *sname, const char *lname, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(lname);

	if ((sname && !strcmp(a, sname)) || !strcmp(a, lname)) {
		if (*i + 1 >= argc)
			return -1;
		*val = argv[++*i];
		return 1;
	}
	if (!strncmp(a, lname, n) && a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	return 0;
}

static const struct {
	const char *name;
	enum kvmq_cmd cmd;
} kvmq_cmds[] = {
	{ "help", KVMQ_CMD_HELP },
	{ "info", KVMQ_CMD_INFO },
	{ "peers", KVMQ_CMD_PEERS },
	{ "stat", KVMQ_CMD_STAT },
	{ "send", KVMQ_CMD_SEND },
	{ "recv", KVMQ_CMD_RECV },
	{ "forward", KVMQ_CMD_FORWARD },
};

int kvmq_parse_gain(const char *s, int32_t *num, int32_t *den)
{
	const char *slash = strchr(s, '/');
	char buf[16];
	uint32_t n, d;

	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = 0;
	if (kvmq_parse_u32(buf, &n) || kvmq_parse_u32(slash + 1, &d) ||
	    !n || !d || n > 65536 || d > 65536)
		return -EINVAL;
	*num = (int32_t)n;
	*den = (int32_t)d;
	return 0;
}

int kvmq_cli_parse(int argc, char *const argv[], struct kvmq_cli *c,
		   char *err, size_t errlen)
{
	const char *pos[3], *val, *send_opt = NULL, *recv_opt = NULL;
	const char *fwd_opt = NULL, *queue_opt = NULL;
	const char *nr_arg = NULL, *queue_arg = NULL;
	uint64_t retry;
	bool have_cmd = false, dashdash = false, help = false;
	int i, npos = 0, r;
	uint32_t kind;
	size_t k;

	memset(c, 0, sizeof(*c));
	c->device = KVMQ_CLI_DEVICE;
	c->kind = KVMQ_MSG_BYTES;
	c->queue = KVMQ_CLI_QUEUE_DEFAULT;
	c->out = "-";
	c->gain_num = 1;
	c->gain_den = 1;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (dashdash || a[0] != '-' || !a[1]) {
			if (!have_cmd) {
				for (k = 0; k < sizeof(kvmq_cmds) / sizeof(kvmq_cmds[0]); k++)
					if (!strcmp(a, kvmq_cmds[k].name))
						break;
				if (k == sizeof(kvmq_cmds) / sizeof(kvmq_cmds[0]))
					return kvmq_cli_err(err, errlen,
							    "unknown command '%s'", a);
				c->cmd = kvmq_cmds[k].cmd;
				have_cmd = true;
			} else if (npos < 3) {
				pos[npos++] = a;
			} else {
				return kvmq_cli_err(err, errlen,
						    "too many arguments");
			}
			continue;
		}
		if (!strcmp(a, "--")) {
			dashdash = true;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			help = true;
			continue;
		}
		if (!strcmp(a, "--uring")) {
			c->uring = 1;
			fwd_opt = a;
			continue;
		}
		kind = !strcmp(a, "--bytes") ? KVMQ_MSG_BYTES :
		       !strcmp(a, "--pages") ? KVMQ_MSG_PAGES :
		       !strcmp(a, "--blocks") ? KVMQ_MSG_BLOCKS : 0;
		if (kind) {
			c->kind = kind;
			send_opt = a;
			continue;
		}
		r = kvmq_opt_val(argc, argv, &i, "-d", "--device", &val);
		if (r > 0) {
			c->device = val;
			continue;
		}
		if (!r) {
			r = kvmq_opt_val(argc, argv, &i, "-n", "--nr", &val);
			if (r > 0) {
				nr_arg = val;
				send_opt = a;
				continue;
			}
		}
		if (!r) {
			r = kvmq_opt_val(argc, argv, &i, NULL, "--retry", &val);
			if (r > 0) {
				if (kvmq_parse_u64(val, &retry) ||
				    retry > KVMQ_CLI_RETRY_MAX)
					return kvmq_cli_err(err, errlen,
							    "--retry: '%s' is not 0 to %u seconds",
							    val, KVMQ_CLI_RETRY_MAX);
				c->retry_ms = retry * 1000;
				send_opt = a;
				continue;
			}
		}
		if (!r) {
			r = kvmq_opt_val(argc, argv, &i, "-q", "--queue", &val);
			if (r > 0) {
				queue_arg = val;
				queue_opt = a;
				continue;
			}
		}
		if (!r) {
			r = kvmq_opt_val(argc, argv, &i, "-o", "--output",
					 &val);
			if (r > 0) {
				c->out = val;
				recv_opt = a;
				continue;
			}
		}
		if (!r) {
			r = kvmq_opt_val(argc, argv, &i, NULL, "--gain", &val);
			if (r > 0) {
				if (kvmq_parse_gain(val, &c->gain_num,
						    &c->gain_den))
					return kvmq_cli_err(err, errlen,
							    "--gain: '%s' is not NUM/DEN",
							    val);
				fwd_opt = a;
				continue;
			}
		}
		if (!r) {
			r = kvmq_opt_val(argc, argv, &i, NULL, "--skip", &val);
			if (r > 0) {
				if (kvmq_parse_u64(val, &c->skip))
					return kvmq_cli_err(err, errlen,
							    "--skip: '%s' is not a number",
							    val);
				fwd_opt = a;
				continue;
			}
		}
		if (!r) {
			r = kvmq_opt_val(argc, argv, &i, NULL, "--count", &val);
			if (r > 0) {
				if (kvmq_parse_u64(val, &c->count) || !c->count)
					return kvmq_cli_err(err, errlen,
							    "--count: '%s' is not a positive number",
							    val);
				recv_opt = a;
				continue;
			}
		}
		if (r < 0)
			return kvmq_cli_err(err, errlen, "%s needs a value", a);
		return kvmq_cli_err(err, errlen, "unknown option '%s'", a);
	}

	if (help || !have_cmd) {
		if (!help)
			return kvmq_cli_err(err, errlen, "no command");
		c->cmd = KVMQ_CMD_HELP;
		return 0;
	}
	if (send_opt && c->cmd != KVMQ_CMD_SEND)
		return kvmq_cli_err(err, errlen, "%s is an option of send",
				    send_opt);
	if (recv_opt && c->cmd != KVMQ_CMD_RECV)
		return kvmq_cli_err(err, errlen, "%s is an option of recv",
				    recv_opt);
	if (queue_opt && c->cmd != KVMQ_CMD_RECV &&
	    c->cmd != KVMQ_CMD_FORWARD)
		return kvmq_cli_err(err, errlen,
				    "%s is an option of recv and forward",
				    queue_opt);
	if (fwd_opt && c->cmd != KVMQ_CMD_FORWARD)
		return kvmq_cli_err(err, errlen, "%s is an option of forward",
				    fwd_opt);

	switch (c->cmd) {
	case KVMQ_CMD_SEND:
		if (npos != 2)
			return kvmq_cli_err(err, errlen,
					    "send needs NAME_OR_ID[:QUEUE] and FILE");
		if (kvmq_parse_target(pos[0], c->target, &c->queue))
			return kvmq_cli_err(err, errlen,
					    "bad destination '%s'", pos[0]);
		c->in = pos[1];
		if (c->kind == KVMQ_MSG_BYTES) {
			if (nr_arg)
				return kvmq_cli_err(err, errlen,
						    "--nr is for --pages and --blocks");
			break;
		}
		c->per_msg = c->kind == KVMQ_MSG_PAGES ?
			     KVMQ_CLI_PAGES_DEFAULT : KVMQ_CLI_BLOCKS_DEFAULT;
		if (nr_arg &&
		    (kvmq_parse_u32(nr_arg, &c->per_msg) || !c->per_msg ||
		     c->per_msg > (c->kind == KVMQ_MSG_PAGES ?
				   KVMQ_MSG_PAGES_MAX : KVMQ_MSG_BLOCKS_MAX)))
			return kvmq_cli_err(err, errlen,
					    "--nr: '%s' out of range (1-%u)",
					    nr_arg, c->kind == KVMQ_MSG_PAGES ?
					    KVMQ_MSG_PAGES_MAX :
					    KVMQ_MSG_BLOCKS_MAX);
		break;
	case KVMQ_CMD_RECV:
		if (npos)
			return kvmq_cli_err(err, errlen,
					    "recv takes no argument ('%s')",
					    pos[0]);
		if (queue_arg &&
		    (kvmq_parse_u32(queue_arg, &c->queue) || !c->queue))
			return kvmq_cli_err(err, errlen,
					    "-q: '%s' is not a data queue",
					    queue_arg);
		break;
	case KVMQ_CMD_FORWARD:
		if (npos != 1)
			return kvmq_cli_err(err, errlen,
					    "forward needs NAME_OR_ID[:QUEUE]");
		if (kvmq_parse_target(pos[0], c->target, &c->dest_queue))
			return kvmq_cli_err(err, errlen,
					    "bad destination '%s'", pos[0]);
		if (queue_arg &&
		    (kvmq_parse_u32(queue_arg, &c->queue) || !c->queue))
			return kvmq_cli_err(err, errlen,
					    "-q: '%s' is not a data queue",
					    queue_arg);
		break;
	default:
		if (npos)
			return kvmq_cli_err(err, errlen,
					    "unexpected argument '%s'", pos[0]);
		break;
	}
	return 0;
}
