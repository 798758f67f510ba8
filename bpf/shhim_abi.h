/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * shhim_abi.h - the one definition of everything the kernel programs and
 * userspace share: map keys and values, event records, counter ids and the
 * latency histogram layout. Included by every bpf/<name>.bpf.c and by
 * userspace/datapath; static_asserts at the bottom pin the sizes.
 *
 * Conventions:
 *  - addresses are 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d);
 *  - ports are in network byte order, exactly as on the wire;
 *  - times are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
 */
#ifndef SHHIM_ABI_H
#define SHHIM_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define SHHIM_ABI_VERSION 2

/* Where the agent pins every map, program and link. */
#define SHHIM_PIN_ROOT "/sys/fs/bpf/shhim"

/* Map names: one place, so loader and programs agree on the pinned paths. */
#define SHHIM_MAP_FLOWS    shhim_flows
#define SHHIM_MAP_BACKENDS shhim_backends
#define SHHIM_MAP_COUNTERS shhim_counters
#define SHHIM_MAP_EVENTS   shhim_events
#define SHHIM_MAP_CONFIG   shhim_config

#define SHHIM_DEFAULT_FLOW_ENTRIES    65536
#define SHHIM_DEFAULT_BACKEND_ENTRIES 1024
#define SHHIM_EVENTS_RING_BYTES       (1 << 20)
#define SHHIM_DEFAULT_SYN_TIMEOUT_NS  (1000ULL * 1000 * 1000)

enum shhim_family {
	SHHIM_FAMILY_IPV4 = 4,
	SHHIM_FAMILY_IPV6 = 6,
};

/* One side of a conversation. Also the key of the backend map. */
struct shhim_endpoint {
	__u8 addr[16];
	__be16 port;    /* 0 for ICMP */
	__u8 family;    /* enum shhim_family */
	__u8 proto;     /* IPPROTO_TCP, IPPROTO_UDP, ... */
};

/*
 * SO_MARK of shhimd's own health probes: the connect hooks leave such a
 * socket on the backend it probes (a probe must reach that backend, even
 * when the service's address is the backend's own).
 */
#define SHHIM_PROBE_MARK 0x5348494dU /* "SHIM" */

/*
 * Flow key, canonical so that both directions of a conversation find the
 * same entry with one lookup: endpoint a is the one with the smaller port
 * (host order), ties broken by the smaller address (memcmp). Which side
 * is the client is stored in the value (shhim_flow.client_is_b).
 */
struct shhim_flow_key {
	struct shhim_endpoint a;
	struct shhim_endpoint b;
};

/* Direction of a packet relative to the client of its flow. */
enum shhim_dir {
	SHHIM_DIR_TO_SERVER = 0,
	SHHIM_DIR_TO_CLIENT = 1,
	SHHIM_DIR_MAX = 2,
};

enum shhim_tcp_state {
	SHHIM_TCP_NONE = 0,      /* UDP, or TCP first seen mid-stream */
	SHHIM_TCP_SYN_SENT = 1,
	SHHIM_TCP_ESTABLISHED = 2,
	SHHIM_TCP_CLOSING = 3,   /* a FIN was seen */
	SHHIM_TCP_CLOSED = 4,    /* RST seen, or refused */
};

enum shhim_app_proto {
	SHHIM_APP_UNKNOWN = 0,
	SHHIM_APP_HTTP = 1,
	SHHIM_APP_MLLP = 2,
};

/* Flow flags (shhim_flow.flags): what has been reported already. */
#define SHHIM_FLOW_F_SYN_TIMEOUT_REPORTED (1 << 0)
#define SHHIM_FLOW_F_ROLE_GUESSED         (1 << 1) /* first packet was not a SYN */

/* Value of the flow LRU map. */
struct shhim_flow {
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u64 packets[SHHIM_DIR_MAX];   /* indexed by enum shhim_dir */
	__u64 bytes[SHHIM_DIR_MAX];     /* L3 bytes (IP header and up) */
	__u64 syn_ts_ns;                /* first SYN; 0 once answered or closed */
	__u64 request_ts_ns;            /* outstanding request; 0 when none */
	__u64 handshake_ns;             /* SYN to SYN-ACK, 0 if not measured */
	__u64 last_response_ns;         /* latest request to first response byte */
	__u64 max_response_ns;
	__u32 requests;
	__u32 responses;
	__u32 syn;                      /* TCP flag counts, both directions */
	__u32 synack;
	__u32 fin;
	__u32 rst;
	__u32 icmp_errors;              /* ICMP errors that quoted this flow */
	__u32 errors;                   /* failure events attributed to this flow */
	__u32 srtt_us;                  /* smoothed RTT from sockops, 0 if unknown */
	__u32 retransmits;
	__u32 rto_events;
	__u16 last_status;              /* HTTP status, or MLLP ack as 'A'<<8|'E' */
	__u8 client_is_b;               /* 1: key.b is the client */
	__u8 tcp_state;                 /* enum shhim_tcp_state */
	__u8 app_proto;                 /* enum shhim_app_proto */
	__u8 flags;                     /* SHHIM_FLOW_F_* */
	__u8 pad[2];
	/*
	 * Priority class and the policy generation it was decided under, in one
	 * 32-bit word so a reader never pairs a class with another generation's
	 * number: SHHIM_CLASS_GEN(gen, class). 0: not classified yet.
	 */
	__u32 class_gen;
};

