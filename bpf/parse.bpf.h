/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.bpf.h - header parsing shared by XDP ingress and TC egress.
 *
 * shhim_parse() walks Ethernet, up to two VLAN tags, IPv4 (options via IHL,
 * fragments) or IPv6 (bounded walk of extension headers), then TCP, UDP,
 * ICMP or ICMPv6. It fills a struct shhim_pkt with the canonical flow key and
 * what the accounting needs, and returns either 0 (parsed) or the counter
 * (enum shhim_counter) that explains why the frame was not accounted:
 * SHHIM_CTR_NON_IP, SHHIM_CTR_FRAGMENTS or one SHHIM_CTR_PERR_* reason.
 * The parser never decides the verdict: callers always pass the frame.
 *
 * The checks run in a fixed order and the first failing one names the
 * reason; tests/bpf mirrors this order in a userspace classifier:
 *  Ethernet  <14 bytes                                  PERR_ETH_TRUNC
 *  VLAN      tag (4 bytes) missing                      PERR_VLAN_TRUNC
 *            a third 802.1Q/802.1ad tag                 PERR_VLAN_TOO_DEEP
 *            other EtherType                            NON_IP
 *  IPv4      <20 bytes                                  PERR_IPV4_TRUNC
 *            version != 4                               PERR_IPV4_BAD_VERSION
 *            IHL < 5                                    PERR_IPV4_BAD_IHL
 *            header with options beyond the frame       PERR_IPV4_TRUNC
 *            total length < header length               PERR_IPV4_BAD_TOTLEN
 *            total length beyond the frame              PERR_IP_LEN_EXCEEDS_FRAME
 *            fragment offset != 0                       FRAGMENTS
 *  IPv6      <40 bytes                                  PERR_IPV6_TRUNC
 *            version != 6                               PERR_IPV6_BAD_VERSION
 *            40 + payload length beyond the frame       PERR_IP_LEN_EXCEEDS_FRAME
 *            extension header beyond the IP payload     PERR_IPV6_EXT_TRUNC
 *            fragment header with offset != 0           FRAGMENTS
 *            still an extension header after the limit  PERR_IPV6_EXT_TOO_DEEP
 *  TCP       <20 bytes of IP payload                    PERR_TCP_TRUNC
 *            data offset < 5 or beyond the IP payload   PERR_TCP_BAD_DOFF
 *  UDP       <8 bytes of IP payload                     PERR_UDP_TRUNC
 *            length < 8, or beyond the IP payload       PERR_UDP_BAD_LEN
 *            (not checked against the payload in a first fragment)
 *  ICMP(v6)  <8 bytes of IP payload                     PERR_ICMP_TRUNC
 *  errors    quoted IP header (and 8 bytes of TCP/UDP)  PERR_ICMP_INNER_TRUNC
 *            missing or malformed; any defect of the quoted header counts here
 * L4 lengths come from the IP header, never from the frame length, so
 * Ethernet padding is never taken for payload.
 *
 * Verifier cost: after VLAN tags, parsing runs in global BPF functions
 * (shhim_parse_l3, shhim_parse_quoted), which the verifier checks once with
 * an unknown offset instead of once per VLAN depth (untagged frames take an
 * inline copy of the same helpers, for speed), and
 * the IPv6 extension header walk computes lengths without branches so each
 * hop continues as a single verifier state. The including program defines
 * SHHIM_HOOK_CTX (struct xdp_md or struct __sk_buff) first.
 */
#ifndef SHHIM_PARSE_BPF_H
#define SHHIM_PARSE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"

