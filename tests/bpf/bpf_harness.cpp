// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "bpf_harness.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

#include "bench_empty.skel.h"
#include "connect.skel.h"
#include "sockops.skel.h"
#include "tc_egress.skel.h"
#include "tcp_trace.skel.h"
#include "xdp_ingress.skel.h"

namespace shhim::bpftest {
namespace {

std::runtime_error sys_error(const std::string& what, int err) {
  return std::runtime_error(what + ": " + std::strerror(err < 0 ? -err : err));
}

template <typename Skel>
struct SkelDestroy {
  void operator()(Skel* skel) const { Skel::destroy(skel); }
};
template <typename Skel>
using SkelPtr = std::unique_ptr<Skel, SkelDestroy<Skel>>;

template <typename Skel>
SkelPtr<Skel> open_and_load(const std::string& what, const std::string& pin_root) {
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.pin_root_path = pin_root.c_str();
  SkelPtr<Skel> skel(Skel::open(&opts));
  if (!skel) throw sys_error("opening BPF object " + what, errno);
  if (int err = Skel::load(skel.get()); err != 0)
    throw sys_error("loading BPF object " + what + " (pin root " + pin_root + ")", err);
  return skel;
}

std::uint32_t map_id(const struct bpf_map* map) {
  bpf_map_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len) != 0)
    throw sys_error(std::string("map info of ") + bpf_map__name(map), errno);
  return info.id;
}

template <typename Skel>
std::vector<std::uint32_t> map_ids(const Skel& s) {
  std::vector<std::uint32_t> ids;
  for (const char* name : kSharedMapNames) {
    const struct bpf_map* map = bpf_object__find_map_by_name(s.obj, name);
    if (!map) throw std::runtime_error(std::string("object has no map ") + name);
    ids.push_back(map_id(map));
  }
  return ids;
}

int on_ring_event(void* ctx, void* data, size_t size) {
  auto* out = static_cast<std::vector<shhim_event>*>(ctx);
  if (size < sizeof(shhim_event)) return -EINVAL;
  shhim_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  out->push_back(ev);
  return 0;
}

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

}  // namespace

std::string_view counter_name(std::uint32_t id) {
  static constexpr std::array<std::string_view, SHHIM_CTR_MAX> kNames = {
      "XDP_PACKETS",          "TC_PACKETS",
      "NON_IP",               "FRAGMENTS",
      "FLOWS_CREATED",        "FLOW_CREATE_FAILED",
      "BACKENDS_CREATED",     "BACKEND_CREATE_FAILED",
      "EVENTS_SENT",          "EVENTS_LOST",
      "SOCKOPS_CALLS",        "TP_RETRANSMITS",
      "TP_RESETS",            "TP_STATE_CHANGES",
      "PERR_ETH_TRUNC",       "PERR_VLAN_TRUNC",
      "PERR_VLAN_TOO_DEEP",   "PERR_IPV4_TRUNC",
      "PERR_IPV4_BAD_VERSION", "PERR_IPV4_BAD_IHL",
      "PERR_IPV4_BAD_TOTLEN", "PERR_IPV6_TRUNC",
      "PERR_IPV6_BAD_VERSION", "PERR_IPV6_EXT_TRUNC",
      "PERR_IPV6_EXT_TOO_DEEP", "PERR_IP_LEN_EXCEEDS_FRAME",
      "PERR_TCP_TRUNC",       "PERR_TCP_BAD_DOFF",
      "PERR_UDP_TRUNC",       "PERR_UDP_BAD_LEN",
      "PERR_ICMP_TRUNC",      "PERR_ICMP_INNER_TRUNC",
  };
  static_assert(SHHIM_CTR_PERR_ICMP_INNER_TRUNC == SHHIM_CTR_MAX - 1, "counter names out of date");
  return id < kNames.size() ? kNames[id] : std::string_view("?");
}

