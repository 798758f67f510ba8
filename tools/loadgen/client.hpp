// client.hpp - one connect, one request/response exchange, each bounded by a deadline.
#pragma once

#include "support/endpoint.hpp"
#include "common/unique_fd.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace shhim::loadgen {

using Clock = std::chrono::steady_clock;

// Why an attempt did not end with a complete response.
enum class Failure {
    None,
    ConnectRefused, // RST to our SYN
    ConnectTimeout, // no answer to our SYN within the timeout
    ConnectError,   // any other connect failure (unreachable, no local port, ...)
    Reset,          // connection reset (or broken pipe) after it was established
    Timeout,        // no complete response within the timeout
    Eof,            // the peer closed before the response was complete
    ProtocolError,  // the response does not parse, or answers a different message
    OtherError,     // anything else a socket call reported
};

struct ConnectResult {
    UniqueFd fd; // valid on success (non-blocking)
    Failure failure = Failure::None;
    std::string detail; // for failures
    std::chrono::nanoseconds elapsed{0};
};
ConnectResult connect_to(const tools::Endpoint& target, std::chrono::milliseconds timeout);

struct ExchangeResult {
    Failure failure = Failure::None;
    std::string code; // "200" or "AA" when failure == None
    // Just before the request write -> the first response byte read.
    std::optional<std::chrono::nanoseconds> first_byte;
    bool written = false;  // the whole request went into the socket
    bool reusable = false; // the connection may carry the next request
    std::string detail;
};

// Writes `request` and reads one HTTP/1.x response (Content-Length, or until EOF).
ExchangeResult exchange_http(int fd, std::string_view request, bool head_request, std::chrono::milliseconds timeout);
// Writes one MLLP frame and reads the framed ACK, which must answer `control_id`.
ExchangeResult exchange_mllp(int fd, std::string_view frame, std::string_view control_id,
                             std::chrono::milliseconds timeout);

} // namespace shhim::loadgen
