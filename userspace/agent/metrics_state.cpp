#include "agent/metrics_state.h"

#include <time.h>

#include <cstring>

#include "agent/policy.h"
#include "core/feed.h"
#include "core/telemetry.h"
#include "datapath/maps.h"

namespace shhim::agent {
namespace {

std::int64_t clockNs(clockid_t clock)
{
    timespec ts = {};
    ::clock_gettime(clock, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

std::int64_t unixNowNs() { return clockNs(CLOCK_REALTIME); }

std::int64_t monoToUnixNowOffsetNs()
{
    const std::int64_t mono = clockNs(CLOCK_MONOTONIC);
    return core::monoToUnixOffsetNs(clockNs(CLOCK_REALTIME), mono);
}

void ServiceDirectory::replace(std::vector<ServiceBackends> services)
{
    std::map<Key, core::BackendLabels> by_backend;
    for (const auto& service : services) {
        for (const auto& endpoint : service.backends) {
            Key key;
            std::memcpy(key.data(), &endpoint, sizeof(endpoint));
            // A backend shared by two services keeps the first one's labels.
            by_backend.try_emplace(key, core::BackendLabels{service.name, service.priority_class});
        }
    }
    std::unique_lock lock(mutex_);
    services_ = std::move(services);
    by_backend_ = std::move(by_backend);
}

core::BackendLabels ServiceDirectory::labelsOf(const shhim_endpoint& endpoint) const
{
    Key key;
    std::memcpy(key.data(), &endpoint, sizeof(endpoint));
    std::shared_lock lock(mutex_);
    const auto it = by_backend_.find(key);
    return it == by_backend_.end() ? core::BackendLabels{} : it->second;
}

std::vector<ServiceBackends> ServiceDirectory::services() const
{
    std::shared_lock lock(mutex_);
    return services_;
}

void BackendHistory::record(std::int64_t second, const std::vector<core::BackendSnapshot>& table)
{
    std::lock_guard lock(mutex_);
    store_.record(second, table);
}

shhim::v1::History BackendHistory::history(std::int64_t after_second, const core::BackendFilter& filter) const
{
    std::lock_guard lock(mutex_);
    return store_.history(after_second, filter);
}

void publishFailure(Observability& observability, const shhim_event& event)
{
    observability.feed.publish(
        core::failureEntry(event, monoToUnixNowOffsetNs(), observability.services.labelsOf(event.server)));
}

void notePolicy(Observability& observability, const std::string& action, const std::string& file,
                const PolicyPtr& policy, const std::string& error)
{
    shhim::v1::PolicyNotice notice;
    notice.set_action(action);
    notice.set_file(file);
    notice.set_error(error);
    if (policy) {
        observability.services.replace(servicesOf(*policy));
        notice.set_name(policy->validated.policy.name());
        notice.set_services(static_cast<std::uint32_t>(policy->validated.policy.services_size()));
    }
    observability.feed.publish(core::policyEntry(notice, unixNowNs()));
}

void noteStress(Observability& observability, const shhim::v1::StressNotice& notice)
{
    observability.feed.publish(core::stressEntry(notice, unixNowNs()));
}

void HistoryRecorder::tick(const std::vector<datapath::BackendRecord>& backends, Observability& observability)
{
    const std::int64_t second = unixNowNs() / 1'000'000'000;
    if (last_second_ && second <= *last_second_)
        return;
    last_second_ = second;
    std::vector<core::BackendSnapshot> table;
    for (const auto& record : backends)
        table.push_back({record.endpoint, record.backend, observability.services.labelsOf(record.endpoint)});
    observability.history.record(second, table);
}

}  // namespace shhim::agent
