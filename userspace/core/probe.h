// Active health probes, the pure half: what a probe sends and whether an
// answer passes. The agent (agent/prober.cpp) does the socket work. A probe
// carries no patient data: an HTTP GET of a configured path, or an HL7
// network-management message (NMD^N02) that any HL7 v2 engine acknowledges.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy.pb.h"

namespace shhim::core {

// Defaults of HealthProbe's optional fields (see policy.proto).
struct ProbeSettings {
    std::string http_path = "/";
    std::chrono::milliseconds interval{1000};
    std::chrono::milliseconds timeout{500};
    std::uint32_t successes = 3;
};

ProbeSettings probeSettings(const v1::Service& service);

// "GET PATH HTTP/1.1" with Host and Connection: close.
std::string httpProbeRequest(std::string_view host_port, std::string_view path);
// An MLLP frame holding MSH + NMD^N02 with the given control id.
std::string mllpProbeRequest(std::string_view control_id, std::string_view timestamp);

enum class ProbeVerdict : std::uint8_t {
    NeedMore,  // the answer so far is incomplete
    Pass,
    Fail,
};

struct ProbeJudgement {
    ProbeVerdict verdict = ProbeVerdict::NeedMore;
    std::string detail;  // "HTTP 200", "MSA AE", "not an HTTP status line"
};

// HTTP: decided by the status line alone; 2xx and 3xx pass.
ProbeJudgement judgeHttpProbe(std::string_view received);
// MLLP: decided once a whole frame arrived; MSA-1 AA or CA passes.
ProbeJudgement judgeMllpProbe(std::string_view received);

}  // namespace shhim::core
