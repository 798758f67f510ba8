#include "agent/http_views.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "agent/audit_log.h"
#include "agent/metrics_interfaces.h"
#include "agent/metrics_state.h"
#include "agent/router.h"
#include "core/metrics.h"
#include "core/routing_view.h"
#include "core/telemetry.h"

namespace shhim::agent {
namespace {

constexpr std::uint32_t kDefaultTopFlows = 10;
constexpr std::uint32_t kMaxTopFlows = 100;
constexpr std::size_t kMaxFeedEntriesPerAnswer = 200;

double startTimeUnixSeconds(const ApiContext& context)
{
    const double uptime =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - context.started).count();
    return static_cast<double>(unixNowNs()) / 1e9 - uptime;
}

// Interfaces with a packet hook (XDP or TC), each once.
std::vector<std::string> watchedInterfaces(const std::vector<datapath::Attachment>& attachments)
{
    std::vector<std::string> names;
    for (const auto& a : attachments)
        if ((a.hook == "xdp" || a.hook == "tc-egress") &&
            std::find(names.begin(), names.end(), a.target) == names.end())
            names.push_back(a.target);
    return names;
}

}  // namespace

shhim::v1::Status statusView(const ApiContext& context)
{
    shhim::v1::Status out;
    const auto& datapath = context.datapath;
    out.set_version(context.version);
    out.set_build_id(datapath::formatBuildId(datapath.buildId()));
    out.set_uptime_seconds(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - context.started).count());
    for (const auto& a : datapath.attachments()) {
        auto* attachment = out.add_attachments();
        attachment->set_hook(a.hook);
        attachment->set_target(a.target);
        attachment->set_program(a.program);
        attachment->set_program_id(a.program_id);
        attachment->set_mode(a.mode);
    }
    for (const auto& fill : datapath.maps().fills()) {
        auto* map = out.add_maps();
        map->set_name(fill.name);
        map->set_entries(fill.entries);
        map->set_max_entries(fill.max_entries);
    }
    const datapath::Counters counters = datapath.maps().counters();
    std::uint64_t parse_errors = 0;
    for (std::uint32_t id = 0; id < counters.size(); ++id) {
        auto* counter = out.add_counters();
        counter->set_name(std::string(core::counterName(id)));
        counter->set_value(counters[id]);
        if (core::isParseErrorCounter(id))
            parse_errors += counters[id];
    }
    out.set_events_received(context.state.eventsReceived());
    out.set_events_lost(counters[SHHIM_CTR_EVENTS_LOST]);
    out.set_parse_errors(parse_errors);
    out.set_reused_pinned_state(datapath.reusedPinnedState());
    if (const PolicyPtr policy = context.state.appliedPolicy()) {
        out.set_policy_file(policy->file);
        out.set_policy_version(policy->validated.version);
    }
    return out;
}

shhim::v1::ServiceList servicesView(const ApiContext& context, const std::string& service)
{
    return context.router != nullptr ? context.router->services(service) : shhim::v1::ServiceList{};
}

std::string metricsExposition(const ApiContext& context)
{
    const auto& datapath = context.datapath;
    const auto& observability = context.state.observability();

    core::MetricsInput in;
    in.version = context.version;
    in.build_id = datapath::formatBuildId(datapath.buildId());
    in.start_time_unix_seconds = startTimeUnixSeconds(context);
    if (const auto policy = context.state.policy())
        in.policy_services = policy->service_names.size();
    const datapath::Counters counters = datapath.maps().counters();
    std::copy(counters.begin(), counters.end(), in.counters.begin());
    in.events_by_kind = observability.feed.failuresByKind();
    for (const auto& fill : datapath.maps().fills())
        in.maps.push_back({fill.name, fill.entries, fill.max_entries});
    const auto attachments = datapath.attachments();
    for (const auto& a : attachments)
        in.attachments.push_back({a.hook, a.target});
    try {
        in.interfaces = readInterfaceCounters(watchedInterfaces(attachments));
    } catch (const std::exception& e) {
        // The rest of the scrape is still worth answering.
        spdlog::warn("{}", e.what());
    }
    for (const auto& record : datapath.maps().backends()) {
        core::BackendMetrics b;
        b.endpoint = record.endpoint;
        b.backend = record.backend;
        b.labels = observability.services.labelsOf(record.endpoint);
        in.backends.push_back(std::move(b));
    }
    if (context.router != nullptr) {
        in.routing = context.router->services("");
        in.routing_changes = observability.feed.routingChanges();
    }
    return core::renderMetrics(in);
}

