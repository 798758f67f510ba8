// What the agent itself keeps between kernel reads, shared by the event
// loop (writer) and the gRPC handlers (readers): the newest failure
// events, the per-backend rates of the last tick and the applied policy.
// Everything else is read from the kernel maps on each request.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "agent/metrics_state.h"
#include "agent/policy.h"
#include "core/telemetry.h"
#include "shhim_abi.h"

namespace shhim::agent {

// shhim_endpoint has no padding (static_assert in shhim_abi.h pins 20
// bytes), so its bytes are a sound map key.
using EndpointKey = std::array<std::uint8_t, sizeof(shhim_endpoint)>;

inline EndpointKey endpointKey(const shhim_endpoint& endpoint)
{
    EndpointKey key;
    std::memcpy(key.data(), &endpoint, sizeof(endpoint));
    return key;
}

class AgentState {
public:
    static constexpr std::size_t kKeptEvents = 1024;

    void addEvent(const shhim_event& event);
    // The newest `last` events (0: all kept), oldest first.
    std::vector<shhim_event> newestEvents(std::uint32_t last) const;
    std::uint64_t eventsReceived() const;

    void setRates(std::map<EndpointKey, core::BackendRates> rates);
    std::optional<core::BackendRates> ratesOf(const shhim_endpoint& endpoint) const;

    // Replaces the policy in one step; readers hold on to the one they got.
    void setPolicy(PolicyPtr policy);
    PolicyPtr appliedPolicy() const;
    // The short form (agent/policy.h PolicySummary); nullopt without a policy.
    std::optional<PolicySummary> policy() const;

    // Event feed, 15-minute history, service labels (thread-safe itself).
    Observability& observability() { return observability_; }
    const Observability& observability() const { return observability_; }

private:
    Observability observability_;
    mutable std::mutex mutex_;
    std::deque<shhim_event> events_;
    std::uint64_t events_received_ = 0;
    std::map<EndpointKey, core::BackendRates> rates_;
    PolicyPtr policy_;
};

}  // namespace shhim::agent
