// endpoint.hpp - numeric "ADDR:PORT" endpoints (IPv4 and IPv6) and TCP socket helpers.
#pragma once

#include "common/unique_fd.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace shhim::tools {

// One IPv4 or IPv6 socket address.
struct Endpoint {
    sockaddr_storage storage{};
    socklen_t length = 0;

    [[nodiscard]] const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&storage); }
    [[nodiscard]] int family() const { return storage.ss_family; }
    [[nodiscard]] std::uint16_t port() const;
    // "198.18.0.1:8080" or "[2001:db8::1]:8080".
    [[nodiscard]] std::string to_string() const;
};

// Parses "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric addresses only; port 0 allowed).
// Throws std::invalid_argument saying what is wrong with the text.
Endpoint parse_endpoint(std::string_view text);

Endpoint endpoint_from(const sockaddr* address, socklen_t length);
// getsockname / getpeername; throw std::system_error.
Endpoint local_endpoint_of(int fd);
Endpoint peer_endpoint_of(int fd);

// A listening TCP socket (SO_REUSEADDR, close-on-exec) bound to `where`.
// Throws std::system_error naming the address and the failing step.
UniqueFd listen_tcp(const Endpoint& where, int backlog);

// "Connection refused (errno 111)".
std::string errno_text(int error_number);

} // namespace shhim::tools
