// Invalid policies: one fixture per kind of error under
// tests/data/policy/invalid/, each rejected with exactly one issue at the
// expected field path, line and column; and a file with several errors of
// both passes, all reported at once, sorted by line.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/policy.h"
#include "core/policy_file.h"

namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(SHHIM_SOURCE_DIR) / "tests/data/policy";

struct Expected {
    const char* fixture;  // tests/data/policy/invalid/<fixture>.yaml
    const char* path;     // "" = the file as a whole
    int line;
    int column;
    const char* says;     // a part of the message that names the error
};

// Line and column point at the offending value (a scalar), at the key of a
// mapping or list, or, for a missing field, at the mapping that lacks it.
const Expected kInvalid[] = {
    // YAML and structure: the generic mapping onto the proto.
    {"yaml-syntax", "", 9, 9, "not valid YAML"},
    {"root-not-mapping", "", 2, 1, "expected a mapping of Policy fields, got a sequence"},
    {"multiple-documents", "", 5, 1, "expected one YAML document, found more"},
    {"stray-comma", "", 2, 1, "not valid YAML: unexpected ','"},
    {"unknown-field", "services[0].port", 11, 5, "unknown field 'port'"},
    {"unknown-field-typo", "services[0].thresholds.p95_latency_ms", 12, 7, "did you mean 'p99_latency_ms'?"},
    {"expected-mapping", "services[0].backends", 10, 15, "expected a mapping of BackendPools fields, got a scalar"},
    {"expected-sequence", "services[0].backends.primary", 11, 16, "expected a sequence (a list), got a scalar"},
    {"expected-string", "services[0].name", 6, 5, "expected a string, got a sequence"},
    {"not-an-integer", "schema_version", 2, 17, "expected an integer (uint32), got 'one'"},
    {"integer-type-range", "classes[0].dscp", 7, 11, "-1 is out of range for uint32"},
    {"not-a-number", "services[0].thresholds.error_rate", 12, 19, "expected a number, got 'high'"},
    {"not-a-boolean", "stress.enabled", 9, 12, "expected true or false, got 'yes'"},
    {"unknown-enum-value", "services[0].protocol", 8, 15, "unknown value 'ftp' (expected one of http, mllp, tcp)"},
    {"quoted-number", "interfaces[0].capacity_mbps", 7, 20, "write numbers and booleans without quotes"},
    {"missing-required-field", "services[0].address", 6, 5, "missing required field 'address'"},
    {"duplicate-key", "services[0].class", 11, 5, "given twice (first on line 8)"},
    {"null-value", "services[0].name", 6, 5, "has no value"},
    // Content: the semantic pass.
    {"unsupported-schema-version", "schema_version", 2, 17, "unsupported schema version 2"},
    {"empty-policy-name", "name", 3, 7, "must not be empty"},
    {"bad-service-name", "services[0].name", 6, 11, "'FHIR API' is not a valid service name"},
    {"duplicate-service-name", "services[1].name", 12, 11, "duplicate service name 'fhir' (also services[0])"},
    {"bad-address", "services[0].address", 7, 14, "'fhir.hospital.example' is not an IPv4 or IPv6 address"},
    {"address-without-port", "services[0].address", 7, 14, "(no port)"},
    {"port-out-of-range", "services[0].address", 7, 14, "port 70000 is out of range (1-65535)"},
    {"ipv6-without-brackets", "services[0].address", 7, 14, "written in brackets"},
    {"not-unicast", "services[0].address", 7, 14, "0.0.0.0 is not a unicast address"},
    {"duplicate-service-address", "services[1].address", 13, 14, "duplicate service address 198.18.0.10:8080"},
    {"bad-backend-address", "services[1].backends.primary[0]", 17, 17, "'198.18.0.300' is not an IPv4 or IPv6"},
    {"empty-primary-pool", "services[0].backends.primary", 11, 7, "the primary pool has no backends"},
    {"duplicate-backend", "services[0].backends.fallback[0]", 12, 18,
     "already listed at services[0].backends.primary[0]"},
    {"backend-family-mismatch", "services[0].backends.primary[1]", 11, 35,
     "is IPv6 but the service address is IPv4"},
    {"unknown-service-class", "services[0].class", 9, 12, "unknown class 'urgent'"},
    {"unknown-rule-class", "rules[0].class", 8, 12, "unknown class 'critical'"},
    {"unknown-default-class", "default_class", 4, 16, "unknown class 'best-effort'"},
    {"cidr-prefix-out-of-range", "rules[0].cidrs[0]", 7, 13, "prefix length 33 is out of range for IPv4 (0-32)"},
    {"cidr-host-bits", "rules[0].cidrs[1]", 7, 33, "has host bits set (the network is 198.18.21.0/24)"},
    {"port-range-reversed", "rules[0].ports.last", 8, 33, "the range ends (16384) before it starts (32767)"},
    {"rule-port-out-of-range", "rules[0].ports.first", 9, 14, "port 0 is out of range (1-65535)"},
    {"rule-matches-everything", "rules[0]", 6, 5, "the rule matches all traffic"},
    {"icmp-with-ports", "rules[0].ports", 8, 5, "ICMP has no ports"},
    {"dscp-out-of-range", "classes[0].dscp", 7, 11, "DSCP 64 is out of range (0-63)"},
    {"skb-priority-out-of-range", "classes[0].skb_priority", 7, 19, "skb priority 16 is out of range (0-15"},
    {"never-shed-class", "classes[0].shed_order", 7, 17, "life-critical traffic is never shed"},
    {"shed-order-inversion", "classes[0].shed_order", 7, 17,
     "clinical (shed_order 1) would be shed before lower-priority imaging (3), administrative (2)"},
    {"duplicate-class", "classes[1].name", 8, 11, "class 'bulk' is already set by classes[0]"},
    {"new-class-without-dscp", "classes[0].dscp", 6, 5,
     "'clincal' is not a built-in class (did you mean 'clinical'?); a new class must set dscp"},
    {"bad-class-name", "classes[0].name", 6, 11, "'Research Lab' is not a valid class name"},
    {"threshold-fraction", "services[0].thresholds.error_rate", 12, 19, "1.5 is out of range (a fraction"},
    {"threshold-latency", "services[0].thresholds.p99_latency_ms", 12, 23, "0 ms is out of range"},
    {"threshold-count", "services[0].thresholds.window_ms", 12, 18, "50 is out of range (100-3600000)"},
    {"fallback-hold-range", "services[0].thresholds.fallback_hold_ms", 13, 25, "10 is out of range (1000-3600000)"},
    {"probe-path-on-mllp", "services[0].probe.http_path", 12, 18, "is for http services only"},
    {"probe-successes-range", "services[0].probe.successes", 13, 18, "0 is out of range (1-100)"},
    {"interface-name-too-long", "interfaces[0].name", 6, 11, "interface names have at most 15 (IFNAMSIZ)"},
    {"interface-name-invalid", "interfaces[0].name", 6, 11, "'eth0:1' is not a valid interface name"},
    {"duplicate-interface", "interfaces[1].name", 8, 11, "interface 'eth0' is already listed at interfaces[0]"},
    {"zero-capacity", "interfaces[0].capacity_mbps", 7, 20, "0 Mbit/s is out of range"},
    {"stress-threshold-range", "stress.enter_utilization", 10, 22, "1.2 is out of range (a fraction"},
    {"stress-exit-above-enter", "stress.exit_utilization", 11, 21,
     "exit_utilization 0.8 must be below enter_utilization 0.7"},
    {"stress-hold-range", "stress.hold_ms", 10, 12, "50 is out of range (100-600000)"},
    {"stress-share-range", "classes[0].stress_share", 7, 19, "1.5 is out of range (a share of the link: 0 to 1)"},
    {"class-anomaly-sensitivity-range", "classes[0].anomaly_sensitivity", 7, 26,
     "12 is out of range (the anomaly score's multiplier: 0 to 10; 0 = the score never ejects)"},
    {"stress-share-never-shed", "classes[0].stress_share", 7, 19, "emergency traffic is never shed"},
    {"stress-share-not-shed", "classes[0].stress_share", 7, 19, "clinical has shed_order 0 (never shed)"},
    {"stress-share-sum", "classes[1].stress_share", 9, 19, "keep more than the whole link under stress"},
    {"remark-not-boolean", "interfaces[0].remark_untrusted_dscp", 8, 28, "expected true or false, got 'sometimes'"},
    {"stress-without-interfaces", "stress.enabled", 6, 12, "stress mode needs at least one interface"},
    {"backend-weight-range", "services[0].backends.weights[0].weight", 13, 47, "0 is out of range (1-100)"},
    {"backend-weight-unknown", "services[0].backends.weights[0].backend", 13, 21,
     "backend 198.18.0.12:8080 is in neither pool of this service"},
};

