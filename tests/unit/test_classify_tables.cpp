// Class tables (core/classify_tables.h): names and defaults of the seven
// classes, rule prefix expansion (the kernel's LPM content), the checks
// against the kernel's limits, and compileClassTables on policies.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/classify_tables.h"
#include "core/policy.h"
#include "policy.pb.h"
#include "shhim_abi.h"

using namespace shhim::core;

namespace {

Address16 v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d)
{
    Address16 out{};
    out[10] = out[11] = 0xff;
    out[12] = a;
    out[13] = b;
    out[14] = c;
    out[15] = d;
    return out;
}

ClassRule v4rule(std::string name, Address16 prefix, int len, std::uint8_t cls)
{
    ClassRule r;
    r.name = std::move(name);
    r.prefix_length = static_cast<std::uint8_t>(96 + len);
    r.prefix = maskAddress(prefix, r.prefix_length);
    r.class_id = cls;
    return r;
}

bool mentions(const std::vector<std::string>& problems, const std::string& text)
{
    return std::any_of(problems.begin(), problems.end(),
                       [&](const std::string& p) { return p.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("class names: ids in priority order, both ways")
{
    const char* names[] = {"life-critical", "emergency", "clinical-realtime", "clinical",
                           "imaging",       "administrative", "bulk"};
    for (std::uint8_t id = 0; id < kClassCount; ++id) {
        CHECK(className(id) == names[id]);
        CHECK(classFromName(names[id]) == id);
    }
    CHECK(classFromName("Life_Critical") == kClassLifeCritical);
    CHECK(classFromName("CLINICAL-REALTIME") == kClassClinicalRealtime);
    CHECK_FALSE(classFromName("urgent").has_value());
    CHECK_FALSE(classFromName("").has_value());
    CHECK(className(7).empty());
    CHECK(kDefaultClass == kClassAdministrative);
}

TEST_CASE("default tables: the issue's DSCPs, TC_PRIO bands, shed order, nothing wrong")
{
    const ClassTables t = defaultClassTables();
    REQUIRE(t.classes.size() == kClassCount);
    const std::uint8_t dscp[] = {46, 40, 34, 18, 10, 0, 1};
    const std::uint32_t band[] = {6, 5, 4, 3, 2, 0, 1};
    for (std::uint8_t c = 0; c < kClassCount; ++c) {
        INFO(className(c));
        CHECK(t.classes[c].name == className(c));
        CHECK(t.classes[c].dscp == dscp[c]);
        CHECK(defaultDscp(c) == dscp[c]);
        CHECK(t.classes[c].skb_priority == band[c]);
        CHECK(t.classes[c].burst_bytes > 0);
        CHECK(t.nameOf(c) == className(c));
        CHECK(t.idOf(className(c)) == c);
    }
    // Shed first: bulk, then administrative, then imaging; the clinical classes never.
    const std::uint8_t rank[] = {0, 0, 0, 0, 3, 2, 1};
    for (std::uint8_t c = 0; c < kClassCount; ++c)
        CHECK(t.classes[c].shed_rank == rank[c]);
    // In stress, lower classes keep less of the link.
    for (std::size_t c = kClassClinicalRealtime; c + 1 < kClassCount; ++c)
        CHECK(t.classes[c].rate_permille >= t.classes[c + 1].rate_permille);
    CHECK(t.default_class == kClassAdministrative);
    CHECK(t.services.empty());
    CHECK(t.rules.empty());
    CHECK_FALSE(t.stress_enabled);
    CHECK(classTablesProblems(t).empty());
    CHECK(t.nameOf(12) == "class 12");
}

TEST_CASE("masking and containment of prefixes in the 16-byte form")
{
    CHECK(maskAddress(v4(198, 18, 5, 77), 96 + 24) == v4(198, 18, 5, 0));
    CHECK(maskAddress(v4(198, 18, 5, 77), 96 + 15) == v4(198, 18, 0, 0));
    CHECK(maskAddress(v4(198, 19, 255, 255), 96 + 15) == v4(198, 18, 0, 0));
    CHECK(maskAddress(v4(1, 2, 3, 4), 0) == Address16{});
    CHECK(maskAddress(v4(1, 2, 3, 4), 128) == v4(1, 2, 3, 4));
    CHECK(prefixContains(v4(198, 18, 0, 0), 96 + 15, v4(198, 19, 1, 2)));
    CHECK_FALSE(prefixContains(v4(198, 18, 0, 0), 96 + 16, v4(198, 19, 1, 2)));
    CHECK(prefixContains(Address16{}, 0, v4(10, 0, 0, 1)));  // ::/0 holds IPv4-mapped addresses too
}

TEST_CASE("rule prefixes: each distinct prefix lists every rule holding it, in policy order")
{
    // 0: /16, 1: /24 inside it, 2: /25 inside both, 3: a disjoint /24, 4: the /16 again.
    std::vector<ClassRule> rules = {
        v4rule("wide", v4(198, 18, 0, 0), 16, 3),     v4rule("pacs", v4(198, 18, 5, 0), 24, 4),
        v4rule("half", v4(198, 18, 5, 0), 25, 2),     v4rule("backup", v4(198, 18, 9, 0), 24, 6),
        v4rule("wide-udp", v4(198, 18, 7, 7), 16, 1),
    };
    const auto prefixes = rulePrefixes(rules);
    REQUIRE(prefixes.size() == 4);
    CHECK(prefixes[0].prefix == v4(198, 18, 0, 0));
    CHECK(prefixes[0].rules == std::vector<std::size_t>{0, 4});
    CHECK(prefixes[1].prefix_length == 96 + 24);
    CHECK(prefixes[1].rules == std::vector<std::size_t>{0, 1, 4});
    CHECK(prefixes[2].rules == std::vector<std::size_t>{0, 1, 2, 4});
    CHECK(prefixes[3].rules == std::vector<std::size_t>{0, 3, 4});
    // The guarantee the kernel relies on: for any address, the rules holding it
    // are exactly the candidates of its longest matching prefix.
    for (const Address16& a : {v4(198, 18, 5, 1), v4(198, 18, 5, 200), v4(198, 18, 9, 9), v4(198, 18, 100, 1)}) {
        const RulePrefix* best = nullptr;
        for (const auto& p : prefixes)
            if (prefixContains(p.prefix, p.prefix_length, a) && (!best || p.prefix_length > best->prefix_length))
                best = &p;
        REQUIRE(best != nullptr);
        std::vector<std::size_t> holding;
        for (std::size_t i = 0; i < rules.size(); ++i)
            if (prefixContains(rules[i].prefix, rules[i].prefix_length, a))
                holding.push_back(i);
        CHECK(best->rules == holding);
    }
}

TEST_CASE("problems: every limit and inconsistency is reported with where it is")
{
    ClassTables t = defaultClassTables();
    t.classes[kClassEmergency].shed_rank = 3;
    t.classes[kClassBulk].dscp = 64;
    t.classes[kClassImaging].rate_permille = 1200;
    t.default_class = 9;
    ServiceClass a;
    a.service = "lab";
    a.endpoint.address = v4(198, 18, 0, 12);
    a.endpoint.port = 2575;
    a.class_id = kClassClinical;
    ServiceClass b = a;
    b.service = "lab-copy";
    b.class_id = kClassBulk;
    t.services = {a, b};
    ClassRule empty = v4rule("empty-range", v4(198, 18, 0, 0), 16, 3);
    empty.port_lo = 100;
    empty.port_hi = 99;
    t.rules.push_back(empty);
    for (int i = 0; i < 17; ++i)
        t.rules.push_back(v4rule("nest" + std::to_string(i), v4(10, 0, 0, 0), 8 + i, 3));
    t.interfaces = {{"eth0", true, 0}, {"eth0", false, 0}, {"a-name-far-too-long", false, 0}};
    t.stress_exit = 0.95;

    const auto problems = classTablesProblems(t);
    CHECK(mentions(problems, "default class 9"));
    CHECK(mentions(problems, "classes.emergency: emergency is never shed"));
    CHECK(mentions(problems, "classes.bulk.dscp: 64"));
    CHECK(mentions(problems, "classes.imaging: a stress share of 1200"));
    CHECK(mentions(problems, "198.18.0.12:2575/tcp is also in service lab"));
    CHECK(mentions(problems, "rule empty-range: port range 100-99"));
    CHECK(mentions(problems, "rule nest16: 17 rules hold the same addresses"));
    CHECK(mentions(problems, "interface eth0 is named twice"));
    CHECK(mentions(problems, "a-name-far-too-long"));
    CHECK(mentions(problems, "stress thresholds: enter 0.9"));
    CHECK(problems.size() == 10);

    ClassTables shuffled = defaultClassTables();
    std::swap(shuffled.classes[0], shuffled.classes[1]);
    CHECK(mentions(classTablesProblems(shuffled), "class id 0 is \"emergency\""));
    ClassTables crowded = defaultClassTables();
    crowded.classes.resize(17, crowded.classes[6]);
    CHECK(mentions(classTablesProblems(crowded), "17 classes"));
}

// ---- compileClassTables on validated policies ----

namespace {

Address16 v6(std::initializer_list<std::uint16_t> groups)
{
    Address16 out{};
    std::size_t i = 0;
    for (const std::uint16_t g : groups) {
        out[i++] = static_cast<std::uint8_t>(g >> 8);
        out[i++] = static_cast<std::uint8_t>(g);
    }
    return out;
}

shhim::v1::Policy validated(const std::string& yaml)
{
    const PolicyCheck check = checkPolicyText(yaml);
    std::string issues;
    for (const auto& issue : check.issues)
        issues += issue.path + ": " + issue.message + "\n";
    INFO(issues);
    REQUIRE(check.policy.has_value());
    return check.policy->policy;
}

shhim::v1::Policy policyFile(const char* name)
{
    std::ifstream in(std::filesystem::path(SHHIM_SOURCE_DIR) / "policy" / name);
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    return validated(text.str());
}

const ServiceClass* endpointOf(const ClassTables& t, const Address16& address, std::uint16_t port)
{
    for (const auto& s : t.services)
        if (s.endpoint.address == address && s.endpoint.port == port)
            return &s;
    return nullptr;
}

}  // namespace

TEST_CASE("compile hospital-gateway.yaml: classes, service endpoints, rules, interfaces, stress")
{
    const ClassTables t = compileClassTables(policyFile("hospital-gateway.yaml"));
    CHECK(classTablesProblems(t).empty());

    // The built-ins keep their ids; bulk's DSCP is overridden; research is added as id 7.
    REQUIRE(t.classes.size() == 8);
    CHECK(t.classes[kClassBulk].dscp == 8);
    CHECK(t.classes[kClassLifeCritical].dscp == 46);
    CHECK(t.classes[7].name == "research");
    CHECK(t.classes[7].dscp == 8);
    CHECK(t.classes[7].skb_priority == 1);
    CHECK(t.classes[7].shed_rank == 1);
    CHECK(t.classes[7].rate_permille > 0);
    CHECK(t.idOf("research") == 7);
    CHECK(t.default_class == kClassAdministrative);

    // ehr-fhir: its address, three primaries and one fallback, all clinical, TCP.
    for (const auto& [addr, port] : std::vector<std::pair<Address16, std::uint16_t>>{
             {v4(198, 18, 10, 10), 8080}, {v4(198, 18, 20, 11), 8080}, {v4(198, 18, 20, 13), 8080},
             {v4(198, 18, 30, 11), 8080}}) {
        const ServiceClass* s = endpointOf(t, addr, port);
        REQUIRE(s != nullptr);
        CHECK(s->service == "ehr-fhir");
        CHECK(s->class_id == kClassClinical);
        CHECK(s->endpoint.protocol == 6);
        CHECK(s->endpoint.family == 4);
    }
    const ServiceClass* ed = endpointOf(t, v4(198, 18, 20, 26), 2576);
    REQUIRE(ed != nullptr);
    CHECK(ed->class_id == kClassEmergency);
    const ServiceClass* pharmacy = endpointOf(t, v6({0x2001, 0xdb8, 0x20, 0, 0, 0, 0, 0x42}), 8080);
    REQUIRE(pharmacy != nullptr);
    CHECK(pharmacy->endpoint.family == 6);
    CHECK(pharmacy->class_id == kClassClinical);
    CHECK(endpointOf(t, v4(198, 18, 30, 61), 9103)->class_id == kClassBulk);
    CHECK(t.services.size() == 5 + 4 + 4 + 3 + 3 + 2 + 3);  // address + primaries + fallbacks per service

    // Rules in order, one per CIDR; a rule without CIDRs holds every address.
    REQUIRE(t.rules.size() == 1 + 1 + 1 + 1 + 2 + 2);
    CHECK(t.rules[0].name == "alarm-servers");
    CHECK(t.rules[0].prefix == v4(198, 18, 21, 0));
    CHECK(t.rules[0].prefix_length == 96 + 28);
    CHECK(t.rules[0].class_id == kClassLifeCritical);
    CHECK(t.rules[0].protocol == 0);
    CHECK(t.rules[0].port_lo == 0);
    CHECK(t.rules[0].port_hi == 65535);
    CHECK(t.rules[1].protocol == 17);
    CHECK(t.rules[1].port_lo == 5060);
    CHECK(t.rules[1].port_hi == 5061);
    CHECK(t.rules[2].name == "telemedicine-media");
    CHECK(t.rules[2].prefix_length == 0);
    CHECK(t.rules[2].class_id == kClassClinicalRealtime);
    CHECK(t.rules[3].port_lo == 104);
    CHECK(t.rules[3].port_hi == 104);  // `last` defaults to `first`
    CHECK(t.rules[3].protocol == 6);
    CHECK(t.rules[4].class_id == 7);
    CHECK(t.rules[5].prefix == v6({0x2001, 0xdb8, 0x26}));
    CHECK(t.rules[5].prefix_length == 48);
    CHECK(t.rules[4].rule_index == t.rules[5].rule_index);
    CHECK(t.rules[4].rule_index == 4);

    // Interfaces: capacity in bit/s; DSCP from the clients' side is re-marked.
    REQUIRE(t.interfaces.size() == 2);
    CHECK(t.interfaces[0].name == "ens1f0");
    CHECK(t.interfaces[0].capacity_bps == 10'000'000'000ull);
    CHECK(t.interfaces[0].remark_untrusted);
    CHECK(t.interfaces[1].capacity_bps == 25'000'000'000ull);
    CHECK_FALSE(t.interfaces[1].remark_untrusted);

    CHECK(t.stress_enabled);
    CHECK(t.stress_enter == doctest::Approx(0.9));
    CHECK(t.stress_exit == doctest::Approx(0.75));
    CHECK(t.stress_hold_ms == 2000);
}

TEST_CASE("compile: the demo policy, a default class, ICMP rules per family")
{
    const ClassTables demo = compileClassTables(policyFile("demo.yaml"));
    CHECK(demo.classes.size() == kClassCount);
    CHECK(demo.interfaces.empty());
    CHECK_FALSE(demo.services.empty());
    for (const auto& s : demo.services)
        CHECK(s.class_id < kClassCount);

    const ClassTables t = compileClassTables(validated(R"(
schema_version: 1
name: icmp
default_class: bulk
rules:
  - name: pings
    protocol: icmp
    class: emergency
  - name: v6-pings
    protocol: icmp
    cidrs: ["2001:db8:5::/48", 198.18.5.0/24]
    class: clinical
)"));
    CHECK(t.default_class == kClassBulk);
    REQUIRE(t.rules.size() == 4);
    CHECK(t.rules[0].protocol == 1);     // ICMP: IPv4-mapped ::ffff:0:0/96
    CHECK(t.rules[0].prefix_length == 96);
    CHECK(t.rules[0].prefix[10] == 0xff);
    CHECK(t.rules[1].protocol == 58);    // ICMPv6: ::/0
    CHECK(t.rules[1].prefix_length == 0);
    CHECK(t.rules[2].protocol == 58);
    CHECK(t.rules[3].protocol == 1);
    CHECK(t.rules[3].prefix_length == 96 + 24);
}

TEST_CASE("compile: what only the kernel's tables refuse is reported with where it is")
{
    std::string many = "schema_version: 1\nname: many\nclasses:\n";
    for (int i = 0; i < 10; ++i)
        many += "  - {name: extra" + std::to_string(i) + ", dscp: " + std::to_string(i) + "}\n";
    try {
        compileClassTables(validated(many));
        FAIL("10 added classes compiled");
    } catch (const ClassTablesError& e) {
        CHECK(std::string(e.what()).find("10 classes added to the 7 built-in ones; the kernel has ids for 9") !=
              std::string::npos);
    }

    std::string nested = "schema_version: 1\nname: nested\nrules:\n";
    for (int i = 0; i < 17; ++i)
        nested += "  - {name: n" + std::to_string(i) + ", cidrs: [198.18.0.0/" + std::to_string(15 + i) +
                  "], class: bulk}\n";
    try {
        compileClassTables(validated(nested));
        FAIL("17 overlapping rules compiled");
    } catch (const ClassTablesError& e) {
        CHECK(std::string(e.what()).find("rule n16: 17 rules hold the same addresses") != std::string::npos);
    }
}
