// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Priority classes through the real programs (issue 3): marking per class
// (IPv4 with its header checksum verified from the output bytes, IPv6),
// classification by service, by rule and by default, ingress re-marking on
// and off, the generation flip, and stress-mode shedding.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "bpf_harness.hpp"
#include "class_policy.hpp"
#include "datapath/error.h"
#include "golden_frames.hpp"
#include "test_support.hpp"

using namespace shhim::bpftest;
namespace core = shhim::core;
namespace dp = shhim::datapath;

namespace {

constexpr std::uint32_t kIn = SHHIM_CLASS_DIR_INGRESS;
constexpr std::uint32_t kOut = SHHIM_CLASS_DIR_EGRESS;
constexpr std::uint8_t kEct1 = 0x01;  // ECN bits the rewrite must keep

std::uint8_t dscp_of(const Bytes& f) { return tos_of(f) >> 2; }

CanonicalKey key_of(const IpAddr& c, std::uint16_t cport, const IpAddr& s, std::uint16_t sport,
                    std::uint8_t proto = kProtoTcp) {
  return canonical_key(make_endpoint(c, cport, proto), make_endpoint(s, sport, proto));
}

// The class a flow was cached under, checking it was decided under `gen`.
std::uint32_t cached_class(const ClassBed& bed, const CanonicalKey& k, std::uint32_t gen) {
  const auto cg = bed.flow_class_gen(k.key);
  REQUIRE(cg.has_value());
  CHECK(SHHIM_CLASS_GEN_GEN(*cg) == gen);
  return SHHIM_CLASS_GEN_CLASS(*cg);
}

Bytes data_frame(const IpAddr& src, std::uint16_t sport, const IpAddr& dst, std::uint16_t dport, std::size_t n = 64) {
  return tcp_frame(src, sport, dst, dport, kTcpAck | kTcpPsh, Bytes(n, 'x'));
}

}  // namespace

TEST_CASE("no policy applied: everything is administrative, nothing is marked") {
  ClassBed bed;
  CHECK(bed.policy().generation() == 0);
  const Bytes in = with_tos(data_frame(client4(), 40000, server4(), 80), 0xb8);
  const PacketRun r = bed.tc(in);
  REQUIRE(r.err == 0);
  CHECK(r.retval == kTcActOk);
  CHECK(r.data == in);
  CHECK(r.priority == 0);
  CHECK(bed.class_counter(kOut, SHHIM_CLASS_ADMINISTRATIVE).packets == 1);
  CHECK(bed.class_counter(kOut, SHHIM_CLASS_ADMINISTRATIVE).bytes == in.size());
  REQUIRE(bed.xdp(in).err == 0);
  CHECK(bed.class_counter(kIn, SHHIM_CLASS_ADMINISTRATIVE).packets == 1);
  for (std::uint8_t c = 0; c < 7; ++c)
    if (c != SHHIM_CLASS_ADMINISTRATIVE) CHECK(bed.class_counter(kOut, c).packets == 0);
}

