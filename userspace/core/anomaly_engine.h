// The anomaly engine (issue 5 item 2): per backend, a baseline (Mahalanobis
// distance, anomaly_baseline.h), an optional Isolation Forest model and a
// trend term, combined into one score for WindowSample::score (>= 1.0 is
// degraded with the default EngineSettings::anomaly_score), with an
// explanation of what drives it. Pure and deterministic: no clock, no I/O;
// one call per tick with one feature row per backend.
//
// score = class sensitivity x max(Mahalanobis, iForest, trend), each part
// scaled so that 1.0 is its alarm level:
//   - Mahalanobis: nines of the anomaly probability over alarm_nines
//     (probability 1 - 10^-4 -> 1.0 by default);
//   - iForest: (s - 0.5) / (threshold - 0.5), s the forest's score of the
//     backend's excess in baseline standard deviations;
//   - trend: the least-squares rise of ln p99 (or retransmits per request)
//     over the last `window` ticks over its alarm rise, when the slope is
//     significant (t >= min_t) and the latest value is already above the
//     baseline.
// A tick updates its backend's baseline only when its unscaled Mahalanobis
// and trend parts are below learn_below: a failure, fast or slow, is never
// learnt as normal. The forest is a second opinion on alarms only, and it
// scores a backend once its baseline has iforest_warmup updates (the
// baselines it was trained against had as many): excess over a baseline
// still at its prior means little, and must not stop the baseline learning.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/anomaly_baseline.h"
#include "core/anomaly_features.h"
#include "core/anomaly_model.h"
#include "policy.pb.h"

namespace shhim::core {

constexpr std::string_view kBaselineModelVersion = "ewma-mahalanobis/1";

struct TrendSettings {
    std::uint32_t window = 50;      // ticks (5 s at 100 ms)
    std::uint32_t min_points = 20;  // measured ticks in the window before a slope counts
    double min_t = 4;               // slope / its standard error
    double latency_rise = 0.405;    // ln 1.5: p99 up by half over the window scores 1.0
    double retransmit_rise = 0.05;  // retransmits per request, over the window
    double min_excess_sd = 2;       // the latest value at least this far above the baseline
};

// The built-in classes' sensitivities (policy_classes.h): life-critical 2,
// emergency 1.5, clinical-realtime 1.25, clinical and imaging 1,
// administrative 0.8, bulk 0.5.
std::map<std::string, double, std::less<>> defaultClassSensitivity();
// Every class of a validated policy, its overrides applied.
std::map<std::string, double, std::less<>> classSensitivity(const v1::Policy& policy);

struct AnomalySettings {
    BaselineSettings baseline;
    double alarm_nines = 4;
    double learn_below = 0.5;
    double iforest_threshold = 0.7;  // when the model carries none
    std::uint32_t iforest_warmup = 300;  // baseline updates before the forest scores a backend
    // The forest's part is its lowest score over this many ticks in a row:
    // a lone tick it finds odd is not an alarm (on the testbed traces, with a
    // model trained on other traffic, single-tick forest alarms were nearly
    // all false), a fault that lasts is.
    std::uint32_t iforest_persistence = 3;
    TrendSettings trend;
    std::map<std::string, double, std::less<>> class_sensitivity = defaultClassSensitivity();
    double default_sensitivity = 1;
    // Where a new backend of a class starts; default_prior for the others.
    std::map<std::string, BaselinePrior, std::less<>> class_priors;
    BaselinePrior default_prior = defaultPrior();
};

// Which backend a feature row belongs to.
struct BackendId {
    std::string service;
    std::string backend;
    std::string service_class;  // picks the prior (once) and the sensitivity
};

struct AnomalyResult {
    double score = 0;               // for WindowSample::score
    double sensitivity = 1;
    double distance_squared = 0;    // one-sided Mahalanobis, squared
    double probability = 0;         // anomaly probability of that distance
    double mahalanobis_score = 0;   // the parts, before sensitivity
    std::optional<double> iforest;  // the forest's raw score, when a model is loaded
    double iforest_score = 0;
    double trend_score = 0;
    bool learned = false;           // the tick updated the baseline
};

// One feature's part in a score, in the feature's own units.
struct FeatureDriver {
    Feature feature;
    double value = 0;     // ms for latencies and RTT, fractions, per-request, per-second
    double baseline = 0;  // same units (geometric mean for latencies)
    double share = 0;     // of the squared distance, 0..1
    std::string text;     // "p99 latency 480 ms vs baseline 35 ms, x13.7"
};

struct Explanation {
    std::string service;
    std::string backend;
    AnomalyResult result;
    std::vector<FeatureDriver> drivers;  // largest share first, at most 3
    std::string rate;                    // "request rate 44/s vs baseline 10/s, x4.4 (not scored)"
    std::string trend;                   // "p99 latency climbing x1.8 over 50 ticks", or ""
    double baseline_weight = 0;          // samples behind the baseline
    std::string baseline_version;        // kBaselineModelVersion
    std::string iforest_version;         // the model's model_version, or ""
};

// Each feature's rise above the baseline in the baseline's standard
// deviations (0 where not measured or not above; the rate is 0): what the
// Isolation Forest sees, for scoring and for training.
FeatureVector excessInSd(const Baseline& baseline, const FeatureVector& x);

class AnomalyEngine {
public:
    // Throws std::invalid_argument for settings a baseline cannot use.
    explicit AnomalyEngine(AnomalySettings settings, std::optional<AnomalyModel> model = std::nullopt);

