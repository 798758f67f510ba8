// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Fuzzing through BPF_PROG_TEST_RUN: random and mutated frames through every
// XDP and TC program. Every verdict must be pass, and after every frame the
// counters must show exactly what the independent userspace classifier
// (frame_classifier.cpp) says: one packet, and exactly one of
// {parsed, NON_IP, FRAGMENTS, one PERR_*}. A policy with services, rules and
// ingress re-marking is applied throughout (stress off), so the class and
// marking paths see every frame too: every run is counted in exactly one
// class, and a frame that is not a well-formed flow packet is never changed.
//
// Environment: SHHIM_FUZZ_SEED (default: random, printed), SHHIM_FUZZ_FRAMES
// (default 100000).
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "bpf_harness.hpp"
#include "class_policy.hpp"
#include "frame_classifier.hpp"
#include "golden_frames.hpp"
#include "test_support.hpp"

using namespace shhim::bpftest;

namespace {

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

std::string hex(const Bytes& b) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::uint8_t c : b) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

// Valid frames to mutate: the golden catalogue plus application exchanges.
std::vector<Bytes> seed_corpus() {
  std::vector<Bytes> corpus;
  for (const auto& g : golden_frames())
    if (!g.runt) corpus.push_back(g.frame);
  const IpAddr c4 = client4(), s4 = server4(), c6 = client6(), s6 = server6();
  corpus.push_back(tcp_frame(s4, 80, c4, 41000, kTcpAck | kTcpPsh, to_bytes("HTTP/1.1 503 Service Unavailable\r\n\r\n")));
  corpus.push_back(tcp_frame(s6, 2575, c6, 41001, kTcpAck | kTcpPsh,
                             to_bytes("\x0bMSH|^~\\&|A|B|C|D|20240101||ACK|1|P|2.5\rMSA|AE|1\r\x1c\r")));
  corpus.push_back(tcp_frame(c4, 41002, s4, 80, kTcpRst | kTcpAck));
  corpus.push_back(tcp_frame(c6, 41003, s6, 80, kTcpFin | kTcpAck));
  return corpus;
}

