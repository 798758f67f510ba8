// Latency summaries from the kernel's log2/linear histograms
// (struct shhim_hist; layout and bucket functions in shhim_abi.h).
#pragma once

#include <cstdint>

#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

// Midpoint of bucket b in ns: between shhim_hist_bucket_low(b) and
// shhim_hist_bucket_low(b + 1). b must be < SHHIM_HIST_BUCKETS.
double bucketMidpointNs(std::uint32_t bucket);

// The q-quantile (0 < q <= 1) in ns: midpoint of the bucket holding the
// sample of rank ceil(q * n), n = sum of the buckets (not hist.count,
// which the kernel updates separately). 0 for an empty histogram.
double percentileNs(const shhim_hist& hist, double quantile);

// count, mean (sum_ns / count), p50/p90/p99, all in seconds; all zero when
// the histogram is empty.
shhim::v1::Latency summarizeLatency(const shhim_hist& hist);

}  // namespace shhim::core
