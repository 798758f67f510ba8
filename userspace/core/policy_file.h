// Reading a policy file from disk: the one place the policy code touches
// the filesystem, shared by shhimctl (policy check/apply) and shhimd
// (--policy, SIGHUP). Checking the text is policy.h's job.
#pragma once

#include <stdexcept>
#include <string>

namespace shhim::core {

class PolicyFileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

constexpr std::size_t kMaxPolicyFileBytes = 4 << 20;

// The file's bytes. Throws PolicyFileError("cannot read FILE: <errno text>")
// (or "... is larger than 4 MiB") naming the file.
std::string readPolicyFile(const std::string& path);

}  // namespace shhim::core
