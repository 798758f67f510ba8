// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc_egress.bpf.c - TC egress (clsact, direct action): parse, account,
 * classify, mark (DSCP and skb->priority), shed in stress mode, count per
 * class. Returns TC_ACT_OK, or TC_ACT_SHOT for a packet of a shed class
 * beyond its token bucket while stress mode is on. The accounting is
 * shared with XDP ingress (flow.bpf.h).
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
#include "class.bpf.h"
#include "capture.bpf.h"

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2
/* Most an egress skb is linearised to reach headers in its paged part. */
#define SHHIM_TC_PULL_MAX 1024
#define SHHIM_IPV4_CHECK_OFF 10    /* offsetof(struct iphdr, check) */

/*
 * Writes dscp into the IP header at pkt->l3_off (ECN kept; IPv4 header
 * checksum updated by bpf_l3_csum_replace). Helpers rather than direct
 * writes: a direct write would make the verifier unclone every egress skb
 * (TCP sends clones) before the program runs, marked or not.
 * Returns 1 when the packet changed.
 */
static __always_inline int shhim_tc_mark(struct __sk_buff *skb, const struct shhim_pkt *pkt,
					 __u8 dscp)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 off = pkt->l3_off;
	__u8 *b = data + off;
	__u8 bytes[2];

	/* Unreachable bound (14, 18 or 22); it bounds off for the verifier. */
	if (off > SHHIM_ETH_HLEN + SHHIM_MAX_VLAN_TAGS * SHHIM_VLAN_HLEN)
		return 0;
	if ((void *)(b + 2) > data_end)
		return 0;
	bytes[0] = b[0];
	bytes[1] = b[1];
	if (pkt->key.a.family == SHHIM_FAMILY_IPV4) {
		/* The checksum word holding TOS (after version/IHL), as in memory. */
		__u16 old_word = shhim_be16_word(bytes[0], bytes[1]), new_word;

		if ((bytes[1] >> 2) == dscp)
			return 0;
		bytes[1] = shhim_with_dscp(bytes[1], dscp);
		new_word = shhim_be16_word(bytes[0], bytes[1]);
		if (bpf_skb_store_bytes(skb, off + 1, &bytes[1], 1, 0))
			return 0;
		bpf_l3_csum_replace(skb, off + SHHIM_IPV4_CHECK_OFF, old_word, new_word, 2);
		return 1;
	} else {
		__u8 tclass = shhim_ipv6_tclass(bytes[0], bytes[1]), updated;

		if ((tclass >> 2) == dscp)
			return 0;
		updated = shhim_with_dscp(tclass, dscp);
		bytes[0] = (bytes[0] & 0xf0) | (updated >> 4);
		bytes[1] = (__u8)(updated << 4) | (bytes[1] & 0x0f);
		return bpf_skb_store_bytes(skb, off, bytes, 2, 0) == 0;
	}
}

/*
 * Per-class work of one egress packet of class cls (SHHIM_CLASS_NONE: the
 * default class): shed it in stress mode, or mark it; count it. Only flow
 * packets are marked or shed: ARP, neighbour discovery, ICMP errors and
 * frames the parser refused pass untouched.
 */
static __always_inline int shhim_tc_class(struct __sk_buff *skb, const struct shhim_pkt *pkt,
					  const struct shhim_policy_state *state, __u32 cls)
{
	struct shhim_iface *iface = shhim_iface_get(skb->ifindex);
	__u32 if_slot = shhim_iface_slot(iface), gen = state ? state->generation : 0;
	__u64 bytes = skb->len, segs = skb->gso_segs;
	int rewritten = 0, dropped = 0;

	if (!segs)
		segs = 1;
	if (state && gen) {
		const struct shhim_policy *pol = shhim_policy_get(gen);

		cls = shhim_class_or_default(cls, pol);
		if (pol && pkt->kind == SHHIM_PKT_FLOW) {
			const struct shhim_class_cfg *cfg = &pol->classes[cls & (SHHIM_CLASS_SLOTS - 1)];
			__u64 capacity = iface ? iface->capacity_bps[SHHIM_GEN_SLOT(gen)] : 0;

			if (shhim_stress_sheds(state, if_slot, cls, cfg, capacity, bytes)) {
				dropped = 1;
			} else if (cfg->flags & SHHIM_CLASS_F_MARK) {
				rewritten = shhim_tc_mark(skb, pkt, cfg->dscp);
				if (iface && (iface->flags[SHHIM_GEN_SLOT(gen)] & SHHIM_IFACE_F_HTB))
					skb->priority = SHHIM_CLASS_SKB_PRIORITY(cls);
				else
					skb->priority = cfg->skb_priority;
			}
		}
	} else if (cls >= SHHIM_CLASS_SLOTS) {
		cls = SHHIM_CLASS_DEFAULT;
	}
	shhim_class_count(if_slot, SHHIM_CLASS_DIR_EGRESS, cls, segs, bytes, rewritten, dropped);
	return dropped ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int shhim_tc_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	const struct shhim_policy_state *state = shhim_policy_state_get();
	__u32 gen = state ? state->generation : 0;
	__u64 linear = data_end - data;
	struct shhim_pkt pkt = {};
	__u32 verdict_ctr, cls = SHHIM_CLASS_NONE;
	int verdict;

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
	if (verdict_ctr)
		shhim_count(verdict_ctr);
	else
		cls = shhim_account(skb, &pkt, gen);
	verdict = shhim_tc_class(skb, &pkt, state, cls);
	/* After marking: the sample shows the DSCP the packet leaves with. */
	if (!verdict_ctr)
		shhim_capture(skb, &pkt, skb->len);
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
