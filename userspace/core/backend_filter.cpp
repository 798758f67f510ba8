#include "core/backend_filter.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "core/address.h"

namespace shhim::core {
namespace {

// inet_pton is pure text parsing (no system call).
std::optional<std::array<std::uint8_t, 16>> parseAddress(const std::string& text)
{
    std::array<std::uint8_t, 16> out{};
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        out[10] = 0xff;
        out[11] = 0xff;
        std::memcpy(&out[12], &v4, 4);
        return out;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
        std::memcpy(out.data(), &v6, 16);
        return out;
    }
    return std::nullopt;
}

std::optional<std::uint16_t> parsePort(std::string_view text)
{
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty() || value > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

}  // namespace

BackendFilter BackendFilter::parse(std::string_view text)
{
    BackendFilter filter;
    if (text.empty())
        return filter;
    const auto invalid = [&] {
        return std::invalid_argument("backend '" + std::string(text) +
                                     "' is not ADDR, ADDR:PORT, [IPV6]:PORT or IPV6 (e.g. 198.18.0.10:8080)");
    };

    std::string address;
    std::string_view port;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos)
            throw invalid();
        address = std::string(text.substr(1, close - 1));
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                throw invalid();
            port = rest.substr(1);
            if (port.empty())
                throw invalid();
        }
    } else if (text.find(':') != text.rfind(':')) {
        address = std::string(text);  // bare IPv6: no port
    } else if (const auto colon = text.find(':'); colon != std::string_view::npos) {
        address = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
        if (port.empty())
            throw invalid();
    } else {
        address = std::string(text);
    }

    filter.address_ = parseAddress(address);
    if (!filter.address_)
        throw invalid();
    if (!port.empty()) {
        filter.port_ = parsePort(port);
        if (!filter.port_)
            throw invalid();
    }
    return filter;
}

bool BackendFilter::matches(const shhim_endpoint& endpoint) const
{
    if (!address_)
        return true;
    if (std::memcmp(address_->data(), endpoint.addr, 16) != 0)
        return false;
    return !port_ || *port_ == portFromNetwork(endpoint.port);
}

bool BackendFilter::matches(const shhim::v1::Endpoint& endpoint) const
{
    if (!address_)
        return true;
    const auto address = parseAddress(endpoint.address());
    if (!address || *address != *address_)
        return false;
    return !port_ || *port_ == endpoint.port();
}

}  // namespace shhim::core
