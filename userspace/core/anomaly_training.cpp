#include "core/anomaly_training.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

#include "core/telemetry_record.h"

namespace shhim::core {
namespace {

// The engine only uses thresholds strictly between an ordinary score and a certain one.
constexpr double kMinThreshold = 0.55;
constexpr double kMaxThreshold = 0.95;
constexpr std::size_t kMinSamples = 50;

FeatureMatrix rowsOf(std::span<const FeatureVector> samples, std::span<const std::size_t> which)
{
    FeatureMatrix rows(static_cast<Eigen::Index>(which.size()), kFeatureCount);
    for (std::size_t i = 0; i < which.size(); ++i)
        rows.row(static_cast<Eigen::Index>(i)) = samples[which[i]].transpose();
    return rows;
}

}  // namespace

double quantile(std::vector<double> values, double q)
{
    if (values.empty())
        return std::numeric_limits<double>::quiet_NaN();
    std::sort(values.begin(), values.end());
    const double at = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
    const auto below = static_cast<std::size_t>(std::floor(at));
    const std::size_t above = std::min(below + 1, values.size() - 1);
    return values[below] + (at - static_cast<double>(below)) * (values[above] - values[below]);
}

std::size_t collectTrainingSamples(std::span<const v1::RecordedTick> ticks, const AnomalySettings& settings,
                                   std::vector<FeatureVector>& samples)
{
    AnomalyEngine engine(settings);
    std::size_t abnormal = 0;
    for (const auto& tick : ticks) {
        const std::vector<BackendTick> backends = backendTicks(tick);
        if (backends.empty())
            continue;
        std::vector<BackendId> ids;
        FeatureMatrix rows(static_cast<Eigen::Index>(backends.size()), kFeatureCount);
        // The excess against each baseline as it was before this tick teaches it.
        std::vector<std::optional<FeatureVector>> excess;
        for (std::size_t i = 0; i < backends.size(); ++i) {
            ids.push_back(backends[i].id);
            const FeatureVector x = featureVector(backends[i].counts);
            rows.row(static_cast<Eigen::Index>(i)) = x.transpose();
            const Baseline* baseline = engine.baseline(backends[i].id.service, backends[i].id.backend);
            if (baseline && baseline->updates() >= settings.iforest_warmup)
                excess.emplace_back(excessInSd(*baseline, x));
            else
                excess.emplace_back(std::nullopt);
        }
        const auto results = engine.scoreTick(ids, rows);
        for (std::size_t i = 0; i < backends.size(); ++i) {
            if (!excess[i])
                continue;
            if (results[i].learned)
                samples.push_back(*excess[i]);
            else
                ++abnormal;
        }
    }
    return abnormal;
}

AnomalyModel trainModel(std::span<const FeatureVector> samples, const TrainingOptions& options,
                        const std::string& version, const TrainingProgress& progress)
{
    if (!(options.contamination > 0 && options.contamination < 1))
        throw std::invalid_argument("contamination must be in (0, 1), is " + std::to_string(options.contamination));
    if (!(options.holdout > 0 && options.holdout < 1))
        throw std::invalid_argument("holdout must be in (0, 1), is " + std::to_string(options.holdout));
    if (samples.size() < kMinSamples)
        throw std::invalid_argument("too few normal samples to train on: " + std::to_string(samples.size()) +
                                    " (at least " + std::to_string(kMinSamples) + ")");
    std::mt19937_64 rng(options.seed);
    std::vector<std::size_t> order(samples.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::shuffle(order.begin(), order.end(), rng);
    const auto heldout_count = static_cast<std::size_t>(std::ceil(options.holdout * static_cast<double>(order.size())));
    const std::span<const std::size_t> heldout(order.data(), heldout_count);
    const std::span<const std::size_t> training(order.data() + heldout_count, order.size() - heldout_count);
    const FeatureMatrix training_rows = rowsOf(samples, training);

    // One tree per call: the same forest as growing them together, with progress.
    IsolationForestOptions one = options.forest;
    one.trees = 1;
    AnomalyModel model;
    model.version = version;
    for (std::uint32_t t = 0; t < options.forest.trees; ++t) {
        IsolationForest grown = trainIsolationForest(training_rows, one, rng);
        if (t == 0) {
            model.forest.subsample_size = grown.subsample_size;
            model.forest.max_depth = grown.max_depth;
        }
        model.forest.trees.push_back(std::move(grown.trees.front()));
        if (progress)
            progress(t + 1, options.forest.trees);
    }

    const Eigen::VectorXd training_scores = model.forest.scores(training_rows);
    const Eigen::VectorXd heldout_scores = model.forest.scores(rowsOf(samples, heldout));
    const std::vector<double> trained(training_scores.begin(), training_scores.end());
    const std::vector<double> held(heldout_scores.begin(), heldout_scores.end());
    model.score_threshold = std::clamp(quantile(trained, 1 - options.contamination), kMinThreshold, kMaxThreshold);
    model.training.set_samples(training.size());
    model.training.set_heldout_samples(heldout.size());
    model.training.set_contamination(options.contamination);
    model.training.set_seed(options.seed);
    model.training.set_heldout_score_p50(quantile(held, 0.50));
    model.training.set_heldout_score_p90(quantile(held, 0.90));
    model.training.set_heldout_score_p99(quantile(held, 0.99));
    model.training.set_heldout_score_max(quantile(held, 1.0));
    return model;
}

}  // namespace shhim::core