shhim::core::PolicyCheck checkFixture(const fs::path& file)
{
    return shhim::core::checkPolicyText(shhim::core::readPolicyFile(file.string()));
}

}  // namespace

TEST_CASE("every invalid fixture is rejected with exactly its one issue: field path, line, column, message")
{
    for (const Expected& expected : kInvalid) {
        CAPTURE(expected.fixture);
        const auto check = checkFixture(kFixtures / "invalid" / (std::string(expected.fixture) + ".yaml"));
        CHECK_FALSE(check.policy.has_value());
        REQUIRE(check.issues.size() == 1);
        const auto& issue = check.issues.front();
        CAPTURE(issue.message);
        CHECK(issue.path == expected.path);
        CHECK(issue.where.line == expected.line);
        CHECK(issue.where.column == expected.column);
        CHECK(issue.message.find(expected.says) != std::string::npos);
    }
}

TEST_CASE("the fixtures cover at least 25 kinds of error, and each fixture file is in the table")
{
    std::set<std::string> listed;
    for (const Expected& expected : kInvalid)
        CHECK(listed.insert(expected.fixture).second);  // one entry per fixture
    CHECK(listed.size() >= 25);

    std::set<std::string> on_disk;
    for (const auto& entry : fs::directory_iterator(kFixtures / "invalid"))
        if (entry.path().extension() == ".yaml")
            on_disk.insert(entry.path().stem().string());
    CHECK(on_disk == listed);
}

