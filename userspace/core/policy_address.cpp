#include "core/policy_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace shhim::core {
namespace {

const char* kSocketAddressForm = "ADDRESS:PORT, e.g. 198.18.0.10:8080 or [2001:db8::10]:443";

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// Literal IPv4 (dotted quad) or IPv6 text; no names, no scope ids.
std::optional<IpAddress> parseIp(std::string_view text)
{
    const std::string copy(text);  // inet_pton wants a terminated string
    IpAddress ip;
    if (::inet_pton(AF_INET, copy.c_str(), ip.bytes.data()) == 1) {
        ip.family = IpFamily::V4;
        return ip;
    }
    if (::inet_pton(AF_INET6, copy.c_str(), ip.bytes.data()) == 1) {
        ip.family = IpFamily::V6;
        return ip;
    }
    return std::nullopt;
}

// Unspecified, multicast and IPv4 broadcast addresses name no one host.
bool isUnicast(const IpAddress& ip)
{
    const auto& b = ip.bytes;
    if (ip.family == IpFamily::V4) {
        const bool unspecified = b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0;
        const bool multicast = (b[0] & 0xf0) == 0xe0;
        const bool broadcast = b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255;
        return !unspecified && !multicast && !broadcast;
    }
    bool unspecified = true;
    for (const auto byte : b)
        unspecified = unspecified && byte == 0;
    return !unspecified && b[0] != 0xff;
}

std::optional<unsigned> parseDecimal(std::string_view text)
{
    unsigned value = 0;
    if (text.empty() || text.size() > 6)
        return std::nullopt;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return value;
}

std::string notAnAddress(std::string_view text)
{
    return quoted(text) + " is not an IPv4 or IPv6 address (write the address itself; names are not resolved)";
}

}  // namespace

const char* familyName(IpFamily family) { return family == IpFamily::V4 ? "IPv4" : "IPv6"; }

ParseResult<SocketAddress> parseSocketAddress(std::string_view text)
{
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return {std::nullopt, "expected " + std::string(kSocketAddressForm) + ", got " + quoted(text)};
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return {std::nullopt, "expected " + std::string(kSocketAddressForm) + ", got " + quoted(text) +
                                      " (no port)"};
        if (text.find(':') != colon)
            return {std::nullopt, "an IPv6 address with a port is written in brackets: [ADDRESS]:PORT, got " +
                                      quoted(text)};
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }

    const std::optional<IpAddress> ip = parseIp(host);
    if (!ip)
        return {std::nullopt, notAnAddress(host)};
    if (text.front() == '[' && ip->family == IpFamily::V4)
        return {std::nullopt, "brackets are for IPv6 addresses; write " + std::string(host) + ":" + std::string(port)};
    if (!isUnicast(*ip))
        return {std::nullopt, std::string(host) + " is not a unicast address (unspecified, multicast or broadcast)"};
    const std::optional<unsigned> number = parseDecimal(port);
    if (!number)
        return {std::nullopt, "port " + quoted(port) + " is not a number (1-65535)"};
    if (*number < 1 || *number > 65535)
        return {std::nullopt, "port " + std::to_string(*number) + " is out of range (1-65535)"};
    return {SocketAddress{*ip, static_cast<std::uint16_t>(*number)}, ""};
}

ParseResult<Cidr> parseCidr(std::string_view text)
{
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos)
        return {std::nullopt, "expected ADDRESS/PREFIX, e.g. 198.18.4.0/24 or 2001:db8:4::/48, got " + quoted(text)};
    const std::string_view host = text.substr(0, slash), prefix_text = text.substr(slash + 1);
    const std::optional<IpAddress> ip = parseIp(host);
    if (!ip)
        return {std::nullopt, notAnAddress(host)};
    const std::optional<unsigned> prefix = parseDecimal(prefix_text);
    if (!prefix)
        return {std::nullopt, "prefix length " + quoted(prefix_text) + " is not a number"};
    if (*prefix > ip->bits())
        return {std::nullopt, "prefix length " + std::to_string(*prefix) + " is out of range for " +
                                  familyName(ip->family) + " (0-" + std::to_string(ip->bits()) + ")"};

    IpAddress network = *ip;
    for (unsigned bit = *prefix; bit < ip->bits(); ++bit)
        network.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    if (network != *ip)
        return {std::nullopt, std::string(text) + " has host bits set (the network is " + formatIp(network) + "/" +
                                  std::to_string(*prefix) + ")"};
    return {Cidr{network, *prefix}, ""};
}

std::string formatIp(const IpAddress& ip)
{
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(ip.family == IpFamily::V4 ? AF_INET : AF_INET6, ip.bytes.data(), text, sizeof(text));
    return text;
}

std::string formatSocketAddress(const SocketAddress& address)
{
    const std::string ip = formatIp(address.ip);
    const std::string port = std::to_string(address.port);
    return address.ip.family == IpFamily::V6 ? "[" + ip + "]:" + port : ip + ":" + port;
}

}  // namespace shhim::core