bool test_run_may_refuse(Program prog, std::span<const std::uint8_t> frame) {
  if (frame.size() < 14) return true;
  if (prog != Program::TcEgress) return false;
  const unsigned type = (frame[12] << 8) | frame[13];
  return (type == 0x0800 && frame.size() < 14 + 20) || (type == 0x86DD && frame.size() < 14 + 40);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

PinRoot::PinRoot() {
  // pid for whoever cleans up after a crash, a random part for several roots per process
  path_ = "/sys/fs/bpf/shhim-test-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
  if (::mkdir(path_.c_str(), 0700) != 0)
    throw sys_error("creating private pin root " + path_ + " (bpffs mounted? root?)", errno);
}

PinRoot::~PinRoot() {
  // Only our own directory: the pins libbpf made in it, then the directory.
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TracepointLinks::~TracepointLinks() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
}

shhim_endpoint make_endpoint(const IpAddr& addr, std::uint16_t port, std::uint8_t proto) {
  shhim_endpoint ep{};
  const auto mapped = addr.mapped();
  std::memcpy(ep.addr, mapped.data(), sizeof(ep.addr));
  ep.port = htons(port);
  ep.family = static_cast<std::uint8_t>(addr.family == 4 ? SHHIM_FAMILY_IPV4 : SHHIM_FAMILY_IPV6);
  ep.proto = proto;
  return ep;
}

CanonicalKey canonical_key(const shhim_endpoint& sender, const shhim_endpoint& receiver) {
  const std::uint16_t sp = ntohs(sender.port), rp = ntohs(receiver.port);
  bool sender_is_b;
  if (sp != rp) sender_is_b = sp > rp;
  else sender_is_b = std::memcmp(sender.addr, receiver.addr, sizeof(sender.addr)) > 0;
  CanonicalKey k;
  k.sender_is_b = sender_is_b;
  k.key.a = sender_is_b ? receiver : sender;
  k.key.b = sender_is_b ? sender : receiver;
  return k;
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

void sleep_at_least_ns(std::uint64_t ns) {
  const std::uint64_t until = monotonic_ns() + ns;
  timespec ts{static_cast<time_t>(until / 1000000000ull), static_cast<long>(until % 1000000000ull)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

struct Datapath::Impl {
  PinRoot pin;  // declared first: removed after every object let go of its maps
  SkelPtr<xdp_ingress_bpf> xdp;
  SkelPtr<tc_egress_bpf> tc;
  SkelPtr<sockops_bpf> sockops;
  SkelPtr<tcp_trace_bpf> trace;
  SkelPtr<bench_empty_bpf> empty;
  SkelPtr<connect_bpf> connect;  // loaded so every test run proves the verifier takes it
  std::vector<shhim_event> ring_out;
  std::unique_ptr<ring_buffer, RingBufferDeleter> ring;
  int ncpus = 0;
};

Datapath::Datapath() : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  const std::string& root = d.pin.path();
  d.xdp = open_and_load<xdp_ingress_bpf>("xdp_ingress", root);
  d.tc = open_and_load<tc_egress_bpf>("tc_egress", root);
  d.sockops = open_and_load<sockops_bpf>("sockops", root);
  d.trace = open_and_load<tcp_trace_bpf>("tcp_trace", root);
  d.empty = open_and_load<bench_empty_bpf>("bench_empty", root);
  d.connect = open_and_load<connect_bpf>("connect", root);
  d.ncpus = libbpf_num_possible_cpus();
  if (d.ncpus <= 0) throw sys_error("counting possible CPUs", d.ncpus);
  d.ring.reset(ring_buffer__new(bpf_map__fd(d.xdp->maps.shhim_events), on_ring_event,
                                &d.ring_out, nullptr));
  if (!d.ring) throw sys_error("ring_buffer__new on shhim_events", errno);
}

Datapath::~Datapath() = default;

int Datapath::prog_fd(Program prog) const {
  const Impl& d = *impl_;
  switch (prog) {
    case Program::XdpIngress: return bpf_program__fd(d.xdp->progs.shhim_xdp_ingress);
    case Program::TcEgress: return bpf_program__fd(d.tc->progs.shhim_tc_egress);
    case Program::XdpEmpty: return bpf_program__fd(d.empty->progs.shhim_xdp_empty);
    case Program::Sockops: return bpf_program__fd(d.sockops->progs.shhim_sockops);
    case Program::TpRetransmit: return bpf_program__fd(d.trace->progs.shhim_tp_retransmit);
    case Program::TpReceiveReset: return bpf_program__fd(d.trace->progs.shhim_tp_receive_reset);
    case Program::TpState: return bpf_program__fd(d.trace->progs.shhim_tp_state);
  }
  return -1;
}

int Datapath::map_fd(Map map) const {
  const auto& m = impl_->xdp->maps;
  switch (map) {
    case Map::Flows: return bpf_map__fd(m.shhim_flows);
    case Map::Backends: return bpf_map__fd(m.shhim_backends);
    case Map::Counters: return bpf_map__fd(m.shhim_counters);
    case Map::Events: return bpf_map__fd(m.shhim_events);
    case Map::Config: return bpf_map__fd(m.shhim_config);
  }
  return -1;
}

const std::string& Datapath::pin_root() const { return impl_->pin.path(); }

std::vector<std::vector<std::uint32_t>> Datapath::map_ids_per_object() const {
  const Impl& d = *impl_;
  return {map_ids(*d.xdp), map_ids(*d.tc), map_ids(*d.sockops), map_ids(*d.trace)};
}

TestRun Datapath::run(Program prog, std::span<const std::uint8_t> frame, std::uint32_t repeat) const {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.repeat = static_cast<int>(repeat);
  TestRun r;
  r.err = bpf_prog_test_run_opts(prog_fd(prog), &opts);  // libbpf 1.x: -errno
  r.retval = opts.retval;
  r.duration_ns = opts.duration;
  return r;
}

PacketRun Datapath::run_packet(Program prog, std::span<const std::uint8_t> frame) const {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  PacketRun r;
  r.data.resize(frame.size() + 256);  // room for whatever the program grows
  opts.data_out = r.data.data();
  opts.data_size_out = static_cast<__u32>(r.data.size());
  __sk_buff skb_out{};
  if (prog == Program::TcEgress) {
    opts.ctx_out = &skb_out;
    opts.ctx_size_out = sizeof(skb_out);
  }
  opts.repeat = 1;
  r.err = bpf_prog_test_run_opts(prog_fd(prog), &opts);
  r.retval = opts.retval;
  r.data.resize(r.err == 0 ? opts.data_size_out : 0);
  r.priority = skb_out.priority;
  return r;
}

Counters Datapath::counters() const {
  const int ncpus = impl_->ncpus;
  std::vector<__u32> keys(SHHIM_CTR_MAX);
  std::vector<std::uint64_t> values(static_cast<std::size_t>(SHHIM_CTR_MAX) * ncpus);
  __u32 count = SHHIM_CTR_MAX, out_batch = 0;
  const int fd = map_fd(Map::Counters);
  int err = bpf_map_lookup_batch(fd, nullptr, &out_batch, keys.data(), values.data(), &count, nullptr);
  Counters sums{};
  if ((err == 0 || errno == ENOENT) && count == SHHIM_CTR_MAX) {
    for (__u32 i = 0; i < count; ++i) {
      const __u32 k = keys[i];
      if (k >= SHHIM_CTR_MAX) continue;
      for (int c = 0; c < ncpus; ++c) sums[k] += values[static_cast<std::size_t>(i) * ncpus + c];
    }
    return sums;
  }
  // Older kernels: one lookup per counter.
  std::vector<std::uint64_t> per_cpu(ncpus);
  for (__u32 k = 0; k < SHHIM_CTR_MAX; ++k) {
    if (bpf_map_lookup_elem(fd, &k, per_cpu.data()) != 0)
      throw sys_error("reading counter " + std::string(counter_name(k)), errno);
    for (auto v : per_cpu) sums[k] += v;
  }
  return sums;
}

std::optional<shhim_flow> Datapath::flow(const shhim_flow_key& key) const {
  shhim_flow value{};
  if (bpf_map_lookup_elem(map_fd(Map::Flows), &key, &value) != 0) return std::nullopt;
  return value;
}

std::unique_ptr<shhim_backend> Datapath::backend(const shhim_endpoint& server) const {
  auto value = std::make_unique<shhim_backend>();
  if (bpf_map_lookup_elem(map_fd(Map::Backends), &server, value.get()) != 0) return nullptr;
  return value;
}

std::size_t Datapath::flow_count() const {
  shhim_flow_key key{}, next{};
  std::size_t n = 0;
  const int fd = map_fd(Map::Flows);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    ++n;
    key = next;
    prev = &key;
  }
  return n;
}

void Datapath::set_config(const shhim_config& config) {
  __u32 zero = 0;
  if (bpf_map_update_elem(map_fd(Map::Config), &zero, &config, BPF_ANY) != 0)
    throw sys_error("writing shhim_config", errno);
}

std::vector<shhim_event> Datapath::drain_events() {
  impl_->ring_out.clear();
  const int n = ring_buffer__consume(impl_->ring.get());
  if (n < 0) throw sys_error("consuming shhim_events", n);
  return std::move(impl_->ring_out);
}

std::vector<ProgramInfo> Datapath::program_info() const {
  std::vector<ProgramInfo> out;
  for (Program prog : {Program::XdpIngress, Program::TcEgress, Program::XdpEmpty, Program::Sockops,
                       Program::TpRetransmit, Program::TpReceiveReset, Program::TpState}) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd(prog), &info, &len) != 0) throw sys_error("program info", errno);
    ProgramInfo p;
    p.name = info.name;
    p.btf_id = info.btf_id;
    p.verified_insns = info.verified_insns;
    p.xlated_insns = info.xlated_prog_len / 8;
    p.jited_bytes = info.jited_prog_len;
    out.push_back(p);
  }
  return out;
}

TracepointLinks Datapath::attach_tcp_tracepoints() {
  TracepointLinks links;
  for (bpf_program* prog : {impl_->trace->progs.shhim_tp_retransmit,
                            impl_->trace->progs.shhim_tp_receive_reset,
                            impl_->trace->progs.shhim_tp_state}) {
    bpf_link* link = bpf_program__attach(prog);
    if (!link) throw sys_error(std::string("attaching ") + bpf_program__name(prog), errno);
    links.add(link);
  }
  return links;
}

}  // namespace shhim::bpftest
