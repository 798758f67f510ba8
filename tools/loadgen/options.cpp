#include "options.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>

namespace shhim::loadgen {

namespace {

constexpr int kExitBadFlags = 2;

// The flags as typed, before validation.
struct RawFlags {
    std::string http;
    std::string mllp;
    bool connect_only = false;
    std::optional<std::uint64_t> count;
    std::optional<double> rate;
    std::optional<double> duration;
    unsigned concurrency = 1;
    std::string connection = "keepalive";
    std::optional<std::string> method;
    std::optional<std::string> path;
    std::optional<std::string> body;
    std::string status_mix;
    std::string ack_mix;
    long long timeout_ms = 5000;
    std::string report = "-";
    bool no_per_request = false;
};

const char* const kFooter = R"(Modes (exactly one):
  --count N                     exactly N requests (default with a mix: the mix total)
  --rate R --duration S         R per second for S seconds (S <= 600), open loop: request i
                                starts at i/R s; one that cannot start by S + timeout + 1 s
                                is not sent (more --concurrency helps)
Mixes: --status-mix 200:70,404:20,503:10 sends exactly those counts (X-Shhim-Status header),
  --ack-mix AA:8,AE:1,AR:1 likewise (a ZFA|<code> segment); request i asks for slot i of a
  smooth weighted rotation, so counts are exact at any concurrency.
Report (--report FILE, default stdout): JSON with target, protocol, what was sent, outcomes
  (http_status, mllp_ack, connect_refused, connect_timeout, connect_error, reset, timeout,
  eof, protocol_error, other_error; --connect-only: connected, refused, timeout,
  other_error), latency p50/p90/p99/mean/min/max in seconds from just before the request
  write to the first response byte (--connect-only: connect time), and one record per
  request unless --no-per-request. A one-line summary goes to stderr.
Exit: 0 when every planned request was sent (whatever the outcomes), 1 when some were not
  (interrupted, or could not keep up with --rate), 2 for bad flags.
Examples:
  shhim-loadgen --http 127.0.0.1:20080 --status-mix 200:70,404:20,503:10 --concurrency 4
  shhim-loadgen --mllp 127.0.0.1:20575 --rate 50 --duration 10 --connection new
  shhim-loadgen --http 198.18.0.2:9 --connect-only --count 5 --timeout-ms 1000)";

void add_flags(CLI::App& app, RawFlags& raw)
{
    auto* http = app.add_option("--http", raw.http, "Target an HTTP/1.1 service")->type_name("ADDR:PORT");
    auto* mllp = app.add_option("--mllp", raw.mllp, "Target an HL7 v2 MLLP service")->type_name("ADDR:PORT");
    http->excludes(mllp);
    app.add_flag("--connect-only", raw.connect_only, "Only connect and close (outcomes: connected/refused/timeout)");
    app.add_option("--count", raw.count, "Exact number of requests")->type_name("N");
    app.add_option("--rate", raw.rate, "Requests per second (with --duration)")->type_name("R");
    app.add_option("--duration", raw.duration, "Seconds of --rate traffic, at most 600")->type_name("S");
    app.add_option("--concurrency", raw.concurrency, "Requests in flight at once, 1..1024 (default 1; one connection each)")
        ->type_name("C")
        ->check(CLI::Range(1u, 1024u).description(""));
    app.add_option("--connection", raw.connection, "A new TCP connection per request, or kept-alive ones (default)")
        ->type_name("new|keepalive")
        ->check(CLI::IsMember({"new", "keepalive"}).description(""));
    app.add_option("--method", raw.method, "HTTP method (default GET)")->type_name("METHOD");
    app.add_option("--path", raw.path, "HTTP request target (default /fhir/Patient/example)")->type_name("PATH");
    app.add_option("--body", raw.body, "HTTP request body (POST/PUT default: a FHIR Observation)")->type_name("TEXT");
    app.add_option("--status-mix", raw.status_mix, "Exact HTTP status counts to ask for")->type_name("MIX");
    app.add_option("--ack-mix", raw.ack_mix, "Exact MLLP ack code counts to ask for")->type_name("MIX");
    app.add_option("--timeout-ms", raw.timeout_ms,
                   "Connect timeout, and request-to-complete-response timeout (1..600000, default 5000)")
        ->type_name("MS")
        ->check(CLI::Range(1LL, 600000LL).description(""));
    app.add_option("--report", raw.report, "Where the JSON report goes ('-' = stdout)")->type_name("FILE");
    app.add_flag("--no-per-request", raw.no_per_request, "Leave the per-request records out of the report");
}

std::invalid_argument bad(const std::string& message) { return std::invalid_argument(message); }

std::string number_text(double value)
{
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return text;
}

std::shared_ptr<const tools::Mix> parse_mix_flag(const char* flag, const std::string& text, tools::MixKind kind)
{
    if (text.empty())
        return nullptr;
    try {
        return std::make_shared<const tools::Mix>(tools::Mix::parse(text, kind));
    } catch (const std::invalid_argument& e) {
        throw bad(std::string(flag) + " " + e.what());
    }
}

void validate_target(const RawFlags& raw, Options& options)
{
    if (raw.http.empty() == raw.mllp.empty())
        throw bad("give exactly one target: --http ADDR:PORT or --mllp ADDR:PORT");
    const bool http = !raw.http.empty();
    const char* flag = http ? "--http" : "--mllp";
    options.protocol = http ? Protocol::Http : Protocol::Mllp;
    try {
        options.target = tools::parse_endpoint(http ? raw.http : raw.mllp);
    } catch (const std::invalid_argument& e) {
        throw bad(std::string(flag) + " " + e.what());
    }
    if (options.target.port() == 0)
        throw bad(std::string(flag) + " '" + (http ? raw.http : raw.mllp) + "': port 0 is not a destination");
    options.connect_only = raw.connect_only;
}

void validate_content(const RawFlags& raw, Options& options)
{
    const bool http = options.protocol == Protocol::Http;
    if (!http && (raw.method || raw.path || raw.body || !raw.status_mix.empty()))
        throw bad("--method, --path, --body and --status-mix apply to --http targets only");
    if (http && !raw.ack_mix.empty())
        throw bad("--ack-mix applies to --mllp targets only (use --status-mix for HTTP)");
    if (options.connect_only && (!raw.status_mix.empty() || !raw.ack_mix.empty()))
        throw bad("--connect-only sends no requests, so it takes no --status-mix/--ack-mix");
    options.mix = http ? parse_mix_flag("--status-mix", raw.status_mix, tools::MixKind::HttpStatus)
                       : parse_mix_flag("--ack-mix", raw.ack_mix, tools::MixKind::MllpAck);
    if (raw.method) {
        const bool token = !raw.method->empty() && std::all_of(raw.method->begin(), raw.method->end(), [](char c) {
            return c >= 'A' && c <= 'Z';
        });
        if (!token)
            throw bad("--method '" + *raw.method + "' is not an upper-case HTTP method such as GET or POST");
        options.method = *raw.method;
    }
    if (raw.path) {
        const bool clean = raw.path->starts_with('/') &&
                           std::none_of(raw.path->begin(), raw.path->end(), [](char c) { return c <= ' '; });
        if (!clean)
            throw bad("--path '" + *raw.path + "' must start with '/' and contain no spaces or control characters");
        options.path = *raw.path;
    }
    if (raw.body)
        options.body = *raw.body;
    else if (options.method == "POST" || options.method == "PUT")
        options.body = R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org",)"
                       R"("code":"8867-4"}]},"subject":{"reference":"Patient/example"},"valueQuantity":{"value":72,)"
                       R"("unit":"/min"}})";
}

void validate_volume(const RawFlags& raw, Options& options)
{
    const bool rate_mode = raw.rate || raw.duration;
    if (rate_mode) {
        if (raw.count)
            throw bad("--count and --rate/--duration are alternatives; give one");
        if (!raw.rate || !raw.duration)
            throw bad("--rate and --duration go together");
        if (!(*raw.rate > 0) || *raw.rate > 1e6)
            throw bad("--rate " + number_text(*raw.rate) + ": expected more than 0 and at most 1000000 per second");
        if (!(*raw.duration > 0) || *raw.duration > kMaxDurationS)
            throw bad("--duration " + number_text(*raw.duration) + ": expected more than 0 and at most 600 seconds");
        const double planned = std::round(*raw.rate * *raw.duration);
        if (planned < 1 || planned > static_cast<double>(kMaxRequests))
            throw bad("--rate x --duration plans " + std::to_string(static_cast<long long>(planned)) +
                      " requests; expected 1 to " + std::to_string(kMaxRequests));
        options.rate = raw.rate;
        options.duration_s = raw.duration;
        options.count = static_cast<std::uint64_t>(planned);
        return;
    }
    if (raw.count) {
        options.count = *raw.count;
    } else if (options.mix) {
        options.count = options.mix->total();
    } else {
        throw bad("say how much to send: --count N, or --rate R --duration S");
    }
    if (options.count < 1 || options.count > kMaxRequests)
        throw bad("--count " + std::to_string(options.count) + ": expected 1 to " + std::to_string(kMaxRequests));
    if (options.mix && options.count != options.mix->total())
        throw bad("--count " + std::to_string(options.count) + " differs from the mix total " +
                  std::to_string(options.mix->total()) + " (" + options.mix->to_string() +
                  "); the mix gives exact counts, so leave --count out or make them agree");
}

} // namespace

std::string_view to_string(Protocol protocol)
{
    return protocol == Protocol::Http ? "http" : "mllp";
}

std::string_view to_string(ConnectionMode mode)
{
    return mode == ConnectionMode::New ? "new" : "keepalive";
}

std::variant<Options, int> parse_options(int argc, char** argv)
{
    CLI::App app{"shhim-loadgen: sends an exact number of HTTP requests or HL7 MLLP messages (or a rate for a\n"
                 "duration) to one service and writes a JSON report of what it sent and measured."};
    app.footer(kFooter);
    RawFlags raw;
    add_flags(app, raw);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitBadFlags;
    }
    Options options;
    try {
        validate_target(raw, options);
        validate_content(raw, options);
        validate_volume(raw, options);
    } catch (const std::invalid_argument& e) {
        std::cerr << "shhim-loadgen: " << e.what() << "\n";
        return kExitBadFlags;
    }
    options.concurrency = raw.concurrency;
    options.connection = raw.connection == "new" ? ConnectionMode::New : ConnectionMode::KeepAlive;
    options.timeout = std::chrono::milliseconds(raw.timeout_ms);
    options.report_path = raw.report;
    options.per_request = !raw.no_per_request;
    return options;
}

} // namespace shhim::loadgen