#define SHHIM_ETH_HLEN      14
#define SHHIM_ETH_P_IP      0x0800
#define SHHIM_ETH_P_IPV6    0x86DD
#define SHHIM_ETH_P_8021Q   0x8100
#define SHHIM_ETH_P_8021AD  0x88A8
#define SHHIM_VLAN_HLEN     4
#define SHHIM_MAX_VLAN_TAGS 2
#define SHHIM_IPV4_HLEN     20
#define SHHIM_IPV6_HLEN     40
#define SHHIM_TCP_HLEN      20
#define SHHIM_UDP_HLEN      8
#define SHHIM_ICMP_HLEN     8
/* Quoted transport bytes an ICMP error must carry (RFC 792: 64 bits). */
#define SHHIM_ICMP_QUOTED_L4 8
/* Extension headers walked before giving up (PERR_IPV6_EXT_TOO_DEEP). */
#define SHHIM_MAX_IPV6_EXT  6
/*
 * No header can start beyond this offset: 22 bytes of Ethernet and VLAN,
 * 40 of IPv6, 6 extension headers of at most 2056 bytes, then again for a
 * quoted packet stays below it. Only there to bound offsets for the verifier.
 */
#define SHHIM_MAX_HDR_OFF   0x7fff

#define SHHIM_IPV4_FRAG_OFFSET_MASK 0x1fff
#define SHHIM_IPV4_FRAG_MF          0x2000
#define SHHIM_IPV6_FRAG_OFFSET_MASK 0xfff8
#define SHHIM_IPV6_FRAG_MF          0x0001

#define SHHIM_TCP_FIN 0x01
#define SHHIM_TCP_SYN 0x02
#define SHHIM_TCP_RST 0x04
#define SHHIM_TCP_ACK 0x10

#define SHHIM_IPPROTO_ICMPV6       58 /* a #define in uapi, absent from vmlinux.h */
#define SHHIM_ICMP_ECHOREPLY       0
#define SHHIM_ICMP_DEST_UNREACH    3
#define SHHIM_ICMP_ECHO            8
#define SHHIM_ICMP_TIME_EXCEEDED   11
#define SHHIM_ICMPV6_DEST_UNREACH  1
#define SHHIM_ICMPV6_PKT_TOOBIG    2
#define SHHIM_ICMPV6_TIME_EXCEED   3
#define SHHIM_ICMPV6_ECHO_REQUEST  128
#define SHHIM_ICMPV6_ECHO_REPLY    129

/* IPv6 extension header numbers walked by the parser. */
#define SHHIM_IPV6_HOPOPTS  0
#define SHHIM_IPV6_ROUTING  43
#define SHHIM_IPV6_FRAGMENT 44
#define SHHIM_IPV6_AH       51
#define SHHIM_IPV6_DSTOPTS  60

enum shhim_pkt_kind {
	SHHIM_PKT_OTHER = 0,      /* IP, but nothing to account (ESP, NDP, ...) */
	SHHIM_PKT_FLOW = 1,       /* TCP, UDP, ICMP echo: account to pkt->key */
	SHHIM_PKT_ICMP_ERROR = 2, /* pkt->key is the flow the error quotes */
};

/* What the packet itself says about who the client is. */
enum shhim_role_hint {
	SHHIM_HINT_NONE = 0,
	SHHIM_HINT_SENDER_IS_CLIENT = 1, /* SYN, echo request */
	SHHIM_HINT_SENDER_IS_SERVER = 2, /* SYN-ACK, echo reply */
};

struct shhim_pkt {
	struct shhim_flow_key key; /* canonical */
	__u32 l3_len;              /* IP header and up, from the IP header */
	__u32 payload_off;         /* L4 payload (ICMP: after its 8-byte header), from the start of the frame */
	__u32 payload_len;         /* L4 payload bytes (0 for ICMP) */
	__u8 kind;                 /* enum shhim_pkt_kind */
	__u8 sender_is_b;          /* the sender (for errors: of the quoted packet) is key.b */
	__u8 tcp_flags;
	__u8 role_hint;            /* enum shhim_role_hint */
	__u8 icmp_type;            /* ICMP errors only */
	__u8 icmp_code;
	__u16 l3_off;              /* IP header, from the start of the frame */
	__u8 pad[4];
} __attribute__((aligned(8)));

