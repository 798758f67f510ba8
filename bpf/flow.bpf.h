/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flow.bpf.h - the one accounting path shared by XDP ingress and TC egress
 * (and the flow lookups of sockops and the TCP tracepoints).
 *
 * Per packet of an established flow (shhim_account, inline): one lookup of
 * the canonical flow key, per-direction packet and byte counts, last_seen
 * from a per-tick clock, and the flow's priority class, cached in the flow
 * per policy generation (class.bpf.h). Everything else (a new flow, TCP control flags,
 * the first payload of a request or of its response, ICMP errors) goes to
 * global functions that may touch the backend entry, take a precise
 * timestamp or emit an event.
 *
 * Why global functions: the verifier checks a global function once, on
 * its own, instead of once per parser path that reaches it, which keeps
 * both programs at ~25-31k verified instructions (limit 1M, 6.1 included).
 * Why the hot path is inline anyway: with return thunks (SRSO/retbleed
 * mitigations) every call costs ~9 ns, a third of an empty XDP program.
 * Kernels before 6.2 accept map keys only from the stack, packets or map
 * values, so global functions copy the keys they get into their own stack.
 *
 * A program file defines SHHIM_HOOK_CTX (its context type), SHHIM_HOOK_ID,
 * SHHIM_HOOK_IFINDEX(ctx) and SHHIM_LOAD_BYTES before including this
 * header to get shhim_account(); sockops and the tracepoints include it
 * only for the key and backend helpers.
 *
 * Concurrency: per-flow counters use plain adds; one flow's packets in one
 * direction are normally handled by one CPU at a time, and a rare lost
 * increment of a traffic counter is accepted for speed. Backend entries are
 * shared by many flows on all CPUs, so their counters use atomic adds.
 */
#ifndef SHHIM_FLOW_BPF_H
#define SHHIM_FLOW_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"
#include "maps.bpf.h"
#include "parse.bpf.h"

#define SHHIM_EEXIST 17

/* Response prefix examined for an HTTP status line or an MLLP MSA segment. */
#define SHHIM_PEEK_CHUNK  64
#define SHHIM_PEEK_CHUNKS 4
#define SHHIM_MLLP_START  0x0b
/* "\rMSA|" as the five most recent bytes of a shift register. */
#define SHHIM_MLLP_MSA_PATTERN 0x0d4d53417cULL

#define shhim_atomic_add(ptr, val) __sync_fetch_and_add((ptr), (val))

/* Where a packet was seen, for events. */
struct shhim_hook_ctx {
	__u32 id;      /* enum shhim_hook */
	__u32 ifindex;
};

/* Template for new backend entries: too large (~9.7 KiB) for the stack. */
static const struct shhim_backend shhim_zero_backend;

static __always_inline const struct shhim_endpoint *
shhim_server_of(const struct shhim_flow_key *key, __u8 client_is_b)
{
	return client_is_b ? &key->a : &key->b;
}

static __always_inline struct shhim_backend *shhim_backend_lookup(const struct shhim_flow_key *key,
								 __u8 client_is_b)
{
	if (client_is_b)
		return bpf_map_lookup_elem(&SHHIM_MAP_BACKENDS, &key->a);
	return bpf_map_lookup_elem(&SHHIM_MAP_BACKENDS, &key->b);
}

/* The server's backend entry, created on first use. NULL if the map is full. */
static __always_inline struct shhim_backend *shhim_backend_get(const struct shhim_flow_key *key,
							      __u8 client_is_b, __u64 now)
{
	const struct shhim_endpoint *server = shhim_server_of(key, client_is_b);
	struct shhim_backend *be;
	long err;

	be = bpf_map_lookup_elem(&SHHIM_MAP_BACKENDS, server);
	if (!be) {
		err = bpf_map_update_elem(&SHHIM_MAP_BACKENDS, server, &shhim_zero_backend,
					  BPF_NOEXIST);
		if (err == 0) {
			shhim_count(SHHIM_CTR_BACKENDS_CREATED);
		} else if (err != -SHHIM_EEXIST) {
			shhim_count(SHHIM_CTR_BACKEND_CREATE_FAILED);
			return NULL;
		}
		be = bpf_map_lookup_elem(&SHHIM_MAP_BACKENDS, server);
		if (!be)
			return NULL;
		if (!be->first_seen_ns)
			be->first_seen_ns = now;
	}
	be->last_seen_ns = now;
	return be;
}

