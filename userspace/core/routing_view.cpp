#include "core/routing_view.h"

#include <optional>

#include "core/policy_address.h"

namespace shhim::core {
namespace {

constexpr const char* kKernelProtocol = "tcp";  // routed services are TCP (policy protocols http, mllp, tcp)

std::optional<SocketAddress> addressOf(const std::string& text) { return parseSocketAddress(text).value; }

// The kernel's endpoint as a socket address ("[v6]:port" needs the brackets to parse).
std::optional<SocketAddress> addressOf(const v1::Endpoint& endpoint)
{
    const std::string& ip = endpoint.address();
    const std::string port = std::to_string(endpoint.port());
    return addressOf(ip.find(':') == std::string::npos ? ip + ":" + port : "[" + ip + "]:" + port);
}

v1::Endpoint endpointOf(const SocketAddress& address)
{
    v1::Endpoint endpoint;
    endpoint.set_address(formatIp(address.ip));
    endpoint.set_port(address.port);
    return endpoint;
}

v1::ServiceView* findService(v1::Dashboard& dashboard, const std::string& name)
{
    for (auto& view : *dashboard.mutable_services())
        if (view.name() == name)
            return &view;
    return nullptr;
}

// The view of `address` in `service`, added (with no counters) if the kernel has not seen it.
v1::BackendView& viewOf(v1::ServiceView& service, const SocketAddress& address)
{
    for (auto& view : *service.mutable_backends()) {
        if (view.backend().protocol() != kKernelProtocol)
            continue;
        if (addressOf(view.backend().endpoint()) == address)
            return view;
    }
    v1::BackendView& view = *service.add_backends();
    *view.mutable_backend()->mutable_endpoint() = endpointOf(address);
    view.mutable_backend()->set_protocol(kKernelProtocol);
    view.set_service(service.name());
    view.set_priority_class(service.priority_class());
    return view;
}

}  // namespace

std::string shownState(const v1::RoutedBackend& backend)
{
    return backend.drained() ? std::string("drained") : backend.state();
}

std::string shownReason(const v1::RoutedBackend& backend)
{
    if (backend.drained()) {
        std::string text = backend.drained_by() + ": " + backend.drain_reason();
        if (backend.drained_until_unix_ns() == 0)
            text += " (until restored)";
        return text;
    }
    if (backend.reason().empty())
        return {};
    return backend.actor().empty() ? backend.reason() : backend.actor() + ": " + backend.reason();
}

void joinRouting(v1::Dashboard& dashboard, const v1::ServiceList& routing)
{
    *dashboard.mutable_routing() = routing;
    for (const auto& service : routing.services()) {
        v1::ServiceView* view = findService(dashboard, service.name());
        if (view == nullptr) {
            view = dashboard.add_services();
            view->set_name(service.name());
            view->set_priority_class(service.class_name());
        }
        for (const auto& backend : service.backends()) {
            const auto address = addressOf(backend.backend());
            if (!address)
                continue;  // the router names policy backends, which the policy validated
            v1::BackendView& shown = viewOf(*view, *address);
            *shown.mutable_routing() = backend;
            shown.set_state(shownState(backend));
            shown.set_state_reason(shownReason(backend));
        }
    }
    for (auto& view : *dashboard.mutable_services()) {
        for (auto& backend : *view.mutable_backends()) {
            if (backend.has_routing())
                continue;
            backend.set_state("");
            backend.set_state_reason(view.name().empty() ? "in no policy service: not routed"
                                                         : "not in the pools of " + view.name() + ": not routed");
        }
    }
}

std::string auditSummary(const v1::AuditRecord& record)
{
    std::string text = record.action() + " " + record.service();
    if (!record.backend().empty())
        text += " " + record.backend();
    text += ": " + (record.before().empty() ? std::string("-") : record.before()) + " -> " +
            (record.after().empty() ? std::string("-") : record.after()) + " by " + record.actor();
    if (!record.reason().empty())
        text += " (" + record.reason() + ")";
    return text;
}

v1::FeedEvent rerouteTimelineEntry(const v1::AuditRecord& record, const v1::ServiceList& routing)
{
    v1::FeedEvent entry;
    entry.set_time_unix_ns(record.time_unix_ns());
    entry.set_type("reroute");
    entry.set_service(record.service());
    for (const auto& service : routing.services())
        if (service.name() == record.service())
            entry.set_priority_class(service.class_name());
    if (const auto address = addressOf(record.backend()))
        *entry.mutable_backend() = endpointOf(*address);
    entry.set_summary(auditSummary(record));
    *entry.mutable_reroute() = record;
    return entry;
}

}  // namespace shhim::core
