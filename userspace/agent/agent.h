// shhimd's run mode: start the datapath (load or reuse), then one epoll
// loop over the ring buffer (failure events as they arrive), a timerfd
// tick (backend rates) and a signalfd (SIGINT/SIGTERM stop, SIGHUP re-reads
// the policy file and applies it if valid), while gRPC threads answer the
// API (including ApplyPolicy).
#pragma once

#include <chrono>
#include <string>

#include "core/flow_log.h"
#include "datapath/loader.h"

namespace shhim::agent {

// --flow-log: finished and periodic flow records (agent/flow_log.h).
struct FlowLogOptions {
    std::string path;  // "" = no flow log
    core::RotationLimits limits;
    core::FlowLogTiming timing;
};

struct AgentOptions {
    datapath::LoadOptions load;
    std::string socket_path;
    std::string policy_path;  // "" = none
    std::string http_listen;  // metrics + dashboard, "HOST:PORT"; "" = none
    std::string audit_path = "/var/lib/shhim/audit.jsonl";
    bool kernel_breaker = true;  // false: only the decision engine ejects
    bool anomaly_acts = true;    // the anomaly score feeds the decision engine (else: shadow mode)
    std::string anomaly_model_path;  // "" = no Isolation Forest
    std::string record_path;         // --record: "" = none
    std::chrono::milliseconds tick{100};
    std::string version;
    FlowLogOptions flow_log;
};

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread; call before any
// other thread exists so that every thread inherits the mask and only the
// signalfd sees them.
void blockAgentSignals();

// Exit code of runAgent when --policy names an invalid or unreadable file
// (every error is logged first; nothing has been loaded or attached).
constexpr int kExitInvalidPolicy = 2;

// Returns the process exit code. On SIGINT/SIGTERM the programs stay
// attached and pinned (fail-open): the kernel keeps counting.
int runAgent(const AgentOptions& options);

}  // namespace shhim::agent
