// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_ingress.bpf.c - XDP ingress: parse, account, classify, count per
 * class, re-mark untrusted DSCP where the interface's policy says so;
 * always XDP_PASS. The accounting is shared with TC egress (flow.bpf.h).
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
#include "class.bpf.h"
#include "capture.bpf.h"

/*
 * Rewrites the DSCP of the IP header at pkt->l3_off in place (ECN kept,
 * IPv4 header checksum updated). Returns 1 when the packet changed.
 */
static __always_inline int shhim_xdp_remark(struct xdp_md *ctx, const struct shhim_pkt *pkt,
					    __u8 dscp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = pkt->l3_off;

	/* Unreachable bound (14, 18 or 22); it bounds off for the verifier. */
	if (off > SHHIM_ETH_HLEN + SHHIM_MAX_VLAN_TAGS * SHHIM_VLAN_HLEN)
		return 0;
	if (pkt->key.a.family == SHHIM_FAMILY_IPV4) {
		struct iphdr *iph = data + off;
		__u16 old_word, new_word;
		__u8 tos;

		if ((void *)(iph + 1) > data_end)
			return 0;
		tos = iph->tos;
		if ((tos >> 2) == dscp)
			return 0;
		/*
		 * The 16-bit word of the checksum that holds TOS (after version/IHL),
		 * built from bytes: reading it through a __u16 pointer into the
		 * header would let the compiler reuse the value from before the store.
		 */
		old_word = shhim_be16_word(((__u8 *)iph)[0], tos);
		tos = shhim_with_dscp(tos, dscp);
		new_word = shhim_be16_word(((__u8 *)iph)[0], tos);
		iph->tos = tos;
		iph->check = shhim_csum_replace2(iph->check, old_word, new_word);
		return 1;
	} else {
		__u8 *b = data + off;
		__u8 tclass, updated;

		if ((void *)(b + 2) > data_end)
			return 0;
		tclass = shhim_ipv6_tclass(b[0], b[1]);
		if ((tclass >> 2) == dscp)
			return 0;
		updated = shhim_with_dscp(tclass, dscp);
		b[0] = (b[0] & 0xf0) | (updated >> 4);
		b[1] = (__u8)(updated << 4) | (b[1] & 0x0f);
		return 1;
	}
}

/*
 * Per-class work of one ingress packet of class cls (SHHIM_CLASS_NONE: the
 * default class): re-mark when the interface asks for it, then count.
 */
static __always_inline void shhim_xdp_class(struct xdp_md *ctx, const struct shhim_pkt *pkt,
					    __u32 gen, __u32 cls, __u64 bytes)
{
	struct shhim_iface *iface = shhim_iface_get(ctx->ingress_ifindex);
	int rewritten = 0;

	if (gen && (cls >= SHHIM_CLASS_SLOTS ||
		    (iface && (iface->flags[SHHIM_GEN_SLOT(gen)] & SHHIM_IFACE_F_REMARK)))) {
		const struct shhim_policy *pol = shhim_policy_get(gen);

		cls = shhim_class_or_default(cls, pol);
		if (pol && pkt->kind == SHHIM_PKT_FLOW && iface &&
		    (iface->flags[SHHIM_GEN_SLOT(gen)] & SHHIM_IFACE_F_REMARK)) {
			const struct shhim_class_cfg *cfg = &pol->classes[cls & (SHHIM_CLASS_SLOTS - 1)];

			if (cfg->flags & SHHIM_CLASS_F_MARK)
				rewritten = shhim_xdp_remark(ctx, pkt, cfg->dscp);
		}
	} else if (cls >= SHHIM_CLASS_SLOTS) {
		cls = SHHIM_CLASS_DEFAULT;
	}
	shhim_class_count(shhim_iface_slot(iface), SHHIM_CLASS_DIR_INGRESS, cls, 1, bytes, rewritten, 0);
}

SEC("xdp")
int shhim_xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const struct shhim_policy_state *state = shhim_policy_state_get();
	__u32 gen = state ? state->generation : 0;
	__u64 bytes = data_end - data;
	struct shhim_pkt pkt = {};
	__u32 verdict_ctr, cls = SHHIM_CLASS_NONE;

	shhim_count(SHHIM_CTR_XDP_PACKETS);
	verdict_ctr = shhim_parse_frame(ctx, (__u32)bytes, &pkt);
	if (verdict_ctr)
		shhim_count(verdict_ctr);
	else
		cls = shhim_account(ctx, &pkt, gen);
	shhim_xdp_class(ctx, &pkt, gen, cls, bytes);
	if (!verdict_ctr)
		shhim_capture(ctx, &pkt, (__u32)bytes);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
