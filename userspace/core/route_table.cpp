#include "core/route_table.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "core/policy_address.h"
#include "policy.pb.h"
#include "shhim_abi.h"

namespace shhim::core {
namespace {

static_assert(kMaxRouteServices == SHHIM_MAX_ROUTE_SERVICES, "route service table size differs from the kernel's");
static_assert(kMaxRouteBackends == SHHIM_MAX_ROUTE_BACKENDS, "backend health table size differs from the kernel's");
static_assert(kMaxPoolMembers == SHHIM_ROUTE_POOL_MAX, "pool size differs from the kernel's");
static_assert(kMaxBackendWeight == SHHIM_ROUTE_WEIGHT_MAX, "backend weight limit differs from the kernel's");
static_assert(kCountHttp5xx == SHHIM_BH_F_HTTP_5XX && kCountMllpNack == SHHIM_BH_F_MLLP_NACK,
              "breaker flags differ from the kernel's");
static_assert(kUrgentBreakerThreshold == SHHIM_BREAKER_THRESHOLD_URGENT &&
                  kDefaultBreakerThreshold == SHHIM_BREAKER_THRESHOLD_DEFAULT,
              "breaker defaults differ from the kernel header's");

constexpr std::uint8_t kProtoTcp = 6;

using EndpointKey = std::tuple<Address16, std::uint8_t, std::uint16_t, std::uint8_t>;

EndpointKey keyOf(const ServiceEndpoint& e) { return {e.address, e.family, e.port, e.protocol}; }

std::string at(const std::string& list, int index) { return list + "[" + std::to_string(index) + "]"; }

// The kernel's form of "ADDRESS:PORT" over TCP (http, mllp and tcp services).
ServiceEndpoint endpointOf(const std::string& text, const std::string& where)
{
    const ParseResult<SocketAddress> parsed = parseSocketAddress(text);
    if (!parsed.value)
        throw RouteTablesError(where + ": " + parsed.error);
    ServiceEndpoint e;
    if (parsed.value->ip.family == IpFamily::V6) {
        e.address = parsed.value->ip.bytes;
        e.family = 6;
    } else {
        e.address[10] = e.address[11] = 0xff;
        std::copy_n(parsed.value->ip.bytes.begin(), 4, e.address.begin() + 12);
        e.family = 4;
    }
    e.port = parsed.value->port;
    e.protocol = kProtoTcp;
    return e;
}

// Hands out ids: the previous one for a known endpoint, else the lowest free one.
class IdAllocator {
public:
    IdAllocator(const std::vector<std::pair<ServiceEndpoint, std::uint32_t>>& previous, std::uint32_t first,
                std::size_t limit)
        : next_free_(first), limit_(limit)
    {
        for (const auto& [endpoint, id] : previous)
            if (id >= first && id < limit)
                previous_.emplace(keyOf(endpoint), id);
    }

    // Reserves the previous ids of every endpoint in `wanted` first, so a
    // new endpoint never takes an id a kept one still owns.
    void reserve(const std::vector<EndpointKey>& wanted)
    {
        for (const EndpointKey& key : wanted) {
            const auto it = previous_.find(key);
            if (it != previous_.end() && used_.insert(it->second).second)
                given_.emplace(key, it->second);
        }
    }

