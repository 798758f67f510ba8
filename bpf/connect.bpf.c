// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * connect.bpf.c - socket-level service reroute from the cgroup sock_addr
 * hooks (issue 4): a connect (TCP, or connected UDP) or an unconnected UDP
 * send to a service address goes to a backend chosen by weighted
 * rendezvous hashing (route_hash.h) over the UP backends of the service's
 * active pool, keyed by the socket cookie so each connection is independent.
 * UDP replies get the service address back as their source (recvmsg).
 *
 * Fail open: anything unknown or missing leaves the address unchanged, and
 * every hook returns 1 (allow). Tables and their semantics: shhim_abi.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "shhim_abi.h"
#include "maps.bpf.h"
#include "parse.bpf.h"
#include "route_hash.h"

#define SHHIM_SOCK_STREAM 1
#define SHHIM_SOCK_DGRAM  2
#define SHHIM_IPPROTO_TCP 6
#define SHHIM_IPPROTO_UDP 17

/* Transport of the socket as the route tables key it; 0 for anything else. */
static __always_inline __u8 shhim_sock_proto(const struct bpf_sock_addr *ctx)
{
	if (ctx->type == SHHIM_SOCK_STREAM)
		return SHHIM_IPPROTO_TCP;
	if (ctx->type == SHHIM_SOCK_DGRAM)
		return SHHIM_IPPROTO_UDP;
	return 0;
}

/* The destination (or, in recvmsg, the source) of ctx as a table endpoint. */
static __always_inline void shhim_sock_endpoint4(const struct bpf_sock_addr *ctx, struct shhim_endpoint *ep,
						 __u8 proto)
{
	shhim_ep_set(ep, 0, 0, bpf_htonl(0xffff), ctx->user_ip4, (__be16)ctx->user_port,
		     SHHIM_FAMILY_IPV4, proto);
}

static __always_inline void shhim_sock_endpoint6(const struct bpf_sock_addr *ctx, struct shhim_endpoint *ep,
						 __u8 proto)
{
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2], w3 = ctx->user_ip6[3];
	/* A dual-stack socket talking to ::ffff:a.b.c.d talks IPv4. */
	__u8 family = (!w0 && !w1 && w2 == bpf_htonl(0xffff)) ? SHHIM_FAMILY_IPV4 : SHHIM_FAMILY_IPV6;

	shhim_ep_set(ep, w0, w1, w2, w3, (__be16)ctx->user_port, family, proto);
}

/*
 * Bit i set when pools[pool][i] is a known backend in state UP. Global (and
 * so is shhim_choose): verified once each, not once per path of the caller.
 */
__noinline __u32 shhim_pool_up(const struct shhim_route *route, __u32 pool)
{
	__u32 mask = 0, i, n;

	if (!route)
		return 0;
	n = route->count[pool & 1];

	for (i = 0; i < SHHIM_ROUTE_POOL_MAX; i++) {
		struct shhim_backend_health *h;
		__u32 id;

		if (i >= n)
			break;
		id = route->pools[pool & 1][i].backend_id;
		h = bpf_map_lookup_elem(&SHHIM_MAP_BACKEND_HEALTH, &id);
		if (h && h->endpoint.family && h->state == SHHIM_BACKEND_UP)
			mask |= 1u << i;
	}
	return mask;
}

/* One member's score (route_hash.h): global, so verified once, on its own. */
__noinline __u64 shhim_hrw_member_score(__u64 key, __u32 backend_id, __u32 weight)
{
	return shhim_hrw_score(key, backend_id, weight);
}

/* The shared choice (route_hash.h) on the route entry; *pool: the pool used. */
__noinline __u32 shhim_choose(const struct shhim_route *route, __u32 up0, __u32 up1, __u64 key, __u32 *pool)
{
	__u32 up[SHHIM_POOLS] = {up0, up1};

	if (!route || !pool)
		return 0;
	return shhim_route_choose(route, up, key, pool);
}

static __always_inline struct shhim_route_counter *shhim_route_counter_of(__u32 service_id)
{
	return bpf_map_lookup_elem(&SHHIM_MAP_ROUTE_COUNTERS, &service_id);
}

/*
 * The backend a socket to service endpoint `service` goes to, or NULL to
 * leave it alone (not a service, no route, no UP backend).
 */
static __always_inline const struct shhim_backend_health *shhim_steer(const struct shhim_endpoint *service,
								       __u64 cookie)
{
	struct shhim_route_counter *ctr;
	const struct shhim_route *route;
	__u32 *sid, *slot, pool = 0, id, idx;
	struct shhim_backend_health *h;

	sid = bpf_map_lookup_elem(&SHHIM_MAP_ROUTE_VIPS, service);
	if (!sid)
		return NULL;
	idx = *sid;
	slot = bpf_map_lookup_elem(&SHHIM_MAP_ROUTE_ACTIVE, &idx);
	if (!slot)
		return NULL;
	idx = idx * 2 + (*slot & 1);
	route = bpf_map_lookup_elem(&SHHIM_MAP_ROUTES, &idx);
	if (!route)
		return NULL;
	ctr = shhim_route_counter_of(*sid);

	id = shhim_choose(route, shhim_pool_up(route, 0), shhim_pool_up(route, 1), cookie, &pool);
	h = id ? bpf_map_lookup_elem(&SHHIM_MAP_BACKEND_HEALTH, &id) : NULL;
	if (!h || h->endpoint.family != service->family) {
		if (ctr)
			ctr->no_backend += 1;
		return NULL;
	}
	if (ctr) {
		ctr->steered += 1;
		if (pool != (route->active_pool & 1u))
			ctr->fallback += 1;
	}
	return h;
}

