// The agent's event feed: failure events from the kernel, policy changes
// and (with the decision engine) reroutes and stress changes, numbered in
// order, kept in a bounded buffer and handed to `shhimctl observe`
// streams and the dashboard. Also the per-backend failure counts of the
// recent window the dashboard shows next to each backend.
//
// Thread-safe: the event loop publishes, gRPC and HTTP threads read and
// wait. Readers that fall behind the buffer lose the oldest entries (their
// next seq jumps); the event loop never waits for a reader.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "core/metrics.h"
#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::agent {

class EventFeed {
public:
    static constexpr std::size_t kKeptEntries = 4096;
    static constexpr std::int64_t kRecentWindowSeconds = 60;
    static constexpr std::size_t kMaxRecentBackends = 4096;

    struct RecentFailures {
        std::map<std::string, std::uint32_t> by_kind;  // within the recent window
        std::int64_t last_unix_ns = 0;                  // newest failure ever seen; 0: none
    };

    // Numbers the entry (seq = previous + 1), keeps it, wakes waiting
    // readers. A "failure" entry also counts for its backend and kind.
    // Returns the seq given.
    std::uint64_t publish(shhim::v1::FeedEvent entry);

    // Kept entries with seq > after_seq, oldest first, at most `limit`
    // (0: all); with a limit, the newest ones.
    std::vector<shhim::v1::FeedEvent> after(std::uint64_t after_seq, std::size_t limit = 0) const;

    // Kept entries of one type ("reroute", ...), oldest first.
    std::vector<shhim::v1::FeedEvent> ofType(const std::string& type) const;

    // Waits until an entry with seq > after_seq exists or `timeout` passes
    // (or close() was called); true when there is something to read.
    bool waitAfter(std::uint64_t after_seq, std::chrono::milliseconds timeout) const;

    // Wakes every waiter for good: the agent is stopping.
    void close();
    bool closed() const;

    std::uint64_t lastSeq() const;

    // Failure events the feed received, by enum shhim_event_kind.
    std::array<std::uint64_t, SHHIM_EV_KIND_MAX> failuresByKind() const;

    // "reroute" entries (the router's audit records) the feed received, by
    // service, action and actor: shhim_routing_changes_total.
    core::RoutingChangeCounts routingChanges() const;

    // Per backend (the key is BackendFilter-style text: core::backendLabel +
    // "/" + protocol), failures of the recent window as of `now_unix_ns`.
    std::map<std::string, RecentFailures> recentFailures(std::int64_t now_unix_ns) const;

private:
    struct Slot {
        std::int64_t second = -1;
        std::uint32_t count = 0;
    };
    struct BackendRecent {
        std::map<std::string, std::array<Slot, kRecentWindowSeconds>> by_kind;
        std::int64_t last_unix_ns = 0;
    };

    void countFailure(const shhim::v1::FeedEvent& entry);

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::deque<shhim::v1::FeedEvent> entries_;
    std::uint64_t last_seq_ = 0;
    bool closed_ = false;
    std::array<std::uint64_t, SHHIM_EV_KIND_MAX> failures_by_kind_{};
    core::RoutingChangeCounts routing_changes_;
    std::map<std::string, BackendRecent> recent_;
};

// The key recentFailures() uses for a backend: "198.18.0.10:8080/tcp".
std::string recentFailuresKey(const shhim::v1::Endpoint& endpoint, const std::string& protocol);

}  // namespace shhim::agent
