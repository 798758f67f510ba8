// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "frame_builder.hpp"

#include <arpa/inet.h>

#include <stdexcept>
#include <string>

namespace shhim::bpftest {
namespace {

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}

void append16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

void append32(Bytes& b, std::uint32_t v) {
  append16(b, static_cast<std::uint16_t>(v >> 16));
  append16(b, static_cast<std::uint16_t>(v));
}

void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

void pad4(Bytes& b) {
  while (b.size() % 4 != 0) b.push_back(0);  // EOL/NOP padding is 0 for both IP and TCP
}

// RFC 1071 one's complement sum, folded later.
std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) acc += (p[i] << 8) | p[i + 1];
  if (n % 2) acc += p[n - 1] << 8;
  return acc;
}

std::uint16_t fold(std::uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(~acc);
}

std::uint32_t pseudo_header_sum(const IpAddr& src, const IpAddr& dst, std::uint8_t proto,
                                std::size_t l4_len) {
  std::uint32_t acc = sum16(src.bytes.data(), src.size());
  acc = sum16(dst.bytes.data(), dst.size(), acc);
  acc += proto;
  acc += static_cast<std::uint32_t>(l4_len >> 16) + static_cast<std::uint32_t>(l4_len & 0xffff);
  return acc;
}

std::uint8_t proto_of(const L4Spec& l4, int family) {
  struct Visitor {
    int family;
    std::uint8_t operator()(const TcpSpec&) const { return kProtoTcp; }
    std::uint8_t operator()(const UdpSpec&) const { return kProtoUdp; }
    std::uint8_t operator()(const IcmpSpec&) const { return family == 4 ? kProtoIcmp : kProtoIcmpv6; }
    std::uint8_t operator()(const RawL4& raw) const { return raw.proto; }
  };
  return std::visit(Visitor{family}, l4);
}

Bytes tcp_bytes(const TcpSpec& t) {
  Bytes options = t.options;
  pad4(options);
  Bytes b;
  append16(b, t.sport);
  append16(b, t.dport);
  append32(b, t.seq);
  append32(b, t.ack);
  const std::uint8_t doff = t.doff.value_or(static_cast<std::uint8_t>((20 + options.size()) / 4));
  b.push_back(static_cast<std::uint8_t>(doff << 4));
  b.push_back(t.flags);
  append16(b, 65535);  // window
  append16(b, 0);      // checksum
  append16(b, 0);      // urgent pointer
  append(b, options);
  append(b, t.payload);
  return b;
}

Bytes udp_bytes(const UdpSpec& u) {
  Bytes b;
  append16(b, u.sport);
  append16(b, u.dport);
  append16(b, u.length.value_or(static_cast<std::uint16_t>(8 + u.payload.size())));
  append16(b, 0);
  append(b, u.payload);
  return b;
}

Bytes icmp_bytes(const IcmpSpec& i) {
  Bytes b{i.type, i.code, 0, 0};
  append32(b, i.rest);
  append(b, i.body);
  return b;
}

Bytes l4_bytes(const L4Spec& l4) {
  struct Visitor {
    Bytes operator()(const TcpSpec& t) const { return tcp_bytes(t); }
    Bytes operator()(const UdpSpec& u) const { return udp_bytes(u); }
    Bytes operator()(const IcmpSpec& i) const { return icmp_bytes(i); }
    Bytes operator()(const RawL4& r) const { return r.bytes; }
  };
  return std::visit(Visitor{}, l4);
}

// Fills the transport checksum where the protocol has one at a fixed place.
void fill_l4_checksum(Bytes& l4, std::uint8_t proto, const IpAddr& src, const IpAddr& dst,
                      bool pseudo_header) {
  std::size_t at;
  if (proto == kProtoTcp && l4.size() >= 20) at = 16;
  else if (proto == kProtoUdp && l4.size() >= 8) at = 6;
  else if ((proto == kProtoIcmp || proto == kProtoIcmpv6) && l4.size() >= 4) at = 2;
  else return;
  put16(l4, at, 0);
  std::uint32_t acc = pseudo_header ? pseudo_header_sum(src, dst, proto, l4.size()) : 0;
  std::uint16_t csum = fold(sum16(l4.data(), l4.size(), acc));
  if (proto == kProtoUdp && csum == 0) csum = 0xffff;
  put16(l4, at, csum);
}

IpSpec ip_of(const IpAddr& src, const IpAddr& dst) {
  IpSpec ip;
  ip.src = src;
  ip.dst = dst;
  return ip;
}

Ipv6Ext padded_options(std::uint8_t type, std::uint8_t len_units) {
  const std::size_t total = (static_cast<std::size_t>(len_units) + 1) * 8;
  Bytes b(total, 0);
  b[1] = len_units;
  b[2] = 1;  // PadN covering the rest
  b[3] = static_cast<std::uint8_t>(total - 4);
  return {type, b};
}

}  // namespace

IpAddr IpAddr::parse(std::string_view text) {
  IpAddr a;
  const std::string s(text);
  if (s.find(':') != std::string::npos) {
    a.family = 6;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1)
      throw std::invalid_argument("not an IPv6 address: " + s);
  } else {
    a.family = 4;
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1)
      throw std::invalid_argument("not an IPv4 address: " + s);
  }
  return a;
}

std::array<std::uint8_t, 16> IpAddr::mapped() const {
  if (family == 6) return bytes;
  std::array<std::uint8_t, 16> m{};
  m[10] = 0xff;
  m[11] = 0xff;
  for (int i = 0; i < 4; ++i) m[12 + i] = bytes[i];
  return m;
}

