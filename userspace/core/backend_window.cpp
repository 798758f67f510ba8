#include "core/backend_window.h"

#include "core/histogram.h"

namespace shhim::core {
namespace {

std::uint64_t increase(std::uint64_t before, std::uint64_t now) { return now >= before ? now - before : now; }

bool recreated(const shhim_backend& before, const shhim_backend& now)
{
    return before.first_seen_ns != now.first_seen_ns || now.requests < before.requests ||
           now.conn_attempts < before.conn_attempts;
}

}  // namespace

WindowSample windowSample(const shhim_backend& before_in, const shhim_backend& now, v1::AppProtocol protocol)
{
    const shhim_backend zero{};
    const shhim_backend& before = recreated(before_in, now) ? zero : before_in;
    WindowSample sample;
    const bool application = protocol == v1::APP_PROTOCOL_HTTP || protocol == v1::APP_PROTOCOL_MLLP;
    sample.requests = application ? increase(before.requests, now.requests)
                                  : increase(before.conn_attempts, now.conn_attempts);
    sample.connect_failures = increase(before.refused, now.refused) +
                              increase(before.syn_timeouts, now.syn_timeouts) +
                              increase(before.icmp_errors, now.icmp_errors);
    sample.resets = increase(before.resets, now.resets);
    sample.server_errors = increase(before.http_status[SHHIM_HTTP_5XX], now.http_status[SHHIM_HTTP_5XX]);
    sample.client_errors = increase(before.http_status[SHHIM_HTTP_4XX], now.http_status[SHHIM_HTTP_4XX]);
    for (const int nack : {SHHIM_MLLP_AE, SHHIM_MLLP_AR, SHHIM_MLLP_CE, SHHIM_MLLP_CR})
        sample.nacks += increase(before.mllp_acks[nack], now.mllp_acks[nack]);

    shhim_hist delta{};
    std::uint64_t responses = 0;
    for (std::uint32_t b = 0; b < SHHIM_HIST_BUCKETS; ++b) {
        delta.buckets[b] = increase(before.response.buckets[b], now.response.buckets[b]);
        responses += delta.buckets[b];
    }
    if (responses > 0)
        sample.p99_ms = percentileNs(delta, 0.99) / 1e6;
    return sample;
}

}  // namespace shhim::core
