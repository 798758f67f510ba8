#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

#include "core/histogram.h"
#include "test_support.h"

using shhim::core::bucketMidpointNs;
using shhim::core::percentileNs;
using shhim::core::summarizeLatency;
using shhim::test::addSamples;

namespace {
constexpr std::uint64_t kMs = 1'000'000;
}

TEST_CASE("every histogram bucket round-trips through its lower bound")
{
    for (std::uint32_t b = 0; b < SHHIM_HIST_BUCKETS; ++b) {
        CAPTURE(b);
        const std::uint64_t low = shhim_hist_bucket_low(b);
        const std::uint64_t next = shhim_hist_bucket_low(b + 1);
        REQUIRE(next > low);
        CHECK(shhim_hist_bucket(low) == b);
        // The last value before the next bucket still belongs here (for the
        // last bucket, next is 2^40 and larger values clamp into it).
        CHECK(shhim_hist_bucket(next - 1) == b);
    }
}

TEST_CASE("histogram bucket edges: small values exact, huge values clamp into the last bucket")
{
    for (std::uint64_t ns = 0; ns < SHHIM_HIST_SUB; ++ns)
        CHECK(shhim_hist_bucket(ns) == ns);
    CHECK(shhim_hist_bucket_low(SHHIM_HIST_BUCKETS) == (1ULL << SHHIM_HIST_MAX_LOG2));
    CHECK(shhim_hist_bucket(1ULL << SHHIM_HIST_MAX_LOG2) == SHHIM_HIST_BUCKETS - 1);
    CHECK(shhim_hist_bucket(std::numeric_limits<std::uint64_t>::max()) == SHHIM_HIST_BUCKETS - 1);
}

TEST_CASE("a bucket midpoint is within 3.2% of any value in the bucket")
{
    for (std::uint32_t b = SHHIM_HIST_SUB; b < SHHIM_HIST_BUCKETS; ++b) {
        CAPTURE(b);
        const double low = static_cast<double>(shhim_hist_bucket_low(b));
        const double high = static_cast<double>(shhim_hist_bucket_low(b + 1) - 1);
        const double mid = bucketMidpointNs(b);
        CHECK(mid >= low);
        CHECK(mid <= high + 1);
        CHECK((mid - low) / low <= 0.032);
        CHECK((high - mid) / high <= 0.032);
    }
}

TEST_CASE("100 samples at 40 ms: p50/p90/p99 within 3.2% of 40 ms, exact mean")
{
    shhim_hist hist{};
    addSamples(hist, 40 * kMs, 100);
    const auto latency = summarizeLatency(hist);
    CHECK(latency.count() == 100);
    CHECK(latency.mean_seconds() == doctest::Approx(0.040).epsilon(1e-12));
    CHECK(latency.p50_seconds() == doctest::Approx(0.040).epsilon(0.032));
    CHECK(latency.p90_seconds() == doctest::Approx(0.040).epsilon(0.032));
    CHECK(latency.p99_seconds() == doctest::Approx(0.040).epsilon(0.032));
    // And precisely the midpoint of 40 ms's bucket: [39.85 ms, 41.94 ms).
    CHECK(latency.p50_seconds() * 1e9 == doctest::Approx(bucketMidpointNs(shhim_hist_bucket(40 * kMs))));
    CHECK(latency.p50_seconds() == doctest::Approx(0.0408945).epsilon(1e-5));
}

TEST_CASE("90/10 mix: p50 and p90 in the fast bucket, p99 in the slow one")
{
    shhim_hist hist{};
    addSamples(hist, 10 * kMs, 90);
    addSamples(hist, 200 * kMs, 10);
    const double fast = bucketMidpointNs(shhim_hist_bucket(10 * kMs));
    const double slow = bucketMidpointNs(shhim_hist_bucket(200 * kMs));
    CHECK(percentileNs(hist, 0.50) == fast);
    CHECK(percentileNs(hist, 0.90) == fast);   // rank 90 is the last fast sample
    CHECK(percentileNs(hist, 0.91) == slow);   // rank 91 is the first slow one
    CHECK(percentileNs(hist, 0.99) == slow);
    const auto latency = summarizeLatency(hist);
    CHECK(latency.mean_seconds() == doctest::Approx((90 * 0.010 + 10 * 0.200) / 100).epsilon(1e-12));
    CHECK(latency.p99_seconds() == doctest::Approx(0.200).epsilon(0.032));
}

TEST_CASE("percentiles use the samples in the buckets, in order, whatever their insertion order")
{
    shhim_hist hist{};
    // 1 sample each at 1..100 ms: p50 is the 50th, p99 the 99th.
    for (std::uint64_t ms = 100; ms >= 1; --ms)
        addSamples(hist, ms * kMs, 1);
    CHECK(percentileNs(hist, 0.50) == bucketMidpointNs(shhim_hist_bucket(50 * kMs)));
    CHECK(percentileNs(hist, 0.99) == bucketMidpointNs(shhim_hist_bucket(99 * kMs)));
    CHECK(percentileNs(hist, 1.00) == bucketMidpointNs(shhim_hist_bucket(100 * kMs)));
    CHECK(percentileNs(hist, 0.001) == bucketMidpointNs(shhim_hist_bucket(1 * kMs)));
}

TEST_CASE("empty histogram summarizes to zeros")
{
    shhim_hist hist{};
    const auto latency = summarizeLatency(hist);
    CHECK(latency.count() == 0);
    CHECK(latency.mean_seconds() == 0.0);
    CHECK(latency.p50_seconds() == 0.0);
    CHECK(latency.p90_seconds() == 0.0);
    CHECK(latency.p99_seconds() == 0.0);
}

TEST_CASE("count without bucket samples (torn read) gives a mean but no invented percentiles")
{
    shhim_hist hist{};
    hist.count = 2;
    hist.sum_ns = 4 * kMs;
    const auto latency = summarizeLatency(hist);
    CHECK(latency.mean_seconds() == doctest::Approx(0.002));
    CHECK(latency.p50_seconds() == 0.0);
    CHECK(latency.p99_seconds() == 0.0);
}

TEST_CASE("values beyond 2^40 ns land in the last bucket and still give a finite percentile")
{
    shhim_hist hist{};
    addSamples(hist, 1ULL << 50, 1);
    CHECK(hist.buckets[SHHIM_HIST_BUCKETS - 1] == 1);
    const double p = percentileNs(hist, 0.5);
    CHECK(p == bucketMidpointNs(SHHIM_HIST_BUCKETS - 1));
    CHECK(p < static_cast<double>(1ULL << SHHIM_HIST_MAX_LOG2));
}
