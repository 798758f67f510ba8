// Isolation Forest path lengths against the textbook, and the model file.
#include <cmath>
#include <filesystem>
#include <random>

#include <doctest/doctest.h>
#include <unistd.h>

#include "core/anomaly_model.h"
#include "core/iforest.h"

using namespace shhim;
using core::Feature;
using core::index;

namespace {

core::IsolationForestOptions options(std::uint32_t trees, std::uint32_t subsample, std::uint32_t max_depth = 0)
{
    core::IsolationForestOptions o;
    o.trees = trees;
    o.subsample_size = subsample;
    o.max_depth = max_depth;
    return o;
}

constexpr int p99 = index(Feature::LogP99);
constexpr int err = index(Feature::ServerError);

// n points 0, 1, ..., n-1 in the p99 feature, everything else 0.
core::FeatureMatrix evenlySpaced(int n)
{
    core::FeatureMatrix m = core::FeatureMatrix::Zero(n, core::kFeatureCount);
    for (int i = 0; i < n; ++i)
        m(i, p99) = i;
    return m;
}

core::AnomalyModel smallModel()
{
    std::mt19937_64 rng(7);
    core::FeatureMatrix samples(200, core::kFeatureCount);
    std::normal_distribution<double> noise(0, 1);
    for (Eigen::Index r = 0; r < samples.rows(); ++r)
        for (int c = 0; c < core::kFeatureCount; ++c)
            samples(r, c) = std::abs(noise(rng));
    core::AnomalyModel model;
    model.version = "unit-test-1";
    model.forest = core::trainIsolationForest(samples, options(10, 64), rng);
    model.score_threshold = 0.65;
    model.training.set_samples(200);
    model.training.set_seed(7);
    return model;
}

}  // namespace

TEST_CASE("iforest: c(n) is the textbook average path length")
{
    CHECK(core::averagePathLength(1) == 0);
    CHECK(core::averagePathLength(2) == doctest::Approx(1));
    CHECK(core::averagePathLength(3) == doctest::Approx(5.0 / 3));   // 2 H(2) - 4/3
    CHECK(core::averagePathLength(4) == doctest::Approx(13.0 / 6));  // 2 H(3) - 6/4
    // The paper's approximation H(i) ~ ln i + Euler's gamma at psi = 256.
    CHECK(core::averagePathLength(256) ==
          doctest::Approx(2 * (std::log(255.0) + 0.5772156649) - 2 * 255.0 / 256).epsilon(1e-3));
}

TEST_CASE("iforest: path length and score of a hand-built tree")
{
    // root: p99 < 1 ? leaf(3) : (5xx < 0.5 ? leaf(1) : leaf(2))
    core::IsolationTree t;
    t.feature = {p99, core::IsolationTree::kLeaf, err, core::IsolationTree::kLeaf, core::IsolationTree::kLeaf};
    t.threshold = {1, 0, 0.5, 0, 0};
    t.left = {1, 0, 3, 0, 0};
    t.right = {2, 0, 4, 0, 0};
    t.size = {6, 3, 3, 1, 2};
    core::FeatureVector low = core::FeatureVector::Zero();
    low[p99] = 0.5;
    core::FeatureVector high_err = core::FeatureVector::Zero();
    high_err[p99] = 2;
    high_err[err] = 0.7;
    core::FeatureVector high_ok = high_err;
    high_ok[err] = 0.1;
    CHECK(core::pathLength(t, low) == doctest::Approx(1 + 5.0 / 3));  // depth 1 + c(3)
    CHECK(core::pathLength(t, high_err) == doctest::Approx(2 + 1));   // depth 2 + c(2)
    CHECK(core::pathLength(t, high_ok) == doctest::Approx(2));        // depth 2 + c(1)

    core::IsolationForest forest{.subsample_size = 6, .max_depth = 2, .trees = {t, t}};
    CHECK(forest.score(high_ok) == doctest::Approx(std::exp2(-2 / core::averagePathLength(6))));
}

