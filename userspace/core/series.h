// 15 minutes of per-backend history at 1 s resolution, kept in memory for
// the dashboard and `shhimctl backends --history`. The agent records the
// kernel's backend table once a second; each point holds the request and
// error rates of that second and the p50/p99 of the responses measured in
// it (from the difference of two kernel histograms, not the lifetime one).
//
// Pure and single-threaded: the agent guards it with a mutex. Bounded:
// kKeptSeconds points per backend, and a backend that has been absent from
// the kernel's table for the whole window is forgotten.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "core/backend_filter.h"
#include "core/metrics.h"
#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

struct BackendSnapshot {
    shhim_endpoint endpoint{};
    shhim_backend backend{};
    BackendLabels labels;
};

class SeriesStore {
public:
    static constexpr std::uint32_t kKeptSeconds = 900;
    static constexpr std::uint32_t kStepSeconds = 1;

    // The backend table as it was at Unix second `second`. A second at or
    // before the newest recorded one is ignored (the agent ticks faster
    // than once a second). Seconds skipped since a backend's previous
    // record get the average rates of the gap; their latency stays empty,
    // the whole gap's responses go into `second`. Seconds after a
    // backend's last record read zero.
    //
    // The very first record only sets the baseline: counts from before the
    // agent's start (pinned maps) are not shown as one huge first second.
    // A backend that appears later is new, so everything it counted is.
    void record(std::int64_t second, const std::vector<BackendSnapshot>& table);

    std::optional<std::int64_t> newestSecond() const { return newest_; }
    std::size_t backends() const { return tracks_.size(); }

    // Series of the matching backends for the seconds after
    // `after_second` (0: the whole kept window), sorted by backend.
    shhim::v1::History history(std::int64_t after_second, const BackendFilter& filter = {}) const;

private:
    struct Point {
        std::int64_t second = -1;  // which second this slot holds; -1: none
        float requests_per_second = 0;
        float errors_per_second = 0;
        float p50_seconds = 0;
        float p99_seconds = 0;
        std::uint32_t responses = 0;
    };
    struct Track {
        shhim_endpoint endpoint{};
        BackendLabels labels;
        shhim_backend previous{};
        std::int64_t first_second = 0;    // first second with a point
        std::int64_t last_present = 0;    // newest second the table held it
        std::vector<Point> ring;          // kKeptSeconds slots, by second % kKeptSeconds
    };
    using Key = std::array<std::uint8_t, sizeof(shhim_endpoint)>;

    static Key keyOf(const shhim_endpoint& endpoint);
    void put(Track& track, const Point& point);

    std::optional<std::int64_t> newest_;
    std::map<Key, Track> tracks_;
};

}  // namespace shhim::core