    // The id of key, or 0 when the table is full.
    std::uint32_t idOf(const EndpointKey& key)
    {
        if (const auto it = given_.find(key); it != given_.end())
            return it->second;
        while (next_free_ < limit_ && used_.count(next_free_))
            ++next_free_;
        if (next_free_ >= limit_)
            return 0;
        used_.insert(next_free_);
        given_.emplace(key, next_free_);
        return next_free_;
    }

private:
    std::map<EndpointKey, std::uint32_t> previous_;
    std::map<EndpointKey, std::uint32_t> given_;
    std::set<std::uint32_t> used_;
    std::uint32_t next_free_;
    std::size_t limit_;
};

std::uint32_t appFlags(v1::AppProtocol protocol)
{
    switch (protocol) {
    case v1::APP_PROTOCOL_HTTP: return kCountHttp5xx;
    case v1::APP_PROTOCOL_MLLP: return kCountMllpNack;
    default: return 0;
    }
}

}  // namespace

std::uint32_t breakerThreshold(std::uint8_t class_id, std::uint32_t consecutive_failures)
{
    if (consecutive_failures)
        return consecutive_failures;
    return class_id == kClassLifeCritical || class_id == kClassEmergency ? kUrgentBreakerThreshold
                                                                         : kDefaultBreakerThreshold;
}

ServiceEndpoint routeEndpoint(const std::string& text) { return endpointOf(text, "backend"); }

RouteIds routeIdsOf(const RouteTables& tables)
{
    RouteIds ids;
    for (const RouteService& s : tables.services)
        ids.services.emplace_back(s.endpoint, s.id);
    for (const RouteBackend& b : tables.backends)
        ids.backends.emplace_back(b.endpoint, b.id);
    return ids;
}

RouteTables compileRouteTables(const v1::Policy& policy, const RouteIds& previous)
{
    ClassTables classes;
    try {
        classes = compileClassTables(policy);
    } catch (const ClassTablesError& e) {
        throw RouteTablesError(e.what());
    }
    if (static_cast<std::size_t>(policy.services_size()) > kMaxRouteServices)
        throw RouteTablesError("services: " + std::to_string(policy.services_size()) +
                               " services; the kernel route table holds " + std::to_string(kMaxRouteServices));

    // Every endpoint first, so kept endpoints keep their ids whatever the order.
    struct Parsed {
        ServiceEndpoint address;
        std::vector<std::pair<ServiceEndpoint, std::uint16_t>> pools[2];
    };
    std::vector<Parsed> parsed;
    std::vector<EndpointKey> service_keys;
    std::vector<EndpointKey> backend_keys;
    for (int si = 0; si < policy.services_size(); ++si) {
        const v1::Service& svc = policy.services(si);
        const std::string path = at("services", si);
        Parsed p;
        p.address = endpointOf(svc.address(), path + ".address");
        service_keys.push_back(keyOf(p.address));
        std::map<EndpointKey, std::uint16_t> weights;
        for (int wi = 0; wi < svc.backends().weights_size(); ++wi) {
            const v1::BackendWeight& w = svc.backends().weights(wi);
            const ServiceEndpoint e = endpointOf(w.backend(), at(path + ".backends.weights", wi) + ".backend");
            weights[keyOf(e)] = static_cast<std::uint16_t>(std::clamp<std::uint32_t>(w.weight(), 1, kMaxBackendWeight));
        }
        const google::protobuf::RepeatedPtrField<std::string>* pools[2] = {&svc.backends().primary(),
                                                                           &svc.backends().fallback()};
        const char* names[2] = {".backends.primary", ".backends.fallback"};
        for (int pool = 0; pool < 2; ++pool) {
            if (static_cast<std::size_t>(pools[pool]->size()) > kMaxPoolMembers)
                throw RouteTablesError(path + names[pool] + ": " + std::to_string(pools[pool]->size()) +
                                       " backends; the kernel holds " + std::to_string(kMaxPoolMembers) + " per pool");
            for (int b = 0; b < pools[pool]->size(); ++b) {
                const std::string& text = pools[pool]->Get(b);
                const ServiceEndpoint e = endpointOf(text, at(path + names[pool], b));
                const auto w = weights.find(keyOf(e));
                p.pools[pool].emplace_back(e, w == weights.end() ? 1 : w->second);
                backend_keys.push_back(keyOf(e));
            }
        }
        parsed.push_back(std::move(p));
    }

    IdAllocator service_ids(previous.services, 0, kMaxRouteServices);
    IdAllocator backend_ids(previous.backends, 1, kMaxRouteBackends);  // id 0: none
    service_ids.reserve(service_keys);
    backend_ids.reserve(backend_keys);

    RouteTables t;
    std::map<EndpointKey, std::size_t> backend_index;
    for (int si = 0; si < policy.services_size(); ++si) {
        const v1::Service& svc = policy.services(si);
        const Parsed& p = parsed[static_cast<std::size_t>(si)];
        RouteService rs;
        rs.name = svc.name();
        rs.endpoint = p.address;
        rs.id = service_ids.idOf(keyOf(p.address));
        rs.class_id = classes.idOf(svc.class_()).value_or(kDefaultClass);
        const std::uint32_t threshold = breakerThreshold(
            rs.class_id, svc.has_thresholds() && svc.thresholds().has_consecutive_failures()
                             ? svc.thresholds().consecutive_failures()
                             : 0);
        for (int pool = 0; pool < 2; ++pool) {
            for (const auto& [endpoint, weight] : p.pools[pool]) {
                const EndpointKey key = keyOf(endpoint);
                auto it = backend_index.find(key);
                if (it == backend_index.end()) {
                    const std::uint32_t id = backend_ids.idOf(key);
                    if (id == 0)
                        throw RouteTablesError(at("services", si) + ".backends: more than " +
                                               std::to_string(kMaxRouteBackends - 1) +
                                               " distinct backends; the kernel health table is full");
                    RouteBackend b;
                    b.endpoint = endpoint;
                    b.id = id;
                    b.threshold = threshold;
                    b.service = svc.name();
                    it = backend_index.emplace(key, t.backends.size()).first;
                    t.backends.push_back(std::move(b));
                }
                RouteBackend& b = t.backends[it->second];
                b.threshold = std::min(b.threshold, threshold);
                b.flags |= appFlags(svc.protocol());
                (pool == 0 ? rs.primary : rs.fallback).push_back({b.id, weight});
            }
        }
        t.services.push_back(std::move(rs));
    }
    return t;
}

}  // namespace shhim::core
