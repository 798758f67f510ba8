#include "core/series.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <tuple>

#include "core/address.h"
#include "core/histogram.h"
#include "core/telemetry.h"

namespace shhim::core {
namespace {

constexpr double kNsPerSecond = 1e9;

// The responses measured between two snapshots, as a histogram of their
// own. An entry that started again (recreated: first_seen changed, or its
// count went down) contributes everything it holds now.
void responsesBetween(const shhim_backend& previous, const shhim_backend& current, shhim_hist& out)
{
    const bool restarted = previous.first_seen_ns != current.first_seen_ns ||
                           current.response.count < previous.response.count;
    out.count = 0;
    out.sum_ns = 0;
    for (std::uint32_t b = 0; b < SHHIM_HIST_BUCKETS; ++b) {
        const std::uint64_t before = restarted ? 0 : previous.response.buckets[b];
        const std::uint64_t now = current.response.buckets[b];
        out.buckets[b] = now >= before ? now - before : now;
        out.count += out.buckets[b];
    }
}

// Points are stored as float to halve the memory of 15 minutes per
// backend; widening rounds to what a float holds exactly enough (1 us,
// 0.001/s) so the JSON reads 0.04, not 0.039999999105930328.
double widenSeconds(float value) { return std::round(static_cast<double>(value) * 1e6) / 1e6; }
double widenRate(float value) { return std::round(static_cast<double>(value) * 1e3) / 1e3; }

}  // namespace

SeriesStore::Key SeriesStore::keyOf(const shhim_endpoint& endpoint)
{
    Key key;
    std::memcpy(key.data(), &endpoint, sizeof(endpoint));
    return key;
}

void SeriesStore::put(Track& track, const Point& point)
{
    track.ring[static_cast<std::size_t>(point.second % kKeptSeconds)] = point;
}

void SeriesStore::record(std::int64_t second, const std::vector<BackendSnapshot>& table)
{
    if (newest_ && second <= *newest_)
        return;
    const bool baseline_only = !newest_;
    newest_ = second;

    // 4.7 KiB: on the heap rather than the stack of the caller's loop.
    auto window = std::make_unique<shhim_hist>();
    for (const auto& row : table) {
        auto [it, inserted] = tracks_.try_emplace(keyOf(row.endpoint));
        Track& track = it->second;
        if (inserted) {
            track.endpoint = row.endpoint;
            track.ring.assign(kKeptSeconds, Point{});
            track.first_second = second;
            // Everything a backend that appeared after the first record
            // counted is new: its baseline is zero.
            track.previous = baseline_only ? row.backend : shhim_backend{};
        }
        // Seconds since this backend's previous record (normally 1; more
        // when the agent skipped seconds or the entry was briefly absent).
        const std::int64_t gap =
            inserted ? 1 : std::min<std::int64_t>(second - track.last_present, kKeptSeconds);
        track.labels = row.labels;
        track.last_present = second;
        if (baseline_only) {
            track.first_second = second + 1;
            continue;
        }

        const BackendRates r = rates(track.previous, row.backend, static_cast<double>(gap));
        responsesBetween(track.previous, row.backend, *window);
        track.previous = row.backend;

        // The gap's seconds before this one: rates only.
        for (std::int64_t s = second - gap + 1; s < second; ++s) {
            if (s < track.first_second)
                continue;
            Point filler;
            filler.second = s;
            filler.requests_per_second = static_cast<float>(r.requests_per_second);
            filler.errors_per_second = static_cast<float>(r.errors_per_second);
            put(track, filler);
        }
        Point point;
        point.second = second;
        point.requests_per_second = static_cast<float>(r.requests_per_second);
        point.errors_per_second = static_cast<float>(r.errors_per_second);
        point.responses = static_cast<std::uint32_t>(std::min<std::uint64_t>(window->count, UINT32_MAX));
        if (window->count > 0) {
            point.p50_seconds = static_cast<float>(percentileNs(*window, 0.50) / kNsPerSecond);
            point.p99_seconds = static_cast<float>(percentileNs(*window, 0.99) / kNsPerSecond);
        }
        put(track, point);
    }

    // Forget backends the table has not held for the whole window.
    std::erase_if(tracks_, [second](const auto& entry) {
        return entry.second.last_present <= second - static_cast<std::int64_t>(kKeptSeconds);
    });
}

shhim::v1::History SeriesStore::history(std::int64_t after_second, const BackendFilter& filter) const
{
    shhim::v1::History out;
    out.set_step_seconds(kStepSeconds);
    out.set_kept_seconds(kKeptSeconds);
    if (!newest_)
        return out;
    const std::int64_t window_start = *newest_ - kKeptSeconds + 1;

    std::vector<const Track*> tracks;
    for (const auto& [key, track] : tracks_)
        if (filter.matches(track.endpoint))
            tracks.push_back(&track);
    std::sort(tracks.begin(), tracks.end(), [](const Track* x, const Track* y) {
        return std::make_tuple(backendLabel(x->endpoint), x->endpoint.proto) <
               std::make_tuple(backendLabel(y->endpoint), y->endpoint.proto);
    });

    for (const Track* track : tracks) {
        const std::int64_t start = std::max({window_start, track->first_second, after_second + 1});
        if (start > *newest_)
            continue;
        auto* series = out.add_backends();
        *series->mutable_endpoint() = toEndpoint(track->endpoint);
        series->set_protocol(protocolName(track->endpoint.proto));
        series->set_service(track->labels.service);
        series->set_priority_class(track->labels.priority_class);
        series->set_start_unix_seconds(start);
        for (std::int64_t s = start; s <= *newest_; ++s) {
            const Point& p = track->ring[static_cast<std::size_t>(s % kKeptSeconds)];
            const bool held = p.second == s;  // else: absent from the table that second
            series->add_requests_per_second(held ? widenRate(p.requests_per_second) : 0.0);
            series->add_errors_per_second(held ? widenRate(p.errors_per_second) : 0.0);
            series->add_responses(held ? p.responses : 0);
            series->add_p50_seconds(held ? widenSeconds(p.p50_seconds) : 0.0);
            series->add_p99_seconds(held ? widenSeconds(p.p99_seconds) : 0.0);
        }
    }
    return out;
}

}  // namespace shhim::core
