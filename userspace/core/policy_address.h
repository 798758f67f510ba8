// Addresses as a policy file writes them: "198.18.0.10:8080",
// "[2001:db8::10]:443", "198.18.4.0/24". Literal addresses only: a policy
// never depends on name resolution.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shhim::core {

enum class IpFamily : std::uint8_t { V4, V6 };

struct IpAddress {
    IpFamily family = IpFamily::V4;
    std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4

    std::size_t size() const { return family == IpFamily::V4 ? 4 : 16; }
    unsigned bits() const { return family == IpFamily::V4 ? 32 : 128; }
    friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

struct SocketAddress {
    IpAddress ip;
    std::uint16_t port = 0;

    friend auto operator<=>(const SocketAddress&, const SocketAddress&) = default;
};

struct Cidr {
    IpAddress network;
    unsigned prefix_length = 0;
};

// A value, or why the text is not one.
template <typename T>
struct ParseResult {
    std::optional<T> value;
    std::string error;
};

const char* familyName(IpFamily family);  // "IPv4", "IPv6"

// A unicast IPv4 or IPv6 address and a port 1-65535; IPv6 in brackets.
ParseResult<SocketAddress> parseSocketAddress(std::string_view text);

// ADDRESS/PREFIX with the prefix within the family and no host bits set.
ParseResult<Cidr> parseCidr(std::string_view text);

std::string formatIp(const IpAddress& ip);
std::string formatSocketAddress(const SocketAddress& address);  // "[2001:db8::1]:443"

}  // namespace shhim::core
