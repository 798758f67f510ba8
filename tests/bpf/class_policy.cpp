// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "class_policy.hpp"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace shhim::bpftest {
namespace {

constexpr std::size_t kL3 = 14;  // untagged frames only

int open_pin(const Datapath& dp, const char* name) {
  const std::string path = dp.pin_root() + "/" + name;
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
  return fd;
}

std::uint16_t ipv4_header_sum(const Bytes& f) {
  const std::size_t ihl = (f[kL3] & 0x0f) * 4u;
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < ihl; i += 2) sum += static_cast<std::uint32_t>(f[kL3 + i] << 8 | f[kL3 + i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

}  // namespace

core::ClassTables spec_tables() {
  static constexpr const char* kNames[] = {"life-critical", "emergency",      "clinical-realtime", "clinical",
                                           "imaging",       "administrative", "bulk"};
  core::ClassTables t;
  for (std::uint8_t c = 0; c < 7; ++c) {
    core::ClassConfig cfg;
    cfg.name = kNames[c];
    cfg.dscp = kSpecDscp[c];
    cfg.skb_priority = kSpecBand[c];
    cfg.shed_rank = c >= 2 ? static_cast<std::uint8_t>(7 - c) : 0;
    cfg.burst_bytes = 64 * 1024;
    t.classes.push_back(cfg);
  }
  t.default_class = SHHIM_CLASS_ADMINISTRATIVE;
  return t;
}

core::ServiceEndpoint endpoint(const IpAddr& addr, std::uint16_t port, std::uint8_t proto) {
  core::ServiceEndpoint e;
  e.address = addr.mapped();
  e.family = static_cast<std::uint8_t>(addr.family);
  e.port = port;
  e.protocol = proto;
  return e;
}

core::ServiceClass service(std::string name, const IpAddr& addr, std::uint16_t port, std::uint8_t class_id,
                           std::uint8_t proto) {
  core::ServiceClass s;
  s.endpoint = endpoint(addr, port, proto);
  s.class_id = class_id;
  s.service = std::move(name);
  return s;
}

core::ClassRule rule(std::string name, std::string_view cidr, std::uint16_t port_lo, std::uint16_t port_hi,
                     std::uint8_t proto, std::uint8_t class_id) {
  const std::size_t slash = cidr.find('/');
  const IpAddr addr = IpAddr::parse(cidr.substr(0, slash));
  const int len = std::stoi(std::string(cidr.substr(slash + 1)));
  core::ClassRule r;
  r.prefix_length = static_cast<std::uint8_t>(addr.family == 4 ? 96 + len : len);
  r.prefix = core::maskAddress(addr.mapped(), r.prefix_length);
  r.port_lo = port_lo;
  r.port_hi = port_hi;
  r.protocol = proto;
  r.class_id = class_id;
  r.name = std::move(name);
  return r;
}

Bytes with_tos(Bytes f, std::uint8_t tos) {
  if (f[kL3] >> 4 == 4) {
    f[kL3 + 1] = tos;
    f[kL3 + 10] = f[kL3 + 11] = 0;
    const std::uint16_t check = static_cast<std::uint16_t>(~ipv4_header_sum(f));
    f[kL3 + 10] = static_cast<std::uint8_t>(check >> 8);
    f[kL3 + 11] = static_cast<std::uint8_t>(check);
  } else {
    f[kL3] = static_cast<std::uint8_t>(0x60 | (tos >> 4));
    f[kL3 + 1] = static_cast<std::uint8_t>((tos << 4) | (f[kL3 + 1] & 0x0f));
  }
  return f;
}

std::uint8_t tos_of(const Bytes& f) {
  if (f[kL3] >> 4 == 4) return f[kL3 + 1];
  return static_cast<std::uint8_t>(((f[kL3] & 0x0f) << 4) | (f[kL3 + 1] >> 4));
}

bool ipv4_checksum_ok(const Bytes& f) { return ipv4_header_sum(f) == 0xffff; }

ClassBed::ClassBed() : policy_(datapath::PolicyMaps::openPinned(dp_.pin_root())) {}

shhim_class_counter ClassBed::class_counter(std::uint32_t dir, std::uint8_t class_id) const {
  shhim_class_counter sum{};
  for (const auto& row : policy_.classCounters()) {
    const shhim_class_counter& c = row.counters[dir][class_id];
    sum.packets += c.packets;
    sum.bytes += c.bytes;
    sum.drops += c.drops;
    sum.drop_bytes += c.drop_bytes;
    sum.dscp_rewrites += c.dscp_rewrites;
  }
  return sum;
}

std::optional<std::uint32_t> ClassBed::flow_class_gen(const shhim_flow_key& key) const {
  const auto f = dp_.flow(key);
  if (!f) return std::nullopt;
  return f->class_gen;
}

void ClassBed::write_state(const shhim_policy_state& state) const {
  const UniqueFd fd(open_pin(dp_, "shhim_policy_state"));
  const std::uint32_t zero = 0;
  if (bpf_map_update_elem(fd.get(), &zero, &state, BPF_ANY) != 0)
    throw std::runtime_error(std::string("write shhim_policy_state: ") + std::strerror(errno));
}

shhim_policy_state ClassBed::read_state() const {
  const UniqueFd fd(open_pin(dp_, "shhim_policy_state"));
  const std::uint32_t zero = 0;
  shhim_policy_state state{};
  if (bpf_map_lookup_elem(fd.get(), &zero, &state) != 0)
    throw std::runtime_error(std::string("read shhim_policy_state: ") + std::strerror(errno));
  return state;
}

shhim_policy ClassBed::read_slot(std::uint32_t slot) const {
  const UniqueFd fd(open_pin(dp_, "shhim_policies"));
  shhim_policy p{};
  if (bpf_map_lookup_elem(fd.get(), &slot, &p) != 0)
    throw std::runtime_error(std::string("read shhim_policies: ") + std::strerror(errno));
  return p;
}

void ClassBed::write_slot(std::uint32_t slot, const shhim_policy& policy) const {
  const UniqueFd fd(open_pin(dp_, "shhim_policies"));
  if (bpf_map_update_elem(fd.get(), &slot, &policy, BPF_ANY) != 0)
    throw std::runtime_error(std::string("write shhim_policies: ") + std::strerror(errno));
}

std::array<std::size_t, SHHIM_POLICY_SLOTS> ClassBed::service_entries_per_slot() const {
  const UniqueFd fd(open_pin(dp_, "shhim_services"));
  std::array<std::size_t, SHHIM_POLICY_SLOTS> n{};
  shhim_service_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd.get(), prev, &next) == 0) {
    if (next.policy_slot < SHHIM_POLICY_SLOTS) ++n[next.policy_slot];
    key = next;
    prev = &key;
  }
  return n;
}

}  // namespace shhim::bpftest
