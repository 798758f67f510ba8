// What shhimd's HTTP listener serves, built from the kernel maps, the
// router and the agent's state on each request: the Prometheus exposition,
// the routing picture and the dashboard's snapshot (protobuf messages,
// served as their JSON mapping).
#pragma once

#include <cstddef>
#include <string>

#include "agent/server.h"
#include "shhim.pb.h"

namespace shhim::agent {

// The newest audit records the dashboard's reroute timeline shows.
inline constexpr std::size_t kRerouteTimelineRecords = 50;

std::string metricsExposition(const ApiContext& context);

// The router's services, pools and backend states (`shhimctl services`):
// all services, or only `service`. Empty when the agent has no router.
shhim::v1::ServiceList servicesView(const ApiContext& context, const std::string& service);

shhim::v1::Dashboard dashboardView(const ApiContext& context, const shhim::v1::DashboardRequest& request);

// The agent's status: GetStatus answers with it, the dashboard shows it.
shhim::v1::Status statusView(const ApiContext& context);

}  // namespace shhim::agent