/* Results of the IPv6 extension header walk. */
enum shhim_ext_result {
	SHHIM_EXT_OK = 0,
	SHHIM_EXT_TRUNC = 1,
	SHHIM_EXT_TOO_DEEP = 2,
	SHHIM_EXT_NONFIRST_FRAG = 3,
};

static __always_inline int shhim_is_vlan(__be16 proto)
{
	return proto == bpf_htons(SHHIM_ETH_P_8021Q) ||
	       proto == bpf_htons(SHHIM_ETH_P_8021AD);
}

static __always_inline void shhim_ep_set(struct shhim_endpoint *ep, __u32 w0, __u32 w1,
					 __u32 w2, __u32 w3, __be16 port, __u8 family,
					 __u8 proto)
{
	__u32 *w = (__u32 *)ep->addr;

	w[0] = w0;
	w[1] = w1;
	w[2] = w2;
	w[3] = w3;
	ep->port = port;
	ep->family = family;
	ep->proto = proto;
}

/* memcmp(s, d) > 0 for addresses given as four network-order words. */
static __always_inline int shhim_addr_gt(__u32 s0, __u32 s1, __u32 s2, __u32 s3, __u32 d0,
					 __u32 d1, __u32 d2, __u32 d3)
{
	if (s0 != d0)
		return bpf_ntohl(s0) > bpf_ntohl(d0);
	if (s1 != d1)
		return bpf_ntohl(s1) > bpf_ntohl(d1);
	if (s2 != d2)
		return bpf_ntohl(s2) > bpf_ntohl(d2);
	return bpf_ntohl(s3) > bpf_ntohl(d3);
}

/*
 * Writes the canonical key for a packet from s to d: endpoint a is the one
 * with the smaller port (host order), ties go to the smaller address.
 * Returns 1 when the sender s became endpoint b.
 */
static __always_inline __u8 shhim_key_set(struct shhim_flow_key *key, __u8 family, __u8 proto,
					  __u32 s0, __u32 s1, __u32 s2, __u32 s3, __u32 d0,
					  __u32 d1, __u32 d2, __u32 d3, __be16 sport,
					  __be16 dport)
{
	__u16 hs = bpf_ntohs(sport), hd = bpf_ntohs(dport);
	__u8 sender_is_b;

	if (hs != hd)
		sender_is_b = hs > hd;
	else
		sender_is_b = shhim_addr_gt(s0, s1, s2, s3, d0, d1, d2, d3);

	if (sender_is_b) {
		shhim_ep_set(&key->a, d0, d1, d2, d3, dport, family, proto);
		shhim_ep_set(&key->b, s0, s1, s2, s3, sport, family, proto);
	} else {
		shhim_ep_set(&key->a, s0, s1, s2, s3, sport, family, proto);
		shhim_ep_set(&key->b, d0, d1, d2, d3, dport, family, proto);
	}
	return sender_is_b;
}

/* IPv4 addresses are stored IPv4-mapped: ::ffff:a.b.c.d */
static __always_inline __u8 shhim_key_set_v4(struct shhim_flow_key *key, __u8 proto, __be32 saddr,
					     __be32 daddr, __be16 sport, __be16 dport)
{
	return shhim_key_set(key, SHHIM_FAMILY_IPV4, proto, 0, 0, bpf_htonl(0xffff), saddr, 0, 0,
			     bpf_htonl(0xffff), daddr, sport, dport);
}

static __always_inline __u8 shhim_key_set_v6(struct shhim_flow_key *key, __u8 proto,
					     const struct in6_addr *s, const struct in6_addr *d,
					     __be16 sport, __be16 dport)
{
	return shhim_key_set(key, SHHIM_FAMILY_IPV6, proto, s->in6_u.u6_addr32[0],
			     s->in6_u.u6_addr32[1], s->in6_u.u6_addr32[2], s->in6_u.u6_addr32[3],
			     d->in6_u.u6_addr32[0], d->in6_u.u6_addr32[1], d->in6_u.u6_addr32[2],
			     d->in6_u.u6_addr32[3], sport, dport);
}

#ifdef SHHIM_HOOK_CTX
/* ---- packet hooks only: the parser proper ---- */

