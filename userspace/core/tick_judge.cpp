#include "core/tick_judge.h"

#include "core/backend_window.h"

namespace shhim::core {

TickJudgement judgeTick(AnomalyEngine& anomaly, DecisionEngine& decisions, EngineTime now,
                        std::span<const BackendTick> ticks, bool anomaly_acts)
{
    TickJudgement out;
    std::vector<WindowSample> samples;
    std::vector<BackendId> ids;
    samples.reserve(ticks.size());
    ids.reserve(ticks.size());
    FeatureMatrix rows(static_cast<Eigen::Index>(ticks.size()), kFeatureCount);
    for (std::size_t i = 0; i < ticks.size(); ++i) {
        WindowSample sample = windowSample(ticks[i].counts);
        sample.service = ticks[i].id.service;
        sample.backend = ticks[i].id.backend;
        samples.push_back(std::move(sample));
        ids.push_back(ticks[i].id);
        rows.row(static_cast<Eigen::Index>(i)) = featureVector(ticks[i].counts).transpose();
    }
    if (!ticks.empty())
        out.scores = anomaly.scoreTick(ids, rows);
    if (anomaly_acts)
        for (std::size_t i = 0; i < samples.size(); ++i) {
            samples[i].score = out.scores[i].score;
            if (out.scores[i].score >= decisions.settings().anomaly_score)
                samples[i].score_drivers = anomaly.driversText(ids[i].service, ids[i].backend);
        }
    out.changes = decisions.onWindow(now, samples);
    auto timers = decisions.tick(now);
    out.changes.insert(out.changes.end(), timers.begin(), timers.end());
    return out;
}

}  // namespace shhim::core
