// The 15-minute, 1-second history of each backend (core/series.h).
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "core/series.h"
#include "test_support.h"

using namespace shhim::core;
using shhim::test::addSamples;
using shhim::test::endpointV4;

namespace {

constexpr std::uint64_t kMs = 1'000'000;
constexpr std::int64_t kT0 = 1'700'000'000;

// A table snapshot of one backend with the given totals. Heap-allocated by
// the caller's vector: shhim_backend is ~9 KiB.
BackendSnapshot snapshot(std::uint64_t requests, std::uint64_t refused = 0, std::uint64_t first_seen = 1)
{
    BackendSnapshot s;
    s.endpoint = endpointV4({198, 18, 0, 10}, 8080);
    s.backend.first_seen_ns = first_seen;
    s.backend.requests = requests;
    s.backend.refused = refused;
    s.labels = {"fhir", "clinical"};
    return s;
}

// By value: the History it comes from is usually a temporary.
shhim::v1::BackendSeries only(const shhim::v1::History& h)
{
    REQUIRE(h.backends_size() == 1);
    return h.backends(0);
}

}  // namespace

TEST_CASE("series: the first record is a baseline; later seconds are rates over one second")
{
    SeriesStore store;
    store.record(kT0, {snapshot(1000, 5)});  // counts from before the agent started
    CHECK(store.history(0).backends_size() == 0);

    store.record(kT0 + 1, {snapshot(1010, 7)});
    store.record(kT0 + 2, {snapshot(1030, 7)});
    const auto s = only(store.history(0));
    CHECK(s.start_unix_seconds() == kT0 + 1);
    REQUIRE(s.requests_per_second_size() == 2);
    CHECK(s.requests_per_second(0) == doctest::Approx(10));
    CHECK(s.requests_per_second(1) == doctest::Approx(20));
    CHECK(s.errors_per_second(0) == doctest::Approx(2));
    CHECK(s.errors_per_second(1) == doctest::Approx(0));
    CHECK(s.service() == "fhir");
    CHECK(s.priority_class() == "clinical");
    CHECK(s.endpoint().address() == "198.18.0.10");
    CHECK(s.endpoint().port() == 8080);
}

TEST_CASE("series: a second already recorded is ignored; a gap gets the gap's average rate")
{
    SeriesStore store;
    store.record(kT0, {snapshot(0)});
    store.record(kT0, {snapshot(50)});     // same second: ignored
    store.record(kT0 + 3, {snapshot(30)});  // 30 requests over 3 s
    const auto s = only(store.history(0));
    REQUIRE(s.requests_per_second_size() == 3);
    for (double rate : s.requests_per_second())
        CHECK(rate == doctest::Approx(10));
}

TEST_CASE("series: p50/p99 are of the responses measured in that second, not of the lifetime histogram")
{
    SeriesStore store;
    auto before = std::make_unique<BackendSnapshot>(snapshot(1000));
    addSamples(before->backend.response, 1 * kMs, 1000);
    before->backend.responses = 1000;
    store.record(kT0, {*before});

    auto after = std::make_unique<BackendSnapshot>(*before);
    addSamples(after->backend.response, 40 * kMs, 9);
    addSamples(after->backend.response, 400 * kMs, 1);
    after->backend.responses = 1010;
    store.record(kT0 + 1, {*after});
    store.record(kT0 + 2, {*after});  // nothing new: no latency sample

    const auto s = only(store.history(0));
    REQUIRE(s.p50_seconds_size() == 2);
    CHECK(s.responses(0) == 10);
    CHECK(s.p50_seconds(0) == doctest::Approx(0.040).epsilon(0.04));
    CHECK(s.p99_seconds(0) == doctest::Approx(0.400).epsilon(0.04));
    CHECK(s.responses(1) == 0);
    CHECK(s.p50_seconds(1) == 0);
}

TEST_CASE("series: a backend that appears after the first record counts everything as new; a recreated one too")
{
    SeriesStore store;
    store.record(kT0, {});
    store.record(kT0 + 1, {snapshot(5)});
    CHECK(only(store.history(0)).requests_per_second(0) == doctest::Approx(5));

    // Entry recreated (first_seen changed, counters started again).
    store.record(kT0 + 2, {snapshot(2, 0, 99)});
    CHECK(only(store.history(0)).requests_per_second(1) == doctest::Approx(2));
}

TEST_CASE("series: 15 minutes kept; after_second returns only newer seconds; gaps and absence")
{
    SeriesStore store;
    for (std::int64_t i = 0; i <= 1000; ++i)
        store.record(kT0 + i, {snapshot(static_cast<std::uint64_t>(i) * 3)});
    const auto s = only(store.history(0));
    CHECK(s.requests_per_second_size() == SeriesStore::kKeptSeconds);
    CHECK(s.start_unix_seconds() == kT0 + 1000 - SeriesStore::kKeptSeconds + 1);
    CHECK(s.requests_per_second(0) == doctest::Approx(3));

    const auto recent = store.history(kT0 + 997);
    CHECK(only(recent).start_unix_seconds() == kT0 + 998);
    CHECK(only(recent).requests_per_second_size() == 3);
    CHECK(store.history(kT0 + 1000).backends_size() == 0);

    // Absent from the table for a second, then back: that second gets the
    // average of the gap.
    store.record(kT0 + 1001, {});
    store.record(kT0 + 1002, {snapshot(3012)});
    const auto tail = store.history(kT0 + 1000);
    REQUIRE(only(tail).requests_per_second_size() == 2);
    CHECK(only(tail).requests_per_second(0) == doctest::Approx(6));
    CHECK(only(tail).requests_per_second(1) == doctest::Approx(6));

    // Gone for good: the seconds after its last record read zero.
    store.record(kT0 + 1003, {});
    store.record(kT0 + 1004, {});
    const auto gone = store.history(kT0 + 1002);
    REQUIRE(only(gone).requests_per_second_size() == 2);
    CHECK(only(gone).requests_per_second(0) == 0);
    CHECK(only(gone).requests_per_second(1) == 0);
}

TEST_CASE("series: a backend gone from the table for the whole window is forgotten")
{
    SeriesStore store;
    store.record(kT0, {snapshot(0)});
    store.record(kT0 + 1, {snapshot(1)});
    CHECK(store.backends() == 1);
    store.record(kT0 + SeriesStore::kKeptSeconds, {});
    CHECK(store.backends() == 1);  // its last point is still in the window
    store.record(kT0 + 1 + SeriesStore::kKeptSeconds, {});
    CHECK(store.backends() == 0);
}

TEST_CASE("series: the backend filter picks one backend")
{
    SeriesStore store;
    auto other = snapshot(0);
    other.endpoint = endpointV4({198, 18, 0, 11}, 8080);
    store.record(kT0, {snapshot(0), other});
    store.record(kT0 + 1, {snapshot(1), other});
    CHECK(store.history(0).backends_size() == 2);
    const auto picked = store.history(0, BackendFilter::parse("198.18.0.11:8080"));
    CHECK(only(picked).endpoint().address() == "198.18.0.11");
    CHECK(store.history(0, BackendFilter::parse("198.18.0.11:9999")).backends_size() == 0);
}