TEST_CASE("every error of both passes is reported at once, sorted by line")
{
    const auto check = checkFixture(kFixtures / "many-errors.yaml");
    CHECK_FALSE(check.policy.has_value());
    std::vector<std::string> got;
    for (const auto& issue : check.issues)
        got.push_back(std::to_string(issue.where.line) + " " + issue.path);
    const std::vector<std::string> expected = {
        "11 services[0].backends.primary[1]",  // semantic: no port
        "12 services[1].address",              // mapping: missing (the service starts on line 12)
        "13 services[1].adress",               // mapping: unknown field
        "15 services[1].class",                // semantic: unknown class
        "20 classes[0].dscp",                  // semantic: out of range
        "23 interfaces[0].capacity_mbps",      // mapping: quoted number
        "26 stress.exit_utilization",          // semantic: not below the default enter threshold
    };
    CHECK(got == expected);
}

TEST_CASE("a field the mapper could not read is not judged again by the semantic pass")
{
    // `backends` is a scalar: one issue, not also "the primary pool has no backends".
    const auto wrong_type = shhim::core::checkPolicyText(R"(schema_version: 1
name: t
services:
  - name: fhir
    address: 198.18.0.10:8080
    protocol: http
    class: clinical
    backends: none
)");
    REQUIRE(wrong_type.issues.size() == 1);
    CHECK(wrong_type.issues[0].path == "services[0].backends");

    // A missing address is reported as missing, not also as "not an address".
    const auto missing = shhim::core::checkPolicyText("name: t\n");
    REQUIRE(missing.issues.size() == 1);
    CHECK(missing.issues[0].path == "schema_version");
    CHECK(missing.issues[0].message == "missing required field 'schema_version'");
}

TEST_CASE("an empty file lacks the required fields, reported at line 1")
{
    const auto check = shhim::core::checkPolicyText("");
    REQUIRE(check.issues.size() == 2);
    CHECK(check.issues[0].path == "name");
    CHECK(check.issues[1].path == "schema_version");
    CHECK(check.issues[0].where == shhim::core::SourcePosition{1, 1});
}
