// Checking a policy file's text: the generic YAML mapping onto
// v1::Policy (policy_yaml.h), then the semantic checks (policy_validate.h);
// every problem of both passes comes back at once, sorted by line. A text
// without problems yields the policy, its classes and its version.
//
// The version is the SHA-256 (lowercase hex) of the Policy message's
// deterministic binary serialization: the content, not the file's bytes,
// so comments, key order and formatting do not change it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/policy_issue.h"
#include "policy.pb.h"
#include "shhim.pb.h"

namespace shhim::core {

struct ValidatedPolicy {
    v1::Policy policy;
    std::string version;                     // 64 hex digits
    std::vector<v1::ResolvedClass> classes;  // built-ins (highest first), then added ones
};

struct PolicyCheck {
    std::optional<ValidatedPolicy> policy;  // set exactly when `issues` is empty
    std::vector<PolicyIssue> issues;        // sorted by line, column, path
};

PolicyCheck checkPolicyText(std::string_view yaml);

std::string sha256Hex(std::string_view bytes);
std::string policyVersion(const v1::Policy& policy);
std::string shortVersion(std::string_view version);  // the first 12 hex digits

// "2 services, 0 rules, 7 classes, 0 interfaces"
std::string policySummary(const ValidatedPolicy& policy);
// "policy/demo.yaml: ok: 2 services, 0 rules, 7 classes, 0 interfaces (version 3f2a9c01b7e4)"
std::string policyOkLine(std::string_view file, const ValidatedPolicy& policy);

v1::PolicyIssue toProto(const PolicyIssue& issue);
PolicyIssue fromProto(const v1::PolicyIssue& issue);

}  // namespace shhim::core