/*
 * Latency histogram: log2 buckets, each split into 16 linear sub-buckets,
 * over nanoseconds. Values below 16 ns have a bucket each. The sub-buckets bound the
 * error of a percentile taken at a bucket midpoint to about 3%. Values of
 * 2^40 ns (~18 min) and more land in the last bucket.
 */
#define SHHIM_HIST_SUB_BITS 4
#define SHHIM_HIST_SUB      (1 << SHHIM_HIST_SUB_BITS)
#define SHHIM_HIST_MAX_LOG2 40
#define SHHIM_HIST_BUCKETS  ((SHHIM_HIST_MAX_LOG2 - SHHIM_HIST_SUB_BITS + 1) * SHHIM_HIST_SUB)

/* floor(log2(v)) for v > 0, branch-light so it verifies on every kernel. */
static inline __u32 shhim_log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8)  { v >>= 8;  r += 8; }
	if (v >> 4)  { v >>= 4;  r += 4; }
	if (v >> 2)  { v >>= 2;  r += 2; }
	if (v >> 1)  { r += 1; }
	return r;
}

static inline __u32 shhim_hist_bucket(__u64 ns)
{
	__u32 k;

	if (ns < SHHIM_HIST_SUB)
		return (__u32)ns;
	k = shhim_log2_u64(ns);
	if (k >= SHHIM_HIST_MAX_LOG2)
		return SHHIM_HIST_BUCKETS - 1;
	return (k - SHHIM_HIST_SUB_BITS + 1) * SHHIM_HIST_SUB +
	       (__u32)((ns >> (k - SHHIM_HIST_SUB_BITS)) & (SHHIM_HIST_SUB - 1));
}

/* Smallest value that falls in bucket b (inverse of shhim_hist_bucket). */
static inline __u64 shhim_hist_bucket_low(__u32 b)
{
	__u32 k;

	if (b < SHHIM_HIST_SUB)
		return b;
	k = b / SHHIM_HIST_SUB + SHHIM_HIST_SUB_BITS - 1;
	return (1ULL << k) + ((__u64)(b % SHHIM_HIST_SUB) << (k - SHHIM_HIST_SUB_BITS));
}

struct shhim_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 buckets[SHHIM_HIST_BUCKETS];
};

enum shhim_http_class {
	SHHIM_HTTP_1XX = 0,
	SHHIM_HTTP_2XX = 1,
	SHHIM_HTTP_3XX = 2,
	SHHIM_HTTP_4XX = 3,
	SHHIM_HTTP_5XX = 4,
	SHHIM_HTTP_CLASS_MAX = 5,
};

/* MLLP acknowledgment codes from MSA-1. */
enum shhim_mllp_ack {
	SHHIM_MLLP_AA = 0,
	SHHIM_MLLP_AE = 1,
	SHHIM_MLLP_AR = 2,
	SHHIM_MLLP_CA = 3,
	SHHIM_MLLP_CE = 4,
	SHHIM_MLLP_CR = 5,
	SHHIM_MLLP_ACK_MAX = 6,
};

/* Value of the backend map, keyed by the server's struct shhim_endpoint. */
struct shhim_backend {
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u64 flows;                    /* flows created towards this backend */
	__u64 conn_attempts;            /* first SYNs */
	__u64 conn_established;         /* SYN-ACKs answering them */
	__u64 refused;                  /* RST answering a SYN */
	__u64 syn_timeouts;             /* SYN unanswered within the timeout */
	__u64 resets;                   /* RST from the server mid-connection */
	__u64 icmp_errors;
	__u64 requests;                 /* request starts (client payload) */
	__u64 responses;                /* first response bytes */
	__u64 http_status[SHHIM_HTTP_CLASS_MAX];
	__u64 mllp_acks[SHHIM_MLLP_ACK_MAX];
	__u64 app_unparsed;             /* responses that were neither */
	__u64 retransmits;
	__u64 rto_events;
	__u64 srtt_us_sum;              /* mean RTT = sum / samples */
	__u64 srtt_samples;
	__u32 srtt_us_last;
	__u32 pad;
	struct shhim_hist handshake;    /* SYN to SYN-ACK */
	struct shhim_hist response;     /* request to first response byte */
};

