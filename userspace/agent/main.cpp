// shhimd: loads, attaches and pins shhim's BPF programs, then serves the
// kernel's telemetry over gRPC. Also the preflight report and --detach.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/logging.h"
#include "core/flow_log.h"
#include "datapath/error.h"
#include "datapath/loader.h"
#include "datapath/preflight.h"
#include "shhim_abi.h"

#ifndef SHHIM_VERSION
#define SHHIM_VERSION "0.0.0"
#endif

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kDefaultSocket = "/run/shhim/shhimd.sock";
constexpr const char* kBpfFsMount = "/sys/fs/bpf";
constexpr const char* kDefaultHttpListen = "127.0.0.1:9464";
constexpr const char* kDefaultAuditLog = "/var/lib/shhim/audit.jsonl";

struct Flags {
    std::vector<std::string> interfaces;
    std::string cgroup;  // "" = the cgroup v2 mount, "none" = no sockops
    std::string policy;
    bool preflight = false;
    bool detach = false;
    std::string socket = kDefaultSocket;
    std::string http_listen = kDefaultHttpListen;
    std::string audit_log = kDefaultAuditLog;
    bool no_kernel_breaker = false;
    bool anomaly_shadow = false;
    std::string anomaly_model;
    std::string record;
    std::string pin_root = SHHIM_PIN_ROOT;
    std::uint32_t flow_entries = 0;
    std::uint32_t syn_timeout_ms = 1000;
    std::uint32_t tick_ms = 100;
    std::string xdp_mode = "auto";
    std::string log_level = "info";
    bool no_tracepoints = false;
    std::string flow_log;
    double flow_log_max_mb = 100;
    std::uint32_t flow_log_keep = 5;
    std::uint32_t flow_log_interval_s = 10;
};

const char* kExamples = R"(
Examples:
  Watch two interfaces (XDP ingress + TC egress on each), sockops on the
  whole cgroup v2 tree, with the services named in a policy:
    shhimd --iface eth0 --iface eth1 --policy /etc/shhim/policy.yaml
  Socket-level hooks on one cgroup only (a Kubernetes pod slice):
    shhimd --iface eth0 --cgroup /sys/fs/cgroup/unified/kubepods.slice
  Check what this kernel allows (exit 1 names what is missing):
    shhimd --preflight [--iface eth0]
  Remove every program, link, filter and pin shhimd made:
    shhimd --detach [--pin-root /sys/fs/bpf/shhim]
  Size the tables and the timing:
    shhimd --iface eth0 --flow-entries 262144 --syn-timeout-ms 3000 --tick-ms 250
  A private test instance (own pin root and socket):
    shhimd --iface veth0 --pin-root /sys/fs/bpf/shhim-test --socket /tmp/shhimd-test.sock --log-level debug
  Log finished flows (and long ones every 10 s) as JSON lines, rotated at
  50 MB, 4 old files kept (flows.jsonl.1 .. flows.jsonl.4):
    shhimd --iface eth0 --flow-log /var/log/shhim/flows.jsonl --flow-log-max-size 50 --flow-log-keep 4
  Metrics and dashboard on another loopback port (Prometheus scrapes
  http://127.0.0.1:9500/metrics, a browser opens http://127.0.0.1:9500/):
    shhimd --iface eth0 --http-listen 127.0.0.1:9500

Policy: --policy FILE is checked before anything is loaded (the same checks
as `shhimctl policy check FILE`); an invalid file prints every error and
shhimd exits 2 without touching the kernel. `shhimctl policy apply FILE`
replaces the policy at run time; an invalid one changes nothing.

Signals: SIGINT/SIGTERM stop the agent and leave the programs attached and
pinned (fail-open; a restart of the same build reuses them without touching
traffic or counters); SIGHUP re-reads the --policy file and applies it only
if it is valid (otherwise logs every error and keeps the running policy).
)";