shhim::v1::Dashboard dashboardView(const ApiContext& context, const shhim::v1::DashboardRequest& request)
{
    const auto& datapath = context.datapath;
    const auto& observability = context.state.observability();
    const std::int64_t now = unixNowNs();
    const std::int64_t offset = monoToUnixNowOffsetNs();

    shhim::v1::Dashboard out;
    out.set_now_unix_ns(now);
    *out.mutable_status() = statusView(context);
    out.set_recent_failure_window_seconds(EventFeed::kRecentWindowSeconds);

    // Services in policy order, then one group for backends no service holds.
    const auto services = observability.services.services();
    std::map<std::string, std::size_t> service_index;
    for (const auto& service : services) {
        out.add_policy_services(service.name);
        auto* view = out.add_services();
        view->set_name(service.name);
        view->set_priority_class(service.priority_class);
        service_index.emplace(service.name, static_cast<std::size_t>(out.services_size() - 1));
    }
    shhim::v1::ServiceView unassigned;

    const auto recent = observability.feed.recentFailures(now);
    std::map<std::string, shhim::v1::ClassThroughput> classes;
    for (const auto& record : datapath.maps().backends()) {
        shhim::v1::BackendView view;
        *view.mutable_backend() = core::toBackend(record.endpoint, record.backend, offset);
        if (const auto rates = context.state.ratesOf(record.endpoint)) {
            view.mutable_backend()->set_request_rate_per_second(rates->requests_per_second);
            view.mutable_backend()->set_error_rate_per_second(rates->errors_per_second);
        }
        const core::BackendLabels labels = observability.services.labelsOf(record.endpoint);
        view.set_service(labels.service);
        view.set_priority_class(labels.priority_class);
        const auto it = recent.find(recentFailuresKey(view.backend().endpoint(), view.backend().protocol()));
        if (it != recent.end()) {
            for (const auto& [kind, count] : it->second.by_kind)
                (*view.mutable_recent_failures())[kind] = count;
            view.set_last_failure_unix_ns(it->second.last_unix_ns);
        }

        auto& throughput = classes[labels.priority_class];
        throughput.set_priority_class(labels.priority_class);
        throughput.set_requests_per_second(throughput.requests_per_second() +
                                           view.backend().request_rate_per_second());
        throughput.set_errors_per_second(throughput.errors_per_second() + view.backend().error_rate_per_second());
        throughput.set_backends(throughput.backends() + 1);

        const auto service = service_index.find(labels.service);
        if (!labels.service.empty() && service != service_index.end())
            *out.mutable_services(static_cast<int>(service->second))->add_backends() = std::move(view);
        else
            *unassigned.add_backends() = std::move(view);
    }
    if (unassigned.backends_size() > 0)
        *out.add_services() = std::move(unassigned);
    const shhim::v1::ServiceList routing = servicesView(context, "");
    core::joinRouting(out, routing);
    for (auto& service : *out.mutable_services()) {
        auto* backends = service.mutable_backends();
        std::sort(backends->begin(), backends->end(), [](const auto& x, const auto& y) {
            return std::make_tuple(x.backend().endpoint().address(), x.backend().endpoint().port(),
                                   x.backend().protocol()) < std::make_tuple(y.backend().endpoint().address(),
                                                                            y.backend().endpoint().port(),
                                                                            y.backend().protocol());
        });
    }
    for (auto& [name, throughput] : classes)
        *out.add_classes() = std::move(throughput);

    const std::uint32_t top = request.top_flows() == 0 ? kDefaultTopFlows
                                                        : std::min(request.top_flows(), kMaxTopFlows);
    std::vector<shhim::v1::Flow> flows;
    for (const auto& record : datapath.maps().flows())
        flows.push_back(core::toFlow(record.key, record.flow, offset));
    out.mutable_top_flows()->set_total(flows.size());
    core::sortAndTrim(flows, core::FlowSort::Bytes, top);
    for (auto& flow : flows)
        *out.mutable_top_flows()->add_flows() = std::move(flow);

    for (auto& entry : observability.feed.after(request.events_after_seq(), kMaxFeedEntriesPerAnswer))
        *out.add_events() = std::move(entry);
    // The reroute timeline from the audit trail (so it survives an agent
    // restart); from the feed where this agent keeps no trail.
    if (context.audit != nullptr) {
        for (const auto& record : context.audit->newest(kRerouteTimelineRecords))
            *out.add_reroutes() = core::rerouteTimelineEntry(record, routing);
    } else {
        for (auto& entry : observability.feed.ofType("reroute"))
            *out.add_reroutes() = std::move(entry);
    }

    *out.mutable_history() = observability.history.history(request.series_after_unix_seconds());
    return out;
}

}  // namespace shhim::agent
