// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// test_support.hpp - small assertions shared by the golden test files.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bpf_harness.hpp"

namespace shhim::bpftest {

inline std::uint64_t delta(const Counters& before, const Counters& after, std::uint32_t id) {
  return after[id] - before[id];
}

// The counters that say why a frame was not accounted.
inline bool is_verdict_counter(std::uint32_t id) {
  return id == SHHIM_CTR_NON_IP || id == SHHIM_CTR_FRAGMENTS ||
         (id >= SHHIM_CTR_PERR_FIRST && id <= SHHIM_CTR_PERR_LAST);
}

// "" when exactly `expected` (0: none) moved by one among the verdict
// counters; otherwise a description of what moved.
inline std::string verdict_counter_mismatch(const Counters& before, const Counters& after,
                                            std::uint32_t expected) {
  std::string moved;
  bool ok = true;
  for (std::uint32_t id = 0; id < SHHIM_CTR_MAX; ++id) {
    if (!is_verdict_counter(id)) continue;
    const std::uint64_t d = delta(before, after, id);
    const std::uint64_t want = id == expected ? 1 : 0;
    if (d != 0) moved += std::string(counter_name(id)) + "+" + std::to_string(d) + " ";
    if (d != want) ok = false;
  }
  if (ok) return {};
  return "expected " + std::string(expected ? counter_name(expected) : "no verdict counter") +
         ", moved: " + (moved.empty() ? "nothing" : moved);
}

inline bool same_endpoint(const shhim_endpoint& x, const shhim_endpoint& y) {
  return std::memcmp(&x, &y, sizeof(x)) == 0;
}

inline const shhim_endpoint& client_of(const shhim_flow_key& key, bool client_is_b) {
  return client_is_b ? key.b : key.a;
}
inline const shhim_endpoint& server_of(const shhim_flow_key& key, bool client_is_b) {
  return client_is_b ? key.a : key.b;
}

inline std::vector<shhim_event> events_of_kind(const std::vector<shhim_event>& events, std::uint32_t kind) {
  std::vector<shhim_event> out;
  for (const auto& e : events)
    if (e.kind == kind) out.push_back(e);
  return out;
}

}  // namespace shhim::bpftest
