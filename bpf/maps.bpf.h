/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.bpf.h - the maps every shhim BPF object shares: telemetry (flows,
 * backends, counters, events, config) and classes/policy (issue 3).
 *
 * Each object declares the same maps with LIBBPF_PIN_BY_NAME, so objects
 * opened with the same pin_root_path reuse one set of maps (and a restarted
 * agent reuses the maps the previous one pinned). The layout of keys and
 * values lives in shhim_abi.h; this file only binds them to map types.
 */
#ifndef SHHIM_MAPS_BPF_H
#define SHHIM_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHHIM_DEFAULT_FLOW_ENTRIES);
	__type(key, struct shhim_flow_key);
	__type(value, struct shhim_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_FLOWS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHHIM_DEFAULT_BACKEND_ENTRIES);
	__type(key, struct shhim_endpoint);
	__type(value, struct shhim_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_BACKENDS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHHIM_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_COUNTERS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SHHIM_EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_EVENTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shhim_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_CONFIG SEC(".maps");

/* ---- classes and policy: layout and semantics in shhim_abi.h ---- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shhim_policy_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_POLICY_STATE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_POLICY_SLOTS);
	__type(key, __u32);
	__type(value, struct shhim_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_POLICIES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHHIM_POLICY_SLOTS * SHHIM_MAX_SERVICE_ENDPOINTS);
	__type(key, struct shhim_service_key);
	__type(value, struct shhim_service_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_SERVICES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SHHIM_POLICY_SLOTS * SHHIM_MAX_RULE_PREFIXES);
	__type(key, struct shhim_rule_key);
	__type(value, struct shhim_rule_set);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_RULES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_MAX_IFINDEX);
	__type(key, __u32);
	__type(value, struct shhim_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_IFACES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHHIM_CLASS_COUNTER_ENTRIES);
	__type(key, __u32);
	__type(value, struct shhim_class_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_CLASS_COUNTERS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_CLASS_BUCKET_ENTRIES);
	__type(key, __u32);
	__type(value, struct shhim_class_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_CLASS_BUCKETS SEC(".maps");

/*
 * Per-CPU counter bump. A plain add is enough: the slot belongs to this CPU
 * and BPF programs run with migration disabled.
 */
static __always_inline void shhim_count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&SHHIM_MAP_COUNTERS, &counter);

	if (value)
		*value += 1;
}

/* ---- service routes and backend health: layout and semantics in shhim_abi.h ---- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHHIM_MAX_ROUTE_SERVICES);
	__type(key, struct shhim_endpoint);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_ROUTE_VIPS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_MAX_ROUTE_SERVICES * 2);
	__type(key, __u32);
	__type(value, struct shhim_route);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_ROUTES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_MAX_ROUTE_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_ROUTE_ACTIVE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHHIM_MAX_ROUTE_BACKENDS);
	__type(key, __u32);
	__type(value, struct shhim_backend_health);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_BACKEND_HEALTH SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHHIM_MAX_ROUTE_BACKENDS);
	__type(key, struct shhim_endpoint);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_BACKEND_IDS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHHIM_MAX_ROUTE_SERVICES);
	__type(key, __u32);
	__type(value, struct shhim_route_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_ROUTE_COUNTERS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHHIM_SOCK_ROUTE_ENTRIES);
	__type(key, __u64);
	__type(value, struct shhim_sock_route);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} SHHIM_MAP_SOCK_ROUTES SEC(".maps");


#endif /* SHHIM_MAPS_BPF_H */