static __always_inline void shhim_hist_add(struct shhim_hist *h, __u64 ns)
{
	__u32 bucket = shhim_hist_bucket(ns);

	if (bucket >= SHHIM_HIST_BUCKETS)
		bucket = SHHIM_HIST_BUCKETS - 1;
	shhim_atomic_add(&h->count, 1);
	shhim_atomic_add(&h->sum_ns, ns);
	shhim_atomic_add(&h->buckets[bucket], 1);
}

static __always_inline void shhim_ep_copy(struct shhim_endpoint *dst,
					  const struct shhim_endpoint *src)
{
	__builtin_memcpy(dst, src, sizeof(*dst));
}

/* One failure event up the ring buffer; a full ring is counted, never waited on. */
static __always_inline void shhim_emit(const struct shhim_hook_ctx *hook, __u32 kind, __u32 detail,
				       const struct shhim_flow_key *key, __u8 client_is_b)
{
	struct shhim_event *ev;

	ev = bpf_ringbuf_reserve(&SHHIM_MAP_EVENTS, sizeof(*ev), 0);
	if (!ev) {
		shhim_count(SHHIM_CTR_EVENTS_LOST);
		return;
	}
	ev->ts_ns = bpf_ktime_get_ns();
	if (client_is_b) {
		shhim_ep_copy(&ev->client, &key->b);
		shhim_ep_copy(&ev->server, &key->a);
	} else {
		shhim_ep_copy(&ev->client, &key->a);
		shhim_ep_copy(&ev->server, &key->b);
	}
	ev->kind = kind;
	ev->detail = detail;
	ev->ifindex = hook->ifindex;
	ev->hook = hook->id;
	bpf_ringbuf_submit(ev, 0);
	shhim_count(SHHIM_CTR_EVENTS_SENT);
}

#ifdef SHHIM_HOOK_CTX
/* ---- packet hooks only ---- */

#include "class.bpf.h"

/*
 * last_seen clock: CLOCK_MONOTONIC at tick resolution, like
 * bpf_ktime_get_coarse_ns(), but that helper is read only once per jiffy
 * (bpf_jiffies64() is inlined into a load) instead of once per packet.
 * Shared by the CPUs without a lock: a racing reader gets a value at most
 * one tick old.
 */
/* Two plain variables: clang splits a static struct into BTF the kernel rejects. */
static __u64 shhim_tick_jiffies;
static __u64 shhim_tick_ns;

static __always_inline __u64 shhim_now_coarse(void)
{
	__u64 jiffies = bpf_jiffies64(), ns;

	if (jiffies == shhim_tick_jiffies) {
		asm volatile("" ::: "memory");
		return shhim_tick_ns;
	}
	ns = bpf_ktime_get_coarse_ns();
	shhim_tick_ns = ns;
	asm volatile("" ::: "memory"); /* ns before jiffies, see above */
	shhim_tick_jiffies = jiffies;
	return ns;
}

/* What every packet of an existing flow costs. */
static __always_inline void shhim_flow_count(struct shhim_flow *f, __u32 dir,
					     const struct shhim_pkt *pkt)
{
	f->packets[dir] += 1;
	f->bytes[dir] += pkt->l3_len;
	f->last_seen_ns = shhim_now_coarse();
}

/* Loads n bytes, n in 1..SHHIM_PEEK_CHUNK: the length register is bounded by arithmetic
 * right before the call, so every verifier (6.1's included) sees 1..CHUNK on it. */
#define SHHIM_LOAD_EXACT(ctx, off, buf, n) ({				\
	__u64 __len = (n) - 1;						\
	asm volatile("" : "+r"(__len));					\
	__len = (__len & (SHHIM_PEEK_CHUNK - 1)) + 1;			\
	SHHIM_LOAD_BYTES(ctx, off, buf, __len);				\
})

/*
 * Bytes to load for a peek: 1..SHHIM_PEEK_CHUNK, or 0 for none. 64-bit so
 * clang does not zero-extend a copy (the verifier would not link the copy's
 * bounds to the original); the empty asm hides the clamp from clang, so the
 * range check that follows is really emitted on the register passed on.
 */
