#include "core/anomaly_baseline.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace shhim::core {
namespace {

auto scoredBlock(const CovarianceMatrix& m)
{
    return m.block<kScoredFeatureCount, kScoredFeatureCount>(kFirstScoredFeature, kFirstScoredFeature);
}

std::string featureName(int i) { return std::string(featureNames()[static_cast<std::size_t>(i)]); }

// ln(e^a + e^b) without overflow.
double logAdd(double a, double b)
{
    if (a == -std::numeric_limits<double>::infinity())
        return b;
    if (b == -std::numeric_limits<double>::infinity())
        return a;
    const double hi = std::max(a, b);
    return hi + std::log1p(std::exp(std::min(a, b) - hi));
}

double logBinomial(int n, int k)
{
    return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0);
}

constexpr int kGammaIterations = 500;
constexpr double kGammaEpsilon = 1e-15;

// P(a, x) by its power series; converges fast for x < a + 1.
double lowerGammaPSeries(double a, double x)
{
    double term = 1.0 / a;
    double sum = term;
    for (int n = 1; n < kGammaIterations; ++n) {
        term *= x / (a + n);
        sum += term;
        if (std::abs(term) < std::abs(sum) * kGammaEpsilon)
            break;
    }
    return std::exp(-x + a * std::log(x) - std::lgamma(a)) * sum;
}

// ln Q(a, x) by its continued fraction (modified Lentz); for x >= a + 1.
double logUpperGammaQFraction(double a, double x)
{
    constexpr double tiny = 1e-300;
    double b = x + 1.0 - a;
    double c = 1.0 / tiny;
    double d = 1.0 / b;
    double h = d;
    for (int i = 1; i < kGammaIterations; ++i) {
        const double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (std::abs(d) < tiny)
            d = tiny;
        c = b + an / c;
        if (std::abs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        const double step = d * c;
        h *= step;
        if (std::abs(step - 1.0) < kGammaEpsilon)
            break;
    }
    return -x + a * std::log(x) - std::lgamma(a) + std::log(h);
}

}  // namespace

FeatureVector defaultFloorSd()
{
    FeatureVector floor;
    floor[index(Feature::RequestRate)] = 1.0;  // not scored; keeps the matrix regular
    for (const Feature f : {Feature::Refused, Feature::Timeout, Feature::Reset, Feature::ServerError, Feature::Nack})
        floor[index(f)] = 0.01;
    // A response (or handshake) that completes in the next tick leaves its
    // request unanswered (its connection not established) in this one: at a
    // few requests per tick that alone swings these fractions by tens of
    // percent (measured on the testbed traces); a hang moves them by all of it.
    floor[index(Feature::Unanswered)] = 0.15;
    floor[index(Feature::SynFailure)] = 0.15;
    for (const Feature f : {Feature::LogP50, Feature::LogP99, Feature::LogRtt})
        floor[index(f)] = 0.1;
    floor[index(Feature::RetransmitRate)] = 0.01;
    return floor;
}

BaselinePrior defaultPrior()
{
    BaselinePrior prior;
    prior.mean.setZero();
    prior.sd.setConstant(0.05);  // error fractions: a healthy backend is within a few percent
    prior.mean[index(Feature::RequestRate)] = 10;
    prior.sd[index(Feature::RequestRate)] = 100;
    prior.mean[index(Feature::LogP50)] = std::log(10.0);
    prior.mean[index(Feature::LogP99)] = std::log(30.0);
    prior.mean[index(Feature::LogRtt)] = std::log(1.0);
    for (const Feature f : {Feature::LogP50, Feature::LogP99, Feature::LogRtt})
        prior.sd[index(f)] = 1.5;
    prior.sd[index(Feature::RetransmitRate)] = 0.1;
    prior.sd[index(Feature::Unanswered)] = 0.2;  // responses straddle tick boundaries
    return prior;
}

Baseline::Baseline(const BaselinePrior& prior, const BaselineSettings& settings)
    : mean_(prior.mean), weight_(prior.weight), settings_(settings)
{
    if (!(settings.min_alpha > 0 && settings.min_alpha <= 1))
        throw std::invalid_argument("baseline settings: min_alpha must be in (0, 1], is " +
                                    std::to_string(settings.min_alpha));
    if (!(settings.min_shrink > 0 && settings.min_shrink <= 1))
        throw std::invalid_argument("baseline settings: min_shrink must be in (0, 1], is " +
                                    std::to_string(settings.min_shrink));
    if (!(settings.shrink_strength >= 0))
        throw std::invalid_argument("baseline settings: shrink_strength must be >= 0");
    if (!(prior.weight >= 0 && std::isfinite(prior.weight)))
        throw std::invalid_argument("baseline prior: weight must be >= 0");
    for (int i = 0; i < kFeatureCount; ++i) {
        if (!(settings.floor_sd[i] > 0 && std::isfinite(settings.floor_sd[i])))
            throw std::invalid_argument("baseline settings: floor_sd of " + featureName(i) + " must be > 0");
        if (!(prior.sd[i] > 0 && std::isfinite(prior.sd[i])))
            throw std::invalid_argument("baseline prior: sd of " + featureName(i) + " must be > 0");
        if (!std::isfinite(prior.mean[i]))
            throw std::invalid_argument("baseline prior: mean of " + featureName(i) + " must be finite");
    }
    covariance_ = prior.sd.array().square().matrix().asDiagonal();
    refactor();
}

