// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * packet_loss.bpf.c - test rig only, never shipped: random loss of one
 * backend's TCP packets, because this kernel has no netem. Two TC (clsact,
 * direct action) programs for the services-side veth:
 *   loss_ingress  drops packets whose TCP destination port is a rule's
 *                 port (client -> backend);
 *   loss_egress   drops packets whose TCP source port is a rule's port
 *                 (backend -> client).
 * Rules live in the array map loss_rules (SHHIM_LOSS_RULES slots of
 * {port, drop per million}); port 0 is an empty slot. A script changes them
 * with `bpftool map update` (vm-tests/lib/packet_loss.sh). Each slot counts
 * the packets it matched and dropped in loss_stats, so a recording can
 * say how much was lost. Everything else passes: non-IP, non-TCP, IPv4
 * fragments past the first, and IPv6 packets whose next header is not TCP
 * directly (the testbed sends no extension headers).
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2

#define SHHIM_LOSS_RULES   8
#define SHHIM_LOSS_PER     1000000u   /* drop_ppm is out of this */
#define LOSS_ETH_HLEN      14
#define LOSS_ETH_P_IP      0x0800
#define LOSS_ETH_P_IPV6    0x86DD
#define LOSS_IPPROTO_TCP   6
#define LOSS_IPV6_HLEN     40
#define LOSS_IPV4_FRAG_OFF 0x1fff

/* The layout a script writes: 8 bytes, host byte order. */
struct shhim_loss_rule {
	__u16 port;       /* the backend's TCP port; 0 = slot unused */
	__u16 pad;
	__u32 drop_ppm;   /* share of matching packets dropped, per million */
};

struct shhim_loss_stat {
	__u64 matched;
	__u64 dropped;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_LOSS_RULES);
	__type(key, __u32);
	__type(value, struct shhim_loss_rule);
} loss_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_LOSS_RULES);
	__type(key, __u32);
	__type(value, struct shhim_loss_stat);
} loss_stats SEC(".maps");

/*
 * The TCP source and destination ports (network order) of an untagged
 * IPv4/IPv6 frame; returns 0 when it found them, -1 for anything else.
 */
static __always_inline int loss_tcp_ports(struct __sk_buff *skb, __u16 ports[2])
{
	__u16 proto = bpf_ntohs(skb->protocol);
	__u32 l4_off;
	__u8 b[10];

	if (proto == LOSS_ETH_P_IP) {
		/* b[0]: version/IHL, b[6..7]: flags and fragment offset, b[9]: protocol. */
		if (bpf_skb_load_bytes(skb, LOSS_ETH_HLEN, b, sizeof(b)))
			return -1;
		if (b[9] != LOSS_IPPROTO_TCP || (((b[6] << 8) | b[7]) & LOSS_IPV4_FRAG_OFF) != 0)
			return -1;
		l4_off = LOSS_ETH_HLEN + (__u32)(b[0] & 0x0f) * 4;
	} else if (proto == LOSS_ETH_P_IPV6) {
		/* Byte 6 of the IPv6 header: the next header. */
		if (bpf_skb_load_bytes(skb, LOSS_ETH_HLEN + 6, b, 1) || b[0] != LOSS_IPPROTO_TCP)
			return -1;
		l4_off = LOSS_ETH_HLEN + LOSS_IPV6_HLEN;
	} else {
		return -1;
	}
	return bpf_skb_load_bytes(skb, l4_off, ports, 4) ? -1 : 0;
}

/*
 * The verdict for a packet whose backend-side port is `port` (host order):
 * the first rule with that port decides, by a uniform draw.
 */
static __always_inline int loss_verdict(__u16 port)
{
	for (__u32 i = 0; i < SHHIM_LOSS_RULES; i++) {
		__u32 key = i;
		struct shhim_loss_rule *rule = bpf_map_lookup_elem(&loss_rules, &key);
		struct shhim_loss_stat *stat;

		if (!rule || rule->port == 0 || rule->port != port)
			continue;
		stat = bpf_map_lookup_elem(&loss_stats, &key);
		if (stat)
			__sync_fetch_and_add(&stat->matched, 1);
		if (rule->drop_ppm == 0 || bpf_get_prandom_u32() % SHHIM_LOSS_PER >= rule->drop_ppm)
			return TC_ACT_OK;
		if (stat)
			__sync_fetch_and_add(&stat->dropped, 1);
		return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

SEC("tc")
int loss_ingress(struct __sk_buff *skb)
{
	__u16 ports[2];

	if (loss_tcp_ports(skb, ports))
		return TC_ACT_OK;
	return loss_verdict(bpf_ntohs(ports[1]));
}

SEC("tc")
int loss_egress(struct __sk_buff *skb)
{
	__u16 ports[2];

	if (loss_tcp_ports(skb, ports))
		return TC_ACT_OK;
	return loss_verdict(bpf_ntohs(ports[0]));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
