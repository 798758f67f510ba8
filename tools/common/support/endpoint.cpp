#include "support/endpoint.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace shhim::tools {

namespace {

std::uint16_t parse_port(std::string_view text, std::string_view whole)
{
    unsigned value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end || value > 65535)
        throw std::invalid_argument("'" + std::string(whole) + "': port '" + std::string(text) +
                                    "' is not a number from 0 to 65535");
    return static_cast<std::uint16_t>(value);
}

} // namespace

std::uint16_t Endpoint::port() const
{
    if (family() == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

std::string Endpoint::to_string() const
{
    char text[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage);
        inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
        return std::string(text) + ":" + std::to_string(port());
    }
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(port());
}

Endpoint parse_endpoint(std::string_view text)
{
    Endpoint endpoint;
    if (text.starts_with('[')) {
        const auto close = text.find("]:");
        if (close == std::string_view::npos)
            throw std::invalid_argument("'" + std::string(text) + "': expected [IPV6]:PORT");
        const std::string address(text.substr(1, close - 1));
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&endpoint.storage);
        if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) != 1)
            throw std::invalid_argument("'" + std::string(text) + "': '" + address + "' is not an IPv6 address");
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(parse_port(text.substr(close + 2), text));
        endpoint.length = sizeof(sockaddr_in6);
        return endpoint;
    }
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
        throw std::invalid_argument("'" + std::string(text) + "': expected ADDR:PORT (IPv6 as [ADDR]:PORT)");
    const std::string address(text.substr(0, colon));
    auto* v4 = reinterpret_cast<sockaddr_in*>(&endpoint.storage);
    if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) != 1)
        throw std::invalid_argument("'" + std::string(text) + "': '" + address +
                                    "' is not a numeric IPv4 address (IPv6 goes in brackets)");
    v4->sin_family = AF_INET;
    v4->sin_port = htons(parse_port(text.substr(colon + 1), text));
    endpoint.length = sizeof(sockaddr_in);
    return endpoint;
}

Endpoint endpoint_from(const sockaddr* address, socklen_t length)
{
    Endpoint endpoint;
    const auto size = std::min<socklen_t>(length, sizeof endpoint.storage);
    std::memcpy(&endpoint.storage, address, size);
    endpoint.length = size;
    return endpoint;
}

Endpoint local_endpoint_of(int fd)
{
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0)
        throw std::system_error(errno, std::generic_category(), "getsockname");
    return endpoint_from(reinterpret_cast<sockaddr*>(&storage), length);
}

Endpoint peer_endpoint_of(int fd)
{
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0)
        throw std::system_error(errno, std::generic_category(), "getpeername");
    return endpoint_from(reinterpret_cast<sockaddr*>(&storage), length);
}

UniqueFd listen_tcp(const Endpoint& where, int backlog)
{
    const auto fail = [&](const char* step) {
        throw std::system_error(errno, std::generic_category(), std::string(step) + " " + where.to_string());
    };
    UniqueFd fd(socket(where.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        fail("socket for");
    const int on = 1;
    // Reopening after a "refuse" fault must not wait for TIME_WAIT connections to expire.
    if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        fail("SO_REUSEADDR on");
    if (where.family() == AF_INET6 && setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0)
        fail("IPV6_V6ONLY on");
    if (bind(fd.get(), where.addr(), where.length) != 0)
        fail("bind");
    if (listen(fd.get(), backlog) != 0)
        fail("listen on");
    return fd;
}

std::string errno_text(int error_number)
{
    return std::string(std::strerror(error_number)) + " (errno " + std::to_string(error_number) + ")";
}

} // namespace shhim::tools