void Baseline::update(const FeatureVector& x)
{
    bool measured = false;
    for (int i = kFirstScoredFeature; i < kFeatureCount; ++i)
        measured = measured || std::isfinite(x[i]);
    if (!measured)
        return;
    const FeatureVector delta = x.unaryExpr([](double v) { return std::isfinite(v) ? v : 0.0; }) -
                                mean_.cwiseProduct(x.unaryExpr([](double v) { return std::isfinite(v) ? 1.0 : 0.0; }));
    // Exponentially weighted moments (West 1979): the mean moves by alpha of
    // the deviation, the covariance decays by (1 - alpha) and takes in the
    // deviation's outer product.
    const double alpha = std::max(1.0 / (weight_ + 1.0), settings_.min_alpha);
    mean_ += alpha * delta;
    covariance_ = (1.0 - alpha) * (covariance_ + alpha * delta * delta.transpose());
    weight_ = std::min(weight_ + 1.0, 1.0 / settings_.min_alpha);
    ++updates_;
    refactor();
}

double Baseline::shrinkage() const
{
    return std::max(settings_.min_shrink, settings_.shrink_strength / (settings_.shrink_strength + weight_));
}

ScoredMatrix Baseline::regularizedCovariance() const
{
    const ScoredMatrix raw = scoredBlock(covariance_);
    const ScoredVector floor_var =
        settings_.floor_sd.segment<kScoredFeatureCount>(kFirstScoredFeature).array().square().matrix();
    const ScoredVector target = raw.diagonal().cwiseMax(floor_var);
    const double lambda = shrinkage();
    ScoredMatrix sigma = (1.0 - lambda) * raw;
    sigma.diagonal() += lambda * target;
    // Raising the diagonal keeps the matrix positive definite and bounds
    // what a tiny change of a constant feature can weigh.
    sigma.diagonal() = sigma.diagonal().cwiseMax(floor_var);
    return sigma;
}

void Baseline::refactor()
{
    const ScoredMatrix sigma = regularizedCovariance();
    sd_ = sigma.diagonal().cwiseSqrt();
    factor_.compute(sigma);
    // Positive definite by construction; rounding alone could break it,
    // and a larger floor repairs that (bounded).
    for (double jitter = 1e-12; factor_.info() != Eigen::Success && jitter < 1; jitter *= 100) {
        ScoredMatrix jittered = sigma;
        jittered.diagonal().array() += jitter * (1.0 + sigma.diagonal().maxCoeff());
        factor_.compute(jittered);
    }
}

ScoredVector Baseline::excess(const FeatureVector& x) const
{
    ScoredVector out;
    for (int i = 0; i < kScoredFeatureCount; ++i) {
        const double v = x[kFirstScoredFeature + i];
        out[i] = std::isfinite(v) ? std::max(0.0, v - mean_[kFirstScoredFeature + i]) : 0.0;
    }
    return out;
}

double Baseline::excessDistanceSquared(const ScoredVector& excess) const
{
    return factor_.matrixL().solve(excess).squaredNorm();
}

ScoredVector Baseline::contributions(const ScoredVector& excess) const
{
    return excess.cwiseProduct(factor_.solve(excess));
}

Eigen::VectorXd distancesSquared(const ExcessMatrix& excess, std::span<const Baseline* const> baselines)
{
    if (static_cast<std::size_t>(excess.rows()) != baselines.size())
        throw std::invalid_argument("distancesSquared: " + std::to_string(excess.rows()) + " rows but " +
                                    std::to_string(baselines.size()) + " baselines");
    Eigen::VectorXd out(excess.rows());
    for (Eigen::Index i = 0; i < excess.rows(); ++i) {
        const ScoredVector row = excess.row(i).transpose();
        out[i] = baselines[static_cast<std::size_t>(i)]->excessDistanceSquared(row);
    }
    return out;
}

double logUpperGammaQ(double a, double x)
{
    if (x <= 0)
        return 0.0;
    if (x < a + 1.0)
        return std::log1p(-std::min(lowerGammaPSeries(a, x), 1.0));
    return logUpperGammaQFraction(a, x);
}

double logChiBarSquaredTail(double distance_squared, int k)
{
    if (distance_squared <= 0)
        return std::log1p(-std::ldexp(1.0, -k));  // everything but the point mass at 0
    double log_tail = -std::numeric_limits<double>::infinity();
    for (int j = 1; j <= k; ++j)
        log_tail = logAdd(log_tail, logBinomial(k, j) - k * std::log(2.0) + logUpperGammaQ(j / 2.0, distance_squared / 2.0));
    return log_tail;
}

double anomalyProbability(double distance_squared, int k)
{
    return -std::expm1(logChiBarSquaredTail(distance_squared, k));
}

ChiBarSquaredTable::ChiBarSquaredTable(int k, double max_distance, double step) : k_(k), step_(step)
{
    const auto points = static_cast<std::size_t>(std::ceil(max_distance / step)) + 1;
    table_.reserve(points);
    for (std::size_t i = 0; i < points; ++i) {
        const double distance = static_cast<double>(i) * step;
        table_.push_back(logChiBarSquaredTail(distance * distance, k));
    }
}

double ChiBarSquaredTable::logTail(double distance_squared) const
{
    const double position = std::sqrt(distance_squared) / step_;
    if (!(position >= 0))
        return logChiBarSquaredTail(distance_squared, k_);
    const auto i = static_cast<std::size_t>(position);
    if (i + 1 >= table_.size())
        return logChiBarSquaredTail(distance_squared, k_);
    const double t = position - static_cast<double>(i);
    return table_[i] + t * (table_[i + 1] - table_[i]);
}

}  // namespace shhim::core
