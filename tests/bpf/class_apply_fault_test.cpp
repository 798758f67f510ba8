// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// A policy is applied whole or not at all (issue 3): whichever class-map
// write of an apply fails, the previous policy stays in force. A MapWriter
// in front of the kernel's (datapath::PolicyMaps::setMapWriter, the seam)
// fails the Nth write, for every N an apply makes; after each failure the
// generation has not moved, the applied slot reads back as before, new flows
// are still classified and marked by the previous policy, and the error
// names the map whose write failed. Once N is past the last write, the new
// policy applies and is in force.
#include <doctest/doctest.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>

#include "class_policy.hpp"
#include "datapath/error.h"
#include "golden_frames.hpp"
#include "test_support.hpp"

using namespace shhim::bpftest;
namespace core = shhim::core;
namespace dp = shhim::datapath;

namespace {

// Fails the nth write (counted from 1) with `error`; every other write goes to the kernel.
class FailNthWrite final : public dp::MapWriter {
 public:
  explicit FailNthWrite(int nth, int error = ENOSPC) : nth_(nth), error_(error) {}

  int update(int fd, std::string_view map, const void* key, const void* value) override {
    if (fail_now(map)) return error_;
    return kernel_->update(fd, map, key, value);
  }
  int remove(int fd, std::string_view map, const void* key) override {
    if (fail_now(map)) return error_;
    return kernel_->remove(fd, map, key);
  }

  bool failed() const { return !failed_map_.empty(); }
  const std::string& failed_map() const { return failed_map_; }

 private:
  bool fail_now(std::string_view map) {
    if (++writes_ != nth_) return false;
    failed_map_ = std::string(map);
    return true;
  }

  int nth_;
  int error_;
  int writes_ = 0;
  std::string failed_map_;
  std::shared_ptr<dp::MapWriter> kernel_ = dp::kernelMapWriter();
};

std::uint8_t dscp_of(const Bytes& f) { return tos_of(f) >> 2; }

Bytes data_frame(const IpAddr& dst, std::uint16_t sport, std::uint16_t dport) {
  return tcp_frame(client4(), sport, dst, dport, kTcpAck | kTcpPsh, Bytes(64, 'x'));
}

bool same_classes(const dp::AppliedPolicy& a, const dp::AppliedPolicy& b) {
  return a.generation == b.generation && a.default_class == b.default_class &&
         std::memcmp(a.classes.data(), b.classes.data(), sizeof(a.classes)) == 0;
}

}  // namespace

TEST_CASE("apply is all-or-nothing: a failure at any class-map write leaves the previous policy in force") {
  ClassBed bed;
  const IpAddr alarms = IpAddr::parse("198.18.0.50");
  const IpAddr pacs = IpAddr::parse("198.18.6.7");
  const IpAddr elsewhere = IpAddr::parse("198.18.200.1");

  // A: alarms life-critical (EF 46), PACS by rule imaging (AF11 10), default administrative (0).
  core::ClassTables a = spec_tables();
  a.services.push_back(service("alarms", alarms, 7000, SHHIM_CLASS_LIFE_CRITICAL));
  a.rules.push_back(rule("pacs", "198.18.6.0/24", 104, 104, kProtoTcp, SHHIM_CLASS_IMAGING));
  a.interfaces.push_back(core::InterfaceConfig{"lo", true, 0});
  // B changes every one of them: alarms moved to bulk (LE 1), the PACS rule gone,
  // another rule, default clinical (AF21 18), imaging marked AF12 (its slot's lo options are written too).
  core::ClassTables b = spec_tables();
  b.services.push_back(service("alarms", alarms, 7000, SHHIM_CLASS_BULK));
  b.services.push_back(service("other", elsewhere, 7001, SHHIM_CLASS_EMERGENCY));
  b.rules.push_back(rule("backups", "198.18.9.0/24", 0, 65535, kProtoTcp, SHHIM_CLASS_BULK));
  b.default_class = SHHIM_CLASS_CLINICAL;
  b.classes[SHHIM_CLASS_IMAGING].dscp = 12;
  b.interfaces.push_back(core::InterfaceConfig{"lo", true, 0});

  const std::uint32_t gen_a = bed.policy().apply(a);
  const dp::AppliedPolicy before = bed.policy().current();
  std::uint16_t sport = 30000;
  auto marks = [&] {  // DSCP of a new flow to each server, so each is classified afresh
    sport = static_cast<std::uint16_t>(sport + 3);
    return std::array<std::uint8_t, 3>{dscp_of(bed.tc(data_frame(alarms, sport, 7000)).data),
                                       dscp_of(bed.tc(data_frame(pacs, sport + 1, 104)).data),
                                       dscp_of(bed.tc(data_frame(elsewhere, sport + 2, 443)).data)};
  };
  const std::array<std::uint8_t, 3> marks_a = {46, 10, 0};
  const std::array<std::uint8_t, 3> marks_b = {1, 18, 18};
  REQUIRE(marks() == marks_a);

  int failures = 0;
  bool applied = false;
  for (int nth = 1; nth < 200 && !applied; ++nth) {
    CAPTURE(nth);
    auto writer = std::make_shared<FailNthWrite>(nth);
    bed.policy().setMapWriter(writer);
    try {
      bed.policy().apply(b);
      applied = true;
      CHECK_FALSE(writer->failed());
    } catch (const dp::Error& e) {
      ++failures;
      REQUIRE(writer->failed());
      const std::string what = e.what();
      CAPTURE(what);
      CHECK(what.find(writer->failed_map()) != std::string::npos);        // names the map
      CHECK(what.find(std::strerror(ENOSPC)) != std::string::npos);       // and the kernel's reason
      bed.policy().setMapWriter(nullptr);
      CHECK(bed.policy().generation() == gen_a);                           // not flipped
      CHECK(same_classes(bed.policy().current(), before));                // the applied slot as before
      CHECK(marks() == marks_a);                                           // and A still classifies
    }
  }
  bed.policy().setMapWriter(nullptr);
  // Every write of an apply was made to fail once: the slot's class configs,
  // two services, one rule prefix, lo's options and the flip itself.
  CHECK(failures >= 6);
  REQUIRE(applied);
  CHECK(bed.policy().generation() == dp::nextGeneration(gen_a));
  CHECK(marks() == marks_b);
}
