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

}  // namespace shhim::core
