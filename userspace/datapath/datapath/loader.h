// Loading, attaching, reusing and removing shhim's BPF programs.
//
// Datapath::start() is the one entry point of the agent:
//  - if <pin_root>/shhim_config carries this build's id and every program
//    is pinned, nothing is loaded: the pinned maps and programs are opened
//    and the attachments that already exist are kept, so traffic and
//    counters are not disturbed by an agent restart (issue 2 item 6);
//  - otherwise every shipped BPF object is opened with pin_root_path (maps
//    are shared, and reused when pinned), loaded and its programs pinned;
//    existing attachments are switched to the new programs atomically
//    where the kernel can (XDP and cgroup link update, TC replace).
// Either way the requested attachments are then made to exist, and
// attachments for interfaces no longer requested are removed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datapath/log.h"
#include "datapath/maps.h"
#include "shhim_abi.h"

namespace shhim::datapath {

enum class XdpMode {
    Auto,     // native (driver) mode if the driver has it, else generic
    Native,
    Generic,  // skb mode: any interface, slower
};

struct LoadOptions {
    std::string pin_root = SHHIM_PIN_ROOT;
    std::vector<std::string> interfaces;      // XDP ingress + TC egress on each
    std::string cgroup_path;                  // cgroup v2 directory for sockops; "" = none
    bool tracepoints = true;                  // tp_btf TCP tracepoints
    std::uint32_t flow_entries = 0;           // 0: size of the pinned table, else the default
    std::uint64_t syn_timeout_ns = 0;         // 0: the kernel default (1 s)
    XdpMode xdp_mode = XdpMode::Auto;
    LogFn log;                                // may be empty
};

struct Attachment {
    std::string hook;        // "xdp", "tc-egress", "sockops", "tp_btf"
    std::string target;      // interface name, cgroup path or tracepoint
    std::string program;     // the kernel's name of the attached program
    std::uint32_t program_id = 0;
    std::string mode;        // XDP: "native" | "generic"; otherwise ""
};

class Datapath {
public:
    // Loads or reuses, attaches, writes shhim_config. Throws Error.
    static Datapath start(const LoadOptions& options);

    const Maps& maps() const { return maps_; }
    const std::string& pinRoot() const { return pin_root_; }
    std::uint64_t buildId() const { return build_id_; }
    // True when the programs of a previous run were reused, not loaded.
    bool reusedPinnedState() const { return reused_; }

    // What is attached now, asked from the kernel (not remembered).
    std::vector<Attachment> attachments() const;

private:
    Datapath(std::string pin_root, std::string cgroup_path, Maps maps, std::uint64_t build_id, bool reused);

    std::string pin_root_;
    std::string cgroup_path_;
    Maps maps_;
    std::uint64_t build_id_;
    bool reused_;
};

struct DetachReport {
    std::vector<std::string> removed;   // "XDP link on veth0", "map shhim_flows", ...
    std::vector<std::string> problems;  // what could not be removed, and why
};

// Removes every TC filter, link, program and map pinned under pin_root and
// the directories themselves. Idempotent: an absent pin root is success
// with nothing removed. Refuses (throws) if pin_root is not on a BPF fs.
DetachReport detach(const std::string& pin_root, const LogFn& log = {});

// 64-bit FNV-1a over the ELF bytes of every shipped BPF object, in a
// fixed order: equal ids mean identical programs and map definitions.
std::uint64_t shippedBuildId();
std::string formatBuildId(std::uint64_t build_id);  // 16 lowercase hex digits

}  // namespace shhim::datapath
