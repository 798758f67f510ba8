#include "datapath/route_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "datapath/bpf_handles.h"
#include "datapath/error.h"
#include "datapath/kernel_objects.h"

namespace shhim::datapath {
namespace {

constexpr std::uint32_t kZero = 0;
constexpr std::string_view kOlderBuildHint =
    "loaded by a shhimd build without service routes? restart shhimd to load this build";

std::string endpointText(const shhim_endpoint& e)
{
    char text[INET6_ADDRSTRLEN] = {};
    if (e.family == SHHIM_FAMILY_IPV4)
        ::inet_ntop(AF_INET, e.addr + 12, text, sizeof(text));
    else
        ::inet_ntop(AF_INET6, e.addr, text, sizeof(text));
    const std::string host = e.family == SHHIM_FAMILY_IPV4 ? std::string(text) : "[" + std::string(text) + "]";
    return host + ":" + std::to_string(ntohs(e.port));
}

template <typename Key>
std::vector<Key> allKeys(int fd, std::string_view name, std::size_t bound)
{
    std::vector<Key> keys;
    Key key{};
    Key next{};
    const Key* previous = nullptr;
    while (keys.size() <= bound) {
        if (bpf_map_get_next_key(fd, previous, &next) != 0) {
            if (errno == ENOENT)
                break;
            throwErrno("iterate map " + std::string(name), errno);
        }
        keys.push_back(next);
        key = next;
        previous = &key;
    }
    return keys;
}

std::vector<std::uint8_t> bytesOf(const shhim_endpoint& e)
{
    const auto* p = reinterpret_cast<const std::uint8_t*>(&e);
    return std::vector<std::uint8_t>(p, p + sizeof(e));
}

void fail(const std::string& what) { throw Error("service routes not applied: " + what, EINVAL); }

// Every limit the kernel has, checked before anything is written.
void checkLimits(const core::RouteTables& t)
{
    std::set<std::uint32_t> service_ids;
    std::set<std::uint32_t> backend_ids;
    for (const core::RouteBackend& b : t.backends) {
        if (b.id == 0 || b.id >= SHHIM_MAX_ROUTE_BACKENDS)
            fail("backend id " + std::to_string(b.id) + " is outside 1.." + std::to_string(SHHIM_MAX_ROUTE_BACKENDS - 1));
        if (!backend_ids.insert(b.id).second)
            fail("backend id " + std::to_string(b.id) + " is given twice");
        if (b.endpoint.family != 4 && b.endpoint.family != 6)
            fail("backend id " + std::to_string(b.id) + ": address family " + std::to_string(b.endpoint.family));
    }
    for (const core::RouteService& s : t.services) {
        if (s.id >= SHHIM_MAX_ROUTE_SERVICES)
            fail("service " + s.name + ": id " + std::to_string(s.id) + " is beyond " +
                 std::to_string(SHHIM_MAX_ROUTE_SERVICES - 1));
        if (!service_ids.insert(s.id).second)
            fail("service " + s.name + ": id " + std::to_string(s.id) + " is given twice");
        for (const auto* pool : {&s.primary, &s.fallback}) {
            if (pool->size() > SHHIM_ROUTE_POOL_MAX)
                fail("service " + s.name + ": " + std::to_string(pool->size()) + " backends in one pool, the kernel holds " +
                     std::to_string(SHHIM_ROUTE_POOL_MAX));
            for (const core::RouteMember& m : *pool) {
                if (!backend_ids.count(m.backend_id))
                    fail("service " + s.name + ": backend id " + std::to_string(m.backend_id) + " has no backend entry");
                if (m.weight == 0 || m.weight > SHHIM_ROUTE_WEIGHT_MAX)
                    fail("service " + s.name + ": weight " + std::to_string(m.weight) + " is outside 1.." +
                         std::to_string(SHHIM_ROUTE_WEIGHT_MAX));
            }
        }
    }
}

shhim_route toKernelRoute(const core::RouteService& s, std::uint32_t generation)
{
    shhim_route r{};
    r.generation = generation;
    r.service_id = s.id;
    r.class_id = s.class_id;
    r.active_pool = SHHIM_POOL_PRIMARY;
    const std::vector<core::RouteMember>* pools[SHHIM_POOLS] = {&s.primary, &s.fallback};
    for (std::uint32_t p = 0; p < SHHIM_POOLS; ++p) {
        r.count[p] = static_cast<std::uint8_t>(pools[p]->size());
        for (std::size_t i = 0; i < pools[p]->size(); ++i)
            r.pools[p][i] = shhim_route_member{static_cast<__u16>((*pools[p])[i].backend_id), (*pools[p])[i].weight};
    }
    return r;
}

}  // namespace

shhim_endpoint toKernelEndpoint(const core::ServiceEndpoint& e)
{
    shhim_endpoint out{};
    std::memcpy(out.addr, e.address.data(), sizeof(out.addr));
    out.port = htons(e.port);
    out.family = e.family == 4 ? SHHIM_FAMILY_IPV4 : SHHIM_FAMILY_IPV6;
    out.proto = e.protocol;
    return out;
}

core::ServiceEndpoint fromKernelEndpoint(const shhim_endpoint& e)
{
    core::ServiceEndpoint out;
    std::memcpy(out.address.data(), e.addr, sizeof(e.addr));
    out.port = ntohs(e.port);
    out.family = e.family == SHHIM_FAMILY_IPV4 ? 4 : 6;
    out.protocol = e.proto;
    return out;
}

RouteMaps RouteMaps::openPinned(const std::string& pin_root)
{
    RouteMaps m;
    m.vips_ = openPinnedMap(pin_root, "shhim_route_vips", kOlderBuildHint);
    m.routes_ = openPinnedMap(pin_root, "shhim_routes", kOlderBuildHint);
    m.active_ = openPinnedMap(pin_root, "shhim_route_active", kOlderBuildHint);
    m.health_ = openPinnedMap(pin_root, "shhim_backend_health", kOlderBuildHint);
    m.backend_ids_ = openPinnedMap(pin_root, "shhim_backend_ids", kOlderBuildHint);
    m.counters_ = openPinnedMap(pin_root, "shhim_route_counters", kOlderBuildHint);
    checkLayout(m.vips_.get(), "shhim_route_vips", sizeof(shhim_endpoint), sizeof(__u32));
    checkLayout(m.routes_.get(), "shhim_routes", sizeof(__u32), sizeof(shhim_route));
    checkLayout(m.active_.get(), "shhim_route_active", sizeof(__u32), sizeof(__u32));
    checkLayout(m.health_.get(), "shhim_backend_health", sizeof(__u32), sizeof(shhim_backend_health));
    checkLayout(m.backend_ids_.get(), "shhim_backend_ids", sizeof(shhim_endpoint), sizeof(__u32));
    checkLayout(m.counters_.get(), "shhim_route_counters", sizeof(__u32), sizeof(shhim_route_counter));

    m.barrier_ = std::make_unique<ProgramBarrier>("shhim_rt");
    m.ncpus_ = libbpf_num_possible_cpus();
    if (m.ncpus_ <= 0)
        throwErrno("count possible CPUs", m.ncpus_);
    return m;
}

void RouteMaps::waitForPrograms() const { barrier_->wait(); }

void RouteMaps::apply(const core::RouteTables& tables)
{
    const std::lock_guard lock(*writer_);
    checkLimits(tables);

    // 1. Backends: health entries (state kept for ids that stay), then endpoint -> id.
    std::set<std::uint32_t> live_backends;
    std::set<std::vector<std::uint8_t>> live_backend_keys;
    for (const core::RouteBackend& b : tables.backends) {
        const shhim_endpoint endpoint = toKernelEndpoint(b.endpoint);
        shhim_backend_health h{};
        const __u32 id = b.id;
        if (bpf_map_lookup_elem(health_.get(), &id, &h) != 0)
            throwErrno("read map shhim_backend_health entry " + std::to_string(id), errno);
        if (std::memcmp(&h.endpoint, &endpoint, sizeof(endpoint)) != 0)
            h = shhim_backend_health{};  // the id changes hands: a new backend starts UP
        h.endpoint = endpoint;
        h.threshold = b.threshold;
        h.flags = b.flags;
        if (bpf_map_update_elem(health_.get(), &id, &h, BPF_ANY) != 0)
            throwErrno("write map shhim_backend_health entry " + std::to_string(id) + " (" + endpointText(endpoint) + ")",
                       errno);
        if (bpf_map_update_elem(backend_ids_.get(), &endpoint, &id, BPF_ANY) != 0)
            throwErrno("write map shhim_backend_ids (" + endpointText(endpoint) + ")", errno);
        live_backends.insert(id);
        live_backend_keys.insert(bytesOf(endpoint));
    }

    // 2. Routes: the inactive slot of each service, then one flip each.
    waitForPrograms();
    std::vector<std::pair<__u32, __u32>> flips;  // service id, new slot
    for (const core::RouteService& s : tables.services) {
        const __u32 id = s.id;
        __u32 slot = 0;
        if (bpf_map_lookup_elem(active_.get(), &id, &slot) != 0)
            throwErrno("read map shhim_route_active entry " + std::to_string(id), errno);
        shhim_route current{};
        const __u32 current_index = id * 2 + (slot & 1);
        if (bpf_map_lookup_elem(routes_.get(), &current_index, &current) != 0)
            throwErrno("read map shhim_routes entry " + std::to_string(current_index), errno);
        shhim_route next = toKernelRoute(s, current.generation + 1);
        // The pool in use is routing state, not policy: it survives a re-apply.
        if (current.service_id == id && current.generation != 0)
            next.active_pool = current.active_pool;
        const __u32 next_slot = (slot & 1) ^ 1;
        const __u32 next_index = id * 2 + next_slot;
        if (bpf_map_update_elem(routes_.get(), &next_index, &next, BPF_ANY) != 0)
            throwErrno("write map shhim_routes entry " + std::to_string(next_index) + " (service " + s.name + ")",
                       errno);
        flips.emplace_back(id, next_slot);
    }
    for (const auto& [id, slot] : flips) {
        if (bpf_map_update_elem(active_.get(), &id, &slot, BPF_ANY) != 0)
            throwErrno("write map shhim_route_active entry " + std::to_string(id), errno);
    }

    // 3. Service addresses: present ones (re)pointed, removed ones gone.
    std::set<std::vector<std::uint8_t>> live_vips;
    for (const core::RouteService& s : tables.services) {
        const shhim_endpoint vip = toKernelEndpoint(s.endpoint);
        const __u32 id = s.id;
        if (bpf_map_update_elem(vips_.get(), &vip, &id, BPF_ANY) != 0)
            throwErrno("write map shhim_route_vips (service " + s.name + ", " + endpointText(vip) + ")", errno);
        live_vips.insert(bytesOf(vip));
    }
    for (const shhim_endpoint& vip : allKeys<shhim_endpoint>(vips_.get(), "shhim_route_vips", SHHIM_MAX_ROUTE_SERVICES)) {
        if (live_vips.count(bytesOf(vip)))
            continue;
        if (bpf_map_delete_elem(vips_.get(), &vip) != 0 && errno != ENOENT)
            throwErrno("delete stale entry of map shhim_route_vips (" + endpointText(vip) + ")", errno);
    }

    // 4. Backends nobody routes to any more: once no connect can still be choosing them.
    waitForPrograms();
    for (const shhim_endpoint& key :
         allKeys<shhim_endpoint>(backend_ids_.get(), "shhim_backend_ids", SHHIM_MAX_ROUTE_BACKENDS)) {
        if (live_backend_keys.count(bytesOf(key)))
            continue;
        if (bpf_map_delete_elem(backend_ids_.get(), &key) != 0 && errno != ENOENT)
            throwErrno("delete stale entry of map shhim_backend_ids (" + endpointText(key) + ")", errno);
    }
    const shhim_backend_health empty{};
    for (__u32 id = 1; id < SHHIM_MAX_ROUTE_BACKENDS; ++id) {
        if (live_backends.count(id))
            continue;
        shhim_backend_health h{};
        if (bpf_map_lookup_elem(health_.get(), &id, &h) != 0)
            throwErrno("read map shhim_backend_health entry " + std::to_string(id), errno);
        if (h.endpoint.family == 0)
            continue;
        if (bpf_map_update_elem(health_.get(), &id, &empty, BPF_ANY) != 0)
            throwErrno("clear map shhim_backend_health entry " + std::to_string(id), errno);
    }
}

void RouteMaps::setBackendState(std::uint32_t backend_id, std::uint32_t state)
{
    const std::lock_guard lock(*writer_);
    if (backend_id == 0 || backend_id >= SHHIM_MAX_ROUTE_BACKENDS)
        throw Error("backend id " + std::to_string(backend_id) + " is outside 1.." +
                        std::to_string(SHHIM_MAX_ROUTE_BACKENDS - 1),
                    EINVAL);
    if (state != SHHIM_BACKEND_UP && state != SHHIM_BACKEND_DOWN_KERNEL && state != SHHIM_BACKEND_DOWN_AGENT)
        throw Error("backend state " + std::to_string(state) + " is not UP (0), DOWN_KERNEL (1) or DOWN_AGENT (2)",
                    EINVAL);
    const __u32 id = backend_id;
    shhim_backend_health h{};
    if (bpf_map_lookup_elem(health_.get(), &id, &h) != 0)
        throwErrno("read map shhim_backend_health entry " + std::to_string(id), errno);
    if (h.endpoint.family == 0)
        throw Error("backend id " + std::to_string(id) + " is not in use (no policy names it)", ENOENT);
    h.state = state;
    if (state == SHHIM_BACKEND_UP) {
        h.conn_failures = 0;
        h.app_failures = 0;
    }
    if (bpf_map_update_elem(health_.get(), &id, &h, BPF_ANY) != 0)
        throwErrno("write map shhim_backend_health entry " + std::to_string(id) + " (" + endpointText(h.endpoint) + ")",
                   errno);
}

shhim_backend_health RouteMaps::health(std::uint32_t backend_id) const
{
    const __u32 id = backend_id;
    shhim_backend_health h{};
    if (backend_id == 0 || backend_id >= SHHIM_MAX_ROUTE_BACKENDS || bpf_map_lookup_elem(health_.get(), &id, &h) != 0)
        throwErrno("read map shhim_backend_health entry " + std::to_string(id), errno ? errno : EINVAL);
    return h;
}

std::vector<BackendHealth> RouteMaps::backends() const
{
    std::vector<BackendHealth> out;
    for (__u32 id = 1; id < SHHIM_MAX_ROUTE_BACKENDS; ++id) {
        shhim_backend_health h{};
        if (bpf_map_lookup_elem(health_.get(), &id, &h) != 0)
            throwErrno("read map shhim_backend_health entry " + std::to_string(id), errno);
        if (h.endpoint.family == 0)
            continue;
        out.push_back({id, fromKernelEndpoint(h.endpoint), h});
    }
    return out;
}

std::vector<ServiceRoute> RouteMaps::services() const
{
    std::vector<ServiceRoute> out;
    std::vector<shhim_route_counter> per_cpu(static_cast<std::size_t>(ncpus_));
    for (const shhim_endpoint& vip : allKeys<shhim_endpoint>(vips_.get(), "shhim_route_vips", SHHIM_MAX_ROUTE_SERVICES)) {
        __u32 id = 0;
        if (bpf_map_lookup_elem(vips_.get(), &vip, &id) != 0)
            continue;  // removed meanwhile
        __u32 slot = 0;
        if (bpf_map_lookup_elem(active_.get(), &id, &slot) != 0)
            throwErrno("read map shhim_route_active entry " + std::to_string(id), errno);
        ServiceRoute s;
        s.id = id;
        s.endpoint = fromKernelEndpoint(vip);
        const __u32 index = id * 2 + (slot & 1);
        if (bpf_map_lookup_elem(routes_.get(), &index, &s.route) != 0)
            throwErrno("read map shhim_routes entry " + std::to_string(index), errno);
        if (bpf_map_lookup_elem(counters_.get(), &id, per_cpu.data()) != 0)
            throwErrno("read map shhim_route_counters entry " + std::to_string(id), errno);
        for (const shhim_route_counter& c : per_cpu) {
            s.counters.steered += c.steered;
            s.counters.no_backend += c.no_backend;
            s.counters.fallback += c.fallback;
            s.counters.replies_rewritten += c.replies_rewritten;
        }
        out.push_back(s);
    }
    std::sort(out.begin(), out.end(), [](const ServiceRoute& a, const ServiceRoute& b) { return a.id < b.id; });
    return out;
}

core::RouteIds RouteMaps::ids() const
{
    core::RouteIds ids;
    for (const ServiceRoute& s : services())
        ids.services.emplace_back(s.endpoint, s.id);
    for (const BackendHealth& b : backends())
        ids.backends.emplace_back(b.endpoint, b.id);
    return ids;
}

}  // namespace shhim::datapath
