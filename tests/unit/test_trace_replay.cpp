// The scenario evaluator's replay and the model training on synthetic
// recorded ticks: a latency x10 fault is detected within a few ticks and
// its backend ejected, a surge is not rerouted, the totals and checks add
// up, and a model trains reproducibly from its seed.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "core/anomaly_training.h"
#include "core/trace_replay.h"

using namespace shhim;

namespace {

constexpr std::int64_t kStartMs = 1'764'000'000'000;
const std::string kA = "198.18.0.10:8080";
const std::string kB = "198.18.0.11:8080";

// One healthy http backend's tick at ~100 req/s, with jitter.
v1::RecordedBackend healthy(const std::string& backend, std::mt19937_64& rng, double rate_factor = 1)
{
    std::poisson_distribution<int> arrivals(10 * rate_factor);
    std::normal_distribution<double> jitter(0, 0.1);
    const int n = std::max(1, arrivals(rng));
    v1::RecordedBackend b;
    b.set_service("fhir");
    b.set_backend(backend);
    b.set_service_class("clinical");
    b.set_application(true);
    b.set_requests(n);
    b.set_responses(n);
    b.set_conn_attempts(n);
    b.set_conn_established(n);
    b.set_srtt_samples(2 * n);
    b.set_srtt_us_sum(2 * n * 40.0);
    b.set_p50_ms(20 * std::exp(jitter(rng)));
    b.set_p99_ms(22 * std::exp(jitter(rng)));
    return b;
}

struct Fault {
    std::string kind = "normal";
    bool failure = false;
    double factor = 0;
    int at_tick = 900;   // the fault starts before this tick
    double latency = 1;  // multiplies kA's latency from at_tick
    double rate = 1;     // multiplies both backends' rate from at_tick
};

core::Trace syntheticTrace(const Fault& fault, int ticks = 1500)
{
    std::mt19937_64 rng(7);
    core::Trace trace;
    trace.source = "synthetic-" + fault.kind;
    trace.label.set_name(fault.kind + "-synthetic");
    trace.label.set_kind(fault.kind);
    trace.label.set_failure(fault.failure);
    trace.label.set_service("fhir");
    trace.label.set_backend(kA);
    trace.label.set_factor(fault.factor);
    trace.label.set_fault_start_unix_ms(kStartMs + 100LL * fault.at_tick - 50);
    for (int i = 0; i < ticks; ++i) {
        const bool faulty = i >= fault.at_tick;
        v1::RecordedTick tick;
        tick.set_unix_ms(kStartMs + 100LL * i);
        tick.set_seconds(0.1);
        v1::RecordedBackend a = healthy(kA, rng, faulty ? fault.rate : 1);
        if (faulty && fault.latency != 1) {
            a.set_p50_ms(a.p50_ms() * fault.latency);
            a.set_p99_ms(a.p99_ms() * fault.latency);
        }
        *tick.add_backends() = a;
        *tick.add_backends() = healthy(kB, rng, faulty ? fault.rate : 1);
        trace.ticks.push_back(std::move(tick));
    }
    return trace;
}

}  // namespace

TEST_CASE("replay: a latency x10 fault is detected within 3 ticks and its backend ejected; nothing else")
{
    const auto trace = syntheticTrace({.kind = "latency", .failure = true, .factor = 10, .latency = 10});
    const core::TraceResult r = core::replayTrace(trace, core::ReplayOptions{});
    REQUIRE(r.detect_ticks);
    CHECK(*r.detect_ticks <= 3);
    CHECK(*r.detect_seconds < 0.35);
    CHECK(r.detected_by.find("p99 latency") != std::string::npos);
    CHECK(r.reroutes >= 1);
    CHECK(r.false_reroutes == 0);
    CHECK(r.false_alarms == 0);
    CHECK(r.ticks == 1500);
    CHECK(r.seconds == doctest::Approx(149.9));
    // In shadow mode the score is computed but the engine never ejects on it.
    core::ReplayOptions shadow;
    shadow.anomaly_acts = false;
    const core::TraceResult s = core::replayTrace(trace, shadow);
    CHECK(s.detect_ticks == r.detect_ticks);
    CHECK(s.reroutes == 0);
}

TEST_CASE("replay: a x4.4 surge of both backends is neither an alarm nor a reroute")
{
    const auto trace = syntheticTrace({.kind = "surge", .failure = false, .factor = 4.4, .rate = 4.4});
    const core::TraceResult r = core::replayTrace(trace, core::ReplayOptions{});
    CHECK(!r.detect_ticks);
    CHECK(r.reroutes == 0);
    CHECK(r.false_alarms == 0);
    CHECK(r.peak_normal_score < 1.0);
    const std::vector<core::TraceResult> one{r};
    const auto failed = core::failedChecks(one, core::summarize(one));
    REQUIRE(failed.size() == 1);
    CHECK(failed[0] == "no latency x10 trace in the suite");
}

