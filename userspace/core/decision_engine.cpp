#include "core/decision_engine.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace shhim::core {
namespace {

constexpr const char* kEngine = "engine";
constexpr const char* kKernel = "kernel";
constexpr const char* kDrained = "drained";

double milliseconds(EngineDuration d) { return static_cast<double>(d.count()); }

std::string formatSeconds(EngineDuration d)
{
    const auto ms = d.count();
    if (ms % 1000 == 0)
        return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

bool isOut(const BackendStatus& b)
{
    return b.drain.has_value() || b.state == BackendState::Ejected || b.state == BackendState::Probing;
}

bool isRoutable(const BackendStatus& b) { return !isOut(b); }

// Routable and not merely kept in by the ejection cap.
bool isServing(const BackendStatus& b) { return isRoutable(b) && !b.held; }

// The label before/after of a backend Change: a drain hides the state.
std::string label(const BackendStatus& b) { return b.drain ? kDrained : std::string(stateName(b.state)); }

struct PoolCounts {
    std::size_t size = 0;
    std::size_t routable = 0;
    std::size_t serving = 0;
};

template <typename Backends>
PoolCounts countPool(const Backends& backends, Pool pool)
{
    PoolCounts c;
    for (const auto& b : backends) {
        if (b.status.pool != pool)
            continue;
        ++c.size;
        c.routable += isRoutable(b.status) ? 1 : 0;
        c.serving += isServing(b.status) ? 1 : 0;
    }
    return c;
}

Pool otherPool(Pool pool) { return pool == Pool::Primary ? Pool::Fallback : Pool::Primary; }

}  // namespace

// --- lookup --------------------------------------------------------------

DecisionEngine::ServiceRuntime* DecisionEngine::findService(const std::string& name)
{
    auto it = services_.find(name);
    return it == services_.end() ? nullptr : &it->second;
}

DecisionEngine::BackendRuntime* DecisionEngine::findBackend(ServiceRuntime& svc, const std::string& name)
{
    for (auto& b : svc.backends)
        if (b.status.backend == name)
            return &b;
    return nullptr;
}

DecisionEngine::ServiceRuntime& DecisionEngine::service(const std::string& name)
{
    if (auto* svc = findService(name))
        return *svc;
    throw std::invalid_argument("unknown service '" + name + "' (not in the applied policy)");
}

DecisionEngine::BackendRuntime& DecisionEngine::backend(ServiceRuntime& svc, const std::string& name)
{
    if (auto* b = findBackend(svc, name))
        return *b;
    throw std::invalid_argument("service '" + svc.status.name + "' has no backend '" + name + "'");
}

// --- state changes -------------------------------------------------------

void DecisionEngine::setState(ServiceRuntime& svc, BackendRuntime& b, BackendState to, EngineTime now,
                              std::string action, std::string actor, std::string reason,
                              std::vector<EvidenceItem> evidence, std::vector<Change>& out)
{
    Change change{now, svc.status.name, b.status.backend, label(b.status), "", std::move(action),
                  std::move(actor), std::move(reason), std::move(evidence)};
    BackendStatus& s = b.status;
    s.state = to;
    s.since = now;
    s.reason = change.reason;
    s.actor = change.actor;
    if (to == BackendState::Healthy) {
        s.held = false;
        s.kernel_tripped = false;
        b.consecutive_failures = 0;
        b.bad_windows = 0;
        b.healthy_since = now;
    }
    change.after = label(s);
    out.push_back(std::move(change));
}

bool DecisionEngine::capAllowsEjection(const ServiceRuntime& svc, const BackendRuntime& b) const
{
    std::size_t size = 0;
    std::size_t out_already = 0;
    for (const auto& other : svc.backends) {
        if (other.status.pool != b.status.pool)
            continue;
        ++size;
        if (&other != &b && isOut(other.status))
            ++out_already;
    }
    // The epsilon keeps 0.34 * 3 = 1.02 and 0.5 * 2 = 1 exact enough.
    const auto allowed = static_cast<std::size_t>(std::floor(svc.thresholds.max_ejected_fraction * size + 1e-9));
    return out_already + 1 <= allowed;
}

EngineDuration DecisionEngine::ejectionLength(const ServiceRuntime& svc, std::uint32_t ejections) const
{
    const std::uint32_t doublings = std::min(ejections > 0 ? ejections - 1 : 0, settings_.max_backoff_doublings);
    const EngineDuration base = svc.thresholds.ejection;
    const EngineDuration length = base * (std::int64_t{1} << doublings);
    return std::max(base, std::min(length, settings_.max_ejection));
}

void DecisionEngine::eject(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, const std::string& actor,
                           const std::string& reason, std::vector<EvidenceItem> evidence, std::vector<Change>& out)
{
    BackendStatus& s = b.status;
    s.ejections += 1;
    const EngineDuration length = ejectionLength(svc, s.ejections);
    s.ejected_until = now + length;
    s.kernel_tripped = actor == kKernel;
    s.held = false;
    s.probe_successes = 0;
    b.consecutive_failures = 0;
    b.bad_windows = 0;
    b.window = {};
    evidence.push_back({"ejection_ms", milliseconds(length)});
    evidence.push_back({"ejections", static_cast<double>(s.ejections)});
    setState(svc, b, BackendState::Ejected, now, "eject", actor,
             reason + "; out for " + formatSeconds(length) + " (ejection " + std::to_string(s.ejections) + ")",
             std::move(evidence), out);
}

void DecisionEngine::ejectOrHold(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, const std::string& reason,
                                 std::vector<EvidenceItem> evidence, std::vector<Change>& out)
{
    if (capAllowsEjection(svc, b)) {
        eject(svc, b, now, kEngine, reason, std::move(evidence), out);
        return;
    }
    if (b.status.held)
        return;  // already kept in for the same cause: one record, not one per failure
    const PoolCounts pool = countPool(svc.backends, b.status.pool);
    evidence.push_back({"max_ejected_fraction", svc.thresholds.max_ejected_fraction});
    evidence.push_back({"pool_size", static_cast<double>(pool.size)});
    evidence.push_back({"pool_out", static_cast<double>(pool.size - pool.routable)});
    b.status.held = true;
    setState(svc, b, BackendState::Suspect, now, "hold", kEngine,
             reason + "; kept in: ejecting it would exceed max_ejected_fraction of the " +
                 std::string(poolName(b.status.pool)) + " pool",
             std::move(evidence), out);
}

void DecisionEngine::refreshRoutable(ServiceRuntime& svc)
{
    for (auto& b : svc.backends)
        b.status.routable = isRoutable(b.status);
}

// --- pools ---------------------------------------------------------------

void DecisionEngine::updatePool(ServiceRuntime& svc, EngineTime now, std::vector<Change>& out)
{
    refreshRoutable(svc);
    ServiceStatus& s = svc.status;
    const PoolCounts primary = countPool(svc.backends, Pool::Primary);
    const PoolCounts fallback = countPool(svc.backends, Pool::Fallback);
    const double share = primary.size == 0 ? 0.0 : static_cast<double>(primary.serving) / primary.size;
    const bool primary_ok = share >= settings_.fallback_below;
    if (!primary_ok)
        s.primary_serving_since.reset();
    else if (!s.primary_serving_since)
        s.primary_serving_since = now;

    Pool desired = s.active;
    std::string reason;
    std::string actor = kEngine;
    if (s.reroute) {
        desired = s.reroute_to;  // kept while that pool has a routable backend
        actor = s.reroute->actor;
        reason = "manual reroute: " + s.reroute->reason;
    } else if (s.active == Pool::Primary) {
        if (!primary_ok && fallback.routable > 0) {
            desired = Pool::Fallback;
            reason = "primary pool serving " + std::to_string(primary.serving) + " of " +
                     std::to_string(primary.size) + ", below the fallback share";
        }
    } else if (fallback.routable == 0 && primary.routable > 0) {
        desired = Pool::Primary;
        reason = "fallback pool has no routable backend";
    } else if (s.primary_serving_since && now - *s.primary_serving_since >= svc.thresholds.fallback_hold.value_or(settings_.fallback_hold)) {
        desired = Pool::Primary;
        reason = "primary pool serving again for " + formatSeconds(svc.thresholds.fallback_hold.value_or(settings_.fallback_hold));
    }

    // A pool with nothing routable is never chosen while the other has something.
    const PoolCounts& desired_counts = desired == Pool::Primary ? primary : fallback;
    const PoolCounts& other_counts = desired == Pool::Primary ? fallback : primary;
    bool fail_open = false;
    if (desired_counts.routable == 0) {
        if (other_counts.routable > 0) {
            desired = otherPool(desired);
            reason = std::string(poolName(otherPool(desired))) + " pool has no routable backend";
            actor = kEngine;
        } else {
            desired = Pool::Primary;
            fail_open = true;
            reason = "no routable backend in any pool: fail open to the primary pool as configured";
            actor = kEngine;
        }
    }

    std::vector<EvidenceItem> evidence{
        {"primary_serving", static_cast<double>(primary.serving)},
        {"primary_size", static_cast<double>(primary.size)},
        {"fallback_routable", static_cast<double>(fallback.routable)},
        {"fallback_below", settings_.fallback_below},
        {"fallback_hold_ms", milliseconds(svc.thresholds.fallback_hold.value_or(settings_.fallback_hold))},
    };
    if (desired != s.active) {
        const std::string action = s.reroute && actor != kEngine ? "reroute"
                                   : desired == Pool::Fallback ? "fallback"
                                                               : "primary";
        out.push_back({now, s.name, "", std::string(poolName(s.active)), std::string(poolName(desired)), action,
                       actor, reason, evidence});
        s.active = desired;
        s.since = now;
        s.reason = reason;
    }
    if (fail_open != s.fail_open) {
        out.push_back({now, s.name, "", fail_open ? "primary" : "fail-open", fail_open ? "fail-open" : "primary",
                       fail_open ? "fail-open" : "fail-open-end", kEngine,
                       fail_open ? reason : "a backend is routable again", evidence});
        s.fail_open = fail_open;
        s.since = now;
        s.reason = out.back().reason;
    }
}

void DecisionEngine::updatePools(EngineTime now, std::vector<Change>& out)
{
    for (auto& [name, svc] : services_)
        updatePool(svc, now, out);
}

// --- policy --------------------------------------------------------------

std::vector<Change> DecisionEngine::applyPolicy(const v1::Policy& policy, EngineTime now)
{
    std::vector<Change> out;
    std::map<std::string, ServiceRuntime> next;
    for (const auto& spec : policy.services()) {
        ServiceRuntime svc;
        auto old = services_.find(spec.name());
        if (old != services_.end()) {
            svc.status = old->second.status;
        } else {
            svc.status.name = spec.name();
            svc.status.since = now;
            svc.status.reason = "added by policy";
            out.push_back({now, spec.name(), "", "", "primary", "add", kEngine, "service added by policy", {}});
        }
        svc.status.backends.clear();  // kept in `backends`
        svc.service_class = spec.class_();
        svc.thresholds = resolveThresholds(spec.thresholds(), spec.class_());
        svc.probe = probeSettings(spec);
        auto addBackend = [&](const std::string& address, Pool pool) {
            BackendRuntime* kept = old != services_.end() ? findBackend(old->second, address) : nullptr;
            if (kept) {
                svc.backends.push_back(*kept);
            } else {
                BackendRuntime b;
                b.status.backend = address;
                b.status.since = now;
                b.status.reason = "added by policy";
                b.status.actor = kEngine;
                b.healthy_since = now;
                out.push_back({now, spec.name(), address, "", "healthy", "add", kEngine, b.status.reason, {}});
                svc.backends.push_back(std::move(b));
            }
            svc.backends.back().status.pool = pool;
        };
        for (const auto& address : spec.backends().primary())
            addBackend(address, Pool::Primary);
        for (const auto& address : spec.backends().fallback())
            addBackend(address, Pool::Fallback);
        next.emplace(spec.name(), std::move(svc));
    }
    for (auto& [name, svc] : services_) {
        auto kept = next.find(name);
        for (auto& b : svc.backends) {
            if (kept != next.end() && findBackend(kept->second, b.status.backend))
                continue;
            out.push_back({now, name, b.status.backend, label(b.status), "", "remove", kEngine,
                           "backend removed by policy", {}});
        }
        if (kept == next.end())
            out.push_back({now, name, "", std::string(poolName(svc.status.active)), "", "remove", kEngine,
                           "service removed by policy", {}});
    }
    services_ = std::move(next);
    updatePools(now, out);
    return out;
}

// --- evidence ------------------------------------------------------------

std::vector<Change> DecisionEngine::onHardFailure(const std::string& service_name, const std::string& backend_name,
                                                  FailureKind kind, EngineTime now, bool kernel_tripped)
{
    std::vector<Change> out;
    ServiceRuntime* svc = findService(service_name);
    BackendRuntime* b = svc ? findBackend(*svc, backend_name) : nullptr;
    if (!b)
        return out;  // traffic outside the policy
    const std::string kind_name(failureKindName(kind));
    BackendStatus& s = b->status;
    if (kernel_tripped) {
        if (s.state == BackendState::Ejected) {
            s.kernel_tripped = true;  // the kernel agrees; nothing changes
            return out;
        }
        eject(*svc, *b, now, kKernel, "kernel circuit breaker tripped on " + kind_name,
              {{"consecutive_failures_threshold", static_cast<double>(svc->thresholds.consecutive_failures)}}, out);
    } else {
        if (s.state == BackendState::Ejected || s.state == BackendState::Probing)
            return out;  // late evidence from before the ejection
        b->consecutive_failures += 1;
        if (b->consecutive_failures < svc->thresholds.consecutive_failures)
            return out;
        ejectOrHold(*svc, *b, now,
                    std::to_string(b->consecutive_failures) + " hard failures in a row (last: " + kind_name + ")",
                    {{"consecutive_failures", static_cast<double>(b->consecutive_failures)},
                     {"consecutive_failures_threshold", static_cast<double>(svc->thresholds.consecutive_failures)}},
                    out);
    }
    updatePool(*svc, now, out);
    return out;
}

std::vector<Change> DecisionEngine::onWindow(EngineTime now, const std::vector<WindowSample>& samples)
{
    std::vector<Change> out;
    for (const auto& sample : samples) {
        ServiceRuntime* svc = findService(sample.service);
        BackendRuntime* b = svc ? findBackend(*svc, sample.backend) : nullptr;
        if (!b || b->status.state == BackendState::Ejected || b->status.state == BackendState::Probing)
            continue;
        if (sample.requests > sample.failures())
            b->consecutive_failures = 0;  // a success breaks the run of hard failures
        if (judgeScore(*svc, *b, now, sample, out))
            continue;
        Window& w = b->window;
        if (w.open && now - w.start > 2 * svc->thresholds.window)
            w = {};  // traffic stopped for a while: start afresh
        if (!w.open) {
            w.open = true;
            w.start = now;
        }
        w.requests += sample.requests;
        w.failures += sample.failures();
        w.client_errors += sample.client_errors;
        if (sample.p99_ms)
            w.worst_p99_ms = std::max(w.worst_p99_ms.value_or(0.0), *sample.p99_ms);
        if (now - w.start >= svc->thresholds.window)
            judgeWindow(*svc, *b, now, out);
    }
    updatePools(now, out);
    return out;
}

bool DecisionEngine::judgeScore(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, const WindowSample& sample,
                                std::vector<Change>& out)
{
    if (!sample.score)
        return false;
    if (*sample.score < settings_.anomaly_score) {
        b.anomalous_ticks = 0;
        return false;
    }
    b.anomalous_ticks += 1;
    if (b.anomalous_ticks < settings_.anomalous_ticks_to_eject)
        return false;
    std::string reason = "anomalous for " + std::to_string(b.anomalous_ticks) + " ticks in a row (score " +
                         std::to_string(*sample.score) + " >= " + std::to_string(settings_.anomaly_score) + ")";
    if (!sample.score_drivers.empty())
        reason += ": " + sample.score_drivers;
    std::vector<EvidenceItem> evidence{
        {"score", *sample.score},
        {"score_threshold", settings_.anomaly_score},
        {"anomalous_ticks", static_cast<double>(b.anomalous_ticks)},
    };
    b.anomalous_ticks = 0;
    ejectOrHold(svc, b, now, reason, std::move(evidence), out);
    return b.status.state == BackendState::Ejected;
}

void DecisionEngine::judgeWindow(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, std::vector<Change>& out)
{
    const Window w = b.window;
    b.window = {};
    b.window.open = true;  // the next window starts where this one ends
    b.window.start = now;
    const ServiceThresholds& t = svc.thresholds;
    if (w.requests < t.min_requests)
        return;  // too little traffic to judge
    const double rate = static_cast<double>(w.failures) / static_cast<double>(w.requests);
    std::vector<std::string> why;
    std::vector<EvidenceItem> evidence{
        {"requests", static_cast<double>(w.requests)},
        {"failures", static_cast<double>(w.failures)},
        {"client_errors", static_cast<double>(w.client_errors)},
        {"error_rate", rate},
        {"error_rate_threshold", t.error_rate},
        {"min_requests", static_cast<double>(t.min_requests)},
        {"window_ms", milliseconds(t.window)},
    };
    if (rate >= t.error_rate)
        why.push_back("error rate " + std::to_string(rate) + " >= " + std::to_string(t.error_rate));
    if (w.worst_p99_ms) {
        evidence.push_back({"p99_ms", *w.worst_p99_ms});
        if (t.p99_latency_ms) {
            evidence.push_back({"p99_threshold_ms", *t.p99_latency_ms});
            if (*w.worst_p99_ms > *t.p99_latency_ms)
                why.push_back("p99 " + std::to_string(*w.worst_p99_ms) + " ms > " +
                              std::to_string(*t.p99_latency_ms) + " ms");
        }
    }
    if (why.empty()) {
        b.bad_windows = 0;
        if (b.status.state == BackendState::Suspect)
            setState(svc, b, BackendState::Healthy, now, "recover", kEngine, "window within thresholds",
                     std::move(evidence), out);
        return;
    }
    std::string reason;
    for (const auto& part : why)
        reason += (reason.empty() ? "" : ", ") + part;
    b.bad_windows += 1;
    evidence.push_back({"bad_windows", static_cast<double>(b.bad_windows)});
    if (b.status.state == BackendState::Healthy)
        setState(svc, b, BackendState::Suspect, now, "suspect", kEngine, "degraded: " + reason, evidence, out);
    if (b.bad_windows >= settings_.bad_windows_to_eject)
        ejectOrHold(svc, b, now,
                    "degraded for " + std::to_string(b.bad_windows) + " windows in a row: " + reason,
                    std::move(evidence), out);
}

std::vector<Change> DecisionEngine::onProbe(const std::string& service_name, const std::string& backend_name, bool ok,
                                            EngineTime now)
{
    std::vector<Change> out;
    ServiceRuntime* svc = findService(service_name);
    BackendRuntime* b = svc ? findBackend(*svc, backend_name) : nullptr;
    if (!b || b->status.state != BackendState::Probing)
        return out;  // a probe answer that is no longer wanted
    BackendStatus& s = b->status;
    b->next_probe = now + svc->probe.interval;
    if (!ok) {
        eject(*svc, *b, now, kEngine,
              "probe failed after " + std::to_string(s.probe_successes) + " successful",
              {{"probe_successes", static_cast<double>(s.probe_successes)}}, out);
    } else {
        s.probe_successes += 1;
        if (s.probe_successes >= svc->probe.successes)
            setState(*svc, *b, BackendState::Healthy, now, "restore", kEngine,
                     std::to_string(s.probe_successes) + " probes in a row succeeded",
                     {{"probe_successes", static_cast<double>(s.probe_successes)},
                      {"probes_to_restore", static_cast<double>(svc->probe.successes)}},
                     out);
    }
    updatePool(*svc, now, out);
    return out;
}

// --- timers --------------------------------------------------------------

std::vector<Change> DecisionEngine::tick(EngineTime now)
{
    std::vector<Change> out;
    for (auto& [name, svc] : services_) {
        for (auto& b : svc.backends) {
            BackendStatus& s = b.status;
            if (s.drain && s.drain->until && now >= *s.drain->until) {
                const ManualHold drain = *s.drain;
                s.drain.reset();
                out.push_back({now, name, s.backend, kDrained, label(s), "undrain", kEngine,
                               "drain by " + drain.actor + " expired (" + drain.reason + ")", {}});
            }
            if (s.state == BackendState::Ejected && now >= s.ejected_until) {
                s.probe_successes = 0;
                b.next_probe = now;
                setState(svc, b, BackendState::Probing, now, "probe", kEngine,
                         "ejection ended; restored after " + std::to_string(svc.probe.successes) +
                             " successful probes",
                         {}, out);
            }
            if (s.state == BackendState::Healthy && s.ejections > 0 && now - b.healthy_since >= settings_.backoff_reset)
                s.ejections = 0;  // a quiet spell: the next ejection is short again
        }
        ServiceStatus& st = svc.status;
        if (st.reroute && st.reroute->until && now >= *st.reroute->until) {
            const ManualHold reroute = *st.reroute;
            st.reroute.reset();
            out.push_back({now, name, "", std::string(poolName(st.active)), "auto", "reroute-expired", kEngine,
                           "reroute by " + reroute.actor + " expired (" + reroute.reason + ")", {}});
        }
    }
    updatePools(now, out);
    return out;
}

std::vector<ProbeTarget> DecisionEngine::probesDue(EngineTime now)
{
    std::vector<ProbeTarget> due;
    for (auto& [name, svc] : services_)
        for (auto& b : svc.backends)
            if (b.status.state == BackendState::Probing && now >= b.next_probe) {
                due.push_back({name, b.status.backend});
                b.next_probe = now + svc.probe.interval;
            }
    return due;
}

// --- manual --------------------------------------------------------------

std::vector<Change> DecisionEngine::drain(const std::string& service_name, const std::string& backend_name,
                                          const std::string& reason, const std::string& actor, EngineTime now,
                                          std::optional<EngineTime> until)
{
    ServiceRuntime& svc = service(service_name);
    BackendRuntime& b = backend(svc, backend_name);
    if (until && *until <= now)
        throw std::invalid_argument("drain of " + service_name + " " + backend_name + ": the end is not in the future");
    std::vector<Change> out;
    std::vector<EvidenceItem> evidence;
    if (until)
        evidence.push_back({"for_ms", milliseconds(std::chrono::duration_cast<EngineDuration>(*until - now))});
    const std::string before = label(b.status);
    b.status.drain = ManualHold{actor, reason, now, until};
    out.push_back({now, service_name, backend_name, before, kDrained, "drain", actor, reason, std::move(evidence)});
    updatePool(svc, now, out);
    return out;
}

std::vector<Change> DecisionEngine::restore(const std::string& service_name, const std::string& backend_name,
                                            const std::string& reason, const std::string& actor, EngineTime now)
{
    ServiceRuntime& svc = service(service_name);
    BackendRuntime& b = backend(svc, backend_name);
    std::vector<Change> out;
    if (!b.status.drain && b.status.state == BackendState::Healthy)
        return out;  // nothing to undo
    const std::string before = label(b.status);
    b.status.drain.reset();
    setState(svc, b, BackendState::Healthy, now, "restore", actor, reason, {}, out);
    out.back().before = before;
    updatePool(svc, now, out);
    return out;
}

std::vector<Change> DecisionEngine::reroute(const std::string& service_name, std::optional<Pool> to,
                                            const std::string& reason, const std::string& actor, EngineTime now,
                                            std::optional<EngineTime> until)
{
    ServiceRuntime& svc = service(service_name);
    if (to == Pool::Fallback && countPool(svc.backends, Pool::Fallback).size == 0)
        throw std::invalid_argument("service '" + service_name + "' has no fallback pool");
    if (until && *until <= now)
        throw std::invalid_argument("reroute of " + service_name + ": the end is not in the future");
    std::vector<Change> out;
    ServiceStatus& s = svc.status;
    if (!to) {
        // Back to automatic: the record of the manual act first, then whatever the engine decides.
        out.push_back({now, service_name, "", std::string(poolName(s.active)), "auto", "reroute", actor, reason, {}});
        s.reroute.reset();
        updatePool(svc, now, out);
        return out;
    }
    const Pool before = s.active;
    s.reroute = ManualHold{actor, reason, now, until};
    s.reroute_to = *to;
    updatePool(svc, now, out);
    if (s.active == before) {
        // No pool change to record: record the pin itself (and why it did not move traffic).
        std::string why = reason;
        if (s.active != *to)
            why += " (the " + std::string(poolName(*to)) + " pool has no routable backend; not applied yet)";
        out.insert(out.begin(), Change{now, service_name, "", std::string(poolName(before)), std::string(poolName(*to)),
                                       "reroute", actor, why, {}});
    }
    return out;
}

// --- views ---------------------------------------------------------------

std::vector<WantedRoute> DecisionEngine::routes() const
{
    std::vector<WantedRoute> routes;
    for (const auto& [name, svc] : services_) {
        WantedRoute route{name, svc.status.active, svc.status.fail_open, {}};
        bool all_primary_drained = true;
        for (const auto& b : svc.backends)
            if (b.status.pool == Pool::Primary && !b.status.drain)
                all_primary_drained = false;
        for (const auto& b : svc.backends) {
            bool routable = isRoutable(b.status);
            if (svc.status.fail_open)
                routable = b.status.pool == Pool::Primary && (!b.status.drain || all_primary_drained);
            route.backends.push_back({b.status.backend, b.status.pool, routable});
        }
        routes.push_back(std::move(route));
    }
    return routes;
}

EngineSnapshot DecisionEngine::snapshot() const
{
    EngineSnapshot snap;
    for (const auto& [name, svc] : services_) {
        ServiceStatus status = svc.status;
        for (const auto& b : svc.backends)
            status.backends.push_back(b.status);
        snap.services.push_back(std::move(status));
    }
    return snap;
}

std::size_t DecisionEngine::restoreFrom(const EngineSnapshot& snap)
{
    std::size_t restored = 0;
    for (const auto& saved : snap.services) {
        ServiceRuntime* svc = findService(saved.name);
        if (!svc)
            continue;
        ServiceStatus& s = svc->status;
        s.active = saved.active;
        s.since = saved.since;
        s.reason = saved.reason;
        s.fail_open = saved.fail_open;
        s.reroute = saved.reroute;
        s.reroute_to = saved.reroute_to;
        s.primary_serving_since = saved.primary_serving_since;
        for (const auto& saved_backend : saved.backends) {
            BackendRuntime* b = findBackend(*svc, saved_backend.backend);
            if (!b)
                continue;
            const Pool pool = b->status.pool;  // the policy decides the pool
            b->status = saved_backend;
            b->status.pool = pool;
            b->consecutive_failures = 0;
            b->bad_windows = 0;
            b->window = {};
            b->healthy_since = saved_backend.since;
            b->next_probe = saved_backend.since;  // probing: due at once
            ++restored;
        }
        refreshRoutable(*svc);
    }
    return restored;
}

}  // namespace shhim::core
