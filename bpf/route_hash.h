/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * route_hash.h - the one backend choice, shared by the cgroup hooks
 * (bpf/connect.bpf.c) and userspace (tests, and anyone who must predict
 * where a key goes). Pure C: integers only, bounded loops, no helpers.
 *
 * Weighted rendezvous (highest random weight) hashing: every UP member i of
 * a pool draws h_i = hash(key, backend id) and scores -ln(h_i / 2^32) / w_i;
 * the smallest score wins. The scores are exponential races, so member i
 * wins with probability w_i / sum(w), and removing a member moves only the
 * keys it had won (every other member's score is unchanged).
 *
 * -log2 stands in for -ln (a common factor), in Q24 fixed point: the
 * integer part from the highest set bit, 24 fraction bits by repeated
 * squaring of the mantissa (branch-free, so the verifier sees one path).
 */
#ifndef SHHIM_ROUTE_HASH_H
#define SHHIM_ROUTE_HASH_H

#include "shhim_abi.h"

#define SHHIM_HRW_FRAC_BITS 24
#define SHHIM_HRW_NONE      (-1)

/* splitmix64's finalizer: a bijective 64-bit mixer. */
static inline __u64 shhim_mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* The draw of backend_id for key: 32 well-mixed bits, never 0. */
static inline __u32 shhim_hrw_draw(__u64 key, __u32 backend_id)
{
	__u32 h = (__u32)(shhim_mix64(key ^ ((__u64)backend_id * 0x9e3779b97f4a7c15ULL)) >> 32);

	return h ? h : 1;
}

/*
 * -log2(h / 2^32) in Q24 for h in 1..2^32-1: 32 - log2(h), in (0, 32].
 * Branch-free (x > c as the sign of c - x): the verifier sees one path.
 */
static inline __u64 shhim_neg_log2_q24(__u32 h)
{
	__u64 v = (__u64)h | ((((__u64)h) - 1) >> 63), m, frac = 0, k = 0, t;  /* h 0 as 1 */
	__u32 i;

	t = ((0xffffULL - v) >> 63) << 4; v >>= t; k += t;
	t = ((0xffULL - v) >> 63) << 3;   v >>= t; k += t;
	t = ((0xfULL - v) >> 63) << 2;    v >>= t; k += t;
	t = ((0x3ULL - v) >> 63) << 1;    v >>= t; k += t;
	k += (0x1ULL - v) >> 63;
	/* mantissa h / 2^k in [1, 2) as Q31 */
	m = ((__u64)h | ((((__u64)h) - 1) >> 63)) << ((31 - k) & 31);
	for (i = 0; i < SHHIM_HRW_FRAC_BITS; i++) {
		__u64 bit;

		m = (m * m) >> 31;       /* [1, 4) as Q31 */
		bit = m >> 32;           /* 1 when the square reached 2 */
		m >>= bit;
		frac = (frac << 1) | bit;
	}
	return ((32 - k) << SHHIM_HRW_FRAC_BITS) - frac;
}

/*
 * The score of one member, < 2^49: -log2(draw) / weight, as Q24 << 20. A
 * weight of 0 counts as 1 here (no division by 0); the pick leaves such a
 * member out.
 */
static inline __u64 shhim_hrw_score(__u64 key, __u32 backend_id, __u32 weight)
{
	__u64 w = weight;

	w |= (w - 1) >> 63;   /* 0 as 1 */
	/* x < 2^29, so x << 20 < 2^49 */
	return (shhim_neg_log2_q24(shhim_hrw_draw(key, backend_id)) << 20) / w;
}

/*
 * In BPF the pick calls the score through a GLOBAL function (defined in
 * connect.bpf.c): scalars in, scalar out, so the verifier checks the log
 * loop once on its own instead of once per member on every path of the
 * pick (which ran past its 1M-instruction limit). Elsewhere: the inline.
 */
#if defined(__bpf__)
__u64 shhim_hrw_member_score(__u64 key, __u32 backend_id, __u32 weight);
#define SHHIM_HRW_MEMBER_SCORE shhim_hrw_member_score
#else
#define SHHIM_HRW_MEMBER_SCORE shhim_hrw_score
#endif

/*
 * x, hidden from the optimiser: clang turns "keep the smaller" arithmetic
 * back into a conditional jump, which doubles the verifier's paths per
 * member. Costs nothing at run time (an empty asm).
 */
#if defined(__bpf__)
#define SHHIM_OPAQUE(x) asm volatile("" : "+r"(x))
#else
#define SHHIM_OPAQUE(x) ((void)0)
#endif

/* Larger than any score (< 2^53): "nobody". */
#define SHHIM_HRW_NOBODY (1ULL << 62)

/*
 * Index of the chosen member among members[0..n) whose bit is set in
 * up_mask (and whose weight is not 0), or SHHIM_HRW_NONE. Score and index
 * travel in one integer (score << 4 | index); ineligible members score
 * SHHIM_HRW_NOBODY. members must hold SHHIM_ROUTE_POOL_MAX entries (as
 * shhim_route's pools do); those from n on are ignored.
 */
static inline int shhim_hrw_pick(const struct shhim_route_member *members, __u32 n, __u32 up_mask, __u64 key)
{
	__u64 best = SHHIM_HRW_NOBODY;
	__u32 i;

	for (i = 0; i < SHHIM_ROUTE_POOL_MAX; i++) {
		__u64 score, w, out, lt;

		w = members[i].weight;
		/* beyond n, down, or weight 0 */
		out = (((__u64)n - 1 - i) >> 63) | ((~(__u64)up_mask >> i) & 1) | ((w - 1) >> 63);
		score = SHHIM_HRW_MEMBER_SCORE(key, members[i].backend_id, (__u32)w);
		score = (score << 4) | i;                             /* < 2^53 */
		score |= (0 - out) & SHHIM_HRW_NOBODY;
		lt = (score - best) >> 63;                            /* both < 2^63 */
		SHHIM_OPAQUE(lt);
		best += (score - best) & (0 - lt);
	}
	if (best >= SHHIM_HRW_NOBODY)
		return SHHIM_HRW_NONE;
	return (int)(best & (SHHIM_ROUTE_POOL_MAX - 1));
}

/*
 * The backend id for key: the active pool's pick among its UP members,
 * else the other pool's, else 0 (leave the destination unchanged).
 * up[p]: bit i set when pools[p][i] is UP. *pool_out: the pool used.
 */
static inline __u32 shhim_route_choose(const struct shhim_route *route, const __u32 up[SHHIM_POOLS], __u64 key,
				       __u32 *pool_out)
{
	__u32 first = route->active_pool & 1, p, pool, n;
	int idx;

	for (p = 0; p < SHHIM_POOLS; p++) {
		pool = (first + p) & 1;
		n = route->count[pool];
		if (n > SHHIM_ROUTE_POOL_MAX)
			n = SHHIM_ROUTE_POOL_MAX;
		/* no variable index into the caller's stack: older verifiers refuse it */
		idx = shhim_hrw_pick(route->pools[pool], n, pool ? up[1] : up[0], key);
		if (idx >= 0 && idx < SHHIM_ROUTE_POOL_MAX) {
			*pool_out = pool;
			return route->pools[pool][idx].backend_id;
		}
	}
	return 0;
}

#endif /* SHHIM_ROUTE_HASH_H */