TEST_CASE("iforest: path lengths on a small known sample match c(n)")
{
    // Three points: whatever the split, one is isolated at depth 1 and two
    // at depth 2, so every tree's mean is 5/3 = c(3).
    std::mt19937_64 rng(1);
    const core::FeatureMatrix three = evenlySpaced(3);
    const core::IsolationForest f3 =
        core::trainIsolationForest(three, options(50, 3, 64), rng);
    for (const core::IsolationTree& tree : f3.trees) {
        double sum = 0;
        for (int i = 0; i < 3; ++i)
            sum += core::pathLength(tree, three.row(i).transpose());
        CHECK(sum / 3 == doctest::Approx(core::averagePathLength(3)));
    }
    // Eight evenly spaced points: a uniform split picks each gap with equal
    // probability, as a random BST's pivot, so E[h] over the points is c(8).
    const core::FeatureMatrix eight = evenlySpaced(8);
    const core::IsolationForest f8 =
        core::trainIsolationForest(eight, options(4000, 8, 64), rng);
    double sum = 0;
    for (int i = 0; i < 8; ++i)
        sum += f8.meanPathLength(eight.row(i).transpose());
    CHECK(sum / 8 == doctest::Approx(core::averagePathLength(8)).epsilon(0.01));
    // Depth-limited trees (the default limit ceil(log2 8) = 3) stand in
    // c(size) for what they did not grow: close to c(8) too.
    const core::IsolationForest cut = core::trainIsolationForest(eight, options(4000, 8), rng);
    CHECK(cut.max_depth == 3);
    double cut_sum = 0;
    for (int i = 0; i < 8; ++i)
        cut_sum += cut.meanPathLength(eight.row(i).transpose());
    CHECK(cut_sum / 8 == doctest::Approx(core::averagePathLength(8)).epsilon(0.05));
}

TEST_CASE("iforest: an outlier isolates faster than the cluster; training is reproducible")
{
    // Like the engine's input: rises above a baseline, zero at or below it.
    std::mt19937_64 data_rng(3);
    std::normal_distribution<double> noise(0, 1);
    core::FeatureMatrix samples(500, core::kFeatureCount);
    for (Eigen::Index r = 0; r < samples.rows(); ++r)
        for (int c = 0; c < core::kFeatureCount; ++c)
            samples(r, c) = std::max(0.0, noise(data_rng));
    std::mt19937_64 a(11), b(11);
    const core::IsolationForest fa = core::trainIsolationForest(samples, {}, a);
    const core::IsolationForest fb = core::trainIsolationForest(samples, {}, b);
    CHECK(fa.trees.size() == 100);
    CHECK(fa.max_depth == 8);
    REQUIRE(fa.trees.size() == fb.trees.size());
    for (std::size_t t = 0; t < fa.trees.size(); ++t) {
        CHECK(fa.trees[t].feature == fb.trees[t].feature);
        CHECK(fa.trees[t].threshold == fb.trees[t].threshold);
    }
    // The request rate is never split on.
    for (const core::IsolationTree& tree : fa.trees)
        for (const std::int32_t f : tree.feature)
            CHECK(f != index(Feature::RequestRate));

    const core::FeatureVector inlier = core::FeatureVector::Zero();
    core::FeatureVector failing = core::FeatureVector::Zero();  // latency and errors up together
    for (const Feature f : {Feature::LogP50, Feature::LogP99, Feature::ServerError, Feature::Reset, Feature::Unanswered})
        failing[index(f)] = 5;
    core::FeatureVector slow = inlier;  // one feature alone: weaker evidence in 11 dimensions
    slow[p99] = 8;
    core::FeatureVector surge = inlier;
    surge[index(Feature::RequestRate)] = 1000;
    const Eigen::VectorXd scores = fa.scores(samples);
    CHECK(fa.score(failing) > 0.65);
    CHECK(fa.score(failing) > scores.maxCoeff());
    CHECK(fa.score(slow) > fa.score(inlier));
    CHECK(fa.score(inlier) < 0.5);
    CHECK(fa.score(surge) == fa.score(inlier));
    CHECK(scores.mean() < 0.5);
}

