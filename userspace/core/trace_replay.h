// The scenario evaluator's engine (issue 5 item 5): a labelled trace
// replayed tick by tick through judgeTick (the agent's own path from
// counter increases to decisions) at full speed, and what came of it:
// detected or not and how fast, false alarms, reroutes. Pure: the trace's
// timestamps are the engines' clock.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/anomaly_engine.h"
#include "core/decision_engine.h"
#include "core/telemetry_record.h"

namespace shhim::core {

struct ReplayOptions {
    AnomalySettings anomaly;
    EngineSettings engine;
    std::optional<AnomalyModel> model;
    bool anomaly_acts = true;  // false: the decision engine never sees the score
};

struct TraceResult {
    std::string name;
    std::string kind;
    double factor = 0;
    bool failure = false;
    std::size_t ticks = 0;
    double seconds = 0;  // simulated, first tick to last
    // Failures: ticks from the fault's start to its detection (1: the first
    // tick after the fault began) and the time, by the score or the engine.
    std::optional<std::size_t> detect_ticks;
    std::optional<double> detect_seconds;
    std::string detected_by;  // "score: <drivers>" or "engine: <reason>"
    std::size_t alarm_episodes = 0;  // runs of ticks scored >= the threshold, any backend
    std::size_t false_alarms = 0;    // the runs that were not the labelled fault
    std::size_t reroutes = 0;        // the engine's ejections
    std::size_t false_reroutes = 0;  // those not of the faulted backend during its fault
    // Brownout: seconds from the faulted backend's ejection to its hard
    // failure (positive: drained before it died); unset: never ejected.
    std::optional<double> drained_before_failure_s;
    double peak_normal_score = 0;  // the highest score outside the labelled fault
    // The first few false alarms: "t=93.4s 198.18.0.10:8080 score 1.31: p99 latency ..."
    std::vector<std::string> false_alarm_notes;
};

constexpr std::size_t kFalseAlarmNotes = 5;

// Throws TraceError for a trace whose ticks go back in time or never name
// the labelled backend.
TraceResult replayTrace(const Trace& trace, const ReplayOptions& options);

struct SuiteTotals {
    std::size_t traces = 0;
    std::size_t failures = 0;
    std::size_t detected = 0;
    double recall = 0;     // detected / failures
    std::size_t alarm_episodes = 0;
    std::size_t false_alarms = 0;
    double precision = 0;  // true alarm runs / all alarm runs (1 when there are none)
    std::size_t reroutes = 0;
    std::size_t false_reroutes = 0;
    double hours = 0;      // simulated
    double false_reroutes_per_hour = 0;
    // Median ticks to detect over latency faults of x10 or more; unset: none.
    std::optional<double> median_ticks_latency_x10;
};

SuiteTotals summarize(std::span<const TraceResult> results);

// The acceptance checks on a suite: every fault detected, no
// reroute on a trace that is not a failure, every brownout drained before
// it died, median ticks to detect a latency x10 fault <= 3. One line per
// check that failed; empty when all pass.
std::vector<std::string> failedChecks(std::span<const TraceResult> results, const SuiteTotals& totals);

}  // namespace shhim::core
