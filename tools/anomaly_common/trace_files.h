// What shhim-train and shhim-eval share: turning their FILE|DIR arguments
// into trace files (core::readTrace reads each).
#pragma once

#include <string>
#include <vector>

namespace shhim::tools {

// Files as given; a directory gives its *.jsonl and *.jsonl.gz files,
// sorted. Throws std::runtime_error naming a path that does not exist or
// a directory without traces.
std::vector<std::string> expandTraceArguments(const std::vector<std::string>& arguments);

}  // namespace shhim::tools