/*
 * TCP or UDP header at l4off, l4len bytes of IP payload. Fills flags and
 * payload position, returns the ports through sport/dport.
 */
static __always_inline __u32 shhim_parse_transport(void *data, void *data_end, __u32 l4off,
						   __u32 l4len, __u8 proto, int more_frags,
						   struct shhim_pkt *pkt, __be16 *sport,
						   __be16 *dport)
{
	if (proto == IPPROTO_TCP) {
		struct tcphdr *th = data + l4off;
		__u32 doff;
		__u8 flags;

		if (l4len < SHHIM_TCP_HLEN || (void *)(th + 1) > data_end)
			return SHHIM_CTR_PERR_TCP_TRUNC;
		doff = th->doff * 4;
		if (doff < SHHIM_TCP_HLEN || doff > l4len)
			return SHHIM_CTR_PERR_TCP_BAD_DOFF;
		flags = ((__u8 *)th)[13];
		pkt->tcp_flags = flags;
		if ((flags & (SHHIM_TCP_SYN | SHHIM_TCP_ACK)) == SHHIM_TCP_SYN)
			pkt->role_hint = SHHIM_HINT_SENDER_IS_CLIENT;
		else if ((flags & (SHHIM_TCP_SYN | SHHIM_TCP_ACK)) == (SHHIM_TCP_SYN | SHHIM_TCP_ACK))
			pkt->role_hint = SHHIM_HINT_SENDER_IS_SERVER;
		pkt->payload_off = l4off + doff;
		pkt->payload_len = l4len - doff;
		*sport = th->source;
		*dport = th->dest;
		return 0;
	} else {
		struct udphdr *uh = data + l4off;
		__u32 ulen;

		if (l4len < SHHIM_UDP_HLEN || (void *)(uh + 1) > data_end)
			return SHHIM_CTR_PERR_UDP_TRUNC;
		ulen = bpf_ntohs(uh->len);
		/* A first fragment carries only part of the datagram. */
		if (ulen < SHHIM_UDP_HLEN || (ulen > l4len && !more_frags))
			return SHHIM_CTR_PERR_UDP_BAD_LEN;
		if (ulen > l4len)
			ulen = l4len;
		pkt->payload_off = l4off + SHHIM_UDP_HLEN;
		pkt->payload_len = ulen - SHHIM_UDP_HLEN;
		*sport = uh->source;
		*dport = uh->dest;
		return 0;
	}
}

/*
 * 1 if a == b, else 0, without a branch. BPF has no set-on-condition, so
 * clang would emit a jump and the verifier would follow two states from
 * there on; the empty asm keeps clang from turning this back into one.
 * Only for values below 2^63.
 */
static __always_inline __u64 shhim_eq(__u64 a, __u64 b)
{
	__u64 x = a ^ b;

	asm volatile("" : "+r"(x));
	return (x - 1) >> 63;
}

/* Any IPv6 extension header the walk understands, as a bit mask of numbers < 64. */
#define SHHIM_IPV6_EXT_MASK ((1ULL << SHHIM_IPV6_HOPOPTS) | (1ULL << SHHIM_IPV6_ROUTING) | \
			     (1ULL << SHHIM_IPV6_FRAGMENT) | (1ULL << SHHIM_IPV6_AH) |      \
			     (1ULL << SHHIM_IPV6_DSTOPTS))

static __always_inline int shhim_is_ipv6_ext_nb(__u64 nexthdr)
{
	return nexthdr < 64 && ((1ULL << nexthdr) & SHHIM_IPV6_EXT_MASK);
}

/*
 * Bounded walk over IPv6 extension headers starting at *off with next header
 * *nexthdr; end is where the IPv6 payload ends. On success *off is the
 * transport header and *nexthdr its protocol. Header lengths:
 * fragment 8, AH (len + 2) * 4, the others (len + 1) * 8.
 */
