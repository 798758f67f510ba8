// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "golden_frames.hpp"

#include <utility>

namespace shhim::bpftest {

IpAddr client4() { return IpAddr::parse("198.18.0.10"); }
IpAddr server4() { return IpAddr::parse("198.19.0.20"); }
IpAddr router4() { return IpAddr::parse("198.18.255.1"); }
IpAddr client6() { return IpAddr::parse("2001:db8::10"); }
IpAddr server6() { return IpAddr::parse("2001:db8:1::20"); }
IpAddr router6() { return IpAddr::parse("2001:db8:ffff::1"); }

namespace {

std::uint16_t ethertype_of(const IpSpec& ip) { return ip.src.family == 4 ? kEthIpv4 : kEthIpv6; }

IpSpec ip_between(const IpAddr& src, const IpAddr& dst) {
  IpSpec ip;
  ip.src = src;
  ip.dst = dst;
  return ip;
}

TcpSpec tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags, Bytes payload = {}) {
  TcpSpec t;
  t.sport = sport;
  t.dport = dport;
  t.flags = flags;
  t.payload = std::move(payload);
  return t;
}

UdpSpec udp(std::uint16_t sport, std::uint16_t dport, Bytes payload = {}) {
  UdpSpec u;
  u.sport = sport;
  u.dport = dport;
  u.payload = std::move(payload);
  return u;
}

std::uint8_t proto_of(const L4Spec& l4, int family) {
  if (std::holds_alternative<TcpSpec>(l4)) return kProtoTcp;
  if (std::holds_alternative<UdpSpec>(l4)) return kProtoUdp;
  if (std::holds_alternative<IcmpSpec>(l4)) return family == 4 ? kProtoIcmp : kProtoIcmpv6;
  return std::get<RawL4>(l4).proto;
}

std::pair<std::uint16_t, std::uint16_t> ports_of(const L4Spec& l4) {
  if (const auto* t = std::get_if<TcpSpec>(&l4)) return {t->sport, t->dport};
  if (const auto* u = std::get_if<UdpSpec>(&l4)) return {u->sport, u->dport};
  return {0, 0};
}

// A frame accounted to the flow of its own addresses and ports.
GoldenFrame flow(std::string name, const EthSpec& eth, const IpSpec& ip, const L4Spec& l4) {
  const Bytes l3 = build_ip(ip, l4);
  const std::uint8_t proto = proto_of(l4, ip.src.family);
  const auto [sport, dport] = ports_of(l4);
  GoldenFrame g;
  g.name = std::move(name);
  g.frame = build_ether(eth, ethertype_of(ip), l3);
  g.outcome = Outcome::Flow;
  g.key = canonical_key(make_endpoint(ip.src, sport, proto), make_endpoint(ip.dst, dport, proto));
  g.l3_len = static_cast<std::uint32_t>(l3.size());
  return g;
}

GoldenFrame counted(std::string name, Bytes frame, std::uint32_t counter) {
  GoldenFrame g;
  g.name = std::move(name);
  g.frame = std::move(frame);
  g.outcome = Outcome::Counted;
  g.counter = counter;
  return g;
}

GoldenFrame ignored(std::string name, Bytes frame) {
  GoldenFrame g;
  g.name = std::move(name);
  g.frame = std::move(frame);
  g.outcome = Outcome::Ignored;
  return g;
}

// An ICMP error from `from` to the sender of the quoted packet.
GoldenFrame icmp_error(std::string name, const IpAddr& from, std::uint8_t type, std::uint8_t code,
                       std::uint32_t rest, const IpSpec& quoted_ip, const L4Spec& quoted_l4,
                       std::size_t quoted_bytes = 0) {
  Bytes quoted = build_ip(quoted_ip, quoted_l4);
  if (quoted_bytes != 0 && quoted_bytes < quoted.size()) quoted.resize(quoted_bytes);
  IcmpSpec icmp;
  icmp.type = type;
  icmp.code = code;
  icmp.rest = rest;
  icmp.body = quoted;
  const std::uint8_t proto = proto_of(quoted_l4, quoted_ip.src.family);
  const auto [sport, dport] = ports_of(quoted_l4);
  GoldenFrame g;
  g.name = std::move(name);
  g.frame = build_frame({}, ip_between(from, quoted_ip.src), icmp);
  g.outcome = Outcome::IcmpError;
  g.key = canonical_key(make_endpoint(quoted_ip.src, sport, proto),
                        make_endpoint(quoted_ip.dst, dport, proto));
  return g;
}

Bytes http_request() { return to_bytes("GET /fhir/Patient/42 HTTP/1.1\r\nHost: ehr\r\n\r\n"); }

}  // namespace