std::optional<spdlog::level::level_enum> parseLevel(const std::string& name)
{
    if (name == "trace")
        return spdlog::level::trace;
    if (name == "debug")
        return spdlog::level::debug;
    if (name == "info")
        return spdlog::level::info;
    if (name == "warn")
        return spdlog::level::warn;
    if (name == "error")
        return spdlog::level::err;
    return std::nullopt;
}

shhim::datapath::XdpMode parseXdpMode(const std::string& name)
{
    if (name == "native")
        return shhim::datapath::XdpMode::Native;
    if (name == "generic")
        return shhim::datapath::XdpMode::Generic;
    return shhim::datapath::XdpMode::Auto;
}

std::vector<shhim::datapath::PreflightCheck> preflightFor(const Flags& flags)
{
    shhim::datapath::PreflightOptions options;
    options.interfaces = flags.interfaces;
    options.cgroup_path = flags.cgroup;
    return shhim::datapath::preflight(options);
}

int runPreflight(const Flags& flags)
{
    std::string missing;
    for (const auto& check : preflightFor(flags)) {
        const char* verdict = check.ok ? "ok" : check.required ? "MISSING" : "unavailable";
        std::printf("%-11s %-14s %s\n", verdict, check.name.c_str(), check.detail.c_str());
        if (check.required && !check.ok)
            missing += (missing.empty() ? "" : ", ") + check.name;
    }
    if (!missing.empty()) {
        std::printf("shhimd cannot run here: missing %s\n", missing.c_str());
        return kExitFailure;
    }
    std::printf("everything shhimd requires is available\n");
    return kExitOk;
}

int runDetach(const Flags& flags)
{
    const auto report = shhim::datapath::detach(flags.pin_root, shhim::agent::datapathLog());
    if (report.removed.empty() && report.problems.empty())
        std::printf("nothing to remove: %s does not exist\n", flags.pin_root.c_str());
    for (const auto& line : report.removed)
        std::printf("removed %s\n", line.c_str());
    for (const auto& line : report.problems)
        std::printf("NOT removed: %s\n", line.c_str());
    return report.problems.empty() ? kExitOk : kExitFailure;
}

int runAgent(const Flags& flags)
{
    shhim::agent::AgentOptions options;
    options.version = SHHIM_VERSION;
    options.socket_path = flags.socket;
    options.http_listen = flags.http_listen == "none" ? "" : flags.http_listen;
    options.policy_path = flags.policy;
    options.audit_path = flags.audit_log;
    options.kernel_breaker = !flags.no_kernel_breaker;
    options.anomaly_acts = !flags.anomaly_shadow;
    options.anomaly_model_path = flags.anomaly_model;
    options.record_path = flags.record;
    options.tick = std::chrono::milliseconds(flags.tick_ms);
    options.load.pin_root = flags.pin_root;
    options.load.interfaces = flags.interfaces;
    options.load.flow_entries = flags.flow_entries;
    options.load.syn_timeout_ns = std::uint64_t(flags.syn_timeout_ms) * 1'000'000;
    options.load.xdp_mode = parseXdpMode(flags.xdp_mode);
    options.load.tracepoints = !flags.no_tracepoints;
    options.load.log = shhim::agent::datapathLog();
    options.flow_log.path = flags.flow_log;
    options.flow_log.limits.max_bytes = shhim::core::flowLogMaxBytes(flags.flow_log_max_mb);
    options.flow_log.limits.keep = flags.flow_log_keep;
    options.flow_log.timing.periodic_ns = std::uint64_t(flags.flow_log_interval_s) * 1'000'000'000;
    if (flags.cgroup == "none") {
        options.load.cgroup_path.clear();
    } else if (!flags.cgroup.empty()) {
        options.load.cgroup_path = flags.cgroup;
    } else {
        options.load.cgroup_path = shhim::datapath::findCgroup2Mount();
        if (options.load.cgroup_path.empty())
            spdlog::warn("no cgroup v2 mount found: sockops (RTT, RTO) not attached; give --cgroup PATH");
    }

    // The pin root lives on bpffs; on hosts that do not mount it, shhimd does.
    if (flags.pin_root.rfind(std::string(kBpfFsMount) + "/", 0) == 0 &&
        shhim::datapath::mountBpfFsIfMissing(kBpfFsMount))
        spdlog::info("mounted a BPF filesystem at {}", kBpfFsMount);

    return shhim::agent::runAgent(options);
}

}  // namespace

