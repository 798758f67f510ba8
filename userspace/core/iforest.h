// Isolation Forest (Liu, Ting & Zhou 2008) over the anomaly features
// (issue 5 item 2): scoring by average path length, and a trainer that
// takes its random generator from the caller so that a model is
// reproducible from its seed. Pure; the file format is anomaly_model.h.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <Eigen/Core>

#include "core/anomaly_features.h"

namespace shhim::core {

// Flat node arrays (the layout of v1::IsolationTree in model.proto).
struct IsolationTree {
    static constexpr std::int32_t kLeaf = -1;
    std::vector<std::int32_t> feature;  // kLeaf or a Feature index
    std::vector<double> threshold;      // go left when x[feature] < threshold
    std::vector<std::uint32_t> left;
    std::vector<std::uint32_t> right;
    std::vector<std::uint32_t> size;    // leaves: training samples that reached it

    std::size_t nodes() const { return feature.size(); }
};

// c(n) = 2 H(n-1) - 2 (n-1) / n: the average path length of an unsuccessful
// search in a binary search tree of n points, i.e. the expected depth at
// which n points are isolated. c(0) = c(1) = 0, c(2) = 1.
double averagePathLength(double n);

// Edges from the root to x's leaf, plus c(size) of that leaf for the part
// of the tree the depth limit left ungrown.
double pathLength(const IsolationTree& tree, const FeatureVector& x);

struct IsolationForest {
    std::uint32_t subsample_size = 0;  // psi
    std::uint32_t max_depth = 0;
    std::vector<IsolationTree> trees;

    // E[h(x)] over the trees.
    double meanPathLength(const FeatureVector& x) const;
    // 2^(-E[h(x)] / c(psi)): near 1 isolates fast (anomalous), around 0.5 or
    // below is ordinary.
    double score(const FeatureVector& x) const;
    Eigen::VectorXd scores(const FeatureMatrix& rows) const;
};

struct IsolationForestOptions {
    std::uint32_t trees = 100;
    std::uint32_t subsample_size = 256;  // capped at the number of samples
    std::uint32_t max_depth = 0;         // 0: ceil(log2(psi)), the paper's limit
    // Features a split may use; empty: every scored feature (never the
    // request rate).
    std::vector<int> features;
};

// Grows the forest from `samples` (one row per sample, finite values in the
// features used). Throws std::invalid_argument naming the problem (no
// samples, a non-finite value with its row and feature, a bad option).
IsolationForest trainIsolationForest(const FeatureMatrix& samples, const IsolationForestOptions& options,
                                     std::mt19937_64& rng);

}  // namespace shhim::core
