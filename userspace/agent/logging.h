// spdlog set-up for shhimd: one line per event on stderr, with a level.
#pragma once

#include <spdlog/spdlog.h>

#include "datapath/log.h"

namespace shhim::agent {

// Replaces the default logger with a stderr logger at `level`.
void setupLogging(spdlog::level::level_enum level);

// Forwards the datapath's progress lines to spdlog.
datapath::LogFn datapathLog();

}  // namespace shhim::agent
