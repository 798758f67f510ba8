// One tick through both engines (issue 5): each backend's counter increases
// become the decision engine's window sample and the anomaly engine's
// feature row; the rows are scored in one batch, and the scores (when they
// act) go with the samples into the decision engine. The agent's Router and
// shhim-eval's replay of recorded traces take this same path. Pure.
#pragma once

#include <span>
#include <vector>

#include "core/anomaly_engine.h"
#include "core/decision_engine.h"

namespace shhim::core {

// One backend's tick: which backend, and its counter increases.
struct BackendTick {
    BackendId id;
    TickCounts counts;
};

struct TickJudgement {
    std::vector<AnomalyResult> scores;  // one per BackendTick, in order
    std::vector<Change> changes;        // the decision engine's, window and timers
};

// `anomaly_acts` false: the scores are computed (and explainable) but the
// decision engine does not see them (shadow mode).
TickJudgement judgeTick(AnomalyEngine& anomaly, DecisionEngine& decisions, EngineTime now,
                        std::span<const BackendTick> ticks, bool anomaly_acts);

}  // namespace shhim::core
