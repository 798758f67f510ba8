// The baseline's moments, its regularized covariance and the one-sided
// Mahalanobis distance, against values worked out by hand.
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Eigenvalues>
#include <doctest/doctest.h>

#include "core/anomaly_baseline.h"

using namespace shhim;
using core::Feature;
using core::index;

namespace {

constexpr int p99 = index(Feature::LogP99);
constexpr int err = index(Feature::ServerError);
// Positions in the scored (rate-less) vectors.
constexpr int sp99 = p99 - core::kFirstScoredFeature;
constexpr int serr = err - core::kFirstScoredFeature;

// Mean 0, sd 1, worth one sample; shrinkage fixed at 0.1; floors tiny.
core::BaselinePrior unitPrior()
{
    core::BaselinePrior prior;
    prior.mean.setZero();
    prior.sd.setOnes();
    prior.weight = 1;
    return prior;
}

core::BaselineSettings handSettings()
{
    core::BaselineSettings s;
    s.min_alpha = 1e-6;
    s.shrink_strength = 0;
    s.min_shrink = 0.1;
    s.floor_sd.setConstant(1e-3);
    return s;
}

double minEigenvalue(const core::ScoredMatrix& m)
{
    return Eigen::SelfAdjointEigenSolver<core::ScoredMatrix>(m).eigenvalues().minCoeff();
}

}  // namespace

TEST_CASE("baseline: exponentially weighted moments from the prior, by hand")
{
    core::Baseline b(unitPrior(), handSettings());
    core::FeatureVector x1 = core::FeatureVector::Zero();
    x1[p99] = 2;
    x1[err] = 0.4;
    b.update(x1);  // alpha = 1/2
    CHECK(b.mean()[p99] == doctest::Approx(1));
    CHECK(b.mean()[err] == doctest::Approx(0.2));
    // S = (1 - a)(S + a d d'), d = x1
    CHECK(b.covariance()(p99, p99) == doctest::Approx(1.5));
    CHECK(b.covariance()(err, err) == doctest::Approx(0.54));
    CHECK(b.covariance()(p99, err) == doctest::Approx(0.2));
    CHECK(b.covariance()(1, 1) == doctest::Approx(0.5));

    b.update(core::FeatureVector::Zero());  // alpha = 1/3, d = -mean
    CHECK(b.weight() == doctest::Approx(3));
    CHECK(b.mean()[p99] == doctest::Approx(2.0 / 3));
    CHECK(b.mean()[err] == doctest::Approx(0.4 / 3));
    CHECK(b.covariance()(p99, p99) == doctest::Approx(2.0 / 3 * (1.5 + 1.0 / 3)));
    CHECK(b.covariance()(err, err) == doctest::Approx(2.0 / 3 * (0.54 + 0.04 / 3)));
    CHECK(b.covariance()(p99, err) == doctest::Approx(2.0 / 3 * (0.2 + 0.2 / 3)));

    // Shrinkage 0.1 toward the diagonal: off-diagonals x0.9, diagonal kept.
    const core::ScoredMatrix sigma = b.regularizedCovariance();
    CHECK(b.shrinkage() == doctest::Approx(0.1));
    CHECK(sigma(sp99, sp99) == doctest::Approx(b.covariance()(p99, p99)));
    CHECK(sigma(sp99, serr) == doctest::Approx(0.9 * b.covariance()(p99, err)));

    // The distance of a rise of both: the 2x2 inverse by hand.
    core::FeatureVector x = b.mean();
    x[p99] += 1;
    x[err] += 0.1;
    const double a = sigma(sp99, sp99), c = sigma(serr, serr), o = sigma(sp99, serr);
    const double det = a * c - o * o;
    const double expected = (c * 1 * 1 - 2 * o * 1 * 0.1 + a * 0.1 * 0.1) / det;
    CHECK(b.distanceSquared(x) == doctest::Approx(expected));
    const core::ScoredVector share = b.contributions(b.excess(x));
    CHECK(share.sum() == doctest::Approx(expected));
    CHECK(share[sp99] == doctest::Approx(1 * (c * 1 - o * 0.1) / det));
}

TEST_CASE("baseline: one-sided, without the rate, NaN at the mean")
{
    core::Baseline b(unitPrior(), handSettings());
    core::FeatureVector better = core::FeatureVector::Constant(-3);  // faster and cleaner than usual
    CHECK(b.distanceSquared(better) == 0);
    core::FeatureVector surge = core::FeatureVector::Zero();
    surge[index(Feature::RequestRate)] = 1e6;
    CHECK(b.distanceSquared(surge) == 0);
    core::FeatureVector unmeasured = core::FeatureVector::Constant(std::numeric_limits<double>::quiet_NaN());
    CHECK(b.distanceSquared(unmeasured) == 0);
    // Diagonal prior: a rise of 3 sd in one feature is 9 (the floor is far below).
    core::FeatureVector slow = core::FeatureVector::Zero();
    slow[p99] = 3;
    CHECK(b.distanceSquared(slow) == doctest::Approx(9));

    // NaN features do not move the mean; an all-NaN tick is not a sample.
    b.update(unmeasured);
    CHECK(b.updates() == 0);
    core::FeatureVector partial = unmeasured;
    partial[err] = 1;
    b.update(partial);
    CHECK(b.updates() == 1);
    CHECK(b.mean()[err] == doctest::Approx(0.5));
    CHECK(b.mean()[p99] == 0);
}

