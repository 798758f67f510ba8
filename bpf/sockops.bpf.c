// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sockops.bpf.c - per-socket TCP telemetry from the cgroup sockops hook:
 * asks for RTT, RTO and state callbacks once a connection is established,
 * then records the smoothed RTT and RTO events into the flow and backend
 * entries the packet hooks created. Never creates entries; returns 1.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"
#include "maps.bpf.h"
#include "flow.bpf.h"

#define SHHIM_AF_INET  2
#define SHHIM_AF_INET6 10

/* Canonical key of the socket; 0 if it is neither IPv4 nor IPv6. */
static __always_inline int shhim_sockops_key(struct bpf_sock_ops *skops,
					     struct shhim_flow_key *key)
{
	__u32 local[4], remote[4];
	__be16 lport = bpf_htons((__u16)skops->local_port);
	__be16 rport = bpf_htons((__u16)bpf_ntohl(skops->remote_port));
	__u8 family;

	if (skops->family == SHHIM_AF_INET) {
		local[0] = remote[0] = 0;
		local[1] = remote[1] = 0;
		local[2] = remote[2] = bpf_htonl(0xffff);
		local[3] = skops->local_ip4;
		remote[3] = skops->remote_ip4;
		family = SHHIM_FAMILY_IPV4;
	} else if (skops->family == SHHIM_AF_INET6) {
		local[0] = skops->local_ip6[0];
		local[1] = skops->local_ip6[1];
		local[2] = skops->local_ip6[2];
		local[3] = skops->local_ip6[3];
		remote[0] = skops->remote_ip6[0];
		remote[1] = skops->remote_ip6[1];
		remote[2] = skops->remote_ip6[2];
		remote[3] = skops->remote_ip6[3];
		/* A dual-stack socket talking IPv4 sends IPv4 packets. */
		if (!local[0] && !local[1] && local[2] == bpf_htonl(0xffff))
			family = SHHIM_FAMILY_IPV4;
		else
			family = SHHIM_FAMILY_IPV6;
	} else {
		return 0;
	}
	shhim_key_from_sock(key, family, local, remote, lport, rport);
	return 1;
}

static __always_inline void shhim_sockops_rtt(struct bpf_sock_ops *skops)
{
	struct shhim_flow_key key;
	struct shhim_flow *f;
	struct shhim_backend *be;
	/* tcp_sock keeps srtt_us scaled by 8 */
	__u32 srtt_us = skops->srtt_us >> 3;

	if (!shhim_sockops_key(skops, &key))
		return;
	f = bpf_map_lookup_elem(&SHHIM_MAP_FLOWS, &key);
	if (!f)
		return;
	f->srtt_us = srtt_us;
	be = shhim_backend_lookup(&key, f->client_is_b);
	if (!be)
		return;
	shhim_atomic_add(&be->srtt_us_sum, srtt_us);
	shhim_atomic_add(&be->srtt_samples, 1);
	be->srtt_us_last = srtt_us;
}

static __always_inline void shhim_sockops_rto(struct bpf_sock_ops *skops)
{
	struct shhim_flow_key key;
	struct shhim_flow *f;
	struct shhim_backend *be;

	if (!shhim_sockops_key(skops, &key))
		return;
	f = bpf_map_lookup_elem(&SHHIM_MAP_FLOWS, &key);
	if (!f)
		return;
	shhim_atomic_add(&f->rto_events, 1);
	be = shhim_backend_lookup(&key, f->client_is_b);
	if (be)
		shhim_atomic_add(&be->rto_events, 1);
}

SEC("sockops")
int shhim_sockops(struct bpf_sock_ops *skops)
{
	shhim_count(SHHIM_CTR_SOCKOPS_CALLS);

	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_RTT_CB_FLAG |
						 BPF_SOCK_OPS_RTO_CB_FLAG |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		shhim_sockops_rtt(skops);
		break;
	case BPF_SOCK_OPS_RTO_CB:
		shhim_sockops_rto(skops);
		break;
	default:
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
