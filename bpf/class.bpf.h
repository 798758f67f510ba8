/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * class.bpf.h - priority classes: classification of a flow under a policy
 * generation, per-class per-interface counters, DSCP rewriting helpers and
 * the stress-mode token buckets. Layout and semantics: shhim_abi.h.
 *
 * Cost model. Per packet: the policy state (generation, stress), the
 * interface entry and the class counter are array lookups, which the
 * verifier inlines into a bounds check and an address computation; the
 * flow's cached class_gen decides whether the flow must be classified again.
 * The hash and LPM lookups of shhim_classify() run once per flow and policy
 * generation. The policy slot (class configs) is looked up only where it is
 * needed: on egress, and on ingress when the interface re-marks.
 *
 * Atomicity of a policy change: a packet reads the generation exactly once
 * (shhim_policy_gen) and every policy lookup afterwards uses that
 * generation's slot; userspace never writes the slot of the current
 * generation, nor the other one before every program that could have read
 * the previous generation has returned (an RCU grace period). So each packet
 * sees exactly one complete policy.
 */
#ifndef SHHIM_CLASS_BPF_H
#define SHHIM_CLASS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"
#include "maps.bpf.h"
#include "parse.bpf.h"

#define SHHIM_CLASS_NONE 0xffu     /* not decided: the policy's default class applies */
#define SHHIM_NSEC_PER_SEC 1000000000ULL
/* Largest burst the bucket arithmetic takes (bytes * 8e9 stays below 2^64). */
#define SHHIM_MAX_BURST_BYTES (1u << 30)

static __always_inline struct shhim_policy_state *shhim_policy_state_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&SHHIM_MAP_POLICY_STATE, &zero);
}

static __always_inline struct shhim_policy *shhim_policy_get(__u32 gen)
{
	__u32 slot = SHHIM_GEN_SLOT(gen);

	return bpf_map_lookup_elem(&SHHIM_MAP_POLICIES, &slot);
}

/* The interface's entry, NULL for an ifindex beyond the table. */
static __always_inline struct shhim_iface *shhim_iface_get(__u32 ifindex)
{
	if (ifindex >= SHHIM_MAX_IFINDEX)
		return NULL;
	return bpf_map_lookup_elem(&SHHIM_MAP_IFACES, &ifindex);
}

static __always_inline __u32 shhim_iface_slot(const struct shhim_iface *iface)
{
	return iface ? iface->slot & (SHHIM_MAX_IF_SLOTS - 1) : 0;
}

/* A class id, or the policy's default for SHHIM_CLASS_NONE (and anything out of range). */
static __always_inline __u32 shhim_class_or_default(__u32 cls, const struct shhim_policy *pol)
{
	if (cls < SHHIM_CLASS_SLOTS)
		return cls;
	if (pol && pol->default_class < SHHIM_CLASS_SLOTS)
		return pol->default_class;
	return SHHIM_CLASS_DEFAULT;
}

static __always_inline void shhim_class_count(__u32 if_slot, __u32 dir, __u32 cls, __u64 packets,
					      __u64 bytes, int rewritten, int dropped)
{
	__u32 idx = shhim_class_counter_index(if_slot & (SHHIM_MAX_IF_SLOTS - 1), dir & 1,
					      cls & (SHHIM_CLASS_SLOTS - 1));
	struct shhim_class_counter *c = bpf_map_lookup_elem(&SHHIM_MAP_CLASS_COUNTERS, &idx);

	if (!c)
		return;
	/* Per-CPU slot: plain adds. */
	c->packets += packets;
	c->bytes += bytes;
	if (rewritten)
		c->dscp_rewrites += packets;
	if (dropped) {
		c->drops += packets;
		c->drop_bytes += bytes;
	}
}

/*
 * The class of a flow whose server is `server`, under generation gen (not 0):
 * a service endpoint, else the first matching rule, else the default.
 * Global: verified once; runs once per flow and generation.
 */
__noinline __u32 shhim_classify(const struct shhim_endpoint *server, __u32 gen)
{
	struct shhim_service_key skey;
	struct shhim_rule_key rkey;
	struct shhim_service_value *svc;
	struct shhim_rule_set *set;
	struct shhim_policy *pol;
	__u32 slot = SHHIM_GEN_SLOT(gen), i, port;
	__u8 proto;

	if (!server)
		return SHHIM_CLASS_NONE;
	/* Keys on the stack: kernels before 6.2 refuse argument memory as a key. */
	__builtin_memset(&skey, 0, sizeof(skey));
	skey.policy_slot = slot;
	__builtin_memcpy(&skey.server, server, sizeof(skey.server));
	svc = bpf_map_lookup_elem(&SHHIM_MAP_SERVICES, &skey);
	if (svc && svc->class_id < SHHIM_CLASS_SLOTS)
		return svc->class_id;

	rkey.prefixlen = SHHIM_RULE_SLOT_BITS + 128;
	rkey.policy_slot = slot;
	__builtin_memcpy(rkey.addr, skey.server.addr, sizeof(rkey.addr));
	set = bpf_map_lookup_elem(&SHHIM_MAP_RULES, &rkey);
	if (set) {
		port = bpf_ntohs(skey.server.port);
		proto = skey.server.proto;
		for (i = 0; i < SHHIM_MAX_RULES_PER_PREFIX; i++) {
			const struct shhim_rule *r = &set->rules[i];

			if (i >= set->count)
				break;
			if ((r->proto == 0 || r->proto == proto) && port >= r->port_lo &&
			    port <= r->port_hi && r->class_id < SHHIM_CLASS_SLOTS)
				return r->class_id;
		}
	}
	pol = shhim_policy_get(gen);
	return shhim_class_or_default(SHHIM_CLASS_NONE, pol);
}

