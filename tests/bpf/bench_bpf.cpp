// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// shhim-bench-bpf: ns/packet of XDP ingress and TC egress on an
// established-flow TCP packet, against an empty XDP program, measured side by
// side in one process with BPF_PROG_TEST_RUN: several interleaved rounds of
// `repeat` runs each, medians reported. The ratios are the median of the
// per-round ratios: each round measures all three programs back to back, so
// load from other processes (a shared machine) cancels out within a round.
// Exits 1 when XDP ingress costs more than --max-ratio times the empty
// program (the numbers are printed anyway).
// A class policy is applied first (the flow's server is a service of class
// clinical; the test-run device has an interface slot), so both programs
// pay for the class path: generation check, cached class, per-class
// counters, and on egress the class config and skb->priority. The TC frame
// is marked by its first run; BPF_PROG_TEST_RUN repeats on the same skb, so
// the repetitions measure a packet that already carries its DSCP.
// --remark also turns on ingress re-marking for the device.
//
//   shhim-bench-bpf [--repeat N] [--rounds N] [--max-ratio X]
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpf_harness.hpp"
#include "class_policy.hpp"
#include "golden_frames.hpp"

using namespace shhim::bpftest;

namespace {

struct Options {
  std::uint32_t repeat = 1000000;
  std::uint32_t rounds = 15;
  double max_ratio = 4.0;
  bool remark = false;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: shhim-bench-bpf [--repeat N] [--rounds N] [--max-ratio X]\n"
               "  --repeat N     BPF_PROG_TEST_RUN repetitions per measurement (default 1000000, minimum 1000000)\n"
               "  --rounds N     interleaved rounds; medians are reported (default 15)\n"
               "  --max-ratio X  fail when XDP ingress > X times the empty program (default 4)\n"
               "  --remark       re-mark untrusted DSCP on ingress (the policy option) while measuring\n"
               "example: sudo shhim-bench-bpf --rounds 15\n");
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--repeat") o.repeat = static_cast<std::uint32_t>(std::stoul(value()));
    else if (arg == "--rounds") o.rounds = static_cast<std::uint32_t>(std::stoul(value()));
    else if (arg == "--max-ratio") o.max_ratio = std::stod(value());
    else if (arg == "--remark") o.remark = true;
    else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option " + arg);
    }
  }
  if (o.repeat < 1000000) throw std::invalid_argument("--repeat must be at least 1000000");
  if (o.rounds == 0) throw std::invalid_argument("--rounds must be at least 1");
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

void require_ok(const TestRun& r, const char* what) {
  if (r.err != 0) throw std::runtime_error(std::string(what) + ": BPF_PROG_TEST_RUN failed: " + std::strerror(-r.err));
}

struct Subject {
  const char* name;
  Program prog;
  const Bytes* frame;
  std::vector<double> ns;
};

}  // namespace

