// shhimctl: the on-call engineer's view of shhimd. Every subcommand is one
// RPC to the agent's Unix socket and a printer (cli/printers.h), except
// `policy check`, which checks a policy file locally with no agent.
#include <cerrno>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "cli/printers.h"
#include "core/audit.h"
#include "core/capture.h"
#include "core/pcap.h"
#include "core/policy.h"
#include "core/policy_file.h"
#include "shhim.grpc.pb.h"

namespace {

constexpr const char* kDefaultSocket = "/run/shhim/shhimd.sock";
constexpr auto kRpcDeadline = std::chrono::seconds(2);
constexpr int kExitAgentUnreachable = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInvalidPolicy = 2;  // invalid or unreadable policy file
constexpr int kExitAuditBroken = 1;    // the audit trail has a bad record

enum class Output { Table, Json };

struct Globals {
    std::string socket = kDefaultSocket;
};

// What went wrong talking to the agent, in one line for stderr.
std::string describeFailure(const std::string& rpc, const std::string& socket, const grpc::Status& status)
{
    const auto code = status.error_code();
    const std::string& message = status.error_message();
    if (code == grpc::StatusCode::UNAVAILABLE && message.find("Permission denied") != std::string::npos)
        return "permission denied on " + socket + " (the agent's socket is root-only: run with sudo)";
    if (code == grpc::StatusCode::UNAVAILABLE)
        return "no agent running (cannot reach " + socket + ")";
    if (code == grpc::StatusCode::DEADLINE_EXCEEDED)
        return "no agent running (no answer on " + socket + " within " +
               std::to_string(kRpcDeadline.count()) + " s)";
    return rpc + " failed: " + message + " (gRPC status " + std::to_string(static_cast<int>(code)) + ")";
}

// A stub on the agent's socket, or nullptr after saying that no agent runs
// (a missing socket needs no connection attempt to explain).
std::unique_ptr<shhim::v1::Shhim::Stub> agentStub(const Globals& globals)
{
    std::error_code ec;
    if (!std::filesystem::exists(globals.socket, ec)) {
        std::cerr << "shhimctl: no agent running (cannot reach " << globals.socket << ")\n";
        return nullptr;
    }
    return shhim::v1::Shhim::NewStub(grpc::CreateChannel("unix:" + globals.socket, grpc::InsecureChannelCredentials()));
}

// One RPC: `print`'s exit code for the Response from `call`, or an error
// line and exit code 1.
template <typename Response>
int callAgent(const Globals& globals, const std::string& rpc,
              const std::function<grpc::Status(shhim::v1::Shhim::Stub&, grpc::ClientContext&, Response&)>& call,
              const std::function<int(const Response&)>& print)
{
    const auto stub = agentStub(globals);
    if (!stub)
        return kExitAgentUnreachable;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    Response response;
    const grpc::Status status = call(*stub, context, response);
    if (!status.ok()) {
        std::cerr << "shhimctl: " << describeFailure(rpc, globals.socket, status) << "\n";
        return kExitAgentUnreachable;
    }
    return print(response);
}

template <typename Response>
std::function<int(const Response&)> printer(const Output& output, std::string (*table)(const Response&))
{
    return [&output, table](const Response& response) {
        std::cout << (output == Output::Json ? shhim::cli::toJson(response) : table(response));
        return EXIT_SUCCESS;
    };
}

void printIssues(const std::string& file, const std::vector<shhim::core::PolicyIssue>& issues)
{
    for (const auto& issue : issues)
        std::cerr << shhim::core::formatIssue(file, issue) << "\n";
    std::cerr << file << ": " << issues.size() << (issues.size() == 1 ? " error" : " errors") << "\n";
}

// `policy check`: no agent, no privileges.
int checkPolicyFile(const std::string& file)
{
    std::string text;
    try {
        text = shhim::core::readPolicyFile(file);
    } catch (const shhim::core::PolicyFileError& e) {
        std::cerr << "shhimctl: " << e.what() << "\n";
        return kExitInvalidPolicy;
    }
    const shhim::core::PolicyCheck check = shhim::core::checkPolicyText(text);
    if (!check.policy) {
        printIssues(file, check.issues);
        return kExitInvalidPolicy;
    }
    std::cout << shhim::core::policyOkLine(file, *check.policy) << "\n";
    return EXIT_SUCCESS;
}

// A whole file's bytes; throws naming the file and the system's reason.
std::string readWholeFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad())
        throw std::runtime_error("cannot read " + path + ": " + std::strerror(errno));
    return text;
}