int main(int argc, char** argv)
{
    // Before any thread exists (gRPC starts several), so that all inherit it.
    shhim::agent::blockAgentSignals();

    Flags flags;
    CLI::App app{"shhimd " SHHIM_VERSION
                 " - kernel-level traffic monitor for clinical networks: loads shhim's eBPF programs (XDP "
                 "ingress, TC egress, sockops, TCP tracepoints), pins them under the pin root and serves their "
                 "telemetry over gRPC to shhimctl.",
                 "shhimd"};
    app.footer(kExamples);
    app.set_version_flag("--version", SHHIM_VERSION);

    app.add_option("--iface", flags.interfaces,
                   "Interface to watch (repeatable): XDP on ingress, TC clsact on egress")
        ->group("Attach")
        ->type_name("IF");
    app.add_option("--cgroup", flags.cgroup,
                   "cgroup v2 directory for the sockops hook (default: the cgroup v2 mount, found in "
                   "/proc/self/mountinfo; 'none': no sockops)")
        ->group("Attach")
        ->type_name("PATH");
    app.add_option("--xdp-mode", flags.xdp_mode,
                   "XDP attach mode: auto (native, else generic), native, generic")
        ->group("Attach")
        ->check(CLI::IsMember({"auto", "native", "generic"}))
        ->default_str("auto");
    app.add_flag("--no-tracepoints", flags.no_tracepoints, "Do not attach the tp_btf TCP tracepoints")
        ->group("Attach");
    app.add_option("--pin-root", flags.pin_root, "Where maps, programs and links are pinned (on bpffs)")
        ->group("Attach")
        ->type_name("PATH")
        ->default_str(SHHIM_PIN_ROOT);

    auto* preflight = app.add_flag("--preflight", flags.preflight,
                                   "Report what this kernel allows, one line per check; exit 1 naming anything "
                                   "required that is missing")
                          ->group("Modes");
    auto* detach = app.add_flag("--detach", flags.detach,
                                "Remove every TC filter, link, program and pin under --pin-root, then exit")
                       ->group("Modes");
    preflight->excludes(detach);

    app.add_option("--policy", flags.policy,
                   "Policy YAML file (schema: shhim.v1.Policy); must be valid to start (exit 2 listing every "
                   "error); SIGHUP re-reads it")
        ->group("Agent")
        ->type_name("FILE");
    app.add_option("--socket", flags.socket, "gRPC Unix socket (mode 0600)")
        ->group("Agent")
        ->type_name("PATH")
        ->default_str(kDefaultSocket);
    app.add_option("--http-listen", flags.http_listen,
                   "Read-only HTTP listener: Prometheus /metrics and the dashboard at /; 'none' turns it off. "
                   "Anyone who can reach it sees the telemetry: keep it on loopback unless a firewall limits it")
        ->group("Agent")
        ->type_name("HOST:PORT")
        ->default_str(kDefaultHttpListen);
    app.add_option("--audit-log", flags.audit_log,
                   "Append-only audit trail of every routing change (JSON lines, SHA-256 chained, fsync'd); "
                   "FILE.head beside it. `shhimctl audit verify FILE` checks it; restart rebuilds states from it")
        ->group("Agent")
        ->type_name("FILE")
        ->default_str(kDefaultAuditLog);
    app.add_flag("--no-kernel-breaker", flags.no_kernel_breaker,
                 "The kernel counts hard evidence but never takes a backend out itself; the agent's decision "
                 "engine alone ejects (one ring-buffer round trip later). For comparison and troubleshooting")
        ->group("Agent");
    app.add_flag("--anomaly-shadow", flags.anomaly_shadow,
                 "Compute and explain the anomaly score (`shhimctl explain`) but never eject on it: for a site "
                 "that records (--record) and evaluates (shhim-eval) its own traffic first. By default a backend "
                 "scored anomalous 5 ticks in a row is ejected (each class's anomaly_sensitivity scales the score)")
        ->group("Agent");
    app.add_option("--anomaly-model", flags.anomaly_model,
                   "Isolation Forest model for the anomaly score (written by shhim-train; the repository ships "
                   "models/default.model). Without one, the score is the baseline distance and the trend only")
        ->group("Agent")
        ->type_name("FILE")
        ->check(CLI::ExistingFile);
    app.add_option("--record", flags.record,
                   "Append every tick's per-backend counter increases to FILE, one JSON line per tick (protobuf "
                   "JSON of shhim.v1.RecordedTick): the telemetry shhim-train learns from and shhim-eval replays")
        ->group("Agent")
        ->type_name("FILE");
    app.add_option("--tick-ms", flags.tick_ms, "How often backend rates are computed")
        ->group("Agent")
        ->check(CLI::Range(10u, 60000u))
        ->default_str("100");
    app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error")
        ->group("Agent")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->default_str("info");

    app.add_option("--flow-entries", flags.flow_entries,
                   "Capacity of the per-flow LRU table (default 65536, or the size of an already pinned "
                   "table; changing it needs --detach first)")
        ->group("Kernel tables")
        ->type_name("N")
        ->check(CLI::Range(1024u, 1u << 24));
    app.add_option("--syn-timeout-ms", flags.syn_timeout_ms,
                   "A SYN unanswered this long and retransmitted is reported as a SYN timeout")
        ->group("Kernel tables")
        ->type_name("N")
        ->check(CLI::Range(1u, 600000u))
        ->default_str("1000");

    auto* flow_log = app.add_option("--flow-log", flags.flow_log,
                                    "Write finished flows (and long flows periodically) to FILE as JSON lines, "
                                    "each the protobuf JSON of shhim.v1.Flow; rotated by size")
                         ->group("Flow log")
                         ->type_name("FILE");
    app.add_option("--flow-log-max-size", flags.flow_log_max_mb,
                   "Rotate FILE before it would exceed this many MB (decimal: 0.05 = 50,000 bytes)")
        ->group("Flow log")
        ->type_name("MB")
        ->check(CLI::Range(0.001, 1e6))
        ->needs(flow_log)
        ->default_str("100");
    app.add_option("--flow-log-keep", flags.flow_log_keep,
                   "Rotated files kept: FILE.1 (newest) .. FILE.N; 0 keeps none")
        ->group("Flow log")
        ->type_name("N")
        ->check(CLI::Range(0u, 1000u))
        ->needs(flow_log)
        ->default_str("5");
    app.add_option("--flow-log-interval", flags.flow_log_interval_s,
                   "A flow still running gets a record every this many seconds")
        ->group("Flow log")
        ->type_name("SECONDS")
        ->check(CLI::Range(1u, 86400u))
        ->needs(flow_log)
        ->default_str("10");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }

    shhim::agent::setupLogging(*parseLevel(flags.log_level));
    try {
        if (flags.preflight)
            return runPreflight(flags);
        if (flags.detach)
            return runDetach(flags);
        // Refuse up front, naming what this kernel lacks, rather than fail half-way through loading.
        bool missing_required = false;
        for (const auto& check : preflightFor(flags)) {
            if (check.required && !check.ok) {
                spdlog::error("preflight: {}: {}", check.name, check.detail);
                missing_required = true;
            }
        }
        if (missing_required) {
            spdlog::error("shhimd cannot run on this kernel (details: shhimd --preflight)");
            return kExitFailure;
        }
        return runAgent(flags);
    } catch (const shhim::datapath::Error& e) {
        spdlog::error("{}", e.what());
        std::error_code ec;
        if (!flags.preflight && !flags.detach && std::filesystem::exists(flags.pin_root, ec))
            spdlog::error("whatever was attached before this failure stays in place (fail-open); "
                          "`shhimd --detach --pin-root {}` removes it",
                          flags.pin_root);
        return kExitFailure;
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return kExitFailure;
    }
}