static __always_inline __u64 shhim_peek_len(__u64 remaining)
{
	__u64 n = remaining;

	if (n > SHHIM_PEEK_CHUNK)
		n = SHHIM_PEEK_CHUNK;
	asm volatile("" : "+r"(n));
	if (n == 0 || n > SHHIM_PEEK_CHUNK)
		return 0;
	return n;
}

struct shhim_app_result {
	__u8 app;      /* enum shhim_app_proto */
	__u8 mllp_ack; /* enum shhim_mllp_ack */
	__u16 status;  /* HTTP status, or MLLP code as 'A'<<8|'E' */
};

static __always_inline int shhim_is_digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/* MSA-1 as an enum shhim_mllp_ack, or SHHIM_MLLP_ACK_MAX if unknown. */
static __always_inline __u8 shhim_mllp_ack_of(__u8 c1, __u8 c2)
{
	__u8 base;

	if (c1 == 'A')
		base = SHHIM_MLLP_AA;
	else if (c1 == 'C')
		base = SHHIM_MLLP_CA;
	else
		return SHHIM_MLLP_ACK_MAX;
	if (c2 == 'A')
		return base;
	if (c2 == 'E')
		return base + 1;
	if (c2 == 'R')
		return base + 2;
	return SHHIM_MLLP_ACK_MAX;
}

/*
 * Looks at the first response payload without copying it anywhere but the
 * stack: "HTTP/1.x DDD" or an MLLP frame whose MSA segment carries MSA-1.
 * Global: verified once. Always returns 0; the result is in *res.
 */
__noinline int shhim_peek_payload(SHHIM_HOOK_CTX *ctx, __u32 off, __u32 len,
				  struct shhim_app_result *res)
{
	__u8 buf[SHHIM_PEEK_CHUNK] __attribute__((aligned(8)));
	__u64 window = 0, avail = len, n;
	__u32 chunk, i;

	if (!res)
		return 0;

	n = shhim_peek_len(avail);
	if (n == 0 || SHHIM_LOAD_EXACT(ctx, off, buf, n))
		return 0;

	if (n >= 12 && buf[0] == 'H' && buf[1] == 'T' && buf[2] == 'T' && buf[3] == 'P' &&
	    buf[4] == '/' && buf[5] == '1' && buf[6] == '.' && buf[8] == ' ' &&
	    shhim_is_digit(buf[9]) && shhim_is_digit(buf[10]) && shhim_is_digit(buf[11])) {
		__u16 status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');

		if (status >= 100 && status < 600) {
			res->app = SHHIM_APP_HTTP;
			res->status = status;
		}
		return 0;
	}
	if (buf[0] != SHHIM_MLLP_START)
		return 0;

	/* Shift every byte into a window; "\rMSA|" followed by two bytes is MSA-1. */
	for (chunk = 0; chunk < SHHIM_PEEK_CHUNKS; chunk++) {
		if (chunk > 0) {
			__u64 done = chunk * SHHIM_PEEK_CHUNK;

			if (avail <= done)
				return 0;
			n = shhim_peek_len(avail - done);
			if (n == 0 || SHHIM_LOAD_EXACT(ctx, off + done, buf, n))
				return 0;
		}
		for (i = 0; i < SHHIM_PEEK_CHUNK; i++) {
			if (i >= n)
				break;
			window = (window << 8) | buf[i];
			if (((window >> 16) & 0xffffffffffULL) == SHHIM_MLLP_MSA_PATTERN) {
				__u8 c1 = (window >> 8) & 0xff, c2 = window & 0xff;
				__u8 ack = shhim_mllp_ack_of(c1, c2);

				if (ack < SHHIM_MLLP_ACK_MAX) {
					res->app = SHHIM_APP_MLLP;
					res->mllp_ack = ack;
					res->status = ((__u16)c1 << 8) | c2;
				}
				return 0;
			}
		}
	}
	return 0;
}

static __always_inline __u64 shhim_syn_timeout_ns(void)
{
	__u32 zero = 0;
	struct shhim_config *cfg = bpf_map_lookup_elem(&SHHIM_MAP_CONFIG, &zero);

	if (cfg && cfg->syn_timeout_ns)
		return cfg->syn_timeout_ns;
	return SHHIM_DEFAULT_SYN_TIMEOUT_NS;
}

