// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_ingress.bpf.c - XDP ingress: parse, account, always XDP_PASS.
 * The accounting is shared with TC egress (flow.bpf.h).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"
#include "maps.bpf.h"

/* What the shared parser and accounting need to know about this hook. */
#define SHHIM_HOOK_CTX             struct xdp_md
#define SHHIM_HOOK_ID              SHHIM_HOOK_XDP_INGRESS
#define SHHIM_HOOK_IFINDEX(ctx)    ((ctx)->ingress_ifindex)
#define SHHIM_LOAD_BYTES(ctx, off, buf, len) bpf_xdp_load_bytes(ctx, off, buf, len)
#include "parse.bpf.h"
#include "flow.bpf.h"

SEC("xdp")
int shhim_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct shhim_pkt pkt = {};
	__u32 verdict_ctr;

	shhim_count(SHHIM_CTR_XDP_PACKETS);
	verdict_ctr = shhim_parse_frame(ctx, (__u32)(data_end - data), &pkt);
	if (verdict_ctr) {
		shhim_count(verdict_ctr);
		return XDP_PASS;
	}
	shhim_account(ctx, &pkt);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
