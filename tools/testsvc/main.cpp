// shhim-testsvc: simulated clinical services (FHIR-like HTTP API, HL7 v2 over MLLP) with
// fault knobs, for the demo and the end-to-end tests.
#include "connection.hpp"
#include "control.hpp"
#include "faults.hpp"
#include "listener.hpp"
#include "support/endpoint.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace shhim;
using namespace shhim::testsvc;

constexpr int kExitBadFlags = 2;
constexpr int kExitStartFailed = 1;

struct Options {
    std::vector<std::string> http;
    std::vector<std::string> mllp;
    std::string control;
    std::string latency_ms = "0";
    std::string status_mix;
    std::string ack_mix;
    bool refuse = false;
    bool hang = false;
    std::string close_mid = "off";
    std::size_t max_connections = 4096;
    bool verbose = false;
};

void add_flags(CLI::App& app, Options& options)
{
    app.add_option("--http", options.http, "Serve the FHIR-like HTTP/1.1 API on ADDR:PORT (repeatable; [V6]:PORT)")
        ->type_name("ADDR:PORT")
        ->allow_extra_args(false);
    app.add_option("--mllp", options.mllp, "Serve HL7 v2 over MLLP on ADDR:PORT (repeatable)")
        ->type_name("ADDR:PORT")
        ->allow_extra_args(false);
    app.add_option("--control", options.control, "Runtime fault control endpoint (see below)")->type_name("ADDR:PORT");
    app.add_option("--latency-ms", options.latency_ms, "Added latency before the first response byte")
        ->type_name("MS");
    app.add_option("--status-mix", options.status_mix,
                   "HTTP statuses in deterministic rotation per listener, e.g. 200:70,404:20,503:10")
        ->type_name("MIX");
    app.add_option("--ack-mix", options.ack_mix, "MLLP ack codes in rotation per listener, e.g. AA:8,AE:1,AR:1")
        ->type_name("MIX");
    app.add_flag("--refuse", options.refuse, "Start refusing: nothing listens, connects get a RST");
    app.add_flag("--hang", options.hang, "Accept and read requests, never answer");
    app.add_option("--close-mid-response", options.close_mid,
                   "Send half of each response, then close: fin (EOF) or rst (reset); off by default")
        ->type_name("off|fin|rst");
    app.add_option("--max-connections", options.max_connections, "Open connections served at once (1..65536)")
        ->type_name("N")
        ->check(CLI::Range(1, 65536).description(""));
    app.add_flag("-v,--verbose", options.verbose, "Also log each fault as it is applied");
}

// Turns the start flags into the listeners' initial faults; throws naming the flag.
Faults initial_faults(const Options& options)
{
    FaultChange change;
    const auto set = [&](const char* flag, std::string_view knob, std::string_view value) {
        try {
            set_fault_knob(change, knob, value);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string(flag) + " '" + std::string(value) + "': " + e.what());
        }
    };
    set("--latency-ms", "latency_ms", options.latency_ms);
    set("--status-mix", "status_mix", options.status_mix);
    set("--ack-mix", "ack_mix", options.ack_mix);
    set("--close-mid-response", "close_mid", options.close_mid);
    change.refuse = options.refuse;
    change.hang = options.hang;
    Faults faults;
    change.apply_to(faults);
    return faults;
}

tools::Endpoint endpoint_flag(const char* flag, const std::string& text)
{
    try {
        return tools::parse_endpoint(text);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string(flag) + " " + e.what());
    }
}

std::vector<std::unique_ptr<Listener>> make_listeners(const Options& options, const Faults& faults,
                                                      const ServiceContext& context)
{
    std::vector<std::unique_ptr<Listener>> listeners;
    for (const auto& text : options.http)
        listeners.push_back(std::make_unique<Listener>(Protocol::Http, endpoint_flag("--http", text), faults, context));
    for (const auto& text : options.mllp)
        listeners.push_back(std::make_unique<Listener>(Protocol::Mllp, endpoint_flag("--mllp", text), faults, context));
    return listeners;
}

// Blocks until SIGINT or SIGTERM (blocked in every thread, so only this sigwait sees them).
int wait_for_stop_signal(const sigset_t& signals)
{
    int received = 0;
    while (sigwait(&signals, &received) != 0) {
    }
    return received;
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"shhim-testsvc: simulated clinical services (FHIR-like HTTP API, HL7 v2 over MLLP)\n"
                 "with fault knobs. Prints one 'ready PROTOCOL ADDR:PORT' line per listener on stdout\n"
                 "once every socket is bound; logs connection errors to stderr; SIGINT/SIGTERM stop it."};
    app.footer(std::string(kControlApiHelp) +
               "\n\nExample:\n  shhim-testsvc --http 127.0.0.1:20080 --mllp 127.0.0.1:20575 --control 127.0.0.1:20999 "
               "--latency-ms 40\n  X-Shhim-Status: NNN (HTTP request header) and a ZFA|<code> segment (HL7) force one "
               "answer.");
    Options options;
    add_flags(app, options);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitBadFlags;
    }

    spdlog::logger log("testsvc", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    log.set_pattern("%Y-%m-%dT%H:%M:%S.%e %l shhim-testsvc: %v");
    log.set_level(options.verbose ? spdlog::level::debug : spdlog::level::info);
    log.flush_on(spdlog::level::debug);

    Faults faults;
    std::vector<std::unique_ptr<Listener>> listeners;
    std::optional<tools::Endpoint> control_endpoint;
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    // Before any thread exists, so every thread inherits the mask.
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    StopSignal stop;
    ConnectionRegistry connections(options.max_connections);
    const ServiceContext context{log, connections, stop};
    try {
        if (options.http.empty() && options.mllp.empty())
            throw std::invalid_argument("give at least one --http or --mllp listener");
        faults = initial_faults(options);
        listeners = make_listeners(options, faults, context);
        if (!options.control.empty())
            control_endpoint = endpoint_flag("--control", options.control);
    } catch (const std::invalid_argument& e) {
        std::cerr << "shhim-testsvc: " << e.what() << "\n";
        return kExitBadFlags;
    }

    std::unique_ptr<ControlServer> control;
    try {
        for (auto& listener : listeners)
            listener->bind();
        if (control_endpoint) {
            control = std::make_unique<ControlServer>(*control_endpoint, listeners, log, stop);
            control->bind();
        }
    } catch (const std::system_error& e) {
        log.error("cannot listen: {}", e.what());
        return kExitStartFailed;
    }

    // All sockets are bound before the first line, so any one line means "all bound".
    for (const auto& listener : listeners)
        std::cout << "ready " << listener->name() << (faults.refuse ? " (refusing connections)" : "") << "\n";
    if (control)
        std::cout << "ready control " << control->bound().to_string() << "\n";
    std::cout << std::flush;
    log.info("faults at start: {}", faults_json(faults));

    {
        std::vector<std::jthread> threads;
        for (auto& listener : listeners)
            threads.emplace_back([&listener] { listener->run(); });
        if (control)
            threads.emplace_back([&control] { control->run(); });

        const int signal_number = wait_for_stop_signal(stop_signals);
        log.info("stopping on {}", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
        stop.trigger();
    } // joins the accept loops: no new connections from here on
    connections.shutdown_all();
    if (!connections.wait_until_empty(std::chrono::seconds(3)))
        log.error("some connections did not finish within 3 s of stopping");
    return 0;
}
