#include "core/audit_replay.h"

#include <algorithm>

namespace shhim::core {
namespace {

EngineTime timeOf(const v1::AuditRecord& record)
{
    return EngineTime(std::chrono::duration_cast<EngineTime::duration>(std::chrono::nanoseconds(record.time_unix_ns())));
}

std::optional<double> evidence(const v1::AuditRecord& record, std::string_view name)
{
    for (const auto& item : record.evidence())
        if (item.name() == name)
            return item.value();
    return std::nullopt;
}

std::optional<EngineTime> holdEnd(const v1::AuditRecord& record)
{
    const auto for_ms = evidence(record, "for_ms");
    if (!for_ms)
        return std::nullopt;
    return timeOf(record) + std::chrono::milliseconds(static_cast<std::int64_t>(*for_ms));
}

bool replayBackend(BackendStatus& b, const v1::AuditRecord& r)
{
    const EngineTime when = timeOf(r);
    if (r.action() == "drain") {
        b.drain = ManualHold{r.actor(), r.reason(), when, holdEnd(r)};
        return true;
    }
    if (r.action() == "undrain" || r.action() == "restore")
        b.drain.reset();
    const auto state = stateFromName(r.after());
    if (!state)
        return r.action() == "undrain";
    b.state = *state;
    b.since = when;
    b.reason = r.reason();
    b.actor = r.actor();
    b.held = r.action() == "hold";
    if (*state == BackendState::Ejected) {
        b.kernel_tripped = r.actor() == "kernel";
        b.ejections = static_cast<std::uint32_t>(evidence(r, "ejections").value_or(b.ejections + 1));
        b.ejected_until =
            when + std::chrono::milliseconds(static_cast<std::int64_t>(evidence(r, "ejection_ms").value_or(0)));
    }
    if (*state == BackendState::Probing || *state == BackendState::Ejected)
        b.probe_successes = 0;
    return true;
}

bool replayService(ServiceStatus& s, const v1::AuditRecord& r)
{
    const EngineTime when = timeOf(r);
    if (r.action() == "reroute") {
        if (r.after() == "auto") {
            s.reroute.reset();
            return true;
        }
        if (const auto pool = poolFromName(r.after())) {
            s.reroute = ManualHold{r.actor(), r.reason(), when, holdEnd(r)};
            s.reroute_to = *pool;
        }
    }
    if (r.action() == "reroute-expired")
        s.reroute.reset();
    if (r.after() == "fail-open") {
        s.fail_open = true;
        return true;
    }
    if (const auto pool = poolFromName(r.after())) {
        s.active = *pool;
        s.since = when;
        s.reason = r.reason();
        s.fail_open = false;
        return true;
    }
    return false;
}

}  // namespace

std::size_t replayAudit(EngineSnapshot& snapshot, const std::vector<v1::AuditRecord>& trail)
{
    std::size_t applied = 0;
    for (const auto& record : trail) {
        auto service = std::find_if(snapshot.services.begin(), snapshot.services.end(),
                                    [&](const ServiceStatus& s) { return s.name == record.service(); });
        if (service == snapshot.services.end())
            continue;
        if (record.backend().empty()) {
            applied += replayService(*service, record) ? 1 : 0;
            continue;
        }
        auto backend = std::find_if(service->backends.begin(), service->backends.end(),
                                    [&](const BackendStatus& b) { return b.backend == record.backend(); });
        if (backend != service->backends.end())
            applied += replayBackend(*backend, record) ? 1 : 0;
    }
    return applied;
}

}  // namespace shhim::core
