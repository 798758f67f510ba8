// The policies shipped in policy/ load without a single issue, and the
// demo's services are exactly what scripts/demo.sh and the end-to-end
// tests rely on.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <string>

#include "core/policy.h"
#include "core/policy_file.h"

namespace {

namespace fs = std::filesystem;

const fs::path kPolicyDir = fs::path(SHHIM_SOURCE_DIR) / "policy";

shhim::core::PolicyCheck checkFile(const fs::path& file)
{
    return shhim::core::checkPolicyText(shhim::core::readPolicyFile(file.string()));
}

const shhim::v1::Service* findService(const shhim::v1::Policy& policy, const std::string& name)
{
    for (const auto& service : policy.services())
        if (service.name() == name)
            return &service;
    return nullptr;
}

}  // namespace

TEST_CASE("every policy in policy/ loads with no issue")
{
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(kPolicyDir)) {
        if (entry.path().extension() != ".yaml")
            continue;
        CAPTURE(entry.path().string());
        const auto check = checkFile(entry.path());
        std::string issues;
        for (const auto& issue : check.issues)
            issues += shhim::core::formatIssue(entry.path().filename().string(), issue) + "\n";
        CAPTURE(issues);
        CHECK(check.issues.empty());
        CHECK(check.policy.has_value());
        names.insert(entry.path().filename().string());
    }
    // The three the issue asks for are there (and so were checked above).
    for (const char* required : {"demo.yaml", "hospital-gateway.yaml", "k8s-node.yaml"})
        CHECK(names.contains(required));
}

TEST_CASE("demo.yaml keeps the services, addresses and ports the demo testbed serves")
{
    const auto check = checkFile(kPolicyDir / "demo.yaml");
    REQUIRE(check.policy.has_value());
    const auto& policy = check.policy->policy;
    CHECK(policy.services_size() == 2);

    const auto* fhir = findService(policy, "fhir");
    REQUIRE(fhir != nullptr);
    CHECK(fhir->protocol() == shhim::v1::APP_PROTOCOL_HTTP);
    CHECK(fhir->class_() == "clinical");
    CHECK(fhir->address() == "198.18.0.10:8080");
    REQUIRE(fhir->backends().primary_size() == 2);
    CHECK(fhir->backends().primary(0) == "198.18.0.10:8080");
    CHECK(fhir->backends().primary(1) == "198.18.0.11:8080");

    const auto* lab = findService(policy, "lab-hl7");
    REQUIRE(lab != nullptr);
    CHECK(lab->protocol() == shhim::v1::APP_PROTOCOL_MLLP);
    CHECK(lab->class_() == "clinical");
    CHECK(lab->address() == "198.18.0.12:2575");
    REQUIRE(lab->backends().primary_size() == 1);
    CHECK(lab->backends().primary(0) == "198.18.0.12:2575");

    CHECK(shhim::core::policySummary(*check.policy) == "2 services, 0 rules, 7 classes, 0 interfaces");
}

TEST_CASE("hospital-gateway.yaml: the classes it adds and overrides resolve as written")
{
    const auto check = checkFile(kPolicyDir / "hospital-gateway.yaml");
    REQUIRE(check.policy.has_value());
    const auto& classes = check.policy->classes;
    REQUIRE(classes.size() == 8);
    CHECK(classes[6].name() == "bulk");
    CHECK(classes[6].dscp() == 8);  // overridden from LE (1) to CS1
    CHECK(classes[6].shed_order() == 1);
    CHECK(classes[7].name() == "research");
    CHECK_FALSE(classes[7].builtin());
    CHECK(check.policy->policy.stress().enabled());
    CHECK(check.policy->policy.interfaces_size() == 2);
}
