// The policy file, for now only parsed and summarised: shhimd refuses a
// file that is not valid YAML (naming file:line) and reports how many
// services it names. The full schema arrives with a later issue.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace shhim::agent {

struct PolicySummary {
    std::string path;
    std::string name;                        // top-level `name:`, "" if absent
    std::vector<std::string> service_names;  // `services[*].name`
};

class PolicyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws PolicyError("<file>:<line>:<column>: <what is wrong>").
PolicySummary loadPolicy(const std::string& path);

}  // namespace shhim::agent