/* Failure events sent up the ring buffer. */
enum shhim_event_kind {
	SHHIM_EV_REFUSED = 1,       /* RST answering a SYN */
	SHHIM_EV_SYN_TIMEOUT = 2,   /* SYN unanswered within the timeout */
	SHHIM_EV_RESET = 3,         /* RST from the server mid-connection */
	SHHIM_EV_ICMP_ERROR = 4,    /* detail: type << 8 | code */
	SHHIM_EV_HTTP_5XX = 5,      /* detail: status code */
	SHHIM_EV_MLLP_NACK = 6,     /* detail: enum shhim_mllp_ack */
	SHHIM_EV_BACKEND_DOWN = 7,  /* kernel breaker tripped; detail: the evidence's enum shhim_event_kind */
	SHHIM_EV_KIND_MAX = 8,
};

enum shhim_hook {
	SHHIM_HOOK_XDP_INGRESS = 1,
	SHHIM_HOOK_TC_EGRESS = 2,
	SHHIM_HOOK_SOCKOPS = 3,
	SHHIM_HOOK_TRACEPOINT = 4,
};

struct shhim_event {
	__u64 ts_ns;                    /* bpf_ktime_get_ns() at detection */
	struct shhim_endpoint client;
	struct shhim_endpoint server;
	__u32 kind;                     /* enum shhim_event_kind */
	__u32 detail;
	__u32 ifindex;
	__u32 hook;                     /* enum shhim_hook */
};

/*
 * Global counters: one per-CPU array indexed by this enum. Parse-error
 * reasons form one contiguous range so userspace can sum them.
 */
enum shhim_counter {
	SHHIM_CTR_XDP_PACKETS = 0,
	SHHIM_CTR_TC_PACKETS,
	SHHIM_CTR_NON_IP,               /* ARP, LLDP...: passed, not parsed */
	SHHIM_CTR_FRAGMENTS,            /* non-first fragments: no L4 header */
	SHHIM_CTR_FLOWS_CREATED,
	SHHIM_CTR_FLOW_CREATE_FAILED,
	SHHIM_CTR_BACKENDS_CREATED,
	SHHIM_CTR_BACKEND_CREATE_FAILED,
	SHHIM_CTR_EVENTS_SENT,
	SHHIM_CTR_EVENTS_LOST,          /* ring buffer full */
	SHHIM_CTR_SOCKOPS_CALLS,
	SHHIM_CTR_TP_RETRANSMITS,
	SHHIM_CTR_TP_RESETS,
	SHHIM_CTR_TP_STATE_CHANGES,
	/* parse errors: the frame is counted here and passed */
	SHHIM_CTR_PERR_FIRST,
	SHHIM_CTR_PERR_ETH_TRUNC = SHHIM_CTR_PERR_FIRST,
	SHHIM_CTR_PERR_VLAN_TRUNC,
	SHHIM_CTR_PERR_VLAN_TOO_DEEP,
	SHHIM_CTR_PERR_IPV4_TRUNC,
	SHHIM_CTR_PERR_IPV4_BAD_VERSION,
	SHHIM_CTR_PERR_IPV4_BAD_IHL,
	SHHIM_CTR_PERR_IPV4_BAD_TOTLEN,
	SHHIM_CTR_PERR_IPV6_TRUNC,
	SHHIM_CTR_PERR_IPV6_BAD_VERSION,
	SHHIM_CTR_PERR_IPV6_EXT_TRUNC,
	SHHIM_CTR_PERR_IPV6_EXT_TOO_DEEP,
	SHHIM_CTR_PERR_IP_LEN_EXCEEDS_FRAME,
	SHHIM_CTR_PERR_TCP_TRUNC,
	SHHIM_CTR_PERR_TCP_BAD_DOFF,
	SHHIM_CTR_PERR_UDP_TRUNC,
	SHHIM_CTR_PERR_UDP_BAD_LEN,
	SHHIM_CTR_PERR_ICMP_TRUNC,
	SHHIM_CTR_PERR_ICMP_INNER_TRUNC,
	SHHIM_CTR_PERR_LAST = SHHIM_CTR_PERR_ICMP_INNER_TRUNC,
	SHHIM_CTR_MAX,
};

/* Agent-written settings, one entry in an array map. */
struct shhim_config {
	__u64 syn_timeout_ns;
	__u64 build_id;                 /* loader's hash of the BPF objects it pinned */
	__u32 flags;                    /* reserved, 0 */
	__u32 pad;
};

