// The anomaly engine's input (issue 5 item 1): one backend's tick as a
// fixed-order feature vector, and a batch of them as an Eigen matrix with
// one row per backend. Pure: counts in, numbers out.
//
// A feature that the tick cannot measure (no responses, so no latency; no
// connection attempts, so no refusal fraction) is NaN: the scorer treats it
// as "at its baseline", so silence neither scores nor teaches.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include <Eigen/Core>

#include "core/decision_types.h"
#include "policy.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

// Fixed order: model files name their features in this order and are
// rejected when the names differ (iforest.h). Append only.
enum class Feature : int {
    RequestRate,     // requests (connection attempts for tcp) per second; never scored by itself
    Refused,         // refused + ICMP unreachable, fraction of connection attempts
    Timeout,         // SYN timeouts, fraction of connection attempts
    Reset,           // server resets, fraction of requests
    ServerError,     // HTTP 5xx, fraction of requests
    Nack,            // MLLP AE/AR/CE/CR, fraction of requests
    LogP50,          // ln(p50 response latency in ms)
    LogP99,          // ln(p99 response latency in ms)
    LogRtt,          // ln(mean smoothed RTT in ms)
    RetransmitRate,  // retransmitted segments per request
    SynFailure,      // connection attempts not established, fraction
    Unanswered,      // requests without a response this tick, fraction (a hang)
};
constexpr int kFeatureCount = 12;
// Every feature but the request rate: "rate is not failure".
constexpr int kScoredFeatureCount = kFeatureCount - 1;
constexpr int kFirstScoredFeature = 1;

constexpr int index(Feature feature) { return static_cast<int>(feature); }

// "request_rate", "refused", ... in Feature order (model files, explain).
const std::array<std::string_view, kFeatureCount>& featureNames();
// Words for people: "p99 latency", "5xx", ...
std::string_view featureLabel(Feature feature);

using FeatureVector = Eigen::Matrix<double, kFeatureCount, 1>;
// A batch: one row per backend.
using FeatureMatrix = Eigen::Matrix<double, Eigen::Dynamic, kFeatureCount, Eigen::RowMajor>;

// One backend's counter increases over one tick.
struct TickCounts {
    double seconds = 0;              // tick length; > 0
    bool application = true;         // http/mllp: `requests` are application requests
    std::uint64_t requests = 0;
    std::uint64_t responses = 0;
    std::uint64_t conn_attempts = 0;
    std::uint64_t conn_established = 0;
    std::uint64_t refused = 0;       // RST answering a SYN, and ICMP unreachable
    std::uint64_t syn_timeouts = 0;
    std::uint64_t resets = 0;
    std::uint64_t server_errors = 0;
    std::uint64_t nacks = 0;
    std::uint64_t client_errors = 0;   // HTTP 4xx: not failures, not scored
    std::uint64_t retransmits = 0;
    std::uint64_t srtt_samples = 0;
    double srtt_us_sum = 0;
    std::optional<double> p50_ms;    // of this tick's responses; unset: none measured
    std::optional<double> p99_ms;
};

// The increases between two reads of a kernel backend entry, with the same
// recreated-entry rule as windowSample() (backend_window.h).
TickCounts tickCounts(const shhim_backend& before, const shhim_backend& now, v1::AppProtocol protocol,
                      double seconds);

// The feature vector of one tick (see Feature for each definition).
FeatureVector featureVector(const TickCounts& counts);

// The coarser vector the decision engine's WindowSample allows today:
// connect failures count as refusals, p50/RTT/retransmits/SYN failures/
// unanswered are not measured (NaN).
FeatureVector featureVector(const WindowSample& sample, double seconds);

}  // namespace shhim::core
