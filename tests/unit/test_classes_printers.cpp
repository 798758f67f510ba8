// `shhimctl classes` and `shhimctl stress` printers on synthetic reports.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "cli/printers.h"

using namespace shhim;

namespace {

v1::ClassReport sample_report()
{
    v1::ClassReport r;
    r.set_policy_generation(4);
    r.set_default_class("administrative");
    auto* s = r.mutable_stress();
    s->set_mode("auto");
    s->set_active(true);
    s->set_level(2);
    s->set_lease_remaining_seconds(2.9);
    s->set_threshold(0.9);
    s->set_utilisation(0.97);
    auto* shared = r.add_interfaces();  // nothing counted: not shown
    shared->add_classes()->set_priority_class("life-critical");
    auto* eth = r.add_interfaces();
    eth->set_interface("eth1");
    eth->set_ifindex(3);
    eth->set_capacity_bps(100'000'000);
    eth->set_egress_utilisation(0.97);
    eth->set_qdisc("htb");
    const char* names[] = {"life-critical", "emergency", "clinical-realtime", "clinical", "imaging",
                           "administrative", "bulk"};
    const unsigned dscp[] = {46, 40, 34, 18, 10, 0, 1};
    const unsigned rank[] = {0, 0, 5, 4, 3, 2, 1};
    for (int i = 0; i < 7; ++i) {
        auto* c = eth->add_classes();
        c->set_priority_class(names[i]);
        c->set_dscp(dscp[i]);
        c->set_shed_rank(rank[i]);
        c->set_shed(rank[i] != 0 && rank[i] <= 2);
        c->set_egress_packets(1000u * (i + 1));
        c->set_egress_bytes(1'500'000u * (i + 1));
        c->set_egress_bits_per_second(12'500'000.0);
        c->set_egress_drops(i == 6 ? 420 : 0);
        c->set_ingress_dscp_rewrites(i == 3 ? 7 : 0);
    }
    return r;
}

}  // namespace

TEST_CASE("classes table: header lines, one row per class, shed marks, units")
{
    const std::string out = cli::formatClasses(sample_report());
    CHECK(out.find("policy generation 4, default class administrative\n") == 0);
    CHECK(out.find("stress auto: shedding shed ranks 1-2 (lease 2.9 s); link utilisation 97.0%, threshold 90.0%") !=
          std::string::npos);
    CHECK(out.find("interfaces without a row of their own") == std::string::npos);
    CHECK(out.find("interface eth1 (ifindex 3), capacity 100.0 Mbit/s, egress 97.0%, htb\n") != std::string::npos);
    CHECK(out.find("CLASS") != std::string::npos);
    CHECK(out.find("bulk") != std::string::npos);
    CHECK(out.find("1*") != std::string::npos);   // bulk: rank 1, shed now
    CHECK(out.find("12.5 Mbit/s") != std::string::npos);
    CHECK(out.find("420") != std::string::npos);
    // Header, then seven rows.
    const auto table = out.substr(out.find("CLASS"));
    CHECK(std::count(table.begin(), table.end(), '\n') == 8);
}

TEST_CASE("classes table without a policy, and the stress line")
{
    v1::ClassReport r;
    r.set_default_class("administrative");
    r.mutable_stress()->set_mode("off");
    const std::string out = cli::formatClasses(r);
    CHECK(out.find("no policy applied: every packet is administrative, nothing is marked") == 0);
    CHECK(out.find("stress off: not shedding\n") != std::string::npos);

    v1::StressStatus on;
    on.set_mode("on");
    on.set_active(true);
    on.set_level(255);
    on.set_lease_remaining_seconds(3);
    CHECK(cli::formatStressStatus(on) == "stress on: shedding every shed class (lease 3.0 s)\n");
    CHECK(cli::formatBitRate(950) == "950 bit/s");
    CHECK(cli::formatBitRate(1.5e9) == "1.5 Gbit/s");
}