TEST_CASE("egress marking per class: IPv4 TOS with a valid header checksum, IPv6 traffic class") {
  ClassBed bed;
  core::ClassTables t = spec_tables();
  // A policy's own class too (id 7, CS1).
  core::ClassConfig research;
  research.name = "research";
  research.dscp = 8;
  research.skb_priority = 1;
  t.classes.push_back(research);
  const std::array<std::uint8_t, 8> dscp = {46, 40, 34, 18, 10, 0, 1, 8};
  const std::array<std::uint32_t, 8> band = {6, 5, 4, 3, 2, 0, 1, 1};
  for (std::uint8_t c = 0; c < 8; ++c) {
    t.services.push_back(service("v4-" + std::to_string(c), server4(), static_cast<std::uint16_t>(9000 + c), c));
    t.services.push_back(service("v6-" + std::to_string(c), server6(), static_cast<std::uint16_t>(9000 + c), c));
  }
  bool htb = false;
  SUBCASE("no HTB on the device: skb->priority is the class's band") {}
  SUBCASE("shhim's HTB on the device: skb->priority is the class's HTB id") {
    t.interfaces.push_back(core::InterfaceConfig{"lo", false, 1'000'000'000});
    htb = true;
  }
  const std::uint32_t gen = bed.policy().apply(t);
  CHECK(gen == 1);

  for (std::uint8_t c = 0; c < 8; ++c) {
    for (int family : {4, 6}) {
      INFO("class ", int(c), " IPv", family);
      const IpAddr client = family == 4 ? client4() : client6(), server = family == 4 ? server4() : server6();
      const std::uint16_t port = static_cast<std::uint16_t>(9000 + c);
      // Start from a DSCP no class uses (63), with ECN bits set.
      Bytes in = with_tos(data_frame(client, 41000, server, port), static_cast<std::uint8_t>(63 << 2 | kEct1));
      if (family == 6) in[15] = static_cast<std::uint8_t>((in[15] & 0xf0) | 0x0a);  // a flow label nibble to keep
      const auto before = bed.class_counter(kOut, c);
      const PacketRun r = bed.tc(in);
      REQUIRE(r.err == 0);
      CHECK(r.retval == kTcActOk);
      REQUIRE(r.data.size() == in.size());
      CHECK(dscp_of(r.data) == dscp[c]);
      CHECK((tos_of(r.data) & 0x03) == kEct1);
      CHECK(r.priority == (htb ? SHHIM_CLASS_SKB_PRIORITY(c) : band[c]));
      if (family == 4) {
        CHECK(ipv4_checksum_ok(r.data));
      } else {
        CHECK((r.data[15] & 0x0f) == 0x0a);
        CHECK((r.data[14] >> 4) == 6);
      }
      // Only the TOS / traffic class bits (and the IPv4 checksum) changed.
      for (std::size_t i = 0; i < in.size(); ++i) {
        const bool tos_byte = i == 14 || i == 15 || (family == 4 && (i == 24 || i == 25));
        if (!tos_byte && r.data[i] != in[i]) FAIL_CHECK("byte ", i, " changed");
      }
      const auto after = bed.class_counter(kOut, c);
      CHECK(after.packets == before.packets + 1);
      CHECK(after.dscp_rewrites == before.dscp_rewrites + 1);
      CHECK(cached_class(bed, key_of(client, 41000, server, port), gen) == c);

      // Already carrying the class DSCP: left alone, not counted as rewritten.
      const PacketRun again = bed.tc(r.data);
      REQUIRE(again.err == 0);
      CHECK(again.data == r.data);
      CHECK(again.priority == (htb ? SHHIM_CLASS_SKB_PRIORITY(c) : band[c]));
      CHECK(bed.class_counter(kOut, c).dscp_rewrites == after.dscp_rewrites);
    }
  }
}

TEST_CASE("classification by service, by rule (in policy order) and by default") {
  ClassBed bed;
  const IpAddr pacs = IpAddr::parse("198.18.5.7"), pacs_other = IpAddr::parse("198.18.5.8");
  const IpAddr backup = IpAddr::parse("198.18.9.1"), nowhere = IpAddr::parse("198.18.200.1");
  const IpAddr v6_tele = IpAddr::parse("2001:db8:7::5");
  core::ClassTables t = spec_tables();
  t.services.push_back(service("nurse-call", pacs, 5000, SHHIM_CLASS_LIFE_CRITICAL));             // beats every rule
  t.services.push_back(service("dns-like", pacs, 5000, SHHIM_CLASS_EMERGENCY, kProtoUdp));       // protocol is part of it
  t.rules.push_back(rule("dicom", "198.18.5.0/24", 104, 104, kProtoTcp, SHHIM_CLASS_IMAGING));
  t.rules.push_back(rule("lab-net", "198.18.0.0/16", 2575, 2575, 0, SHHIM_CLASS_CLINICAL));
  t.rules.push_back(rule("pacs-net", "198.18.5.0/25", 0, 65535, 0, SHHIM_CLASS_CLINICAL_REALTIME));
  t.rules.push_back(rule("backups", "198.18.9.0/24", 0, 65535, kProtoTcp, SHHIM_CLASS_BULK));
  t.rules.push_back(rule("tele-v6", "2001:db8:7::/48", 3478, 3481, kProtoUdp, SHHIM_CLASS_CLINICAL_REALTIME));
  t.default_class = SHHIM_CLASS_BULK;
  const std::uint32_t gen = bed.policy().apply(t);

  struct Case {
    const char* what;
    IpAddr server;
    std::uint16_t port;
    std::uint8_t proto;
    std::uint8_t want;
  };
  const Case cases[] = {
      {"service (TCP endpoint)", pacs, 5000, kProtoTcp, SHHIM_CLASS_LIFE_CRITICAL},
      {"service (UDP endpoint of the same address and port)", pacs, 5000, kProtoUdp, SHHIM_CLASS_EMERGENCY},
      {"rule dicom: /24, port 104, TCP", pacs, 104, kProtoTcp, SHHIM_CLASS_IMAGING},
      {"dicom is TCP only: UDP 104 falls to pacs-net", pacs, 104, kProtoUdp, SHHIM_CLASS_CLINICAL_REALTIME},
      {"lab-net (/16, listed before the longer pacs-net /25) wins on 2575", pacs, 2575, kProtoTcp,
       SHHIM_CLASS_CLINICAL},
      {"pacs-net for any other port under /25", pacs_other, 8080, kProtoTcp, SHHIM_CLASS_CLINICAL_REALTIME},
      {"backups: TCP under 198.18.9.0/24", backup, 873, kProtoTcp, SHHIM_CLASS_BULK},
      {"lab-net outside the /24 and /25", nowhere, 2575, kProtoUdp, SHHIM_CLASS_CLINICAL},
      {"nothing matches: the policy's default (bulk)", nowhere, 443, kProtoTcp, SHHIM_CLASS_BULK},
      {"IPv6 rule with a port range", v6_tele, 3479, kProtoUdp, SHHIM_CLASS_CLINICAL_REALTIME},
      {"IPv6 rule: port outside the range", v6_tele, 3482, kProtoUdp, SHHIM_CLASS_BULK},
  };
  std::uint16_t cport = 42000;
  for (const Case& c : cases) {
    INFO(c.what);
    const IpAddr client = c.server.family == 4 ? client4() : client6();
    const Bytes frame = c.proto == kProtoUdp ? udp_frame(client, cport, c.server, c.port, Bytes(32, 'u'))
                                             : data_frame(client, cport, c.server, c.port);
    const auto before = bed.class_counter(kOut, c.want);
    const PacketRun r = bed.tc(frame);
    REQUIRE(r.err == 0);
    CHECK(dscp_of(r.data) == kSpecDscp[c.want]);
    CHECK(r.priority == kSpecBand[c.want]);
    CHECK(bed.class_counter(kOut, c.want).packets == before.packets + 1);
    CHECK(cached_class(bed, key_of(client, cport, c.server, c.port, c.proto), gen) == c.want);
    // The server's answer, through XDP ingress, counts in the same class.
    const auto in_before = bed.class_counter(kIn, c.want);
    const Bytes answer = c.proto == kProtoUdp ? udp_frame(c.server, c.port, client, cport, Bytes(32, 'a'))
                                              : data_frame(c.server, c.port, client, cport);
    REQUIRE(bed.xdp(answer).err == 0);
    CHECK(bed.class_counter(kIn, c.want).packets == in_before.packets + 1);
    ++cport;
  }
}

TEST_CASE("default class without a policy default, non-flow packets and the per-interface rows") {
  ClassBed bed;
  core::ClassTables t = spec_tables();
  const std::uint32_t gen = bed.policy().apply(t);
  REQUIRE(gen == 1);
  // Unmatched flow: administrative.
  const PacketRun r = bed.tc(data_frame(client4(), 43000, server4(), 443));
  CHECK(dscp_of(r.data) == 0);
  CHECK(r.priority == kSpecBand[SHHIM_CLASS_ADMINISTRATIVE]);
  // ARP is not a flow: counted in the default class, never marked.
  const Bytes arp = build_ether(EthSpec{}, kEthArp, Bytes(28, 0));
  const PacketRun a = bed.tc(arp);
  REQUIRE(a.err == 0);
  CHECK(a.retval == kTcActOk);
  CHECK(a.data == arp);
  CHECK(a.priority == 0);
  CHECK(bed.class_counter(kOut, SHHIM_CLASS_ADMINISTRATIVE).packets == 2);

  // Test runs happen on the loopback device (ifindex 1). Without a slot it
  // counts in the shared row; with one, in its own row.
  auto rows = bed.policy().classCounters();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].ifindex == 0);
  CHECK(rows[0].counters[kOut][SHHIM_CLASS_ADMINISTRATIVE].packets == 2);
  const auto slots = bed.policy().ensureInterfaceSlots({1});
  REQUIRE(slots.size() == 1);
  CHECK(slots[0].slot == 1);
  REQUIRE(bed.tc(arp).err == 0);
  rows = bed.policy().classCounters();
  REQUIRE(rows.size() == 2);
  CHECK(rows[1].ifindex == 1);
  CHECK(rows[1].ifname == "lo");
  CHECK(rows[1].counters[kOut][SHHIM_CLASS_ADMINISTRATIVE].packets == 1);
  CHECK(rows[0].counters[kOut][SHHIM_CLASS_ADMINISTRATIVE].packets == 2);
  // A second call keeps the slot.
  CHECK(bed.policy().ensureInterfaceSlots({1})[0].slot == 1);
}

