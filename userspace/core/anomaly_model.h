// The anomaly model file (userspace/proto/model.proto): an Isolation Forest
// with its version and training summary, to and from bytes. Loading checks
// everything first (format version, feature names and space, every node)
// and names what is wrong and where.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/iforest.h"
#include "model.pb.h"

namespace shhim::core {

constexpr std::uint32_t kModelFormatVersion = 1;
// The trees see each feature's rise above its backend's baseline, in that
// baseline's standard deviations (anomaly_engine.h), so a model trained on
// one network's traffic transfers to backends of another speed.
constexpr std::string_view kModelFeatureSpace = "baseline_excess_sd";

class ModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct AnomalyModel {
    std::string version;  // model_version
    IsolationForest forest;
    double score_threshold = 0;  // 0: the engine's default
    v1::ModelTraining training;
};

v1::AnomalyModel toProto(const AnomalyModel& model);
// Throws ModelError("<source>: ...") on a version, feature or node problem.
AnomalyModel fromProto(const v1::AnomalyModel& message, std::string_view source);

std::string serializeModel(const AnomalyModel& model);
// `source` names the bytes in errors (a file name).
AnomalyModel parseModel(const std::string& bytes, std::string_view source);

constexpr std::size_t kMaxModelFileBytes = 64 << 20;
// The file touching part (anomaly_model_file.cpp). Throws ModelError naming
// the file and the errno text, or what parseModel() found.
AnomalyModel readModelFile(const std::string& path);
void writeModelFile(const std::string& path, const AnomalyModel& model);

}  // namespace shhim::core
