// A backend's normal behaviour and the distance of a tick from it (issue 5
// item 2): exponentially weighted mean and covariance of the feature vector,
// started from a per-class prior, shrunk toward a diagonal target and
// floored so that it stays positive definite; the score is a one-sided
// Mahalanobis distance turned into a calibrated probability. Pure.
//
// Rate is not failure: the distance is taken over every feature except the
// request rate, and each deviation counts only upward (a backend that is
// faster or cleaner than usual is not anomalous). A surge moves the rate
// alone and so scores zero; a rise of latency or errors scores at any rate.
//
// The caller decides what is normal: update() is to be called only with
// ticks it judged normal (anomaly_engine.h), so that a slow failure cannot
// teach the baseline that it is normal.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "core/anomaly_features.h"

namespace shhim::core {

using ScoredVector = Eigen::Matrix<double, kScoredFeatureCount, 1>;
using ScoredMatrix = Eigen::Matrix<double, kScoredFeatureCount, kScoredFeatureCount>;
using CovarianceMatrix = Eigen::Matrix<double, kFeatureCount, kFeatureCount>;
// One-sided deviations of a batch, one row per backend.
using ExcessMatrix = Eigen::Matrix<double, Eigen::Dynamic, kScoredFeatureCount, Eigen::RowMajor>;

// The noise below which a change is not evidence: 1% for fractions (15%
// for unanswered requests and failed handshakes, which tick boundaries
// alone move), 10% (0.1 in log units) for latencies and RTT, 0.01
// retransmits per request.
FeatureVector defaultFloorSd();

struct BaselineSettings {
    // A sample's weight is 1/(n+1) while the history is short (a running
    // mean), never less than this: about 5 minutes of memory at 100 ms ticks.
    double min_alpha = 1.0 / 3000;
    // Shrinkage toward the diagonal: lambda = strength / (strength + n),
    // at least min_shrink (> 0, which with the floor keeps the matrix
    // positive definite even for constant or perfectly correlated features).
    double shrink_strength = 30;
    double min_shrink = 0.02;
    FeatureVector floor_sd = defaultFloorSd();
};

// Where a new backend starts: a class's typical mean and spread, worth
// `weight` samples.
struct BaselinePrior {
    FeatureVector mean;
    FeatureVector sd;
    double weight = 10;
};

// Wide enough that any plausible healthy backend fits it within a few
// standard deviations: no errors, p50 10 ms / p99 30 ms / RTT 1 ms, each
// within a factor of ~4.5 (1.5 in log units).
BaselinePrior defaultPrior();

class Baseline {
public:
    // Throws std::invalid_argument naming the setting when the settings or
    // prior cannot give a positive definite matrix (non-positive floor or
    // sd, min_shrink outside (0, 1], non-finite mean).
    Baseline(const BaselinePrior& prior, const BaselineSettings& settings);

    // One normal tick. NaN features (not measured) are taken at the mean:
    // they do not move it. A tick with no scored feature measured is ignored.
    void update(const FeatureVector& x);

    const FeatureVector& mean() const { return mean_; }
    const CovarianceMatrix& covariance() const { return covariance_; }  // raw moments
    // Prior weight plus samples, capped at the memory 1/min_alpha.
    double weight() const { return weight_; }
    std::uint64_t updates() const { return updates_; }
    double shrinkage() const;
    // The matrix the distance uses: scored features only, shrunk and floored.
    ScoredMatrix regularizedCovariance() const;
    const Eigen::LLT<ScoredMatrix>& factor() const { return factor_; }
    // Standard deviations of the scored features: the regularized diagonal.
    const ScoredVector& sd() const { return sd_; }

    // max(0, x - mean) over the scored features; NaN (not measured) is 0.
    ScoredVector excess(const FeatureVector& x) const;
    // excess' Sigma^-1 excess, by the cached Cholesky factor.
    double excessDistanceSquared(const ScoredVector& excess) const;
    double distanceSquared(const FeatureVector& x) const { return excessDistanceSquared(excess(x)); }
    // Each feature's share of distanceSquared (they add up to it):
    // excess_i * (Sigma^-1 excess)_i.
    ScoredVector contributions(const ScoredVector& excess) const;

private:
    void refactor();

    FeatureVector mean_;
    CovarianceMatrix covariance_;
    double weight_;
    std::uint64_t updates_ = 0;
    BaselineSettings settings_;
    Eigen::LLT<ScoredMatrix> factor_;
    ScoredVector sd_;
};

// Batch: row i of `excess` against baselines[i] (sizes must match).
Eigen::VectorXd distancesSquared(const ExcessMatrix& excess, std::span<const Baseline* const> baselines);

// Calibration. Under the null (features Gaussian around the baseline) the
// one-sided distance over k features follows the chi-bar-squared mixture
// sum_j C(k,j) 2^-k chi2_j. Its upper tail, as a natural log so that far
// tails do not underflow; and the anomaly probability 1 - tail.
double logChiBarSquaredTail(double distance_squared, int k);
double anomalyProbability(double distance_squared, int k = kScoredFeatureCount);
// ln Q(a, x), the regularized upper incomplete gamma function (a > 0, x >= 0).
double logUpperGammaQ(double a, double x);

// logChiBarSquaredTail(., k) tabulated for distances (not squared) in
// [0, max_distance], where it is smooth, linear between grid points and
// exact beyond: eleven incomplete gamma functions per tick cost more than
// the distance itself.
class ChiBarSquaredTable {
public:
    explicit ChiBarSquaredTable(int k = kScoredFeatureCount, double max_distance = 15, double step = 0.002);
    double logTail(double distance_squared) const;

private:
    int k_;
    double step_;
    std::vector<double> table_;
};

}  // namespace shhim::core
