// Restart reconstruction (issue 4 item 6): the routing states a killed agent
// had, rebuilt from its audit trail. The trail holds every change of state
// with its time, actor, reason and evidence, so replaying it over the
// snapshot of a freshly configured engine gives each backend its last state
// and each service its last pool, drain and pin. The agent then reconciles
// with the kernel's health map (a trip the dead agent never recorded).
// Pure.
#pragma once

#include <vector>

#include "core/decision_engine.h"
#include "shhim.pb.h"

namespace shhim::core {

// Applies `trail` (oldest first) to `snapshot`; records about services or
// backends the snapshot does not hold are skipped. Returns how many records
// changed something.
std::size_t replayAudit(EngineSnapshot& snapshot, const std::vector<v1::AuditRecord>& trail);

}  // namespace shhim::core
