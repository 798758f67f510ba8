// What this kernel allows, checked without changing anything on the host:
// each check loads (and drops) a minimal program or reads a kernel file.
#pragma once

#include <string>
#include <vector>

namespace shhim::datapath {

struct PreflightCheck {
    std::string name;     // "btf", "xdp", "tc_clsact", ...
    bool required;        // shhimd cannot run without it
    bool ok;
    std::string detail;   // what was found, or why it is missing
};

struct PreflightOptions {
    std::vector<std::string> interfaces;  // also report their drivers (native XDP depends on it)
    std::string cgroup_path;              // checked instead of the mount when set ("none": skipped)
};

std::vector<PreflightCheck> preflight(const PreflightOptions& options = {});

// Where cgroup v2 is mounted according to /proc/self/mountinfo
// ("/sys/fs/cgroup" on unified hosts, "/sys/fs/cgroup/unified" on hybrid
// ones); "" when it is not mounted.
std::string findCgroup2Mount();

// Mounts a BPF filesystem at mount_point if none is there (creating the
// directory). Returns true if it mounted one; throws Error on failure.
bool mountBpfFsIfMissing(const std::string& mount_point = "/sys/fs/bpf");

// uname -r
std::string kernelRelease();

}  // namespace shhim::datapath
