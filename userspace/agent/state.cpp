#include "agent/state.h"

namespace shhim::agent {

void AgentState::addEvent(const shhim_event& event)
{
    std::lock_guard lock(mutex_);
    events_.push_back(event);
    if (events_.size() > kKeptEvents)
        events_.pop_front();
    ++events_received_;
}

std::vector<shhim_event> AgentState::newestEvents(std::uint32_t last) const
{
    std::lock_guard lock(mutex_);
    const std::size_t count = (last == 0 || last > events_.size()) ? events_.size() : last;
    return {events_.end() - static_cast<std::ptrdiff_t>(count), events_.end()};
}

std::uint64_t AgentState::eventsReceived() const
{
    std::lock_guard lock(mutex_);
    return events_received_;
}

void AgentState::setRates(std::map<EndpointKey, core::BackendRates> rates)
{
    std::lock_guard lock(mutex_);
    rates_ = std::move(rates);
}

std::optional<core::BackendRates> AgentState::ratesOf(const shhim_endpoint& endpoint) const
{
    std::lock_guard lock(mutex_);
    const auto it = rates_.find(endpointKey(endpoint));
    if (it == rates_.end())
        return std::nullopt;
    return it->second;
}

void AgentState::setPolicy(PolicyPtr policy)
{
    std::lock_guard lock(mutex_);
    policy_ = std::move(policy);
}

PolicyPtr AgentState::appliedPolicy() const
{
    std::lock_guard lock(mutex_);
    return policy_;
}

std::optional<PolicySummary> AgentState::policy() const
{
    const PolicyPtr applied = appliedPolicy();
    if (!applied)
        return std::nullopt;
    return summaryOf(*applied);
}

}  // namespace shhim::agent
