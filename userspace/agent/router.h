// Self-healing reroute in the agent (issue 4): the decision engine
// (core/decision_engine.h) fed with the kernel's evidence, its changes
// written into the kernel's backend health first (a failing backend must be
// out of the table within a millisecond; an fsync takes longer) and then
// recorded in the audit trail, and the probes that bring an ejected backend
// back. A crash between the two leaves the kernel with the new state and
// the trail without it: restart reconciles the kernel with the trail. Thread-safe: the event loop calls onEvent/onTick/onProbes,
// gRPC handlers the manual calls and services().
//
// The kernel holds one health entry per backend endpoint; the engine one
// state per (service, backend). An endpoint is down in the kernel when any
// service naming it wants it out. A kernel trip (DOWN_KERNEL) is never
// overwritten by a tick: the kernel state is written only when the
// engine's wish for that endpoint changes, or at a policy apply/restart,
// where the kernel is reconciled with the engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/audit_log.h"
#include "agent/metrics_state.h"
#include "agent/policy.h"
#include "agent/prober.h"
#include "agent/route_control.h"
#include "core/anomaly_engine.h"
#include "core/decision_engine.h"
#include "core/route_table.h"
#include "datapath/maps.h"
#include "shhim.pb.h"
#include "telemetry.pb.h"

namespace shhim::agent {

class Router {
public:
    using Log = std::function<void(const std::string&)>;

    // anomaly_acts: the anomaly score feeds the decision engine; otherwise
    // it is computed and explained only (shadow mode). `model`: the
    // Isolation Forest part of the score (shhimd --anomaly-model).
    Router(RouteControl& routes, AuditLog& audit, Observability& observability, ProbeWorker& probes, Log log,
           bool anomaly_acts = false, std::optional<core::AnomalyModel> model = std::nullopt);

    // After the kernel took `tables` for `policy`. At agent start the states
    // are rebuilt from the audit trail and reconciled with the kernel.
    void applyPolicy(const PolicyPtr& policy, const core::RouteTables& tables, bool agent_start);

    // Hard evidence (refused, reset, ICMP unreachable, 5xx, NACK) and kernel trips.
    void onEvent(const shhim_event& event);
    // Per tick: the kernel's backend counters (window samples), timers, probes.
    void onTick(const std::vector<datapath::BackendRecord>& backends);
    void onProbes(const std::vector<ProbeOutcome>& outcomes);

    // Manual control: the audit records written. Throw std::invalid_argument
    // for an unknown service or backend, or a bad request (nothing changes).
    std::vector<v1::AuditRecord> drain(const std::string& service, const std::string& backend,
                                       const std::string& reason, const std::string& actor,
                                       std::optional<std::chrono::milliseconds> duration);
    std::vector<v1::AuditRecord> restore(const std::string& service, const std::string& backend,
                                         const std::string& reason, const std::string& actor);
    std::vector<v1::AuditRecord> reroute(const std::string& service, const std::string& to,
                                         const std::string& reason, const std::string& actor,
                                         std::optional<std::chrono::milliseconds> duration);

    // shhimd --record: each tick's counter increases, before they are judged.
    using Recorder = std::function<void(const v1::RecordedTick&)>;
    void recordTo(Recorder record)
    {
        std::lock_guard lock(mutex_);
        record_ = std::move(record);
    }

    v1::ServiceList services(const std::string& only) const;
    // Throws std::invalid_argument for a pair never scored.
    v1::AnomalyExplanation explain(const std::string& service, const std::string& backend) const;

private:
    struct BackendRef {
        std::uint32_t id = 0;               // kernel backend id
        std::string endpoint;               // endpointKey() of the policy text, parsed once per policy
        core::SocketAddress address;
        v1::AppProtocol protocol = v1::APP_PROTOCOL_TCP;
        std::string service_class;          // picks the anomaly prior and sensitivity
        core::ProbeSettings probe;
    };
    using Pair = std::pair<std::string, std::string>;  // (service, backend as the policy writes it)

    static core::EngineTime now() { return std::chrono::system_clock::now(); }
    // Records, publishes and enforces; returns the records written. Caller holds mutex_.
    std::vector<v1::AuditRecord> commit(const std::vector<core::Change>& changes);
    // Writes the kernel state of every endpoint whose wanted state changed
    // (all of them when `reconcile`). Caller holds mutex_.
    void enforce(bool reconcile);
    void rebuildRefs(const v1::Policy& policy, const core::RouteTables& tables);
    void restoreAfterRestart();

    RouteControl& routes_;
    AuditLog& audit_;
    Observability& observability_;
    ProbeWorker& probes_;
    Log log_;

    mutable std::mutex mutex_;
    core::DecisionEngine engine_;
    PolicyPtr policy_;
    std::map<Pair, BackendRef> refs_;
    std::map<std::uint32_t, std::vector<Pair>> pairs_of_id_;
    std::map<std::uint32_t, bool> wanted_down_;  // as last written
    std::map<std::uint32_t, shhim_backend> previous_counts_;
    std::optional<std::chrono::steady_clock::time_point> previous_tick_;
    core::AnomalyEngine anomaly_;
    bool anomaly_acts_;
    Recorder record_;
};

}  // namespace shhim::agent
