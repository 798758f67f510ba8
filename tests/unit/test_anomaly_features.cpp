// The anomaly engine's feature vector from one tick's counts.
#include <cmath>

#include <doctest/doctest.h>

#include "core/anomaly_features.h"

using namespace shhim;
using core::Feature;
using core::index;

TEST_CASE("anomaly features: names in the fixed order, rate first")
{
    const auto& names = core::featureNames();
    CHECK(names.size() == core::kFeatureCount);
    CHECK(names[index(Feature::RequestRate)] == "request_rate");
    CHECK(names[index(Feature::LogP99)] == "log_p99_ms");
    CHECK(names[index(Feature::Unanswered)] == "unanswered");
    CHECK(core::featureLabel(Feature::LogP99) == "p99 latency");
}

TEST_CASE("anomaly features: fractions, logs and rates of one tick")
{
    core::TickCounts c;
    c.seconds = 0.1;
    c.requests = 40;
    c.responses = 36;
    c.conn_attempts = 10;
    c.conn_established = 8;
    c.refused = 1;
    c.syn_timeouts = 1;
    c.resets = 2;
    c.server_errors = 4;
    c.nacks = 0;
    c.retransmits = 6;
    c.srtt_samples = 4;
    c.srtt_us_sum = 8000;  // mean 2 ms
    c.p50_ms = 20;
    c.p99_ms = 480;
    const core::FeatureVector x = core::featureVector(c);
    CHECK(x[index(Feature::RequestRate)] == doctest::Approx(400));
    CHECK(x[index(Feature::Refused)] == doctest::Approx(0.1));
    CHECK(x[index(Feature::Timeout)] == doctest::Approx(0.1));
    CHECK(x[index(Feature::Reset)] == doctest::Approx(0.05));
    CHECK(x[index(Feature::ServerError)] == doctest::Approx(0.1));
    CHECK(x[index(Feature::Nack)] == 0);
    CHECK(x[index(Feature::LogP50)] == doctest::Approx(std::log(20.0)));
    CHECK(x[index(Feature::LogP99)] == doctest::Approx(std::log(480.0)));
    CHECK(x[index(Feature::LogRtt)] == doctest::Approx(std::log(2.0)));
    CHECK(x[index(Feature::RetransmitRate)] == doctest::Approx(0.15));
    CHECK(x[index(Feature::SynFailure)] == doctest::Approx(0.2));
    CHECK(x[index(Feature::Unanswered)] == doctest::Approx(0.1));
}

TEST_CASE("anomaly features: what a tick cannot measure is NaN, a crash is refusal 1")
{
    core::TickCounts idle;
    idle.seconds = 0.1;
    const core::FeatureVector x = core::featureVector(idle);
    CHECK(x[index(Feature::RequestRate)] == 0);
    for (int i = core::kFirstScoredFeature; i < core::kFeatureCount; ++i)
        CHECK(std::isnan(x[i]));

    core::TickCounts crash;
    crash.seconds = 0.1;
    crash.conn_attempts = 12;
    crash.refused = 12;
    const core::FeatureVector y = core::featureVector(crash);
    CHECK(y[index(Feature::Refused)] == 1);
    CHECK(y[index(Feature::SynFailure)] == 1);
    CHECK(y[index(Feature::RequestRate)] == doctest::Approx(120));  // no requests got through: attempts stand in
    CHECK(std::isnan(y[index(Feature::ServerError)]));
}

TEST_CASE("anomaly features: counts from two kernel snapshots, 4xx ignored")
{
    shhim_backend before{};
    before.first_seen_ns = 9;
    before.requests = 100;
    before.responses = 100;
    before.conn_attempts = 10;
    before.conn_established = 10;
    before.srtt_us_sum = 5000;
    before.srtt_samples = 5;
    shhim_backend now = before;
    now.requests = 120;
    now.responses = 118;
    now.conn_attempts = 14;
    now.conn_established = 12;
    now.refused = 1;
    now.icmp_errors = 1;
    now.http_status[SHHIM_HTTP_5XX] = 3;
    now.http_status[SHHIM_HTTP_4XX] = 7;
    now.retransmits = 2;
    now.srtt_us_sum = 5000 + 3 * 1500;
    now.srtt_samples = 8;
    now.response.buckets[shhim_hist_bucket(480'000'000)] = 18;
    const core::TickCounts c = core::tickCounts(before, now, v1::APP_PROTOCOL_HTTP, 0.1);
    CHECK(c.requests == 20);
    CHECK(c.responses == 18);
    CHECK(c.refused == 2);
    CHECK(c.server_errors == 3);
    CHECK(c.retransmits == 2);
    CHECK(c.srtt_samples == 3);
    REQUIRE(c.p99_ms);
    CHECK(*c.p99_ms == doctest::Approx(480).epsilon(0.05));
    const core::FeatureVector x = core::featureVector(c);
    CHECK(x[index(Feature::ServerError)] == doctest::Approx(0.15));  // 3 of 20; the 4xx do not count
    CHECK(x[index(Feature::LogRtt)] == doctest::Approx(std::log(1.5)));

    // tcp: connection attempts are the demand, no application features.
    const core::FeatureVector t = core::featureVector(core::tickCounts(before, now, v1::APP_PROTOCOL_TCP, 0.1));
    CHECK(t[index(Feature::RequestRate)] == doctest::Approx(40));
    CHECK(std::isnan(t[index(Feature::Unanswered)]));
}

TEST_CASE("anomaly features: from the decision engine's WindowSample")
{
    core::WindowSample s;
    s.requests = 18;
    s.connect_failures = 2;
    s.server_errors = 9;
    s.p99_ms = 35;
    const core::FeatureVector x = core::featureVector(s, 0.1);
    CHECK(x[index(Feature::RequestRate)] == doctest::Approx(180));
    CHECK(x[index(Feature::Refused)] == doctest::Approx(0.1));
    CHECK(x[index(Feature::ServerError)] == doctest::Approx(0.5));
    CHECK(x[index(Feature::LogP99)] == doctest::Approx(std::log(35.0)));
    CHECK(std::isnan(x[index(Feature::LogP50)]));
}
