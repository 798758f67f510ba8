#include "report.hpp"

#include "support/json.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

namespace shhim::loadgen {

namespace {

// Error outcome names, in report order, for requests and for --connect-only.
constexpr std::array<std::string_view, 8> kRequestErrorNames = {
    "connect_refused", "connect_timeout", "connect_error", "reset", "timeout", "eof", "protocol_error", "other_error"};
constexpr std::array<std::string_view, 4> kConnectOnlyNames = {"connected", "refused", "timeout", "other_error"};

std::string code_text(const std::array<char, 4>& code) { return std::string(code.data()); }

std::string counts_object(const std::map<std::string, std::uint64_t>& counts)
{
    std::string json = "{";
    for (const auto& [key, n] : counts)
        json += (json.size() > 1 ? "," : "") + tools::json_quote(key) + ":" + std::to_string(n);
    return json + "}";
}

std::string stats_object(const LatencyStats& stats)
{
    if (stats.samples == 0)
        return "{\"samples\":0,\"p50_seconds\":null,\"p90_seconds\":null,\"p99_seconds\":null,"
               "\"mean_seconds\":null,\"min_seconds\":null,\"max_seconds\":null}";
    return "{\"samples\":" + std::to_string(stats.samples) + ",\"p50_seconds\":" + tools::json_number(stats.p50) +
           ",\"p90_seconds\":" + tools::json_number(stats.p90) + ",\"p99_seconds\":" + tools::json_number(stats.p99) +
           ",\"mean_seconds\":" + tools::json_number(stats.mean) + ",\"min_seconds\":" + tools::json_number(stats.min) +
           ",\"max_seconds\":" + tools::json_number(stats.max) + "}";
}

std::string outcomes_object(const Options& options, const RunResult& run)
{
    std::map<std::string, std::uint64_t> named;
    std::map<std::string, std::uint64_t> http_status;
    std::map<std::string, std::uint64_t> mllp_ack;
    for (const auto& record : run.records) {
        if (record.outcome == OutcomeKind::NotSent)
            continue;
        if (record.outcome == OutcomeKind::Response)
            ++(options.protocol == Protocol::Http ? http_status : mllp_ack)[code_text(record.code)];
        else
            ++named[outcome_name(record, options.connect_only)];
    }
    std::string json = "{";
    if (options.connect_only) {
        for (const auto& name : kConnectOnlyNames)
            json += (json.size() > 1 ? "," : "") + tools::json_quote(name) + ":" + std::to_string(named[std::string(name)]);
        return json + "}";
    }
    json += "\"http_status\":" + counts_object(http_status) + ",\"mllp_ack\":" + counts_object(mllp_ack);
    for (const auto& name : kRequestErrorNames)
        json += "," + tools::json_quote(name) + ":" + std::to_string(named[std::string(name)]);
    return json + "}";
}

std::string requested_object(const Options& options)
{
    const auto optional_number = [](const std::optional<double>& value) {
        return value ? tools::json_number(*value) : std::string("null");
    };
    const auto mix_for = [&](Protocol protocol) {
        return options.mix && options.protocol == protocol ? tools::json_quote(options.mix->to_string())
                                                           : std::string("null");
    };
    return "{\"count\":" + (options.rate ? std::string("null") : std::to_string(options.count)) +
           ",\"rate_per_second\":" + optional_number(options.rate) +
           ",\"duration_seconds\":" + optional_number(options.duration_s) + ",\"status_mix\":" +
           mix_for(Protocol::Http) + ",\"ack_mix\":" + mix_for(Protocol::Mllp) + "}";
}

std::string record_json(const RequestRecord& record, bool connect_only)
{
    std::string json = "{\"start_unix_ns\":" + std::to_string(record.start_unix_ns) + ",\"latency_ns\":" +
                       (record.latency_ns >= 0 ? std::to_string(record.latency_ns) : "null") +
                       ",\"outcome\":" + tools::json_quote(outcome_name(record, connect_only));
    if (record.requested[0] != '\0')
        json += ",\"requested\":" + tools::json_quote(code_text(record.requested));
    if (record.connect_ns >= 0 && !connect_only)
        json += ",\"connect_ns\":" + std::to_string(record.connect_ns);
    return json + "}";
}

} // namespace

LatencyStats latency_stats(std::vector<std::int64_t> samples_ns)
{
    LatencyStats stats;
    if (samples_ns.empty())
        return stats;
    std::sort(samples_ns.begin(), samples_ns.end());
    const auto n = samples_ns.size();
    // Nearest rank: the smallest sample with at least q of all samples at or below it.
    const auto rank = [&](double q) {
        const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(n)));
        return static_cast<double>(samples_ns[std::clamp<std::size_t>(k, 1, n) - 1]) / 1e9;
    };
    stats.samples = n;
    stats.p50 = rank(0.50);
    stats.p90 = rank(0.90);
    stats.p99 = rank(0.99);
    stats.min = static_cast<double>(samples_ns.front()) / 1e9;
    stats.max = static_cast<double>(samples_ns.back()) / 1e9;
    const long double sum = std::accumulate(samples_ns.begin(), samples_ns.end(), 0.0L);
    stats.mean = static_cast<double>(sum / static_cast<long double>(n) / 1e9L);
    return stats;
}

