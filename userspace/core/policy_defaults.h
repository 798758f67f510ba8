// What a policy means where it leaves a field unset: one definition for
// the checks, the printers and the code that acts on a policy.
#pragma once

#include <cstdint>
#include <string_view>

#include "policy.pb.h"

namespace shhim::core {

struct StressSettings {
    bool enabled = false;
    double enter_utilization = 0.9;
    double exit_utilization = 0.75;
    std::uint32_t hold_ms = 2000;
};

StressSettings stressSettings(const v1::StressMode& stress);

// The class of traffic no service and no rule matches ("administrative").
std::string_view defaultClass(const v1::Policy& policy);

// The range's last port: `last`, or `first` when the file gave no `last`
// (0 is not a valid port, so 0 always means unset in a checked policy).
std::uint32_t lastPort(const v1::PortRange& ports);

}  // namespace shhim::core
