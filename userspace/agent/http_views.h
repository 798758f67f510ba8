// What shhimd's HTTP listener serves, built from the kernel maps and the
// agent's state on each request: the Prometheus exposition and the
// dashboard's snapshot (a protobuf message, served as its JSON mapping).
#pragma once

#include <string>

#include "agent/server.h"
#include "shhim.pb.h"

namespace shhim::agent {

// Every backend reads "healthy" until the decision engine exists; the
// reason says so rather than implying an evaluation happened.
inline constexpr const char* kDefaultBackendState = "healthy";
inline constexpr const char* kDefaultBackendStateReason = "not evaluated: no decision engine in this build";

std::string metricsExposition(const ApiContext& context);

shhim::v1::Dashboard dashboardView(const ApiContext& context, const shhim::v1::DashboardRequest& request);

// The agent's status: GetStatus answers with it, the dashboard shows it.
shhim::v1::Status statusView(const ApiContext& context);

}  // namespace shhim::agent