/* A failure attributed to flow f: count it on the flow and send the event. */
static __always_inline void shhim_flow_failure(const struct shhim_hook_ctx *hook, struct shhim_flow *f,
					       const struct shhim_flow_key *key, __u32 kind,
					       __u32 detail)
{
	f->errors += 1;
	shhim_emit(hook, kind, detail, key, f->client_is_b);
}

/*
 * ---- kernel circuit breaker (shhim_abi.h, "Service routes and backend health") ----
 *
 * The health entry of the flow's server if it is a routed backend. Keys
 * come from the caller's stack (a local copy of the packet).
 */
static __always_inline struct shhim_backend_health *shhim_health_of(const struct shhim_flow_key *key,
								    __u8 client_is_b)
{
	__u32 *id = bpf_map_lookup_elem(&SHHIM_MAP_BACKEND_IDS, shhim_server_of(key, client_is_b));
	__u32 idx;

	if (!id)
		return NULL;
	idx = *id;
	return bpf_map_lookup_elem(&SHHIM_MAP_BACKEND_HEALTH, &idx);
}

/* Good news about a backend: its consecutive count of that level starts over. */
static __always_inline void shhim_breaker_ok(const struct shhim_flow_key *key, __u8 client_is_b, int app)
{
	struct shhim_backend_health *h = shhim_health_of(key, client_is_b);

	if (!h)
		return;
	/* Read first: a healthy backend's line is not written on every success. */
	if (app) {
		if (h->app_failures)
			h->app_failures = 0;
	} else if (h->conn_failures) {
		h->conn_failures = 0;
	}
}

/*
 * Hard evidence `kind` against the server of the flow. At the backend's
 * threshold one CPU wins UP -> DOWN_KERNEL and reports it once. Global:
 * verified once. Returns 1 when this call tripped the breaker.
 */
__noinline int shhim_breaker_hit(const struct shhim_hook_ctx *hook, const struct shhim_flow_key *key_arg,
				 __u32 client_is_b, __u32 kind)
{
	struct shhim_hook_ctx where;
	struct shhim_flow_key key;
	struct shhim_backend_health *h;
	__u32 n, need;

	if (!hook || !key_arg)
		return 0;
	/* Map keys from the stack: kernels before 6.2 refuse argument memory. */
	__builtin_memcpy(&key, key_arg, sizeof(key));
	__builtin_memcpy(&where, hook, sizeof(where));
	h = shhim_health_of(&key, client_is_b & 1);
	if (!h || !h->threshold || h->state != SHHIM_BACKEND_UP)
		return 0;
	if (kind == SHHIM_EV_HTTP_5XX || kind == SHHIM_EV_MLLP_NACK) {
		need = kind == SHHIM_EV_HTTP_5XX ? SHHIM_BH_F_HTTP_5XX : SHHIM_BH_F_MLLP_NACK;
		if (!(h->flags & need))
			return 0;
		n = __sync_fetch_and_add(&h->app_failures, 1) + 1;
	} else {
		n = __sync_fetch_and_add(&h->conn_failures, 1) + 1;
	}
	if (n < h->threshold)
		return 0;
	if (__sync_val_compare_and_swap(&h->state, SHHIM_BACKEND_UP, SHHIM_BACKEND_DOWN_KERNEL) !=
	    SHHIM_BACKEND_UP)
		return 0; /* another CPU (or the agent) got there first */
	h->trip_kind = kind;
	h->tripped_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&h->trips, 1);
	shhim_emit(&where, SHHIM_EV_BACKEND_DOWN, kind, &key, client_is_b & 1);
	return 1;
}

/*
 * SYN, FIN, RST. Returns the packet's direction, which changes when a SYN
 * shows the client role was guessed wrong (or the 4-tuple is reused the
 * other way round).
 */
