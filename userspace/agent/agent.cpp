#include "agent/agent.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>

#include "agent/flow_log.h"
#include "agent/http_server.h"
#include "agent/logging.h"
#include "agent/policy.h"
#include "agent/server.h"
#include "agent/state.h"
#include "agent/class_control.h"
#include "agent/audit_log.h"
#include "agent/policy_apply.h"
#include "agent/prober.h"
#include "agent/route_control.h"
#include "agent/router.h"
#include "core/anomaly_model.h"
#include "core/telemetry.h"
#include "core/telemetry_record.h"
#include "datapath/error.h"
#include "datapath/event_ring.h"
#include "common/unique_fd.h"

namespace shhim::agent {
namespace {

// --record: FILE grows to 1 GB, then becomes FILE.1 (the one older file kept).
constexpr core::RotationLimits kRecordingLimits{1'000'000'000, 1};

using shhim::UniqueFd;

std::int64_t clockNs(clockid_t clock)
{
    timespec ts = {};
    ::clock_gettime(clock, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string endpointText(const v1::Endpoint& endpoint)
{
    const bool ipv6 = endpoint.address().find(':') != std::string::npos;
    return (ipv6 ? "[" + endpoint.address() + "]" : endpoint.address()) + ":" + std::to_string(endpoint.port());
}

void logEvent(const shhim_event& raw)
{
    const std::int64_t offset = core::monoToUnixOffsetNs(clockNs(CLOCK_REALTIME), clockNs(CLOCK_MONOTONIC));
    const v1::Event event = core::toEvent(raw, offset);
    spdlog::info("event {} {} client {} -> server {}{} (ifindex {}, {})", event.kind(), event.protocol(),
                 endpointText(event.client()), endpointText(event.server()),
                 event.detail_text().empty() ? "" : " " + event.detail_text(), event.ifindex(), event.hook());
}

void logPolicyErrors(const PolicyCandidate& candidate, const char* prefix)
{
    for (const auto& line : candidate.errors)
        spdlog::error("{}{}", prefix, line);
}

// SIGHUP: re-read --policy FILE; only a valid file replaces the running policy.
void reloadPolicy(const std::string& path, AgentState& state, PolicyApplier& applier)
{
    const PolicyCandidate candidate = candidateFromFile(path, "SIGHUP");
    const PolicyPtr current = state.appliedPolicy();
    if (!candidate.policy) {
        logPolicyErrors(candidate, "SIGHUP: ");
        notePolicy(state.observability(), "rejected", path, nullptr, joinedErrors(candidate.errors));
        spdlog::error("SIGHUP: policy {} not applied ({} error{}); {}", path, candidate.errors.size(),
                      candidate.errors.size() == 1 ? "" : "s",
                      current ? "keeping " + describePolicy(*current) : std::string("still running without a policy"));
        return;
    }
    if (current && current->validated.version == candidate.policy->validated.version) {
        spdlog::info("SIGHUP: {} unchanged", describePolicy(*current));
        return;
    }
    try {
        applier.apply(candidate.policy);
    } catch (const PolicyApplyError& e) {
        notePolicy(state.observability(), "rejected", path, nullptr, e.what());
        spdlog::error("SIGHUP: {}; keeping {}", e.what(),
                      current ? describePolicy(*current) : std::string("no policy"));
        return;
    }
    notePolicy(state.observability(), "reloaded", path, state.appliedPolicy());
    spdlog::info("SIGHUP: applied {}", describePolicy(*candidate.policy));
}

// Backend request and error rates over the last tick window.
class RateTracker {
public:
    void tick(const std::vector<datapath::BackendRecord>& backends, AgentState& state)
    {
        const auto now = std::chrono::steady_clock::now();
        std::map<EndpointKey, shhim_backend> snapshot;
        for (const auto& record : backends)
            snapshot.emplace(endpointKey(record.endpoint), record.backend);
        if (previous_time_) {
            const double seconds = std::chrono::duration<double>(now - *previous_time_).count();
            std::map<EndpointKey, core::BackendRates> rates;
            for (const auto& [key, current] : snapshot) {
                const auto before = previous_.find(key);
                // A backend first seen in this window: all its counts are new.
                const shhim_backend empty{};
                rates.emplace(key,
                              core::rates(before == previous_.end() ? empty : before->second, current, seconds));
            }
            state.setRates(std::move(rates));
        }
        previous_ = std::move(snapshot);
        previous_time_ = now;
    }

private:
    std::map<EndpointKey, shhim_backend> previous_;
    std::optional<std::chrono::steady_clock::time_point> previous_time_;
};

// --flow-log: scans the kernel's flow table once a second and writes the
// finished, evicted and long-running flows (core/flow_log.h says which).
class FlowLogger {
public:
    static constexpr std::int64_t kScanEveryNs = 1'000'000'000;

    explicit FlowLogger(const FlowLogOptions& options)
        : writer_(options.path, options.limits), tracker_(options.timing)
    {
    }

    void tick(const datapath::Maps& maps, std::int64_t mono_ns)
    {
        if (mono_ns - last_scan_ns_ < kScanEveryNs)
            return;
        last_scan_ns_ = mono_ns;
        try {
            std::vector<std::pair<shhim_flow_key, shhim_flow>> flows;
            for (const auto& record : maps.flows())
                flows.emplace_back(record.key, record.flow);
            const std::int64_t offset = core::monoToUnixOffsetNs(clockNs(CLOCK_REALTIME), mono_ns);
            for (const auto& entry : tracker_.scan(flows, static_cast<std::uint64_t>(mono_ns)))
                writer_.write(core::toFlow(entry.key, entry.flow, offset));
            last_error_.clear();
        } catch (const std::exception& e) {
            // A full disk must not stop the agent; say it once until it changes.
            if (last_error_ != e.what())
                spdlog::error("{}", e.what());
            last_error_ = e.what();
        }
    }

private:
    FlowLogWriter writer_;
    core::FlowLogTracker tracker_;
    std::int64_t last_scan_ns_ = 0;
    std::string last_error_;
};

void addToEpoll(int epoll_fd, int fd, const char* what)
{
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
        datapath::throwErrno(std::string("add ") + what + " to epoll", errno);
}

sigset_t agentSignals()
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    return signals;
}

}  // namespace

void blockAgentSignals()
{
    const sigset_t signals = agentSignals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    // A client hanging up mid-write must not kill the agent.
    ::signal(SIGPIPE, SIG_IGN);
}

int runAgent(const AgentOptions& options)
{
    const auto started = std::chrono::steady_clock::now();
    AgentState state;
    PolicyPtr start_policy;
    if (!options.policy_path.empty()) {
        // Before anything touches the kernel: an invalid policy starts nothing.
        const PolicyCandidate candidate = candidateFromFile(options.policy_path, "shhimd --policy");
        if (!candidate.policy) {
            logPolicyErrors(candidate, "");
            spdlog::error("policy {} is invalid ({} error{}): not starting; `shhimctl policy check {}` lists the "
                          "same errors",
                          options.policy_path, candidate.errors.size(), candidate.errors.size() == 1 ? "" : "s",
                          options.policy_path);
            return kExitInvalidPolicy;
        }
        start_policy = candidate.policy;
    }

    // Before touching the kernel: a second agent on the same socket would
    // answer for a datapath it does not own.
    claimSocketPath(options.socket_path);

    // Also before the kernel: a flow log that cannot be written changes nothing.
    std::optional<FlowLogger> flow_log;
    if (!options.flow_log.path.empty()) {
        flow_log.emplace(options.flow_log);
        spdlog::info("flow log {}: rotated at {} bytes, {} old files kept, long flows every {} s",
                     options.flow_log.path, options.flow_log.limits.max_bytes, options.flow_log.limits.keep,
                     options.flow_log.timing.periodic_ns / 1'000'000'000);
    }

    // Also before the kernel: a model file that does not load changes nothing.
    std::optional<core::AnomalyModel> anomaly_model;
    if (!options.anomaly_model_path.empty()) {
        anomaly_model = core::readModelFile(options.anomaly_model_path);
        spdlog::info("anomaly model {}: {} ({} trees, trained on {} samples)", options.anomaly_model_path,
                     anomaly_model->version, anomaly_model->forest.trees.size(), anomaly_model->training.samples());
    }
    std::optional<FlowLogWriter> recording;
    if (!options.record_path.empty()) {
        recording.emplace(options.record_path, kRecordingLimits);
        spdlog::info("recording every tick's backend telemetry to {}", options.record_path);
    }

    if (options.load.interfaces.empty())
        spdlog::warn("no --iface given: packet hooks (XDP, TC) are not attached; only socket-level telemetry");
    const datapath::Datapath datapath = datapath::Datapath::start(options.load);
    spdlog::info("datapath ready: build {}, pin root {}, {}", datapath::formatBuildId(datapath.buildId()),
                 datapath.pinRoot(), datapath.reusedPinnedState() ? "reused pinned programs" : "programs loaded");

    // Priority classes: the policy validated above goes into the kernel's class tables.
    const auto classes = ClassControl::start(
        datapath.pinRoot(), options.load.interfaces, [](const std::string& line) { spdlog::info("{}", line); },
        static_cast<std::uint32_t>(options.tick.count()));
    // Entering and leaving stress mode: a log line (the Log above) and an event in the feed.
    classes->onStressChange([&state](const v1::StressNotice& notice) { noteStress(state.observability(), notice); });
    // Service routes: the same policy into the kernel's route tables.
    const auto routes = RouteControl::start(datapath.pinRoot(), [](const std::string& line) { spdlog::info("{}", line); });
    // Routing: the audit trail first (restart rebuilds the states from it), the probe worker, the engine.
    AuditLog audit(options.audit_path);
    ProbeWorker probes;
    Router router(*routes, audit, state.observability(), probes, [](const std::string& line) { spdlog::info("{}", line); },
                  options.anomaly_acts, std::move(anomaly_model));
    if (recording)
        router.recordTo([&recording](const v1::RecordedTick& tick) {
            if (!recording)
                return;
            try {
                recording->writeLine(core::toJsonLine(tick));
            } catch (const std::exception& e) {
                spdlog::error("recording stopped: {}", e.what());
                recording.reset();
            }
        });
    PolicyApplier applier(state, *classes, *routes, router, options.kernel_breaker);
    if (start_policy) {
        applier.apply(start_policy, true);
        notePolicy(state.observability(), "loaded", options.policy_path, state.appliedPolicy());
        spdlog::info("{}", describePolicy(*start_policy));
    }

    datapath::EventRing ring(datapath.maps().eventsFd(), [&state, &router](const shhim_event& event) {
        state.addEvent(event);
        publishFailure(state.observability(), event);  // the evidence first in the feed, then what it caused
        router.onEvent(event);                         // hard evidence is acted on per event, not per tick
        logEvent(event);
    });

    UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer)
        datapath::throwErrno("create tick timer", errno);
    itimerspec interval = {};
    interval.it_interval.tv_sec = options.tick.count() / 1000;
    interval.it_interval.tv_nsec = (options.tick.count() % 1000) * 1'000'000;
    interval.it_value = interval.it_interval;
    if (::timerfd_settime(timer.get(), 0, &interval, nullptr) != 0)
        datapath::throwErrno("start tick timer", errno);

    const sigset_t signals = agentSignals();
    UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd)
        datapath::throwErrno("create signalfd", errno);

    UniqueFd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_fd)
        datapath::throwErrno("create epoll instance", errno);
    addToEpoll(epoll_fd.get(), ring.epollFd(), "ring buffer");
    addToEpoll(epoll_fd.get(), timer.get(), "tick timer");
    addToEpoll(epoll_fd.get(), signal_fd.get(), "signalfd");
    addToEpoll(epoll_fd.get(), probes.eventFd(), "probe results");

