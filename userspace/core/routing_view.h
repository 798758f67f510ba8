// The routing picture (the router's ServiceList and the audit trail) as the
// dashboard and the Prometheus exposition show it. Pure: no clock, no I/O;
// the agent passes in what the router and the audit trail hold.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "shhim.pb.h"

namespace shhim::core {

// Every state a routed backend is shown in. "drained" is an engineer's hold
// on top of the engine's state; while it lasts it is what the backend shows
// (as `shhimctl services` does), so exactly one of these is current.
inline constexpr std::array<std::string_view, 5> kShownBackendStates = {"healthy", "suspect", "ejected", "probing",
                                                                       "drained"};

// "drained" while drained, else the engine's state.
std::string shownState(const v1::RoutedBackend& backend);

// One line on why it is in that state, and who put it there:
// "kernel: 1 refused (breaker threshold 1)", "uid:0: maintenance (until restored)".
std::string shownReason(const v1::RoutedBackend& backend);

// Puts the router's view into the dashboard snapshot: each BackendView of a
// routed service gets its RoutedBackend (matched by address and port, TCP)
// and the state and reason shown; a routed backend the kernel has not seen
// yet gets a view with no counters, so that every backend of the policy is
// on the page. Backends no routed service holds read state "" with a reason
// that says so. `routing` also goes into dashboard.routing as it is.
void joinRouting(v1::Dashboard& dashboard, const v1::ServiceList& routing);

// An audit record as an entry of the reroute timeline (type "reroute"; seq
// is left 0: it is the audit trail's record, not the feed's). The service's
// class comes from `routing` when the service is still in it.
v1::FeedEvent rerouteTimelineEntry(const v1::AuditRecord& record, const v1::ServiceList& routing);

// "eject fhir 198.18.0.10:8080: healthy -> ejected by kernel (1 refused)".
std::string auditSummary(const v1::AuditRecord& record);

}  // namespace shhim::core
