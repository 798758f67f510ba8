// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_egress.bpf.c - TC egress (clsact, direct action): parse, account,
 * always TC_ACT_OK. The accounting is shared with XDP ingress (flow.bpf.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"
#include "maps.bpf.h"

/* What the shared parser and accounting need to know about this hook. */
#define SHHIM_HOOK_CTX             struct __sk_buff
#define SHHIM_HOOK_ID              SHHIM_HOOK_TC_EGRESS
#define SHHIM_HOOK_IFINDEX(ctx)    ((ctx)->ifindex)
#define SHHIM_LOAD_BYTES(ctx, off, buf, len) bpf_skb_load_bytes(ctx, off, buf, len)
#include "parse.bpf.h"
#include "flow.bpf.h"

#define TC_ACT_OK 0
/* Most an egress skb is linearised to reach headers in its paged part. */
#define SHHIM_TC_PULL_MAX 1024

SEC("tc")
int shhim_tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u64 linear = data_end - data;
	struct shhim_pkt pkt = {};
	__u32 verdict_ctr;

	shhim_count(SHHIM_CTR_TC_PACKETS);
	verdict_ctr = shhim_parse_frame(skb, skb->len, &pkt);
	/*
	 * Headers usually sit in the linear part. Only when parsing failed and
	 * part of the frame is paged is the skb pulled (it may be copied) and
	 * parsed again, so well-formed packets never pay for it.
	 */
	if (verdict_ctr >= SHHIM_CTR_PERR_FIRST && linear < skb->len) {
		__u32 want = skb->len < SHHIM_TC_PULL_MAX ? skb->len : SHHIM_TC_PULL_MAX;

		if (bpf_skb_pull_data(skb, want) == 0) {
			__builtin_memset(&pkt, 0, sizeof(pkt));
			verdict_ctr = shhim_parse_frame(skb, skb->len, &pkt);
		}
	}
	if (verdict_ctr) {
		shhim_count(verdict_ctr);
		return TC_ACT_OK;
	}
	shhim_account(skb, &pkt);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