TEST_CASE("replay: a label naming a backend the trace never shows is refused")
{
    auto trace = syntheticTrace({.kind = "crash", .failure = true}, 10);
    trace.label.set_backend("198.18.0.99:8080");
    CHECK_THROWS_WITH_AS(core::replayTrace(trace, core::ReplayOptions{}),
                         doctest::Contains("198.18.0.99:8080 of service fhir never appears"), core::TraceError);
}

TEST_CASE("summarize and checks: recall, precision, false reroutes per hour, the median of latency x10")
{
    auto result = [](std::string name, std::string kind, bool failure, std::optional<std::size_t> ticks) {
        core::TraceResult r;
        r.name = std::move(name);
        r.kind = std::move(kind);
        r.failure = failure;
        r.detect_ticks = ticks;
        r.seconds = 1800;
        return r;
    };
    std::vector<core::TraceResult> rs{
        result("x10-a", "latency", true, 2), result("x10-b", "latency", true, 4), result("x10-c", "latency", true, 1),
        result("crash", "crash", true, std::nullopt), result("surge", "surge", false, std::nullopt),
        result("brownout", "brownout", true, 30)};
    for (int i = 0; i < 3; ++i)
        rs[static_cast<std::size_t>(i)].factor = 10;
    rs[0].alarm_episodes = 3;
    rs[0].false_alarms = 1;
    rs[4].reroutes = 1;
    rs[4].false_reroutes = 1;
    rs[5].drained_before_failure_s = -2.0;  // ejected after it died
    const auto t = core::summarize(rs);
    CHECK(t.failures == 5);
    CHECK(t.detected == 4);
    CHECK(t.recall == doctest::Approx(0.8));
    CHECK(t.precision == doctest::Approx(2.0 / 3.0));
    CHECK(t.hours == doctest::Approx(3.0));
    CHECK(t.false_reroutes_per_hour == doctest::Approx(1.0 / 3.0));
    REQUIRE(t.median_ticks_latency_x10);
    CHECK(*t.median_ticks_latency_x10 == 2);
    const auto failed = core::failedChecks(rs, t);
    REQUIRE(failed.size() == 3);
    CHECK(failed[0] == "crash: the crash fault was not detected");
    CHECK(failed[1] == "surge: 1 reroute(s) on a surge trace (not a failure)");
    CHECK(failed[2] == "brownout: the browning-out backend was not drained before it died");
}

TEST_CASE("training: normal ticks become samples; the model is reproducible and scores held-out normal low")
{
    const auto trace = syntheticTrace({}, 1200);
    std::vector<core::FeatureVector> samples;
    const std::size_t abnormal = core::collectTrainingSamples(trace.ticks, core::AnomalySettings{}, samples);
    // Two backends, 900 ticks each after the warm-up, nearly all normal.
    CHECK(samples.size() + abnormal == 2 * 900);
    CHECK(samples.size() >= 1780);
    for (const auto& s : samples)
        CHECK(s[core::index(core::Feature::RequestRate)] == 0);  // rate is never a feature of the forest

    core::TrainingOptions options;
    options.forest.trees = 20;
    options.forest.subsample_size = 128;
    std::uint32_t last_progress = 0;
    const auto model = core::trainModel(samples, options, "unit", [&](std::uint32_t done, std::uint32_t total) {
        CHECK(done == last_progress + 1);
        CHECK(total == 20);
        last_progress = done;
    });
    CHECK(last_progress == 20);
    CHECK(model.forest.trees.size() == 20);
    CHECK(model.training.heldout_samples() == (samples.size() + 4) / 5);
    CHECK(model.training.samples() + model.training.heldout_samples() == samples.size());
    CHECK(model.score_threshold >= 0.55);
    CHECK(model.training.heldout_score_p50() < model.score_threshold);
    CHECK(model.training.heldout_score_p50() <= model.training.heldout_score_p99());
    CHECK(core::serializeModel(core::trainModel(samples, options, "unit")) == core::serializeModel(model));

    CHECK_THROWS_WITH_AS(core::trainModel(std::span(samples).first(10), options, "x"),
                         doctest::Contains("too few normal samples to train on: 10"), std::invalid_argument);
    options.contamination = 0;
    CHECK_THROWS_AS(core::trainModel(samples, options, "x"), std::invalid_argument);
    CHECK(core::quantile({3, 1, 2}, 0.5) == 2);
    CHECK(core::quantile({0, 10}, 0.25) == doctest::Approx(2.5));
}
