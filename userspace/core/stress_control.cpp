#include "core/stress_control.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace shhim::core {

std::string_view stressModeName(StressMode mode)
{
    switch (mode) {
    case StressMode::Off:
        return "off";
    case StressMode::On:
        return "on";
    case StressMode::Auto:
        return "auto";
    }
    return "off";
}

std::optional<StressMode> stressModeFromName(std::string_view name)
{
    std::string lower;
    for (const char c : name)
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const StressMode m : {StressMode::Off, StressMode::On, StressMode::Auto})
        if (stressModeName(m) == lower)
            return m;
    return std::nullopt;
}

void StressController::setConfig(const StressConfig& config)
{
    config_ = config;
    if (mode_ == StressMode::Auto)
        level_ = std::min(level_, config_.max_level);
}

void StressController::setMode(StressMode mode, std::uint32_t level)
{
    mode_ = mode;
    above_ = below_ = 0;
    switch (mode) {
    case StressMode::Off:
        level_ = 0;
        break;
    case StressMode::On:
        level_ = kStressLevelAll;
        break;
    case StressMode::Auto:
        level_ = std::min(level, config_.max_level);
        break;
    }
}

std::uint32_t StressController::tick(std::uint64_t now_ns, const std::vector<LinkLoad>& links)
{
    double sent = 0;
    double offered = 0;
    bool measured = false;
    for (const LinkLoad& link : links) {
        if (link.capacity_bps == 0)
            continue;
        const auto it = previous_.find(link.ifindex);
        const Previous now{now_ns, link.bytes, link.drop_bytes};
        if (it == previous_.end()) {
            previous_[link.ifindex] = now;
            continue;
        }
        const Previous before = it->second;
        it->second = now;
        // A counter that went backwards (interface slot reassigned): start over.
        if (now_ns <= before.now_ns || link.bytes < before.bytes || link.drop_bytes < before.drop_bytes)
            continue;
        const double seconds = static_cast<double>(now_ns - before.now_ns) / 1e9;
        const double offered_bytes = static_cast<double>(link.bytes - before.bytes);
        const double shed_bytes = static_cast<double>(link.drop_bytes - before.drop_bytes);
        const double capacity = static_cast<double>(link.capacity_bps);
        offered = std::max(offered, offered_bytes * 8 / seconds / capacity);
        sent = std::max(sent, (offered_bytes - shed_bytes) * 8 / seconds / capacity);
        measured = true;
    }
    if (measured) {
        sent_utilisation_ = sent;
        offered_utilisation_ = offered;
    }
    if (mode_ != StressMode::Auto || !measured)
        return level_;

    if (sent >= config_.enter) {
        below_ = 0;
        if (++above_ >= std::max<std::uint32_t>(config_.hold_ticks, 1)) {
            above_ = 0;
            level_ = std::min(level_ + 1, config_.max_level);
        }
    } else if (offered < config_.exit) {
        above_ = 0;
        if (++below_ >= std::max<std::uint32_t>(config_.hold_ticks, 1)) {
            below_ = 0;
            if (level_ > 0)
                --level_;
        }
    } else {
        // Between the two: the current level holds the link where it should be.
        above_ = below_ = 0;
    }
    return level_;
}

}  // namespace shhim::core