/*
 * ---- Priority classes, policy and stress mode (issue 3) ----
 *
 * Every packet, ingress and egress, belongs to one of the seven built-in
 * classes or to one a policy adds (class ids 7..15). A flow
 * is classified once, on its first packet under a policy generation, and
 * the result is cached in shhim_flow.class_gen; later packets cost array
 * lookups only. Classification of a flow, from its server endpoint:
 *   1. shhim_services: exact server endpoint (a service's VIP or backend);
 *   2. shhim_rules: the rules whose prefix holds the server address, in
 *      policy order; the first whose protocol and server port range match;
 *   3. the policy's default class.
 * Packets that are not part of a flow (ARP, NDP, ICMP errors, malformed
 * frames) count under the default class and are never marked or dropped.
 *
 * Policies are double-buffered: every policy map is indexed by a policy
 * slot (generation & 1). Userspace writes the slot no packet reads (the one
 * of the previous generation, after waiting out every program that could
 * still be using it), then publishes the new generation with one update of
 * shhim_policy_state. A packet reads the generation once and looks only
 * at that generation's slot, so it is classified by the old policy or the
 * new one, never a mix. Until a first policy is applied (generation 0)
 * everything is SHHIM_CLASS_DEFAULT and nothing is marked or shed.
 */
#define SHHIM_MAP_POLICY_STATE   shhim_policy_state
#define SHHIM_MAP_POLICIES       shhim_policies
#define SHHIM_MAP_SERVICES       shhim_services
#define SHHIM_MAP_RULES          shhim_rules
#define SHHIM_MAP_IFACES         shhim_ifaces
#define SHHIM_MAP_CLASS_COUNTERS shhim_class_counters
#define SHHIM_MAP_CLASS_BUCKETS  shhim_class_buckets

/*
 * Class ids: the built-ins, index = priority, highest first (DESIGN.md
 * "Priority classes"); a policy's own classes follow from 7 on.
 */
enum shhim_class {
	SHHIM_CLASS_LIFE_CRITICAL = 0,     /* EF 46 */
	SHHIM_CLASS_EMERGENCY = 1,         /* CS5 40 */
	SHHIM_CLASS_CLINICAL_REALTIME = 2, /* AF41 34 */
	SHHIM_CLASS_CLINICAL = 3,          /* AF21 18 */
	SHHIM_CLASS_IMAGING = 4,           /* AF11 10 */
	SHHIM_CLASS_ADMINISTRATIVE = 5,    /* DF 0 */
	SHHIM_CLASS_BULK = 6,              /* LE 1 */
	SHHIM_CLASS_BUILTINS = 7,
};
/* Class ids are below this; per-class arrays are this wide (an index is a shift). */
#define SHHIM_CLASS_SLOTS    16
/* Unmatched traffic (unless the policy names another default), and all traffic before a policy. */
#define SHHIM_CLASS_DEFAULT  SHHIM_CLASS_ADMINISTRATIVE
/* Classes below this one (life-critical, emergency) are never shed, whatever a policy says. */
#define SHHIM_CLASS_FIRST_SHEDDABLE SHHIM_CLASS_CLINICAL_REALTIME

/* Policy generations: 24 bits, never 0 once a policy was applied, and
 * consecutive generations always differ in their lowest bit (the slot). */
#define SHHIM_GEN_BITS     24
#define SHHIM_GEN_MASK     ((1u << SHHIM_GEN_BITS) - 1)
#define SHHIM_POLICY_SLOTS 2
#define SHHIM_GEN_SLOT(gen) ((gen) & 1u)
/* shhim_flow.class_gen */
#define SHHIM_CLASS_GEN(gen, cls) ((((gen) & SHHIM_GEN_MASK) << 8) | ((cls) & 0xffu))
#define SHHIM_CLASS_GEN_GEN(v)    ((v) >> 8)
#define SHHIM_CLASS_GEN_CLASS(v)  ((v) & 0xffu)

/*
 * skb->priority of a class on an interface with shhim's HTB tree
 * (SHHIM_IFACE_F_HTB): major:minor of the HTB class the agent installs for
 * it (handle SHHIM_QDISC_MAJOR:, class minor = class id + 1), so HTB sorts
 * packets without any filter (it takes skb->priority as the class id when
 * the major is its own handle). Elsewhere the class's configured
 * skb_priority is written (a TC_PRIO_* band for prio-like qdiscs).
 */
#define SHHIM_QDISC_MAJOR 0x5348u
#define SHHIM_CLASS_SKB_PRIORITY(cls) ((SHHIM_QDISC_MAJOR << 16) | ((cls) + 1u))

enum shhim_stress_mode {
	SHHIM_STRESS_OFF = 0,
	SHHIM_STRESS_ON = 1,
	SHHIM_STRESS_AUTO = 2,     /* the agent decides from measured utilisation */
};
/* stress_level that sheds every sheddable class (shed_rank 1..255). */
#define SHHIM_STRESS_LEVEL_ALL 255u
/*
 * Stress is a lease: the kernel sheds only while now < stress_until_ns. The
 * agent renews it every tick (deadline = now + lease); an agent that died
 * stops shedding at most one lease later (fail-open).
 */
