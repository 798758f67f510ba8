// What shhim-train and shhim-eval share: turning their FILE|DIR arguments
// into trace files, and reading each as a labelled trace or a plain
// recording.
#pragma once

#include <string>
#include <vector>

#include "core/telemetry_record.h"

namespace shhim::tools {

// Files as given; a directory gives its *.jsonl and *.jsonl.gz files,
// sorted. Throws std::runtime_error naming a path that does not exist or
// a directory without traces.
std::vector<std::string> expandTraceArguments(const std::vector<std::string>& arguments);

// A file whose first line is a TraceLabel is a labelled trace; otherwise
// it is a recording (`shhimd --record`), returned with an empty label.
// Throws core::TraceError naming the file and line.
core::Trace readTraceOrRecording(const std::string& path);

}  // namespace shhim::tools
