#include "core/anomaly_features.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/histogram.h"

namespace shhim::core {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Latencies below a microsecond are measurement noise; the log needs a floor.
constexpr double kMinLatencyMs = 1e-3;
// RTTs below a millisecond differ by scheduling noise, not network health
// (a busy host moved a veth's 16 us RTT to 1.1 ms for one tick).
constexpr double kMinRttMs = 1.0;

std::uint64_t increase(std::uint64_t before, std::uint64_t now) { return now >= before ? now - before : now; }

bool recreated(const shhim_backend& before, const shhim_backend& now)
{
    return before.first_seen_ns != now.first_seen_ns || now.requests < before.requests ||
           now.conn_attempts < before.conn_attempts;
}

// part / whole in [0, 1]; NaN when there is no whole to be a part of.
double fraction(std::uint64_t part, std::uint64_t whole)
{
    if (whole == 0)
        return kNaN;
    return std::min(1.0, static_cast<double>(part) / static_cast<double>(whole));
}

double logMs(std::optional<double> ms) { return ms ? std::log(std::max(*ms, kMinLatencyMs)) : kNaN; }

}  // namespace

const std::array<std::string_view, kFeatureCount>& featureNames()
{
    static constexpr std::array<std::string_view, kFeatureCount> names{
        "request_rate", "refused",   "timeout",      "reset",           "server_error", "nack",
        "log_p50_ms",   "log_p99_ms", "log_rtt_ms", "retransmit_rate", "syn_failure",  "unanswered",
    };
    return names;
}

std::string_view featureLabel(Feature feature)
{
    switch (feature) {
    case Feature::RequestRate: return "request rate";
    case Feature::Refused: return "refused connections";
    case Feature::Timeout: return "SYN timeouts";
    case Feature::Reset: return "resets";
    case Feature::ServerError: return "5xx";
    case Feature::Nack: return "MLLP NACKs";
    case Feature::LogP50: return "p50 latency";
    case Feature::LogP99: return "p99 latency";
    case Feature::LogRtt: return "RTT";
    case Feature::RetransmitRate: return "retransmits";
    case Feature::SynFailure: return "failed handshakes";
    case Feature::Unanswered: return "unanswered requests";
    }
    return "?";
}

TickCounts tickCounts(const shhim_backend& before_in, const shhim_backend& now, v1::AppProtocol protocol,
                      double seconds)
{
    const shhim_backend zero{};
    const shhim_backend& before = recreated(before_in, now) ? zero : before_in;
    TickCounts counts;
    counts.seconds = seconds;
    counts.application = protocol == v1::APP_PROTOCOL_HTTP || protocol == v1::APP_PROTOCOL_MLLP;
    counts.requests = counts.application ? increase(before.requests, now.requests) : 0;
    counts.responses = counts.application ? increase(before.responses, now.responses) : 0;
    counts.conn_attempts = increase(before.conn_attempts, now.conn_attempts);
    counts.conn_established = increase(before.conn_established, now.conn_established);
    counts.refused = increase(before.refused, now.refused) + increase(before.icmp_errors, now.icmp_errors);
    counts.syn_timeouts = increase(before.syn_timeouts, now.syn_timeouts);
    counts.resets = increase(before.resets, now.resets);
    counts.server_errors = increase(before.http_status[SHHIM_HTTP_5XX], now.http_status[SHHIM_HTTP_5XX]);
    counts.client_errors = increase(before.http_status[SHHIM_HTTP_4XX], now.http_status[SHHIM_HTTP_4XX]);
    for (const int nack : {SHHIM_MLLP_AE, SHHIM_MLLP_AR, SHHIM_MLLP_CE, SHHIM_MLLP_CR})
        counts.nacks += increase(before.mllp_acks[nack], now.mllp_acks[nack]);
    counts.retransmits = increase(before.retransmits, now.retransmits);
    counts.srtt_samples = increase(before.srtt_samples, now.srtt_samples);
    counts.srtt_us_sum = static_cast<double>(increase(before.srtt_us_sum, now.srtt_us_sum));

    shhim_hist delta{};
    std::uint64_t measured = 0;
    for (std::uint32_t b = 0; b < SHHIM_HIST_BUCKETS; ++b) {
        delta.buckets[b] = increase(before.response.buckets[b], now.response.buckets[b]);
        measured += delta.buckets[b];
    }
    if (measured > 0) {
        counts.p50_ms = percentileNs(delta, 0.50) / 1e6;
        counts.p99_ms = percentileNs(delta, 0.99) / 1e6;
    }
    return counts;
}

FeatureVector featureVector(const TickCounts& c)
{
    // Requests are the denominator of request-level errors; for tcp services
    // (no application requests) connection attempts stand in.
    const std::uint64_t demand = c.application && c.requests > 0 ? c.requests : c.conn_attempts;
    FeatureVector x;
    x[index(Feature::RequestRate)] = c.seconds > 0 ? static_cast<double>(demand) / c.seconds : kNaN;
    x[index(Feature::Refused)] = fraction(c.refused, c.conn_attempts);
    x[index(Feature::Timeout)] = fraction(c.syn_timeouts, c.conn_attempts);
    x[index(Feature::Reset)] = fraction(c.resets, demand);
    x[index(Feature::ServerError)] = fraction(c.server_errors, c.requests);
    x[index(Feature::Nack)] = fraction(c.nacks, c.requests);
    x[index(Feature::LogP50)] = logMs(c.p50_ms);
    x[index(Feature::LogP99)] = logMs(c.p99_ms);
    x[index(Feature::LogRtt)] =
        c.srtt_samples > 0 ? logMs(std::max(kMinRttMs, c.srtt_us_sum / static_cast<double>(c.srtt_samples) / 1e3))
                           : kNaN;
    // Retransmits with no demand at all (a hung connection) still count, per one request.
    x[index(Feature::RetransmitRate)] =
        demand > 0 || c.retransmits > 0
            ? static_cast<double>(c.retransmits) / static_cast<double>(std::max<std::uint64_t>(demand, 1))
            : kNaN;
    x[index(Feature::SynFailure)] =
        c.conn_attempts > 0 ? fraction(c.conn_attempts - std::min(c.conn_established, c.conn_attempts), c.conn_attempts)
                            : kNaN;
    x[index(Feature::Unanswered)] =
        c.application ? fraction(c.requests - std::min(c.responses, c.requests), c.requests) : kNaN;
    return x;
}

FeatureVector featureVector(const WindowSample& sample, double seconds)
{
    FeatureVector x = FeatureVector::Constant(kNaN);
    x[index(Feature::RequestRate)] = seconds > 0 ? static_cast<double>(sample.requests) / seconds : kNaN;
    // Connect failures prevent the request they belong to, so the whole is
    // the requests made plus those prevented.
    const std::uint64_t attempts = sample.requests + sample.connect_failures;
    x[index(Feature::Refused)] = fraction(sample.connect_failures, attempts);
    x[index(Feature::Reset)] = fraction(sample.resets, sample.requests);
    x[index(Feature::ServerError)] = fraction(sample.server_errors, sample.requests);
    x[index(Feature::Nack)] = fraction(sample.nacks, sample.requests);
    x[index(Feature::LogP99)] = logMs(sample.p99_ms);
    return x;
}

}  // namespace shhim::core
