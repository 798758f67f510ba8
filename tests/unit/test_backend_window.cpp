// A tick's counter increases of one backend, as the decision engine hears them.
#include <doctest/doctest.h>

#include "core/backend_window.h"

using namespace shhim;

namespace {

// Two reads of a kernel entry, as the agent's tick turns them into a sample.
core::WindowSample sampleOf(const shhim_backend& before, const shhim_backend& now, v1::AppProtocol protocol)
{
    return core::windowSample(core::tickCounts(before, now, protocol, 0.1));
}

}  // namespace

TEST_CASE("window sample: increases by kind, 4xx apart, p99 from the histogram's increase")
{
    shhim_backend before{};
    before.first_seen_ns = 7;
    before.requests = 100;
    before.conn_attempts = 40;
    before.http_status[SHHIM_HTTP_5XX] = 2;
    before.response.buckets[shhim_hist_bucket(1'000'000)] = 50;  // old 1 ms responses

    shhim_backend now = before;
    now.requests = 130;
    now.conn_attempts = 45;
    now.refused = 2;
    now.syn_timeouts = 1;
    now.resets = 1;
    now.http_status[SHHIM_HTTP_5XX] = 5;
    now.http_status[SHHIM_HTTP_4XX] = 4;
    now.mllp_acks[SHHIM_MLLP_AE] = 1;
    now.response.buckets[shhim_hist_bucket(480'000'000)] = 10;  // new responses: 480 ms

    const core::WindowSample http = sampleOf(before, now, v1::APP_PROTOCOL_HTTP);
    CHECK(http.requests == 30);
    CHECK(http.connect_failures == 3);
    CHECK(http.resets == 1);
    CHECK(http.server_errors == 3);
    CHECK(http.client_errors == 4);
    CHECK(http.nacks == 1);
    CHECK(http.failures() == 8);  // 4xx are not failures
    REQUIRE(http.p99_ms);
    CHECK(*http.p99_ms == doctest::Approx(480.0).epsilon(0.05));  // only the new responses count

    CHECK(sampleOf(before, now, v1::APP_PROTOCOL_TCP).requests == 5);  // connection attempts
}

TEST_CASE("window sample: a recreated entry counts from zero; no responses, no p99")
{
    shhim_backend before{};
    before.first_seen_ns = 1;
    before.requests = 500;
    shhim_backend now{};
    now.first_seen_ns = 2;
    now.requests = 3;
    const core::WindowSample sample = sampleOf(before, now, v1::APP_PROTOCOL_HTTP);
    CHECK(sample.requests == 3);
    CHECK_FALSE(sample.p99_ms);
}
