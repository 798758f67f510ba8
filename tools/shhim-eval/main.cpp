// shhim-eval: replays labelled telemetry traces (tests/data/anomaly) through
// the anomaly and decision engines at full speed and prints, per trace,
// whether the fault was detected, how fast, the false alarms and the
// reroutes; then recall, precision and false reroutes per simulated hour.
// --check exits 1 when one of the issue's acceptance checks fails.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/anomaly_model.h"
#include "core/trace_replay.h"
#include "support/json.hpp"
#include "trace_files.h"

namespace {

using namespace shhim;

constexpr const char* kDescription = R"(Replay labelled telemetry traces through shhim's anomaly and decision engines.

Each trace (a .jsonl or .jsonl.gz file: a shhim.v1.TraceLabel line, then the
shhim.v1.RecordedTick lines `shhimd --record` writes) is replayed tick by tick
through the same code the agent runs, at full speed, with the trace's own
timestamps as the clock. Per trace it prints:
  detected    a labelled fault was seen: the score reached the alarm level
              (1.0) on the faulty backend, or the engine ejected it
  ticks/s     time to detect, in ticks and seconds from the fault's start
  false       alarm runs that were not the labelled fault (any backend)
  reroutes    the engine's ejections (false: any not of the faulty backend
              during its fault)
  drained     brownouts: seconds between ejecting the backend and its death
Totals: recall (faults detected), precision (alarm runs that were faults),
false reroutes per simulated hour, median ticks to detect a latency x10 fault.)";

constexpr const char* kExamples = R"(
Examples:
  shhim-eval tests/data/anomaly/traces
  shhim-eval --model models/default.model --check tests/data/anomaly/traces
  shhim-eval -o json latency-x10-a.jsonl.gz | jq .totals
Exit status: 0; 1 when --check finds a failed check; 2 for bad arguments or
an unreadable trace.)";

std::string fixed(double v, int decimals)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string kindText(const core::TraceResult& r)
{
    if ((r.kind == "latency" || r.kind == "surge") && r.factor > 0)
        return r.kind + " x" + fixed(r.factor, r.factor == static_cast<int>(r.factor) ? 0 : 1);
    if (r.kind == "packet_loss" && r.factor > 0)
        return r.kind + " " + fixed(100 * r.factor, 0) + "%";
    return r.kind;
}

void printTable(const std::vector<core::TraceResult>& results, const core::SuiteTotals& t, bool verbose)
{
    std::printf("%-22s %-18s %-5s %-8s %5s %7s %5s %8s %7s  %s\n", "TRACE", "KIND", "FAULT", "DETECTED", "TICKS",
                "SECONDS", "FALSE", "REROUTES", "DRAINED", "DETECTED BY");
    for (const auto& r : results) {
        const std::string detected = !r.failure ? "-" : r.detect_ticks ? "yes" : "NO";
        const std::string ticks = r.detect_ticks ? std::to_string(*r.detect_ticks) : "-";
        const std::string seconds = r.detect_seconds ? fixed(*r.detect_seconds, 2) : "-";
        const std::string reroutes =
            std::to_string(r.reroutes) + (r.false_reroutes ? " (" + std::to_string(r.false_reroutes) + " false)" : "");
        const std::string drained = r.drained_before_failure_s ? fixed(*r.drained_before_failure_s, 1) + "s" : "-";
        std::printf("%-22s %-18s %-5s %-8s %5s %7s %5zu %8s %7s  %s\n", r.name.c_str(), kindText(r).c_str(),
                    r.failure ? "yes" : "no", detected.c_str(), ticks.c_str(), seconds.c_str(), r.false_alarms,
                    reroutes.c_str(), drained.c_str(), r.detected_by.substr(0, 90).c_str());
        if (verbose)
            for (const auto& note : r.false_alarm_notes)
                std::printf("    false alarm %s\n", note.c_str());
    }
    std::printf("\n%zu traces, %.2f simulated hours\n", t.traces, t.hours);
    std::printf("faults:    %zu of %zu detected, recall %.3f\n", t.detected, t.failures, t.recall);
    std::printf("alarms:    %zu runs, %zu false, precision %.3f\n", t.alarm_episodes, t.false_alarms, t.precision);
    std::printf("reroutes:  %zu, %zu false, %.2f false reroutes per simulated hour\n", t.reroutes, t.false_reroutes,
                t.false_reroutes_per_hour);
    if (t.median_ticks_latency_x10)
        std::printf("latency x10: median %.1f ticks to detect\n", *t.median_ticks_latency_x10);
}

