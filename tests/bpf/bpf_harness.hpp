// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// bpf_harness.hpp - loads every shhim BPF object the way production does
// (one private pin root, maps shared by name) and runs frames through them
// with BPF_PROG_TEST_RUN. Used by the golden tests, the fuzzer and the
// benchmark. Needs root (CAP_BPF, CAP_SYS_ADMIN for bpffs).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "frame_builder.hpp"
#include "shhim_abi.h"

struct bpf_link;  // libbpf

namespace shhim::bpftest {

using Counters = std::array<std::uint64_t, SHHIM_CTR_MAX>;
std::string_view counter_name(std::uint32_t id);

// XDP_PASS and TC_ACT_OK, the only verdicts shhim ever returns.
inline constexpr std::uint32_t kXdpPass = 2;
inline constexpr std::uint32_t kTcActOk = 0;

enum class Program { XdpIngress, TcEgress, XdpEmpty, Sockops, TpRetransmit, TpReceiveReset, TpState };

// Frames BPF_PROG_TEST_RUN itself may refuse with EINVAL before any program
// runs: shorter than ETH_HLEN (every hook), and for an skb (TC) an untagged
// IPv4/IPv6 frame too short for the IP header (newer kernels read it).
bool test_run_may_refuse(Program prog, std::span<const std::uint8_t> frame);

struct TestRun {
  int err = 0;                   // 0, or -errno from bpf_prog_test_run_opts
  std::uint32_t retval = 0;      // the program's verdict
  std::uint32_t duration_ns = 0; // mean per repetition, as the kernel measured it
};

// One run with what the program left behind: the frame's bytes and, for TC,
// the skb's priority.
struct PacketRun {
  int err = 0;
  std::uint32_t retval = 0;
  Bytes data;                    // the frame after the program ran
  std::uint32_t priority = 0;    // skb->priority after the program (TC only)
};

// TC_ACT_SHOT: a packet shed in stress mode.
inline constexpr std::uint32_t kTcActShot = 2;

// An owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() { int fd = fd_; fd_ = -1; return fd; }

 private:
  int fd_ = -1;
};

// A private directory on bpffs used as libbpf's pin_root_path:
// /sys/fs/bpf/shhim-test-<pid>-<random>. Removed, with its pins, on destruction.
class PinRoot {
 public:
  PinRoot();
  ~PinRoot();
  PinRoot(const PinRoot&) = delete;
  PinRoot& operator=(const PinRoot&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

shhim_endpoint make_endpoint(const IpAddr& addr, std::uint16_t port, std::uint8_t proto);

struct CanonicalKey {
  shhim_flow_key key{};
  bool sender_is_b = false;
};
// Userspace statement of the canonical-key rule (written independently of the BPF code).
CanonicalKey canonical_key(const shhim_endpoint& sender, const shhim_endpoint& receiver);

enum class Map { Flows, Backends, Counters, Events, Config };

// Every map the objects share, by pinned name (telemetry, classes/policy, then service routes).
inline constexpr std::array<const char*, 19> kSharedMapNames = {
    "shhim_flows",        "shhim_backends",   "shhim_counters",       "shhim_events",
    "shhim_config",       "shhim_policy_state", "shhim_policies",     "shhim_services",
    "shhim_rules",        "shhim_ifaces",     "shhim_class_counters", "shhim_class_buckets",
    "shhim_route_vips",   "shhim_routes",     "shhim_route_active",   "shhim_backend_health",
    "shhim_backend_ids",  "shhim_route_counters", "shhim_sock_routes"};

// Attached tracepoint programs; detached on destruction.
class TracepointLinks {
 public:
  TracepointLinks() = default;
  TracepointLinks(TracepointLinks&&) noexcept = default;
  TracepointLinks& operator=(TracepointLinks&&) noexcept = default;
  ~TracepointLinks();
  void add(::bpf_link* link) { links_.push_back(link); }

 private:
  std::vector<::bpf_link*> links_;
};

struct ProgramInfo {
  std::string name;
  std::uint32_t btf_id = 0;          // 0: loaded without BTF (global functions then verified inline)
  std::uint32_t verified_insns = 0;  // instructions the verifier processed
  std::uint32_t xlated_insns = 0;
  std::uint32_t jited_bytes = 0;
};

class Datapath {
 public:
  // Opens and loads every object under a fresh private pin root.
  Datapath();
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // Runs one frame; repeat > 1 is for benchmarks.
  TestRun run(Program prog, std::span<const std::uint8_t> frame, std::uint32_t repeat = 1) const;
  TestRun run_xdp(std::span<const std::uint8_t> frame) const { return run(Program::XdpIngress, frame); }
  TestRun run_tc(std::span<const std::uint8_t> frame) const { return run(Program::TcEgress, frame); }
  PacketRun run_packet(Program prog, std::span<const std::uint8_t> frame) const;
  Counters counters() const;
  std::optional<shhim_flow> flow(const shhim_flow_key& key) const;
  std::unique_ptr<shhim_backend> backend(const shhim_endpoint& server) const;
  std::size_t flow_count() const;
  void set_config(const shhim_config& config);
  // Events the ring buffer holds right now, oldest first.
  std::vector<shhim_event> drain_events();

  int prog_fd(Program prog) const;
  int map_fd(Map map) const;
  // Map ids as each loaded object sees them: [object][kSharedMapNames]. All rows equal when shared.
  std::vector<std::vector<std::uint32_t>> map_ids_per_object() const;
  const std::string& pin_root() const;
  TracepointLinks attach_tcp_tracepoints();
  std::vector<ProgramInfo> program_info() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The running kernel's CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
std::uint64_t monotonic_ns();
// Sleeps at least ns (restarting after signals) so a latency becomes measurable.
void sleep_at_least_ns(std::uint64_t ns);

}  // namespace shhim::bpftest
