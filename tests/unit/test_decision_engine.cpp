// The decision engine (core/decision_engine.h) over scripted evidence
// timelines with an injected clock.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/audit.h"
#include "core/audit_replay.h"
#include "core/decision_engine.h"

using namespace shhim::core;
using namespace std::chrono_literals;

namespace {

const std::string kA = "198.18.20.1:8080";
const std::string kB = "198.18.20.2:8080";
const std::string kC = "198.18.20.3:8080";
const std::string kFallback = "198.18.30.1:8080";

// Seconds after an arbitrary wall-clock origin.
EngineTime at(double seconds)
{
    return EngineTime(std::chrono::seconds(1'700'000'000)) +
           std::chrono::milliseconds(std::llround(seconds * 1000));
}

struct ServiceSpec {
    std::string name = "fhir";
    std::string cls = "clinical";
    std::vector<std::string> primary{kA, kB};
    std::vector<std::string> fallback{kFallback};
    std::function<void(shhim::v1::Thresholds&)> thresholds = [](shhim::v1::Thresholds& t) {
        t.set_consecutive_failures(3);
        t.set_ejection_ms(10'000);
        t.set_max_ejected_fraction(0.5);
        t.set_window_ms(1000);
        t.set_min_requests(10);
        t.set_error_rate(0.2);
        t.set_p99_latency_ms(500);
    };
};

shhim::v1::Policy policyOf(const std::vector<ServiceSpec>& specs)
{
    shhim::v1::Policy policy;
    policy.set_schema_version(1);
    policy.set_name("test");
    for (const auto& spec : specs) {
        auto* s = policy.add_services();
        s->set_name(spec.name);
        s->set_address("198.18.10.1:8080");
        s->set_protocol(shhim::v1::APP_PROTOCOL_HTTP);
        s->set_class_(spec.cls);
        for (const auto& b : spec.primary)
            s->mutable_backends()->add_primary(b);
        for (const auto& b : spec.fallback)
            s->mutable_backends()->add_fallback(b);
        if (spec.thresholds)
            spec.thresholds(*s->mutable_thresholds());
    }
    return policy;
}

const BackendStatus& statusOf(const EngineSnapshot& snap, const std::string& service, const std::string& backend)
{
    for (const auto& s : snap.services)
        if (s.name == service)
            for (const auto& b : s.backends)
                if (b.backend == backend)
                    return b;
    throw std::logic_error("no " + service + " " + backend);
}

const ServiceStatus& serviceOf(const EngineSnapshot& snap, const std::string& service)
{
    for (const auto& s : snap.services)
        if (s.name == service)
            return s;
    throw std::logic_error("no " + service);
}

BackendState stateOf(const DecisionEngine& e, const std::string& backend, const std::string& service = "fhir")
{
    return statusOf(e.snapshot(), service, backend).state;
}

WantedRoute routeOf(const DecisionEngine& e, const std::string& service = "fhir")
{
    for (const auto& r : e.routes())
        if (r.service == service)
            return r;
    throw std::logic_error("no route for " + service);
}

bool routable(const DecisionEngine& e, const std::string& backend, const std::string& service = "fhir")
{
    for (const auto& b : routeOf(e, service).backends)
        if (b.backend == backend)
            return b.routable;
    throw std::logic_error("no backend " + backend);
}

const Change* findChange(const std::vector<Change>& changes, const std::string& action, const std::string& backend = "")
{
    for (const auto& c : changes)
        if (c.action == action && c.backend == backend)
            return &c;
    return nullptr;
}

double evidence(const Change& c, const std::string& name)
{
    for (const auto& e : c.evidence)
        if (e.name == name)
            return e.value;
    throw std::logic_error("no evidence " + name + " in " + c.action);
}

WindowSample sample(const std::string& backend, std::uint64_t requests, std::uint64_t failures = 0,
                    std::optional<double> p99 = std::nullopt)
{
    WindowSample s;
    s.service = "fhir";
    s.backend = backend;
    s.requests = requests;
    s.server_errors = failures;
    s.p99_ms = p99;
    return s;
}

std::vector<Change> failures(DecisionEngine& e, const std::string& backend, int n, EngineTime now)
{
    std::vector<Change> all;
    for (int i = 0; i < n; ++i) {
        auto c = e.onHardFailure("fhir", backend, FailureKind::Refused, now, false);
        all.insert(all.end(), c.begin(), c.end());
    }
    return all;
}

// Runs 100 ms ticks from `from` to `until`, answering every due probe:
// success unless the backend is in `down`. Returns every change.
std::vector<Change> probeUntil(DecisionEngine& e, EngineTime from, EngineTime until, bool ok,
                               const std::set<std::string>& down = {})
{
    std::vector<Change> all;
    for (EngineTime now = from; now <= until; now += 100ms) {
        auto c = e.tick(now);
        all.insert(all.end(), c.begin(), c.end());
        for (const auto& p : e.probesDue(now)) {
            c = e.onProbe(p.service, p.backend, ok && !down.count(p.backend), now);
            all.insert(all.end(), c.begin(), c.end());
        }
    }
    return all;
}

DecisionEngine engineWith(const std::vector<ServiceSpec>& specs, EngineSettings settings = {})
{
    DecisionEngine e(settings);
    e.applyPolicy(policyOf(specs), at(0));
    return e;
}

}  // namespace

TEST_CASE("engine: a new policy starts every backend healthy on the primary pool")
{
    DecisionEngine e;
    auto changes = e.applyPolicy(policyOf({ServiceSpec{}}), at(0));
    CHECK(findChange(changes, "add") != nullptr);
    CHECK(findChange(changes, "add", kA) != nullptr);
    CHECK(findChange(changes, "add", kFallback) != nullptr);
    const auto route = routeOf(e);
    CHECK(route.active == Pool::Primary);
    CHECK_FALSE(route.fail_open);
    CHECK(route.backends.size() == 3);
    CHECK(std::all_of(route.backends.begin(), route.backends.end(), [](const auto& b) { return b.routable; }));
}

TEST_CASE("engine: consecutive hard failures eject at the threshold, the kernel breaker at once")
{
    auto e = engineWith({ServiceSpec{}});
    CHECK(failures(e, kA, 2, at(1)).empty());
    CHECK(stateOf(e, kA) == BackendState::Healthy);

    auto changes = failures(e, kA, 1, at(1.01));
    const Change* eject = findChange(changes, "eject", kA);
    REQUIRE(eject != nullptr);
    CHECK(eject->actor == "engine");
    CHECK(eject->before == "healthy");
    CHECK(eject->after == "ejected");
    CHECK(evidence(*eject, "consecutive_failures") == 3);
    CHECK(evidence(*eject, "consecutive_failures_threshold") == 3);
    CHECK(evidence(*eject, "ejection_ms") == 10'000);
    CHECK_FALSE(routable(e, kA));
    CHECK(routable(e, kB));

    // The kernel's trip is a fact even beyond max_ejected_fraction (1 of 2 already out).
    changes = e.onHardFailure("fhir", kB, FailureKind::Reset, at(2), true);
    eject = findChange(changes, "eject", kB);
    REQUIRE(eject != nullptr);
    CHECK(eject->actor == "kernel");
    CHECK(eject->reason.find("kernel circuit breaker tripped on reset") == 0);
    CHECK(statusOf(e.snapshot(), "fhir", kB).kernel_tripped);
    // Primary empty: the fallback pool takes over in the same call.
    const Change* pool = findChange(changes, "fallback");
    REQUIRE(pool != nullptr);
    CHECK(pool->before == "primary");
    CHECK(pool->after == "fallback");
    CHECK(routeOf(e).active == Pool::Fallback);
}

TEST_CASE("engine: life-critical and emergency services eject on the first hard failure by default")
{
    ServiceSpec spec;
    spec.cls = "life-critical";
    spec.thresholds = nullptr;
    auto e = engineWith({spec});
    auto changes = failures(e, kA, 1, at(1));
    CHECK(findChange(changes, "eject", kA) != nullptr);

    ServiceSpec clinical;
    clinical.thresholds = nullptr;
    auto e2 = engineWith({clinical});
    CHECK(failures(e2, kA, 4, at(1)).empty());
    CHECK(findChange(failures(e2, kA, 1, at(1)), "eject", kA) != nullptr);
}

TEST_CASE("engine: successful requests between hard failures break the run")
{
    auto e = engineWith({ServiceSpec{}});
    failures(e, kA, 2, at(1));
    e.onWindow(at(1.1), {sample(kA, 5)});
    CHECK(failures(e, kA, 2, at(1.2)).empty());
    CHECK(stateOf(e, kA) == BackendState::Healthy);
    CHECK(findChange(failures(e, kA, 1, at(1.3)), "eject", kA) != nullptr);
}

TEST_CASE("engine: slow degradation makes a backend suspect, then ejects it when sustained")
{
    auto e = engineWith({ServiceSpec{}});
    std::vector<Change> all;
    // 100 ms ticks, p99 800 ms against a 500 ms threshold, 1 s windows.
    for (int tick = 0; tick <= 30; ++tick) {
        auto c = e.onWindow(at(1 + tick * 0.1), {sample(kA, 5, 0, 800.0), sample(kB, 5, 0, 40.0)});
        all.insert(all.end(), c.begin(), c.end());
    }
    const Change* suspect = findChange(all, "suspect", kA);
    REQUIRE(suspect != nullptr);
    CHECK(suspect->time == at(2));  // the first window closes after 1 s
    CHECK(evidence(*suspect, "p99_ms") == 800);
    CHECK(evidence(*suspect, "p99_threshold_ms") == 500);
    CHECK(suspect->reason.find("p99") != std::string::npos);
    const Change* eject = findChange(all, "eject", kA);
    REQUIRE(eject != nullptr);
    CHECK(eject->time == at(4));  // the third bad window in a row
    CHECK(eject->reason.find("degraded for 3 windows in a row") == 0);
    CHECK(stateOf(e, kB) == BackendState::Healthy);
}

TEST_CASE("engine: a good window clears suspect; too few requests are not judged")
{
    auto e = engineWith({ServiceSpec{}});
    e.onWindow(at(1), {sample(kA, 50, 20)});
    auto c = e.onWindow(at(2), {sample(kA, 50, 20)});
    REQUIRE(findChange(c, "suspect", kA) != nullptr);
    CHECK(evidence(*findChange(c, "suspect", kA), "error_rate") == doctest::Approx(0.4));
    c = e.onWindow(at(3.5), {sample(kA, 50, 1)});
    CHECK(findChange(c, "recover", kA) != nullptr);
    CHECK(stateOf(e, kA) == BackendState::Healthy);

    // 4 requests a second, all failing: below min_requests (10) a window: never judged.
    auto quiet = engineWith({ServiceSpec{}});
    for (int s = 1; s <= 10; ++s)
        CHECK(quiet.onWindow(at(s), {sample(kA, 4, 4)}).empty());
}

TEST_CASE("engine: 4xx responses are not failures")
{
    auto e = engineWith({ServiceSpec{}});
    WindowSample s = sample(kA, 100);
    s.client_errors = 90;
    std::vector<Change> all;
    for (int i = 0; i <= 10; ++i) {
        auto c = e.onWindow(at(1 + i), {s});
        all.insert(all.end(), c.begin(), c.end());
    }
    CHECK(all.empty());
    CHECK(stateOf(e, kA) == BackendState::Healthy);
}

TEST_CASE("engine: an anomaly score held for anomalous_ticks_to_eject ticks ejects; a noisy tick does not")
{
    auto e = engineWith({ServiceSpec{}});
    WindowSample s = sample(kA, 10, 0, 10.0);
    s.score = 2.5;
    s.score_drivers = "p99 latency 480 ms vs baseline 35 ms, x13.7";
    WindowSample calm = s;
    calm.score = 0.2;
    WindowSample silent = s;
    silent.score.reset();
    // Four anomalous ticks, a calm one, four more, a tick without traffic: no run of five.
    std::vector<Change> all;
    for (const WindowSample* t : {&s, &s, &s, &s, &calm, &s, &s, &s, &s, &silent}) {
        auto c = e.onWindow(at(1), {*t});
        all.insert(all.end(), c.begin(), c.end());
    }
    CHECK(all.empty());
    CHECK(stateOf(e, kA) == BackendState::Healthy);
    // The silent tick did not break the run: the fifth scored tick ejects.
    auto c = e.onWindow(at(1.1), {s});
    const Change* eject = findChange(c, "eject", kA);
    REQUIRE(eject != nullptr);
    CHECK(stateOf(e, kA) == BackendState::Ejected);
    CHECK(evidence(*eject, "score") == 2.5);
    CHECK(evidence(*eject, "anomalous_ticks") == 5);
    CHECK(eject->reason.find("anomalous for 5 ticks") != std::string::npos);
    CHECK(eject->reason.find("p99 latency 480 ms") != std::string::npos);
}

TEST_CASE("engine: restore needs N consecutive successful probes; a failed probe ejects again, longer")
{
    auto e = engineWith({ServiceSpec{}});
    failures(e, kA, 3, at(1));
    CHECK(e.probesDue(at(5)).empty());
    CHECK(e.tick(at(10.9)).empty());
    auto c = e.tick(at(11));
    REQUIRE(findChange(c, "probe", kA) != nullptr);
    CHECK(stateOf(e, kA) == BackendState::Probing);
    CHECK_FALSE(routable(e, kA));  // patient traffic is never a probe

    auto due = e.probesDue(at(11));
    REQUIRE(due.size() == 1);
    CHECK(due[0].backend == kA);
    CHECK(e.probesDue(at(11.5)).empty());  // the one in flight is not asked for twice
    CHECK(e.onProbe("fhir", kA, true, at(11.6)).empty());
    CHECK(e.onProbe("fhir", kA, true, at(12.6)).empty());
    CHECK_FALSE(routable(e, kA));
    c = e.onProbe("fhir", kA, true, at(13.6));
    const Change* restore = findChange(c, "restore", kA);
    REQUIRE(restore != nullptr);
    CHECK(restore->before == "probing");
    CHECK(restore->after == "healthy");
    CHECK(evidence(*restore, "probe_successes") == 3);
    CHECK(routable(e, kA));

    // Again: this time a probe fails after two successes.
    failures(e, kA, 3, at(20));
    e.tick(at(40));
    REQUIRE(stateOf(e, kA) == BackendState::Probing);
    e.onProbe("fhir", kA, true, at(40.1));
    e.onProbe("fhir", kA, true, at(41.1));
    c = e.onProbe("fhir", kA, false, at(42.1));
    const Change* eject = findChange(c, "eject", kA);
    REQUIRE(eject != nullptr);
    CHECK(eject->before == "probing");
    CHECK(evidence(*eject, "ejection_ms") == 40'000);  // third ejection: 10 s * 2^2
}

TEST_CASE("engine: ejection time doubles on repeats, is capped, and resets after a quiet spell")
{
    EngineSettings settings;
    settings.max_backoff_doublings = 3;
    settings.backoff_reset = 600s;
    auto e = engineWith({ServiceSpec{}}, settings);
    std::vector<double> lengths;
    double now = 1;
    for (int round = 0; round < 6; ++round) {
        auto c = failures(e, kA, 3, at(now));
        const Change* eject = findChange(c, "eject", kA);
        REQUIRE(eject != nullptr);
        lengths.push_back(evidence(*eject, "ejection_ms"));
        const double back = now + evidence(*eject, "ejection_ms") / 1000;
        probeUntil(e, at(back), at(back + 3), true);
        REQUIRE(stateOf(e, kA) == BackendState::Healthy);
        now = back + 4;
    }
    CHECK(lengths == std::vector<double>{10'000, 20'000, 40'000, 80'000, 80'000, 80'000});

    // Healthy for backoff_reset: the next ejection is the first again.
    e.tick(at(now + 601));
    auto c = failures(e, kA, 3, at(now + 602));
    REQUIRE(findChange(c, "eject", kA) != nullptr);
    CHECK(evidence(*findChange(c, "eject", kA), "ejection_ms") == 10'000);
}

namespace {

// A backend whose health follows `up(t)`, driven for `seconds`: patient
// traffic while routable, hard failures when down, probes answered truly.
struct FlapRun {
    int ejections = 0;
    int restores = 0;
    double seconds_routable = 0;
    std::vector<double> ejection_ms;
};

FlapRun runFlapping(const std::function<bool(double)>& up, double seconds)
{
    auto e = engineWith({ServiceSpec{}});
    FlapRun run;
    for (int step = 0; step <= static_cast<int>(seconds * 10); ++step) {
        const double t = 1 + step * 0.1;
        std::vector<Change> changes = e.tick(at(t));
        for (const auto& p : e.probesDue(at(t))) {
            auto c = e.onProbe(p.service, p.backend, up(t), at(t));
            changes.insert(changes.end(), c.begin(), c.end());
        }
        if (routable(e, kA)) {
            run.seconds_routable += 0.1;
            auto c = up(t) ? e.onWindow(at(t), {sample(kA, 3)}) : failures(e, kA, 3, at(t));
            changes.insert(changes.end(), c.begin(), c.end());
        }
        for (const auto& c : changes) {
            if (c.backend == kA && c.action == "eject") {
                ++run.ejections;
                run.ejection_ms.push_back(evidence(c, "ejection_ms"));
            }
            if (c.backend == kA && c.action == "restore")
                ++run.restores;
        }
    }
    return run;
}

}  // namespace

TEST_CASE("engine: a backend that fails and recovers every second is held out, not oscillated")
{
    // Up in even seconds, down in odd ones, for 10 minutes.
    const auto every_second = [](double t) { return static_cast<long>(t) % 2 == 0; };
    const FlapRun run = runFlapping(every_second, 600);
    CHECK(run.ejections >= 1);
    CHECK(run.restores == 0);  // never three good probes in a row
    CHECK(run.seconds_routable < 3);

    // Up 5 s, down 1 s: probes can pass, so it comes back, but each time for
    // less and out for longer: the ejection doubles every time.
    const auto mostly_up = [](double t) { return static_cast<long>(t) % 6 != 5; };
    const FlapRun longer = runFlapping(mostly_up, 600);
    CHECK(longer.restores >= 1);
    CHECK(longer.restores <= 6);
    for (std::size_t i = 1; i < longer.ejection_ms.size(); ++i)
        CHECK(longer.ejection_ms[i] == 2 * longer.ejection_ms[i - 1]);
    CHECK(longer.seconds_routable < 60);
}

TEST_CASE("engine: max_ejected_fraction keeps capacity; kernel trips are facts beyond it")
{
    ServiceSpec spec;
    spec.primary = {kA, kB, kC};
    spec.thresholds = [](shhim::v1::Thresholds& t) {
        t.set_consecutive_failures(2);
        t.set_ejection_ms(10'000);
        t.set_max_ejected_fraction(0.34);  // one of three
    };
    auto e = engineWith({spec});
    CHECK(findChange(failures(e, kA, 2, at(1)), "eject", kA) != nullptr);

    auto c = failures(e, kB, 2, at(2));
    const Change* hold = findChange(c, "hold", kB);
    REQUIRE(hold != nullptr);
    CHECK(hold->after == "suspect");
    CHECK(evidence(*hold, "max_ejected_fraction") == doctest::Approx(0.34));
    CHECK(evidence(*hold, "pool_size") == 3);
    CHECK(evidence(*hold, "pool_out") == 1);
    CHECK(routable(e, kB));
    CHECK(statusOf(e.snapshot(), "fhir", kB).held);
    CHECK(failures(e, kB, 4, at(3)).empty());  // one record, not one per failure

    // The kernel trips C: recorded, not refused, even with A out.
    c = e.onHardFailure("fhir", kC, FailureKind::Refused, at(4), true);
    REQUIRE(findChange(c, "eject", kC) != nullptr);
    CHECK_FALSE(routable(e, kC));
    // Only held B serves: share 0 < 0.5, so the fallback takes over.
    CHECK(routeOf(e).active == Pool::Fallback);

    // A good window (10 s by default) for B clears the hold.
    e.onWindow(at(5), {sample(kB, 50)});
    c = e.onWindow(at(15), {sample(kB, 50)});
    CHECK(findChange(c, "recover", kB) != nullptr);
    CHECK_FALSE(statusOf(e.snapshot(), "fhir", kB).held);
}

TEST_CASE("engine: with every backend down the service fails open to its primary pool")
{
    ServiceSpec spec;
    spec.fallback = {};
    auto e = engineWith({spec});
    e.onHardFailure("fhir", kA, FailureKind::Refused, at(1), true);
    auto c = e.onHardFailure("fhir", kB, FailureKind::Refused, at(1.5), true);
    const Change* open = findChange(c, "fail-open");
    REQUIRE(open != nullptr);
    CHECK(open->after == "fail-open");
    const auto route = routeOf(e);
    CHECK(route.fail_open);
    CHECK(route.active == Pool::Primary);
    CHECK(routable(e, kA));
    CHECK(routable(e, kB));
    // The states stay what they are: only the route fails open.
    CHECK(stateOf(e, kA) == BackendState::Ejected);

    // A restores through probes (at 11, 12, 13 s; B's start at 11.5 s):
    // fail-open ends and only A is routable.
    auto changes = probeUntil(e, at(11), at(13.2), true);
    CHECK(findChange(changes, "fail-open-end") != nullptr);
    const auto after = routeOf(e);
    CHECK_FALSE(after.fail_open);
    CHECK(routable(e, kA));
    CHECK_FALSE(routable(e, kB));
}

TEST_CASE("engine: fallback at once when the primary fails, back only after the hold")
{
    EngineSettings settings;
    settings.fallback_hold = 30s;
    auto e = engineWith({ServiceSpec{}}, settings);
    e.onHardFailure("fhir", kA, FailureKind::Refused, at(1), true);
    CHECK(routeOf(e).active == Pool::Primary);  // 1 of 2 serving: 0.5 is not below 0.5
    auto c = e.onHardFailure("fhir", kB, FailureKind::Refused, at(2), true);
    REQUIRE(findChange(c, "fallback") != nullptr);
    CHECK(evidence(*findChange(c, "fallback"), "primary_serving") == 0);
    CHECK(routeOf(e).active == Pool::Fallback);

    // A comes back at 13 s (ejection 10 s, probes at 11, 12, 13); B stays down.
    probeUntil(e, at(11), at(13), true, {kB});
    REQUIRE(stateOf(e, kA) == BackendState::Healthy);
    REQUIRE(stateOf(e, kB) != BackendState::Healthy);
    CHECK(*serviceOf(e.snapshot(), "fhir").primary_serving_since == at(13));
    CHECK(routeOf(e).active == Pool::Fallback);
    // A dip (A fails again at 20 s) restarts the hold.
    e.onHardFailure("fhir", kA, FailureKind::Refused, at(20), true);
    CHECK_FALSE(serviceOf(e.snapshot(), "fhir").primary_serving_since.has_value());
    auto held = probeUntil(e, at(20), at(39.9), true, {kB});
    CHECK(findChange(held, "primary") == nullptr);
    CHECK(routeOf(e).active == Pool::Fallback);

    // A back by probes again (ejection 20 s: probing from 40 s); the hold counts from then.
    probeUntil(e, at(40), at(42), true, {kB});
    REQUIRE(stateOf(e, kA) == BackendState::Healthy);
    const EngineTime serving = *serviceOf(e.snapshot(), "fhir").primary_serving_since;
    CHECK(serving == at(42));
    // 43 s, where the first hold would have ended, passes without a move.
    CHECK(findChange(probeUntil(e, at(42.1), serving + 29s, true, {kB}), "primary") == nullptr);
    c = e.tick(serving + 30s);
    const Change* back = findChange(c, "primary");
    REQUIRE(back != nullptr);
    CHECK(back->before == "fallback");
    CHECK(back->reason.find("serving again") != std::string::npos);
    CHECK(routeOf(e).active == Pool::Primary);
}

TEST_CASE("engine: a manual drain holds a backend out until undone or expired")
{
    auto e = engineWith({ServiceSpec{}});
    auto c = e.drain("fhir", kA, "OS patching", "uid:1000", at(1), at(61));
    REQUIRE(c.size() == 1);
    CHECK(c[0].action == "drain");
    CHECK(c[0].actor == "uid:1000");
    CHECK(c[0].before == "healthy");
    CHECK(c[0].after == "drained");
    CHECK(evidence(c[0], "for_ms") == 60'000);
    CHECK_FALSE(routable(e, kA));
    CHECK(e.tick(at(60.9)).empty());
    c = e.tick(at(61));
    const Change* undrain = findChange(c, "undrain", kA);
    REQUIRE(undrain != nullptr);
    CHECK(undrain->actor == "engine");
    CHECK(undrain->reason == "drain by uid:1000 expired (OS patching)");
    CHECK(routable(e, kA));

    // Without an end: the engine never restores it, whatever happens underneath.
    e.drain("fhir", kB, "vendor ticket 4711", "uid:0", at(100));
    e.onHardFailure("fhir", kB, FailureKind::Refused, at(101), true);
    probeUntil(e, at(111), at(120), true);
    CHECK(stateOf(e, kB) == BackendState::Healthy);
    CHECK_FALSE(routable(e, kB));
    e.tick(at(100'000));
    CHECK_FALSE(routable(e, kB));
    c = e.restore("fhir", kB, "patched", "uid:0", at(100'001));
    REQUIRE(c.size() == 1);
    CHECK(c[0].action == "restore");
    CHECK(c[0].before == "drained");
    CHECK(c[0].after == "healthy");
    CHECK(routable(e, kB));
    CHECK(e.restore("fhir", kB, "again", "uid:0", at(100'002)).empty());
}

TEST_CASE("engine: manual restore puts an ejected backend back at once")
{
    auto e = engineWith({ServiceSpec{}});
    failures(e, kA, 3, at(1));
    auto c = e.restore("fhir", kA, "fixed the config", "uid:0", at(2));
    REQUIRE(c.size() == 1);
    CHECK(c[0].before == "ejected");
    CHECK(c[0].actor == "uid:0");
    CHECK(routable(e, kA));
    // Not a pin: new hard evidence ejects it again.
    CHECK(findChange(failures(e, kA, 3, at(3)), "eject", kA) != nullptr);
}

TEST_CASE("engine: manual calls name what is unknown and change nothing")
{
    auto e = engineWith({ServiceSpec{}});
    const auto before = e.snapshot();
    CHECK_THROWS_WITH_AS(e.drain("nope", kA, "r", "uid:0", at(1)), "unknown service 'nope' (not in the applied policy)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(e.drain("fhir", "198.18.99.9:1", "r", "uid:0", at(1)),
                         "service 'fhir' has no backend '198.18.99.9:1'", std::invalid_argument);
    CHECK_THROWS_AS(e.drain("fhir", kA, "r", "uid:0", at(5), at(4)), std::invalid_argument);
    CHECK_THROWS_AS(e.restore("fhir", "x", "r", "uid:0", at(1)), std::invalid_argument);
    ServiceSpec lonely;
    lonely.name = "lab";
    lonely.fallback = {};
    auto e2 = engineWith({lonely});
    CHECK_THROWS_WITH_AS(e2.reroute("lab", Pool::Fallback, "r", "uid:0", at(1)),
                         "service 'lab' has no fallback pool", std::invalid_argument);
    CHECK(e.snapshot() == before);
}

TEST_CASE("engine: a manual reroute pins the pool until undone or expired")
{
    auto e = engineWith({ServiceSpec{}});
    auto c = e.reroute("fhir", Pool::Fallback, "primary DC maintenance", "uid:1000", at(1));
    REQUIRE(c.size() == 1);
    CHECK(c[0].action == "reroute");
    CHECK(c[0].actor == "uid:1000");
    CHECK(c[0].before == "primary");
    CHECK(c[0].after == "fallback");
    CHECK(routeOf(e).active == Pool::Fallback);
    // The engine would go back (primary serving for far longer than the hold); the pin wins.
    CHECK(e.tick(at(1000)).empty());
    CHECK(routeOf(e).active == Pool::Fallback);
    CHECK(serviceOf(e.snapshot(), "fhir").reroute->actor == "uid:1000");

    c = e.reroute("fhir", std::nullopt, "maintenance done", "uid:1000", at(1001));
    REQUIRE(c.size() == 2);
    CHECK(c[0].action == "reroute");
    CHECK(c[0].after == "auto");
    CHECK(c[1].action == "primary");
    CHECK(c[1].actor == "engine");
    CHECK(routeOf(e).active == Pool::Primary);

    // With an end: the pin expires and the engine chooses again.
    e.reroute("fhir", Pool::Fallback, "drill", "uid:0", at(2000), at(2060));
    CHECK(e.tick(at(2059)).empty());
    c = e.tick(at(2060));
    REQUIRE(findChange(c, "reroute-expired") != nullptr);
    REQUIRE(findChange(c, "primary") != nullptr);
    CHECK(routeOf(e).active == Pool::Primary);
}

TEST_CASE("engine: a policy change keeps the state of the backends that remain")
{
    auto e = engineWith({ServiceSpec{}});
    failures(e, kA, 3, at(1));
    ServiceSpec changed;
    changed.primary = {kA, kC};
    auto c = e.applyPolicy(policyOf({changed}), at(2));
    CHECK(findChange(c, "remove", kB) != nullptr);
    CHECK(findChange(c, "add", kC) != nullptr);
    CHECK(findChange(c, "add", kA) == nullptr);
    CHECK(stateOf(e, kA) == BackendState::Ejected);
    CHECK(stateOf(e, kC) == BackendState::Healthy);

    ServiceSpec other;
    other.name = "lab";
    c = e.applyPolicy(policyOf({other}), at(3));
    CHECK(findChange(c, "remove") != nullptr);  // the fhir service
    CHECK(findChange(c, "add") != nullptr);     // the lab service
    CHECK(e.snapshot().services.size() == 1);
}

TEST_CASE("engine: snapshot and restoreFrom rebuild the same states after a restart")
{
    auto e = engineWith({ServiceSpec{}});
    e.onHardFailure("fhir", kA, FailureKind::Refused, at(1), true);
    e.drain("fhir", kB, "patching", "uid:0", at(2), at(3600));
    e.reroute("fhir", Pool::Fallback, "drill", "uid:0", at(3));
    const EngineSnapshot saved = e.snapshot();
    CHECK(statusOf(saved, "fhir", kA).state == BackendState::Ejected);
    CHECK(statusOf(saved, "fhir", kA).ejected_until == at(11));

    DecisionEngine restarted;
    restarted.applyPolicy(policyOf({ServiceSpec{}}), at(5));
    CHECK(restarted.restoreFrom(saved) == 3);
    CHECK(restarted.snapshot() == saved);
    CHECK(restarted.routes().front().active == Pool::Fallback);

    // And it carries on from there: A's ejection ends on time.
    auto c = restarted.tick(at(11));
    CHECK(findChange(c, "probe", kA) != nullptr);
    CHECK(restarted.probesDue(at(11)).size() == 1);

    // Entries for services or backends no longer in the policy are ignored.
    EngineSnapshot stale = saved;
    stale.services.front().name = "gone";
    DecisionEngine other;
    other.applyPolicy(policyOf({ServiceSpec{}}), at(5));
    CHECK(other.restoreFrom(stale) == 0);
}

TEST_CASE("restart: replaying the audit trail over a fresh engine gives back every state")
{
    const auto policy = policyOf({ServiceSpec{}});
    DecisionEngine before;
    std::vector<Change> changes = before.applyPolicy(policy, at(0));
    auto record = [&](std::vector<Change> more) { changes.insert(changes.end(), more.begin(), more.end()); };
    record(before.onHardFailure("fhir", kA, FailureKind::Refused, at(1), true));
    record(before.drain("fhir", kB, "kernel patching", "uid:1000", at(2), at(62)));
    record(before.tick(at(3)));
    record(before.reroute("fhir", Pool::Fallback, "change window", "uid:1000", at(4)));

    std::vector<shhim::v1::AuditRecord> trail;
    for (const auto& change : changes)
        trail.push_back(auditRecordOf(change, "v1"));

    DecisionEngine after;
    after.applyPolicy(policy, at(100));  // the restarted agent, much later
    EngineSnapshot rebuilt = after.snapshot();
    CHECK(replayAudit(rebuilt, trail) > 0);
    after.restoreFrom(rebuilt);

    const EngineSnapshot want = before.snapshot();
    const EngineSnapshot got = after.snapshot();
    REQUIRE(got.services.size() == 1);
    CHECK(got.services[0].active == want.services[0].active);
    CHECK(got.services[0].reroute.has_value() == want.services[0].reroute.has_value());
    REQUIRE(got.services[0].backends.size() == want.services[0].backends.size());
    for (std::size_t i = 0; i < want.services[0].backends.size(); ++i) {
        const BackendStatus& w = want.services[0].backends[i];
        const BackendStatus& g = got.services[0].backends[i];
        INFO("backend " << w.backend);
        CHECK(stateName(g.state) == stateName(w.state));
        CHECK(g.since == w.since);
        CHECK(g.reason == w.reason);
        CHECK(g.actor == w.actor);
        CHECK(g.drain == w.drain);
        CHECK(g.routable == w.routable);
        if (w.state == BackendState::Ejected) {
            CHECK(g.ejected_until == w.ejected_until);
            CHECK(g.ejections == w.ejections);
            CHECK(g.kernel_tripped == w.kernel_tripped);
        }
    }
}