std::vector<GoldenFrame> golden_frames() {
  const IpAddr c4 = client4(), s4 = server4(), r4 = router4();
  const IpAddr c6 = client6(), s6 = server6(), r6 = router6();
  std::vector<GoldenFrame> g;

  // ---- well-formed, accounted ------------------------------------------------
  g.push_back(flow("ipv4 tcp syn", {}, ip_between(c4, s4), tcp(40000, 80, kTcpSyn)));
  {
    TcpSpec t = tcp(40001, 443, kTcpAck | kTcpPsh, http_request());
    t.options = {2, 4, 0x05, 0xb4, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0};  // MSS, NOP, NOP, timestamps
    g.push_back(flow("ipv4 tcp with options and payload", {}, ip_between(c4, s4), t));
  }
  g.push_back(flow("ipv4 udp", {}, ip_between(c4, s4), udp(40002, 53, to_bytes("query"))));
  {
    IcmpSpec echo;
    echo.type = 8;
    echo.rest = 0x00010001;
    echo.body = to_bytes("ping");
    g.push_back(flow("ipv4 icmp echo request", {}, ip_between(c4, s4), echo));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.v4_options = {0x94, 0x04, 0x00, 0x00};  // router alert: IHL 6
    g.push_back(flow("ipv4 options (IHL 6) tcp", {}, ip, tcp(40003, 2575, kTcpSyn)));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.v4_options = Bytes(40, 0x01);  // 40 NOPs: IHL 15, the maximum
    g.push_back(flow("ipv4 options (IHL 15) udp", {}, ip, udp(40004, 514, to_bytes("log"))));
  }
  {
    EthSpec eth;
    eth.vlans = {Vlan{kEth8021Q, 100}};
    g.push_back(flow("802.1Q ipv4 tcp", eth, ip_between(c4, s4), tcp(40005, 80, kTcpSyn)));
  }
  {
    EthSpec eth;
    eth.vlans = {Vlan{kEth8021AD, 10}, Vlan{kEth8021Q, 20}};
    g.push_back(flow("802.1ad+802.1Q ipv4 udp", eth, ip_between(c4, s4), udp(40006, 123, Bytes(48, 0))));
  }
  {
    EthSpec eth;
    eth.vlans = {Vlan{kEth8021Q, 200}};
    g.push_back(flow("802.1Q ipv6 tcp", eth, ip_between(c6, s6), tcp(40007, 443, kTcpSyn)));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.v4_frag = 0x2000;  // MF, offset 0: the first fragment carries the UDP header
    UdpSpec u = udp(40008, 2049, Bytes(100, 0xab));
    u.length = 1008;      // the whole datagram, longer than this fragment
    g.push_back(flow("ipv4 first fragment udp", {}, ip, u));
  }
  {
    GoldenFrame f = flow("ipv4 tcp ack, ethernet padding", {}, ip_between(c4, s4), tcp(40009, 80, kTcpAck));
    f.frame.resize(60, 0);  // minimum Ethernet frame: 6 bytes of padding after IP
    g.push_back(f);
  }
  g.push_back(flow("ipv6 tcp syn", {}, ip_between(c6, s6), tcp(40010, 80, kTcpSyn)));
  g.push_back(flow("ipv6 udp", {}, ip_between(c6, s6), udp(40011, 53, to_bytes("query6"))));
  {
    IcmpSpec echo;
    echo.type = 128;
    echo.rest = 0x00020001;
    echo.body = to_bytes("ping6");
    g.push_back(flow("ipv6 icmpv6 echo request", {}, ip_between(c6, s6), echo));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.v6_ext = {ext_hop_by_hop(0), ext_routing(), ext_dest_opts(1)};
    g.push_back(flow("ipv6 hop-by-hop+routing+dest-opts tcp", {}, ip, tcp(40012, 8080, kTcpSyn)));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.v6_ext = {ext_ah()};
    g.push_back(flow("ipv6 AH udp", {}, ip, udp(40013, 500, to_bytes("ike"))));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.v6_ext = {ext_fragment(0, true)};
    UdpSpec u = udp(40014, 2049, Bytes(64, 0xcd));
    u.length = 2000;
    g.push_back(flow("ipv6 first fragment udp", {}, ip, u));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.v6_ext = {ext_hop_by_hop(0), ext_dest_opts(0), ext_routing(), ext_fragment(0, false),
                 ext_ah(), ext_dest_opts(2)};  // exactly the walk limit
    g.push_back(flow("ipv6 six extension headers tcp", {}, ip, tcp(40015, 80, kTcpSyn)));
  }

  // ---- ICMP errors, attributed to the quoted flow ----------------------------
  g.push_back(icmp_error("icmp port unreachable quoting udp", s4, 3, 3, 0, ip_between(c4, s4),
                         udp(40020, 161, to_bytes("get-request"))));
  {
    IpSpec quoted = ip_between(c4, s4);
    quoted.v4_options = {0x94, 0x04, 0x00, 0x00};
    g.push_back(icmp_error("icmp time exceeded quoting tcp with ip options", r4, 11, 0, 0, quoted,
                           tcp(40021, 443, kTcpSyn)));
  }
  {
    IcmpSpec echo;
    echo.type = 8;
    echo.body = to_bytes("ping");
    g.push_back(icmp_error("icmp host unreachable quoting an echo request", r4, 3, 1, 0,
                           ip_between(c4, s4), echo));
  }
  g.push_back(icmp_error("icmpv6 port unreachable quoting udp", s6, 1, 4, 0, ip_between(c6, s6),
                         udp(40022, 161, to_bytes("get-request"))));
  g.push_back(icmp_error("icmpv6 packet too big quoting tcp", r6, 2, 0, 1280, ip_between(c6, s6),
                         tcp(40023, 443, kTcpAck, Bytes(200, 0x11))));
  {
    IpSpec quoted = ip_between(c6, s6);
    quoted.v6_ext = {ext_dest_opts(0)};
    g.push_back(icmp_error("icmpv6 time exceeded quoting udp behind dest-opts", r6, 3, 0, 0, quoted,
                           udp(40024, 53, to_bytes("q"))));
  }

  // ---- parsed, nothing to account -------------------------------------------
  {
    IpSpec quoted = ip_between(c4, s4);
    quoted.v4_frag = 100;
    IcmpSpec icmp;
    icmp.type = 3;
    icmp.code = 4;
    icmp.body = build_ip(quoted, RawL4{kProtoUdp, Bytes(16, 0)});
    g.push_back(ignored("icmp error quoting a non-first fragment",
                        build_frame({}, ip_between(r4, c4), icmp)));
  }
  g.push_back(ignored("ipv4 gre", build_frame({}, ip_between(c4, s4), RawL4{kProtoGre, Bytes(8, 0)})));
  {
    IcmpSpec ns;
    ns.type = 135;
    ns.body = Bytes(16, 0);
    g.push_back(ignored("ipv6 neighbour solicitation", build_frame({}, ip_between(c6, s6), ns)));
  }
  g.push_back(ignored("ipv6 no next header", build_frame({}, ip_between(c6, s6), RawL4{kProtoNoNext, {}})));
  {
    IcmpSpec ts;
    ts.type = 13;
    ts.body = Bytes(12, 0);
    g.push_back(ignored("ipv4 icmp timestamp", build_frame({}, ip_between(c4, s4), ts)));
  }

  // ---- not IP, fragments ------------------------------------------------------
  g.push_back(counted("arp", build_ether({}, kEthArp, Bytes(28, 0)), SHHIM_CTR_NON_IP));
  {
    EthSpec eth;
    eth.vlans = {Vlan{kEth8021Q, 5}};
    g.push_back(counted("802.1Q arp", build_ether(eth, kEthArp, Bytes(28, 0)), SHHIM_CTR_NON_IP));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.v4_frag = 185;  // offset 1480 bytes, last fragment
    g.push_back(counted("ipv4 non-first fragment", build_frame({}, ip, RawL4{kProtoUdp, Bytes(100, 0)}),
                        SHHIM_CTR_FRAGMENTS));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.v6_ext = {ext_hop_by_hop(0), ext_fragment(181, false)};
    g.push_back(counted("ipv6 non-first fragment", build_frame({}, ip, RawL4{kProtoUdp, Bytes(100, 0)}),
                        SHHIM_CTR_FRAGMENTS));
  }

  // ---- malformed and truncated -------------------------------------------------
  {
    GoldenFrame f = counted("ethernet truncated (10 bytes)", Bytes(10, 0xee), SHHIM_CTR_PERR_ETH_TRUNC);
    f.runt = true;
    g.push_back(f);
  }
  g.push_back(counted("vlan tag truncated", build_ether({}, kEth8021Q, {0x00, 0x64}), SHHIM_CTR_PERR_VLAN_TRUNC));
  {
    EthSpec eth;
    eth.vlans = {Vlan{kEth8021AD, 1}, Vlan{kEth8021Q, 2}, Vlan{kEth8021Q, 3}};
    g.push_back(counted("three vlan tags", build_frame(eth, ip_between(c4, s4), tcp(1, 2, kTcpSyn)),
                        SHHIM_CTR_PERR_VLAN_TOO_DEEP));
  }
  {
    Bytes f = build_frame({}, ip_between(c4, s4), tcp(40030, 80, kTcpSyn));
    f.resize(14 + 10);
    g.push_back(counted("ipv4 header truncated", f, SHHIM_CTR_PERR_IPV4_TRUNC));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.ihl = 15;
    Bytes f = build_frame({}, ip, tcp(40031, 80, kTcpSyn));
    f.resize(14 + 30);
    g.push_back(counted("ipv4 options beyond the frame", f, SHHIM_CTR_PERR_IPV4_TRUNC));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.version = 6;
    g.push_back(counted("ipv4 bad version", build_frame({}, ip, tcp(40032, 80, kTcpSyn)),
                        SHHIM_CTR_PERR_IPV4_BAD_VERSION));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.ihl = 4;
    g.push_back(counted("ipv4 IHL 4", build_frame({}, ip, tcp(40033, 80, kTcpSyn)), SHHIM_CTR_PERR_IPV4_BAD_IHL));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.total_length = 16;
    g.push_back(counted("ipv4 total length below header", build_frame({}, ip, tcp(40034, 80, kTcpSyn)),
                        SHHIM_CTR_PERR_IPV4_BAD_TOTLEN));
  }
  {
    IpSpec ip = ip_between(c4, s4);
    ip.total_length = 1500;
    g.push_back(counted("ipv4 total length beyond the frame", build_frame({}, ip, tcp(40035, 80, kTcpSyn)),
                        SHHIM_CTR_PERR_IP_LEN_EXCEEDS_FRAME));
  }
  {
    Bytes f = build_frame({}, ip_between(c6, s6), tcp(40036, 80, kTcpSyn));
    f.resize(14 + 30);
    g.push_back(counted("ipv6 header truncated", f, SHHIM_CTR_PERR_IPV6_TRUNC));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.version = 4;
    g.push_back(counted("ipv6 bad version", build_frame({}, ip, tcp(40037, 80, kTcpSyn)),
                        SHHIM_CTR_PERR_IPV6_BAD_VERSION));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.total_length = 1000;
    g.push_back(counted("ipv6 payload length beyond the frame", build_frame({}, ip, tcp(40038, 80, kTcpSyn)),
                        SHHIM_CTR_PERR_IP_LEN_EXCEEDS_FRAME));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.v6_ext = {ext_hop_by_hop(0)};
    Bytes f = build_frame({}, ip, tcp(40039, 80, kTcpSyn));
    f[14 + 40 + 1] = 5;  // hop-by-hop claims 48 bytes, the payload has 28
    g.push_back(counted("ipv6 extension header beyond the payload", f, SHHIM_CTR_PERR_IPV6_EXT_TRUNC));
  }
  {
    IpSpec ip = ip_between(c6, s6);
    ip.v6_ext = std::vector<Ipv6Ext>(7, ext_dest_opts(0));
    g.push_back(counted("ipv6 seven extension headers", build_frame({}, ip, udp(40040, 53)),
                        SHHIM_CTR_PERR_IPV6_EXT_TOO_DEEP));
  }
  g.push_back(counted("tcp header truncated", build_frame({}, ip_between(c4, s4), RawL4{kProtoTcp, Bytes(12, 0)}),
                      SHHIM_CTR_PERR_TCP_TRUNC));
  {
    TcpSpec t = tcp(40041, 80, kTcpAck);
    t.doff = 4;
    g.push_back(counted("tcp data offset 4", build_frame({}, ip_between(c4, s4), t), SHHIM_CTR_PERR_TCP_BAD_DOFF));
  }
  {
    TcpSpec t = tcp(40042, 80, kTcpAck);
    t.doff = 15;
    g.push_back(counted("ipv6 tcp data offset beyond the payload", build_frame({}, ip_between(c6, s6), t),
                        SHHIM_CTR_PERR_TCP_BAD_DOFF));
  }
  g.push_back(counted("udp header truncated", build_frame({}, ip_between(c6, s6), RawL4{kProtoUdp, Bytes(6, 0)}),
                      SHHIM_CTR_PERR_UDP_TRUNC));
  {
    UdpSpec u = udp(40043, 53, to_bytes("q"));
    u.length = 4;
    g.push_back(counted("udp length 4", build_frame({}, ip_between(c4, s4), u), SHHIM_CTR_PERR_UDP_BAD_LEN));
  }
  {
    UdpSpec u = udp(40044, 53, to_bytes("q"));
    u.length = 100;
    g.push_back(counted("udp length beyond the payload", build_frame({}, ip_between(c4, s4), u),
                        SHHIM_CTR_PERR_UDP_BAD_LEN));
  }
  g.push_back(counted("icmp truncated", build_frame({}, ip_between(r4, c4), RawL4{kProtoIcmp, Bytes(4, 3)}),
                      SHHIM_CTR_PERR_ICMP_TRUNC));
  g.push_back(counted("icmpv6 truncated", build_frame({}, ip_between(r6, c6), RawL4{kProtoIcmpv6, Bytes(6, 1)}),
                      SHHIM_CTR_PERR_ICMP_TRUNC));
  {
    GoldenFrame f = icmp_error("", s4, 3, 3, 0, ip_between(c4, s4), udp(40045, 161), 12);
    g.push_back(counted("icmp error quoting 12 bytes of ip", f.frame, SHHIM_CTR_PERR_ICMP_INNER_TRUNC));
  }
  {
    GoldenFrame f = icmp_error("", s4, 3, 3, 0, ip_between(c4, s4), tcp(40046, 80, kTcpSyn), 24);
    g.push_back(counted("icmp error quoting 4 bytes of tcp", f.frame, SHHIM_CTR_PERR_ICMP_INNER_TRUNC));
  }
  {
    IpSpec quoted = ip_between(c4, s4);
    quoted.version = 5;
    GoldenFrame f = icmp_error("", r4, 11, 0, 0, quoted, udp(40047, 53));
    g.push_back(counted("icmp error quoting ip version 5", f.frame, SHHIM_CTR_PERR_ICMP_INNER_TRUNC));
  }
  {
    GoldenFrame f = icmp_error("", s6, 1, 4, 0, ip_between(c6, s6), udp(40048, 161), 30);
    g.push_back(counted("icmpv6 error quoting 30 bytes of ipv6", f.frame, SHHIM_CTR_PERR_ICMP_INNER_TRUNC));
  }
  {
    IpSpec quoted = ip_between(c6, s6);
    quoted.v6_ext = {ext_dest_opts(3)};
    GoldenFrame f = icmp_error("", r6, 3, 0, 0, quoted, udp(40049, 53), 40 + 16);
    g.push_back(counted("icmpv6 error quoting a cut extension header", f.frame, SHHIM_CTR_PERR_ICMP_INNER_TRUNC));
  }
  return g;
}

}  // namespace shhim::bpftest