TEST_CASE("ingress re-marking of untrusted DSCP: on and off per interface") {
  ClassBed bed;
  const IpAddr ehr = IpAddr::parse("198.18.0.30");
  core::ClassTables t = spec_tables();
  t.services.push_back(service("ehr", ehr, 8443, SHHIM_CLASS_CLINICAL));
  t.services.push_back(service("ehr6", server6(), 8443, SHHIM_CLASS_CLINICAL));
  core::InterfaceConfig lo;
  lo.name = "lo";
  lo.remark_untrusted = false;
  t.interfaces.push_back(lo);
  bed.policy().apply(t);

  // The server answers claiming EF (46): untrusted.
  const Bytes in4 = with_tos(data_frame(ehr, 8443, client4(), 44000), static_cast<std::uint8_t>(46 << 2 | kEct1));
  const Bytes in6 = with_tos(data_frame(server6(), 8443, client6(), 44000), static_cast<std::uint8_t>(46 << 2));
  SUBCASE("off: ingress leaves the DSCP alone") {
    for (const Bytes* in : {&in4, &in6}) {
      const PacketRun r = bed.xdp(*in);
      REQUIRE(r.err == 0);
      CHECK(r.retval == kXdpPass);
      CHECK(r.data == *in);
    }
    CHECK(bed.class_counter(kIn, SHHIM_CLASS_CLINICAL).packets == 2);
    CHECK(bed.class_counter(kIn, SHHIM_CLASS_CLINICAL).dscp_rewrites == 0);
  }
  SUBCASE("on: ingress rewrites it to the class's (checksum and ECN kept right)") {
    t.interfaces[0].remark_untrusted = true;
    bed.policy().apply(t);
    const PacketRun r4 = bed.xdp(in4);
    REQUIRE(r4.err == 0);
    CHECK(r4.retval == kXdpPass);
    CHECK(dscp_of(r4.data) == kSpecDscp[SHHIM_CLASS_CLINICAL]);
    CHECK((tos_of(r4.data) & 3) == kEct1);
    CHECK(ipv4_checksum_ok(r4.data));
    const PacketRun r6 = bed.xdp(in6);
    REQUIRE(r6.err == 0);
    CHECK(dscp_of(r6.data) == kSpecDscp[SHHIM_CLASS_CLINICAL]);
    CHECK(bed.class_counter(kIn, SHHIM_CLASS_CLINICAL).dscp_rewrites == 2);
    // Not a flow (ARP) and malformed frames are never touched.
    const Bytes arp = build_ether(EthSpec{}, kEthArp, Bytes(28, 0));
    CHECK(bed.xdp(arp).data == arp);
    Bytes bad = in4;
    bad[14] = 0x44;  // IHL 4: refused by the parser
    CHECK(bed.xdp(bad).data == bad);
    // And off again.
    t.interfaces[0].remark_untrusted = false;
    bed.policy().apply(t);
    CHECK(bed.xdp(in4).data == in4);
  }
}

