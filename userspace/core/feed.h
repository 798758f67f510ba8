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

// Every feed entry type. "reroute" and "stress" are produced by the
// decision engine once it exists; the filter accepts them already.
inline constexpr std::array<std::string_view, 4> kFeedTypes = {"failure", "reroute", "policy", "stress"};

// A kernel failure event as a feed entry (seq left 0: the feed numbers it).
shhim::v1::FeedEvent failureEntry(const shhim_event& event, std::int64_t mono_to_unix_ns,
                                  const BackendLabels& labels);

// A policy load/reload/rejection as a feed entry.
shhim::v1::FeedEvent policyEntry(const shhim::v1::PolicyNotice& notice, std::int64_t time_unix_ns);

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