std::string outcome_name(const RequestRecord& record, bool connect_only)
{
    switch (record.outcome) {
    case OutcomeKind::NotSent: return "not_sent";
    case OutcomeKind::Response: return code_text(record.code);
    case OutcomeKind::Connected: return "connected";
    case OutcomeKind::ConnectRefused: return connect_only ? "refused" : "connect_refused";
    case OutcomeKind::ConnectTimeout: return connect_only ? "timeout" : "connect_timeout";
    case OutcomeKind::ConnectError: return connect_only ? "other_error" : "connect_error";
    case OutcomeKind::Reset: return "reset";
    case OutcomeKind::Timeout: return "timeout";
    case OutcomeKind::Eof: return "eof";
    case OutcomeKind::ProtocolError: return "protocol_error";
    case OutcomeKind::OtherError: return "other_error";
    }
    return "other_error";
}

Tally tally(const RunResult& run)
{
    Tally t;
    t.planned = run.records.size();
    for (const auto& record : run.records) {
        if (record.outcome == OutcomeKind::NotSent)
            continue;
        ++t.sent;
        t.written += record.written ? 1 : 0;
        if (record.outcome == OutcomeKind::Response || record.outcome == OutcomeKind::Connected)
            ++t.completed;
        else
            ++t.errors;
    }
    return t;
}

std::string report_json(const Options& options, const RunResult& run)
{
    const auto t = tally(run);
    std::vector<std::int64_t> latencies, connects;
    for (const auto& record : run.records) {
        if (record.latency_ns >= 0)
            latencies.push_back(record.latency_ns);
        if (record.connect_ns >= 0)
            connects.push_back(record.connect_ns);
    }
    const bool http = options.protocol == Protocol::Http;
    std::string json = "{\n";
    const auto field = [&](std::string_view name, const std::string& value) {
        json += "  " + tools::json_quote(name) + ": " + value + ",\n";
    };
    field("tool", "\"shhim-loadgen\"");
    field("target", tools::json_quote(options.target.to_string()));
    field("protocol", tools::json_quote(options.connect_only ? "tcp" : to_string(options.protocol)));
    field("target_protocol", tools::json_quote(to_string(options.protocol)));
    field("mode", options.connect_only ? "\"connect-only\"" : options.rate ? "\"rate\"" : "\"count\"");
    field("connection", tools::json_quote(options.connect_only ? "new" : to_string(options.connection)));
    field("concurrency", std::to_string(options.concurrency));
    field("timeout_ms", std::to_string(options.timeout.count()));
    if (http && !options.connect_only) {
        field("method", tools::json_quote(options.method));
        field("path", tools::json_quote(options.path));
    }
    field("requested", requested_object(options));
    field("planned", std::to_string(t.planned));
    field("sent", std::to_string(t.sent));
    field("not_sent", std::to_string(t.planned - t.sent));
    field("written", std::to_string(t.written));
    field("completed", std::to_string(t.completed));
    field("errors", std::to_string(t.errors));
    field("interrupted", run.interrupted ? "true" : "false");
    field("connections_opened", std::to_string(run.connections_opened));
    field("outcomes", outcomes_object(options, run));
    field("latency", stats_object(latency_stats(latencies)));
    field("connect_latency", stats_object(latency_stats(connects)));
    field("started_unix_ns", std::to_string(run.started_unix_ns));
    field("wall_seconds", tools::json_number(run.wall_seconds));
    field("max_start_lag_seconds", options.rate ? tools::json_number(run.max_start_lag_seconds) : "null");
    std::string examples = "[";
    for (const auto& example : run.error_examples)
        examples += (examples.size() > 1 ? "," : "") + tools::json_quote(example);
    field("error_examples", examples + "]");
    if (options.per_request) {
        json += "  \"requests\": [";
        bool first = true;
        for (const auto& record : run.records) {
            json += first ? "\n    " : ",\n    ";
            json += record_json(record, options.connect_only);
            first = false;
        }
        json += "\n  ],\n";
    }
    json.resize(json.size() - 2); // the last ",\n"
    return json + "\n}\n";
}

std::string summary_line(const Options& options, const RunResult& run)
{
    const auto t = tally(run);
    std::map<std::string, std::uint64_t> outcomes;
    std::vector<std::int64_t> latencies;
    for (const auto& record : run.records) {
        if (record.outcome != OutcomeKind::NotSent)
            ++outcomes[outcome_name(record, options.connect_only)];
        if (record.latency_ns >= 0)
            latencies.push_back(record.latency_ns);
    }
    std::string line = "shhim-loadgen: " + std::to_string(t.sent) + "/" + std::to_string(t.planned) + " sent to " +
                       std::string(options.connect_only ? "tcp" : to_string(options.protocol)) + " " +
                       options.target.to_string() + ":";
    for (const auto& [name, n] : outcomes)
        line += " " + name + "=" + std::to_string(n);
    const auto stats = latency_stats(std::move(latencies));
    if (stats.samples > 0) {
        char text[96];
        std::snprintf(text, sizeof text, "; latency p50 %.3f ms p99 %.3f ms", stats.p50 * 1e3, stats.p99 * 1e3);
        line += text;
    }
    if (run.interrupted)
        line += " (interrupted)";
    return line;
}

} // namespace shhim::loadgen
