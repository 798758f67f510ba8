// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// frame_builder.hpp - a tiny builder of Ethernet frames for golden-packet
// tests: VLAN tags, IPv4 (options, fragments), IPv6 (extension headers),
// TCP, UDP, ICMP and ICMPv6 (errors quote an inner packet). Checksums are
// filled in where the layers make that cheap; every length field can be
// overridden to build malformed frames on purpose.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

namespace shhim::bpftest {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::uint16_t kEthIpv4 = 0x0800;
inline constexpr std::uint16_t kEthIpv6 = 0x86DD;
inline constexpr std::uint16_t kEthArp = 0x0806;
inline constexpr std::uint16_t kEth8021Q = 0x8100;
inline constexpr std::uint16_t kEth8021AD = 0x88A8;

inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;
inline constexpr std::uint8_t kTcpPsh = 0x08;
inline constexpr std::uint8_t kTcpAck = 0x10;

inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoGre = 47;
inline constexpr std::uint8_t kProtoIcmpv6 = 58;
inline constexpr std::uint8_t kProtoNoNext = 59;

inline constexpr std::uint8_t kExtHopByHop = 0;
inline constexpr std::uint8_t kExtRouting = 43;
inline constexpr std::uint8_t kExtFragment = 44;
inline constexpr std::uint8_t kExtAh = 51;
inline constexpr std::uint8_t kExtDestOpts = 60;

// An IPv4 or IPv6 address; IPv4 uses the first four bytes.
struct IpAddr {
  int family = 4;  // 4 or 6
  std::array<std::uint8_t, 16> bytes{};

  // "198.18.0.1" or "2001:db8::1"; throws std::invalid_argument otherwise.
  static IpAddr parse(std::string_view text);
  // The 16-byte form the BPF maps use: IPv4 becomes ::ffff:a.b.c.d.
  std::array<std::uint8_t, 16> mapped() const;
  std::size_t size() const { return family == 4 ? 4 : 16; }
};

struct Vlan {
  std::uint16_t tpid = kEth8021Q;
  std::uint16_t vid = 1;
};

struct EthSpec {
  std::array<std::uint8_t, 6> dst{0x02, 0, 0, 0, 0, 0x02};
  std::array<std::uint8_t, 6> src{0x02, 0, 0, 0, 0, 0x01};
  std::vector<Vlan> vlans;
};

struct TcpSpec {
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint8_t flags = kTcpAck;
  std::uint32_t seq = 1000;
  std::uint32_t ack = 0;
  Bytes options;                     // padded to a multiple of 4
  Bytes payload;
  std::optional<std::uint8_t> doff;  // data offset in 32-bit words
};

struct UdpSpec {
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  Bytes payload;
  std::optional<std::uint16_t> length;
};

// ICMP or ICMPv6 (by the IP family it is wrapped in). body follows the
// 4-byte "rest of header": a quoted packet for errors, data for echo.
struct IcmpSpec {
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint32_t rest = 0;
  Bytes body;
};

// Transport bytes taken as they are (a non-first fragment, GRE, ...).
struct RawL4 {
  std::uint8_t proto = 0;
  Bytes bytes;
};

using L4Spec = std::variant<TcpSpec, UdpSpec, IcmpSpec, RawL4>;

// One IPv6 extension header, complete; byte 0 (next header) is filled in.
struct Ipv6Ext {
  std::uint8_t type = kExtDestOpts;
  Bytes bytes;
};

Ipv6Ext ext_hop_by_hop(std::uint8_t len_units = 0);
Ipv6Ext ext_dest_opts(std::uint8_t len_units = 0);
Ipv6Ext ext_routing();
Ipv6Ext ext_fragment(std::uint16_t offset_units, bool more, std::uint32_t id = 0x5348);
Ipv6Ext ext_ah();

struct IpSpec {
  IpAddr src;
  IpAddr dst;
  std::uint8_t ttl = 64;
  // IPv4 only
  Bytes v4_options;                 // padded to a multiple of 4
  std::uint16_t v4_frag = 0;        // the flags|offset field, host order
  // IPv6 only
  std::vector<Ipv6Ext> v6_ext;
  // overrides, for malformed frames
  std::optional<std::uint16_t> total_length;  // IPv4 total length / IPv6 payload length
  std::optional<std::uint8_t> ihl;
  std::optional<std::uint8_t> version;
};

// The IP packet (header and up) with checksums.
Bytes build_ip(const IpSpec& ip, const L4Spec& l4);
// An Ethernet frame around any payload.
Bytes build_ether(const EthSpec& eth, std::uint16_t ethertype, const Bytes& payload);
// An Ethernet frame carrying an IP packet.
Bytes build_frame(const EthSpec& eth, const IpSpec& ip, const L4Spec& l4);

// Shortcuts for the common case: no VLAN, no options.
Bytes tcp_frame(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport,
                std::uint8_t flags, Bytes payload = {});
Bytes udp_frame(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport,
                Bytes payload = {});
Bytes icmp_error_frame(const IpAddr& src, const IpAddr& dst, std::uint8_t type, std::uint8_t code,
                       const Bytes& quoted_ip_packet);

Bytes to_bytes(std::string_view text);

}  // namespace shhim::bpftest