/* UDP: remember what the socket was steered from and to, for its replies. */
static __always_inline void shhim_remember(__u64 cookie, const struct shhim_endpoint *service,
					   const struct shhim_endpoint *backend)
{
	struct shhim_sock_route r;

	__builtin_memcpy(&r.service, service, sizeof(r.service));
	__builtin_memcpy(&r.backend, backend, sizeof(r.backend));
	bpf_map_update_elem(&SHHIM_MAP_SOCK_ROUTES, &cookie, &r, BPF_ANY);
}

static __always_inline void shhim_write4(struct bpf_sock_addr *ctx, const struct shhim_endpoint *ep)
{
	ctx->user_ip4 = ((const __u32 *)ep->addr)[3];
	ctx->user_port = (__u32)ep->port;
}

static __always_inline void shhim_write6(struct bpf_sock_addr *ctx, const struct shhim_endpoint *ep)
{
	const __u32 *w = (const __u32 *)ep->addr;

	ctx->user_ip6[0] = w[0];
	ctx->user_ip6[1] = w[1];
	ctx->user_ip6[2] = w[2];
	ctx->user_ip6[3] = w[3];
	ctx->user_port = (__u32)ep->port;
}

/* shhimd's own health probes (SO_MARK = SHHIM_PROBE_MARK) go where they are sent. */
static __always_inline int shhim_is_probe(const struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;

	return sk && sk->mark == SHHIM_PROBE_MARK;
}

/* connect and sendmsg, both families: rewrite a service destination. */
static __always_inline int shhim_steer_sock(struct bpf_sock_addr *ctx, int ipv6, int udp_only)
{
	const struct shhim_backend_health *h;
	struct shhim_endpoint service = {};
	struct shhim_endpoint backend;
	__u8 proto = shhim_sock_proto(ctx);
	__u64 cookie;

	if (!proto || (udp_only && proto != SHHIM_IPPROTO_UDP))
		return 1;
	if (shhim_is_probe(ctx))
		return 1;
	if (ipv6)
		shhim_sock_endpoint6(ctx, &service, proto);
	else
		shhim_sock_endpoint4(ctx, &service, proto);
	cookie = bpf_get_socket_cookie(ctx);
	h = shhim_steer(&service, cookie);
	if (!h)
		return 1;
	__builtin_memcpy(&backend, &h->endpoint, sizeof(backend));
	if (ipv6)
		shhim_write6(ctx, &backend);
	else
		shhim_write4(ctx, &backend);
	if (proto == SHHIM_IPPROTO_UDP)
		shhim_remember(cookie, &service, &backend);
	return 1;
}

/* clang turns a struct memcmp into a libc call BPF has not got: compare words. */
static __always_inline int shhim_ep_equal(const struct shhim_endpoint *x, const struct shhim_endpoint *y)
{
	const __u32 *a = (const __u32 *)x, *b = (const __u32 *)y;

	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4];
}

/* recvmsg: a reply from the backend a UDP socket was steered to shows the service address. */
static __always_inline int shhim_restore_source(struct bpf_sock_addr *ctx, int ipv6)
{
	struct shhim_endpoint from = {};
	struct shhim_route_counter *ctr;
	struct shhim_sock_route *r;
	__u64 cookie;
	__u32 *sid;

	if (shhim_sock_proto(ctx) != SHHIM_IPPROTO_UDP)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	r = bpf_map_lookup_elem(&SHHIM_MAP_SOCK_ROUTES, &cookie);
	if (!r)
		return 1;
	if (ipv6)
		shhim_sock_endpoint6(ctx, &from, SHHIM_IPPROTO_UDP);
	else
		shhim_sock_endpoint4(ctx, &from, SHHIM_IPPROTO_UDP);
	if (!shhim_ep_equal(&from, &r->backend))
		return 1;
	if (ipv6)
		shhim_write6(ctx, &r->service);
	else
		shhim_write4(ctx, &r->service);
	sid = bpf_map_lookup_elem(&SHHIM_MAP_ROUTE_VIPS, &r->service);
	if (sid) {
		ctr = shhim_route_counter_of(*sid);
		if (ctr)
			ctr->replies_rewritten += 1;
	}
	return 1;
}

SEC("cgroup/connect4")
int shhim_connect4(struct bpf_sock_addr *ctx)
{
	return shhim_steer_sock(ctx, 0, 0);
}

SEC("cgroup/connect6")
int shhim_connect6(struct bpf_sock_addr *ctx)
{
	return shhim_steer_sock(ctx, 1, 0);
}

SEC("cgroup/sendmsg4")
int shhim_sendmsg4(struct bpf_sock_addr *ctx)
{
	return shhim_steer_sock(ctx, 0, 1);
}

SEC("cgroup/sendmsg6")
int shhim_sendmsg6(struct bpf_sock_addr *ctx)
{
	return shhim_steer_sock(ctx, 1, 1);
}

SEC("cgroup/recvmsg4")
int shhim_recvmsg4(struct bpf_sock_addr *ctx)
{
	return shhim_restore_source(ctx, 0);
}

SEC("cgroup/recvmsg6")
int shhim_recvmsg6(struct bpf_sock_addr *ctx)
{
	return shhim_restore_source(ctx, 1);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
