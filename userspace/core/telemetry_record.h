// Recorded telemetry (userspace/proto/telemetry.proto): what `shhimd
// --record` writes per tick, and the labelled traces shhim-train and
// shhim-eval read. Conversions between the engines' TickCounts and the
// proto, one JSON line per message. Pure; the file side is
// telemetry_record_file.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/tick_judge.h"
#include "telemetry.pb.h"

namespace shhim::core {

class TraceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

v1::RecordedTick recordedTick(std::int64_t unix_ms, double seconds, std::span<const BackendTick> ticks);
// The ticks back; each backend's counts take the tick's length.
std::vector<BackendTick> backendTicks(const v1::RecordedTick& tick);

// One line of proto3 JSON (proto field names, zeros left out), no newline.
std::string toJsonLine(const google::protobuf::Message& message);
// Throws TraceError("<where>: ...") for a line that is not the message, a
// tick without a positive length, or a backend without its names.
v1::RecordedTick parseRecordedTick(std::string_view line, std::string_view where);
v1::TraceLabel parseTraceLabel(std::string_view line, std::string_view where);

// A labelled trace: its label and ticks, in file order.
struct Trace {
    std::string source;  // the file it came from
    v1::TraceLabel label;
    std::vector<v1::RecordedTick> ticks;
};

// The file side (telemetry_record_file.cpp). Reads plain or gzip'd text
// (by content, not by name). Throws TraceError naming the file and line.
// Required: line 1 is the label. Optional: a file whose line 1 is a tick is
// a recording (shhimd --record), returned with an empty label.
enum class Label { Required, Optional };
Trace readTrace(const std::string& path, Label label = Label::Required);

}  // namespace shhim::core
