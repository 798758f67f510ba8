// The generic YAML -> protobuf mapping: driven only by descriptors, so it
// is exercised here on API messages it was not written for as well as on
// the policy schema.
#include <doctest/doctest.h>

#include <string>

#include "core/policy_issue.h"
#include "core/policy_yaml.h"
#include "policy.pb.h"
#include "shhim.pb.h"

using shhim::core::mapYamlToMessage;
using shhim::core::SourcePosition;

namespace {

// The one issue of mapping `yaml` onto a fresh M, as "path: message".
template <typename M>
std::string onlyIssue(const std::string& yaml)
{
    M message;
    const auto mapping = mapYamlToMessage(yaml, message);
    REQUIRE(mapping.issues.size() == 1);
    return mapping.issues[0].path + ": " + mapping.issues[0].message;
}

}  // namespace

TEST_CASE("nested messages, strings, integers and doubles of a message the mapper has never seen")
{
    shhim::v1::Backend backend;
    const auto mapping = mapYamlToMessage(R"(endpoint:
  address: 198.18.0.10
  port: 8080
protocol: tcp
refused: 18446744073709551615
response:
  count: 3
  p99_seconds: 1.5e-3
first_seen_unix_ns: -42
)",
                                          backend);
    CHECK(mapping.issues.empty());
    CHECK(backend.endpoint().address() == "198.18.0.10");
    CHECK(backend.endpoint().port() == 8080);
    CHECK(backend.protocol() == "tcp");
    CHECK(backend.refused() == 18446744073709551615ull);
    CHECK(backend.response().count() == 3);
    CHECK(backend.response().p99_seconds() == doctest::Approx(0.0015));
    CHECK(backend.first_seen_unix_ns() == -42);
    // Positions: scalars at their text, mappings at their key (1-based).
    CHECK(mapping.sources.find("endpoint.port") == SourcePosition{3, 9});
    CHECK(mapping.sources.find("response") == SourcePosition{6, 1});
    // A path that was not written is placed at its nearest ancestor.
    CHECK(mapping.sources.find("response.p50_seconds") == SourcePosition{6, 1});
}

TEST_CASE("repeated messages and repeated scalars from sequences, block or flow style")
{
    shhim::v1::Status status;
    const auto mapping = mapYamlToMessage(R"(counters:
  - {name: a, value: 1}
  - name: b
    value: 2
maps: []
)",
                                          status);
    CHECK(mapping.issues.empty());
    REQUIRE(status.counters_size() == 2);
    CHECK(status.counters(1).name() == "b");
    CHECK(status.counters(1).value() == 2);
    CHECK(mapping.sources.find("counters[1].value") == SourcePosition{4, 12});

    shhim::v1::BackendPools pools;
    CHECK(mapYamlToMessage("primary: [a, b]\nfallback:\n", pools).issues.empty());
    CHECK(pools.primary_size() == 2);
    CHECK(pools.fallback_size() == 0);  // null: an empty list
}

TEST_CASE("integers: decimal only, within the field's own type")
{
    CHECK(onlyIssue<shhim::v1::Endpoint>("port: 4294967296") ==
          "port: 4294967296 is out of range for uint32 (0..4294967295)");
    CHECK(onlyIssue<shhim::v1::Endpoint>("port: 99999999999999999999999") ==
          "port: 99999999999999999999999 is out of range for uint32 (0..4294967295)");
    CHECK(onlyIssue<shhim::v1::Endpoint>("port: 1e3") == "port: expected an integer (uint32), got '1e3'");
    CHECK(onlyIssue<shhim::v1::Endpoint>("port: 0x50") == "port: expected an integer (uint32), got '0x50'");
    CHECK(onlyIssue<shhim::v1::Endpoint>("port: 80.0") == "port: expected an integer (uint32), got '80.0'");
    CHECK(onlyIssue<shhim::v1::Flow>("first_seen_unix_ns: -9223372036854775809") ==
          "first_seen_unix_ns: -9223372036854775809 is out of range for int64 (-9223372036854775808..9223372036854775807)");

    shhim::v1::Flow flow;
    CHECK(mapYamlToMessage("first_seen_unix_ns: -9223372036854775808\nsyn: 4294967295", flow).issues.empty());
    CHECK(flow.first_seen_unix_ns() == INT64_MIN);
    CHECK(flow.syn() == 4294967295u);
}

TEST_CASE("numbers: finite decimals; booleans: true or false; neither quoted nor tagged as strings")
{
    CHECK(onlyIssue<shhim::v1::Latency>("p50_seconds: .nan") == "p50_seconds: expected a number, got '.nan'");
    CHECK(onlyIssue<shhim::v1::Latency>("p50_seconds: inf") == "p50_seconds: expected a number, got 'inf'");
    CHECK(onlyIssue<shhim::v1::Latency>("count: !!str 5").find("write numbers and booleans without quotes") !=
          std::string::npos);
    CHECK(onlyIssue<shhim::v1::Flow>("role_guessed: 'true'").find("expected true or false, got the string") !=
          std::string::npos);
    CHECK(onlyIssue<shhim::v1::Flow>("role_guessed: on") == "role_guessed: expected true or false, got 'on'");

    shhim::v1::Flow flow;
    CHECK(mapYamlToMessage("role_guessed: True", flow).issues.empty());
    CHECK(flow.role_guessed());
    // A string field takes a plain number as its text.
    shhim::v1::Endpoint endpoint;
    CHECK(mapYamlToMessage("address: 12", endpoint).issues.empty());
    CHECK(endpoint.address() == "12");
}

