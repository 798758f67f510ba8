#include "core/policy_classes.h"

#include <array>
#include <string>

namespace shhim::core {
namespace {

// skb priority: TC_PRIO_INTERACTIVE (6) down to TC_PRIO_BULK (2) for the
// clinical classes, BESTEFFORT (0) for administrative and FILLER (1) for
// bulk, which pfifo_fast and the default prio priomap put in the lowest band.
// Shedding starts with bulk and never reaches clinical traffic by default.
constexpr std::array<BuiltinClass, 7> kBuiltinClasses = {{
// Anomaly sensitivity: the more a class's patients depend on it, the earlier
// a degrading backend of it is drained.
    {"life-critical", 46, 6, 0, "monitor alarms, nurse call, code alerts", 0, 2.0},
    {"emergency", 40, 5, 0, "ED/ICU orders and results, stat labs, EMS hand-off", 0, 1.5},
    {"clinical-realtime", 34, 4, 0, "telemedicine audio/video", 0.1, 1.25},
    {"clinical", 18, 3, 0, "EHR/FHIR API, lab (HL7 v2/MLLP), pharmacy", 0.06, 1.0},
    {"imaging", 10, 2, 3, "DICOM / PACS transfers", 0.04, 1.0},
    {"administrative", 0, 0, 2, "scheduling, billing, insurance", 0.02, 0.8},
    {"bulk", 1, 1, 1, "backups, analytics, updates", 0.01, 0.5},
}};

void applyOverride(const v1::ClassOverride& override, v1::ResolvedClass& resolved)
{
    if (override.has_dscp())
        resolved.set_dscp(override.dscp());
    if (override.has_skb_priority())
        resolved.set_skb_priority(override.skb_priority());
    if (override.has_shed_order())
        resolved.set_shed_order(override.shed_order());
    if (override.has_stress_share())
        resolved.set_stress_share(override.stress_share());
    if (override.has_anomaly_sensitivity())
        resolved.set_anomaly_sensitivity(override.anomaly_sensitivity());
    if (!override.description().empty())
        resolved.set_description(override.description());
}

}  // namespace

std::span<const BuiltinClass> builtinClasses() { return kBuiltinClasses; }

const BuiltinClass* findBuiltinClass(std::string_view name)
{
    for (const auto& builtin : kBuiltinClasses)
        if (builtin.name == name)
            return &builtin;
    return nullptr;
}

std::vector<v1::ResolvedClass> resolveClasses(const v1::Policy& policy)
{
    std::vector<v1::ResolvedClass> classes;
    for (const auto& builtin : kBuiltinClasses) {
        v1::ResolvedClass resolved;
        resolved.set_name(std::string(builtin.name));
        resolved.set_dscp(builtin.dscp);
        resolved.set_skb_priority(builtin.skb_priority);
        resolved.set_shed_order(builtin.shed_order);
        resolved.set_builtin(true);
        resolved.set_description(std::string(builtin.carries));
        resolved.set_stress_share(builtin.stress_share);
        resolved.set_anomaly_sensitivity(builtin.anomaly_sensitivity);
        for (const auto& override : policy.classes())
            if (override.name() == builtin.name)
                applyOverride(override, resolved);
        classes.push_back(std::move(resolved));
    }
    for (const auto& added : policy.classes()) {
        if (findBuiltinClass(added.name()))
            continue;
        v1::ResolvedClass resolved;
        resolved.set_name(added.name());
        resolved.set_stress_share(kAddedClassStressShare);
        resolved.set_anomaly_sensitivity(kAddedClassAnomalySensitivity);
        applyOverride(added, resolved);
        classes.push_back(std::move(resolved));
    }
    return classes;
}

}  // namespace shhim::core
