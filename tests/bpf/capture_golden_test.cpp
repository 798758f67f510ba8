// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Packet capture (bpf/capture.bpf.h) on crafted frames through both hooks:
// a sample is the frame cut exactly at the end of its L4 header (IPv4 with
// options, IPv6 with extension headers, TCP options, VLAN tags, UDP, ICMP),
// never a payload byte; exactly `remaining` samples are sent; a disarmed
// capture or a filter that does not match sends nothing.
#include <doctest/doctest.h>
#include <arpa/inet.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "bpf_harness.hpp"
#include "datapath/capture.h"
#include "golden_frames.hpp"

using namespace shhim::bpftest;

namespace {

// The capture maps of the harness's pin root, and what reached the ring.
struct Capture {
  std::vector<shhim_capture_sample> samples;
  shhim::datapath::CaptureSession session;

  explicit Capture(const Datapath& dp)
      : session(dp.pin_root(), [this](const shhim_capture_sample& s) { samples.push_back(s); }) {}

  void arm(std::int64_t count, std::vector<shhim_capture_match> matches = {}) {
    shhim_capture_config config{};
    config.remaining = count;
    config.n_matches = static_cast<std::uint32_t>(matches.size());
    for (std::size_t i = 0; i < matches.size(); ++i) config.matches[i] = matches[i];
    session.arm(config);
  }
  // Everything the hooks sent so far (they run synchronously in TEST_RUN).
  void drain() { session.poll(std::chrono::milliseconds(0)); }
};

shhim_capture_match port_match(std::uint16_t port) {
  shhim_capture_match m{};
  m.port = htons(port);
  return m;
}

shhim_capture_match host_match(const IpAddr& ip) {
  shhim_capture_match m{};
  const auto mapped = ip.mapped();
  std::memcpy(m.addr, mapped.data(), 16);
  m.match_addr = 1;
  return m;
}

Bytes payload(std::size_t n) { return Bytes(n, 0x5a); }

IpSpec ip_between(const IpAddr& src, const IpAddr& dst) {
  IpSpec ip;
  ip.src = src;
  ip.dst = dst;
  return ip;
}

// Runs `frame` through `prog` armed for one sample; returns it (cap_len 0 if none came).
shhim_capture_sample one_sample(Datapath& dp, Program prog, const Bytes& frame) {
  Capture capture(dp);
  capture.arm(1);
  const auto run = dp.run(prog, frame);
  REQUIRE(run.err == 0);
  capture.drain();
  REQUIRE(capture.samples.size() == 1);
  return capture.samples[0];
}

void check_cut(Datapath& dp, Program prog, const Bytes& frame, std::size_t headers) {
  const auto s = one_sample(dp, prog, frame);
  CHECK(s.cap_len == headers);
  CHECK(s.wire_len == frame.size());
  CHECK(s.hook == (prog == Program::XdpIngress ? SHHIM_HOOK_XDP_INGRESS : SHHIM_HOOK_TC_EGRESS));
  REQUIRE(s.cap_len <= frame.size());
  CHECK(std::memcmp(s.data, frame.data(), s.cap_len) == 0);
}

}  // namespace

TEST_CASE("capture: disarmed sends nothing") {
  Datapath dp;
  Capture capture(dp);
  const Bytes frame = tcp_frame(client4(), 40000, server4(), 8080, kTcpAck | kTcpPsh, payload(100));
  CHECK(dp.run_tc(frame).err == 0);
  CHECK(dp.run_xdp(frame).err == 0);
  capture.drain();
  CHECK(capture.samples.empty());
  CHECK(capture.session.remaining() == 0);
}