TEST_CASE("enums by name: the enum's prefix dropped, lowercase, '-' for '_'; UNSPECIFIED not writable")
{
    CHECK(shhim::core::yamlEnumName(*shhim::v1::AppProtocol_descriptor()->FindValueByName("APP_PROTOCOL_HTTP")) ==
          "http");
    CHECK(shhim::core::yamlEnumName(*shhim::v1::Transport_descriptor()->FindValueByName("TRANSPORT_ANY")) == "any");
    CHECK(shhim::core::yamlEnumName(
              *shhim::v1::InterfaceRole_descriptor()->FindValueByName("INTERFACE_ROLE_CLIENTS")) == "clients");

    shhim::v1::TrafficRule rule;
    CHECK(mapYamlToMessage("protocol: udp\nclass: bulk", rule).issues.empty());
    CHECK(rule.protocol() == shhim::v1::TRANSPORT_UDP);
    CHECK(onlyIssue<shhim::v1::Service>("protocol: unspecified\nname: a\naddress: b\nclass: c\nbackends: {}") ==
          "protocol: unknown value 'unspecified' (expected one of http, mllp, tcp)");
    CHECK(onlyIssue<shhim::v1::Service>("protocol: HTTP\nname: a\naddress: b\nclass: c\nbackends: {}") ==
          "protocol: unknown value 'HTTP' (expected one of http, mllp, tcp)");
}

TEST_CASE("structure: keys are field names, given once; containers of the right kind; required fields present")
{
    CHECK(onlyIssue<shhim::v1::Endpoint>("adress: x") ==
          "adress: unknown field 'adress' (did you mean 'address'? Endpoint has: address, port)");
    CHECK(onlyIssue<shhim::v1::Endpoint>("zzz: x") == "zzz: unknown field 'zzz' (Endpoint has: address, port)");
    CHECK(onlyIssue<shhim::v1::Endpoint>("{[a]: 1}") == ": a key must be a field name, got a sequence");
    CHECK(onlyIssue<shhim::v1::Endpoint>("port: 1\nport: 2") == "port: given twice (first on line 1); give each field once");
    CHECK(onlyIssue<shhim::v1::Backend>("endpoint: [1]") ==
          "endpoint: expected a mapping of Endpoint fields, got a sequence");
    CHECK(onlyIssue<shhim::v1::Status>("counters: {name: a}") ==
          "counters: expected a sequence (a list), got a mapping");
    CHECK(onlyIssue<shhim::v1::Status>("counters: [7]") ==
          "counters[0]: expected a mapping of Counter fields, got a scalar");
    CHECK(onlyIssue<shhim::v1::Endpoint>("address: {a: 1}") == "address: expected a string, got a mapping");
    CHECK(onlyIssue<shhim::v1::Endpoint>("address: ~") == "address: has no value (expected a string)");
    // [(required) = true] in the schema: PortRange.first.
    CHECK(onlyIssue<shhim::v1::PortRange>("last: 5") == "first: missing required field 'first'");
    // A null message counts as given (with defaults), and its own required fields are checked.
    shhim::v1::TrafficRule rule;
    const auto mapping = mapYamlToMessage("class: bulk\nports:\n", rule);
    REQUIRE(mapping.issues.size() == 1);
    CHECK(mapping.issues[0].path == "ports.first");
    CHECK(rule.has_ports());
}

TEST_CASE("a syntax error is one issue at the parser's position; so is a second document")
{
    shhim::v1::Endpoint endpoint;
    const auto broken = mapYamlToMessage("address: [a, b\nport: 1\n", endpoint);
    REQUIRE(broken.issues.size() == 1);
    CHECK(broken.issues[0].path.empty());
    CHECK(broken.issues[0].message.rfind("not valid YAML: ", 0) == 0);
    CHECK(broken.issues[0].where.line >= 1);

    const auto two = mapYamlToMessage("port: 1\n---\nport: 2\n", endpoint);
    REQUIRE(two.issues.size() == 1);
    CHECK(two.issues[0].where.line == 3);
    CHECK(two.issues[0].message == "expected one YAML document, found more (remove the '---' separators)");
    // An explicit start of the one document is fine.
    CHECK(mapYamlToMessage("---\nport: 1\n", endpoint).issues.empty());
}

TEST_CASE("a stray ',' where a document starts is a syntax error, not an endless parse")
{
    // yaml-cpp 0.7's LoadAll never returns on these (jbeder/yaml-cpp#1040).
    shhim::v1::Endpoint endpoint;
    const auto alone = mapYamlToMessage(",\n", endpoint);
    REQUIRE(alone.issues.size() == 1);
    CHECK(alone.issues[0].message == "not valid YAML: unexpected ','");
    CHECK(alone.issues[0].where == SourcePosition{1, 1});

    const auto second = mapYamlToMessage("port: 1\n---\n  ,\n", endpoint);
    REQUIRE(second.issues.size() == 1);
    CHECK(second.issues[0].message == "not valid YAML: unexpected ','");
    CHECK(second.issues[0].where == SourcePosition{3, 3});
}
