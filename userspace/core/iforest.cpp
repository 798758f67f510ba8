#include "core/iforest.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace shhim::core {
namespace {

constexpr double kEulerGamma = 0.57721566490153286;
constexpr std::uint32_t kMaxDepthLimit = 64;

double harmonic(double n)
{
    if (n < 1000) {
        double sum = 0;
        for (int i = 1; i <= static_cast<int>(n); ++i)
            sum += 1.0 / i;
        return sum;
    }
    return std::log(n) + kEulerGamma + 1.0 / (2 * n) - 1.0 / (12 * n * n);
}

// The generator's raw output turned into numbers the same way on every
// standard library (std::uniform_*_distribution is implementation-defined).
double uniformUnit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
std::size_t uniformIndex(std::mt19937_64& rng, std::size_t n) { return static_cast<std::size_t>(rng() % n); }

class TreeGrower {
public:
    TreeGrower(const FeatureMatrix& samples, const std::vector<int>& features, std::uint32_t max_depth,
               std::mt19937_64& rng)
        : samples_(samples), features_(features), max_depth_(max_depth), rng_(rng)
    {
    }

    IsolationTree grow(std::vector<Eigen::Index> rows)
    {
        tree_ = IsolationTree{};
        grow(rows.begin(), rows.end(), 0);
        return std::move(tree_);
    }

private:
    using Iter = std::vector<Eigen::Index>::iterator;

    std::uint32_t addLeaf(std::size_t size)
    {
        return addNode(IsolationTree::kLeaf, 0.0, static_cast<std::uint32_t>(size));
    }

    std::uint32_t addNode(std::int32_t feature, double threshold, std::uint32_t size)
    {
        tree_.feature.push_back(feature);
        tree_.threshold.push_back(threshold);
        tree_.left.push_back(0);
        tree_.right.push_back(0);
        tree_.size.push_back(size);
        return static_cast<std::uint32_t>(tree_.nodes() - 1);
    }

    // Depth is bounded by max_depth (<= 64), so the recursion is too.
    std::uint32_t grow(Iter first, Iter last, std::uint32_t depth)
    {
        const auto count = static_cast<std::size_t>(last - first);
        if (depth >= max_depth_ || count <= 1)
            return addLeaf(count);
        // A split needs a feature that still varies among these samples.
        std::vector<std::pair<int, std::pair<double, double>>> candidates;
        for (const int f : features_) {
            double lo = samples_(*first, f), hi = lo;
            for (Iter it = first; it != last; ++it) {
                lo = std::min(lo, samples_(*it, f));
                hi = std::max(hi, samples_(*it, f));
            }
            if (hi > lo)
                candidates.push_back({f, {lo, hi}});
        }
        if (candidates.empty())
            return addLeaf(count);
        const auto& [feature, range] = candidates[uniformIndex(rng_, candidates.size())];
        double split = range.first + uniformUnit(rng_) * (range.second - range.first);
        if (split <= range.first)
            split = std::nextafter(range.first, range.second);  // both sides non-empty
        const Iter middle = std::partition(first, last, [&](Eigen::Index r) { return samples_(r, feature) < split; });
        const std::uint32_t node = addNode(feature, split, static_cast<std::uint32_t>(count));
        const std::uint32_t left = grow(first, middle, depth + 1);
        const std::uint32_t right = grow(middle, last, depth + 1);
        tree_.left[node] = left;
        tree_.right[node] = right;
        return node;
    }

    const FeatureMatrix& samples_;
    const std::vector<int>& features_;
    std::uint32_t max_depth_;
    std::mt19937_64& rng_;
    IsolationTree tree_;
};

}  // namespace

double averagePathLength(double n)
{
    if (n <= 1)
        return 0.0;
    return 2.0 * harmonic(n - 1) - 2.0 * (n - 1) / n;
}

double pathLength(const IsolationTree& tree, const FeatureVector& x)
{
    std::uint32_t node = 0;
    double depth = 0;
    // Children come after their parent (checked on load), so this ends.
    while (tree.feature[node] != IsolationTree::kLeaf) {
        node = x[tree.feature[node]] < tree.threshold[node] ? tree.left[node] : tree.right[node];
        depth += 1;
    }
    return depth + averagePathLength(tree.size[node]);
}

double IsolationForest::meanPathLength(const FeatureVector& x) const
{
    double sum = 0;
    for (const IsolationTree& tree : trees)
        sum += pathLength(tree, x);
    return trees.empty() ? 0.0 : sum / static_cast<double>(trees.size());
}

double IsolationForest::score(const FeatureVector& x) const
{
    const double c = averagePathLength(subsample_size);
    if (c <= 0)
        return 0.5;
    return std::exp2(-meanPathLength(x) / c);
}

Eigen::VectorXd IsolationForest::scores(const FeatureMatrix& rows) const
{
    Eigen::VectorXd out(rows.rows());
    for (Eigen::Index i = 0; i < rows.rows(); ++i)
        out[i] = score(rows.row(i).transpose());
    return out;
}

IsolationForest trainIsolationForest(const FeatureMatrix& samples, const IsolationForestOptions& options,
                                     std::mt19937_64& rng)
{
    if (samples.rows() == 0)
        throw std::invalid_argument("isolation forest: no training samples");
    if (options.trees == 0)
        throw std::invalid_argument("isolation forest: trees must be > 0");
    if (options.subsample_size < 2)
        throw std::invalid_argument("isolation forest: subsample_size must be >= 2");
    if (options.max_depth > kMaxDepthLimit)
        throw std::invalid_argument("isolation forest: max_depth must be <= 64, is " +
                                    std::to_string(options.max_depth));
    std::vector<int> features = options.features;
    if (features.empty())
        for (int f = kFirstScoredFeature; f < kFeatureCount; ++f)
            features.push_back(f);
    for (const int f : features) {
        if (f < 0 || f >= kFeatureCount)
            throw std::invalid_argument("isolation forest: feature index " + std::to_string(f) + " out of range");
        for (Eigen::Index r = 0; r < samples.rows(); ++r)
            if (!std::isfinite(samples(r, f)))
                throw std::invalid_argument("isolation forest: sample " + std::to_string(r) + " has a non-finite " +
                                            std::string(featureNames()[static_cast<std::size_t>(f)]));
    }

    IsolationForest forest;
    forest.subsample_size =
        static_cast<std::uint32_t>(std::min<Eigen::Index>(options.subsample_size, samples.rows()));
    forest.max_depth = options.max_depth != 0
                           ? options.max_depth
                           : static_cast<std::uint32_t>(std::ceil(std::log2(std::max(2u, forest.subsample_size))));
    std::vector<Eigen::Index> all(static_cast<std::size_t>(samples.rows()));
    std::iota(all.begin(), all.end(), Eigen::Index{0});
    TreeGrower grower(samples, features, forest.max_depth, rng);
    forest.trees.reserve(options.trees);
    for (std::uint32_t t = 0; t < options.trees; ++t) {
        // psi rows without replacement: a partial Fisher-Yates shuffle.
        for (std::size_t i = 0; i < forest.subsample_size; ++i)
            std::swap(all[i], all[i + uniformIndex(rng, all.size() - i)]);
        forest.trees.push_back(grower.grow({all.begin(), all.begin() + forest.subsample_size}));
    }
    return forest;
}

}  // namespace shhim::core
