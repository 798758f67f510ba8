#include "core/histogram.h"

#include <algorithm>
#include <cmath>

namespace shhim::core {

double bucketMidpointNs(std::uint32_t bucket)
{
    const auto low = static_cast<double>(shhim_hist_bucket_low(bucket));
    const auto high = static_cast<double>(shhim_hist_bucket_low(bucket + 1));
    return (low + high) / 2.0;
}

double percentileNs(const shhim_hist& hist, double quantile)
{
    std::uint64_t total = 0;
    for (auto n : hist.buckets)
        total += n;
    if (total == 0 || !(quantile > 0.0))
        return 0.0;
    quantile = std::min(quantile, 1.0);

    // Rank of the wanted sample, 1-based; at least 1 so that tiny
    // quantiles still pick the first occupied bucket. The small slack keeps
    // q * n that should be whole (0.9 * 100) from rounding up a rank.
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(quantile * static_cast<double>(total) - 1e-9)));
    std::uint64_t seen = 0;
    for (std::uint32_t b = 0; b < SHHIM_HIST_BUCKETS; ++b) {
        seen += hist.buckets[b];
        if (seen >= rank)
            return bucketMidpointNs(b);
    }
    return bucketMidpointNs(SHHIM_HIST_BUCKETS - 1);  // unreachable: seen == total
}

shhim::v1::Latency summarizeLatency(const shhim_hist& hist)
{
    constexpr double ns_per_second = 1e9;
    shhim::v1::Latency out;
    out.set_count(hist.count);
    if (hist.count > 0)
        out.set_mean_seconds(static_cast<double>(hist.sum_ns) /
                     static_cast<double>(hist.count) / ns_per_second);
    out.set_p50_seconds(percentileNs(hist, 0.50) / ns_per_second);
    out.set_p90_seconds(percentileNs(hist, 0.90) / ns_per_second);
    out.set_p99_seconds(percentileNs(hist, 0.99) / ns_per_second);
    return out;
}

}  // namespace shhim::core