TEST_CASE("generation flip: both generations' entries coexist; each packet sees exactly one") {
  ClassBed bed;
  const IpAddr svc = IpAddr::parse("198.18.0.40"), other = IpAddr::parse("198.18.0.41");
  core::ClassTables a = spec_tables();
  a.services.push_back(service("orders", svc, 9100, SHHIM_CLASS_EMERGENCY));
  core::ClassTables b = spec_tables();
  b.services.push_back(service("orders", svc, 9100, SHHIM_CLASS_BULK));
  b.rules.push_back(rule("net", "198.18.0.0/24", 0, 65535, 0, SHHIM_CLASS_CLINICAL));
  b.classes[SHHIM_CLASS_CLINICAL].dscp = 20;  // an override only B has

  const std::uint32_t gen_a = bed.policy().apply(a);
  const Bytes to_svc = data_frame(client4(), 45000, svc, 9100);
  const Bytes to_other = data_frame(client4(), 45001, other, 7000);
  CHECK(dscp_of(bed.tc(to_svc).data) == 40);
  CHECK(dscp_of(bed.tc(to_other).data) == 0);  // A: default, administrative

  // B staged, not published: the kernel holds both policies, packets still see A.
  const std::uint32_t gen_b = bed.policy().stage(b);
  CHECK(gen_b == gen_a + 1);
  CHECK(SHHIM_GEN_SLOT(gen_b) != SHHIM_GEN_SLOT(gen_a));
  CHECK(bed.policy().generation() == gen_a);
  const auto per_slot = bed.service_entries_per_slot();
  CHECK(per_slot[SHHIM_GEN_SLOT(gen_a)] == 1);
  CHECK(per_slot[SHHIM_GEN_SLOT(gen_b)] == 1);
  CHECK(bed.read_slot(SHHIM_GEN_SLOT(gen_b)).generation == gen_b);
  CHECK(dscp_of(bed.tc(to_svc).data) == 40);
  CHECK(dscp_of(bed.tc(to_other).data) == 0);
  const auto svc_key = key_of(client4(), 45000, svc, 9100);
  CHECK(cached_class(bed, svc_key, gen_a) == SHHIM_CLASS_EMERGENCY);

  // Published: B's service class, B's rule, B's DSCP override; the cached flow is classified again.
  bed.policy().publish(gen_b);
  CHECK(bed.policy().generation() == gen_b);
  CHECK(dscp_of(bed.tc(to_svc).data) == 1);
  CHECK(cached_class(bed, svc_key, gen_b) == SHHIM_CLASS_BULK);
  CHECK(dscp_of(bed.tc(to_other).data) == 20);

  // A packet that read generation A (just before the flip) sees A's slot, all of it:
  // A's class for the service, A's default for the other flow, never B's rule or DSCP.
  shhim_policy_state state = bed.read_state();
  state.generation = gen_a;
  bed.write_state(state);
  CHECK(dscp_of(bed.tc(to_svc).data) == 40);
  CHECK(dscp_of(bed.tc(to_other).data) == 0);
  CHECK(cached_class(bed, svc_key, gen_a) == SHHIM_CLASS_EMERGENCY);
  state.generation = gen_b;
  bed.write_state(state);
  CHECK(dscp_of(bed.tc(to_svc).data) == 1);

  // Publishing a generation that is not the staged next one is refused.
  CHECK_THROWS_AS(bed.policy().publish(gen_b), dp::Error);

  // The next apply reuses A's slot: A's entries are replaced, not merged.
  core::ClassTables c = spec_tables();
  c.services.push_back(service("orders-2", svc, 9200, SHHIM_CLASS_IMAGING));
  const std::uint32_t gen_c = bed.policy().apply(c);
  CHECK(SHHIM_GEN_SLOT(gen_c) == SHHIM_GEN_SLOT(gen_a));
  CHECK(dscp_of(bed.tc(to_svc).data) == 0);  // C: no orders service on 9100, default
  CHECK(dscp_of(bed.tc(data_frame(client4(), 45002, svc, 9200)).data) == 10);
  CHECK(bed.service_entries_per_slot()[SHHIM_GEN_SLOT(gen_c)] == 1);
}

