// What the decision engine hears from one tick: the change of one backend's
// kernel counters between two reads, as a WindowSample (decision_types.h).
// Pure; the agent keeps the previous read.
#pragma once

#include "core/decision_types.h"
#include "shhim_abi.h"

namespace shhim::core {

// Counts since `before` (a recreated entry — first_seen_ns changed or a
// counter went down — counts from zero). Requests are request starts for
// http and mllp services, connection attempts for tcp ones. p99 comes from
// the response histogram's increase (unset when no response was measured).
WindowSample windowSample(const shhim_backend& before, const shhim_backend& now, v1::AppProtocol protocol);

}  // namespace shhim::core