class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t below(std::uint64_t n) { return n ? std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_) : 0; }
  bool chance(int percent) { return below(100) < static_cast<std::uint64_t>(percent); }

  Bytes mutate(const Bytes& original, const std::vector<Bytes>& corpus) {
    Bytes f = original;
    switch (below(6)) {
      case 0: flip_bits(f); break;
      case 1: corrupt_length(f); break;
      case 2: set_header_byte(f); break;
      case 3: f = random_frame(); break;
      case 4: f = splice(f, corpus[below(corpus.size())]); break;
      default:
        corrupt_length(f);
        flip_bits(f);
        break;
    }
    if (chance(25) && !f.empty()) f.resize(below(f.size() + 1));
    return f;
  }

 private:
  void flip_bits(Bytes& f) {
    if (f.empty()) return;
    const std::size_t span = chance(80) ? std::min<std::size_t>(f.size(), 128) : f.size();
    for (std::uint64_t n = 1 + below(4); n > 0; --n) f[below(span)] ^= static_cast<std::uint8_t>(1u << below(8));
  }

  std::uint16_t interesting16(std::uint16_t current) {
    static constexpr std::array<std::uint16_t, 14> kValues = {0, 1, 4, 7, 8, 16, 19, 20, 39, 40, 60, 255, 0x7fff, 0xffff};
    switch (below(4)) {
      case 0: return kValues[below(kValues.size())];
      case 1: return static_cast<std::uint16_t>(current + 1 + below(8));
      case 2: return static_cast<std::uint16_t>(current - 1 - below(8));
      default: return static_cast<std::uint16_t>(below(0x10000));
    }
  }

  static void put16(Bytes& f, std::size_t at, std::uint16_t v) {
    if (at + 1 >= f.size()) return;
    f[at] = static_cast<std::uint8_t>(v >> 8);
    f[at + 1] = static_cast<std::uint8_t>(v);
  }
  static std::uint16_t get16(const Bytes& f, std::size_t at) {
    return at + 1 < f.size() ? static_cast<std::uint16_t>((f[at] << 8) | f[at + 1]) : 0;
  }
  void set_nibble(Bytes& f, std::size_t at, bool high) {
    if (at >= f.size()) return;
    const std::uint8_t v = static_cast<std::uint8_t>(below(16));
    f[at] = high ? static_cast<std::uint8_t>((f[at] & 0x0f) | (v << 4)) : static_cast<std::uint8_t>((f[at] & 0xf0) | v);
  }

  // One length-like field of a header the frame really has.
  void corrupt_length(Bytes& f) {
    const FrameLayout l = classify_frame(f).layout;
    std::vector<std::function<void()>> options;
    options.push_back([&] { put16(f, 12, interesting16(get16(f, 12))); });  // EtherType
    if (l.family == 4) {
      options.push_back([&] { put16(f, l.l3 + 2, interesting16(get16(f, l.l3 + 2))); });  // total length
      options.push_back([&] { set_nibble(f, l.l3, false); });                            // IHL
      options.push_back([&] { set_nibble(f, l.l3, true); });                             // version
      options.push_back([&] { put16(f, l.l3 + 6, interesting16(get16(f, l.l3 + 6))); });  // fragment field
      options.push_back([&] { if (l.l3 + 9 < f.size()) f[l.l3 + 9] = static_cast<std::uint8_t>(below(256)); });
    }
    if (l.family == 6) {
      options.push_back([&] { put16(f, l.l3 + 4, interesting16(get16(f, l.l3 + 4))); });  // payload length
      options.push_back([&] { set_nibble(f, l.l3, true); });
      options.push_back([&] {
        static constexpr std::array<std::uint8_t, 9> kNext = {0, 6, 17, 43, 44, 51, 58, 59, 60};
        if (l.l3 + 6 < f.size()) f[l.l3 + 6] = kNext[below(kNext.size())];
      });
    }
    for (std::size_t ext : l.ipv6_ext) {
      options.push_back([&, ext] { if (ext + 1 < f.size()) f[ext + 1] = static_cast<std::uint8_t>(below(256)); });
      options.push_back([&, ext] { put16(f, ext + 2, interesting16(get16(f, ext + 2))); });
      options.push_back([&, ext] {
        static constexpr std::array<std::uint8_t, 8> kNext = {0, 6, 17, 43, 44, 51, 58, 60};
        if (ext < f.size()) f[ext] = kNext[below(kNext.size())];
      });
    }
    if (l.l4 != 0) {
      options.push_back([&] { set_nibble(f, l.l4 + 12, true); });                         // TCP data offset
      options.push_back([&] { put16(f, l.l4 + 4, interesting16(get16(f, l.l4 + 4))); });  // UDP length
      options.push_back([&] { if (l.l4 < f.size()) f[l.l4] = static_cast<std::uint8_t>(below(4) == 0 ? below(256) : 1 + below(11)); });
    }
    if (l.inner_l3 != 0) {
      options.push_back([&] { set_nibble(f, l.inner_l3, false); });
      options.push_back([&] { set_nibble(f, l.inner_l3, true); });
      options.push_back([&] { put16(f, l.inner_l3 + 6, interesting16(get16(f, l.inner_l3 + 6))); });
      options.push_back([&] { if (l.inner_l3 + 9 < f.size()) f[l.inner_l3 + 9] = static_cast<std::uint8_t>(below(64)); });
    }
    options[below(options.size())]();
  }

  void set_header_byte(Bytes& f) {
    if (f.empty()) return;
    static constexpr std::array<std::uint8_t, 10> kValues = {0x00, 0x01, 0x05, 0x06, 0x11, 0x3a, 0x45, 0x60, 0x81, 0xff};
    f[below(std::min<std::size_t>(f.size(), 96))] = kValues[below(kValues.size())];
  }

  Bytes random_frame() {
    Bytes f(below(600));
    for (auto& b : f) b = static_cast<std::uint8_t>(below(256));
    if (f.size() >= 15) {
      static constexpr std::array<std::uint16_t, 5> kTypes = {0x0800, 0x86DD, 0x8100, 0x88A8, 0x0806};
      put16(f, 12, kTypes[below(kTypes.size())]);
      // Give the IP header a plausible first byte most of the time so parsing goes deeper.
      if (chance(70)) f[14] = get16(f, 12) == 0x86DD ? 0x60 : static_cast<std::uint8_t>(0x45 + below(3));
    }
    return f;
  }

  Bytes splice(const Bytes& head, const Bytes& tail) {
    const std::size_t cut = below(std::min(head.size(), tail.size()) + 1);
    Bytes f(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(cut));
    f.insert(f.end(), tail.begin() + static_cast<std::ptrdiff_t>(cut), tail.end());
    return f;
  }

  std::mt19937_64 rng_;
};

// Runs frames through every XDP and TC program and checks each against the classifier.
class FuzzRunner {
 public:
  explicit FuzzRunner(Datapath& dp) : dp_(dp), last_(dp.counters()) {}

