// The one place the anomaly model code touches the filesystem (kept apart
// like policy_file.cpp so that the rest stays pure).
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/anomaly_model.h"

namespace shhim::core {

AnomalyModel readModelFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw ModelError("cannot read " + path + ": " + std::strerror(errno));
    std::string bytes;
    bytes.resize(kMaxModelFileBytes + 1);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (in.bad())
        throw ModelError("cannot read " + path + ": " + std::strerror(errno));
    bytes.resize(static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > kMaxModelFileBytes)
        throw ModelError(path + " is larger than 64 MiB");
    return parseModel(bytes, path);
}

void writeModelFile(const std::string& path, const AnomalyModel& model)
{
    const std::string bytes = serializeModel(model);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out)
        throw ModelError("cannot write " + path + ": " + std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out)
        throw ModelError("cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace shhim::core
