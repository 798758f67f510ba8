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

#include "agent/logging.h"
#include "agent/policy.h"
#include "agent/server.h"
#include "agent/state.h"
#include "core/telemetry.h"
#include "datapath/error.h"
#include "datapath/event_ring.h"
#include "common/unique_fd.h"

namespace shhim::agent {
namespace {

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

std::optional<PolicySummary> loadPolicyLogged(const std::string& path, const char* prefix = "")
{
    PolicySummary policy = loadPolicy(path);
    std::string names;
    for (const auto& name : policy.service_names)
        names += (names.empty() ? "" : ", ") + name;
    spdlog::info("{}policy {}{}: {} service{}{}", prefix, path, policy.name.empty() ? "" : " (" + policy.name + ")",
                 policy.service_names.size(), policy.service_names.size() == 1 ? "" : "s",
                 names.empty() ? "" : ": " + names);
    return policy;
}

// Backend request and error rates over the last tick window.
class RateTracker {
public:
    void tick(const datapath::Maps& maps, AgentState& state)
    {
        const auto now = std::chrono::steady_clock::now();
        std::map<EndpointKey, shhim_backend> snapshot;
        for (const auto& record : maps.backends())
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
    if (!options.policy_path.empty()) {
        try {
            state.setPolicy(loadPolicyLogged(options.policy_path));
        } catch (const PolicyError& e) {
            spdlog::error("{}", e.what());
            return 1;
        }
    }

    // Before touching the kernel: a second agent on the same socket would
    // answer for a datapath it does not own.
    claimSocketPath(options.socket_path);

    if (options.load.interfaces.empty())
        spdlog::warn("no --iface given: packet hooks (XDP, TC) are not attached; only socket-level telemetry");
    const datapath::Datapath datapath = datapath::Datapath::start(options.load);
    spdlog::info("datapath ready: build {}, pin root {}, {}", datapath::formatBuildId(datapath.buildId()),
                 datapath.pinRoot(), datapath.reusedPinnedState() ? "reused pinned programs" : "programs loaded");

    datapath::EventRing ring(datapath.maps().eventsFd(), [&state](const shhim_event& event) {
        state.addEvent(event);
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

    // Events the kernel queued while no agent was running.
    ring.consume();

    ApiServer server(options.socket_path, ApiContext{datapath, state, started, options.version});
    spdlog::info("serving gRPC on unix:{} (tick {} ms)", options.socket_path, options.tick.count());

    RateTracker rates;
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
            } else if (fd == timer.get()) {
                std::uint64_t expirations = 0;
                if (::read(timer.get(), &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
                    datapath::throwErrno("read tick timer", errno);
                // A failed read skips one tick; the kernel side is unaffected.
                try {
                    rates.tick(datapath.maps(), state);
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
                        try {
                            state.setPolicy(loadPolicyLogged(options.policy_path, "SIGHUP: reloaded "));
                        } catch (const PolicyError& e) {
                            spdlog::error("SIGHUP: policy not reloaded, keeping the previous one: {}", e.what());
                        }
                    } else {
                        spdlog::info("{}: stopping", strsignal(static_cast<int>(info.ssi_signo)));
                        running = false;
                    }
                }
            }
        }
    }

    server.shutdown();
    spdlog::info("stopped; programs stay attached and pinned under {} (fail-open, the kernel keeps counting); "
                 "`shhimd --detach --pin-root {}` removes them",
                 datapath.pinRoot(), datapath.pinRoot());
    return 0;
}

}  // namespace shhim::agent
