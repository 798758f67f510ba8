#include "agent/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace shhim::agent {

void setupLogging(spdlog::level::level_enum level)
{
    auto logger = spdlog::stderr_color_mt("shhimd");
    // Time, level, message: greppable, one event per line.
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    logger->set_level(level);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
}

datapath::LogFn datapathLog()
{
    return [](datapath::LogLevel level, const std::string& line) {
        switch (level) {
        case datapath::LogLevel::Debug:
            spdlog::debug("{}", line);
            break;
        case datapath::LogLevel::Info:
            spdlog::info("{}", line);
            break;
        case datapath::LogLevel::Warn:
            spdlog::warn("{}", line);
            break;
        }
    };
}

}  // namespace shhim::agent