template <typename T>
std::string orNull(const std::optional<T>& v)
{
    return v ? tools::json_number(static_cast<double>(*v)) : "null";
}

void printJson(const std::vector<core::TraceResult>& results, const core::SuiteTotals& t,
               const std::vector<std::string>& failed)
{
    std::printf("{\"traces\":[");
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        std::printf(
            "%s{\"name\":%s,\"kind\":%s,\"factor\":%s,\"failure\":%s,\"ticks\":%zu,\"seconds\":%s,"
            "\"detect_ticks\":%s,\"detect_seconds\":%s,\"detected_by\":%s,\"alarm_runs\":%zu,\"false_alarms\":%zu,"
            "\"reroutes\":%zu,\"false_reroutes\":%zu,\"drained_before_failure_s\":%s,\"peak_normal_score\":%s}",
            i ? "," : "", tools::json_quote(r.name).c_str(), tools::json_quote(r.kind).c_str(), tools::json_number(r.factor).c_str(),
            r.failure ? "true" : "false", r.ticks, tools::json_number(r.seconds).c_str(), orNull(r.detect_ticks).c_str(),
            orNull(r.detect_seconds).c_str(), tools::json_quote(r.detected_by).c_str(), r.alarm_episodes, r.false_alarms,
            r.reroutes, r.false_reroutes, orNull(r.drained_before_failure_s).c_str(),
            tools::json_number(r.peak_normal_score).c_str());
    }
    std::printf("],\"totals\":{\"traces\":%zu,\"hours\":%s,\"failures\":%zu,\"detected\":%zu,\"recall\":%s,"
                "\"alarm_runs\":%zu,\"false_alarms\":%zu,\"precision\":%s,\"reroutes\":%zu,\"false_reroutes\":%zu,"
                "\"false_reroutes_per_hour\":%s,\"median_ticks_latency_x10\":%s},\"failed_checks\":[",
                t.traces, tools::json_number(t.hours).c_str(), t.failures, t.detected, tools::json_number(t.recall).c_str(),
                t.alarm_episodes, t.false_alarms, tools::json_number(t.precision).c_str(), t.reroutes, t.false_reroutes,
                tools::json_number(t.false_reroutes_per_hour).c_str(), orNull(t.median_ticks_latency_x10).c_str());
    for (std::size_t i = 0; i < failed.size(); ++i)
        std::printf("%s%s", i ? "," : "", tools::json_quote(failed[i]).c_str());
    std::printf("]}\n");
}

}  // namespace

int main(int argc, char** argv)
{
    CLI::App app(kDescription, "shhim-eval");
    app.footer(kExamples);
    std::vector<std::string> inputs;
    std::string model_path;
    std::string output = "table";
    bool check = false;
    bool shadow = false;
    bool verbose = false;
    app.add_option("TRACE", inputs, "Labelled trace files, or directories of them")->required()->type_name("FILE|DIR");
    app.add_option("--model", model_path, "Isolation Forest model (shhim-train) for the score; default: none")
        ->type_name("FILE")
        ->check(CLI::ExistingFile);
    app.add_flag("--check", check,
                 "Exit 1 unless every fault is detected, no trace that is not a failure is rerouted, every "
                 "brownout is drained before it dies, and a latency x10 fault is detected in <= 3 ticks (median)");
    app.add_flag("--shadow", shadow, "The decision engine does not see the score (as shhimd --anomaly-shadow)");
    app.add_flag("-v,--verbose", verbose, "Under each trace, its first false alarms with what drove them");
    app.add_option("-o,--output", output, "table or json")->check(CLI::IsMember({"table", "json"}));
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    core::ReplayOptions options;
    options.anomaly_acts = !shadow;
    std::vector<core::TraceResult> results;
    try {
        if (!model_path.empty())
            options.model = core::readModelFile(model_path);
        for (const auto& path : tools::expandTraceArguments(inputs)) {
            const core::Trace trace = core::readTrace(path);
            results.push_back(core::replayTrace(trace, options));
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "shhim-eval: %s\n", e.what());
        return 2;
    }
    const core::SuiteTotals totals = core::summarize(results);
    const std::vector<std::string> failed = core::failedChecks(results, totals);
    if (output == "json") {
        printJson(results, totals, failed);
    } else {
        printTable(results, totals, verbose);
        if (check) {
            std::printf("\nchecks: %s\n", failed.empty() ? "all passed" : "FAILED");
            for (const auto& line : failed)
                std::printf("  - %s\n", line.c_str());
        }
    }
    return check && !failed.empty() ? 1 : 0;
}
