#include "core/decision_types.h"

#include <array>
#include <utility>

namespace shhim::core {
namespace {

constexpr std::array<std::pair<BackendState, std::string_view>, 4> kStateNames{{
    {BackendState::Healthy, "healthy"},
    {BackendState::Suspect, "suspect"},
    {BackendState::Ejected, "ejected"},
    {BackendState::Probing, "probing"},
}};

constexpr std::array<std::pair<Pool, std::string_view>, 2> kPoolNames{{
    {Pool::Primary, "primary"},
    {Pool::Fallback, "fallback"},
}};

// The kernel's event kinds (shhim.v1.Event.kind) for the same evidence.
constexpr std::array<std::pair<FailureKind, std::string_view>, 6> kFailureNames{{
    {FailureKind::Refused, "refused"},
    {FailureKind::SynTimeout, "syn_timeout"},
    {FailureKind::Reset, "reset"},
    {FailureKind::IcmpUnreachable, "icmp_error"},
    {FailureKind::ServerError, "http_5xx"},
    {FailureKind::Nack, "mllp_nack"},
}};

template <typename Enum, std::size_t N>
std::string_view nameOf(const std::array<std::pair<Enum, std::string_view>, N>& names, Enum value)
{
    for (const auto& [v, name] : names)
        if (v == value)
            return name;
    return "unknown";
}

template <typename Enum, std::size_t N>
std::optional<Enum> valueOf(const std::array<std::pair<Enum, std::string_view>, N>& names, std::string_view name)
{
    for (const auto& [v, n] : names)
        if (n == name)
            return v;
    return std::nullopt;
}

}  // namespace

std::string_view stateName(BackendState state) { return nameOf(kStateNames, state); }
std::optional<BackendState> stateFromName(std::string_view name) { return valueOf(kStateNames, name); }
std::string_view poolName(Pool pool) { return nameOf(kPoolNames, pool); }
std::optional<Pool> poolFromName(std::string_view name) { return valueOf(kPoolNames, name); }
std::string_view failureKindName(FailureKind kind) { return nameOf(kFailureNames, kind); }

ServiceThresholds resolveThresholds(const v1::Thresholds& t, std::string_view service_class)
{
    ServiceThresholds out;
    if (service_class == "life-critical" || service_class == "emergency")
        out.consecutive_failures = 1;
    if (t.has_p99_latency_ms())
        out.p99_latency_ms = t.p99_latency_ms();
    if (t.has_error_rate())
        out.error_rate = t.error_rate();
    if (t.has_min_requests())
        out.min_requests = t.min_requests();
    if (t.has_window_ms())
        out.window = EngineDuration(t.window_ms());
    if (t.has_consecutive_failures())
        out.consecutive_failures = t.consecutive_failures();
    if (t.has_ejection_ms())
        out.ejection = EngineDuration(t.ejection_ms());
    if (t.has_max_ejected_fraction())
        out.max_ejected_fraction = t.max_ejected_fraction();
    if (t.has_fallback_hold_ms())
        out.fallback_hold = EngineDuration(t.fallback_hold_ms());
    return out;
}

}  // namespace shhim::core
