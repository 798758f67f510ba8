// Builders for kernel records as the BPF programs write them: addresses
// IPv4-mapped, ports in network byte order.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "shhim_abi.h"

namespace shhim::test {

inline __be16 networkPort(std::uint16_t port)
{
    const std::uint8_t bytes[2] = {static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port & 0xff)};
    __be16 out;
    std::memcpy(&out, bytes, sizeof(out));
    return out;
}

inline shhim_endpoint endpointV4(std::array<std::uint8_t, 4> quad, std::uint16_t port, std::uint8_t proto = 6)
{
    shhim_endpoint e{};
    e.addr[10] = 0xff;
    e.addr[11] = 0xff;
    std::memcpy(&e.addr[12], quad.data(), 4);
    e.port = networkPort(port);
    e.family = SHHIM_FAMILY_IPV4;
    e.proto = proto;
    return e;
}

// From eight 16-bit groups, as written in IPv6 text.
inline shhim_endpoint endpointV6(std::array<std::uint16_t, 8> groups, std::uint16_t port, std::uint8_t proto = 6)
{
    shhim_endpoint e{};
    for (std::size_t i = 0; i < 8; ++i) {
        e.addr[2 * i] = static_cast<std::uint8_t>(groups[i] >> 8);
        e.addr[2 * i + 1] = static_cast<std::uint8_t>(groups[i] & 0xff);
    }
    e.port = networkPort(port);
    e.family = SHHIM_FAMILY_IPV6;
    e.proto = proto;
    return e;
}

// Records `count` samples of `ns` the way the kernel does.
inline void addSamples(shhim_hist& hist, std::uint64_t ns, std::uint64_t count)
{
    hist.count += count;
    hist.sum_ns += ns * count;
    hist.buckets[shhim_hist_bucket(ns)] += count;
}

}  // namespace shhim::test
