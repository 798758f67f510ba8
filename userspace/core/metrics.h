// Prometheus exposition (text format 0.0.4) of what the kernel counted:
// per-backend counters and latency histograms, global datapath counters,
// map fill, agent-side event counts, and the router's backend states,
// pools and routing changes. Pure: the agent reads the maps and the router
// and fills MetricsInput; renderMetrics() only formats.
//
// Cardinality is bounded by construction: series are per backend (the
// kernel's backend table is capped), per interface, per counter id or per
// fixed label value. Per-flow series are never exported.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

// The `le` boundaries every latency histogram is exported with, in
// seconds: 50 us (a handshake on one host) to 10 s (a stuck backend).
struct LatencyBound {
    double seconds;
    std::string_view label;  // the `le` label text, as written here
};
inline constexpr std::array<LatencyBound, 17> kLatencyBounds = {{
    {0.00005, "0.00005"}, {0.0001, "0.0001"}, {0.00025, "0.00025"}, {0.0005, "0.0005"},
    {0.001, "0.001"},     {0.0025, "0.0025"}, {0.005, "0.005"},     {0.01, "0.01"},
    {0.025, "0.025"},     {0.05, "0.05"},     {0.1, "0.1"},         {0.25, "0.25"},
    {0.5, "0.5"},         {1, "1"},           {2.5, "2.5"},         {5, "5"},
    {10, "10"},
}};

// A kernel histogram summed into the kLatencyBounds buckets.
struct CollapsedHistogram {
    // cumulative[i]: samples known to be <= kLatencyBounds[i]. A kernel
    // bucket counts under a bound only when every value it can hold is at
    // or below that bound, so a sample is never reported faster than it
    // was; one within a kernel bucket's width (<= 1/16 of its power of
    // two) under a bound lands in the next bound up.
    std::array<std::uint64_t, kLatencyBounds.size()> cumulative{};
    std::uint64_t count = 0;  // the +Inf bucket: sum of every kernel bucket
    double sum_seconds = 0;
};

CollapsedHistogram collapseHistogram(const shhim_hist& hist);

// Which policy service a backend belongs to; empty when none does.
struct BackendLabels {
    std::string service;
    std::string priority_class;
};

struct BackendMetrics {
    shhim_endpoint endpoint{};
    shhim_backend backend{};
    BackendLabels labels;
};

struct InterfaceMetrics {
    std::string name;
    std::uint64_t rx_packets = 0;
    std::uint64_t tx_packets = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
};

struct AttachmentMetrics {
    std::string hook;    // "xdp", "tc-egress", "sockops", "tp_btf"
    std::string target;  // interface, cgroup path or tracepoint
};

struct MapMetrics {
    std::string name;
    std::uint64_t entries = 0;
    std::uint64_t max_entries = 0;
};

// Routing changes this agent made (audit records it wrote), counted by
// service, action ("eject", "restore", "drain", "fallback", ...) and actor
// ("engine", "kernel", "uid:N"): all bounded by the policy and the code.
struct RoutingChangeKey {
    std::string service;
    std::string action;
    std::string actor;
    auto operator<=>(const RoutingChangeKey&) const = default;
};
using RoutingChangeCounts = std::map<RoutingChangeKey, std::uint64_t>;

struct MetricsInput {
    std::string version;
    std::string build_id;
    double start_time_unix_seconds = 0;
    std::optional<std::size_t> policy_services;  // nullopt: no policy loaded
    std::array<std::uint64_t, SHHIM_CTR_MAX> counters{};
    // Failure events the agent received from the ring buffer, by
    // enum shhim_event_kind (index 0 unused).
    std::array<std::uint64_t, SHHIM_EV_KIND_MAX> events_by_kind{};
    std::vector<MapMetrics> maps;
    std::vector<AttachmentMetrics> attachments;
    std::vector<InterfaceMetrics> interfaces;
    std::vector<BackendMetrics> backends;
    // The router's services, pools and backend states (each backend exports
    // a 0/1 gauge per core::kShownBackendStates); nullopt: no router, and
    // no routing families at all.
    std::optional<shhim::v1::ServiceList> routing;
    RoutingChangeCounts routing_changes;
};

// The whole exposition, families in a fixed order, every family with HELP
// and TYPE, series sorted by backend within a family.
std::string renderMetrics(const MetricsInput& input);

// "198.18.0.10:8080", "[2001:2::10]:8080": the `backend` label value.
std::string backendLabel(const shhim_endpoint& endpoint);

// Label value escaping of the text format: \ -> \\, " -> \", newline -> \n.
std::string escapeLabelValue(std::string_view value);

}  // namespace shhim::core
