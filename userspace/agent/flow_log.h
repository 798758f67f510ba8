// shhimd --flow-log FILE: finished flows and periodic records of long ones
// as JSON lines, each the protobuf JSON of message shhim.v1.Flow (built by
// core::toFlow, as ListFlows builds it), rotated by size: FILE, FILE.1 ..
// FILE.keep, each at most max_bytes, never a partial line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "core/flow_log.h"
#include "shhim.pb.h"

namespace shhim::agent {

// Appends whole lines to FILE and rotates it. Throws std::runtime_error
// naming the file when it cannot be opened, renamed or written.
class FlowLogWriter {
public:
    FlowLogWriter(std::string path, core::RotationLimits limits);

    // One line (a '\n' is added), rotating first if it would not fit. The
    // line goes out in one write(2) on an O_APPEND descriptor.
    void writeLine(std::string_view line);
    void write(const v1::Flow& flow);

    const std::string& path() const { return path_; }
    std::uint64_t fileBytes() const { return bytes_; }
    std::uint64_t linesWritten() const { return lines_; }

private:
    void open();
    void rotate();

    std::string path_;
    core::RotationLimits limits_;
    UniqueFd fd_;
    std::uint64_t bytes_ = 0;
    std::uint64_t lines_ = 0;
};

// The protobuf JSON of a Flow on one line (field names as in the .proto,
// zero values included, like `shhimctl flows -o json`).
std::string flowJsonLine(const v1::Flow& flow);

}  // namespace shhim::agent
