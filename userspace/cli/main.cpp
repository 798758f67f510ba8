// shhimctl: the on-call engineer's view of shhimd. Every subcommand is one
// read-only RPC to the agent's Unix socket and a printer (cli/printers.h).
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <google/protobuf/struct.pb.h>
#include <grpcpp/grpcpp.h>

#include "cli/printers.h"
#include "shhim.grpc.pb.h"

namespace {

constexpr const char* kDefaultSocket = "/run/shhim/shhimd.sock";
constexpr auto kRpcDeadline = std::chrono::seconds(2);
constexpr int kExitAgentUnreachable = 1;
constexpr int kExitUsage = 2;

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

// One RPC: Response from `call` or an error line and exit code 1.
template <typename Response>
int callAgent(const Globals& globals, const std::string& rpc,
              const std::function<grpc::Status(shhim::v1::Shhim::Stub&, grpc::ClientContext&, Response&)>& call,
              const std::function<void(const Response&)>& print)
{
    // A missing socket needs no connection attempt to explain.
    std::error_code ec;
    if (!std::filesystem::exists(globals.socket, ec)) {
        std::cerr << "shhimctl: no agent running (cannot reach " << globals.socket << ")\n";
        return kExitAgentUnreachable;
    }
    auto channel = grpc::CreateChannel("unix:" + globals.socket, grpc::InsecureChannelCredentials());
    auto stub = shhim::v1::Shhim::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    Response response;
    const grpc::Status status = call(*stub, context, response);
    if (!status.ok()) {
        std::cerr << "shhimctl: " << describeFailure(rpc, globals.socket, status) << "\n";
        return kExitAgentUnreachable;
    }
    print(response);
    return EXIT_SUCCESS;
}

template <typename Response>
std::function<void(const Response&)> printer(const Output& output, std::string (*table)(const Response&))
{
    return [&output, table](const Response& response) {
        std::cout << (output == Output::Json ? shhim::cli::toJson(response) : table(response));
    };
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
    auto* backends = app.add_subcommand(
        "backends", "per server: request and error rates, errors by kind, latency p50/p99, RTT, retransmits");
    addOutputOption(*backends, backends_output);
    backends->footer(
        "A backend is a server address and port seen answering (or refusing) connections.\n\n"
        "Examples:\n  shhimctl backends\n  shhimctl backends -o json");
    backends->callback([&] {
        run = [&] {
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
                    return;
                }
                std::cout << "shhimctl " << v.fields().at("shhimctl").string_value() << "\n";
                if (v.fields().contains("shhimd")) {
                    std::cout << "shhimd   " << v.fields().at("shhimd").string_value();
                    if (v.fields().contains("shhimd_build_id"))
                        std::cout << " (build " << v.fields().at("shhimd_build_id").string_value() << ")";
                    std::cout << "\n";
                }
            };
            if (version_client_only) {
                print(versions);
                return EXIT_SUCCESS;
            }
            return callAgent<shhim::v1::Status>(
                globals, "GetStatus",
                [](auto& stub, auto& ctx, auto& out) { return stub.GetStatus(&ctx, shhim::v1::StatusRequest{}, &out); },
                [&](const shhim::v1::Status& agent) {
                    (*versions.mutable_fields())["shhimd"].set_string_value(agent.version());
                    if (!agent.build_id().empty())
                        (*versions.mutable_fields())["shhimd_build_id"].set_string_value(agent.build_id());
                    print(versions);
                });
        };
    });

    app.footer(
        "Run `shhimctl COMMAND --help` for a command's flags.\n\nExamples:\n"
        "  shhimctl status\n  shhimctl backends\n  shhimctl flows --top 10 --sort errors\n"
        "  shhimctl events --last 20 -o json\n  shhimctl --socket /tmp/shhimd.sock status");

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
