// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// class_policy.hpp - class tables for the golden tests, written from the
// issue's class list (not from compileClassTables), and a test bed that
// runs frames through the real programs with a policy applied through the
// real datapath::PolicyMaps.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bpf_harness.hpp"
#include "core/classify_tables.h"
#include "datapath/policy_maps.h"
#include "frame_builder.hpp"

namespace shhim::bpftest {

// Issue 3: id = index, highest first; default DSCPs EF, CS5, AF41, AF21, AF11, DF, LE.
inline constexpr std::array<std::uint8_t, 7> kSpecDscp = {46, 40, 34, 18, 10, 0, 1};

// TC_PRIO_* bands written as skb->priority where shhim's HTB is not installed.
inline constexpr std::array<std::uint32_t, 7> kSpecBand = {6, 5, 4, 3, 2, 0, 1};

// Every class at its issue DSCP and band; shed ranks bulk 1, administrative 2,
// imaging 3, clinical 4, clinical-realtime 5.
core::ClassTables spec_tables();

core::ServiceEndpoint endpoint(const IpAddr& addr, std::uint16_t port, std::uint8_t proto = kProtoTcp);
core::ServiceClass service(std::string name, const IpAddr& addr, std::uint16_t port, std::uint8_t class_id,
                           std::uint8_t proto = kProtoTcp);
// cidr: "198.18.5.0/24" or "2001:db8:5::/48"; ports inclusive, proto 0 = any.
core::ClassRule rule(std::string name, std::string_view cidr, std::uint16_t port_lo, std::uint16_t port_hi,
                     std::uint8_t proto, std::uint8_t class_id);

// The frame with its IPv4 TOS / IPv6 traffic class set (IPv4 checksum redone).
Bytes with_tos(Bytes frame, std::uint8_t tos);
// TOS / traffic class of the (untagged) frame.
std::uint8_t tos_of(const Bytes& frame);
// True when the IPv4 header of the (untagged) frame sums to 0xffff.
bool ipv4_checksum_ok(const Bytes& frame);

// A Datapath with PolicyMaps on its pin root.
class ClassBed {
 public:
  ClassBed();
  Datapath& dp() { return dp_; }
  datapath::PolicyMaps& policy() { return policy_; }

  PacketRun tc(const Bytes& frame) const { return dp_.run_packet(Program::TcEgress, frame); }
  PacketRun xdp(const Bytes& frame) const { return dp_.run_packet(Program::XdpIngress, frame); }

  // Summed over every interface row.
  shhim_class_counter class_counter(std::uint32_t dir, std::uint8_t class_id) const;
  // The cached class of a flow, if it has been classified.
  std::optional<std::uint32_t> flow_class_gen(const shhim_flow_key& key) const;
  // Raw write of the policy state (what a packet that read another generation would see).
  void write_state(const shhim_policy_state& state) const;
  shhim_policy_state read_state() const;
  // Raw read/write of one policy slot, to check what the kernel enforces itself.
  shhim_policy read_slot(std::uint32_t slot) const;
  void write_slot(std::uint32_t slot, const shhim_policy& policy) const;
  // Service keys present in the kernel table, per policy slot.
  std::array<std::size_t, SHHIM_POLICY_SLOTS> service_entries_per_slot() const;

 private:
  Datapath dp_;
  datapath::PolicyMaps policy_;
};

}  // namespace shhim::bpftest