static __always_inline int shhim_ipv6_skip_ext(void *data, void *data_end, __u32 *off,
					       __u32 end, __u8 *nexthdr, int *more_frags)
{
	__u64 cur = *off, nh = *nexthdr;
	int i;

#pragma unroll
	for (i = 0; i < SHHIM_MAX_IPV6_EXT; i++) {
		__u8 *hdr = data + cur;
		__u64 is_frag, is_ah, hlen, len, frag;

		if (!shhim_is_ipv6_ext_nb(nh))
			goto done;
		/* Every extension header is at least 8 bytes long. */
		if (cur + 8 > end || (void *)(hdr + 8) > data_end)
			return SHHIM_EXT_TRUNC;
		is_frag = shhim_eq(nh, SHHIM_IPV6_FRAGMENT);
		is_ah = shhim_eq(nh, SHHIM_IPV6_AH);
		frag = bpf_ntohs(*(__be16 *)(hdr + 2));
		if (is_frag & (1 ^ shhim_eq(frag & SHHIM_IPV6_FRAG_OFFSET_MASK, 0)))
			return SHHIM_EXT_NONFIRST_FRAG;
		*more_frags |= is_frag & frag & SHHIM_IPV6_FRAG_MF;
		hlen = hdr[1] & (is_frag - 1);      /* a fragment header has no length field */
		len = (hlen + 1 + is_ah) * (8 - 4 * is_ah);
		if (cur + len > end)
			return SHHIM_EXT_TRUNC;
		nh = hdr[0];
		cur += len;
	}
	if (shhim_is_ipv6_ext_nb(nh))
		return SHHIM_EXT_TOO_DEEP;
done:
	*off = cur;
	*nexthdr = nh;
	return SHHIM_EXT_OK;
}

/* The IPv4 packet an ICMP error quotes at ioff, iavail bytes of ICMP body. */
static __always_inline __u32 shhim_parse_inner_ipv4(void *data, void *data_end, __u32 ioff,
						    __u32 iavail, struct shhim_pkt *pkt)
{
	struct iphdr *in = data + ioff;
	__be16 sport = 0, dport = 0;
	__u32 ihl;
	__u8 proto;

	if (iavail < SHHIM_IPV4_HLEN || (void *)(in + 1) > data_end)
		return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
	if (in->version != 4)
		return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
	ihl = in->ihl * 4;
	if (ihl < SHHIM_IPV4_HLEN || ihl > iavail)
		return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
	if (bpf_ntohs(in->frag_off) & SHHIM_IPV4_FRAG_OFFSET_MASK)
		return 0; /* quoted a non-first fragment: no ports, nothing to attribute */
	proto = in->protocol;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		__be16 *ports = data + ioff + ihl;

		if (ihl + SHHIM_ICMP_QUOTED_L4 > iavail || (void *)(ports + 4) > data_end)
			return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
		sport = ports[0];
		dport = ports[1];
	} else if (proto != IPPROTO_ICMP) {
		return 0;
	}
	pkt->sender_is_b = shhim_key_set_v4(&pkt->key, proto, in->saddr, in->daddr, sport, dport);
	pkt->kind = SHHIM_PKT_ICMP_ERROR;
	return 0;
}

static __always_inline __u32 shhim_parse_inner_ipv6(void *data, void *data_end, __u32 ioff,
						    __u32 iavail, struct shhim_pkt *pkt)
{
	struct ipv6hdr *in = data + ioff;
	__be16 sport = 0, dport = 0;
	__u32 end = ioff + iavail, l4off = ioff + SHHIM_IPV6_HLEN;
	int more_frags = 0, ext;
	__u8 nh;

	if (iavail < SHHIM_IPV6_HLEN || (void *)(in + 1) > data_end)
		return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
	if (in->version != 6)
		return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
	nh = in->nexthdr;
	ext = shhim_ipv6_skip_ext(data, data_end, &l4off, end, &nh, &more_frags);
	if (ext == SHHIM_EXT_NONFIRST_FRAG)
		return 0;
	if (ext != SHHIM_EXT_OK)
		return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
	if (nh == IPPROTO_TCP || nh == IPPROTO_UDP) {
		__be16 *ports = data + l4off;

		if (l4off + SHHIM_ICMP_QUOTED_L4 > end || (void *)(ports + 4) > data_end)
			return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
		sport = ports[0];
		dport = ports[1];
	} else if (nh != SHHIM_IPPROTO_ICMPV6) {
		return 0;
	}
	pkt->sender_is_b = shhim_key_set_v6(&pkt->key, nh, &in->saddr, &in->daddr, sport, dport);
	pkt->kind = SHHIM_PKT_ICMP_ERROR;
	return 0;
}