// `audit verify`: the chain of FILE, and its head (--head, or FILE.head
// when it exists). Exit 0 intact, 1 with the first bad record, 2 when a
// file cannot be read or the head is not a head.
int verifyAuditFile(const std::string& file, const std::string& head_option)
{
    std::optional<shhim::v1::AuditHead> head;
    std::string text;
    try {
        text = readWholeFile(file);
        std::string head_file = head_option;
        std::error_code ec;
        if (head_file.empty() && std::filesystem::exists(shhim::core::auditHeadPath(file), ec))
            head_file = shhim::core::auditHeadPath(file);
        if (!head_file.empty()) {
            try {
                head = shhim::core::parseAuditHead(readWholeFile(head_file));
            } catch (const std::invalid_argument& e) {
                throw std::runtime_error(head_file + ": " + e.what());
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "shhimctl: " << e.what() << "\n";
        return kExitUsage;
    }
    const shhim::core::AuditVerdict verdict = shhim::core::verifyAuditChain(text, head);
    const std::string line = shhim::core::auditVerdictLine(file, verdict);
    if (!verdict.ok()) {
        std::cerr << line << "\n";
        return kExitAuditBroken;
    }
    std::cout << line << "\n";
    return EXIT_SUCCESS;
}

// `policy apply`: the agent checks the file's text and applies it whole, or
// answers with every problem and changes nothing.
int applyPolicyFile(const Globals& globals, const std::string& file)
{
    shhim::v1::ApplyPolicyRequest request;
    try {
        request.set_yaml(shhim::core::readPolicyFile(file));
    } catch (const shhim::core::PolicyFileError& e) {
        std::cerr << "shhimctl: " << e.what() << "\n";
        return kExitInvalidPolicy;
    }
    request.set_file_name(file);
    return callAgent<shhim::v1::ApplyPolicyResponse>(
        globals, "ApplyPolicy",
        [&request](auto& stub, auto& ctx, auto& out) { return stub.ApplyPolicy(&ctx, request, &out); },
        [&file](const shhim::v1::ApplyPolicyResponse& response) {
            if (!response.applied()) {
                std::vector<shhim::core::PolicyIssue> issues;
                for (const auto& issue : response.errors())
                    issues.push_back(shhim::core::fromProto(issue));
                printIssues(file, issues);
                std::cerr << file << ": not applied; the agent keeps its current policy\n";
                return kExitInvalidPolicy;
            }
            std::cout << file << (response.unchanged() ? ": unchanged (already applied): " : ": applied: ")
                      << response.summary() << " (version " << shhim::core::shortVersion(response.version())
                      << ")\n";
            return EXIT_SUCCESS;
        });
}

struct ObserveOptions {
    bool follow = false;
    std::string since;
    std::string service;
    std::string backend;
    std::string priority_class;
    std::vector<std::string> types;
    bool json = false;
};

// `observe`: one server-streaming RPC; each entry is printed (and flushed)
// as it arrives, so `--follow | jq` sees events at once.
int runObserve(const Globals& globals, const ObserveOptions& options)
{
    shhim::v1::ObserveRequest request;
    request.set_follow(options.follow);
    request.set_service(options.service);
    request.set_backend(options.backend);
    request.set_priority_class(options.priority_class);
    for (const auto& type : options.types)
        request.add_types(type);
    const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    if (!options.since.empty()) {
        const auto window = shhim::cli::parseDurationNs(options.since);
        if (!window) {
            std::cerr << "shhimctl: --since " << options.since << " is not a duration (e.g. 30s, 5m, 1h30m)\n";
            return kExitUsage;
        }
        request.set_since_unix_ns(now_ns - *window);
    } else if (options.follow) {
        request.set_since_unix_ns(now_ns);  // only what happens from now on
    }

    const auto stub = agentStub(globals);
    if (!stub)
        return kExitAgentUnreachable;
    grpc::ClientContext context;
    if (!options.follow)
        context.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    auto reader = stub->Observe(&context, request);
    shhim::v1::FeedEvent entry;
    while (reader->Read(&entry)) {
        std::cout << (options.json ? shhim::cli::toJsonLine(entry) : shhim::cli::formatFeedEvent(entry))
                  << std::flush;
    }
    const grpc::Status status = reader->Finish();
    if (!status.ok()) {
        if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
            std::cerr << "shhimctl: " << status.error_message() << "\n";
            return kExitUsage;
        }
        std::cerr << "shhimctl: " << describeFailure("Observe", globals.socket, status) << "\n";
        return kExitAgentUnreachable;
    }
    return EXIT_SUCCESS;
}

struct CaptureOptions {
    std::uint32_t count = 0;
    std::string service;
    std::string host;
    std::uint32_t port = 0;
    std::string interface;
    std::string file;
    bool micros = false;
};

// Cancels the capture's call on SIGINT/SIGTERM. The signals are blocked in
// every thread (before gRPC starts any) and taken here with sigtimedwait,
// so the cancel runs in a normal thread, not a signal handler.
class InterruptWatcher {
public:
    explicit InterruptWatcher(grpc::ClientContext& context) : context_(context)
    {
        sigset_t signals = interruptSignals();
        pthread_sigmask(SIG_BLOCK, &signals, nullptr);
        // A shell starts background commands with SIGINT ignored, and an
        // ignored signal is never pending: take both back while blocked.
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        thread_ = std::thread([this, signals] {
            const timespec tick{0, 100'000'000};
            while (!done_) {
                if (::sigtimedwait(&signals, nullptr, &tick) > 0) {
                    interrupted_ = true;
                    context_.TryCancel();
                    return;
                }
            }
        });
    }
    ~InterruptWatcher()
    {
        done_ = true;
        thread_.join();
    }
    InterruptWatcher(const InterruptWatcher&) = delete;
    InterruptWatcher& operator=(const InterruptWatcher&) = delete;
    bool interrupted() const { return interrupted_; }

private:
    static sigset_t interruptSignals()
    {
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        return signals;
    }
    grpc::ClientContext& context_;
    std::atomic<bool> done_{false};
    std::atomic<bool> interrupted_{false};
    std::thread thread_;
};

// `capture`: one server-streaming RPC; every packet is appended to the pcap
// file (and flushed) as it arrives, so Ctrl-C leaves a complete file.
int runCapture(const Globals& globals, const CaptureOptions& options)
{
    shhim::v1::CaptureRequest request;
    request.set_count(options.count);
    request.set_service(options.service);
    request.set_host(options.host);
    request.set_port(options.port);
    request.set_interface(options.interface);

    // The watcher first: it blocks SIGINT in this thread, and gRPC's own
    // threads, started with the channel, must inherit that mask.
    grpc::ClientContext context;
    InterruptWatcher watcher(context);
    const auto stub = agentStub(globals);
    if (!stub)
        return kExitAgentUnreachable;
    const bool to_stdout = options.file == "-";
    std::ofstream file;
    if (!to_stdout) {
        file.open(options.file, std::ios::binary | std::ios::trunc);
        if (!file) {
            std::cerr << "shhimctl: cannot write " << options.file << ": " << std::strerror(errno) << "\n";
            return EXIT_FAILURE;
        }
    }
    std::ostream& out = to_stdout ? std::cout : file;
    const auto precision = options.micros ? shhim::core::PcapPrecision::Micros : shhim::core::PcapPrecision::Nanos;
    out << shhim::core::pcapFileHeader(precision, SHHIM_CAPTURE_MAX_BYTES) << std::flush;

    auto reader = stub->Capture(&context, request);
    std::uint64_t written = 0;
    shhim::v1::CapturedPacket packet;
    while (reader->Read(&packet)) {
        out << shhim::core::pcapRecord(precision, packet.time_unix_ns(), packet.wire_length(), packet.headers())
            << std::flush;
        ++written;
    }
    const grpc::Status status = reader->Finish();
    const std::string where = to_stdout ? "stdout" : options.file;
    if (!out) {
        std::cerr << "shhimctl: writing " << where << " failed: " << std::strerror(errno) << "\n";
        return EXIT_FAILURE;
    }
    if (!status.ok() && !watcher.interrupted()) {
        std::cerr << "shhimctl: " << describeFailure("Capture", globals.socket, status) << "\n";
        std::error_code ignored;  // an empty capture file says nothing: remove it
        if (written == 0 && !to_stdout)
            std::filesystem::remove(options.file, ignored);
        return status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? kExitUsage : kExitAgentUnreachable;
    }
    std::cerr << "shhimctl: wrote " << written << (written == 1 ? " packet" : " packets") << " to " << where
              << (watcher.interrupted() ? " (interrupted)" : "") << "\n";
    return EXIT_SUCCESS;
}

// `flowlog check`: every line of every file parses as a shhim.v1.Flow
// (the protobuf JSON mapping, unknown fields refused). No agent needed.
int checkFlowLogs(const std::vector<std::string>& files)
{
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    int bad_files = 0;
    for (const auto& name : files) {
        std::ifstream in(name, std::ios::binary);
        if (!in) {
            std::cerr << name << ": cannot read: " << std::strerror(errno) << "\n";
            ++bad_files;
            continue;
        }
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::uint64_t records = 0, line_no = 0;
        bool ok = true;
        if (!text.empty() && text.back() != '\n') {
            std::cerr << name << ": the last line is not complete (no newline)\n";
            ok = false;
        }
        std::size_t start = 0;
        while (start < text.size()) {
            std::size_t end = text.find('\n', start);
            if (end == std::string::npos)
                end = text.size();
            ++line_no;
            shhim::v1::Flow flow;
            const auto status =
                google::protobuf::util::JsonStringToMessage(text.substr(start, end - start), &flow, options);
            if (!status.ok()) {
                std::cerr << name << ":" << line_no << ": not a shhim.v1.Flow: " << status.message() << "\n";
                ok = false;
            } else {
                ++records;
            }
            start = end + 1;
        }
        if (ok)
            std::cout << name << ": " << records << (records == 1 ? " flow" : " flows") << ", every line a shhim.v1.Flow\n";
        else
            ++bad_files;
    }
    return bad_files == 0 ? EXIT_SUCCESS : kExitInvalidPolicy;
}

// CLI11 validator: a literal IPv4 or IPv6 address ("" when valid).
std::string checkHostAddress(const std::string& text)
{
    unsigned char buffer[16];
    std::string bare = text;
    if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']')
        bare = bare.substr(1, bare.size() - 2);
    if (::inet_pton(AF_INET, bare.c_str(), buffer) == 1 || ::inet_pton(AF_INET6, bare.c_str(), buffer) == 1)
        return {};
    return "'" + text + "' is not an IPv4 or IPv6 address";
}

