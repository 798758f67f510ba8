// The datapath reports progress ("attached xdp on eth0 (native)") through a
// callback so that it needs no logging library; the agent forwards to spdlog.
#pragma once

#include <functional>
#include <string>

namespace shhim::datapath {

enum class LogLevel { Debug, Info, Warn };

using LogFn = std::function<void(LogLevel, const std::string&)>;

}  // namespace shhim::datapath
