// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// golden_frames.hpp - the catalogue of crafted frames: one per parser path
// (well-formed) and one per malformed/truncated case, each with the counter
// it must move and, when accounted, the flow it belongs to. The golden
// tests run each once; the fuzzer mutates them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpf_harness.hpp"
#include "frame_builder.hpp"

namespace shhim::bpftest {

enum class Outcome {
  Flow,       // accounted to `key`, l3_len bytes
  IcmpError,  // an ICMP error attributed to the quoted flow `key` (sender_is_b: quoted sender)
  Ignored,    // IP, parsed, nothing to account
  Counted,    // not accounted: `counter` (NON_IP, FRAGMENTS or a PERR_*) moves
};

struct GoldenFrame {
  std::string name;
  Bytes frame;
  Outcome outcome = Outcome::Flow;
  std::uint32_t counter = 0;  // for Counted
  CanonicalKey key;           // for Flow and IcmpError
  std::uint32_t l3_len = 0;   // for Flow
  // Shorter than an Ethernet header: BPF_PROG_TEST_RUN refuses it (EINVAL)
  // on both hooks, so only the reference classifier checks it.
  bool runt = false;
};

std::vector<GoldenFrame> golden_frames();

// Addresses the tests use: 198.18.0.0/15 and the IPv6 documentation prefix.
IpAddr client4();
IpAddr server4();
IpAddr router4();
IpAddr client6();
IpAddr server6();
IpAddr router6();

}  // namespace shhim::bpftest