  void run(const Bytes& frame) {
    const std::uint32_t expected = classify_frame(frame).counter;
    ++frames_;
    ++expected_by_counter_[expected];
    for (Program prog : {Program::XdpIngress, Program::TcEgress, Program::XdpEmpty}) {
      const PacketRun r = dp_.run_packet(prog, frame);
      ++runs_;
      if (r.err == -EINVAL && test_run_may_refuse(prog, frame)) {
        ++refused_;
        continue;  // the kernel harness refused it; the next counter read proves nothing moved
      }
      if (r.err != 0) {
        fail("test run error " + std::to_string(r.err), prog, frame, expected);
        continue;
      }
      const std::uint32_t pass = prog == Program::TcEgress ? kTcActOk : kXdpPass;
      if (r.retval != pass) fail("verdict " + std::to_string(r.retval), prog, frame, expected);
      if (prog == Program::XdpEmpty) continue;
      ++(prog == Program::TcEgress ? tc_runs_ : xdp_runs_);
      // Only parsed frames may be re-marked; anything the parser refused leaves unchanged.
      if (expected != 0 && r.data != frame) fail("a frame the parser refused was changed", prog, frame, expected);

      ++expected_runs_by_counter_[expected];
      const Counters now = dp_.counters();
      const std::uint32_t packets = prog == Program::TcEgress ? SHHIM_CTR_TC_PACKETS : SHHIM_CTR_XDP_PACKETS;
      if (delta(last_, now, packets) != 1) fail("packet counter did not move by one", prog, frame, expected);
      const std::string mismatch = verdict_counter_mismatch(last_, now, expected);
      if (!mismatch.empty()) fail(mismatch, prog, frame, expected);
      for (std::uint32_t id = 0; id < SHHIM_CTR_MAX; ++id)
        if (is_verdict_counter(id)) moved_by_counter_[id] += delta(last_, now, id);
      last_ = now;
    }
  }

  std::uint64_t frames() const { return frames_; }
  std::uint64_t runs() const { return runs_; }
  std::uint64_t refused() const { return refused_; }
  std::uint64_t failures() const { return failures_; }
  std::uint64_t xdp_runs() const { return xdp_runs_; }
  std::uint64_t tc_runs() const { return tc_runs_; }
  const std::array<std::uint64_t, SHHIM_CTR_MAX>& expected_by_counter() const { return expected_by_counter_; }
  const std::array<std::uint64_t, SHHIM_CTR_MAX>& moved_by_counter() const { return moved_by_counter_; }
  // Per counter: XDP and TC runs (not refused) whose frame the classifier put there.
  const std::array<std::uint64_t, SHHIM_CTR_MAX>& expected_runs_by_counter() const { return expected_runs_by_counter_; }

 private:
  void fail(const std::string& what, Program prog, const Bytes& frame, std::uint32_t expected) {
    if (++failures_ <= 10)
      std::fprintf(stderr, "fuzz mismatch (%s) on %s, classifier says %s, frame %zu bytes: %s\n", what.c_str(),
                   prog == Program::TcEgress ? "tc_egress" : prog == Program::XdpIngress ? "xdp_ingress" : "xdp_empty",
                   expected ? std::string(counter_name(expected)).c_str() : "parsed", frame.size(), hex(frame).c_str());
  }

  Datapath& dp_;
  Counters last_;
  std::uint64_t frames_ = 0, runs_ = 0, refused_ = 0, failures_ = 0, xdp_runs_ = 0, tc_runs_ = 0;
  std::array<std::uint64_t, SHHIM_CTR_MAX> expected_by_counter_{};
  std::array<std::uint64_t, SHHIM_CTR_MAX> moved_by_counter_{};
  std::array<std::uint64_t, SHHIM_CTR_MAX> expected_runs_by_counter_{};
};

}  // namespace

