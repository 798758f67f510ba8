// Stress mode decisions (issue 3 item 5): `shhimctl stress on|off|auto`.
//
//   off   level 0: nothing is shed.
//   on    every shed class is held to its token bucket (level = all ranks).
//   auto  the agent measures, each tick, every interface's egress load
//         against its configured capacity (interfaces without a capacity
//         are not measured) and moves the level one shed rank at a time:
//           up    when the load that still leaves (offered minus shed) has
//                 been at or above enter x capacity for hold_ticks ticks in
//                 a row: the current level is not shedding enough;
//           down  when the offered load (shed bytes included) has stayed below
//                 exit x capacity for hold_ticks ticks: the pressure itself
//                 is gone. Measuring the offered load here, not what leaves,
//                 keeps shedding from switching itself off the moment it works.
//         (The policy's stress.enter_utilization, exit_utilization, hold_ms.)
// Pure: cumulative counters and times come in, the level to write goes out.
// The kernel side (lease, buckets) is in datapath::PolicyMaps::writeStress.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

namespace shhim::core {

enum class StressMode : std::uint8_t { Off = 0, On = 1, Auto = 2 };  // = enum shhim_stress_mode

std::string_view stressModeName(StressMode mode);               // "off", "on", "auto"
std::optional<StressMode> stressModeFromName(std::string_view name);

// Level that sheds every shed rank (SHHIM_STRESS_LEVEL_ALL).
inline constexpr std::uint32_t kStressLevelAll = 255;

// One interface's cumulative egress counters, summed over the classes.
struct LinkLoad {
    std::uint32_t ifindex = 0;
    std::uint64_t capacity_bps = 0;   // 0: not measured
    std::uint64_t bytes = 0;          // offered (every egress byte, shed ones included)
    std::uint64_t drop_bytes = 0;     // shed
};

struct StressConfig {
    double enter = 0.9;               // fraction of capacity
    double exit = 0.75;               // fraction of capacity, below enter
    std::uint32_t hold_ticks = 20;    // hold_ms / tick
    std::uint32_t max_level = 3;      // highest shed rank in the policy
};

class StressController {
public:
    explicit StressController(StressConfig config = {}) : config_(config) {}

    void setConfig(const StressConfig& config);
    // A new mode; `level` seeds auto (e.g. the kernel's level after an agent restart).
    void setMode(StressMode mode, std::uint32_t level = 0);

    // One tick: the level to write now.
    std::uint32_t tick(std::uint64_t now_ns, const std::vector<LinkLoad>& links);

    StressMode mode() const { return mode_; }
    std::uint32_t level() const { return level_; }
    // Highest utilisation of the last tick among measured links (sent, offered).
    double sentUtilisation() const { return sent_utilisation_; }
    double offeredUtilisation() const { return offered_utilisation_; }

private:
    struct Previous {
        std::uint64_t now_ns = 0;
        std::uint64_t bytes = 0;
        std::uint64_t drop_bytes = 0;
    };

    StressConfig config_;
    StressMode mode_ = StressMode::Off;
    std::uint32_t level_ = 0;
    std::uint32_t above_ = 0;          // consecutive ticks at or above the threshold
    std::uint32_t below_ = 0;          // consecutive ticks below the release level
    double sent_utilisation_ = 0;
    double offered_utilisation_ = 0;
    std::map<std::uint32_t, Previous> previous_;
};

}  // namespace shhim::core