    // Events the kernel queued while no agent was running.
    ring.consume();

    ApiServer server(options.socket_path, ApiContext{datapath, state, classes.get(), started, options.version, &applier, &router, &audit});
    spdlog::info("serving gRPC on unix:{} (tick {} ms)", options.socket_path, options.tick.count());

    // Metrics and dashboard: read-only; the agent runs on without them
    // (the datapath matters more) but says so.
    std::optional<HttpServer> http;
    if (!options.http_listen.empty()) {
        try {
            http.emplace(parseListenAddress(options.http_listen),
                         ApiContext{datapath, state, classes.get(), started, options.version, &applier, &router, &audit});
            spdlog::info("serving metrics and the dashboard on http://{}/", options.http_listen);
        } catch (const std::exception& e) {
            spdlog::error("HTTP listener not started, no /metrics or dashboard: {}", e.what());
        }
    }

    RateTracker rates;
    HistoryRecorder history;
    std::uint64_t events_lost = datapath.maps().counters()[SHHIM_CTR_EVENTS_LOST];
    std::string last_tick_error;  // logged once until it changes
    bool running = true;
    while (running) {
        epoll_event ready[8];
        const int n = ::epoll_wait(epoll_fd.get(), ready, 8, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            datapath::throwErrno("epoll_wait", errno);
        }
        for (int i = 0; i < n; ++i) {
            const int fd = ready[i].data.fd;
            if (fd == ring.epollFd()) {
                ring.consume();
            } else if (fd == probes.eventFd()) {
                router.onProbes(probes.takeOutcomes());
            } else if (fd == timer.get()) {
                std::uint64_t expirations = 0;
                if (::read(timer.get(), &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
                    datapath::throwErrno("read tick timer", errno);
                // A failed read skips one tick; the kernel side is unaffected.
                try {
                    // One read of the backend table serves the rates and the history.
                    const auto backends = datapath.maps().backends();
                    rates.tick(backends, state);
                    history.tick(backends, state.observability());
                    classes->tick(static_cast<std::uint64_t>(clockNs(CLOCK_MONOTONIC)));
                    router.onTick(backends);
                    if (flow_log)
                        flow_log->tick(datapath.maps(), clockNs(CLOCK_MONOTONIC));
                    const std::uint64_t lost = datapath.maps().counters()[SHHIM_CTR_EVENTS_LOST];
                    if (lost > events_lost)
                        spdlog::warn("{} failure events lost (ring buffer full) since the last tick",
                                     lost - events_lost);
                    events_lost = lost;
                    last_tick_error.clear();
                } catch (const datapath::Error& e) {
                    if (last_tick_error != e.what())
                        spdlog::error("tick: {}", e.what());
                    last_tick_error = e.what();
                }
            } else if (fd == signal_fd.get()) {
                signalfd_siginfo info = {};
                while (::read(signal_fd.get(), &info, sizeof(info)) == sizeof(info)) {
                    if (info.ssi_signo == SIGHUP) {
                        if (options.policy_path.empty()) {
                            spdlog::info("SIGHUP: no --policy given, nothing to re-read");
                            continue;
                        }
                        reloadPolicy(options.policy_path, state, applier);
                    } else {
                        spdlog::info("{}: stopping", strsignal(static_cast<int>(info.ssi_signo)));
                        running = false;
                    }
                }
            }
        }
    }

    // Wake `observe --follow` streams so that the gRPC shutdown need not wait for them.
    state.observability().feed.close();
    audit.close();
    if (http)
        http->stop();
    server.shutdown();
    spdlog::info("stopped; programs stay attached and pinned under {} (fail-open, the kernel keeps counting); "
                 "`shhimd --detach --pin-root {}` removes them",
                 datapath.pinRoot(), datapath.pinRoot());
    return 0;
}

}  // namespace shhim::agent
