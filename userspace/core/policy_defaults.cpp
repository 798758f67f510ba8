#include "core/policy_defaults.h"

#include "core/policy_classes.h"

namespace shhim::core {

StressSettings stressSettings(const v1::StressMode& stress)
{
    StressSettings settings;
    settings.enabled = stress.enabled();
    if (stress.has_enter_utilization())
        settings.enter_utilization = stress.enter_utilization();
    if (stress.has_exit_utilization())
        settings.exit_utilization = stress.exit_utilization();
    if (stress.has_hold_ms())
        settings.hold_ms = stress.hold_ms();
    return settings;
}

std::string_view defaultClass(const v1::Policy& policy)
{
    return policy.default_class().empty() ? kDefaultTrafficClass : std::string_view(policy.default_class());
}

std::uint32_t lastPort(const v1::PortRange& ports) { return ports.last() != 0 ? ports.last() : ports.first(); }

}  // namespace shhim::core
