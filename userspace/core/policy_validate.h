// The semantic pass over a policy the YAML mapper filled: what the proto's
// types cannot say (address syntax, ranges, uniqueness, references between
// fields, the shedding rules). Each problem is reported at the field it is
// about, placed by the SourceMap.
#pragma once

#include <vector>

#include "core/policy_issue.h"
#include "policy.pb.h"

namespace shhim::core {

constexpr std::uint32_t kPolicySchemaVersion = 1;

// Problems with the content; `mapping_issues` are the mapper's, whose
// paths (and everything below them) are not judged again: a field the
// mapper could not read must not also be reported as, say, empty.
std::vector<PolicyIssue> validatePolicy(const v1::Policy& policy, const SourceMap& sources,
                                        const std::vector<PolicyIssue>& mapping_issues = {});

}  // namespace shhim::core
