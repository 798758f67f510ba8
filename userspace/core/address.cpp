#include "core/address.h"

#include <array>
#include <cstring>

namespace shhim::core {
namespace {

bool isIpv4Mapped(std::span<const std::uint8_t, 16> addr)
{
    for (std::size_t i = 0; i < 10; ++i)
        if (addr[i] != 0)
            return false;
    return addr[10] == 0xff && addr[11] == 0xff;
}

std::string formatIpv4(std::span<const std::uint8_t, 4> quad)
{
    std::string text;
    for (std::size_t i = 0; i < quad.size(); ++i) {
        if (i)
            text += '.';
        text += std::to_string(quad[i]);
    }
    return text;
}

std::string formatIpv6(std::span<const std::uint8_t, 16> addr)
{
    std::array<std::uint16_t, 8> groups{};
    for (std::size_t i = 0; i < groups.size(); ++i)
        groups[i] = static_cast<std::uint16_t>(addr[2 * i] << 8 | addr[2 * i + 1]);

    // RFC 5952 4.2: compress the longest run (>= 2 groups) of zeros, the
    // first one if two runs are equally long.
    int best_start = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (groups[i] != 0) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && groups[j] == 0)
            ++j;
        if (j - i > best_len) {
            best_start = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2)
        best_start = -1;

    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    for (int i = 0; i < 8; ++i) {
        if (i == best_start) {
            text += "::";
            i += best_len - 1;
            continue;
        }
        if (!text.empty() && text.back() != ':')
            text += ':';
        bool leading = true;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned nibble = (groups[i] >> shift) & 0xf;
            if (leading && nibble == 0 && shift != 0)
                continue;
            leading = false;
            text += hex[nibble];
        }
    }
    return text;
}

}  // namespace

std::string formatAddress(std::span<const std::uint8_t, 16> addr)
{
    if (isIpv4Mapped(addr))
        return formatIpv4(addr.subspan<12, 4>());
    return formatIpv6(addr);
}

std::uint16_t portFromNetwork(__be16 port)
{
    std::uint8_t bytes[2];
    std::memcpy(bytes, &port, sizeof(bytes));
    return static_cast<std::uint16_t>(bytes[0] << 8 | bytes[1]);
}

std::string protocolName(std::uint8_t ipproto)
{
    switch (ipproto) {
    case 1:
        return "icmp";
    case 6:
        return "tcp";
    case 17:
        return "udp";
    case 58:
        return "icmpv6";
    default:
        return std::to_string(ipproto);
    }
}

shhim::v1::Endpoint toEndpoint(const shhim_endpoint& endpoint)
{
    shhim::v1::Endpoint out;
    out.set_address(formatAddress(std::span<const std::uint8_t, 16>(endpoint.addr)));
    out.set_port(portFromNetwork(endpoint.port));
    return out;
}

}  // namespace shhim::core
