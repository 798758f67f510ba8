// What shhimd keeps for observability beyond the kernel maps: the event
// feed, 15 minutes of per-backend history, and which policy service (and
// class) each backend belongs to. One object, held by AgentState, written
// by the event loop and read by the gRPC and HTTP threads.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "agent/event_feed.h"
#include "agent/policy.h"
#include "core/metrics.h"
#include "core/series.h"
#include "datapath/maps.h"
#include "shhim_abi.h"

namespace shhim::agent {

// Which service holds a backend, for the `service` and `class` labels.
class ServiceDirectory {
public:
    void replace(std::vector<ServiceBackends> services);
    core::BackendLabels labelsOf(const shhim_endpoint& endpoint) const;
    std::vector<ServiceBackends> services() const;

private:
    using Key = std::array<std::uint8_t, sizeof(shhim_endpoint)>;
    mutable std::shared_mutex mutex_;
    std::vector<ServiceBackends> services_;
    std::map<Key, core::BackendLabels> by_backend_;
};

// The SeriesStore behind a mutex.
class BackendHistory {
public:
    void record(std::int64_t second, const std::vector<core::BackendSnapshot>& table);
    shhim::v1::History history(std::int64_t after_second, const core::BackendFilter& filter = {}) const;

private:
    mutable std::mutex mutex_;
    core::SeriesStore store_;
};

struct Observability {
    EventFeed feed;
    BackendHistory history;
    ServiceDirectory services;
};

// Event-loop helpers. A kernel failure event into the feed (labelled, in
// Unix time). A policy change: action "loaded" or "reloaded" with the
// policy now in force (its services, with their addresses and backends,
// become the labels: agent/policy.h servicesOf), or "rejected" with the
// error (policy null); each goes into the feed.
void publishFailure(Observability& observability, const shhim_event& event);
void notePolicy(Observability& observability, const std::string& action, const std::string& file,
                const PolicyPtr& policy, const std::string& error = {});

// A change of stress mode (ClassControl's notice) into the feed.
void noteStress(Observability& observability, const shhim::v1::StressNotice& notice);

// Records the kernel's backend table into the history once per Unix second
// (the agent's tick is faster; extra calls within a second do nothing).
class HistoryRecorder {
public:
    void tick(const std::vector<datapath::BackendRecord>& backends, Observability& observability);

private:
    std::optional<std::int64_t> last_second_;
};

// Unix time now, and the offset that turns kernel CLOCK_MONOTONIC stamps into it.
std::int64_t unixNowNs();
std::int64_t monoToUnixNowOffsetNs();

}  // namespace shhim::agent