TEST_CASE("an invalid policy changes nothing; the running one keeps working") {
  ClassBed bed;
  const IpAddr svc = IpAddr::parse("198.18.0.50");
  core::ClassTables good = spec_tables();
  good.services.push_back(service("alarms", svc, 7000, SHHIM_CLASS_LIFE_CRITICAL));
  const std::uint32_t gen = bed.policy().apply(good);
  const Bytes frame = data_frame(client4(), 46000, svc, 7000);
  CHECK(dscp_of(bed.tc(frame).data) == 46);

  SUBCASE("a class id out of range") {
    core::ClassTables bad = good;
    bad.services[0].class_id = 9;
    CHECK_THROWS_AS(bed.policy().apply(bad), dp::Error);
  }
  SUBCASE("an interface that does not exist") {
    core::ClassTables bad = good;
    bad.interfaces.push_back(core::InterfaceConfig{"shhim-nope0", true, 0});
    CHECK_THROWS_AS(bed.policy().apply(bad), dp::Error);
  }
  SUBCASE("too many rules over one address") {
    core::ClassTables bad = good;
    for (int i = 0; i < 17; ++i)
      bad.rules.push_back(rule("r" + std::to_string(i), "198.18.0.0/" + std::to_string(8 + i), 1, 1, 0, 3));
    CHECK_THROWS_AS(bed.policy().apply(bad), dp::Error);
  }
  SUBCASE("a DSCP beyond 63") {
    core::ClassTables bad = good;
    bad.classes[2].dscp = 64;
    CHECK_THROWS_AS(bed.policy().apply(bad), dp::Error);
  }
  CHECK(bed.policy().generation() == gen);
  CHECK(dscp_of(bed.tc(frame).data) == 46);
  CHECK(dscp_of(bed.tc(data_frame(client4(), 46001, svc, 7000)).data) == 46);
}