static __always_inline __u32 shhim_tcp_control(const struct shhim_hook_ctx *hook,
					       const struct shhim_pkt *pkt, struct shhim_flow *f,
					       __u32 dir)
{
	__u8 flags = pkt->tcp_flags;
	__u64 now = bpf_ktime_get_ns();
	struct shhim_backend *be;

	if (flags & SHHIM_TCP_RST) {
		__u8 state = f->tcp_state;
		__u32 kind = 0;

		f->rst += 1;
		if (dir == SHHIM_DIR_TO_CLIENT) {
			if (state == SHHIM_TCP_SYN_SENT)
				kind = SHHIM_EV_REFUSED;
			else if (state == SHHIM_TCP_ESTABLISHED ||
				 (state == SHHIM_TCP_NONE && f->packets[0] + f->packets[1]))
				kind = SHHIM_EV_RESET; /* NONE: first seen mid-stream */
		}
		if (kind) {
			be = shhim_backend_get(&pkt->key, f->client_is_b, now);
			if (be) {
				if (kind == SHHIM_EV_REFUSED)
					shhim_atomic_add(&be->refused, 1);
				else
					shhim_atomic_add(&be->resets, 1);
			}
			/* A reset after a response is the application's business. The
			 * breaker goes first so that its BACKEND_DOWN event precedes the
			 * evidence's own: the agent records the trip as the kernel's. */
			if (kind == SHHIM_EV_REFUSED || !f->responses)
				shhim_breaker_hit(hook, &pkt->key, f->client_is_b, kind);
			shhim_flow_failure(hook, f, &pkt->key, kind, 0);
		}
		f->tcp_state = SHHIM_TCP_CLOSED;
		f->syn_ts_ns = 0;
		f->request_ts_ns = 0;
		return dir;
	}

	if (flags & SHHIM_TCP_SYN) {
		if (flags & SHHIM_TCP_ACK) {
			f->synack += 1;
			if (dir == SHHIM_DIR_TO_CLIENT && f->tcp_state == SHHIM_TCP_SYN_SENT &&
			    f->syn_ts_ns) {
				__u64 handshake = now - f->syn_ts_ns;

				f->handshake_ns = handshake;
				f->syn_ts_ns = 0;
				f->tcp_state = SHHIM_TCP_ESTABLISHED;
				be = shhim_backend_get(&pkt->key, f->client_is_b, now);
				if (be) {
					shhim_atomic_add(&be->conn_established, 1);
					shhim_hist_add(&be->handshake, handshake);
				}
				shhim_breaker_ok(&pkt->key, f->client_is_b, 0);
			} else if (f->tcp_state == SHHIM_TCP_NONE) {
				f->tcp_state = SHHIM_TCP_ESTABLISHED; /* joined mid-handshake */
			}
		} else {
			f->syn += 1;
			if (dir == SHHIM_DIR_TO_CLIENT && f->tcp_state != SHHIM_TCP_SYN_SENT) {
				/* Whoever sends the SYN is the client. */
				f->client_is_b ^= 1;
				f->flags &= ~SHHIM_FLOW_F_ROLE_GUESSED;
				/* Another server: classify again. */
				f->class_gen = 0;
				dir = SHHIM_DIR_TO_SERVER;
			}
			if (dir == SHHIM_DIR_TO_SERVER) {
				if (f->tcp_state == SHHIM_TCP_SYN_SENT && f->syn_ts_ns) {
					/* Retransmitted SYN: report once when it is overdue. */
					if (!(f->flags & SHHIM_FLOW_F_SYN_TIMEOUT_REPORTED) &&
					    now - f->syn_ts_ns >= shhim_syn_timeout_ns()) {
						f->flags |= SHHIM_FLOW_F_SYN_TIMEOUT_REPORTED;
						be = shhim_backend_get(&pkt->key, f->client_is_b, now);
						if (be)
							shhim_atomic_add(&be->syn_timeouts, 1);
						shhim_flow_failure(hook, f, &pkt->key,
								   SHHIM_EV_SYN_TIMEOUT, 0);
					}
				} else {
					/* A new connection attempt on this 4-tuple. */
					f->tcp_state = SHHIM_TCP_SYN_SENT;
					f->syn_ts_ns = now;
					f->request_ts_ns = 0;
					f->flags &= ~SHHIM_FLOW_F_SYN_TIMEOUT_REPORTED;
					be = shhim_backend_get(&pkt->key, f->client_is_b, now);
					if (be)
						shhim_atomic_add(&be->conn_attempts, 1);
				}
			}
		}
	}

	if (flags & SHHIM_TCP_FIN) {
		f->fin += 1;
		if (f->tcp_state != SHHIM_TCP_CLOSED)
			f->tcp_state = SHHIM_TCP_CLOSING;
	}
	return dir;
}

