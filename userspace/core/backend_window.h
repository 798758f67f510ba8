// What the decision engine hears from one tick: one backend's counter
// increases (anomaly_features.h TickCounts, the one place they are
// computed) as a WindowSample (decision_types.h). Pure.
#pragma once

#include "core/anomaly_features.h"
#include "core/decision_types.h"

namespace shhim::core {

// Requests are request starts for http and mllp services, connection
// attempts for tcp ones; connect failures are refusals, ICMP unreachables
// and SYN timeouts; 4xx are counted apart (not failures).
WindowSample windowSample(const TickCounts& counts);

}  // namespace shhim::core
