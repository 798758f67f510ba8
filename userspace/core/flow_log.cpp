#include "core/flow_log.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace shhim::core {

std::vector<FlowLogEntry> FlowLogTracker::scan(const std::vector<std::pair<shhim_flow_key, shhim_flow>>& flows,
                                               std::uint64_t now_ns)
{
    std::vector<FlowLogEntry> out;
    for (auto& [key, seen] : seen_)
        seen.present = false;

    for (const auto& [key, flow] : flows) {
        KeyBytes bytes;
        std::memcpy(bytes.data(), &key, sizeof(key));
        auto it = seen_.find(bytes);
        // Same tuple, new first_seen: the kernel made a new entry (the old one
        // was evicted and the tuple reused): a new flow.
        if (it != seen_.end() && it->second.flow.first_seen_ns != flow.first_seen_ns)
            it->second = Seen{};
        if (it == seen_.end())
            it = seen_.emplace(bytes, Seen{}).first;
        Seen& seen = it->second;
        const bool quiet_since_last_scan = seen.flow.last_seen_ns == flow.last_seen_ns && seen.flow.first_seen_ns != 0;
        const bool closed = flow.tcp_state == SHHIM_TCP_CLOSING || flow.tcp_state == SHHIM_TCP_CLOSED;
        const bool idle = now_ns > flow.last_seen_ns && now_ns - flow.last_seen_ns >= timing_.idle_end_ns;
        const bool moved = flow.last_seen_ns != seen.flow.last_seen_ns;
        seen.present = true;

        if (seen.ended) {
            // Ended and written; packets after that (a late retransmit) reopen it.
            if (moved && !closed) {
                seen.ended = false;
                seen.last_written_ns = now_ns;
            }
        } else if ((closed && quiet_since_last_scan) || idle) {
            out.push_back({key, flow, FlowLogReason::Ended});
            seen.ended = true;
            seen.last_written_ns = now_ns;
        } else if (seen.last_written_ns == 0) {
            // First sight: the periodic clock starts with the flow.
            seen.last_written_ns = flow.first_seen_ns ? flow.first_seen_ns : now_ns;
            if (now_ns - seen.last_written_ns >= timing_.periodic_ns && now_ns >= seen.last_written_ns) {
                out.push_back({key, flow, FlowLogReason::Periodic});
                seen.last_written_ns = now_ns;
            }
        } else if (now_ns >= seen.last_written_ns && now_ns - seen.last_written_ns >= timing_.periodic_ns) {
            out.push_back({key, flow, FlowLogReason::Periodic});
            seen.last_written_ns = now_ns;
        }
        seen.flow = flow;
    }

    for (auto it = seen_.begin(); it != seen_.end();) {
        if (it->second.present) {
            ++it;
            continue;
        }
        if (!it->second.ended) {
            shhim_flow_key key;
            std::memcpy(&key, it->first.data(), sizeof(key));
            out.push_back({key, it->second.flow, FlowLogReason::Evicted});
        }
        it = seen_.erase(it);
    }
    return out;
}

bool needsRotation(std::uint64_t file_bytes, std::uint64_t line_bytes, const RotationLimits& limits)
{
    return file_bytes > 0 && file_bytes + line_bytes > limits.max_bytes;
}

std::string rotatedName(const std::string& file, std::uint32_t n)
{
    return n == 0 ? file : file + "." + std::to_string(n);
}

std::vector<RotationStep> rotationPlan(const std::string& file, std::uint32_t keep)
{
    std::vector<RotationStep> plan;
    plan.push_back({rotatedName(file, keep), ""});
    for (std::uint32_t n = keep; n > 0; --n)
        plan.push_back({rotatedName(file, n - 1), rotatedName(file, n)});
    return plan;
}

std::uint64_t flowLogMaxBytes(double megabytes)
{
    if (!std::isfinite(megabytes) || megabytes < 0.001 || megabytes > 1e6)
        throw std::invalid_argument("flow log max size " + std::to_string(megabytes) +
                                    " MB is outside 0.001..1000000 MB");
    return static_cast<std::uint64_t>(std::llround(megabytes * 1e6));
}

}  // namespace shhim::core
