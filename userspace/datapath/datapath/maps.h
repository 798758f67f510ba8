// Typed access to the five shared maps, opened from their pins. Reads are
// plain bpf() syscalls on fds this object owns, so a const Maps may be used
// from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "shhim_abi.h"

namespace shhim::datapath {

struct FlowRecord {
    shhim_flow_key key;
    shhim_flow flow;
};

struct BackendRecord {
    shhim_endpoint endpoint;
    shhim_backend backend;
};

struct MapFill {
    std::string name;
    std::uint64_t entries;
    std::uint64_t max_entries;
};

using Counters = std::array<std::uint64_t, SHHIM_CTR_MAX>;

class Maps {
public:
    // Opens <pin_root>/shhim_{flows,backends,counters,events,config};
    // throws Error naming the missing or unreadable pin.
    static Maps openPinned(const std::string& pin_root);

    // Every entry, read with batched lookups where the kernel has them.
    // Entries the kernel deletes meanwhile (LRU) are simply absent.
    std::vector<FlowRecord> flows() const;
    std::vector<BackendRecord> backends() const;
    // Each counter summed over all possible CPUs.
    Counters counters() const;

    shhim_config config() const;
    void writeConfig(const shhim_config& config) const;

    // shhim_flows and shhim_backends: current entries and capacity.
    std::vector<MapFill> fills() const;
    std::uint32_t flowCapacity() const;

    int flowsFd() const { return flows_.get(); }
    int backendsFd() const { return backends_.get(); }
    int countersFd() const { return counters_.get(); }
    int eventsFd() const { return events_.get(); }
    int configFd() const { return config_.get(); }

private:
    Maps() = default;

    UniqueFd flows_;
    UniqueFd backends_;
    UniqueFd counters_;
    UniqueFd events_;
    UniqueFd config_;
};

// Reads the config entry of a pinned shhim_config map; false if there is
// no such pin (other failures throw).
bool readPinnedConfig(const std::string& pin_root, shhim_config& out);

}  // namespace shhim::datapath
