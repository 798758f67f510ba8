#include <doctest/doctest.h>

#include <span>

#include "core/address.h"
#include "test_support.h"

using shhim::core::formatAddress;
using shhim::core::portFromNetwork;
using shhim::core::protocolName;
using shhim::core::toEndpoint;
using shhim::test::endpointV4;
using shhim::test::endpointV6;

namespace {
std::string text(const shhim_endpoint& e) { return formatAddress(std::span<const std::uint8_t, 16>(e.addr)); }
}  // namespace

TEST_CASE("IPv4-mapped addresses print as a dotted quad")
{
    CHECK(text(endpointV4({198, 18, 0, 10}, 80)) == "198.18.0.10");
    CHECK(text(endpointV4({0, 0, 0, 0}, 80)) == "0.0.0.0");
    CHECK(text(endpointV4({255, 255, 255, 255}, 80)) == "255.255.255.255");
}

TEST_CASE("IPv6 addresses print in RFC 5952 form")
{
    CHECK(text(endpointV6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1}, 0)) == "2001:db8::1");
    CHECK(text(endpointV6({0, 0, 0, 0, 0, 0, 0, 0}, 0)) == "::");
    CHECK(text(endpointV6({0, 0, 0, 0, 0, 0, 0, 1}, 0)) == "::1");
    CHECK(text(endpointV6({0xfe80, 0, 0, 0, 0, 0, 0xabcd, 0x12}, 0)) == "fe80::abcd:12");
    CHECK(text(endpointV6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0}, 0)) == "2001:db8::");
    // A single zero group is not compressed.
    CHECK(text(endpointV6({0x2001, 0xdb8, 0, 1, 1, 1, 1, 1}, 0)) == "2001:db8:0:1:1:1:1:1");
    // The longest run wins; on a tie the first.
    CHECK(text(endpointV6({0x2001, 0, 0, 1, 0, 0, 0, 1}, 0)) == "2001:0:0:1::1");
    CHECK(text(endpointV6({0x2001, 0xdb8, 0, 0, 1, 0, 0, 1}, 0)) == "2001:db8::1:0:0:1");
    // Lowercase hex, no leading zeros.
    CHECK(text(endpointV6({0x2001, 0x0DB8, 0x00AB, 0xCDEF, 1, 2, 3, 4}, 0)) == "2001:db8:ab:cdef:1:2:3:4");
    // ffff in another position is not IPv4-mapped.
    CHECK(text(endpointV6({0x100, 0, 0, 0, 0, 0xffff, 0xc612, 0x0a}, 0)) == "100::ffff:c612:a");
}

TEST_CASE("ports are converted from network order")
{
    CHECK(portFromNetwork(shhim::test::networkPort(8080)) == 8080);
    CHECK(portFromNetwork(shhim::test::networkPort(2575)) == 2575);
    CHECK(portFromNetwork(shhim::test::networkPort(0)) == 0);
    CHECK(portFromNetwork(shhim::test::networkPort(65535)) == 65535);
    const auto endpoint = toEndpoint(endpointV4({198, 18, 1, 5}, 40000));
    CHECK(endpoint.address() == "198.18.1.5");
    CHECK(endpoint.port() == 40000);
}

TEST_CASE("protocol names")
{
    CHECK(protocolName(6) == "tcp");
    CHECK(protocolName(17) == "udp");
    CHECK(protocolName(1) == "icmp");
    CHECK(protocolName(58) == "icmpv6");
    CHECK(protocolName(132) == "132");
}
