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

#endif /* _KVMQ_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
