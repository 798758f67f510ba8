// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// packet_loss_test.cpp - the test rig's packet-loss programs
// (tests/rig/packet_loss.bpf.c) through BPF_PROG_TEST_RUN: a rule of 100%
// drops every matching frame in its direction and counts it, 0% passes it,
// other ports and other protocols pass, a share in between drops about that
// share.
#include <doctest/doctest.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <memory>
#include <span>

#include "bpf_harness.hpp"
#include "frame_builder.hpp"
#include "packet_loss.skel.h"

namespace shhim::bpftest {
namespace {

// The map value layout of tests/rig/packet_loss.bpf.c (what the rig script writes).
struct LossRule {
  std::uint16_t port;
  std::uint16_t pad;
  std::uint32_t drop_ppm;
};
struct LossStat {
  std::uint64_t matched;
  std::uint64_t dropped;
};
static_assert(sizeof(LossRule) == 8 && sizeof(LossStat) == 16);

constexpr std::uint16_t kBackendPort = 8107;
constexpr std::uint16_t kOtherPort = 8108;
constexpr std::uint16_t kClientPort = 40001;

struct SkelDeleter {
  void operator()(packet_loss_bpf* s) const { packet_loss_bpf__destroy(s); }
};

class LossRig {
 public:
  LossRig() : skel_(packet_loss_bpf__open_and_load()) {
    REQUIRE_MESSAGE(skel_ != nullptr, "tests/rig/packet_loss.bpf.o did not load");
  }

  void set_rule(std::uint32_t slot, std::uint16_t port, std::uint32_t drop_ppm) {
    const LossRule rule{port, 0, drop_ppm};
    REQUIRE(bpf_map_update_elem(bpf_map__fd(skel_->maps.loss_rules), &slot, &rule, BPF_ANY) == 0);
  }

  LossStat stat(std::uint32_t slot) const {
    LossStat s{};
    REQUIRE(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.loss_stats), &slot, &s) == 0);
    return s;
  }

  // The verdict of one run (TC_ACT_OK 0, TC_ACT_SHOT 2).
  std::uint32_t run(bool ingress, std::span<const std::uint8_t> frame) const {
    bpf_test_run_opts opts{};
    opts.sz = sizeof(opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<__u32>(frame.size());
    const bpf_program* prog = ingress ? skel_->progs.loss_ingress : skel_->progs.loss_egress;
    REQUIRE(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts) == 0);
    return opts.retval;
  }

 private:
  std::unique_ptr<packet_loss_bpf, SkelDeleter> skel_;
};

const IpAddr kClient4 = IpAddr::parse("198.18.0.1");
const IpAddr kServer4 = IpAddr::parse("198.18.0.10");
const IpAddr kClient6 = IpAddr::parse("2001:2::1");
const IpAddr kServer6 = IpAddr::parse("2001:2::10");

// Client -> backend (seen on the services-side ingress) and back (egress).
Bytes to_backend(const IpAddr& c, const IpAddr& s, std::uint16_t port) {
  return tcp_frame(c, kClientPort, s, port, kTcpAck | kTcpPsh, to_bytes("GET / HTTP/1.1\r\n\r\n"));
}
Bytes from_backend(const IpAddr& c, const IpAddr& s, std::uint16_t port) {
  return tcp_frame(s, port, c, kClientPort, kTcpAck);
}

}  // namespace

TEST_CASE("packet loss rig: 100% drops the backend's TCP frames both ways, IPv4 and IPv6, and counts them") {
  LossRig rig;
  rig.set_rule(3, kBackendPort, 1000000);
  for (const auto& [c, s] : {std::pair{kClient4, kServer4}, std::pair{kClient6, kServer6}}) {
    CAPTURE(s.family);
    CHECK(rig.run(true, to_backend(c, s, kBackendPort)) == kTcActShot);
    CHECK(rig.run(false, from_backend(c, s, kBackendPort)) == kTcActShot);
    // The other port, and each port seen in the wrong direction, pass.
    CHECK(rig.run(true, to_backend(c, s, kOtherPort)) == kTcActOk);
    CHECK(rig.run(false, from_backend(c, s, kOtherPort)) == kTcActOk);
    CHECK(rig.run(false, to_backend(c, s, kBackendPort)) == kTcActOk);
    CHECK(rig.run(true, from_backend(c, s, kBackendPort)) == kTcActOk);
  }
  const LossStat st = rig.stat(3);
  CHECK(st.matched == 4);
  CHECK(st.dropped == 4);
  // UDP to the same port is not the backend's TCP traffic.
  CHECK(rig.run(true, udp_frame(kClient4, kClientPort, kServer4, kBackendPort)) == kTcActOk);
}

TEST_CASE("packet loss rig: 0% and no rule pass; a cleared rule stops dropping") {
  LossRig rig;
  CHECK(rig.run(true, to_backend(kClient4, kServer4, kBackendPort)) == kTcActOk);
  rig.set_rule(0, kBackendPort, 0);
  CHECK(rig.run(true, to_backend(kClient4, kServer4, kBackendPort)) == kTcActOk);
  CHECK(rig.run(false, from_backend(kClient4, kServer4, kBackendPort)) == kTcActOk);
  CHECK(rig.stat(0).matched == 2);
  CHECK(rig.stat(0).dropped == 0);
  rig.set_rule(0, kBackendPort, 1000000);
  CHECK(rig.run(true, to_backend(kClient4, kServer4, kBackendPort)) == kTcActShot);
  rig.set_rule(0, 0, 1000000);  // port 0: the slot is empty again
  CHECK(rig.run(true, to_backend(kClient4, kServer4, kBackendPort)) == kTcActOk);
}

TEST_CASE("packet loss rig: 10% drops about a tenth") {
  LossRig rig;
  rig.set_rule(1, kBackendPort, 100000);
  const Bytes frame = to_backend(kClient4, kServer4, kBackendPort);
  constexpr int kRuns = 4000;
  int dropped = 0;
  for (int i = 0; i < kRuns; ++i) dropped += rig.run(true, frame) == kTcActShot ? 1 : 0;
  // Binomial(4000, 0.1): mean 400, sd 19; +-100 is more than 5 sd.
  CHECK(dropped > 300);
  CHECK(dropped < 500);
  CHECK(rig.stat(1).dropped == static_cast<std::uint64_t>(dropped));
}

}  // namespace shhim::bpftest
