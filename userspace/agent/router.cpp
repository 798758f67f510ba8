#include "agent/router.h"

#include <time.h>

#include <algorithm>
#include <stdexcept>

#include "core/audit.h"
#include "core/audit_replay.h"
#include "core/backend_window.h"
#include "core/telemetry_record.h"
#include "core/tick_judge.h"

namespace shhim::agent {
namespace {

using core::FailureKind;

std::int64_t unixNs(core::EngineTime time)
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

std::int64_t unixMs(core::EngineTime time)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

std::int64_t monotonicNs()
{
    timespec ts = {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One key for an endpoint however it was reached (policy text or kernel record).
std::string endpointKey(const core::ServiceEndpoint& e)
{
    std::string key(reinterpret_cast<const char*>(e.address.data()), e.address.size());
    key += static_cast<char>(e.family);
    key += static_cast<char>(e.port >> 8);
    key += static_cast<char>(e.port & 0xff);
    return key;
}

std::string endpointKey(const shhim_endpoint& e) { return endpointKey(datapath::fromKernelEndpoint(e)); }

// Which kernel events are hard evidence about the server, and of what kind.
std::optional<FailureKind> failureKind(std::uint32_t kind, std::uint32_t detail, std::uint8_t family)
{
    switch (kind) {
    case SHHIM_EV_REFUSED: return FailureKind::Refused;
    case SHHIM_EV_SYN_TIMEOUT: return FailureKind::SynTimeout;
    case SHHIM_EV_RESET: return FailureKind::Reset;
    case SHHIM_EV_HTTP_5XX: return FailureKind::ServerError;
    case SHHIM_EV_MLLP_NACK: return FailureKind::Nack;
    case SHHIM_EV_ICMP_ERROR: {
        // Destination unreachable only (ICMP type 3, ICMPv6 type 1); not time exceeded.
        const std::uint32_t type = detail >> 8;
        const bool unreachable = family == SHHIM_FAMILY_IPV6 ? type == 1 : type == 3;
        return unreachable ? std::optional(FailureKind::IcmpUnreachable) : std::nullopt;
    }
    default: return std::nullopt;
    }
}

const char* kernelStateName(std::uint32_t state)
{
    switch (state) {
    case SHHIM_BACKEND_UP: return "up";
    case SHHIM_BACKEND_DOWN_KERNEL: return "down-kernel";
    case SHHIM_BACKEND_DOWN_AGENT: return "down-agent";
    default: return "unknown";
    }
}

v1::Endpoint apiEndpoint(const core::SocketAddress& address)
{
    v1::Endpoint endpoint;
    endpoint.set_address(core::formatIp(address.ip));
    endpoint.set_port(address.port);
    return endpoint;
}

std::string protocolName(v1::AppProtocol protocol)
{
    switch (protocol) {
    case v1::APP_PROTOCOL_HTTP: return "http";
    case v1::APP_PROTOCOL_MLLP: return "mllp";
    default: return "tcp";
    }
}

std::string summaryOf(const v1::AuditRecord& r)
{
    std::string text = r.action() + " " + r.service();
    if (!r.backend().empty())
        text += " " + r.backend();
    text += ": " + (r.before().empty() ? std::string("-") : r.before()) + " -> " +
            (r.after().empty() ? std::string("-") : r.after()) + " by " + r.actor();
    if (!r.reason().empty())
        text += " (" + r.reason() + ")";
    return text;
}

}  // namespace

Router::Router(RouteControl& routes, AuditLog& audit, Observability& observability, ProbeWorker& probes, Log log,
               bool anomaly_acts, std::optional<core::AnomalyModel> model)
    : routes_(routes), audit_(audit), observability_(observability), probes_(probes), log_(std::move(log)),
      anomaly_(core::AnomalySettings{}, std::move(model)), anomaly_acts_(anomaly_acts)
{
    for (const auto& repair : audit_.repairs())
        log_("audit trail " + audit_.path() + ": " + repair);
}

void Router::rebuildRefs(const v1::Policy& policy, const core::RouteTables& tables)
{
    refs_.clear();
    pairs_of_id_.clear();
    std::map<std::string, std::uint32_t> id_of_endpoint;
    for (const auto& backend : tables.backends)
        id_of_endpoint[endpointKey(backend.endpoint)] = backend.id;
    for (const auto& service : policy.services()) {
        const core::ProbeSettings probe = core::probeSettings(service);
        auto add = [&](const std::string& text) {
            const std::string endpoint = endpointKey(core::routeEndpoint(text));
            const auto id = id_of_endpoint.find(endpoint);
            if (id == id_of_endpoint.end())
                return;  // compileRouteTables names every policy backend; defensive only
            const Pair pair{service.name(), text};
            refs_[pair] = BackendRef{id->second, endpoint, *core::parseSocketAddress(text).value,
                                     service.protocol(), service.class_(), probe};
            pairs_of_id_[id->second].push_back(pair);
        };
        for (const auto& text : service.backends().primary())
            add(text);
        for (const auto& text : service.backends().fallback())
            add(text);
    }
}

void Router::applyPolicy(const PolicyPtr& policy, const core::RouteTables& tables, bool agent_start)
{
    std::lock_guard lock(mutex_);
    policy_ = policy;
    rebuildRefs(policy->validated.policy, tables);
    anomaly_.setClassSensitivity(core::classSensitivity(policy->validated.policy));
    std::vector<core::Change> changes = engine_.applyPolicy(policy->validated.policy, now());
    if (agent_start) {
        // Every pair is "added" to a fresh engine; the trail already knows them.
        restoreAfterRestart();
    } else {
        commit(changes);
    }
    wanted_down_.clear();
    enforce(true);
}

void Router::restoreAfterRestart()
{
    const std::vector<v1::AuditRecord> trail = audit_.all();
    core::EngineSnapshot snapshot = engine_.snapshot();
    const std::size_t replayed = core::replayAudit(snapshot, trail);
    engine_.restoreFrom(snapshot);
    if (!trail.empty())
        log_("routing states rebuilt from " + std::to_string(trail.size()) + " audit records (" +
             std::to_string(replayed) + " applied) in " + audit_.path());

    // A trip the kernel made while no agent ran (or before the dead agent recorded it).
    std::vector<core::Change> changes;
    const core::EngineSnapshot restored = engine_.snapshot();
    for (const auto& health : routes_.maps().backends()) {
        if (health.kernel.state != SHHIM_BACKEND_DOWN_KERNEL)
            continue;
        for (const auto& [service, backend] : pairs_of_id_[health.id]) {
            for (const auto& s : restored.services)
                for (const auto& b : s.backends)
                    if (s.name == service && b.backend == backend && b.state != core::BackendState::Ejected) {
                        const auto kind =
                            failureKind(health.kernel.trip_kind, 0, health.kernel.endpoint.family);
                        auto more = engine_.onHardFailure(service, backend, kind.value_or(FailureKind::Refused),
                                                          now(), true);
                        changes.insert(changes.end(), more.begin(), more.end());
                    }
        }
    }
    commit(changes);
}

std::vector<v1::AuditRecord> Router::commit(const std::vector<core::Change>& changes)
{
    std::vector<v1::AuditRecord> written;
    if (changes.empty())
        return written;
    enforce(false);  // the kernel first: see the top of router.h
    const std::string version = policy_ ? policy_->validated.version : std::string();
    for (const auto& change : changes) {
        v1::AuditRecord record = core::auditRecordOf(change, version);
        try {
            record = audit_.append(std::move(record));
        } catch (const std::exception& e) {
            // The change stands (the kernel must follow the engine); the gap is loud.
            log_("AUDIT WRITE FAILED, change not recorded: " + std::string(e.what()));
        }
        v1::FeedEvent entry;
        entry.set_time_unix_ns(record.time_unix_ns());
        entry.set_type("reroute");
        entry.set_service(record.service());
        for (const auto& service : policy_->validated.policy.services())
            if (service.name() == record.service())
                entry.set_priority_class(service.class_());
        if (const auto ref = refs_.find({record.service(), record.backend()}); ref != refs_.end())
            *entry.mutable_backend() = apiEndpoint(ref->second.address);
        entry.set_summary(summaryOf(record));
        *entry.mutable_reroute() = record;
        observability_.feed.publish(std::move(entry));
        log_("routing: " + summaryOf(record));
        written.push_back(std::move(record));
    }
    return written;
}

void Router::enforce(bool reconcile)
{
    std::map<std::uint32_t, bool> wanted;
    for (const auto& route : engine_.routes())
        for (const auto& backend : route.backends) {
            const auto ref = refs_.find({route.service, backend.backend});
            if (ref == refs_.end())
                continue;
            bool& down = wanted.try_emplace(ref->second.id, false).first->second;
            down = down || !backend.routable;
        }
    for (const auto& [id, down] : wanted) {
        const auto last = wanted_down_.find(id);
        if (!reconcile && last != wanted_down_.end() && last->second == down)
            continue;
        try {
            // One lookup per endpoint written: this is the userspace path's critical step.
            const std::uint32_t current = routes_.maps().health(id).state;
            if (down && current == SHHIM_BACKEND_UP)
                routes_.maps().setBackendState(id, SHHIM_BACKEND_DOWN_AGENT);
            else if (!down && current != SHHIM_BACKEND_UP)
                routes_.maps().setBackendState(id, SHHIM_BACKEND_UP);
            wanted_down_[id] = down;
        } catch (const std::exception& e) {
            log_("routing: cannot set backend id " + std::to_string(id) + (down ? " down" : " up") +
                 " in the kernel: " + e.what() + " (retried next tick)");
            wanted_down_.erase(id);
        }
    }
}

void Router::onEvent(const shhim_event& event)
{
    const bool tripped = event.kind == SHHIM_EV_BACKEND_DOWN;
    const auto kind = tripped ? failureKind(event.detail, 0, event.server.family)
                              : failureKind(event.kind, event.detail, event.server.family);
    if (!kind && !tripped)
        return;
    std::lock_guard lock(mutex_);
    if (!policy_)
        return;
    const std::string key = endpointKey(event.server);
    std::vector<core::Change> changes;
    for (const auto& [pair, ref] : refs_) {
        if (ref.endpoint != key)
            continue;
        auto more = engine_.onHardFailure(pair.first, pair.second, kind.value_or(FailureKind::Refused), now(), tripped);
        changes.insert(changes.end(), more.begin(), more.end());
    }
    if (changes.empty())
        return;
    const bool ejected_here = !tripped && std::any_of(changes.begin(), changes.end(), [](const core::Change& c) {
        return c.action == "eject";
    });
    if (ejected_here) {
        // The userspace path, measured from the kernel's timestamp of the evidence.
        enforce(false);
        log_("routing: userspace path took " +
             std::to_string((monotonicNs() - static_cast<std::int64_t>(event.ts_ns)) / 1000) +
             " us from the kernel's evidence to the kernel table");
    }
    commit(changes);
}

void Router::onTick(const std::vector<datapath::BackendRecord>& backends)
{
    std::lock_guard lock(mutex_);
    if (!policy_)
        return;
    std::map<std::string, const shhim_backend*> by_endpoint;
    for (const auto& record : backends)
        by_endpoint[endpointKey(record.endpoint)] = &record.backend;
    const auto tick_time = std::chrono::steady_clock::now();
    const double seconds =
        previous_tick_ ? std::chrono::duration<double>(tick_time - *previous_tick_).count() : 0.0;
    previous_tick_ = tick_time;
    std::vector<core::BackendTick> ticks;
    std::map<std::uint32_t, shhim_backend> counts;
    for (const auto& [pair, ref] : refs_) {
        const auto found = by_endpoint.find(ref.endpoint);
        if (found == by_endpoint.end())
            continue;
        counts[ref.id] = *found->second;
        const auto previous = previous_counts_.find(ref.id);
        if (previous == previous_counts_.end() || seconds <= 0)
            continue;  // first sight: no increase to judge yet
        ticks.push_back({{pair.first, pair.second, ref.service_class},
                         core::tickCounts(previous->second, *found->second, ref.protocol, seconds)});
    }
    previous_counts_ = std::move(counts);
    const core::EngineTime time = now();
    if (record_ && !ticks.empty())
        record_(core::recordedTick(unixMs(time), seconds, ticks));
    const core::TickJudgement judged = core::judgeTick(anomaly_, engine_, time, ticks, anomaly_acts_);
    commit(judged.changes);
    for (const auto& due : engine_.probesDue(time)) {
        const auto ref = refs_.find({due.service, due.backend});
        if (ref == refs_.end())
            continue;
        probes_.submit(ProbeTarget{due.service, due.backend, ref->second.address, ref->second.protocol, ref->second.probe});
    }
}

void Router::onProbes(const std::vector<ProbeOutcome>& outcomes)
{
    std::lock_guard lock(mutex_);
    std::vector<core::Change> changes;
    for (const auto& outcome : outcomes) {
        auto more = engine_.onProbe(outcome.service, outcome.backend, outcome.passed, now());
        if (!outcome.passed)
            log_("probe of " + outcome.service + " " + outcome.backend + " failed: " + outcome.detail);
        changes.insert(changes.end(), more.begin(), more.end());
    }
    commit(changes);
}

std::vector<v1::AuditRecord> Router::drain(const std::string& service, const std::string& backend,
                                           const std::string& reason, const std::string& actor,
                                           std::optional<std::chrono::milliseconds> duration)
{
    std::lock_guard lock(mutex_);
    const core::EngineTime time = now();
    std::optional<core::EngineTime> until;
    if (duration)
        until = time + *duration;
    return commit(engine_.drain(service, backend, reason, actor, time, until));
}

std::vector<v1::AuditRecord> Router::restore(const std::string& service, const std::string& backend,
                                             const std::string& reason, const std::string& actor)
{
    std::lock_guard lock(mutex_);
    return commit(engine_.restore(service, backend, reason, actor, now()));
}

std::vector<v1::AuditRecord> Router::reroute(const std::string& service, const std::string& to,
                                             const std::string& reason, const std::string& actor,
                                             std::optional<std::chrono::milliseconds> duration)
{
    std::optional<core::Pool> pool;
    if (to != "auto") {
        pool = core::poolFromName(to);
        if (!pool)
            throw std::invalid_argument("--to " + to + ": expected primary, fallback or auto");
    }
    std::lock_guard lock(mutex_);
    const core::EngineTime time = now();
    std::optional<core::EngineTime> until;
    if (duration)
        until = time + *duration;
    return commit(engine_.reroute(service, pool, reason, actor, time, until));
}

v1::AnomalyExplanation Router::explain(const std::string& service, const std::string& backend) const
{
    std::lock_guard lock(mutex_);
    const auto found = anomaly_.explain(service, backend);
    if (!found)
        throw std::invalid_argument("no anomaly score yet for " + service + " " + backend +
                                    " (a backend of the applied policy is scored once it has traffic)");
    v1::AnomalyExplanation out;
    out.set_service(found->service);
    out.set_backend(found->backend);
    out.set_score(found->result.score);
    out.set_sensitivity(found->result.sensitivity);
    out.set_probability(found->result.probability);
    out.set_mahalanobis_score(found->result.mahalanobis_score);
    out.set_iforest_score(found->result.iforest_score);
    out.set_trend_score(found->result.trend_score);
    for (const auto& driver : found->drivers) {
        v1::FeatureDriverView& view = *out.add_drivers();
        view.set_feature(std::string(core::featureNames()[static_cast<std::size_t>(core::index(driver.feature))]));
        view.set_value(driver.value);
        view.set_baseline(driver.baseline);
        view.set_share(driver.share);
        view.set_text(driver.text);
    }
    out.set_rate(found->rate);
    out.set_trend(found->trend);
    out.set_baseline_samples(found->baseline_weight);
    out.set_baseline_version(found->baseline_version);
    out.set_iforest_version(found->iforest_version);
    out.set_acting(anomaly_acts_);
    return out;
}

v1::ServiceList Router::services(const std::string& only) const
{
    std::lock_guard lock(mutex_);
    v1::ServiceList list;
    if (!policy_)
        return list;
    list.set_policy_version(policy_->validated.version);
    std::map<std::uint32_t, shhim_backend_health> health;
    for (const auto& h : routes_.maps().backends())
        health[h.id] = h.kernel;
    std::map<std::string, shhim_route_counter> counters;
    for (const auto& s : routes_.maps().services())
        counters[endpointKey(s.endpoint)] = s.counters;

    const core::EngineSnapshot snapshot = engine_.snapshot();
    for (const auto& spec : policy_->validated.policy.services()) {
        if (!only.empty() && spec.name() != only)
            continue;
        const auto status = std::find_if(snapshot.services.begin(), snapshot.services.end(),
                                         [&](const core::ServiceStatus& s) { return s.name == spec.name(); });
        if (status == snapshot.services.end())
            continue;
        v1::RoutedService& out = *list.add_services();
        out.set_name(spec.name());
        out.set_address(spec.address());
        out.set_protocol(protocolName(spec.protocol()));
        out.set_class_name(spec.class_());
        out.set_active_pool(std::string(core::poolName(status->active)));
        out.set_since_unix_ns(unixNs(status->since));
        out.set_reason(status->reason);
        out.set_fail_open(status->fail_open);
        if (status->reroute) {
            out.set_pinned(true);
            out.set_pinned_by(status->reroute->actor);
            if (status->reroute->until)
                out.set_pinned_until_unix_ns(unixNs(*status->reroute->until));
        }
        if (const auto c = counters.find(endpointKey(core::routeEndpoint(spec.address()))); c != counters.end()) {
            out.set_connects_steered(c->second.steered);
            out.set_connects_no_backend(c->second.no_backend);
        }
        for (const auto& b : status->backends) {
            v1::RoutedBackend& rb = *out.add_backends();
            rb.set_backend(b.backend);
            rb.set_pool(std::string(core::poolName(b.pool)));
            rb.set_state(std::string(core::stateName(b.state)));
            rb.set_since_unix_ns(unixNs(b.since));
            rb.set_reason(b.reason);
            rb.set_actor(b.actor);
            rb.set_routable(b.routable);
            rb.set_held(b.held);
            rb.set_ejections(b.ejections);
            if (b.state == core::BackendState::Ejected)
                rb.set_ejected_until_unix_ns(unixNs(b.ejected_until));
            rb.set_probe_successes(b.probe_successes);
            if (b.drain) {
                rb.set_drained(true);
                rb.set_drain_reason(b.drain->reason);
                rb.set_drained_by(b.drain->actor);
                if (b.drain->until)
                    rb.set_drained_until_unix_ns(unixNs(*b.drain->until));
            }
            if (const auto ref = refs_.find({spec.name(), b.backend}); ref != refs_.end()) {
                if (const auto h = health.find(ref->second.id); h != health.end()) {
                    rb.set_kernel_state(kernelStateName(h->second.state));
                    rb.set_kernel_trips(h->second.trips);
                }
            }
        }
    }
    return list;
}

}  // namespace shhim::agent