#define SHHIM_STRESS_LEASE_NS (3ULL * 1000 * 1000 * 1000)

/* The one entry of shhim_policy_state. Written whole, by the agent only. */
struct shhim_policy_state {
	__u32 generation;       /* current policy generation; 0: none applied yet */
	__u32 stress_level;     /* 0: no shedding; else classes with 1 <= shed_rank <= level */
	__u64 stress_until_ns;  /* CLOCK_MONOTONIC lease end of stress_level */
	__u32 stress_mode;      /* enum shhim_stress_mode, kept for the agent; the kernel ignores it */
	__u32 pad;
};

#define SHHIM_CLASS_F_MARK (1u << 0)  /* write the DSCP and skb->priority of this class (a class in use) */

struct shhim_class_cfg {
	__u64 rate_bps;         /* shedding rate in stress, bits/s; 0: rate_permille of the link */
	__u32 skb_priority;     /* egress skb->priority (where shhim's HTB is not installed) */
	__u32 burst_bytes;      /* token bucket depth */
	__u16 rate_permille;    /* of the interface's capacity_bps, when rate_bps is 0 */
	__u8 dscp;              /* 0..63 */
	__u8 flags;             /* SHHIM_CLASS_F_* */
	__u8 shed_rank;         /* 0: never shed; 1: shed first, 2: next... */
	__u8 pad[3];
};

/* shhim_policies: one entry per policy slot. */
struct shhim_policy {
	struct shhim_class_cfg classes[SHHIM_CLASS_SLOTS];
	__u32 generation;       /* the generation this slot holds */
	__u8 default_class;
	__u8 pad[3];
};

/* shhim_services: exact server endpoints (VIPs and backends of services). */
#define SHHIM_MAX_SERVICE_ENDPOINTS 4096   /* per policy */
struct shhim_service_key {
	__u32 policy_slot;
	struct shhim_endpoint server;
};
struct shhim_service_value {
	__u32 class_id;
	__u32 service_index;    /* position of the service in the policy */
};

/*
 * shhim_rules: LPM trie over (policy slot, server address). Each prefix
 * carries every rule whose prefix contains it, in policy order: the rules
 * matching an address all contain the longest matching prefix, so one
 * lookup yields the complete ordered candidate list.
 */
#define SHHIM_MAX_RULE_PREFIXES     1024   /* distinct rule prefixes per policy */
#define SHHIM_MAX_RULES_PER_PREFIX  16     /* rules that may overlap one address */
#define SHHIM_RULE_SLOT_BITS        32     /* prefixlen = 32 + address prefix bits */
struct shhim_rule_key {
	__u32 prefixlen;
	__u32 policy_slot;      /* always matched whole: part of every prefix */
	__u8 addr[16];          /* IPv4 mapped: a v4 /p is a /(96 + p) */
};
struct shhim_rule {
	__u16 port_lo;          /* server port range, host order, inclusive */
	__u16 port_hi;
	__u8 proto;             /* 0: any */
	__u8 class_id;
	__u16 rule_index;       /* position in the policy */
};
struct shhim_rule_set {
	__u32 count;
	__u32 pad;
	struct shhim_rule rules[SHHIM_MAX_RULES_PER_PREFIX];
};

/*
 * shhim_ifaces: array indexed by ifindex (< SHHIM_MAX_IFINDEX; larger
 * ifindexes behave as an entry of zeros: counted in slot 0, no re-marking).
 * slot is the interface's row in the class counters and token buckets,
 * assigned by the agent (1..SHHIM_MAX_IF_SLOTS-1); slot 0 collects every
 * interface without one. flags and capacity are policy, per policy slot.
 */
#define SHHIM_MAX_IFINDEX  4096
#define SHHIM_MAX_IF_SLOTS 32
#define SHHIM_IFACE_F_REMARK (1u << 0)  /* ingress: rewrite untrusted DSCP to the class's */
/* shhim's HTB is the root qdisc: egress skb->priority is SHHIM_CLASS_SKB_PRIORITY(class). */
#define SHHIM_IFACE_F_HTB    (1u << 1)
struct shhim_iface {
	__u16 slot;
	__u8 flags[SHHIM_POLICY_SLOTS];
	__u32 ifindex;          /* the key, for readers */
	__u64 capacity_bps[SHHIM_POLICY_SLOTS];
};