/* ---- DSCP ---- */

/* Traffic class byte of an IPv6 header from its first two bytes. */
static __always_inline __u8 shhim_ipv6_tclass(__u8 b0, __u8 b1)
{
	return (__u8)(((b0 & 0x0f) << 4) | (b1 >> 4));
}

/* TOS / traffic class with the DSCP replaced and the ECN bits kept. */
static __always_inline __u8 shhim_with_dscp(__u8 tos, __u8 dscp)
{
	return (__u8)(((dscp & 0x3f) << 2) | (tos & 0x03));
}

/* Two header bytes as the 16-bit word they form in memory (network order). */
static __always_inline __u16 shhim_be16_word(__u8 first, __u8 second)
{
	return bpf_htons((__u16)((first << 8) | second));
}

/*
 * RFC 1624 incremental update of a one's complement checksum for a 16-bit
 * word changing from old to new (both as stored in the packet).
 */
static __always_inline __u16 shhim_csum_replace2(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u32)(__u16)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* ---- stress mode ---- */

/*
 * Token bucket of one class on one interface, as a GCRA: tat is when the
 * bucket would be empty again; a packet conforms while tat is no further
 * ahead of now than the burst, and then moves tat on by its own
 * transmission time at the class rate. The bucket is shared by all CPUs:
 * tat moves with an atomic add, and the reset of an idle bucket is a plain
 * store, so concurrent packets may overshoot the rate by a few packets
 * (accepted: this sheds load, it does not meter it).
 * Returns 1 to send the packet, 0 to drop it.
 */
static __always_inline int shhim_bucket_admit(__u32 if_slot, __u32 cls,
					      const struct shhim_class_cfg *cfg, __u64 capacity_bps,
					      __u64 bytes, __u64 now)
{
	__u32 idx = (if_slot & (SHHIM_MAX_IF_SLOTS - 1)) * SHHIM_CLASS_SLOTS +
		    (cls & (SHHIM_CLASS_SLOTS - 1));
	__u64 rate = cfg->rate_bps, burst_bytes = cfg->burst_bytes, cost, burst, tat;
	struct shhim_class_bucket *b;

	if (!rate)
		rate = capacity_bps / 1000 * cfg->rate_permille;
	if (!rate)
		return 0; /* no share of the link in stress: the class is shed whole */
	b = bpf_map_lookup_elem(&SHHIM_MAP_CLASS_BUCKETS, &idx);
	if (!b)
		return 1;
	if (burst_bytes > SHHIM_MAX_BURST_BYTES)
		burst_bytes = SHHIM_MAX_BURST_BYTES;
	if (bytes > SHHIM_MAX_BURST_BYTES)
		bytes = SHHIM_MAX_BURST_BYTES;
	cost = bytes * 8 * SHHIM_NSEC_PER_SEC / rate;
	burst = burst_bytes * 8 * SHHIM_NSEC_PER_SEC / rate;
	tat = b->tat_ns;
	if (tat < now) {
		tat = now;
		b->tat_ns = now;
	}
	if (tat - now > burst)
		return 0;
	__sync_fetch_and_add(&b->tat_ns, cost);
	return 1;
}

/*
 * Whether a packet of class cls (configured as cfg) is shed now. Never for
 * life-critical and emergency; otherwise only while the stress lease runs and
 * the class's shed rank is within the stress level.
 */
static __always_inline int shhim_stress_sheds(const struct shhim_policy_state *state, __u32 if_slot,
					      __u32 cls, const struct shhim_class_cfg *cfg,
					      __u64 capacity_bps, __u64 bytes)
{
	__u32 level = state->stress_level;
	__u64 now;

	if (!level || cls < SHHIM_CLASS_FIRST_SHEDDABLE || !cfg->shed_rank || cfg->shed_rank > level)
		return 0;
	now = bpf_ktime_get_ns();
	if (now >= state->stress_until_ns)
		return 0; /* the agent stopped renewing the lease: fail open */
	return !shhim_bucket_admit(if_slot, cls, cfg, capacity_bps, bytes, now);
}

#endif /* SHHIM_CLASS_BPF_H */
