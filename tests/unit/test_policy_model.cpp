// The pieces around the two passes: address and CIDR syntax, the class
// table, the version, the summary and error lines, reading files.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "core/policy.h"
#include "core/policy_address.h"
#include "core/policy_classes.h"
#include "core/policy_defaults.h"
#include "core/policy_file.h"
#include "core/policy_issue.h"

using namespace shhim::core;

namespace {

constexpr const char* kMinimal = R"(schema_version: 1
name: minimal
services:
  - name: fhir
    address: 198.18.0.10:8080
    protocol: http
    class: clinical
    backends:
      primary: [198.18.0.10:8080]
)";

std::string addressError(const char* text) { return parseSocketAddress(text).error; }
std::string cidrError(const char* text) { return parseCidr(text).error; }

}  // namespace

TEST_CASE("socket addresses: IPv4, bracketed IPv6, unicast, port 1-65535")
{
    const auto v4 = parseSocketAddress("198.18.0.10:8080");
    REQUIRE(v4.value);
    CHECK(v4.value->ip.family == IpFamily::V4);
    CHECK(v4.value->port == 8080);
    CHECK(formatSocketAddress(*v4.value) == "198.18.0.10:8080");

    const auto v6 = parseSocketAddress("[2001:DB8:0::10]:443");
    REQUIRE(v6.value);
    CHECK(v6.value->ip.family == IpFamily::V6);
    CHECK(formatSocketAddress(*v6.value) == "[2001:db8::10]:443");
    // Equal addresses compare equal whatever their spelling.
    CHECK(*v6.value == *parseSocketAddress("[2001:db8::10]:443").value);

    CHECK(addressError("198.18.0.10:0") == "port 0 is out of range (1-65535)");
    CHECK(addressError("198.18.0.10:65536") == "port 65536 is out of range (1-65535)");
    CHECK(addressError("198.18.0.10:http") == "port 'http' is not a number (1-65535)");
    CHECK(addressError("198.18.0.10:") == "port '' is not a number (1-65535)");
    CHECK(addressError("198.18.10:80").find("is not an IPv4 or IPv6 address") != std::string::npos);
    CHECK(addressError("[198.18.0.10]:80") == "brackets are for IPv6 addresses; write 198.18.0.10:80");
    CHECK(addressError("[2001:db8::1]") != "");
    CHECK(addressError("2001:db8::1").find("in brackets") != std::string::npos);
    CHECK(addressError("224.0.0.1:5000").find("not a unicast address") != std::string::npos);
    CHECK(addressError("255.255.255.255:5000").find("not a unicast address") != std::string::npos);
    CHECK(addressError("[ff02::1]:5000").find("not a unicast address") != std::string::npos);
    CHECK(addressError("[::]:5000").find("not a unicast address") != std::string::npos);
}

TEST_CASE("CIDRs: prefix within the family, no host bits")
{
    const auto v4 = parseCidr("198.18.0.0/15");
    REQUIRE(v4.value);
    CHECK(v4.value->prefix_length == 15);
    CHECK(parseCidr("0.0.0.0/0").value);
    CHECK(parseCidr("198.18.0.7/32").value);
    CHECK(parseCidr("2001:db8::/32").value);
    CHECK(cidrError("198.18.0.0") == "expected ADDRESS/PREFIX, e.g. 198.18.4.0/24 or 2001:db8:4::/48, got '198.18.0.0'");
    CHECK(cidrError("198.18.1.0/15") == "198.18.1.0/15 has host bits set (the network is 198.18.0.0/15)");
    CHECK(cidrError("2001:db8::1/64") == "2001:db8::1/64 has host bits set (the network is 2001:db8::/64)");
    CHECK(cidrError("2001:db8::/129") == "prefix length 129 is out of range for IPv6 (0-128)");
    CHECK(cidrError("198.18.0.0/x") == "prefix length 'x' is not a number");
}

TEST_CASE("classes: the seven built-ins with their DESIGN.md DSCP, then overrides, then added classes")
{
    const auto builtins = builtinClasses();
    REQUIRE(builtins.size() == 7);
    const std::pair<const char*, unsigned> expected[] = {{"life-critical", 46}, {"emergency", 40},
                                                         {"clinical-realtime", 34}, {"clinical", 18},
                                                         {"imaging", 10}, {"administrative", 0}, {"bulk", 1}};
    for (std::size_t i = 0; i < 7; ++i) {
        CHECK(builtins[i].name == expected[i].first);
        CHECK(builtins[i].dscp == expected[i].second);
    }

    shhim::v1::Policy policy;
    auto* bulk = policy.add_classes();
    bulk->set_name("bulk");
    bulk->set_dscp(8);
    auto* research = policy.add_classes();
    research->set_name("research");
    research->set_dscp(8);
    research->set_shed_order(1);
    const auto resolved = resolveClasses(policy);
    REQUIRE(resolved.size() == 8);
    CHECK(resolved[6].name() == "bulk");
    CHECK(resolved[6].dscp() == 8);
    CHECK(resolved[6].skb_priority() == 1);  // not overridden: the built-in default stays
    CHECK(resolved[6].shed_order() == 1);
    CHECK(resolved[7].name() == "research");
    CHECK_FALSE(resolved[7].builtin());
    CHECK(resolved[7].shed_order() == 1);
}