/*
 * The packet an ICMP error quotes, at ioff with iavail bytes of ICMP body:
 * fills pkt->key with the quoted flow (kind SHHIM_PKT_ICMP_ERROR), or
 * leaves kind OTHER when the quote names no flow. Global: verified once.
 */
__noinline __u32 shhim_parse_quoted(SHHIM_HOOK_CTX *ctx, __u32 ioff, __u32 iavail, __u32 family,
				    struct shhim_pkt *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (!pkt)
		return 0;
	/* Unreachable bound (headers end far earlier); it bounds ioff for the verifier. */
	if (ioff > SHHIM_MAX_HDR_OFF)
		return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
	if (family == SHHIM_FAMILY_IPV4)
		return shhim_parse_inner_ipv4(data, data_end, ioff, iavail, pkt);
	return shhim_parse_inner_ipv6(data, data_end, ioff, iavail, pkt);
}

static __always_inline __u32 shhim_parse_ipv4(SHHIM_HOOK_CTX *ctx, void *data, void *data_end,
					      __u32 off, __u32 frame_len, struct shhim_pkt *pkt)
{
	struct iphdr *iph = data + off;
	__u32 ihl, tot, l4off, l4len, err;
	__be16 sport = 0, dport = 0;
	__u16 frag;
	__u8 proto;

#ifndef SHHIM_TEST_UNSAFE_BOUNDS
	/* Test builds drop this check to prove the verifier refuses them. */
	if ((void *)(iph + 1) > data_end)
		return SHHIM_CTR_PERR_IPV4_TRUNC;
#endif
	if (iph->version != 4)
		return SHHIM_CTR_PERR_IPV4_BAD_VERSION;
	ihl = iph->ihl * 4;
	if (ihl < SHHIM_IPV4_HLEN)
		return SHHIM_CTR_PERR_IPV4_BAD_IHL;
	if (data + off + ihl > data_end)
		return SHHIM_CTR_PERR_IPV4_TRUNC;
	tot = bpf_ntohs(iph->tot_len);
	if (tot < ihl)
		return SHHIM_CTR_PERR_IPV4_BAD_TOTLEN;
	if (tot > frame_len - off)
		return SHHIM_CTR_PERR_IP_LEN_EXCEEDS_FRAME;
	frag = bpf_ntohs(iph->frag_off);
	if (frag & SHHIM_IPV4_FRAG_OFFSET_MASK)
		return SHHIM_CTR_FRAGMENTS;

	pkt->l3_len = tot;
	pkt->l3_off = off;
	l4off = off + ihl;
	l4len = tot - ihl;
	proto = iph->protocol;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		err = shhim_parse_transport(data, data_end, l4off, l4len, proto,
					    frag & SHHIM_IPV4_FRAG_MF, pkt, &sport, &dport);
		if (err)
			return err;
	} else if (proto == IPPROTO_ICMP) {
		__u8 *icmp = data + l4off;
		__u8 type;

		if (l4len < SHHIM_ICMP_HLEN || (void *)(icmp + SHHIM_ICMP_HLEN) > data_end)
			return SHHIM_CTR_PERR_ICMP_TRUNC;
		pkt->payload_off = l4off + SHHIM_ICMP_HLEN; /* where a capture cuts */
		type = icmp[0];
		if (type == SHHIM_ICMP_DEST_UNREACH || type == SHHIM_ICMP_TIME_EXCEEDED) {
			pkt->icmp_type = type;
			pkt->icmp_code = icmp[1];
			return shhim_parse_quoted(ctx, l4off + SHHIM_ICMP_HLEN,
						  l4len - SHHIM_ICMP_HLEN, SHHIM_FAMILY_IPV4, pkt);
		}
		if (type == SHHIM_ICMP_ECHO)
			pkt->role_hint = SHHIM_HINT_SENDER_IS_CLIENT;
		else if (type == SHHIM_ICMP_ECHOREPLY)
			pkt->role_hint = SHHIM_HINT_SENDER_IS_SERVER;
		else
			return 0; /* other ICMP: parsed, not accounted */
	} else {
		return 0;
	}
	pkt->sender_is_b = shhim_key_set_v4(&pkt->key, proto, iph->saddr, iph->daddr, sport, dport);
	pkt->kind = SHHIM_PKT_FLOW;
	return 0;
}

