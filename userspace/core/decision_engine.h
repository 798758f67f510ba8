// The decision engine (issue 4 item 3): per (service, backend) a state
// machine healthy -> suspect -> ejected -> probing -> healthy, and per
// service which pool is active. Pure: time comes in as an argument, every
// call returns the Changes it made, and the agent applies them (kernel maps,
// audit trail). Nothing here reads a clock, a file or a socket.
//
// Rules, in the order they matter:
//  - Hard evidence ejects at once: a kernel-tripped breaker (a fact: the
//    kernel already took the backend out; recorded with actor "kernel"), or
//    `consecutive_failures` hard failures in a row seen by the agent. A tick
//    with successful requests resets the run.
//  - Degradation is judged once per `window_ms` from the accumulated ticks:
//    failure rate >= error_rate or the worst tick's p99 > p99_latency_ms,
//    with at least `min_requests` requests. One bad window: suspect;
//    `bad_windows_to_eject` in a row: ejected; a good window clears suspect.
//    4xx are not failures.
//  - An anomaly score (anomaly_engine.h) at or above
//    EngineSettings::anomaly_score for `anomalous_ticks_to_eject` ticks in a
//    row ejects: the early drain of a backend that is degrading before it
//    fails. A tick without a score (no traffic) neither counts nor breaks
//    the run; a tick below the threshold breaks it. One noisy tick does
//    nothing.
//  - Ejection lasts ejection_ms * 2^(n-1) for the n-th ejection (capped);
//    n resets after `backoff_reset` of uninterrupted health. A backend that
//    fails and recovers every second is therefore held out longer each time.
//  - After the ejection, the backend is probing: not routable, probed by the
//    agent (probesDue) every probe interval; the policy's probe `successes` in
//    a row restore it, one failure ejects it again (with backoff). Patient
//    traffic is never a probe.
//  - max_ejected_fraction, per pool: the engine never takes out more than
//    floor(fraction * pool size) of a pool's backends (every unroutable one
//    counts: ejected, probing or drained). A backend it would eject beyond
//    that stays routable as suspect, marked `held`, and does not count as
//    serving. Kernel-tripped ejections are facts and are never refused or
//    restored early; they count against the cap. "Keeping capacity" then
//    means: the engine adds no ejections of its own, and the fallback pool
//    and the fail-open rule below carry the load.
//  - Pools: while the primary pool's serving share (routable and not held)
//    is below `fallback_below`, a service with a serving fallback backend
//    moves to the fallback pool at once; it goes back only after the share
//    has stayed at or above `fallback_below` for `fallback_hold` (any dip
//    restarts the hold), or at once when the fallback has nothing routable.
//  - Fail open: when neither pool has a routable backend, the service routes
//    to its primary pool as configured (every primary backend that is not
//    drained; every primary backend if all are drained). Entering and leaving
//    that mode are Changes.
//  - Manual actions override automatic ones until undone or expired: a
//    drained backend is not routable and is never restored by the engine
//    (its automatic state keeps running underneath); a reroute pins the
//    service's pool (as long as that pool has a routable backend; otherwise
//    the fail-open rule applies). restore() undoes a drain and, if the engine
//    had the backend out, puts it back at once; it is not a pin: new hard
//    evidence ejects it again.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/decision_types.h"
#include "core/probe.h"
#include "policy.pb.h"

namespace shhim::core {

// One backend as `shhimctl services` shows it, and as restart rebuilds it.
struct BackendStatus {
    std::string backend;                 // "ADDR:PORT" as the policy writes it
    Pool pool = Pool::Primary;
    BackendState state = BackendState::Healthy;
    EngineTime since;                    // of `state`
    std::string reason;                  // why it is in `state`
    std::string actor;                   // who put it there
    bool held = false;                   // would be ejected, kept by max_ejected_fraction
    bool kernel_tripped = false;         // the current ejection is the kernel breaker's
    std::uint32_t ejections = 0;         // recent ejections: the backoff exponent
    EngineTime ejected_until;            // meaningful while ejected
    std::uint32_t probe_successes = 0;   // in a row, while probing
    std::optional<ManualHold> drain;     // an engineer's drain
    bool routable = true;                // as routes() gives it (fail-open aside)

    bool operator==(const BackendStatus&) const = default;
};

struct ServiceStatus {
    std::string name;
    Pool active = Pool::Primary;         // the automatic or manual choice
    EngineTime since;                    // of `active`
    std::string reason;
    bool fail_open = false;              // nothing routable: primary as configured
    std::optional<ManualHold> reroute;   // an engineer's pin of the pool...
    Pool reroute_to = Pool::Primary;     // ...to this one (while `reroute` is set)
    std::optional<EngineTime> primary_serving_since;  // the fallback hold's start
    std::vector<BackendStatus> backends; // primary pool first, in policy order