static __always_inline void shhim_response(SHHIM_HOOK_CTX *ctx, const struct shhim_hook_ctx *hook,
					   const struct shhim_pkt *pkt, struct shhim_flow *f)
{
	struct shhim_app_result app = {};
	__u64 now = bpf_ktime_get_ns();
	__u64 latency = now - f->request_ts_ns;
	struct shhim_backend *be;

	f->request_ts_ns = 0;
	f->responses += 1;
	f->last_response_ns = latency;
	if (latency > f->max_response_ns)
		f->max_response_ns = latency;

	shhim_peek_payload(ctx, pkt->payload_off, pkt->payload_len, &app);

	be = shhim_backend_get(&pkt->key, f->client_is_b, now);
	if (be) {
		shhim_atomic_add(&be->responses, 1);
		shhim_hist_add(&be->response, latency);
	}
	if (app.app == SHHIM_APP_HTTP) {
		__u32 class = app.status / 100 - 1;

		f->app_proto = SHHIM_APP_HTTP;
		f->last_status = app.status;
		if (be && class < SHHIM_HTTP_CLASS_MAX)
			shhim_atomic_add(&be->http_status[class], 1);
		if (class == SHHIM_HTTP_5XX) {
			shhim_breaker_hit(hook, &pkt->key, f->client_is_b, SHHIM_EV_HTTP_5XX);
			shhim_flow_failure(hook, f, &pkt->key, SHHIM_EV_HTTP_5XX, app.status);
		} else {
			shhim_breaker_ok(&pkt->key, f->client_is_b, 1);
		}
	} else if (app.app == SHHIM_APP_MLLP) {
		__u32 ack = app.mllp_ack;

		f->app_proto = SHHIM_APP_MLLP;
		f->last_status = app.status;
		if (be && ack < SHHIM_MLLP_ACK_MAX)
			shhim_atomic_add(&be->mllp_acks[ack], 1);
		if (ack != SHHIM_MLLP_AA && ack != SHHIM_MLLP_CA) {
			shhim_breaker_hit(hook, &pkt->key, f->client_is_b, SHHIM_EV_MLLP_NACK);
			shhim_flow_failure(hook, f, &pkt->key, SHHIM_EV_MLLP_NACK, ack);
		} else {
			shhim_breaker_ok(&pkt->key, f->client_is_b, 1);
		}
	} else if (be) {
		shhim_atomic_add(&be->app_unparsed, 1);
	}
}

/* Payload in either direction: a request starts, or its first response byte arrives. */
static __always_inline void shhim_payload(SHHIM_HOOK_CTX *ctx, const struct shhim_hook_ctx *hook,
					  const struct shhim_pkt *pkt, struct shhim_flow *f,
					  __u32 dir)
{
	struct shhim_backend *be;
	__u64 now;

	if (dir == SHHIM_DIR_TO_SERVER) {
		if (f->request_ts_ns)
			return; /* more of the outstanding request */
		now = bpf_ktime_get_ns();
		f->request_ts_ns = now;
		f->requests += 1;
		be = shhim_backend_get(&pkt->key, f->client_is_b, now);
		if (be)
			shhim_atomic_add(&be->requests, 1);
		return;
	}
	if (f->request_ts_ns)
		shhim_response(ctx, hook, pkt, f);
}

/*
 * First packet of a conversation: decide the client, insert, count the
 * backend's flow. Global: verified once, and its 144-byte template lives in
 * a frame of its own (the 512-byte stack limit counts the deepest call
 * chain). Returns 1 when this call created the flow.
 */
