#include "core/trace_replay.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "core/tick_judge.h"

namespace shhim::core {
namespace {

EngineTime timeOf(std::int64_t unix_ms) { return EngineTime{} + std::chrono::milliseconds(unix_ms); }

// The engine needs a policy: the trace's one service with every backend it
// names, all primary, its class as recorded, default thresholds.
v1::Policy policyOf(const Trace& trace, std::vector<std::string>& backends)
{
    v1::Policy policy;
    policy.set_schema_version(1);
    policy.set_name("replay");
    auto* service = policy.add_services();
    service->set_name(trace.label.service());
    service->set_address("198.18.255.1:1");
    for (const auto& tick : trace.ticks)
        for (const auto& b : tick.backends()) {
            if (b.service() != trace.label.service())
                continue;
            if (std::find(backends.begin(), backends.end(), b.backend()) == backends.end()) {
                backends.push_back(b.backend());
                service->mutable_backends()->add_primary(b.backend());
            }
            if (service->class_().empty())
                service->set_class_(b.service_class());
            service->set_protocol(b.application() ? v1::APP_PROTOCOL_HTTP : v1::APP_PROTOCOL_TCP);
        }
    return policy;
}

std::string shortened(const std::string& text, std::size_t max)
{
    return text.size() <= max ? text : text.substr(0, max - 3) + "...";
}

std::string twoDecimals(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

}  // namespace

TraceResult replayTrace(const Trace& trace, const ReplayOptions& options)
{
    const v1::TraceLabel& label = trace.label;
    TraceResult out;
    out.name = label.name();
    out.kind = label.kind();
    out.factor = label.factor();
    out.failure = label.failure();
    out.ticks = trace.ticks.size();
    if (!trace.ticks.empty())
        out.seconds = static_cast<double>(trace.ticks.back().unix_ms() - trace.ticks.front().unix_ms()) / 1000.0;

    std::vector<std::string> backends;
    const v1::Policy policy = policyOf(trace, backends);
    if (label.failure() && std::find(backends.begin(), backends.end(), label.backend()) == backends.end())
        throw TraceError(trace.source + ": the labelled backend " + label.backend() + " of service " +
                         label.service() + " never appears in the trace");
    AnomalyEngine anomaly(options.anomaly, options.model);
    DecisionEngine decisions(options.engine);
    if (!trace.ticks.empty())
        decisions.applyPolicy(policy, timeOf(trace.ticks.front().unix_ms()));

    const auto inFault = [&](const std::string& backend, std::int64_t unix_ms) {
        return label.failure() && backend == label.backend() && unix_ms >= label.fault_start_unix_ms() &&
               (label.fault_end_unix_ms() == 0 || unix_ms <= label.fault_end_unix_ms());
    };
    std::map<std::string, bool> alarmed;  // per backend: the previous tick was an alarm
    std::size_t ticks_into_fault = 0;
    std::int64_t previous_ms = 0;
    std::optional<std::int64_t> subject_ejected_ms;
    for (std::size_t i = 0; i < trace.ticks.size(); ++i) {
        const v1::RecordedTick& tick = trace.ticks[i];
        if (tick.unix_ms() < previous_ms)
            throw TraceError(trace.source + ": tick " + std::to_string(i + 2) + " goes back in time");
        previous_ms = tick.unix_ms();
        std::vector<BackendTick> ticks;
        for (auto& t : backendTicks(tick))
            if (t.id.service == label.service())
                ticks.push_back(std::move(t));
        const bool after_start = label.failure() && tick.unix_ms() >= label.fault_start_unix_ms();
        if (after_start)
            ++ticks_into_fault;
        const auto detect = [&](std::string by) {
            if (out.detect_ticks || !after_start)
                return;
            out.detect_ticks = ticks_into_fault;
            out.detect_seconds = static_cast<double>(tick.unix_ms() - label.fault_start_unix_ms()) / 1000.0;
            out.detected_by = std::move(by);
        };

        const TickJudgement judged =
            judgeTick(anomaly, decisions, timeOf(tick.unix_ms()), ticks, options.anomaly_acts);
        for (std::size_t k = 0; k < ticks.size(); ++k) {
            const std::string& backend = ticks[k].id.backend;
            const double score = judged.scores[k].score;
            const bool alarm = score >= options.engine.anomaly_score;
            const bool fault = inFault(backend, tick.unix_ms());
            if (!fault)
                out.peak_normal_score = std::max(out.peak_normal_score, score);
            if (alarm && !alarmed[backend]) {
                ++out.alarm_episodes;
                if (!fault)
                    ++out.false_alarms;
                if (!fault && out.false_alarm_notes.size() < kFalseAlarmNotes)
                    out.false_alarm_notes.push_back(
                        "t=" + twoDecimals(static_cast<double>(tick.unix_ms() - trace.ticks.front().unix_ms()) / 1000.0) +
                        "s " + backend + " score " + twoDecimals(score) + ": " + anomaly.driversText(label.service(), backend));
            }
            alarmed[backend] = alarm;
            if (alarm && fault)
                detect("score " + twoDecimals(score) + ": " + anomaly.driversText(label.service(), backend));
        }
        for (const Change& change : judged.changes) {
            if (change.action != "eject" || change.actor != "engine")
                continue;
            ++out.reroutes;
            const bool fault = inFault(change.backend, tick.unix_ms());
            if (!fault)
                ++out.false_reroutes;
            if (fault) {
                detect("engine: " + shortened(change.reason, 160));
                if (!subject_ejected_ms)
                    subject_ejected_ms = tick.unix_ms();
            }
        }
    }
    if (label.hard_failure_unix_ms() > 0 && subject_ejected_ms)
        out.drained_before_failure_s =
            static_cast<double>(label.hard_failure_unix_ms() - *subject_ejected_ms) / 1000.0;
    return out;
}

SuiteTotals summarize(std::span<const TraceResult> results)
{
    SuiteTotals t;
    std::vector<double> latency_x10;
    for (const auto& r : results) {
        ++t.traces;
        t.hours += r.seconds / 3600.0;
        t.alarm_episodes += r.alarm_episodes;
        t.false_alarms += r.false_alarms;
        t.reroutes += r.reroutes;
        t.false_reroutes += r.false_reroutes;
        if (!r.failure)
            continue;
        ++t.failures;
        if (r.detect_ticks)
            ++t.detected;
        if (r.kind == "latency" && r.factor >= 10)
            latency_x10.push_back(r.detect_ticks ? static_cast<double>(*r.detect_ticks) : 1e9);
    }
    t.recall = t.failures ? static_cast<double>(t.detected) / static_cast<double>(t.failures) : 1.0;
    t.precision = t.alarm_episodes
                      ? static_cast<double>(t.alarm_episodes - t.false_alarms) / static_cast<double>(t.alarm_episodes)
                      : 1.0;
    t.false_reroutes_per_hour = t.hours > 0 ? static_cast<double>(t.false_reroutes) / t.hours : 0.0;
    if (!latency_x10.empty()) {
        std::sort(latency_x10.begin(), latency_x10.end());
        const std::size_t n = latency_x10.size();
        t.median_ticks_latency_x10 = n % 2 ? latency_x10[n / 2] : (latency_x10[n / 2 - 1] + latency_x10[n / 2]) / 2;
    }
    return t;
}

std::vector<std::string> failedChecks(std::span<const TraceResult> results, const SuiteTotals& totals)
{
    std::vector<std::string> failed;
    for (const auto& r : results) {
        if (r.failure && !r.detect_ticks)
            failed.push_back(r.name + ": the " + r.kind + " fault was not detected");
        if (!r.failure && r.reroutes > 0)
            failed.push_back(r.name + ": " + std::to_string(r.reroutes) + " reroute(s) on a " + r.kind +
                             " trace (not a failure)");
        if (r.kind == "brownout" && !(r.drained_before_failure_s && *r.drained_before_failure_s > 0))
            failed.push_back(r.name + ": the browning-out backend was not drained before it died");
    }
    if (!totals.median_ticks_latency_x10)
        failed.push_back("no latency x10 trace in the suite");
    else if (*totals.median_ticks_latency_x10 > 3)
        failed.push_back("median ticks to detect a latency x10 fault is " +
                         std::to_string(*totals.median_ticks_latency_x10) + " (bar: 3)");
    return failed;
}

}  // namespace shhim::core
