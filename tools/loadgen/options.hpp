// options.hpp - shhim-loadgen's command line, validated into one value.
#pragma once

#include "support/endpoint.hpp"
#include "support/mix.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace shhim::loadgen {

enum class Protocol { Http, Mllp };
enum class ConnectionMode { New, KeepAlive };

struct Options {
    Protocol protocol = Protocol::Http;
    tools::Endpoint target;
    bool connect_only = false;

    std::uint64_t count = 0;             // requests planned (rate mode: rate * duration)
    std::optional<double> rate;          // per second; set in rate mode
    std::optional<double> duration_s;    // set in rate mode
    unsigned concurrency = 1;
    ConnectionMode connection = ConnectionMode::KeepAlive;
    std::chrono::milliseconds timeout{5000};

    std::string method = "GET";
    std::string path = "/fhir/Patient/example";
    std::string body;
    std::shared_ptr<const tools::Mix> mix; // --status-mix (HTTP) or --ack-mix (MLLP)

    std::string report_path = "-"; // "-" = stdout
    bool per_request = true;
};

// The largest number of requests one run may plan (each keeps a ~48-byte record).
inline constexpr std::uint64_t kMaxRequests = 1'000'000;
inline constexpr double kMaxDurationS = 600.0;

// Parsed options, or the exit code to leave with (0 after --help, 2 for bad flags; the
// message has been printed).
std::variant<Options, int> parse_options(int argc, char** argv);

std::string_view to_string(Protocol protocol);
std::string_view to_string(ConnectionMode mode);

} // namespace shhim::loadgen