Ipv6Ext ext_hop_by_hop(std::uint8_t len_units) { return padded_options(kExtHopByHop, len_units); }
Ipv6Ext ext_dest_opts(std::uint8_t len_units) { return padded_options(kExtDestOpts, len_units); }

Ipv6Ext ext_routing() {
  // Type 253 (RFC 4727 experiment), segments left 0: a node would skip it.
  Bytes b(8, 0);
  b[1] = 0;
  b[2] = 253;
  b[3] = 0;
  return {kExtRouting, b};
}

Ipv6Ext ext_fragment(std::uint16_t offset_units, bool more, std::uint32_t id) {
  Bytes b(8, 0);
  const std::uint16_t field = static_cast<std::uint16_t>((offset_units << 3) | (more ? 1 : 0));
  put16(b, 2, field);
  b[4] = static_cast<std::uint8_t>(id >> 24);
  b[5] = static_cast<std::uint8_t>(id >> 16);
  b[6] = static_cast<std::uint8_t>(id >> 8);
  b[7] = static_cast<std::uint8_t>(id);
  return {kExtFragment, b};
}

Ipv6Ext ext_ah() {
  // 12 bytes of fixed fields + 12 bytes ICV = 24 bytes: payload length 24/4 - 2 = 4.
  Bytes b(24, 0);
  b[1] = 4;
  b[7] = 0x01;   // SPI
  b[11] = 0x01;  // sequence
  return {kExtAh, b};
}

Bytes build_ip(const IpSpec& ip, const L4Spec& l4) {
  if (ip.src.family != ip.dst.family) throw std::invalid_argument("mixed address families");
  const std::uint8_t proto = proto_of(l4, ip.src.family);
  Bytes body = l4_bytes(l4);
  const bool first_fragment = ip.src.family != 4 || (ip.v4_frag & 0x1fff) == 0;
  if (!std::holds_alternative<RawL4>(l4) && first_fragment)
    fill_l4_checksum(body, proto, ip.src, ip.dst, !(ip.src.family == 4 && proto == kProtoIcmp));

  Bytes b;
  if (ip.src.family == 4) {
    Bytes options = ip.v4_options;
    pad4(options);
    const std::size_t hlen = 20 + options.size();
    const std::uint8_t ihl = ip.ihl.value_or(static_cast<std::uint8_t>(hlen / 4));
    b.push_back(static_cast<std::uint8_t>((ip.version.value_or(4) << 4) | (ihl & 0x0f)));
    b.push_back(0);  // DSCP/ECN
    append16(b, ip.total_length.value_or(static_cast<std::uint16_t>(hlen + body.size())));
    append16(b, 0x5348);  // identification
    append16(b, ip.v4_frag);
    b.push_back(ip.ttl);
    b.push_back(proto);
    append16(b, 0);  // header checksum, below
    b.insert(b.end(), ip.src.bytes.begin(), ip.src.bytes.begin() + 4);
    b.insert(b.end(), ip.dst.bytes.begin(), ip.dst.bytes.begin() + 4);
    append(b, options);
    put16(b, 10, fold(sum16(b.data(), hlen)));
  } else {
    Bytes ext;
    std::uint8_t first_next = proto;
    for (std::size_t i = 0; i < ip.v6_ext.size(); ++i) {
      Bytes h = ip.v6_ext[i].bytes;
      h[0] = i + 1 < ip.v6_ext.size() ? ip.v6_ext[i + 1].type : proto;
      if (i == 0) first_next = ip.v6_ext[0].type;
      append(ext, h);
    }
    const std::size_t plen = ext.size() + body.size();
    append32(b, static_cast<std::uint32_t>(ip.version.value_or(6)) << 28);
    append16(b, ip.total_length.value_or(static_cast<std::uint16_t>(plen)));
    b.push_back(first_next);
    b.push_back(ip.ttl);
    b.insert(b.end(), ip.src.bytes.begin(), ip.src.bytes.end());
    b.insert(b.end(), ip.dst.bytes.begin(), ip.dst.bytes.end());
    append(b, ext);
  }
  append(b, body);
  return b;
}

Bytes build_ether(const EthSpec& eth, std::uint16_t ethertype, const Bytes& payload) {
  Bytes b(eth.dst.begin(), eth.dst.end());
  b.insert(b.end(), eth.src.begin(), eth.src.end());
  for (const Vlan& v : eth.vlans) {
    append16(b, v.tpid);
    append16(b, v.vid);
  }
  append16(b, ethertype);
  append(b, payload);
  return b;
}

Bytes build_frame(const EthSpec& eth, const IpSpec& ip, const L4Spec& l4) {
  return build_ether(eth, ip.src.family == 4 ? kEthIpv4 : kEthIpv6, build_ip(ip, l4));
}

Bytes tcp_frame(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport,
                std::uint8_t flags, Bytes payload) {
  TcpSpec t;
  t.sport = sport;
  t.dport = dport;
  t.flags = flags;
  t.payload = std::move(payload);
  return build_frame({}, ip_of(src, dst), t);
}

Bytes udp_frame(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport,
                Bytes payload) {
  UdpSpec u;
  u.sport = sport;
  u.dport = dport;
  u.payload = std::move(payload);
  return build_frame({}, ip_of(src, dst), u);
}

Bytes icmp_error_frame(const IpAddr& src, const IpAddr& dst, std::uint8_t type, std::uint8_t code,
                       const Bytes& quoted_ip_packet) {
  IcmpSpec i;
  i.type = type;
  i.code = code;
  i.body = quoted_ip_packet;
  return build_frame({}, ip_of(src, dst), i);
}

Bytes to_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

}  // namespace shhim::bpftest
