// Service route tables: what the kernel needs from a policy to steer
// connections to backends (issue 4), as plain values.
//
// compileRouteTables() turns a validated shhim::v1::Policy into RouteTables
// (pure: no syscalls); datapath::RouteMaps::apply() writes them into the
// BPF maps. Like classify_tables.h, the structs here need nothing but the
// standard library, so the datapath (which does not link protobuf) can
// include this header for the types alone.
//
// Ids: every service endpoint has a service id (index of its kernel route
// entry) and every backend endpoint a backend id (index of its health
// entry). Ids are stable across applies: an endpoint that was in the
// previous tables keeps its id, so re-applying a policy moves no traffic
// and keeps each backend's health; new endpoints take the lowest free ids.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/classify_tables.h"

namespace shhim::core {

// Limits of the kernel tables (bpf/shhim_abi.h; route_table.cpp asserts them).
inline constexpr std::size_t kMaxRouteServices = 1024;     // service ids 0..1023
inline constexpr std::size_t kMaxRouteBackends = 4096;     // backend ids 1..4095
inline constexpr std::size_t kMaxPoolMembers = 16;         // backends per pool
inline constexpr std::uint32_t kMaxBackendWeight = 100;
// Breaker thresholds when the policy gives no consecutive_failures.
inline constexpr std::uint32_t kUrgentBreakerThreshold = 1;   // life-critical, emergency
inline constexpr std::uint32_t kDefaultBreakerThreshold = 3;  // every other class
// RouteBackend::flags: which application failures count for the breaker
// (the values of SHHIM_BH_F_*).
inline constexpr std::uint32_t kCountHttp5xx = 1u << 0;
inline constexpr std::uint32_t kCountMllpNack = 1u << 1;

struct RouteMember {
    std::uint32_t backend_id = 0;
    std::uint16_t weight = 1;          // 1..kMaxBackendWeight

    bool operator==(const RouteMember&) const = default;
};

struct RouteService {
    std::string name;
    ServiceEndpoint endpoint;          // the address clients connect to
    std::uint32_t id = 0;              // service id
    std::uint8_t class_id = kDefaultClass;
    std::vector<RouteMember> primary;  // policy order
    std::vector<RouteMember> fallback;

    bool operator==(const RouteService&) const = default;
};

struct RouteBackend {
    ServiceEndpoint endpoint;
    std::uint32_t id = 0;              // backend id, >= 1
    std::uint32_t threshold = kDefaultBreakerThreshold;  // consecutive hard failures that trip the breaker
    std::uint32_t flags = 0;           // kCountHttp5xx | kCountMllpNack
    std::string service;               // the first service that names it, for messages

    bool operator==(const RouteBackend&) const = default;
};

struct RouteTables {
    std::vector<RouteService> services;   // policy order
    std::vector<RouteBackend> backends;   // unique endpoints, in order of first appearance

    bool operator==(const RouteTables&) const = default;
};

// An earlier assignment of ids to endpoints (from the last applied tables,
// or read back from the kernel by a restarted agent).
struct RouteIds {
    std::vector<std::pair<ServiceEndpoint, std::uint32_t>> services;
    std::vector<std::pair<ServiceEndpoint, std::uint32_t>> backends;
};

class RouteTablesError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The breaker threshold of a service: its Thresholds.consecutive_failures,
// else 1 for life-critical and emergency and 3 for every other class.
std::uint32_t breakerThreshold(std::uint8_t class_id, std::uint32_t consecutive_failures);

// "ADDRESS:PORT" as the policy writes it, in the kernel's form (TCP).
// Throws RouteTablesError for text that is not a socket address.
ServiceEndpoint routeEndpoint(const std::string& text);

// The ids of tables, as the next compile takes them.
RouteIds routeIdsOf(const RouteTables& tables);

// Compiles a validated policy into route tables, keeping the ids of
// `previous`. A backend named by several services takes the lowest
// threshold and every application check among them. Throws
// RouteTablesError naming the field for what only this translation finds:
// more services or backends than the kernel tables hold.
RouteTables compileRouteTables(const shhim::v1::Policy& policy, const RouteIds& previous = {});

}  // namespace shhim::core
