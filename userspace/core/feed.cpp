#include "core/feed.h"

#include <algorithm>
#include <stdexcept>

#include "core/address.h"
#include "core/telemetry.h"

namespace shhim::core {
namespace {

std::string endpointText(const shhim_endpoint& endpoint) { return backendLabel(endpoint); }

}  // namespace

shhim::v1::FeedEvent failureEntry(const shhim_event& event, std::int64_t mono_to_unix_ns,
                                  const BackendLabels& labels)
{
    shhim::v1::FeedEvent entry;
    *entry.mutable_failure() = toEvent(event, mono_to_unix_ns);
    const auto& failure = entry.failure();
    entry.set_time_unix_ns(failure.time_unix_ns());
    entry.set_type("failure");
    entry.set_service(labels.service);
    entry.set_priority_class(labels.priority_class);
    *entry.mutable_backend() = failure.server();
    std::string summary = failure.kind() + " " + endpointText(event.client) + " -> " + endpointText(event.server) +
                          " " + failure.protocol();
    if (!failure.detail_text().empty())
        summary += " (" + failure.detail_text() + ")";
    entry.set_summary(summary);
    return entry;
}

shhim::v1::FeedEvent policyEntry(const shhim::v1::PolicyNotice& notice, std::int64_t time_unix_ns)
{
    shhim::v1::FeedEvent entry;
    entry.set_time_unix_ns(time_unix_ns);
    entry.set_type("policy");
    *entry.mutable_policy() = notice;
    std::string summary = "policy " + notice.action() + " " + notice.file();
    if (!notice.name().empty())
        summary += " (" + notice.name() + ")";
    if (notice.action() == "rejected")
        summary += ": " + notice.error();
    else
        summary += ": " + std::to_string(notice.services()) + (notice.services() == 1 ? " service" : " services");
    entry.set_summary(summary);
    return entry;
}

namespace {

std::string percent(double share) { return std::to_string(static_cast<long long>(share * 100 + 0.5)) + "%"; }

std::string levelText(std::uint32_t level) { return level >= 255 ? "all" : std::to_string(level); }

}  // namespace

shhim::v1::StressNotice stressNotice(const StressChange& change)
{
    shhim::v1::StressNotice notice;
    notice.set_action(change.level_before == 0 ? "entered" : change.level == 0 ? "left" : "level");
    notice.set_mode(change.mode);
    notice.set_level_before(change.level_before);
    notice.set_level(change.level);
    notice.set_cause(change.cause);
    notice.set_actor(change.actor);
    std::string reason = change.cause + ": ";
    if (change.cause == "auto") {
        // Up: what still leaves passed enter; down: what is offered fell below exit.
        const bool up = change.level > change.level_before;
        notice.set_utilisation(up ? change.sent_utilisation : change.offered_utilisation);
        notice.set_threshold(up ? change.enter : change.exit);
        reason += up ? "egress at " + percent(change.sent_utilisation) + " of capacity >= enter_utilization " +
                           percent(change.enter)
                     : "offered load at " + percent(change.offered_utilisation) +
                           " of capacity < exit_utilization " + percent(change.exit);
    } else if (change.cause == "manual") {
        reason += "shhimctl stress " + change.mode + (change.actor.empty() ? "" : " by " + change.actor);
    } else {
        reason += "stress mode " + change.mode + " from the policy (stress.enabled)";
    }
    notice.set_reason(reason);
    return notice;
}

std::string stressSummary(const shhim::v1::StressNotice& notice)
{
    const std::string what = notice.action() == "level" ? "stress level changed" : "stress mode " + notice.action();
    return what + " (level " + levelText(notice.level_before()) + " -> " + levelText(notice.level()) +
           "): " + notice.reason();
}

shhim::v1::FeedEvent stressEntry(const shhim::v1::StressNotice& notice, std::int64_t time_unix_ns)
{
    shhim::v1::FeedEvent entry;
    entry.set_time_unix_ns(time_unix_ns);
    entry.set_type("stress");
    *entry.mutable_stress() = notice;
    entry.set_summary(stressSummary(notice));
    return entry;
}

FeedFilter FeedFilter::fromRequest(const shhim::v1::ObserveRequest& request)
{
    FeedFilter filter;
    for (const auto& type : request.types()) {
        if (std::find(kFeedTypes.begin(), kFeedTypes.end(), type) == kFeedTypes.end())
            throw std::invalid_argument("unknown event type '" + type + "' (failure, reroute, policy, stress)");
        filter.types_.insert(type);
    }
    filter.service_ = request.service();
    filter.priority_class_ = request.priority_class();
    filter.backend_ = BackendFilter::parse(request.backend());
    filter.since_unix_ns_ = request.since_unix_ns();
    return filter;
}

bool FeedFilter::matches(const shhim::v1::FeedEvent& entry) const
{
    if (!types_.empty() && !types_.contains(entry.type()))
        return false;
    if (entry.time_unix_ns() < since_unix_ns_)
        return false;
    if (!service_.empty() && entry.service() != service_)
        return false;
    if (!priority_class_.empty() && entry.priority_class() != priority_class_)
        return false;
    // An entry about no backend (a policy change) is not about the one asked for.
    if (!backend_.matchesAll() && (!entry.has_backend() || !backend_.matches(entry.backend())))
        return false;
    return true;
}

}  // namespace shhim::core
