// Text forms of the kernel's endpoint representation: 16-byte addresses
// (IPv4 stored IPv4-mapped) and ports in network byte order.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

// "198.18.0.10" for an IPv4-mapped address (::ffff:a.b.c.d), otherwise the
// RFC 5952 text of the IPv6 address ("2001:db8::1", lowercase, longest run
// of two or more zero groups compressed, first run on a tie).
std::string formatAddress(std::span<const std::uint8_t, 16> addr);

// Host-order port from the network-order field as the kernel stored it
// (read byte by byte, so it is right on any host endianness).
std::uint16_t portFromNetwork(__be16 port);

// "tcp", "udp", "icmp", "icmpv6", else the protocol number as text.
std::string protocolName(std::uint8_t ipproto);

shhim::v1::Endpoint toEndpoint(const shhim_endpoint& endpoint);

}  // namespace shhim::core
