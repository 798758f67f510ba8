// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcp_trace.bpf.c - TCP tracepoints (BTF-typed): retransmits go into the
 * flow and backend entries when they exist (tracepoints never create
 * entries); resets and state changes are counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "shhim_abi.h"
#include "maps.bpf.h"
#include "flow.bpf.h"

#define SHHIM_AF_INET  2
#define SHHIM_AF_INET6 10

/* Canonical key of a TCP socket; 0 if it is neither IPv4 nor IPv6. */
static __always_inline int shhim_sock_key(const struct sock *sk, struct shhim_flow_key *key)
{
	const struct sock_common *skc = &sk->__sk_common;
	__u32 local[4], remote[4];
	__be16 lport = bpf_htons(skc->skc_num);
	__be16 rport = skc->skc_dport;
	__u16 family = skc->skc_family;
	__u8 fam;
	int i;

	if (family == SHHIM_AF_INET) {
		local[0] = remote[0] = 0;
		local[1] = remote[1] = 0;
		local[2] = remote[2] = bpf_htonl(0xffff);
		local[3] = skc->skc_rcv_saddr;
		remote[3] = skc->skc_daddr;
		fam = SHHIM_FAMILY_IPV4;
	} else if (family == SHHIM_AF_INET6) {
#pragma unroll
		for (i = 0; i < 4; i++) {
			local[i] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[i];
			remote[i] = skc->skc_v6_daddr.in6_u.u6_addr32[i];
		}
		/* A dual-stack socket talking IPv4 sends IPv4 packets. */
		if (!local[0] && !local[1] && local[2] == bpf_htonl(0xffff))
			fam = SHHIM_FAMILY_IPV4;
		else
			fam = SHHIM_FAMILY_IPV6;
	} else {
		return 0;
	}
	shhim_key_from_sock(key, fam, local, remote, lport, rport);
	return 1;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(shhim_tp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	struct shhim_flow_key key;
	struct shhim_flow *f;
	struct shhim_backend *be;

	shhim_count(SHHIM_CTR_TP_RETRANSMITS);
	if (!sk || !shhim_sock_key(sk, &key))
		return 0;
	f = bpf_map_lookup_elem(&SHHIM_MAP_FLOWS, &key);
	if (!f)
		return 0;
	shhim_atomic_add(&f->retransmits, 1);
	be = shhim_backend_lookup(&key, f->client_is_b);
	if (be)
		shhim_atomic_add(&be->retransmits, 1);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(shhim_tp_receive_reset, struct sock *sk)
{
	shhim_count(SHHIM_CTR_TP_RESETS);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(shhim_tp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	shhim_count(SHHIM_CTR_TP_STATE_CHANGES);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