TEST_CASE("the default shed order is valid, and an override may shed two classes together")
{
    const auto together = checkPolicyText(std::string(kMinimal) + "classes:\n  - name: administrative\n    shed_order: 1\n");
    CHECK(together.issues.empty());
    // Shedding imaging before bulk inverts the order: reported at the override.
    const auto inverted = checkPolicyText(std::string(kMinimal) + "classes:\n  - name: bulk\n    shed_order: 5\n");
    REQUIRE(inverted.issues.size() == 1);
    CHECK(inverted.issues[0].path == "classes[0].shed_order");
    CHECK(inverted.issues[0].message ==
          "bulk (shed_order 5) would be shed after higher-priority imaging (3), administrative (2): lower-priority "
          "classes must be shed first or together");
    // Never shedding bulk while imaging can be shed is the same inversion.
    const auto kept = checkPolicyText(std::string(kMinimal) + "classes:\n  - name: bulk\n    shed_order: 0\n");
    REQUIRE(kept.issues.size() == 1);
    CHECK(kept.issues[0].message.find("bulk (shed_order never) would be shed after higher-priority imaging (3)") == 0);
}

TEST_CASE("version: SHA-256 of the content, blind to comments, formatting and key order")
{
    // FIPS 180-2 test vector.
    CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    const auto base = checkPolicyText(kMinimal);
    REQUIRE(base.policy);
    CHECK(base.policy->version.size() == 64);
    CHECK(base.policy->version == policyVersion(base.policy->policy));

    const auto reordered = checkPolicyText(R"(# the same policy, written differently
name: minimal      # key order and comments do not matter
schema_version: 1
services:
- backends: {primary: ["198.18.0.10:8080"]}
  class: clinical
  protocol: http
  address: "198.18.0.10:8080"
  name: fhir
)");
    REQUIRE(reordered.policy);
    CHECK(reordered.policy->version == base.policy->version);

    std::string changed = kMinimal;
    changed.replace(changed.find("clinical"), 8, "emergency");
    const auto other = checkPolicyText(changed);
    REQUIRE(other.policy);
    CHECK(other.policy->version != base.policy->version);
}

TEST_CASE("summary line and error lines")
{
    const auto check = checkPolicyText(kMinimal);
    REQUIRE(check.policy);
    CHECK(policySummary(*check.policy) == "1 service, 0 rules, 7 classes, 0 interfaces");
    CHECK(policyOkLine("p.yaml", *check.policy) ==
          "p.yaml: ok: 1 service, 0 rules, 7 classes, 0 interfaces (version " + check.policy->version.substr(0, 12) +
              ")");

    CHECK(formatIssue("p.yaml", {"services[1].backends.primary[0]", {17, 9}, "bad"}) ==
          "p.yaml:17:9: services[1].backends.primary[0]: bad");
    CHECK(formatIssue("p.yaml", {"", {3, 1}, "not valid YAML: x"}) == "p.yaml:3:1: not valid YAML: x");
    CHECK(formatIssue("p.yaml", {"name", {}, "m"}) == "p.yaml: name: m");

    const PolicyIssue issue{"a.b[2]", {4, 5}, "m"};
    CHECK(fromProto(toProto(issue)) == issue);
}

TEST_CASE("unset fields take the documented defaults")
{
    const shhim::v1::Policy empty;
    const StressSettings stress = stressSettings(empty.stress());
    CHECK_FALSE(stress.enabled);
    CHECK(stress.enter_utilization == 0.9);
    CHECK(stress.exit_utilization == 0.75);
    CHECK(stress.hold_ms == 2000);
    CHECK(defaultClass(empty) == "administrative");

    shhim::v1::PortRange ports;
    ports.set_first(104);
    CHECK(lastPort(ports) == 104);
    ports.set_last(105);
    CHECK(lastPort(ports) == 105);
}

TEST_CASE("field paths and their ancestry")
{
    CHECK(fieldPath("", "services") == "services");
    CHECK(fieldPath(elementPath("services", 1), "backends") == "services[1].backends");
    CHECK(isWithin("services[1].backends.primary[0]", "services[1]"));
    CHECK(isWithin("services[1]", "services[1]"));
    CHECK(isWithin("anything", ""));
    CHECK_FALSE(isWithin("services[10]", "services[1]"));
    CHECK_FALSE(isWithin("services[1]", "services[1].backends"));
    CHECK_FALSE(isWithin("classesx", "classes"));
}

TEST_CASE("reading a policy file: errors name the file and the reason")
{
    const auto dir = std::filesystem::temp_directory_path();
    const std::string missing = (dir / "shhim-no-such-policy.yaml").string();
    std::string message;
    try {
        readPolicyFile(missing);
    } catch (const PolicyFileError& e) {
        message = e.what();
    }
    CHECK(message == "cannot read " + missing + ": No such file or directory");

    try {
        readPolicyFile(dir.string());
        message.clear();
    } catch (const PolicyFileError& e) {
        message = e.what();
    }
    CHECK(message == "cannot read " + dir.string() + ": Is a directory");

    const auto file = dir / ("shhim-policy-read-" + std::to_string(::getpid()) + ".yaml");
    std::ofstream(file) << kMinimal;
    CHECK(readPolicyFile(file.string()) == kMinimal);
    std::filesystem::remove(file);
}