TEST_CASE("fuzz: random and mutated frames through every XDP and TC program") {
  const std::uint64_t seed = env_u64("SHHIM_FUZZ_SEED", std::random_device{}());
  const std::uint64_t target = env_u64("SHHIM_FUZZ_FRAMES", 100000);
  std::fprintf(stderr, "fuzz: seed %llu (repeat with SHHIM_FUZZ_SEED=%llu), %llu frames\n",
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
               static_cast<unsigned long long>(target));
  const auto started = std::chrono::steady_clock::now();

  ClassBed bed;
  Datapath& dp = bed.dp();
  {
    // Services and rules on the corpus's own servers, re-marking on the test-run device (lo).
    shhim::core::ClassTables t = spec_tables();
    t.services.push_back(service("fuzz-http4", server4(), 80, SHHIM_CLASS_CLINICAL));
    t.services.push_back(service("fuzz-http6", server6(), 80, SHHIM_CLASS_EMERGENCY));
    t.rules.push_back(rule("fuzz-v4", "198.18.0.0/15", 0, 65535, 0, SHHIM_CLASS_IMAGING));
    t.rules.push_back(rule("fuzz-v6", "2001:db8::/32", 1, 1024, 0, SHHIM_CLASS_BULK));
    t.interfaces.push_back(shhim::core::InterfaceConfig{"lo", true, 0});
    REQUIRE(bed.policy().apply(t) != 0);
  }
  FuzzRunner runner(dp);
  Mutator mutator(seed);
  const std::vector<Bytes> corpus = seed_corpus();

  // Every valid frame truncated at every length.
  for (const Bytes& f : corpus)
    for (std::size_t len = 0; len < f.size(); ++len) runner.run(Bytes(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(len)));
  // Random mutations until the target.
  while (runner.frames() < target) {
    runner.run(mutator.mutate(corpus[mutator.below(corpus.size())], corpus));
    if (runner.failures() > 100) break;
  }

  // Response payloads: a valid request, then a server packet with random
  // payload, so the HTTP/MLLP peek sees arbitrary bytes.
  std::uint64_t responses = 0;
  for (int i = 0; i < 5000; ++i) {
    const std::uint16_t port = static_cast<std::uint16_t>(30000 + i);
    const int family = i % 2 ? 6 : 4;
    const IpAddr c = family == 4 ? client4() : client6(), s = family == 4 ? server4() : server6();
    Bytes payload(1 + mutator.below(400));
    for (auto& b : payload) b = static_cast<std::uint8_t>(mutator.below(256));
    const std::string prefix = mutator.chance(50) ? "HTTP/1.1 5" : "\x0bMSH|^~\\&|X\rMSA|";
    if (mutator.chance(60)) std::copy(prefix.begin(), prefix.begin() + std::min(prefix.size(), payload.size()), payload.begin());
    runner.run(tcp_frame(c, port, s, 80, kTcpAck | kTcpPsh, to_bytes("GET / HTTP/1.1\r\n\r\n")));
    runner.run(tcp_frame(s, 80, c, port, kTcpAck | kTcpPsh, payload));
    ++responses;
  }
  const auto be4 = dp.backend(make_endpoint(server4(), 80, kProtoTcp));
  const auto be6 = dp.backend(make_endpoint(server6(), 80, kProtoTcp));
  REQUIRE(be4 != nullptr);
  REQUIRE(be6 != nullptr);
  CHECK(be4->responses + be6->responses == responses);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stderr, "fuzz: %llu frames, %llu test runs (%llu refused by the kernel harness) in %.1f s, %llu mismatches\n",
               static_cast<unsigned long long>(runner.frames()), static_cast<unsigned long long>(runner.runs()),
               static_cast<unsigned long long>(runner.refused()), seconds,
               static_cast<unsigned long long>(runner.failures()));
  for (std::uint32_t id = 0; id < SHHIM_CTR_MAX; ++id)
    if (is_verdict_counter(id) && runner.expected_by_counter()[id] != 0)
      std::fprintf(stderr, "fuzz:   %-28s %7llu frames, %7llu XDP+TC runs expected, counter moved %7llu\n",
                   std::string(counter_name(id)).c_str(),
                   static_cast<unsigned long long>(runner.expected_by_counter()[id]),
                   static_cast<unsigned long long>(runner.expected_runs_by_counter()[id]),
                   static_cast<unsigned long long>(runner.moved_by_counter()[id]));

  CHECK(runner.frames() >= target);
  CHECK(runner.failures() == 0);
  // Every XDP run counted in exactly one ingress class, every TC run in one egress class.
  std::uint64_t ingress = 0, egress = 0, drops = 0;
  for (std::uint8_t c = 0; c < 7; ++c) {
    ingress += bed.class_counter(SHHIM_CLASS_DIR_INGRESS, c).packets;
    egress += bed.class_counter(SHHIM_CLASS_DIR_EGRESS, c).packets;
    drops += bed.class_counter(SHHIM_CLASS_DIR_EGRESS, c).drops;
  }
  CHECK(ingress == runner.xdp_runs());
  CHECK(egress == runner.tc_runs());
  CHECK(drops == 0);
  // Sum check over the whole run: each counter moved exactly once per XDP or
  // TC run of a frame the classifier put there, and never otherwise.
  for (std::uint32_t id = 0; id < SHHIM_CTR_MAX; ++id) {
    if (!is_verdict_counter(id)) continue;
    INFO(counter_name(id));
    CHECK(runner.moved_by_counter()[id] == runner.expected_runs_by_counter()[id]);
  }
  CHECK(seconds < 60.0);
}
