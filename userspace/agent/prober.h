// Active health probes of ejected backends, on one worker thread so that a
// probe waiting for its timeout never delays the event loop. The loop
// submits targets, polls eventFd() and takes the outcomes. Each probe
// carries SHHIM_PROBE_MARK so that the connect hooks leave it on the
// backend it probes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/unique_fd.h"
#include "core/policy_address.h"
#include "core/probe.h"
#include "policy.pb.h"

namespace shhim::agent {

struct ProbeTarget {
    std::string service;
    std::string backend;  // as the policy writes it, "198.18.0.10:8080"
    core::SocketAddress address;
    v1::AppProtocol protocol = v1::APP_PROTOCOL_TCP;
    core::ProbeSettings settings;
};

struct ProbeOutcome {
    std::string service;
    std::string backend;
    bool passed = false;
    std::string detail;  // "connected", "HTTP 200", "connect: Connection refused", "timeout after 500 ms"
    std::chrono::microseconds took{0};
};

// One probe, blocking for at most target.settings.timeout.
ProbeOutcome runProbe(const ProbeTarget& target);

class ProbeWorker {
public:
    ProbeWorker();
    ~ProbeWorker();
    ProbeWorker(const ProbeWorker&) = delete;
    ProbeWorker& operator=(const ProbeWorker&) = delete;

    // Ignored while the same (service, backend) is queued or running.
    void submit(ProbeTarget target);
    // Readable when outcomes are waiting.
    int eventFd() const { return event_fd_.get(); }
    std::vector<ProbeOutcome> takeOutcomes();

private:
    void run();

    UniqueFd event_fd_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<ProbeTarget> queue_;
    std::set<std::pair<std::string, std::string>> pending_;
    std::vector<ProbeOutcome> outcomes_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace shhim::agent
