// Training the anomaly engine's Isolation Forest from recorded telemetry
// (issue 5 item 4; tools/shhim-train). Each recording is replayed through
// a fresh anomaly engine without a model; once a backend's baseline has
// AnomalySettings::iforest_warmup updates (from then on the engine lets the
// forest score it), every tick the engine judges normal becomes one
// sample: its excess over that baseline in baseline standard deviations
// (excessInSd, the space the engine scores the forest in). A share of the
// samples is held out to report how the model scores normal traffic it
// has not seen. Pure; the random generator comes from the seed.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "core/anomaly_engine.h"
#include "core/anomaly_model.h"
#include "core/iforest.h"
#include "telemetry.pb.h"

namespace shhim::core {

struct TrainingOptions {
    AnomalySettings anomaly;
    IsolationForestOptions forest;
    // The share of normal samples the model is to call anomalous: the
    // score threshold is the training scores' (1 - contamination) quantile.
    double contamination = 0.0001;
    double holdout = 0.2;               // share of the samples kept out of training
    std::uint64_t seed = 1;
};

// Samples from one recording (ticks in time order; a labelled failure
// trace passes only the ticks before its fault). Appends to `samples`.
// Returns the number of ticks judged abnormal and left out.
std::size_t collectTrainingSamples(std::span<const v1::RecordedTick> ticks, const AnomalySettings& settings,
                                   std::vector<FeatureVector>& samples);

// Trees done so far, of the total.
using TrainingProgress = std::function<void(std::uint32_t done, std::uint32_t total)>;

// Throws std::invalid_argument naming the problem (too few samples for a
// hold-out, contamination or holdout out of (0, 1), a forest option).
AnomalyModel trainModel(std::span<const FeatureVector> samples, const TrainingOptions& options,
                        const std::string& version, const TrainingProgress& progress = {});

// The q quantile (0..1) of `values`, by linear interpolation; NaN when empty.
double quantile(std::vector<double> values, double q);

}  // namespace shhim::core
