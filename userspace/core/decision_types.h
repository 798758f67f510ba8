// The vocabulary of the decision engine (decision_engine.h): backend states,
// pools, the evidence that comes in and the Changes that go out, and the
// settings a service's Thresholds resolve to. Pure values, no behaviour
// beyond names and defaults.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy.pb.h"

namespace shhim::core {

// Wall-clock time, injected by the caller: the engine never reads a clock.
// Wall clock (not steady) because states and their "since" survive agent
// restarts through the audit trail.
using EngineTime = std::chrono::system_clock::time_point;
using EngineDuration = std::chrono::milliseconds;

// healthy -> suspect -> ejected -> probing -> healthy (DESIGN.md "core/").
enum class BackendState : std::uint8_t { Healthy, Suspect, Ejected, Probing };
enum class Pool : std::uint8_t { Primary, Fallback };

std::string_view stateName(BackendState state);  // "healthy", "suspect", "ejected", "probing"
std::optional<BackendState> stateFromName(std::string_view name);
std::string_view poolName(Pool pool);             // "primary", "fallback"
std::optional<Pool> poolFromName(std::string_view name);

// Hard evidence about one connection or response (issue 4 item 2).
enum class FailureKind : std::uint8_t { Refused, SynTimeout, Reset, IcmpUnreachable, ServerError, Nack };
std::string_view failureKindName(FailureKind kind);  // "refused", "syn_timeout", ... as the event kinds

// One named number behind a decision: counts, rates, thresholds, scores.
struct EvidenceItem {
    std::string name;
    double value = 0;
    bool operator==(const EvidenceItem&) const = default;
};

// One change the engine made; the agent applies it to the kernel maps and
// writes it to the audit trail. `backend` is empty for a service's pool change.
struct Change {
    EngineTime time;
    std::string service;
    std::string backend;
    std::string before;  // state ("healthy", "drained", ...) or pool ("primary", ...); "" when added
    std::string after;   // "" when removed
    std::string action;  // "eject", "suspect", "recover", "probe", "restore", "drain", "undrain", ...
    std::string actor;   // "engine", "kernel" or "uid:N"
    std::string reason;  // one line for people
    std::vector<EvidenceItem> evidence;
};

// Per-backend counts of one tick (deltas since the previous tick).
// 4xx responses are the client's doing and are not failures: they are
// counted in `client_errors` only to say so in the evidence.
struct WindowSample {
    std::string service;
    std::string backend;
    std::uint64_t requests = 0;        // requests (or connection attempts for tcp)
    std::uint64_t connect_failures = 0; // refused, SYN timeouts, ICMP unreachable
    std::uint64_t resets = 0;
    std::uint64_t server_errors = 0;   // HTTP 5xx
    std::uint64_t nacks = 0;           // MLLP AE/AR
    std::uint64_t client_errors = 0;   // HTTP 4xx: not failures
    std::optional<double> p99_ms;      // of this tick's responses; unset: none measured
    std::optional<double> score;       // anomaly score (anomaly_engine.h); >= anomaly_score is anomalous
    std::string score_drivers;         // what drives an anomalous score, for the reason ("p99 latency ...")

    std::uint64_t failures() const { return connect_failures + resets + server_errors + nacks; }
};

// A service's Thresholds with the engine's defaults filled in.
struct ServiceThresholds {
    std::optional<double> p99_latency_ms;  // unset: latency is not judged
    double error_rate = 0.2;
    std::uint32_t min_requests = 20;
    EngineDuration window{10'000};
    std::uint32_t consecutive_failures = 5;  // 1 for life-critical and emergency
    EngineDuration ejection{30'000};
    double max_ejected_fraction = 0.5;
    std::optional<EngineDuration> fallback_hold;  // unset: EngineSettings::fallback_hold
};

// Unset fields take the defaults above; `service_class` picks the
// consecutive_failures default (issue 4 item 2: 1 for life-critical and emergency).
ServiceThresholds resolveThresholds(const v1::Thresholds& thresholds, std::string_view service_class);

// Engine-wide settings the policy does not (yet) carry.
struct EngineSettings {
    std::uint32_t bad_windows_to_eject = 3;     // consecutive degraded windows: suspect at 1, eject at this
    std::uint32_t max_backoff_doublings = 6;    // ejection <= ejection_ms * 2^6
    EngineDuration max_ejection{3'600'000};     // and never longer than an hour
    EngineDuration backoff_reset{600'000};      // healthy this long: the next ejection is short again
    double fallback_below = 0.5;                // primary's serving share below this: fallback
    EngineDuration fallback_hold{30'000};       // primary serving again this long: back to primary
    double anomaly_score = 1.0;                 // WindowSample::score at or above: anomalous
    std::uint32_t anomalous_ticks_to_eject = 5; // anomalous ticks in a row that eject (drain early)
};

// An engineer's drain of one backend, or reroute of one service.
struct ManualHold {
    std::string actor;
    std::string reason;
    EngineTime since;
    std::optional<EngineTime> until;  // unset: until undone
    bool operator==(const ManualHold&) const = default;
};

}  // namespace shhim::core