    bool operator==(const ServiceStatus&) const = default;
};

struct EngineSnapshot {
    std::vector<ServiceStatus> services; // by name
    bool operator==(const EngineSnapshot&) const = default;
};

// What the kernel must hold for one service.
struct WantedBackend {
    std::string backend;
    Pool pool = Pool::Primary;
    bool routable = false;               // new connections may go to it
};

struct WantedRoute {
    std::string service;
    Pool active = Pool::Primary;
    bool fail_open = false;
    std::vector<WantedBackend> backends;  // every backend of both pools
};

struct ProbeTarget {
    std::string service;
    std::string backend;
};

class DecisionEngine {
public:
    explicit DecisionEngine(EngineSettings settings = {}) : settings_(settings) {}
    const EngineSettings& settings() const { return settings_; }

    // A validated policy: keeps the state of (service, backend) pairs that
    // remain, adds new ones healthy, drops the rest (all as Changes).
    std::vector<Change> applyPolicy(const v1::Policy& policy, EngineTime now);

    std::vector<Change> onHardFailure(const std::string& service, const std::string& backend, FailureKind kind,
                                      EngineTime now, bool kernel_tripped);
    // One tick's counts for the backends that had traffic; samples for
    // unknown pairs are ignored (traffic outside the policy).
    std::vector<Change> onWindow(EngineTime now, const std::vector<WindowSample>& samples);
    std::vector<Change> onProbe(const std::string& service, const std::string& backend, bool ok, EngineTime now);
    // Timers: ejection expiry, manual expiry, backoff reset, fallback hold.
    std::vector<Change> tick(EngineTime now);

    // Manual control; throws std::invalid_argument naming an unknown service
    // or backend (and changes nothing).
    std::vector<Change> drain(const std::string& service, const std::string& backend, const std::string& reason,
                              const std::string& actor, EngineTime now, std::optional<EngineTime> until = {});
    std::vector<Change> restore(const std::string& service, const std::string& backend, const std::string& reason,
                                const std::string& actor, EngineTime now);
    // `to` unset: back to automatic pool choice.
    std::vector<Change> reroute(const std::string& service, std::optional<Pool> to, const std::string& reason,
                                const std::string& actor, EngineTime now, std::optional<EngineTime> until = {});

    // Backends whose probe is due; each is scheduled for the next interval
    // as it is returned, so a probe in flight is not asked for twice.
    std::vector<ProbeTarget> probesDue(EngineTime now);

    std::vector<WantedRoute> routes() const;
    EngineSnapshot snapshot() const;
    // After applyPolicy at agent start: states rebuilt from the kernel's
    // health map and the audit trail. Pairs not in the policy are ignored;
    // returns how many backends were restored.
    std::size_t restoreFrom(const EngineSnapshot& snapshot);

private:
    struct Window {
        EngineTime start;
        bool open = false;
        std::uint64_t requests = 0;
        std::uint64_t failures = 0;
        std::uint64_t client_errors = 0;
        std::optional<double> worst_p99_ms;
    };
    struct BackendRuntime {
        BackendStatus status;
        std::uint32_t consecutive_failures = 0;
        std::uint32_t bad_windows = 0;
        std::uint32_t anomalous_ticks = 0;
        EngineTime next_probe;
        EngineTime healthy_since;
        Window window;
    };
    struct ServiceRuntime {
        ServiceStatus status;               // its `backends` are kept in `backends` below
        std::string service_class;
        ServiceThresholds thresholds;
        ProbeSettings probe;                // the service's HealthProbe with defaults
        std::vector<BackendRuntime> backends;
    };

    ServiceRuntime& service(const std::string& name);
    BackendRuntime& backend(ServiceRuntime& svc, const std::string& name);
    ServiceRuntime* findService(const std::string& name);
    BackendRuntime* findBackend(ServiceRuntime& svc, const std::string& name);

    void setState(ServiceRuntime& svc, BackendRuntime& b, BackendState to, EngineTime now, std::string action,
                  std::string actor, std::string reason, std::vector<EvidenceItem> evidence,
                  std::vector<Change>& out);
    // Ejects unless the pool's cap forbids it (then holds it as suspect).
    void ejectOrHold(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, const std::string& reason,
                     std::vector<EvidenceItem> evidence, std::vector<Change>& out);
    void eject(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, const std::string& actor,
               const std::string& reason, std::vector<EvidenceItem> evidence, std::vector<Change>& out);
    bool capAllowsEjection(const ServiceRuntime& svc, const BackendRuntime& b) const;
    EngineDuration ejectionLength(const ServiceRuntime& svc, std::uint32_t ejections) const;
    void judgeWindow(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, std::vector<Change>& out);
    // The anomaly score's run of ticks; true when it ejected the backend.
    bool judgeScore(ServiceRuntime& svc, BackendRuntime& b, EngineTime now, const WindowSample& sample,
                    std::vector<Change>& out);
    void updatePools(EngineTime now, std::vector<Change>& out);
    void updatePool(ServiceRuntime& svc, EngineTime now, std::vector<Change>& out);
    void refreshRoutable(ServiceRuntime& svc);

    EngineSettings settings_;
    std::map<std::string, ServiceRuntime> services_;
};

}  // namespace shhim::core