TEST_CASE("stress mode sheds the shed classes by their token buckets, never life-critical or emergency") {
  ClassBed bed;
  const IpAddr bulk = IpAddr::parse("198.18.0.60"), admin = IpAddr::parse("198.18.0.61");
  const IpAddr alarm = IpAddr::parse("198.18.0.62"), ed = IpAddr::parse("198.18.0.63");
  core::ClassTables t = spec_tables();
  t.services.push_back(service("backup", bulk, 873, SHHIM_CLASS_BULK));
  t.services.push_back(service("billing", admin, 443, SHHIM_CLASS_ADMINISTRATIVE));
  t.services.push_back(service("alarms", alarm, 7000, SHHIM_CLASS_LIFE_CRITICAL));
  t.services.push_back(service("ed-orders", ed, 7001, SHHIM_CLASS_EMERGENCY));
  // Bulk: 10 kB/s with a 3000-byte bucket. Administrative: no rate and no link
  // capacity, so it has no share at all in stress.
  t.classes[SHHIM_CLASS_BULK].rate_bps = 80000;
  t.classes[SHHIM_CLASS_BULK].burst_bytes = 3000;
  t.classes[SHHIM_CLASS_ADMINISTRATIVE].rate_permille = 100;
  const std::uint32_t gen = bed.policy().apply(t);
  // Even a policy slot that asks for it cannot shed classes 0 and 1: the kernel refuses on its own.
  shhim_policy slot = bed.read_slot(SHHIM_GEN_SLOT(gen));
  for (int c : {SHHIM_CLASS_LIFE_CRITICAL, SHHIM_CLASS_EMERGENCY}) {
    slot.classes[c].shed_rank = 1;
    slot.classes[c].rate_bps = 1;
    slot.classes[c].burst_bytes = 0;
  }
  bed.write_slot(SHHIM_GEN_SLOT(gen), slot);

  const Bytes bulk_frame = data_frame(client4(), 47000, bulk, 873, 1000);
  const Bytes admin_frame = data_frame(client4(), 47001, admin, 443, 1000);
  auto send = [&](const Bytes& f, int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      const PacketRun r = bed.tc(f);
      REQUIRE(r.err == 0);
      REQUIRE((r.retval == kTcActOk || r.retval == kTcActShot));
      ok += r.retval == kTcActOk;
    }
    return ok;
  };

  // Off: nothing is shed.
  CHECK(send(bulk_frame, 10) == 10);
  CHECK_FALSE(bed.policy().stress().active);

  bed.policy().writeStress(SHHIM_STRESS_ON, SHHIM_STRESS_LEVEL_ALL);
  const auto st = bed.policy().stress();
  CHECK(st.active);
  CHECK(st.mode == SHHIM_STRESS_ON);
  const auto bulk_before = bed.class_counter(kOut, SHHIM_CLASS_BULK);
  // 3000 bytes of burst at 10 kB/s: three 1054-byte frames conform, then the bucket is ahead by more than the burst.
  const int sent = send(bulk_frame, 10);
  CHECK(sent >= 3);
  CHECK(sent <= 4);
  const auto bulk_after = bed.class_counter(kOut, SHHIM_CLASS_BULK);
  CHECK(bulk_after.packets - bulk_before.packets == 10);
  CHECK(bulk_after.drops - bulk_before.drops == static_cast<std::uint64_t>(10 - sent));
  CHECK(bulk_after.drop_bytes - bulk_before.drop_bytes == (10 - sent) * bulk_frame.size());
  // Administrative has no share: shed whole.
  CHECK(send(admin_frame, 5) == 0);
  CHECK(bed.class_counter(kOut, SHHIM_CLASS_ADMINISTRATIVE).drops == 5);
  // Life-critical and emergency: never.
  CHECK(send(data_frame(client4(), 47002, alarm, 7000, 1000), 200) == 200);
  CHECK(send(data_frame(client4(), 47003, ed, 7001, 1000), 200) == 200);
  CHECK(bed.class_counter(kOut, SHHIM_CLASS_LIFE_CRITICAL).drops == 0);
  CHECK(bed.class_counter(kOut, SHHIM_CLASS_EMERGENCY).drops == 0);
  // Non-flow packets are never shed.
  const Bytes arp = build_ether(EthSpec{}, kEthArp, Bytes(28, 0));
  CHECK(send(arp, 5) == 5);

  SUBCASE("level 1 sheds only shed rank 1 (bulk)") {
    bed.policy().writeStress(SHHIM_STRESS_ON, 1);
    CHECK(send(admin_frame, 5) == 5);
    CHECK(send(bulk_frame, 5) < 5);
  }
  SUBCASE("off again: nothing is shed") {
    bed.policy().writeStress(SHHIM_STRESS_OFF, 0);
    CHECK_FALSE(bed.policy().stress().active);
    CHECK(send(admin_frame, 5) == 5);
    CHECK(send(bulk_frame, 5) == 5);
  }
  SUBCASE("an expired lease fails open") {
    bed.policy().writeStress(SHHIM_STRESS_ON, SHHIM_STRESS_LEVEL_ALL, 1000 * 1000);  // 1 ms
    sleep_at_least_ns(2 * 1000 * 1000);
    CHECK_FALSE(bed.policy().stress().active);
    CHECK(send(admin_frame, 5) == 5);
  }
}

TEST_CASE("the grace-period wait and a full apply are quick enough for live reloads") {
  ClassBed bed;
  core::ClassTables t = spec_tables();
  for (int i = 0; i < 200; ++i)
    t.services.push_back(service("s" + std::to_string(i), IpAddr::parse("198.18.3." + std::to_string(i)), 8000,
                                 static_cast<std::uint8_t>(i % 7)));
  for (int i = 0; i < 50; ++i)
    t.rules.push_back(rule("r" + std::to_string(i), "198.19." + std::to_string(i) + ".0/24", 0, 65535, 0,
                           static_cast<std::uint8_t>(i % 7)));
  const std::uint64_t start = monotonic_ns();
  for (int i = 0; i < 10; ++i) bed.policy().apply(t);
  const double ms_per_apply = static_cast<double>(monotonic_ns() - start) / 10 / 1e6;
  MESSAGE("apply of 200 services and 50 rules: ", ms_per_apply, " ms");
  CHECK(ms_per_apply < 500);
  CHECK(bed.service_entries_per_slot()[0] == 200);
  CHECK(bed.service_entries_per_slot()[1] == 200);
}
