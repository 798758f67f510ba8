#include "core/backend_window.h"

namespace shhim::core {

WindowSample windowSample(const TickCounts& counts)
{
    WindowSample sample;
    sample.requests = counts.application ? counts.requests : counts.conn_attempts;
    sample.connect_failures = counts.refused + counts.syn_timeouts;
    sample.resets = counts.resets;
    sample.server_errors = counts.server_errors;
    sample.nacks = counts.nacks;
    sample.client_errors = counts.client_errors;
    sample.p99_ms = counts.p99_ms;
    return sample;
}

WindowSample windowSample(const shhim_backend& before, const shhim_backend& now, v1::AppProtocol protocol)
{
    // The tick length does not matter to counts: 1 s keeps tickCounts' precondition.
    return windowSample(tickCounts(before, now, protocol, 1.0));
}

}  // namespace shhim::core