TEST_CASE("iforest: the trainer names bad input")
{
    std::mt19937_64 rng(1);
    core::FeatureMatrix samples = evenlySpaced(4);
    samples(2, p99) = std::nan("");
    CHECK_THROWS_WITH_AS(core::trainIsolationForest(samples, {}, rng), doctest::Contains("sample 2 has a non-finite log_p99_ms"),
                         std::invalid_argument);
    CHECK_THROWS_AS(core::trainIsolationForest(core::FeatureMatrix(0, core::kFeatureCount), {}, rng), std::invalid_argument);
    CHECK_THROWS_AS(core::trainIsolationForest(evenlySpaced(4), options(0, 256), rng), std::invalid_argument);
}

TEST_CASE("model file: round trip through bytes and a file")
{
    const core::AnomalyModel model = smallModel();
    const std::string bytes = core::serializeModel(model);
    const core::AnomalyModel back = core::parseModel(bytes, "mem");
    CHECK(back.version == "unit-test-1");
    CHECK(back.score_threshold == 0.65);
    CHECK(back.training.samples() == 200);
    REQUIRE(back.forest.trees.size() == model.forest.trees.size());
    CHECK(back.forest.subsample_size == model.forest.subsample_size);
    for (std::size_t t = 0; t < model.forest.trees.size(); ++t) {
        CHECK(back.forest.trees[t].feature == model.forest.trees[t].feature);
        CHECK(back.forest.trees[t].threshold == model.forest.trees[t].threshold);
        CHECK(back.forest.trees[t].left == model.forest.trees[t].left);
        CHECK(back.forest.trees[t].right == model.forest.trees[t].right);
        CHECK(back.forest.trees[t].size == model.forest.trees[t].size);
    }
    core::FeatureVector x = core::FeatureVector::Constant(0.3);
    CHECK(back.forest.score(x) == model.forest.score(x));

    const std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("shhim-model-test-" + std::to_string(::getpid()) + ".model");
    core::writeModelFile(path.string(), model);
    const core::AnomalyModel from_file = core::readModelFile(path.string());
    std::filesystem::remove(path);
    CHECK(core::serializeModel(from_file) == bytes);
    CHECK_THROWS_WITH_AS(core::readModelFile(path.string()), doctest::Contains("cannot read"), core::ModelError);
}

TEST_CASE("model file: a mismatched version, feature list or node is refused, named")
{
    const v1::AnomalyModel good = core::toProto(smallModel());
    CHECK_NOTHROW(core::fromProto(good, "m.model"));

    v1::AnomalyModel m = good;
    m.set_format_version(2);
    CHECK_THROWS_WITH_AS(core::fromProto(m, "m.model"), "m.model: format_version 2 is not supported (this engine reads 1)",
                         core::ModelError);
    m = good;
    m.set_feature_names(7, "log_p95_ms");
    CHECK_THROWS_WITH_AS(core::fromProto(m, "m.model"),
                         "m.model: feature 7 is \"log_p95_ms\", this engine's is \"log_p99_ms\"", core::ModelError);
    m = good;
    m.mutable_feature_names()->RemoveLast();
    CHECK_THROWS_WITH_AS(core::fromProto(m, "m.model"), doctest::Contains("model has 11 features, this engine has 12"),
                         core::ModelError);
    m = good;
    m.set_feature_space("raw");
    CHECK_THROWS_WITH_AS(core::fromProto(m, "m.model"), doctest::Contains("feature_space is \"raw\""), core::ModelError);
    m = good;
    m.mutable_iforest()->mutable_trees(3)->set_left(0, 0);  // a cycle back to the root
    CHECK_THROWS_WITH_AS(core::fromProto(m, "m.model"), doctest::Contains("tree 3 node 0: child 0 is not a later node"),
                         core::ModelError);
    m = good;
    m.mutable_iforest()->mutable_trees(1)->mutable_size()->RemoveLast();
    CHECK_THROWS_WITH_AS(core::fromProto(m, "m.model"), doctest::Contains("tree 1: node arrays differ in length"),
                         core::ModelError);
    CHECK_THROWS_WITH_AS(core::parseModel("\xff\xff not a model", "junk.model"), doctest::Contains("junk.model: not an anomaly model"),
                         core::ModelError);
}
