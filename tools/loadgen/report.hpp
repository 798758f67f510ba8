// report.hpp - the JSON report and the one-line summary of a run.
#pragma once

#include "options.hpp"
#include "runner.hpp"

#include <optional>
#include <string>
#include <vector>

namespace shhim::loadgen {

// Order statistics of a sample set, in seconds (nearest-rank percentiles).
struct LatencyStats {
    std::size_t samples = 0;
    double p50 = 0, p90 = 0, p99 = 0, mean = 0, min = 0, max = 0;
};
LatencyStats latency_stats(std::vector<std::int64_t> samples_ns);

// Counts derived from the records.
struct Tally {
    std::uint64_t planned = 0;
    std::uint64_t sent = 0;      // attempted
    std::uint64_t written = 0;   // request bytes fully written
    std::uint64_t completed = 0; // complete responses (connect-only: connected)
    std::uint64_t errors = 0;    // attempts that did not complete
};
Tally tally(const RunResult& run);

std::string report_json(const Options& options, const RunResult& run);
std::string summary_line(const Options& options, const RunResult& run);

// The name of an outcome in the report ("200", "AA", "connect_refused", "refused", ...).
std::string outcome_name(const RequestRecord& record, bool connect_only);

} // namespace shhim::loadgen