__noinline int shhim_flow_create(struct shhim_pkt *pkt)
{
	struct shhim_flow nf = {};
	struct shhim_flow_key key;
	struct shhim_backend *be;
	__u64 now = bpf_ktime_get_ns();
	long err;

	if (!pkt)
		return 0;
	/* Map keys from the stack: kernels before 6.2 refuse argument memory. */
	__builtin_memcpy(&key, &pkt->key, sizeof(key));
	if (pkt->role_hint == SHHIM_HINT_SENDER_IS_CLIENT) {
		nf.client_is_b = pkt->sender_is_b;
	} else if (pkt->role_hint == SHHIM_HINT_SENDER_IS_SERVER) {
		nf.client_is_b = !pkt->sender_is_b;
	} else {
		/* Endpoint b has the higher (or equal) port: guess it is the client. */
		nf.client_is_b = 1;
		nf.flags = SHHIM_FLOW_F_ROLE_GUESSED;
	}
	/* The per-tick clock of last_seen, so last_seen never precedes first_seen. */
	nf.first_seen_ns = shhim_now_coarse();
	nf.last_seen_ns = nf.first_seen_ns;

	err = bpf_map_update_elem(&SHHIM_MAP_FLOWS, &key, &nf, BPF_NOEXIST);
	if (err == -SHHIM_EEXIST)
		return 0; /* another CPU created it first; use theirs */
	if (err) {
		shhim_count(SHHIM_CTR_FLOW_CREATE_FAILED);
		return 0;
	}
	shhim_count(SHHIM_CTR_FLOWS_CREATED);
	be = shhim_backend_get(&key, nf.client_is_b, now);
	if (be)
		shhim_atomic_add(&be->flows, 1);
	return 1;
}

/* Destination unreachable (ICMP type 3, ICMPv6 type 1): evidence for the breaker. */
static __always_inline int shhim_icmp_unreachable(const struct shhim_pkt *pkt)
{
	if (pkt->key.a.family == SHHIM_FAMILY_IPV6)
		return pkt->icmp_type == 1;
	return pkt->icmp_type == 3;
}

/* ICMP error quoting pkt->key: attribute it to that flow (never creates one). */
static __always_inline void shhim_icmp_error(const struct shhim_hook_ctx *hook,
					     const struct shhim_pkt *pkt)
{
	struct shhim_flow *f = bpf_map_lookup_elem(&SHHIM_MAP_FLOWS, &pkt->key);
	__u32 detail = ((__u32)pkt->icmp_type << 8) | pkt->icmp_code;
	struct shhim_backend *be;
	__u64 now = bpf_ktime_get_ns();

	if (f) {
		f->icmp_errors += 1;
		be = shhim_backend_get(&pkt->key, f->client_is_b, now);
		if (be)
			shhim_atomic_add(&be->icmp_errors, 1);
		if (shhim_icmp_unreachable(pkt))
			shhim_breaker_hit(hook, &pkt->key, f->client_is_b, SHHIM_EV_ICMP_ERROR);
		shhim_flow_failure(hook, f, &pkt->key, SHHIM_EV_ICMP_ERROR, detail);
		return;
	}
	/* Unknown flow: the sender of the quoted packet is taken as the client. */
	be = shhim_backend_lookup(&pkt->key, pkt->sender_is_b);
	if (be)
		shhim_atomic_add(&be->icmp_errors, 1);
	if (shhim_icmp_unreachable(pkt))
		shhim_breaker_hit(hook, &pkt->key, pkt->sender_is_b, SHHIM_EV_ICMP_ERROR);
	shhim_emit(hook, SHHIM_EV_ICMP_ERROR, detail, &pkt->key, pkt->sender_is_b);
}

/*
 * The flow's class under generation gen: the cached one when it was decided
 * under gen, else classified now and cached. SHHIM_CLASS_NONE before any
 * policy (gen 0).
 */
static __always_inline __u32 shhim_flow_class(struct shhim_flow *f, const struct shhim_pkt *pkt,
					      __u32 gen)
{
	__u32 cached = f->class_gen, cls;

	if (!gen)
		return SHHIM_CLASS_NONE;
	if (SHHIM_CLASS_GEN_GEN(cached) == gen)
		return SHHIM_CLASS_GEN_CLASS(cached);
	cls = shhim_classify(shhim_server_of(&pkt->key, f->client_is_b), gen);
	/* One 32-bit store: readers see the old pair or the new one. */
	f->class_gen = SHHIM_CLASS_GEN(gen, cls);
	return cls;
}

/*
 * Accounting for one parsed packet; the same code for every packet hook.
 * Global: verified once. Returns the packet's class under generation gen,
 * or SHHIM_CLASS_NONE (no policy, or not part of a flow).
 */