TEST_CASE("baseline: batched distances are the per-row ones")
{
    core::Baseline a(unitPrior(), handSettings());
    core::BaselinePrior wide = unitPrior();
    wide.sd.setConstant(2);
    core::Baseline b(wide, handSettings());
    core::ExcessMatrix excess = core::ExcessMatrix::Zero(3, core::kScoredFeatureCount);
    excess(0, sp99) = 3;
    excess(1, sp99) = 3;
    excess(2, serr) = 1;
    const std::vector<const core::Baseline*> rows{&a, &b, &b};
    const Eigen::VectorXd d2 = core::distancesSquared(excess, rows);
    CHECK(d2[0] == doctest::Approx(9));
    CHECK(d2[1] == doctest::Approx(9.0 / 4));
    CHECK(d2[2] == doctest::Approx(1.0 / 4));
    CHECK_THROWS_AS(core::distancesSquared(excess, std::vector<const core::Baseline*>{&a}), std::invalid_argument);
}

TEST_CASE("baseline: positive definite under constant features and tiny histories")
{
    const core::BaselineSettings settings;  // the defaults
    SUBCASE("constant features for a long time")
    {
        core::Baseline b(core::defaultPrior(), settings);
        core::FeatureVector x = core::FeatureVector::Zero();
        x[p99] = std::log(35.0);
        for (int i = 0; i < 20000; ++i)
            b.update(x);
        CHECK(b.factor().info() == Eigen::Success);
        CHECK(minEigenvalue(b.regularizedCovariance()) > 0.5 * 0.01 * 0.01);
        core::FeatureVector bit = x;
        bit[err] = 0.001;  // 0.1% 5xx against a constant 0: a tenth of the 1% floor
        CHECK(b.distanceSquared(bit) == doctest::Approx(0.01).epsilon(0.05));
        CHECK(std::isfinite(b.distanceSquared(x + core::FeatureVector::Constant(10))));
    }
    SUBCASE("no prior weight and a single sample")
    {
        core::BaselinePrior none = core::defaultPrior();
        none.weight = 0;
        core::Baseline b(none, settings);
        b.update(core::FeatureVector::Constant(0.5));  // alpha 1: the raw covariance is all zero
        CHECK(b.covariance().isZero());
        CHECK(b.factor().info() == Eigen::Success);
        CHECK(minEigenvalue(b.regularizedCovariance()) >= 0.01 * 0.01 * 0.999);
    }
    SUBCASE("perfectly correlated features")
    {
        core::Baseline b(core::defaultPrior(), settings);
        for (int i = 0; i < 5000; ++i) {
            core::FeatureVector x = core::FeatureVector::Zero();
            x[p99] = x[index(Feature::LogP50)] = std::sin(i * 0.1);  // identical columns
            b.update(x);
        }
        CHECK(b.factor().info() == Eigen::Success);
        CHECK(minEigenvalue(b.regularizedCovariance()) > 0);
    }
}

TEST_CASE("baseline: settings that could not stay positive definite are refused, named")
{
    core::BaselineSettings s;
    s.min_shrink = 0;
    CHECK_THROWS_WITH_AS(core::Baseline(core::defaultPrior(), s), doctest::Contains("min_shrink"), std::invalid_argument);
    s = core::BaselineSettings{};
    s.floor_sd[p99] = 0;
    CHECK_THROWS_WITH_AS(core::Baseline(core::defaultPrior(), s), doctest::Contains("log_p99_ms"), std::invalid_argument);
    core::BaselinePrior prior = core::defaultPrior();
    prior.sd[err] = -1;
    CHECK_THROWS_WITH_AS(core::Baseline(prior, core::BaselineSettings{}), doctest::Contains("server_error"),
                         std::invalid_argument);
}

TEST_CASE("calibration: incomplete gamma and the chi-bar-squared tail")
{
    CHECK(core::logUpperGammaQ(1, 3) == doctest::Approx(-3));  // Q(1, x) = e^-x
    CHECK(core::logUpperGammaQ(1, 0.2) == doctest::Approx(-0.2));
    // k = 1: P(max(0, Z)^2 > x) = P(Z > sqrt x); 1.96^2 -> 0.025.
    CHECK(std::exp(core::logChiBarSquaredTail(1.959964 * 1.959964, 1)) == doctest::Approx(0.025).epsilon(1e-4));
    // k = 2: 1/2 P(chi2_1 > x) + 1/4 e^(-x/2).
    const double x = 5;
    CHECK(std::exp(core::logChiBarSquaredTail(x, 2)) ==
          doctest::Approx(0.5 * std::erfc(std::sqrt(x / 2)) + 0.25 * std::exp(-x / 2)));
    // Far tails stay finite in logs and the probability is monotone.
    CHECK(core::logChiBarSquaredTail(5000, core::kScoredFeatureCount) < -2400);
    CHECK(core::anomalyProbability(0) < 0.001);
    CHECK(core::anomalyProbability(10) < core::anomalyProbability(20));
    CHECK(core::anomalyProbability(40) > 0.9999);
}

TEST_CASE("calibration: the tabulated tail matches the exact one")
{
    const core::ChiBarSquaredTable table;
    for (const double d2 : {0.0, 0.013, 1.0, 7.77, 28.5, 199.99, 250.0, 5000.0}) {
        CAPTURE(d2);
        const double exact = core::logChiBarSquaredTail(d2, core::kScoredFeatureCount);
        CHECK(table.logTail(d2) == doctest::Approx(exact).epsilon(1e-5));
    }
}