/* shhim_class_counters: per-CPU array, index shhim_class_counter_index(). */
enum shhim_class_dir {
	SHHIM_CLASS_DIR_INGRESS = 0,  /* XDP */
	SHHIM_CLASS_DIR_EGRESS = 1,   /* TC */
	SHHIM_CLASS_DIRS = 2,
};
#define SHHIM_CLASS_COUNTER_ENTRIES (SHHIM_MAX_IF_SLOTS * SHHIM_CLASS_DIRS * SHHIM_CLASS_SLOTS)
static inline __u32 shhim_class_counter_index(__u32 if_slot, __u32 dir, __u32 cls)
{
	return (if_slot * SHHIM_CLASS_DIRS + dir) * SHHIM_CLASS_SLOTS + cls;
}
struct shhim_class_counter {
	__u64 packets;          /* wire packets (GSO segments counted one by one) */
	__u64 bytes;            /* frame bytes, dropped ones included */
	__u64 drops;            /* shed in stress (egress only) */
	__u64 drop_bytes;
	__u64 dscp_rewrites;    /* packets whose DSCP was changed */
};

/* shhim_class_buckets: array, index if_slot * SHHIM_CLASS_SLOTS + class. */
#define SHHIM_CLASS_BUCKET_ENTRIES (SHHIM_MAX_IF_SLOTS * SHHIM_CLASS_SLOTS)
struct shhim_class_bucket {
	__u64 tat_ns;           /* GCRA: theoretical arrival time of the next packet */
};

/*
 * ---- Packet capture (issue 6): `shhimctl capture` ----
 *
 * The agent arms a capture by writing the one entry of shhim_capture_config:
 * a session id, a filter and `remaining`, the number of samples still to
 * send. XDP ingress and TC egress look the entry up on every parsed packet
 * (disarmed: one array lookup and a branch); a matching packet takes one
 * unit of `remaining` with an atomic fetch-and-add, so exactly `remaining`
 * packets are sent even with many CPUs, and copies its frame cut at the end
 * of its L4 header (Ethernet, VLAN tags, IP, extension headers, TCP with
 * options, UDP or ICMP header), at most SHHIM_CAPTURE_MAX_BYTES, to its own
 * ring buffer (so samples never crowd failure events out of shhim_events).
 * No payload byte is ever copied.
 */
#define SHHIM_MAP_CAPTURE_CONFIG   shhim_capture_config
#define SHHIM_MAP_CAPTURE_RING     shhim_capture_ring
#define SHHIM_CAPTURE_RING_BYTES   (256 * 1024)
/* Longest header chain copied; a longer one is cut here (still no payload). */
#define SHHIM_CAPTURE_MAX_BYTES    192
/* Endpoints a filter may name (a service's VIP and its backends). */
#define SHHIM_CAPTURE_MAX_MATCHES  16

/*
 * One endpoint of a capture filter. A packet matches when one of its two
 * endpoints has this address (if match_addr) and this port (if port != 0).
 * match_addr 0 and port 0: every packet.
 */
struct shhim_capture_match {
	__u8 addr[16];          /* IPv4-mapped for IPv4 */
	__be16 port;            /* network order; 0: any */
	__u8 match_addr;        /* 0: any address */
	__u8 pad;
};

/* The one entry of shhim_capture_config. Written whole, by the agent only. */
struct shhim_capture_config {
	__s64 remaining;        /* samples still to send; <= 0: disarmed */
	__u32 session;          /* copied into every sample; samples of other sessions are stale */
	__u32 ifindex;          /* 0: any interface */
	__u32 n_matches;        /* 0: every packet; else any of matches[0..n) */
	__u32 pad;
	struct shhim_capture_match matches[SHHIM_CAPTURE_MAX_MATCHES];
};

/* One captured packet, a record of shhim_capture_ring. */
struct shhim_capture_sample {
	__u64 ts_ns;            /* bpf_ktime_get_ns() when the hook saw it */
	__u32 session;
	__u32 ifindex;
	__u32 wire_len;         /* length of the whole frame on the wire */
	__u16 cap_len;          /* bytes of data[] that hold the frame's headers */
	__u8 hook;              /* enum shhim_hook: XDP ingress or TC egress */
	__u8 pad;
	__u8 data[SHHIM_CAPTURE_MAX_BYTES];
};

#ifdef __cplusplus
static_assert(sizeof(struct shhim_capture_match) == 20, "shhim_capture_match ABI");
static_assert(sizeof(struct shhim_capture_config) == 24 + 20 * SHHIM_CAPTURE_MAX_MATCHES, "shhim_capture_config ABI");
static_assert(sizeof(struct shhim_capture_sample) == 24 + SHHIM_CAPTURE_MAX_BYTES, "shhim_capture_sample ABI");
#elif defined(__BPF__)
_Static_assert(sizeof(struct shhim_capture_config) == 24 + 20 * SHHIM_CAPTURE_MAX_MATCHES, "shhim_capture_config ABI");
_Static_assert(sizeof(struct shhim_capture_sample) == 24 + SHHIM_CAPTURE_MAX_BYTES, "shhim_capture_sample ABI");
#endif

