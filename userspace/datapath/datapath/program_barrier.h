// Waiting until no BPF program that started before the call still runs
// (an RCU grace period), for writers that double-buffer map entries:
// write the slot no program reads, wait, then flip. Updating a one-slot
// ARRAY_OF_MAPS waits for a grace period in the kernel (synchronize_rcu),
// so the barrier is a private such map, updated with the same tiny inner
// map each time.
#pragma once

#include <string>

#include "common/unique_fd.h"

namespace shhim::datapath {

class ProgramBarrier {
public:
    // `name` prefixes the two private maps (at most 10 characters). Throws Error.
    explicit ProgramBarrier(const std::string& name);

    // Throws Error if the kernel refuses the update.
    void wait() const;

private:
    std::string name_;
    UniqueFd inner_;
    UniqueFd outer_;
};

}  // namespace shhim::datapath
