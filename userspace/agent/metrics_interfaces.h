// Packet and byte counters of the interfaces shhimd watches, as their
// drivers count them (rtnetlink RTM_GETLINK, 64-bit IFLA_STATS64), for the
// shhim_interface_* metrics. Read on each scrape, in the agent's network
// namespace.
#pragma once

#include <string>
#include <vector>

#include "core/metrics.h"

namespace shhim::agent {

// Counters of the named interfaces that exist; unknown names are skipped.
// Throws std::runtime_error (with the failing step) if netlink fails.
std::vector<core::InterfaceMetrics> readInterfaceCounters(const std::vector<std::string>& names);

}  // namespace shhim::agent
