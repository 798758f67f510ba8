#include "core/anomaly_model.h"

#include <cmath>

namespace shhim::core {
namespace {

[[noreturn]] void fail(std::string_view source, const std::string& what)
{
    throw ModelError(std::string(source) + ": " + what);
}

void checkFeatures(const v1::AnomalyModel& message, std::string_view source)
{
    const auto& expected = featureNames();
    const auto& names = message.feature_names();
    if (static_cast<std::size_t>(names.size()) != expected.size())
        fail(source, "model has " + std::to_string(names.size()) + " features, this engine has " +
                         std::to_string(expected.size()));
    for (int i = 0; i < names.size(); ++i)
        if (names[i] != expected[static_cast<std::size_t>(i)])
            fail(source, "feature " + std::to_string(i) + " is \"" + names[i] + "\", this engine's is \"" +
                             std::string(expected[static_cast<std::size_t>(i)]) + "\"");
    if (message.feature_space() != kModelFeatureSpace)
        fail(source, "feature_space is \"" + message.feature_space() + "\", this engine's is \"" +
                         std::string(kModelFeatureSpace) + "\"");
}

IsolationTree treeFromProto(const v1::IsolationTree& in, std::string_view source, int index)
{
    const std::string where = "tree " + std::to_string(index);
    const int n = in.feature_size();
    if (n == 0)
        fail(source, where + " has no nodes");
    if (in.threshold_size() != n || in.left_size() != n || in.right_size() != n || in.size_size() != n)
        fail(source, where + ": node arrays differ in length (feature " + std::to_string(n) + ", threshold " +
                         std::to_string(in.threshold_size()) + ", left " + std::to_string(in.left_size()) +
                         ", right " + std::to_string(in.right_size()) + ", size " + std::to_string(in.size_size()) +
                         ")");
    IsolationTree tree;
    tree.feature.assign(in.feature().begin(), in.feature().end());
    tree.threshold.assign(in.threshold().begin(), in.threshold().end());
    tree.left.assign(in.left().begin(), in.left().end());
    tree.right.assign(in.right().begin(), in.right().end());
    tree.size.assign(in.size().begin(), in.size().end());
    for (int i = 0; i < n; ++i) {
        const std::string node = where + " node " + std::to_string(i);
        const std::int32_t f = tree.feature[static_cast<std::size_t>(i)];
        if (f == IsolationTree::kLeaf)
            continue;
        if (f < 0 || f >= kFeatureCount)
            fail(source, node + ": feature " + std::to_string(f) + " is out of range");
        if (!std::isfinite(tree.threshold[static_cast<std::size_t>(i)]))
            fail(source, node + ": threshold is not finite");
        for (const std::uint32_t child : {tree.left[static_cast<std::size_t>(i)], tree.right[static_cast<std::size_t>(i)]})
            if (child <= static_cast<std::uint32_t>(i) || child >= static_cast<std::uint32_t>(n))
                fail(source, node + ": child " + std::to_string(child) + " is not a later node of the tree");
    }
    return tree;
}

}  // namespace

v1::AnomalyModel toProto(const AnomalyModel& model)
{
    v1::AnomalyModel out;
    out.set_format_version(kModelFormatVersion);
    out.set_model_version(model.version);
    for (const std::string_view name : featureNames())
        out.add_feature_names(std::string(name));
    out.set_feature_space(std::string(kModelFeatureSpace));
    v1::IsolationForestModel& forest = *out.mutable_iforest();
    forest.set_subsample_size(model.forest.subsample_size);
    forest.set_max_depth(model.forest.max_depth);
    forest.set_score_threshold(model.score_threshold);
    for (const IsolationTree& tree : model.forest.trees) {
        v1::IsolationTree& t = *forest.add_trees();
        t.mutable_feature()->Add(tree.feature.begin(), tree.feature.end());
        t.mutable_threshold()->Add(tree.threshold.begin(), tree.threshold.end());
        t.mutable_left()->Add(tree.left.begin(), tree.left.end());
        t.mutable_right()->Add(tree.right.begin(), tree.right.end());
        t.mutable_size()->Add(tree.size.begin(), tree.size.end());
    }
    *out.mutable_training() = model.training;
    return out;
}

AnomalyModel fromProto(const v1::AnomalyModel& message, std::string_view source)
{
    if (message.format_version() != kModelFormatVersion)
        fail(source, "format_version " + std::to_string(message.format_version()) + " is not supported (this engine reads " +
                         std::to_string(kModelFormatVersion) + ")");
    checkFeatures(message, source);
    const v1::IsolationForestModel& forest = message.iforest();
    if (forest.subsample_size() < 2)
        fail(source, "iforest.subsample_size must be >= 2, is " + std::to_string(forest.subsample_size()));
    if (forest.trees_size() == 0)
        fail(source, "iforest has no trees");
    if (!(forest.score_threshold() == 0 || (forest.score_threshold() > 0.5 && forest.score_threshold() < 1)))
        fail(source, "iforest.score_threshold must be 0 (default) or in (0.5, 1), is " +
                         std::to_string(forest.score_threshold()));
    AnomalyModel model;
    model.version = message.model_version();
    model.forest.subsample_size = forest.subsample_size();
    model.forest.max_depth = forest.max_depth();
    model.score_threshold = forest.score_threshold();
    model.forest.trees.reserve(static_cast<std::size_t>(forest.trees_size()));
    for (int i = 0; i < forest.trees_size(); ++i)
        model.forest.trees.push_back(treeFromProto(forest.trees(i), source, i));
    model.training = message.training();
    return model;
}

std::string serializeModel(const AnomalyModel& model)
{
    std::string bytes;
    toProto(model).SerializeToString(&bytes);
    return bytes;
}

AnomalyModel parseModel(const std::string& bytes, std::string_view source)
{
    v1::AnomalyModel message;
    if (!message.ParseFromString(bytes))
        fail(source, "not an anomaly model (protobuf parse failed)");
    return fromProto(message, source);
}

}  // namespace shhim::core