std::int64_t nowUnixNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// drain, restore, reroute: what they share on the command line.
struct RoutingArgs {
    std::string service;
    std::string backend;
    std::string reason;
    std::string duration;
    Output output = Output::Table;
};

// --for DURATION into the request's milliseconds; false (after a usage line) if malformed.
template <typename Request>
bool setDuration(const std::string& text, Request& request, void (Request::*set)(std::uint64_t))
{
    if (text.empty())
        return true;
    const auto ns = shhim::cli::parseDurationNs(text);
    if (!ns || *ns < 1'000'000) {
        std::cerr << "shhimctl: --for " << text << " is not a duration of at least 1ms (e.g. 30s, 5m, 1h30m)\n";
        return false;
    }
    (request.*set)(static_cast<std::uint64_t>(*ns / 1'000'000));
    return true;
}

// `audit tail`: one server-streaming call, each record printed as it arrives.
int runAuditTail(const Globals& globals, std::uint32_t count, bool follow, bool json)
{
    const auto stub = agentStub(globals);
    if (!stub)
        return kExitAgentUnreachable;
    grpc::ClientContext context;
    if (!follow)
        context.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    shhim::v1::AuditTailRequest request;
    request.set_last(count);
    request.set_follow(follow);
    auto reader = stub->AuditTail(&context, request);
    shhim::v1::AuditRecord record;
    while (reader->Read(&record))
        std::cout << (json ? shhim::cli::toJsonLine(record) : shhim::cli::formatAuditRecord(record)) << std::flush;
    const grpc::Status status = reader->Finish();
    if (!status.ok()) {
        std::cerr << "shhimctl: " << describeFailure("AuditTail", globals.socket, status) << "\n";
        return kExitAgentUnreachable;
    }
    return EXIT_SUCCESS;
}