static __always_inline __u32 shhim_parse_ipv6(SHHIM_HOOK_CTX *ctx, void *data, void *data_end,
					      __u32 off, __u32 frame_len, struct shhim_pkt *pkt)
{
	struct ipv6hdr *ip6 = data + off;
	__u32 plen, l4off, l4len, end, err;
	__be16 sport = 0, dport = 0;
	int more_frags = 0, ext;
	__u8 nh;

	if ((void *)(ip6 + 1) > data_end)
		return SHHIM_CTR_PERR_IPV6_TRUNC;
	if (ip6->version != 6)
		return SHHIM_CTR_PERR_IPV6_BAD_VERSION;
	plen = bpf_ntohs(ip6->payload_len);
	if (plen + SHHIM_IPV6_HLEN > frame_len - off)
		return SHHIM_CTR_PERR_IP_LEN_EXCEEDS_FRAME;

	pkt->l3_len = plen + SHHIM_IPV6_HLEN;
	pkt->l3_off = off;
	l4off = off + SHHIM_IPV6_HLEN;
	end = l4off + plen;
	nh = ip6->nexthdr;
	ext = shhim_ipv6_skip_ext(data, data_end, &l4off, end, &nh, &more_frags);
	if (ext == SHHIM_EXT_TRUNC)
		return SHHIM_CTR_PERR_IPV6_EXT_TRUNC;
	if (ext == SHHIM_EXT_TOO_DEEP)
		return SHHIM_CTR_PERR_IPV6_EXT_TOO_DEEP;
	if (ext == SHHIM_EXT_NONFIRST_FRAG)
		return SHHIM_CTR_FRAGMENTS;
	l4len = end - l4off;

	if (nh == IPPROTO_TCP || nh == IPPROTO_UDP) {
		err = shhim_parse_transport(data, data_end, l4off, l4len, nh, more_frags, pkt,
					    &sport, &dport);
		if (err)
			return err;
	} else if (nh == SHHIM_IPPROTO_ICMPV6) {
		__u8 *icmp = data + l4off;
		__u8 type;

		if (l4len < SHHIM_ICMP_HLEN || (void *)(icmp + SHHIM_ICMP_HLEN) > data_end)
			return SHHIM_CTR_PERR_ICMP_TRUNC;
		pkt->payload_off = l4off + SHHIM_ICMP_HLEN; /* where a capture cuts */
		type = icmp[0];
		if (type == SHHIM_ICMPV6_DEST_UNREACH || type == SHHIM_ICMPV6_PKT_TOOBIG ||
		    type == SHHIM_ICMPV6_TIME_EXCEED) {
			pkt->icmp_type = type;
			pkt->icmp_code = icmp[1];
			return shhim_parse_quoted(ctx, l4off + SHHIM_ICMP_HLEN,
						  l4len - SHHIM_ICMP_HLEN, SHHIM_FAMILY_IPV6, pkt);
		}
		if (type == SHHIM_ICMPV6_ECHO_REQUEST)
			pkt->role_hint = SHHIM_HINT_SENDER_IS_CLIENT;
		else if (type == SHHIM_ICMPV6_ECHO_REPLY)
			pkt->role_hint = SHHIM_HINT_SENDER_IS_SERVER;
		else
			return 0; /* neighbour discovery, MLD, ...: not accounted */
	} else {
		return 0;
	}
	pkt->sender_is_b = shhim_key_set_v6(&pkt->key, nh, &ip6->saddr, &ip6->daddr, sport, dport);
	pkt->kind = SHHIM_PKT_FLOW;
	return 0;
}

