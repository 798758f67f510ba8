/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * capture.bpf.h - packet samples for `shhimctl capture` (issue 6), shared
 * by XDP ingress and TC egress. Layout and protocol in shhim_abi.h
 * ("Packet capture").
 *
 * shhim_capture() runs after the parser on every frame it parsed. While no
 * capture is armed it costs one array lookup and a branch. Armed, a frame
 * that passes the filter takes one unit of `remaining` atomically and its
 * headers, up to the end of the L4 header and never further, go to the
 * capture ring buffer. The including program defines SHHIM_HOOK_CTX,
 * SHHIM_HOOK_ID, SHHIM_HOOK_IFINDEX and SHHIM_LOAD_BYTES, and includes
 * parse.bpf.h first.
 */
#ifndef SHHIM_CAPTURE_BPF_H
#define SHHIM_CAPTURE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shhim_capture_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_CAPTURE_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SHHIM_CAPTURE_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_CAPTURE_RING SEC(".maps");

/* The 16 address bytes of a filter entry and of an endpoint are equal. */
static __always_inline int shhim_capture_addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline int shhim_capture_match_ep(const struct shhim_capture_match *m,
						  const struct shhim_endpoint *ep)
{
	if (m->port && m->port != ep->port)
		return 0;
	return !m->match_addr || shhim_capture_addr_eq(m->addr, ep->addr);
}

/* Whether either endpoint of the packet's flow matches one filter entry. */
static __always_inline int shhim_capture_matches(const struct shhim_capture_config *cfg,
						 const struct shhim_pkt *pkt)
{
	__u32 n = cfg->n_matches, i;

	if (!n)
		return 1;
	for (i = 0; i < SHHIM_CAPTURE_MAX_MATCHES; i++) {
		const struct shhim_capture_match *m = &cfg->matches[i];

		if (i >= n)
			break;
		if (shhim_capture_match_ep(m, &pkt->key.a) || shhim_capture_match_ep(m, &pkt->key.b))
			return 1;
	}
	return 0;
}

/*
 * The armed path, out of line so the disarmed path stays small. Sends one
 * sample if the frame passes the filter and a unit of `remaining` is left;
 * a unit taken for a sample that could not be sent (ring full) is given back.
 */
static __noinline void shhim_capture_armed(SHHIM_HOOK_CTX *ctx, struct shhim_capture_config *cfg,
					   const struct shhim_pkt *pkt, __u32 wire_len)
{
	struct shhim_capture_sample *s;
	__u32 ifindex = SHHIM_HOOK_IFINDEX(ctx);
	__u32 cut = pkt->payload_off;
	__s64 before;

	if (pkt->kind != SHHIM_PKT_FLOW && pkt->kind != SHHIM_PKT_ICMP_ERROR)
		return;
	if (cfg->ifindex && cfg->ifindex != ifindex)
		return;
	if (!shhim_capture_matches(cfg, pkt))
		return;
	/* The end of the L4 header; a longer header chain is cut shorter still. */
	if (cut > SHHIM_CAPTURE_MAX_BYTES)
		cut = SHHIM_CAPTURE_MAX_BYTES;
	if (cut < SHHIM_ETH_HLEN)
		return;
	before = __sync_fetch_and_add(&cfg->remaining, -1);
	if (before <= 0)
		return; /* another CPU took the last unit */
	s = bpf_ringbuf_reserve(&SHHIM_MAP_CAPTURE_RING, sizeof(*s), 0);
	if (!s) {
		__sync_fetch_and_add(&cfg->remaining, 1);
		return;
	}
	/*
	 * Checked again on the very register passed to the helper: older
	 * verifiers (6.1) do not carry the bounds checked above over to a copy
	 * the compiler made before the check.
	 */
	asm volatile("" : "+r"(cut));
	if (cut < SHHIM_ETH_HLEN || cut > SHHIM_CAPTURE_MAX_BYTES || SHHIM_LOAD_BYTES(ctx, 0, s->data, cut)) {
		bpf_ringbuf_discard(s, 0);
		__sync_fetch_and_add(&cfg->remaining, 1);
		return;
	}
	s->ts_ns = bpf_ktime_get_ns();
	s->session = cfg->session;
	s->ifindex = ifindex;
	s->wire_len = wire_len;
	s->cap_len = cut;
	s->hook = SHHIM_HOOK_ID;
	s->pad = 0;
	bpf_ringbuf_submit(s, 0);
}

/* Called with every frame the parser accepted; wire_len is the whole frame. */
static __always_inline void shhim_capture(SHHIM_HOOK_CTX *ctx, const struct shhim_pkt *pkt,
					  __u32 wire_len)
{
	__u32 zero = 0;
	struct shhim_capture_config *cfg = bpf_map_lookup_elem(&SHHIM_MAP_CAPTURE_CONFIG, &zero);

	if (cfg && cfg->remaining > 0)
		shhim_capture_armed(ctx, cfg, pkt, wire_len);
}

#endif /* SHHIM_CAPTURE_BPF_H */