void addOutputOption(CLI::App& command, Output& output)
{
    const std::map<std::string, Output> names{{"table", Output::Table}, {"json", Output::Json}};
    command.add_option("-o,--output", output, "table (default) or json (protobuf JSON mapping, one document)")
        ->transform(CLI::CheckedTransformer(names, CLI::ignore_case))
        ->option_text("table|json");
}

}  // namespace

int main(int argc, char** argv)
{
    // gRPC's own logging would add lines to our one-line errors.
    ::setenv("GRPC_VERBOSITY", "NONE", 0);

    Globals globals;
    CLI::App app{"shhimctl - query shhimd, the shhim traffic monitor agent", "shhimctl"};
    app.set_version_flag("--version", std::string("shhimctl ") + SHHIM_VERSION);
    app.add_option("--socket", globals.socket, std::string("agent gRPC socket (default ") + kDefaultSocket + ")")
        ->option_text("PATH");
    app.require_subcommand(1);
    app.failure_message(CLI::FailureMessage::help);

    std::function<int()> run;

    Output status_output = Output::Table;
    auto* status = app.add_subcommand("status", "agent version, uptime, attached programs, map fill, counters");
    addOutputOption(*status, status_output);
    status->footer(
        "Shows what shhimd has attached (per interface and cgroup), how full each map is, and the event and\n"
        "parse-error counters.\n\nExamples:\n  shhimctl status\n  shhimctl status -o json");
    status->callback([&] {
        run = [&] {
            return callAgent<shhim::v1::Status>(
                globals, "GetStatus",
                [](auto& stub, auto& ctx, auto& out) { return stub.GetStatus(&ctx, shhim::v1::StatusRequest{}, &out); },
                printer(status_output, &shhim::cli::formatStatus));
        };
    });

    Output flows_output = Output::Table;
    std::uint32_t flows_top = 20;
    std::string flows_sort = "bytes";
    auto* flows = app.add_subcommand("flows", "the busiest (or slowest, or failing) flows, client -> server");
    flows->add_option("--top", flows_top, "show the first N flows after sorting (default 20); 0 shows all")
        ->option_text("N");
    flows->add_option("--sort", flows_sort, "order, largest first (default bytes)")
        ->check(CLI::IsMember({"bytes", "packets", "latency", "errors"}))
        ->option_text("bytes|packets|latency|errors");
    addOutputOption(*flows, flows_output);
    flows->footer(
        "latency sorts by the slowest response seen on the flow; errors by failure events and ICMP errors.\n\n"
        "Examples:\n  shhimctl flows --top 10 --sort latency\n  shhimctl flows --top 0 -o json");
    flows->callback([&] {
        run = [&] {
            shhim::v1::FlowsRequest request;
            request.set_top(flows_top);
            request.set_sort(flows_sort);
            return callAgent<shhim::v1::FlowList>(
                globals, "ListFlows",
                [&request](auto& stub, auto& ctx, auto& out) { return stub.ListFlows(&ctx, request, &out); },
                printer(flows_output, &shhim::cli::formatFlows));
        };
    });

    Output backends_output = Output::Table;
    bool backends_history = false;
    std::string backends_backend;
    auto* backends = app.add_subcommand(
        "backends", "per server: request and error rates, errors by kind, latency p50/p99, RTT, retransmits");
    addOutputOption(*backends, backends_output);
    backends->add_flag("--history", backends_history,
                       "the last 15 minutes instead: request and error rates and p50/p99 latency per second, "
                       "as sparklines (-o json: every point)");
    backends->add_option("--backend", backends_backend, "with --history: only this backend (ADDR[:PORT])")
        ->option_text("ADDR[:PORT]");
    backends->footer(
        "A backend is a server address and port seen answering (or refusing) connections.\n\n"
        "Examples:\n  shhimctl backends\n  shhimctl backends -o json\n  shhimctl backends --history\n"
        "  shhimctl backends --history --backend 198.18.0.10:8080 -o json | jq '.backends[0].p99_seconds'");
    backends->callback([&] {
        run = [&] {
            if (backends_history) {
                shhim::v1::HistoryRequest request;
                request.set_backend(backends_backend);
                return callAgent<shhim::v1::History>(
                    globals, "GetHistory",
                    [&request](auto& stub, auto& ctx, auto& out) { return stub.GetHistory(&ctx, request, &out); },
                    printer(backends_output, &shhim::cli::formatHistory));
            }
            return callAgent<shhim::v1::BackendList>(
                globals, "ListBackends",
                [](auto& stub, auto& ctx, auto& out) {
                    return stub.ListBackends(&ctx, shhim::v1::BackendsRequest{}, &out);
                },
                printer(backends_output, &shhim::cli::formatBackends));
        };
    });

    Output events_output = Output::Table;
    std::uint32_t events_last = 20;
    auto* events = app.add_subcommand(
        "events", "recent failures: refused, SYN timeouts, resets, ICMP errors, HTTP 5xx, MLLP NACKs");
    events->add_option("--last", events_last, "show the newest N events the agent kept (default 20); 0 shows all")
        ->option_text("N");
    addOutputOption(*events, events_output);
    events->footer("Examples:\n  shhimctl events --last 50\n  shhimctl events -o json");
    events->callback([&] {
        run = [&] {
            shhim::v1::EventsRequest request;
            request.set_last(events_last);
            return callAgent<shhim::v1::EventList>(
                globals, "ListEvents",
                [&request](auto& stub, auto& ctx, auto& out) { return stub.ListEvents(&ctx, request, &out); },
                printer(events_output, &shhim::cli::formatEvents));
        };
    });

    ObserveOptions observe_options;
    auto* observe = app.add_subcommand(
        "observe", "the event feed: failures, reroutes, policy changes, stress mode; --follow streams it");
    observe->add_flag("-f,--follow", observe_options.follow, "after the kept events, stream new ones until Ctrl-C");
    observe->add_option("--since", observe_options.since,
                        "only events of the last DURATION (e.g. 30s, 5m, 1h30m); with --follow and no --since, "
                        "only new events")
        ->option_text("DURATION");
    observe->add_option("--service", observe_options.service,
                        "only events about backends of this policy service")
        ->option_text("S");
    observe->add_option("--backend", observe_options.backend, "only events about this backend")
        ->option_text("ADDR[:PORT]");
    observe->add_option("--class", observe_options.priority_class, "only events of services in this priority class")
        ->option_text("C");
    observe->add_option("--type", observe_options.types, "only these event types (repeatable)")
        ->check(CLI::IsMember({"failure", "reroute", "policy", "stress"}))
        ->option_text("failure|reroute|policy|stress");
    const std::map<std::string, bool> observe_formats{{"compact", false}, {"json", true}};
    observe->add_option("-o,--output", observe_options.json,
                        "compact (default): one line per event; json: one protobuf-JSON document per line (jq)")
        ->transform(CLI::CheckedTransformer(observe_formats, CLI::ignore_case))
        ->option_text("compact|json");
    observe->footer(
        "Like `hubble observe`: without --follow, prints the events the agent kept (newest 4096) and exits.\n\n"
        "Examples:\n  shhimctl observe --since 10m\n  shhimctl observe --follow --type failure --backend "
        "198.18.0.10:8080\n  shhimctl observe -f --service fhir -o json | jq -r 'select(.type == \"failure\") | "
        ".summary'");
    observe->callback([&] { run = [&] { return runObserve(globals, observe_options); }; });

    CaptureOptions capture_options;
    auto* capture = app.add_subcommand(
        "capture", "packet samples cut to their headers (no payload), written as a pcap file for Wireshark/tshark");
    capture->add_option("-c,--count", capture_options.count, "stop after N packets (1..100000)")
        ->required()
        ->check(CLI::Range(1u, shhim::core::kMaxCaptureCount))
        ->option_text("N");
    auto* capture_service = capture->add_option(
        "--service", capture_options.service,
        "only packets to or from this policy service: its address:port and every backend's");
    capture_service->option_text("S");
    auto* capture_host = capture->add_option("--host", capture_options.host,
                                             "only packets with this IPv4 or IPv6 address on either side");
    capture_host->check(CLI::Validator(checkHostAddress, "IP", "address"))->option_text("IP");
    auto* capture_port = capture->add_option("--port", capture_options.port,
                                             "only TCP/UDP packets with this port on either side");
    capture_port->check(CLI::Range(1u, 65535u))->option_text("P");
    capture_service->excludes(capture_host)->excludes(capture_port);
    capture_host->excludes(capture_port);
    capture->add_option("-i,--iface", capture_options.interface,
                        "only packets on this interface (default: every interface shhimd is attached to)")
        ->option_text("IF");
    capture->add_option("-w,--write", capture_options.file, "the pcap file to write; - writes to stdout")
        ->required()
        ->option_text("FILE.pcap");
    capture->add_flag("--micro", capture_options.micros,
                      "microsecond timestamps (default nanoseconds; both open in Wireshark and tshark)");
    capture->footer(
        "Each packet is cut at the end of its L4 header: Ethernet, VLAN tags, IPv4/IPv6 with options and\n"
        "extension headers, then the TCP header with its options, the UDP or the ICMP header. No payload\n"
        "byte leaves the kernel; the pcap's original length is the frame's length on the wire. Packets are\n"
        "seen at XDP ingress and TC egress of shhimd's interfaces. The capture stops after N packets or on\n"
        "Ctrl-C, and says how many packets it wrote. One capture runs at a time.\n\n"
        "Examples:\n  shhimctl capture --count 100 --port 8080 -w /tmp/fhir.pcap\n"
        "  shhimctl capture -c 50 --service fhir -w fhir.pcap && tshark -r fhir.pcap\n"
        "  shhimctl capture -c 20 --host 198.18.0.10 --iface eth1 -w - | tshark -r -");
    capture->callback([&] { run = [&] { return runCapture(globals, capture_options); }; });

    auto* flowlog = app.add_subcommand("flowlog", "check the JSON lines of shhimd --flow-log files");
    flowlog->require_subcommand(1);
    std::vector<std::string> flowlog_files;
    auto* flowlog_check = flowlog->add_subcommand(
        "check", "every line of each FILE parses as a shhim.v1.Flow (exit 2 naming the first bad lines)");
    flowlog_check->add_option("FILE", flowlog_files, "flow log files (FILE, FILE.1, ...)")->required();
    flowlog_check->footer(
        "Needs no agent. Each line must be one protobuf-JSON shhim.v1.Flow (the message `shhimctl flows\n"
        "-o json` lists), unknown fields refused, and end with a newline.\n\n"
        "Examples:\n  shhimctl flowlog check /var/log/shhim/flows.jsonl*");
    flowlog_check->callback([&] { run = [&] { return checkFlowLogs(flowlog_files); }; });

    Output classes_output = Output::Table;
    auto* classes = app.add_subcommand(
        "classes", "priority classes per interface: packets, bytes, rate, drops, DSCP; stress mode");
    addOutputOption(*classes, classes_output);
    classes->footer(
        "SHED is the class's shed rank (-: never shed; '*': held to its token bucket now).\n\n"
        "Examples:\n  shhimctl classes\n  shhimctl classes -o json | jq '.interfaces[].classes[] | "
        "{priority_class, egress_drops}'");
    classes->callback([&] {
        run = [&] {
            return callAgent<shhim::v1::ClassReport>(
                globals, "ListClasses",
                [](auto& stub, auto& ctx, auto& out) {
                    return stub.ListClasses(&ctx, shhim::v1::ClassesRequest{}, &out);
                },
                printer(classes_output, &shhim::cli::formatClasses));
        };
    });

    Output stress_output = Output::Table;
    std::string stress_mode;
    auto* stress = app.add_subcommand(
        "stress", "stress mode: on sheds the lowest classes by token bucket, off stops, auto follows link load");
    stress->add_option("mode", stress_mode, "on, off or auto")
        ->required()
        ->check(CLI::IsMember({"on", "off", "auto"}, CLI::ignore_case))
        ->option_text("on|off|auto");
    addOutputOption(*stress, stress_output);
    stress->footer(
        "Life-critical and emergency traffic is never shed. auto sheds one class more at a time while an\n"
        "interface's egress stays above the policy's threshold of its capacity. The kernel stops shedding by\n"
        "itself a few seconds after the agent stops renewing it.\n\n"
        "Examples:\n  shhimctl stress on\n  shhimctl stress auto\n  shhimctl stress off -o json");
    stress->callback([&] {
        run = [&] {
            shhim::v1::StressRequest request;
            request.set_mode(stress_mode);
            return callAgent<shhim::v1::StressStatus>(
                globals, "SetStress",
                [&request](auto& stub, auto& ctx, auto& out) { return stub.SetStress(&ctx, request, &out); },
                printer(stress_output, &shhim::cli::formatStressStatus));
        };
    });

    Output version_output = Output::Table;
    bool version_client_only = false;
    auto* version = app.add_subcommand("version", "shhimctl version and the running agent's version");
    version->add_flag("--client", version_client_only, "only shhimctl's own version; do not contact the agent");
    addOutputOption(*version, version_output);
    version->footer("Examples:\n  shhimctl version\n  shhimctl version --client -o json");
    version->callback([&] {
        run = [&] {
            google::protobuf::Struct versions;
            (*versions.mutable_fields())["shhimctl"].set_string_value(SHHIM_VERSION);
            auto print = [&](const google::protobuf::Struct& v) {
                if (version_output == Output::Json) {
                    std::cout << shhim::cli::toJson(v);
                    return EXIT_SUCCESS;
                }
                std::cout << "shhimctl " << v.fields().at("shhimctl").string_value() << "\n";
                if (v.fields().contains("shhimd")) {
                    std::cout << "shhimd   " << v.fields().at("shhimd").string_value();
                    if (v.fields().contains("shhimd_build_id"))
                        std::cout << " (build " << v.fields().at("shhimd_build_id").string_value() << ")";
                    std::cout << "\n";
                }
                return EXIT_SUCCESS;
            };
            if (version_client_only)
                return print(versions);
            return callAgent<shhim::v1::Status>(
                globals, "GetStatus",
                [](auto& stub, auto& ctx, auto& out) { return stub.GetStatus(&ctx, shhim::v1::StatusRequest{}, &out); },
                [&](const shhim::v1::Status& agent) {
                    (*versions.mutable_fields())["shhimd"].set_string_value(agent.version());
                    if (!agent.build_id().empty())
                        (*versions.mutable_fields())["shhimd_build_id"].set_string_value(agent.build_id());
                    return print(versions);
                });
        };
    });

    auto* policy = app.add_subcommand("policy", "check a policy file, or show and apply the agent's policy");
    policy->require_subcommand(1);
    policy->footer(
        "A policy file is YAML whose schema is message shhim.v1.Policy (userspace/proto/policy.proto).\n"
        "Every way of loading one (shhimd --policy, SIGHUP, policy apply) runs the same checks; an invalid\n"
        "policy changes nothing.\n\nExamples:\n  shhimctl policy check policy/demo.yaml\n"
        "  shhimctl policy apply /etc/shhim/policy.yaml\n  shhimctl policy show -o json");

    std::string check_file;
    auto* policy_check = policy->add_subcommand(
        "check", "check a policy file without an agent: every error with its field path and line, exit 2");
    policy_check->add_option("FILE", check_file, "the policy YAML file")->required();
    policy_check->footer(
        "Needs no agent and no privileges. A valid file prints one line and exits 0:\n"
        "  policy/demo.yaml: ok: 2 services, 0 rules, 7 classes, 0 interfaces (version 3f2a9c01b7e4)\n"
        "An invalid one prints every error, FILE:LINE:COLUMN: FIELD.PATH: message, sorted by line, on\n"
        "stderr and exits 2 (also when the file cannot be read).\n\n"
        "Examples:\n  shhimctl policy check policy/demo.yaml\n  for f in policy/*.yaml; do shhimctl policy check \"$f\"; done");
    policy_check->callback([&] { run = [&] { return checkPolicyFile(check_file); }; });

    std::string apply_file;
    auto* policy_apply = policy->add_subcommand(
        "apply", "send a policy file to the agent, which applies it whole if valid (exit 2 and no change if not)");
    policy_apply->add_option("FILE", apply_file, "the policy YAML file (read here, checked by the agent)")
        ->required();
    policy_apply->footer(
        "The agent checks the text exactly as `policy check` does. Valid: it replaces the running policy at\n"
        "once and a new version is shown by `shhimctl status` and `policy show`. Invalid: every error is\n"
        "printed, exit 2, and the running policy stays. Exit 1: no agent.\n"
        "Note: SIGHUP makes shhimd re-read its --policy FILE, replacing a policy applied here.\n\n"
        "Examples:\n  shhimctl policy apply /etc/shhim/policy.yaml");
    policy_apply->callback([&] { run = [&] { return applyPolicyFile(globals, apply_file); }; });

    Output show_output = Output::Table;
    auto* policy_show = policy->add_subcommand(
        "show", "the agent's policy: version, source, services, rules, classes as resolved, interfaces");
    addOutputOption(*policy_show, show_output);
    policy_show->footer(
        "The version is the SHA-256 of the policy's content (comments and formatting do not count).\n\n"
        "Examples:\n  shhimctl policy show\n  shhimctl policy show -o json");
    policy_show->callback([&] {
        run = [&] {
            return callAgent<shhim::v1::PolicyState>(
                globals, "GetPolicy",
                [](auto& stub, auto& ctx, auto& out) {
                    return stub.GetPolicy(&ctx, shhim::v1::GetPolicyRequest{}, &out);
                },
                printer(show_output, &shhim::cli::formatPolicyState));
        };
    });

    Output services_output = Output::Table;
    std::string services_only;
    auto* services = app.add_subcommand(
        "services", "each policy service: active pool, and per backend its state, since when and why");
    services->add_option("SERVICE", services_only, "only this service");
    addOutputOption(*services, services_output);
    services->footer(
        "States: healthy, suspect, ejected (out of the kernel table; by the kernel breaker or the engine),\n"
        "probing (out, being probed by the agent), drained (held out by an engineer). KERNEL is what the\n"
        "connect hooks see: up, down-kernel (breaker tripped), down-agent.\n\n"
        "Examples:\n  shhimctl services\n  shhimctl services fhir -o json | jq '.services[0].backends[] | {backend, state}'");
    services->callback([&] {
        run = [&] {
            shhim::v1::ServicesRequest request;
            request.set_service(services_only);
            return callAgent<shhim::v1::ServiceList>(
                globals, "ListServices",
                [&request](auto& stub, auto& ctx, auto& out) { return stub.ListServices(&ctx, request, &out); },
                [&](const shhim::v1::ServiceList& list) {
                    std::cout << (services_output == Output::Json ? shhim::cli::toJson(list)
                                                                  : shhim::cli::formatServices(list, nowUnixNs()));
                    return EXIT_SUCCESS;
                });
        };
    });

    RoutingArgs drain_args;
    auto* drain = app.add_subcommand("drain", "take a backend out of a service's rotation by hand (recorded in the audit trail)");
    drain->add_option("SERVICE", drain_args.service, "the policy service")->required();
    drain->add_option("BACKEND", drain_args.backend, "the backend, ADDR:PORT as the policy writes it")->required();
    drain->add_option("--reason", drain_args.reason, "why (goes into the audit trail)")->required();
    drain->add_option("--for", drain_args.duration, "undo by itself after DURATION (e.g. 30m, 2h); default: until restored")
        ->option_text("DURATION");
    addOutputOption(*drain, drain_args.output);
    drain->footer("New connections stop going to the backend at once; open ones finish. The engine never undoes a\n"
                  "drain; `shhimctl restore` or the --for expiry does.\n\n"
                  "Examples:\n  shhimctl drain fhir 198.18.0.10:8080 --reason \"kernel patching\" --for 30m");
    drain->callback([&] {
        run = [&] {
            shhim::v1::DrainRequest request;
            request.set_service(drain_args.service);
            request.set_backend(drain_args.backend);
            request.set_reason(drain_args.reason);
            if (!setDuration(drain_args.duration, request, &shhim::v1::DrainRequest::set_for_ms))
                return kExitUsage;
            return callAgent<shhim::v1::RoutingResponse>(
                globals, "Drain", [&request](auto& stub, auto& ctx, auto& out) { return stub.Drain(&ctx, request, &out); },
                printer(drain_args.output, &shhim::cli::formatRoutingResponse));
        };
    });

    RoutingArgs restore_args;
    auto* restore = app.add_subcommand("restore", "undo a drain, or put an ejected backend back at once (by hand)");
    restore->add_option("SERVICE", restore_args.service, "the policy service")->required();
    restore->add_option("BACKEND", restore_args.backend, "the backend, ADDR:PORT")->required();
    restore->add_option("--reason", restore_args.reason, "why (goes into the audit trail)");
    addOutputOption(*restore, restore_args.output);
    restore->footer("A restored backend takes new connections at once; new hard failures eject it again.\n\n"
                    "Examples:\n  shhimctl restore fhir 198.18.0.10:8080 --reason \"patched\"");
    restore->callback([&] {
        run = [&] {
            shhim::v1::RestoreRequest request;
            request.set_service(restore_args.service);
            request.set_backend(restore_args.backend);
            request.set_reason(restore_args.reason);
            return callAgent<shhim::v1::RoutingResponse>(
                globals, "Restore",
                [&request](auto& stub, auto& ctx, auto& out) { return stub.Restore(&ctx, request, &out); },
                printer(restore_args.output, &shhim::cli::formatRoutingResponse));
        };
    });

    RoutingArgs reroute_args;
    std::string reroute_to;
    auto* reroute = app.add_subcommand("reroute", "pin a service to its primary or fallback pool by hand (auto undoes)");
    reroute->add_option("SERVICE", reroute_args.service, "the policy service")->required();
    reroute->add_option("--to", reroute_to, "the pool to use; auto hands the choice back to the engine")
        ->required()
        ->check(CLI::IsMember({"primary", "fallback", "auto"}))
        ->option_text("primary|fallback|auto");
    reroute->add_option("--reason", reroute_args.reason, "why (goes into the audit trail)")->required();
    reroute->add_option("--for", reroute_args.duration, "undo by itself after DURATION; default: until rerouted again")
        ->option_text("DURATION");
    addOutputOption(*reroute, reroute_args.output);
    reroute->footer("Examples:\n  shhimctl reroute lab-hl7 --to fallback --reason \"LIS upgrade\" --for 1h\n"
                    "  shhimctl reroute lab-hl7 --to auto --reason \"upgrade done\"");
    reroute->callback([&] {
        run = [&] {
            shhim::v1::RerouteRequest request;
            request.set_service(reroute_args.service);
            request.set_to(reroute_to);
            request.set_reason(reroute_args.reason);
            if (!setDuration(reroute_args.duration, request, &shhim::v1::RerouteRequest::set_for_ms))
                return kExitUsage;
            return callAgent<shhim::v1::RoutingResponse>(
                globals, "Reroute",
                [&request](auto& stub, auto& ctx, auto& out) { return stub.Reroute(&ctx, request, &out); },
                printer(reroute_args.output, &shhim::cli::formatRoutingResponse));
        };
    });

    Output explain_output = Output::Table;
    std::string explain_service, explain_backend;
    auto* explain = app.add_subcommand("explain", "why a backend's anomaly score is what it is: the features against its baseline");
    explain->add_option("SERVICE", explain_service, "the policy service")->required();
    explain->add_option("BACKEND", explain_backend, "the backend, ADDR:PORT as the policy writes it")->required();
    addOutputOption(*explain, explain_output);
    explain->footer("A rise in request rate alone is not scored (a clinical surge is not a failure); a rise in\n"
                    "latency, errors or retransmits is, at any rate.\n\n"
                    "Examples:\n  shhimctl explain fhir 198.18.0.10:8080");
    explain->callback([&] {
        run = [&] {
            shhim::v1::ExplainRequest request;
            request.set_service(explain_service);
            request.set_backend(explain_backend);
            return callAgent<shhim::v1::AnomalyExplanation>(
                globals, "Explain",
                [&request](auto& stub, auto& ctx, auto& out) { return stub.Explain(&ctx, request, &out); },
                printer(explain_output, &shhim::cli::formatExplanation));
        };
    });

    auto* audit = app.add_subcommand("audit", "the audit trail of routing changes");
    audit->require_subcommand(1);
    std::string audit_file(shhim::core::kDefaultAuditFile);
    std::string audit_head;
    auto* audit_verify = audit->add_subcommand(
        "verify", "check the audit trail's SHA-256 chain without an agent: exit 0 intact, 1 tampered");
    audit_verify->add_option("FILE", audit_file, "the audit trail (default " +
                                                     std::string(shhim::core::kDefaultAuditFile) + ")");
    audit_verify->add_option("--head", audit_head,
                             "the writer's head file (default FILE.head when it exists): finds records cut off the end")
        ->option_text("FILE");
    audit_verify->footer(
        "Needs no agent. Every record carries the SHA-256 of the line before it. Intact: one line on\n"
        "stdout, exit 0. Otherwise the first bad record on stderr, exit 1:\n"
        "  audit.jsonl: line 7: edited: its SHA-256 ... does not match prev_sha256 ... of the next record\n"
        "Kinds: edited, deleted, reordered, truncated, unparseable. Exit 2: a file cannot be read.\n\n"
        "Examples:\n  shhimctl audit verify\n  shhimctl audit verify /backup/audit.jsonl --head /backup/audit.jsonl.head");
    audit_verify->callback([&] { run = [&] { return verifyAuditFile(audit_file, audit_head); }; });

    std::uint32_t tail_count = 10;
    bool tail_follow = false;
    bool tail_json = false;
    auto* audit_tail = audit->add_subcommand("tail", "the newest routing changes from the agent; --follow streams new ones");
    audit_tail->add_option("-n,--lines", tail_count, "how many of the newest records (default 10)")->option_text("N");
    audit_tail->add_flag("-f,--follow", tail_follow, "then print each new record as it is written, until Ctrl-C");
    const std::map<std::string, bool> tail_formats{{"compact", false}, {"json", true}};
    audit_tail->add_option("-o,--output", tail_json, "compact (default) or json (one record per line, as in the file)")
        ->transform(CLI::CheckedTransformer(tail_formats, CLI::ignore_case))
        ->option_text("compact|json");
    audit_tail->footer("Examples:\n  shhimctl audit tail -n 50\n  shhimctl audit tail -f -o json | jq -r .reason");
    audit_tail->callback([&] { run = [&] { return runAuditTail(globals, tail_count, tail_follow, tail_json); }; });

    app.footer(
        "Run `shhimctl COMMAND --help` for a command's flags.\n\nExamples:\n"
        "  shhimctl status\n  shhimctl backends\n  shhimctl flows --top 10 --sort errors\n"
        "  shhimctl events --last 20 -o json\n  shhimctl observe --follow --type failure\n"
        "  shhimctl backends --history\n  shhimctl classes\n  shhimctl stress auto\n"
        "  shhimctl capture --count 100 --port 8080 -w /tmp/fhir.pcap\n"
        "  shhimctl policy check policy/demo.yaml\n"
        "  shhimctl audit verify\n"
        "  shhimctl --socket /tmp/shhimd.sock status");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        // Help and --version are successes; anything else is a usage error.
        return code == static_cast<int>(CLI::ExitCodes::Success) ? EXIT_SUCCESS : kExitUsage;
    }
    try {
        return run();
    } catch (const std::exception& e) {
        std::cerr << "shhimctl: " << e.what() << "\n";
        return EXIT_FAILURE;
    }
}
