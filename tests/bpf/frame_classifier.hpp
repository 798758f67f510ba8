// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// frame_classifier.hpp - an independent userspace statement of which
// counter a frame must move in the BPF parser (the table at the top of
// bpf/parse.bpf.h). The fuzzer compares every frame's counters against it;
// it also reports where the headers are so mutators can corrupt lengths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace shhim::bpftest {

struct FrameLayout {
  std::size_t l3 = 0;                   // IP header, 0 if none
  int family = 0;                       // 4, 6 or 0
  std::size_t l4 = 0;                   // transport header, 0 if none
  std::uint8_t l4_proto = 0;
  std::vector<std::size_t> ipv6_ext;    // extension headers (outer and quoted)
  std::size_t inner_l3 = 0;             // IP header quoted by an ICMP error, 0 if none
  std::size_t inner_l4 = 0;
};

struct Classification {
  // 0 when the frame parses (accounted, or IP the monitor ignores);
  // otherwise SHHIM_CTR_NON_IP, SHHIM_CTR_FRAGMENTS or one SHHIM_CTR_PERR_*.
  std::uint32_t counter = 0;
  FrameLayout layout;
};

Classification classify_frame(std::span<const std::uint8_t> frame);

}  // namespace shhim::bpftest