#ifdef __cplusplus
static_assert(sizeof(struct shhim_endpoint) == 20, "shhim_endpoint ABI");
static_assert(sizeof(struct shhim_flow_key) == 40, "shhim_flow_key ABI");
static_assert(sizeof(struct shhim_flow) == 144, "shhim_flow ABI");
static_assert(sizeof(struct shhim_hist) == 16 + 8 * SHHIM_HIST_BUCKETS, "shhim_hist ABI");
static_assert(sizeof(struct shhim_event) == 64, "shhim_event ABI");
static_assert(sizeof(struct shhim_config) == 24, "shhim_config ABI");
static_assert(SHHIM_HIST_BUCKETS == 592, "histogram layout");
static_assert(sizeof(struct shhim_policy_state) == 24, "shhim_policy_state ABI");
static_assert(sizeof(struct shhim_class_cfg) == 24, "shhim_class_cfg ABI");
static_assert(sizeof(struct shhim_policy) == 392, "shhim_policy ABI");
static_assert(sizeof(struct shhim_service_key) == 24, "shhim_service_key ABI");
static_assert(sizeof(struct shhim_service_value) == 8, "shhim_service_value ABI");
static_assert(sizeof(struct shhim_rule_key) == 24, "shhim_rule_key ABI");
static_assert(sizeof(struct shhim_rule_set) == 136, "shhim_rule_set ABI");
static_assert(sizeof(struct shhim_iface) == 24, "shhim_iface ABI");
static_assert(sizeof(struct shhim_class_counter) == 40, "shhim_class_counter ABI");
static_assert(sizeof(struct shhim_class_bucket) == 8, "shhim_class_bucket ABI");
#elif defined(__BPF__)
_Static_assert(sizeof(struct shhim_endpoint) == 20, "shhim_endpoint ABI");
_Static_assert(sizeof(struct shhim_flow_key) == 40, "shhim_flow_key ABI");
_Static_assert(sizeof(struct shhim_flow) == 144, "shhim_flow ABI");
_Static_assert(sizeof(struct shhim_event) == 64, "shhim_event ABI");
_Static_assert(sizeof(struct shhim_policy_state) == 24, "shhim_policy_state ABI");
_Static_assert(sizeof(struct shhim_policy) == 392, "shhim_policy ABI");
_Static_assert(sizeof(struct shhim_service_key) == 24, "shhim_service_key ABI");
_Static_assert(sizeof(struct shhim_rule_key) == 24, "shhim_rule_key ABI");
_Static_assert(sizeof(struct shhim_rule_set) == 136, "shhim_rule_set ABI");
_Static_assert(sizeof(struct shhim_iface) == 24, "shhim_iface ABI");
_Static_assert(sizeof(struct shhim_class_counter) == 40, "shhim_class_counter ABI");
#endif

/*
 * ---- Service routes and backend health (issue 4) ----
 *
 * Socket-level reroute: the cgroup connect4/6 (TCP, connected UDP) and
 * sendmsg4/6 (UDP) hooks look up the destination in shhim_route_vips
 * (service endpoint -> service id), read the service's route entry and
 * rewrite the destination to a backend chosen by weighted rendezvous
 * hashing (route_hash.h) over the UP backends of the active pool; the other
 * pool if the active one has none; unchanged (fail open) if neither has.
 *
 * Route entries are double-buffered per service: shhim_routes holds two
 * slots per service (index service_id * 2 + slot) and shhim_route_active
 * the slot in use. Userspace writes the slot no program reads (after an RCU
 * grace period), then flips shhim_route_active[service_id] with one 32-bit
 * update: a connect sees the old entry or the new one, never half.
 *
 * Backend health (shhim_backend_health, array by backend id, id 0 unused)
 * also carries the backend's endpoint, which is what the hooks write into
 * the socket address. shhim_backend_ids maps an endpoint to its id so the
 * packet hooks find a backend's health from a flow's server endpoint.
 *
 * Kernel circuit breaker (flow.bpf.h): hard evidence about a backend in
 * state UP increments a consecutive counter (connection-level: refused,
 * reset before any response, ICMP unreachable; reset by a completed
 * handshake. Application-level, when the backend's flags ask for it: HTTP
 * 5xx, MLLP AE/AR/CE/CR; reset by a good response). When either reaches
 * threshold, one CPU wins a compare-and-swap UP -> DOWN_KERNEL, stamps
 * tripped_ns and emits one SHHIM_EV_BACKEND_DOWN. New connects skip it at
 * once. Only the agent sets a backend UP again (clearing the counters).
 */
#define SHHIM_MAP_ROUTE_VIPS       shhim_route_vips
#define SHHIM_MAP_ROUTES           shhim_routes
#define SHHIM_MAP_ROUTE_ACTIVE     shhim_route_active
#define SHHIM_MAP_BACKEND_HEALTH   shhim_backend_health
#define SHHIM_MAP_BACKEND_IDS      shhim_backend_ids
#define SHHIM_MAP_ROUTE_COUNTERS   shhim_route_counters
#define SHHIM_MAP_SOCK_ROUTES      shhim_sock_routes

