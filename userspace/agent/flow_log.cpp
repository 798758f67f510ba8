#include "agent/flow_log.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace shhim::agent {
namespace {

std::runtime_error fileError(const std::string& what, const std::string& path, int error)
{
    return std::runtime_error("flow log: " + what + " " + path + ": " + std::strerror(error));
}

}  // namespace

std::string flowJsonLine(const v1::Flow& flow)
{
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = false;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string json;
    const auto status = google::protobuf::util::MessageToJsonString(flow, &json, options);
    if (!status.ok())
        throw std::runtime_error("flow log: cannot convert a Flow to JSON: " + std::string(status.message()));
    return json;
}

FlowLogWriter::FlowLogWriter(std::string path, core::RotationLimits limits)
    : path_(std::move(path)), limits_(limits)
{
    open();
}

void FlowLogWriter::open()
{
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        throw fileError("open", path_, errno);
    fd_.reset(fd);
    struct stat st = {};
    if (::fstat(fd, &st) != 0)
        throw fileError("stat", path_, errno);
    bytes_ = static_cast<std::uint64_t>(st.st_size);
}

void FlowLogWriter::rotate()
{
    fd_.reset();
    for (const auto& step : core::rotationPlan(path_, limits_.keep)) {
        const int rc = step.to.empty() ? ::unlink(step.from.c_str()) : ::rename(step.from.c_str(), step.to.c_str());
        if (rc != 0 && errno != ENOENT)
            throw fileError(step.to.empty() ? "remove" : "rename to " + step.to + ":", step.from, errno);
    }
    open();
}

void FlowLogWriter::writeLine(std::string_view line)
{
    std::string record(line);
    record += '\n';
    if (core::needsRotation(bytes_, record.size(), limits_))
        rotate();
    const ssize_t written = ::write(fd_.get(), record.data(), record.size());
    if (written < 0)
        throw fileError("write", path_, errno);
    if (static_cast<std::size_t>(written) != record.size()) {
        // Disk full mid-line: cut the file back so no partial line stays.
        if (::ftruncate(fd_.get(), static_cast<off_t>(bytes_)) != 0)
            throw fileError("truncate a partial line of", path_, errno);
        throw fileError("write (short)", path_, ENOSPC);
    }
    bytes_ += record.size();
    ++lines_;
}

void FlowLogWriter::write(const v1::Flow& flow) { writeLine(flowJsonLine(flow)); }

}  // namespace shhim::agent
