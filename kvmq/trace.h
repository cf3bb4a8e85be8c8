/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvmq

#if !defined(_KVMQ_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _KVMQ_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(kvmq_hypercall,
	    TP_PROTO(u32 id, unsigned int vcpu_id, unsigned long nr,
		     unsigned long a0, unsigned long a1, unsigned long a2,
		     unsigned long a3),
	    TP_ARGS(id, vcpu_id, nr, a0, a1, a2, a3),
	    TP_STRUCT__entry(__field(u32, id)
			     __field(unsigned int, vcpu_id)
			     __field(unsigned long, nr)
			     __field(unsigned long, a0)
			     __field(unsigned long, a1)
			     __field(unsigned long, a2)
			     __field(unsigned long, a3)),
	    TP_fast_assign(__entry->id = id;
			   __entry->vcpu_id = vcpu_id;
			   __entry->nr = nr;
			   __entry->a0 = a0;
			   __entry->a1 = a1;
			   __entry->a2 = a2;
			   __entry->a3 = a3;),
	    TP_printk("id %u vcpu %u nr 0x%lx a0 0x%lx a1 0x%lx a2 0x%lx a3 0x%lx",
		      __entry->id, __entry->vcpu_id, __entry->nr, __entry->a0,
		      __entry->a1, __entry->a2, __entry->a3)
);

TRACE_EVENT(kvmq_hypercall_done,
	    TP_PROTO(u32 id, unsigned int vcpu_id, unsigned long nr,
		     unsigned long ret),
	    TP_ARGS(id, vcpu_id, nr, ret),
	    TP_STRUCT__entry(__field(u32, id)
			     __field(unsigned int, vcpu_id)
			     __field(unsigned long, nr)
			     __field(unsigned long, ret)),
	    TP_fast_assign(__entry->id = id;
			   __entry->vcpu_id = vcpu_id;
			   __entry->nr = nr;
			   __entry->ret = ret;),
	    TP_printk("id %u vcpu %u nr 0x%lx ret %ld", __entry->id,
		      __entry->vcpu_id, __entry->nr, (long)__entry->ret)
);

/* A submission entry runs (KVMQ_HC_SUBMIT, or a lazy batch). */
TRACE_EVENT(kvmq_submit,
	    TP_PROTO(u32 id, unsigned int vcpu_id, u8 op, u8 flags,
		     u64 user_data),
	    TP_ARGS(id, vcpu_id, op, flags, user_data),
	    TP_STRUCT__entry(__field(u32, id)
			     __field(unsigned int, vcpu_id)
			     __field(u8, op)
			     __field(u8, flags)
			     __field(u64, user_data)),
	    TP_fast_assign(__entry->id = id;
			   __entry->vcpu_id = vcpu_id;
			   __entry->op = op;
			   __entry->flags = flags;
			   __entry->user_data = user_data;),
	    TP_printk("id %u vcpu %u op %u flags 0x%x user_data 0x%llx",
		      __entry->id, __entry->vcpu_id, __entry->op,
		      __entry->flags, __entry->user_data)
);

/* A message enters a queue of VM @id (index @qidx of its queues). */
TRACE_EVENT(kvmq_deliver,
	    TP_PROTO(u32 id, u32 qidx, u32 sender, u32 kind, u32 len),
	    TP_ARGS(id, qidx, sender, kind, len),
	    TP_STRUCT__entry(__field(u32, id)
			     __field(u32, qidx)
			     __field(u32, sender)
			     __field(u32, kind)
			     __field(u32, len)),
	    TP_fast_assign(__entry->id = id;
			   __entry->qidx = qidx;
			   __entry->sender = sender;
			   __entry->kind = kind;
			   __entry->len = len;),
	    TP_printk("id %u queue #%u sender %u kind %u len %u", __entry->id,
		      __entry->qidx, __entry->sender, __entry->kind,
		      __entry->len)
);

/* VM @id receives a message: by KVMQ_HC_RECV, or into a receive ring. */
TRACE_EVENT(kvmq_consume,
	    TP_PROTO(u32 id, u32 qidx, u32 sender, u32 kind, u64 gpa),
	    TP_ARGS(id, qidx, sender, kind, gpa),
	    TP_STRUCT__entry(__field(u32, id)
			     __field(u32, qidx)
			     __field(u32, sender)
			     __field(u32, kind)
			     __field(u64, gpa)),
	    TP_fast_assign(__entry->id = id;
			   __entry->qidx = qidx;
			   __entry->sender = sender;
			   __entry->kind = kind;
			   __entry->gpa = gpa;),
	    TP_printk("id %u queue #%u sender %u kind %u gpa 0x%llx",
		      __entry->id, __entry->qidx, __entry->sender,
		      __entry->kind, __entry->gpa)
);

/* Pages leave VM @id's aperture: one unmap of indices @lo to @hi. */
TRACE_EVENT(kvmq_move,
	    TP_PROTO(u32 id, unsigned long lo, unsigned long hi),
	    TP_ARGS(id, lo, hi),
	    TP_STRUCT__entry(__field(u32, id)
			     __field(unsigned long, lo)
			     __field(unsigned long, hi)),
	    TP_fast_assign(__entry->id = id;
			   __entry->lo = lo;
			   __entry->hi = hi;),
	    TP_printk("id %u pages 0x%lx-0x%lx", __entry->id, __entry->lo,
		      __entry->hi)
);

#endif /* _KVMQ_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