TEST_CASE("capture: the cut ends exactly at the L4 header") {
  Datapath dp;
  for (const Program prog : {Program::XdpIngress, Program::TcEgress}) {
    CAPTURE(static_cast<int>(prog));
    // IPv4 TCP, no options, with payload: 14 + 20 + 20.
    check_cut(dp, prog, tcp_frame(client4(), 40000, server4(), 8080, kTcpAck | kTcpPsh, payload(300)), 54);

    // IPv4 with 8 bytes of IP options, TCP with 12 bytes of options (MSS, SACK-permitted, NOP...).
    {
      EthSpec eth;
      IpSpec ip = ip_between(client4(), server4());
      ip.v4_options = Bytes{0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00};
      TcpSpec t;
      t.sport = 40001;
      t.dport = 8080;
      t.flags = kTcpAck | kTcpPsh;
      t.options = Bytes{0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00};
      t.payload = payload(200);
      check_cut(dp, prog, build_frame(eth, ip, t), 14 + 28 + 32);
    }

    // Two VLAN tags, IPv6 with hop-by-hop (8) and destination options (16), TCP: 22 + 40 + 24 + 20.
    {
      EthSpec eth;
      eth.vlans = {Vlan{kEth8021AD, 100}, Vlan{kEth8021Q, 200}};
      IpSpec ip = ip_between(client6(), server6());
      ip.v6_ext = {ext_hop_by_hop(0), ext_dest_opts(1)};
      TcpSpec t;
      t.sport = 40002;
      t.dport = 443;
      t.flags = kTcpAck | kTcpPsh;
      t.payload = payload(500);
      check_cut(dp, prog, build_frame(eth, ip, t), 22 + 40 + 24 + 20);
    }

    // UDP: 14 + 20 + 8.
    check_cut(dp, prog, udp_frame(client4(), 5353, server4(), 53, payload(64)), 42);

    // ICMP echo with data: 14 + 20 + 8; ICMPv6 echo: 14 + 40 + 8.
    {
      IcmpSpec echo;
      echo.type = 8;
      echo.body = payload(56);
      check_cut(dp, prog, build_frame(EthSpec{}, ip_between(client4(), server4()), echo), 42);
      echo.type = 128;
      check_cut(dp, prog, build_frame(EthSpec{}, ip_between(client6(), server6()), echo), 62);
    }

    // A header chain longer than the sample: cut at SHHIM_CAPTURE_MAX_BYTES, still no payload.
    {
      IpSpec ip = ip_between(client6(), server6());
      ip.v6_ext = {ext_hop_by_hop(10), ext_dest_opts(10)};  // 88 + 88 bytes
      TcpSpec t;
      t.sport = 40003;
      t.dport = 8080;
      t.flags = kTcpAck | kTcpPsh;
      t.payload = payload(100);
      const Bytes frame = build_frame(EthSpec{}, ip, t);
      REQUIRE(frame.size() > 14 + 40 + 176 + 20);
      check_cut(dp, prog, frame, SHHIM_CAPTURE_MAX_BYTES);
    }
  }
}

TEST_CASE("capture: exactly `remaining` samples, then it is disarmed") {
  Datapath dp;
  Capture capture(dp);
  capture.arm(3);
  for (int i = 0; i < 5; ++i) {
    const Bytes frame = tcp_frame(client4(), 40010, server4(), 8080, kTcpAck, payload(10));
    REQUIRE(dp.run(i % 2 ? Program::XdpIngress : Program::TcEgress, frame).err == 0);
  }
  capture.drain();
  CHECK(capture.samples.size() == 3);
  CHECK(capture.session.remaining() == 0);
  for (const auto& s : capture.samples) {
    CHECK(s.session == capture.session.session());
    CHECK(s.cap_len == 54);
    CHECK(s.ts_ns > 0);
  }
}

TEST_CASE("capture: filters by port and host, either side; others take no count") {
  Datapath dp;
  Capture capture(dp);
  capture.arm(2, {port_match(2575)});
  REQUIRE(dp.run_tc(tcp_frame(client4(), 40020, server4(), 8080, kTcpAck)).err == 0);
  capture.drain();
  CHECK(capture.samples.empty());
  CHECK(capture.session.remaining() == 2);
  // The server's reply: the port is the source now.
  REQUIRE(dp.run_xdp(tcp_frame(server4(), 2575, client4(), 40021, kTcpSyn | kTcpAck)).err == 0);
  capture.drain();
  CHECK(capture.samples.size() == 1);
  CHECK(capture.session.remaining() == 1);

  capture.samples.clear();
  capture.arm(1, {host_match(server6())});
  REQUIRE(dp.run_tc(tcp_frame(client4(), 40022, server4(), 8080, kTcpAck)).err == 0);
  REQUIRE(dp.run_tc(tcp_frame(client6(), 40023, server6(), 8080, kTcpSyn)).err == 0);
  capture.drain();
  REQUIRE(capture.samples.size() == 1);
  CHECK(capture.samples[0].cap_len == 74);
}

TEST_CASE("capture: samples of an earlier session are not handed over") {
  Datapath dp;
  {
    Capture old(dp);
    old.arm(1);
    REQUIRE(dp.run_tc(tcp_frame(client4(), 40030, server4(), 8080, kTcpAck)).err == 0);
    // Not consumed: the sample stays in the ring.
  }
  Capture fresh(dp);
  fresh.drain();
  CHECK(fresh.samples.empty());
}
