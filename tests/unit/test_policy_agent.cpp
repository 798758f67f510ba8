// The agent's side of a policy change, without a kernel: what an apply
// answers (every error, or the candidate with its version), what
// GetPolicy shows, and reading --policy files.
#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/policy.h"

namespace {

constexpr const char* kValid = R"(schema_version: 1
name: apply-test
services:
  - name: fhir
    address: 198.18.0.10:8080
    protocol: http
    class: clinical
    backends:
      primary: [198.18.0.10:8080, 198.18.0.11:8080]
)";

shhim::v1::ApplyPolicyRequest request(const std::string& yaml)
{
    shhim::v1::ApplyPolicyRequest out;
    out.set_yaml(yaml);
    out.set_file_name("sent.yaml");
    return out;
}

}  // namespace

TEST_CASE("apply: an invalid policy yields no candidate and every error, with path and line")
{
    std::string invalid = kValid;
    invalid.replace(invalid.find("198.18.0.11:8080"), 16, "198.18.0.11");
    invalid += "  - name: fhir\n";
    shhim::v1::ApplyPolicyResponse response;
    const auto candidate = shhim::agent::candidateFromRequest(request(invalid), response);
    CHECK(candidate == nullptr);
    CHECK_FALSE(response.applied());
    CHECK(response.version().empty());
    // primary[1] without a port; the second service lacks four fields and repeats a name.
    REQUIRE(response.errors_size() == 6);
    CHECK(response.errors(0).path() == "services[0].backends.primary[1]");
    CHECK(response.errors(0).line() == 9);
    CHECK(response.errors(1).path() == "services[1].address");
    CHECK(response.errors(1).line() == 10);
    CHECK(response.errors(5).path() == "services[1].name");
    CHECK(response.errors(5).message() == "duplicate service name 'fhir' (also services[0])");
}

TEST_CASE("apply: a valid policy yields the candidate, its version and summary")
{
    shhim::v1::ApplyPolicyResponse response;
    const auto candidate = shhim::agent::candidateFromRequest(request(kValid), response);
    REQUIRE(candidate != nullptr);
    CHECK(response.applied());
    CHECK(response.errors_size() == 0);
    CHECK(response.version() == shhim::core::checkPolicyText(kValid).policy->version);
    CHECK(response.summary() == "1 service, 0 rules, 7 classes, 0 interfaces");
    CHECK(candidate->file == "sent.yaml");
    CHECK(candidate->source == "shhimctl policy apply");
    CHECK(candidate->applied_unix_ns > 0);
    CHECK(shhim::agent::describePolicy(*candidate) ==
          "policy apply-test from sent.yaml: 1 service, 0 rules, 7 classes, 0 interfaces (version " +
              response.version().substr(0, 12) + ")");
}

TEST_CASE("what GetPolicy shows, and the short summary the observability code reads")
{
    CHECK_FALSE(shhim::agent::policyState(nullptr).applied());

    shhim::v1::ApplyPolicyResponse response;
    const shhim::agent::PolicyPtr applied = shhim::agent::candidateFromRequest(request(kValid), response);
    REQUIRE(applied != nullptr);
    const shhim::v1::PolicyState shown = shhim::agent::policyState(applied);
    CHECK(shown.applied());
    CHECK(shown.version() == response.version());
    CHECK(shown.file() == "sent.yaml");
    CHECK(shown.source() == "shhimctl policy apply");
    CHECK(shown.summary() == "1 service, 0 rules, 7 classes, 0 interfaces");
    CHECK(shown.classes_size() == 7);
    CHECK(shown.policy().name() == "apply-test");

    const shhim::agent::PolicySummary summary = shhim::agent::summaryOf(*applied);
    CHECK(summary.path == "sent.yaml");
    CHECK(summary.name == "apply-test");
    CHECK(summary.service_names == std::vector<std::string>{"fhir"});

    CHECK(shhim::agent::joinedErrors({"a.yaml:1:1: x: bad", "a.yaml:2:1: y: worse"}) ==
          "2 errors: a.yaml:1:1: x: bad; a.yaml:2:1: y: worse");
}

TEST_CASE("a policy file that cannot be read gives one error naming it and no candidate")
{
    const std::string missing = (std::filesystem::temp_directory_path() / "shhim-no-such-policy.yaml").string();
    const auto candidate = shhim::agent::candidateFromFile(missing, "SIGHUP");
    CHECK(candidate.policy == nullptr);
    REQUIRE(candidate.errors.size() == 1);
    CHECK(candidate.errors[0] == "cannot read " + missing + ": No such file or directory");
}

TEST_CASE("a valid policy file gives its candidate, named by the path and source")
{
    const auto candidate =
        shhim::agent::candidateFromFile(std::string(SHHIM_SOURCE_DIR) + "/policy/demo.yaml", "shhimd --policy");
    REQUIRE(candidate.policy != nullptr);
    CHECK(candidate.errors.empty());
    CHECK(candidate.policy->source == "shhimd --policy");
    CHECK(candidate.policy->validated.policy.name() == "shhim-demo");
}

TEST_CASE("servicesOf: every service with its address, primary and fallback backends as kernel endpoints")
{
    shhim::v1::ApplyPolicyResponse response;
    const auto applied = shhim::agent::candidateFromRequest(request(std::string(kValid) +
                                                                    "      fallback: [198.18.0.12:8080]\n"
                                                                    "  - name: lab\n"
                                                                    "    address: '[2001:2::12]:2575'\n"
                                                                    "    protocol: mllp\n"
                                                                    "    class: emergency\n"
                                                                    "    backends:\n"
                                                                    "      primary: ['[2001:2::12]:2575']\n"),
                                                            response);
    REQUIRE(applied);
    const auto services = shhim::agent::servicesOf(*applied);
    REQUIRE(services.size() == 2);
    CHECK(services[0].name == "fhir");
    CHECK(services[0].priority_class == "clinical");
    // The address is also the first primary: three distinct endpoints.
    REQUIRE(services[0].backends.size() == 3);
    const shhim_endpoint& fallback = services[0].backends[2];
    CHECK(fallback.family == SHHIM_FAMILY_IPV4);
    CHECK(fallback.proto == 6);
    CHECK(fallback.port == htons(8080));
    const std::uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 12};
    CHECK(std::memcmp(fallback.addr, mapped, 16) == 0);
    CHECK(services[1].name == "lab");
    CHECK(services[1].priority_class == "emergency");
    REQUIRE(services[1].backends.size() == 1);
    CHECK(services[1].backends[0].family == SHHIM_FAMILY_IPV6);
    CHECK(services[1].backends[0].addr[15] == 0x12);
    CHECK(services[1].backends[0].port == htons(2575));
}
