// Synthetic per-tick features of a healthy backend for the anomaly tests:
// deterministic (seeded), with the jitter a real backend shows tick to tick.
#pragma once

#include <cmath>
#include <random>

#include "core/anomaly_features.h"

namespace shhim::test {

struct NormalTraffic {
    double rate = 100;          // requests per second
    double p50_ms = 20;
    double p99_ms = 35;
    double rtt_ms = 1;
    double latency_factor = 1;  // faults multiply both latencies
    double server_errors = 0;   // fault: 5xx fraction on top of the normal 0.1%
    std::mt19937_64 rng{42};

    double normal(double sd) { return std::normal_distribution<double>(0.0, sd)(rng); }
    double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }

    core::FeatureVector next(double rate_factor = 1)
    {
        using core::Feature;
        using core::index;
        core::FeatureVector x;
        x[index(Feature::RequestRate)] = rate * rate_factor * (1 + normal(0.1));
        x[index(Feature::Refused)] = 0;
        x[index(Feature::Timeout)] = 0;
        x[index(Feature::Reset)] = uniform(0, 0.002);
        x[index(Feature::ServerError)] = uniform(0, 0.002) + server_errors;
        x[index(Feature::Nack)] = 0;
        x[index(Feature::LogP50)] = std::log(p50_ms * latency_factor) + normal(0.08);
        x[index(Feature::LogP99)] = std::log(p99_ms * latency_factor) + normal(0.12);
        x[index(Feature::LogRtt)] = std::log(rtt_ms) + normal(0.1);
        x[index(Feature::RetransmitRate)] = uniform(0, 0.004);
        x[index(Feature::SynFailure)] = uniform(0, 0.004);
        x[index(Feature::Unanswered)] = uniform(0, 0.08);
        return x;
    }
};

}  // namespace shhim::test
