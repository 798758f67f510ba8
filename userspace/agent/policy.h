// The agent's policy. Every way in (--policy at start, SIGHUP, ApplyPolicy)
// runs the same checks as `shhimctl policy check` (core/policy.h) and
// yields either a whole new policy or the list of what is wrong; the
// running policy is only ever replaced by a valid one, in one step.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/policy.h"
#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::agent {

struct AppliedPolicy {
    core::ValidatedPolicy validated;
    std::string file;    // as named by whoever applied it
    std::string source;  // "shhimd --policy", "SIGHUP", "shhimctl policy apply"
    std::int64_t applied_unix_ns = 0;
};

using PolicyPtr = std::shared_ptr<const AppliedPolicy>;

// The short form of the applied policy that issue 2 exposed (file, name,
// service names); the observability code (metrics_state, http_views)
// reads it. New code should read the AppliedPolicy itself.
struct PolicySummary {
    std::string path;
    std::string name;
    std::vector<std::string> service_names;
};

PolicySummary summaryOf(const AppliedPolicy& policy);

// A policy service as the metrics and feed labels need it: every endpoint
// that carries its traffic (its address, primary and fallback backends) in
// the kernel's form (IPv4-mapped address, port in network order, TCP).
struct ServiceBackends {
    std::string name;
    std::string priority_class;
    std::vector<shhim_endpoint> backends;
};

// The services of an applied policy with their endpoints, in policy order.
std::vector<ServiceBackends> servicesOf(const AppliedPolicy& policy);

// A policy ready to apply, or why there is none.
struct PolicyCandidate {
    PolicyPtr policy;                 // null when the file is invalid or unreadable
    std::vector<std::string> errors;  // "FILE:LINE:COL: PATH: message" lines, or the read error
};

// Reads and checks a policy file (--policy, SIGHUP).
PolicyCandidate candidateFromFile(const std::string& path, const std::string& source);

// Checks a policy's text (ApplyPolicy) and fills the RPC's answer; the
// candidate is null when the answer lists errors.
PolicyPtr candidateFromRequest(const v1::ApplyPolicyRequest& request, v1::ApplyPolicyResponse& response);

// Error lines in one string ("N errors: first; second; ..."), for the event
// feed's one-line notice of a rejected policy.
std::string joinedErrors(const std::vector<std::string>& errors);

// "policy shhim-demo from policy/demo.yaml: 2 services, 0 rules, 7 classes,
// 0 interfaces (version 3f2a9c01b7e4)"
std::string describePolicy(const AppliedPolicy& policy);

// The GetPolicy answer; `applied` false for null.
v1::PolicyState policyState(const PolicyPtr& policy);

}  // namespace shhim::agent