#define SHHIM_MAX_ROUTE_SERVICES   1024    /* service ids 0..1023 */
#define SHHIM_MAX_ROUTE_BACKENDS   4096    /* backend ids 1..4095; 0: none */
#define SHHIM_ROUTE_POOL_MAX       16      /* backends per pool */
#define SHHIM_ROUTE_WEIGHT_MAX     100
#define SHHIM_SOCK_ROUTE_ENTRIES   65536   /* UDP sockets remembered for recvmsg */

enum shhim_route_pool {
	SHHIM_POOL_PRIMARY = 0,
	SHHIM_POOL_FALLBACK = 1,
	SHHIM_POOLS = 2,
};

enum shhim_backend_state_kind {
	SHHIM_BACKEND_UP = 0,            /* zero: an entry never written is UP */
	SHHIM_BACKEND_DOWN_KERNEL = 1,   /* the kernel breaker tripped */
	SHHIM_BACKEND_DOWN_AGENT = 2,    /* the decision engine or a manual drain */
};

/* shhim_backend_health.flags: which application evidence counts. */
#define SHHIM_BH_F_HTTP_5XX  (1u << 0)
#define SHHIM_BH_F_MLLP_NACK (1u << 1)

/* Default breaker thresholds (policy Thresholds.consecutive_failures overrides). */
#define SHHIM_BREAKER_THRESHOLD_URGENT  1   /* life-critical, emergency */
#define SHHIM_BREAKER_THRESHOLD_DEFAULT 3

struct shhim_route_member {
	__u16 backend_id;                /* index into shhim_backend_health */
	__u16 weight;                    /* 1..SHHIM_ROUTE_WEIGHT_MAX */
};

/* shhim_routes: one per (service id, slot). */
struct shhim_route {
	__u32 generation;                /* bumped by userspace on every write, for readers */
	__u32 service_id;
	__u8 class_id;
	__u8 active_pool;                /* enum shhim_route_pool */
	__u8 count[SHHIM_POOLS];         /* members used in pools[p] */
	__u32 flags;                     /* reserved, 0 */
	struct shhim_route_member pools[SHHIM_POOLS][SHHIM_ROUTE_POOL_MAX];
};

/* shhim_backend_health: array by backend id. */
struct shhim_backend_health {
	struct shhim_endpoint endpoint;  /* where connects go; family 0: unused id */
	__u32 state;                     /* enum shhim_backend_state_kind */
	__u32 threshold;                 /* consecutive failures that trip; 0: breaker off */
	__u32 conn_failures;             /* consecutive connection-level failures */
	__u32 app_failures;              /* consecutive application-level failures */
	__u32 flags;                     /* SHHIM_BH_F_* */
	__u32 trip_kind;                 /* enum shhim_event_kind of the evidence that tripped */
	__u32 pad;
	__u64 tripped_ns;                /* bpf_ktime_get_ns() of the trip; 0: never */
	__u64 trips;                     /* times the kernel tripped it */
};

/* shhim_route_counters: per-CPU array by service id. */
struct shhim_route_counter {
	__u64 steered;                   /* connects / sends rewritten to a backend */
	__u64 no_backend;                /* no UP backend in either pool: passed through */
	__u64 fallback;                  /* steered to the pool that is not the active one */
	__u64 replies_rewritten;         /* UDP replies given back the service address */
};

/* shhim_sock_routes (LRU, by socket cookie): what a UDP socket was steered from and to. */
struct shhim_sock_route {
	struct shhim_endpoint service;
	struct shhim_endpoint backend;
};

#ifdef __cplusplus
static_assert(sizeof(struct shhim_route_member) == 4, "shhim_route_member ABI");
static_assert(sizeof(struct shhim_route) == 16 + 4 * SHHIM_POOLS * SHHIM_ROUTE_POOL_MAX, "shhim_route ABI");
static_assert(sizeof(struct shhim_backend_health) == 64, "shhim_backend_health ABI");
static_assert(sizeof(struct shhim_route_counter) == 32, "shhim_route_counter ABI");
static_assert(sizeof(struct shhim_sock_route) == 40, "shhim_sock_route ABI");
#elif defined(__BPF__)
_Static_assert(sizeof(struct shhim_route) == 144, "shhim_route ABI");
_Static_assert(sizeof(struct shhim_backend_health) == 64, "shhim_backend_health ABI");
_Static_assert(sizeof(struct shhim_route_counter) == 32, "shhim_route_counter ABI");
_Static_assert(sizeof(struct shhim_sock_route) == 40, "shhim_sock_route ABI");
#endif

#endif /* SHHIM_ABI_H */