    // One tick: row i of `rows` is ids[i]'s features (sizes must match).
    // Scores every row against its backend's state as it was, then learns
    // the normal ones.
    std::vector<AnomalyResult> scoreTick(std::span<const BackendId> ids, const FeatureMatrix& rows);

    // What drove the backend's latest score; nullopt for an unknown backend.
    std::optional<Explanation> explain(std::string_view service, std::string_view backend) const;

    // The latest explanation's drivers and trend on one line ("p99 latency
    // 480 ms vs baseline 35 ms, x13.7; ..."), for reasons and reports; "" for
    // an unknown backend.
    std::string driversText(std::string_view service, std::string_view backend) const;

    const Baseline* baseline(std::string_view service, std::string_view backend) const;
    // A policy's per-class sensitivities (classSensitivity()); the states
    // stay. Throws std::invalid_argument for a value outside 0..10.
    void setClassSensitivity(std::map<std::string, double, std::less<>> by_class);
    // A backend removed from the policy: its history goes with it.
    void forget(std::string_view service, std::string_view backend);
    std::size_t backends() const { return backends_.size(); }

private:
    struct Trend {
        std::vector<double> log_p99;  // ring of the last window ticks, NaN: not measured
        std::vector<double> retransmits;
        std::size_t next = 0;
        std::size_t filled = 0;
    };
    struct BackendState {
        BackendState(std::string cls, Baseline start, Trend window)
            : service_class(std::move(cls)), baseline(std::move(start)), trend(std::move(window))
        {
        }
        std::string service_class;
        Baseline baseline;
        Trend trend;
        std::vector<double> recent_forest;  // the last iforest_persistence raw forest scores
        FeatureVector last = FeatureVector::Zero();
        // The latest tick against the baseline as it was scored.
        ScoredVector last_contributions = ScoredVector::Zero();
        FeatureVector last_mean = FeatureVector::Zero();
        AnomalyResult last_result;
    };

    BackendState& state(const BackendId& id);
    double sensitivity(std::string_view service_class) const;
    static void checkSensitivity(const std::map<std::string, double, std::less<>>& by_class);
    void pushTrend(Trend& trend, const FeatureVector& x) const;
    double trendScore(const BackendState& s, const ScoredVector& excess) const;
    std::string trendText(const BackendState& s) const;

    AnomalySettings settings_;
    std::optional<AnomalyModel> model_;
    ChiBarSquaredTable tail_;
    std::map<std::string, BackendState, std::less<>> backends_;
};

// The squared distance's anomaly probability as a score part (1.0 at
// alarm_nines nines).
double mahalanobisScore(double distance_squared, double alarm_nines);

// Least-squares slope of the finite points of `ys` (x = 0, 1, ...) and the
// t statistic of that slope (infinite for a perfect line); nullopt with
// fewer than min_points finite points.
struct Slope {
    double slope = 0;
    double t = 0;
    std::size_t points = 0;
};
std::optional<Slope> leastSquaresSlope(std::span<const double> ys, std::size_t min_points);

}  // namespace shhim::core
