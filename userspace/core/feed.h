// The agent's event feed, pure parts: building feed entries from kernel
// failure events and policy changes, and the filter of `shhimctl observe`
// (type, service, class, backend, since). The agent keeps the entries and
// streams them (agent/event_feed.h).
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "core/backend_filter.h"
#include "core/metrics.h"
#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

// Every feed entry type. "reroute" is produced by the decision engine once
// it exists; the filter accepts it already.
inline constexpr std::array<std::string_view, 4> kFeedTypes = {"failure", "reroute", "policy", "stress"};

// A kernel failure event as a feed entry (seq left 0: the feed numbers it).
shhim::v1::FeedEvent failureEntry(const shhim_event& event, std::int64_t mono_to_unix_ns,
                                  const BackendLabels& labels);

// A policy load/reload/rejection as a feed entry.
shhim::v1::FeedEvent policyEntry(const shhim::v1::PolicyNotice& notice, std::int64_t time_unix_ns);

// A change of the kernel's stress level, as ClassControl sees it.
struct StressChange {
    std::string mode;                  // "on", "off", "auto" after the change
    std::uint32_t level_before = 0;
    std::uint32_t level = 0;
    std::string cause;                 // "manual", "auto", "policy"
    std::string actor;                 // manual: who asked ("uid 0")
    double sent_utilisation = 0;       // auto: what left the busiest link, share of its capacity
    double offered_utilisation = 0;    // auto: what was offered to it (shed bytes included)
    double enter = 0;                  // the policy's enter_utilization
    double exit = 0;                   // the policy's exit_utilization
};

// The notice for the feed and the log: entered (0 -> n), left (n -> 0) or
// level (n -> m), with the reason in words ("auto: egress at 93% of
// capacity >= enter_utilization 60%", "manual: shhimctl stress on by uid 0").
shhim::v1::StressNotice stressNotice(const StressChange& change);
shhim::v1::FeedEvent stressEntry(const shhim::v1::StressNotice& notice, std::int64_t time_unix_ns);
// "stress mode entered (level 0 -> 255): manual: ..."
std::string stressSummary(const shhim::v1::StressNotice& notice);

class FeedFilter {
public:
    // Throws std::invalid_argument naming an unknown type or a malformed
    // backend.
    static FeedFilter fromRequest(const shhim::v1::ObserveRequest& request);

    bool matches(const shhim::v1::FeedEvent& entry) const;
    std::int64_t sinceUnixNs() const { return since_unix_ns_; }

private:
    std::set<std::string, std::less<>> types_;  // empty: every type
    std::string service_;
    std::string priority_class_;
    BackendFilter backend_;
    std::int64_t since_unix_ns_ = 0;
};

}  // namespace shhim::core
