// runner.hpp - drives the planned requests through --concurrency workers and records each.
#pragma once

#include "options.hpp"

#include <array>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

namespace shhim::loadgen {

enum class OutcomeKind : std::uint8_t {
    NotSent,        // never attempted (interrupted, or too late for its rate slot)
    Response,       // a complete response; `code` says which
    Connected,      // --connect-only success
    ConnectRefused,
    ConnectTimeout,
    ConnectError,
    Reset,
    Timeout,
    Eof,
    ProtocolError,
    OtherError,
};

// What happened to one planned request. Small on purpose: a run keeps up to 1,000,000.
struct RequestRecord {
    std::int64_t start_unix_ns = 0; // wall clock when the attempt began (before any connect)
    std::int64_t connect_ns = -1;   // connect time, when this request opened a connection
    std::int64_t latency_ns = -1;   // request write -> first response byte (connect-only: connect time)
    OutcomeKind outcome = OutcomeKind::NotSent;
    bool written = false;              // the whole request reached the socket
    std::array<char, 4> code{};        // "200" / "AA" for a Response
    std::array<char, 4> requested{};   // the mix slot asked for, if any
};

struct RunResult {
    std::vector<RequestRecord> records; // index = request number in the plan
    std::uint64_t connections_opened = 0;
    bool interrupted = false;
    std::int64_t started_unix_ns = 0;
    double wall_seconds = 0;
    double max_start_lag_seconds = 0;    // rate mode: worst delay behind the schedule
    std::vector<std::string> error_examples; // the first few failure details
};

// Runs the whole plan; returns early (interrupted) when `stop` is requested.
RunResult run_load(const Options& options, std::stop_token stop);

} // namespace shhim::loadgen
