// Flow log (issue 6, `shhimd --flow-log FILE`), the pure parts: which
// flows to write on each scan of the kernel's flow table, and the rotation
// rule and file names. The agent reads the table and the clock, and writes
// the lines (agent/flow_log.h).
//
// A flow is written
//  - once when it ends: a TCP flow in state closing (FIN) or closed (RST,
//    refused) that has been quiet for a whole scan interval, so the last
//    ACKs are counted; any flow idle for `idle_end_ns` (UDP, ICMP, TCP
//    without a FIN);
//  - once when it leaves the kernel's table (LRU eviction) before it ended,
//    with the counts of the last scan that saw it;
//  - every `periodic_ns` while it is still running (long flows).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shhim_abi.h"

namespace shhim::core {

struct FlowLogTiming {
    std::uint64_t periodic_ns = 10'000'000'000ull;   // a long flow's record every 10 s
    std::uint64_t idle_end_ns = 60'000'000'000ull;   // quiet this long: ended
};

enum class FlowLogReason { Ended, Evicted, Periodic };

struct FlowLogEntry {
    shhim_flow_key key;
    shhim_flow flow;
    FlowLogReason reason;
};

// Remembers what it saw last scan. Not thread-safe: one caller, the tick.
class FlowLogTracker {
public:
    explicit FlowLogTracker(FlowLogTiming timing = {}) : timing_(timing) {}

    // One scan: every flow in the table now, at monotonic time now_ns.
    // Returns the records to write, in table order, evictions last.
    std::vector<FlowLogEntry> scan(const std::vector<std::pair<shhim_flow_key, shhim_flow>>& flows,
                                   std::uint64_t now_ns);

    std::size_t tracked() const { return seen_.size(); }

private:
    using KeyBytes = std::array<std::uint8_t, sizeof(shhim_flow_key)>;
    struct Seen {
        shhim_flow flow;
        std::uint64_t last_written_ns = 0;  // monotonic; 0: not written yet
        bool ended = false;                 // its end record is written
        bool present = false;               // in the table at this scan
    };

    FlowLogTiming timing_;
    std::map<KeyBytes, Seen> seen_;
};

// --- rotation: FILE, FILE.1 (newest rotated) .. FILE.keep (oldest) ---

struct RotationLimits {
    std::uint64_t max_bytes = 100ull * 1000 * 1000;
    std::uint32_t keep = 5;
};

// Whether a line of line_bytes (newline included) must go into a fresh file:
// the live file would exceed max_bytes. A non-empty file only, so a line is
// never dropped and never split.
bool needsRotation(std::uint64_t file_bytes, std::uint64_t line_bytes, const RotationLimits& limits);

// FILE.n; n = 0 is FILE itself.
std::string rotatedName(const std::string& file, std::uint32_t n);

// What rotating does, in order: remove FILE.keep (the oldest, if keep > 0;
// FILE itself when keep is 0), then rename FILE.(keep-1) -> FILE.keep, ...,
// FILE -> FILE.1.
struct RotationStep {
    std::string from;
    std::string to;  // "" : remove `from`
};
std::vector<RotationStep> rotationPlan(const std::string& file, std::uint32_t keep);

// --flow-log-max-size in MB (decimal: 0.05 is 50,000 bytes) -> bytes;
// throws std::invalid_argument below 0.001 MB (a record must fit) or above 1e6.
std::uint64_t flowLogMaxBytes(double megabytes);

}  // namespace shhim::core