int main(int argc, char** argv) try {
  const Options opt = parse_options(argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "shhim-bench-bpf: needs root (BPF_PROG_TEST_RUN, bpffs pins)\n");
    return 2;
  }
  ClassBed bed;
  Datapath& dp = bed.dp();
  const IpAddr c = client4(), s = server4();
  const std::uint16_t cport = 41000, sport = 80;
  {
    shhim::core::ClassTables t = spec_tables();
    t.services.push_back(service("bench", s, sport, SHHIM_CLASS_CLINICAL));
    t.rules.push_back(rule("bench-net", "198.18.0.0/15", 0, 65535, 0, SHHIM_CLASS_BULK));
    t.interfaces.push_back(shhim::core::InterfaceConfig{"lo", opt.remark, 0});
    bed.policy().apply(t);
  }
  const Bytes payload(64, 'x');
  // Establish the flow, with a request outstanding, so both packets below take the hot path.
  require_ok(dp.run_tc(tcp_frame(c, cport, s, sport, kTcpSyn)), "setup SYN");
  require_ok(dp.run_xdp(tcp_frame(s, sport, c, cport, kTcpSyn | kTcpAck)), "setup SYN-ACK");
  require_ok(dp.run_tc(tcp_frame(c, cport, s, sport, kTcpAck)), "setup ACK");
  const Bytes to_client = tcp_frame(s, sport, c, cport, kTcpAck | kTcpPsh, payload);
  const Bytes to_server = tcp_frame(c, cport, s, sport, kTcpAck | kTcpPsh, payload);
  require_ok(dp.run_xdp(to_client), "warm-up XDP");
  require_ok(dp.run_tc(to_server), "warm-up TC");
  const CanonicalKey key = canonical_key(make_endpoint(c, cport, kProtoTcp), make_endpoint(s, sport, kProtoTcp));
  const auto flow = dp.flow(key.key);
  if (!flow || flow->tcp_state != SHHIM_TCP_ESTABLISHED)
    throw std::runtime_error("setup: the flow is not established");
  if (SHHIM_CLASS_GEN_CLASS(flow->class_gen) != SHHIM_CLASS_CLINICAL ||
      SHHIM_CLASS_GEN_GEN(flow->class_gen) != bed.policy().generation())
    throw std::runtime_error("setup: the flow is not classified under the applied policy");

  std::vector<Subject> subjects = {
      {"empty_xdp", Program::XdpEmpty, &to_client, {}},
      {"xdp_ingress", Program::XdpIngress, &to_client, {}},
      {"tc_egress", Program::TcEgress, &to_server, {}},
  };
  for (std::uint32_t round = 0; round < opt.rounds; ++round) {
    // Rotate the order so no program always runs first (cache, frequency).
    for (std::size_t i = 0; i < subjects.size(); ++i) {
      Subject& sub = subjects[(i + round) % subjects.size()];
      const TestRun r = dp.run(sub.prog, *sub.frame, opt.repeat);
      require_ok(r, sub.name);
      sub.ns.push_back(r.duration_ns);
    }
  }
  const auto after = dp.flow(key.key);
  const std::uint64_t measured = 2ull * opt.repeat * opt.rounds;
  if (!after || after->packets[0] + after->packets[1] < measured)
    throw std::runtime_error("the measured packets were not accounted to the flow");

  // Per-round ratios against the empty program of the same round.
  std::vector<std::vector<double>> ratios(subjects.size());
  for (std::size_t i = 0; i < subjects.size(); ++i)
    for (std::uint32_t r = 0; r < opt.rounds; ++r) ratios[i].push_back(subjects[i].ns[r] / subjects[0].ns[r]);
  const double empty = median(subjects[0].ns), xdp = median(subjects[1].ns), tc = median(subjects[2].ns);
  const double ratio = median(ratios[1]), tc_ratio = median(ratios[2]);
  std::printf("%-12s %10s %10s %10s %8s\n", "program", "median_ns", "min_ns", "max_ns", "x_empty");
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    const Subject& sub = subjects[i];
    const auto [lo, hi] = std::minmax_element(sub.ns.begin(), sub.ns.end());
    std::printf("%-12s %10.1f %10.1f %10.1f %8.2f\n", sub.name, median(sub.ns), *lo, *hi, median(ratios[i]));
  }
  std::printf("bench xdp_ingress_ns=%.1f tc_egress_ns=%.1f empty_ns=%.1f ratio=%.2f tc_ratio=%.2f repeat=%u rounds=%u "
              "policy=1 remark=%d\n",
              xdp, tc, empty, ratio, tc_ratio, opt.repeat, opt.rounds, opt.remark ? 1 : 0);
  if (ratio > opt.max_ratio) {
    std::printf("FAIL: XDP ingress is %.2fx the empty program (bar %.2fx)\n", ratio, opt.max_ratio);
    return 1;
  }
  std::printf("OK: XDP ingress is %.2fx the empty program (bar %.2fx)\n", ratio, opt.max_ratio);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "shhim-bench-bpf: %s\n", e.what());
  return 2;
}