/*
 * Everything from the IP header on, at off (after Ethernet and VLAN tags)
 * with EtherType proto. Global: verified once for every VLAN depth.
 */
__noinline __u32 shhim_parse_l3(SHHIM_HOOK_CTX *ctx, __u32 off, __u32 frame_len, __u32 proto,
				struct shhim_pkt *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (!pkt)
		return 0;
	/* Unreachable bound (the caller passes 14, 18 or 22); it bounds off for the verifier. */
	if (off > SHHIM_ETH_HLEN + SHHIM_MAX_VLAN_TAGS * SHHIM_VLAN_HLEN)
		return SHHIM_CTR_PERR_VLAN_TOO_DEEP;
	if (proto == bpf_htons(SHHIM_ETH_P_IP))
		return shhim_parse_ipv4(ctx, data, data_end, off, frame_len, pkt);
	if (proto == bpf_htons(SHHIM_ETH_P_IPV6))
		return shhim_parse_ipv6(ctx, data, data_end, off, frame_len, pkt);
	return SHHIM_CTR_NON_IP;
}

/*
 * Parses the frame in ctx; frame_len is the whole frame (larger than
 * data_end - data only for a non-linear skb). pkt must be zeroed.
 * Programs call shhim_parse_frame() below.
 */
static __always_inline __u32 shhim_parse(SHHIM_HOOK_CTX *ctx, __u32 frame_len,
					 struct shhim_pkt *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 off = SHHIM_ETH_HLEN;
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return SHHIM_CTR_PERR_ETH_TRUNC;
	proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < SHHIM_MAX_VLAN_TAGS; i++) {
		__be16 *tag = data + off;

		if (!shhim_is_vlan(proto))
			break;
		/* tag[0] is the TCI, tag[1] the encapsulated EtherType */
		if ((void *)(tag + 2) > data_end)
			return SHHIM_CTR_PERR_VLAN_TRUNC;
		proto = tag[1];
		off += SHHIM_VLAN_HLEN;
	}
	if (shhim_is_vlan(proto))
		return SHHIM_CTR_PERR_VLAN_TOO_DEEP;
	if (proto != bpf_htons(SHHIM_ETH_P_IP) && proto != bpf_htons(SHHIM_ETH_P_IPV6))
		return SHHIM_CTR_NON_IP;
	return shhim_parse_l3(ctx, off, frame_len, proto, pkt);
}

/*
 * The entry point. Untagged frames, the common case, are parsed inline:
 * a call costs about as much as the whole IPv4 parse on CPUs whose returns
 * go through a return thunk (SRSO, retbleed mitigations). Tagged frames go
 * through the global function above. Same helpers, two call sites.
 */
static __always_inline __u32 shhim_parse_frame(SHHIM_HOOK_CTX *ctx, __u32 frame_len,
					       struct shhim_pkt *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return SHHIM_CTR_PERR_ETH_TRUNC;
	if (eth->h_proto == bpf_htons(SHHIM_ETH_P_IP))
		return shhim_parse_ipv4(ctx, data, data_end, SHHIM_ETH_HLEN, frame_len, pkt);
	if (eth->h_proto == bpf_htons(SHHIM_ETH_P_IPV6))
		return shhim_parse_ipv6(ctx, data, data_end, SHHIM_ETH_HLEN, frame_len, pkt);
	return shhim_parse(ctx, frame_len, pkt);
}

#endif /* SHHIM_HOOK_CTX */

#endif /* SHHIM_PARSE_BPF_H */