__noinline __u32 shhim_account_packet(SHHIM_HOOK_CTX *ctx, struct shhim_pkt *pkt_arg, __u32 gen)
{
	struct shhim_hook_ctx hook_ctx = {
		.id = SHHIM_HOOK_ID,
		.ifindex = SHHIM_HOOK_IFINDEX(ctx),
	};
	const struct shhim_hook_ctx *hook = &hook_ctx;
	struct shhim_pkt local, *pkt = &local;
	struct shhim_flow *f;
	__u32 dir;

	if (!pkt_arg)
		return SHHIM_CLASS_NONE;
	/*
	 * Kernels before 6.2 take map keys only from the stack, packet or map
	 * values, not from memory passed to a global function: work on a copy.
	 */
	__builtin_memcpy(&local, pkt_arg, sizeof(local));

	if (pkt->kind != SHHIM_PKT_FLOW) {
		if (pkt->kind == SHHIM_PKT_ICMP_ERROR)
			shhim_icmp_error(hook, pkt);
		return SHHIM_CLASS_NONE;
	}

	f = bpf_map_lookup_elem(&SHHIM_MAP_FLOWS, &pkt->key);
	if (!f) {
		/*
		 * Creation failed (counted), or the entry was evicted since: still
		 * classify, so a full flow table never demotes life-critical
		 * traffic. The client is guessed as shhim_flow_create() would.
		 */
		__u8 client_is_b = 1;

		if (!gen)
			return SHHIM_CLASS_NONE;
		if (pkt->role_hint == SHHIM_HINT_SENDER_IS_CLIENT)
			client_is_b = pkt->sender_is_b;
		else if (pkt->role_hint == SHHIM_HINT_SENDER_IS_SERVER)
			client_is_b = !pkt->sender_is_b;
		return shhim_classify(shhim_server_of(&pkt->key, client_is_b), gen);
	}
	dir = (pkt->sender_is_b ^ f->client_is_b) & 1;
	if (pkt->tcp_flags & (SHHIM_TCP_SYN | SHHIM_TCP_FIN | SHHIM_TCP_RST))
		dir = shhim_tcp_control(hook, pkt, f, dir) & 1;

	shhim_flow_count(f, dir, pkt);

	if (pkt->payload_len && !(pkt->tcp_flags & (SHHIM_TCP_SYN | SHHIM_TCP_RST)))
		shhim_payload(ctx, hook, pkt, f, dir);
	return shhim_flow_class(f, pkt, gen);
}

/*
 * The hot path, inline in each program: a packet of an existing flow that
 * needs nothing but counting (no SYN/FIN/RST, and no payload that starts a
 * request or answers one) is counted right here. Everything else goes to
 * the global functions; the flow is created first if it does not exist.
 * shhim_flow_create() is called from here, not from shhim_account_packet(),
 * so the deepest call chain (and its stack) stays three frames deep
 * (program, shhim_account_packet, shhim_classify).
 * Returns the packet's class under generation gen, or SHHIM_CLASS_NONE.
 */
static __always_inline __u32 shhim_account(SHHIM_HOOK_CTX *ctx, struct shhim_pkt *pkt, __u32 gen)
{
	struct shhim_flow *f;
	__u32 dir;

	if (pkt->kind != SHHIM_PKT_FLOW)
		goto slow;
	f = bpf_map_lookup_elem(&SHHIM_MAP_FLOWS, &pkt->key);
	if (!f) {
		shhim_flow_create(pkt);
		goto slow;
	}
	if (pkt->tcp_flags & (SHHIM_TCP_SYN | SHHIM_TCP_FIN | SHHIM_TCP_RST))
		goto slow;
	dir = (pkt->sender_is_b ^ f->client_is_b) & 1;
	if (pkt->payload_len && (dir == SHHIM_DIR_TO_SERVER) == !f->request_ts_ns)
		goto slow;
	shhim_flow_count(f, dir, pkt);
	return shhim_flow_class(f, pkt, gen);
slow:
	return shhim_account_packet(ctx, pkt, gen);
}

#endif /* SHHIM_HOOK_CTX */

/*
 * Canonical key of a TCP socket from its local and remote address words
 * (network order; IPv4 given IPv4-mapped) and ports (network order).
 */
static __always_inline void shhim_key_from_sock(struct shhim_flow_key *key, __u8 family,
						const __u32 *local, const __u32 *remote,
						__be16 lport, __be16 rport)
{
	shhim_key_set(key, family, IPPROTO_TCP, local[0], local[1], local[2], local[3], remote[0],
		      remote[1], remote[2], remote[3], lport, rport);
}

#endif /* SHHIM_FLOW_BPF_H */
