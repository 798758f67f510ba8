// The seven built-in priority classes (DESIGN.md "Priority classes") and
// the class table a policy ends up with once its overrides are applied.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "policy.pb.h"
#include "shhim.pb.h"

namespace shhim::core {

struct BuiltinClass {
    std::string_view name;
    std::uint32_t dscp;          // RFC 4594 service class (RFC 8622 LE for bulk)
    std::uint32_t skb_priority;  // TC_PRIO_* band
    std::uint32_t shed_order;    // 0 = never shed; 1 goes first under stress
    std::string_view carries;
    double stress_share;         // of the link kept while shed (policy ClassOverride.stress_share)
    double anomaly_sensitivity;  // the anomaly score's multiplier (ClassOverride.anomaly_sensitivity)
};

// What a class the policy adds keeps of a link while it is shed.
constexpr double kAddedClassStressShare = 0.01;
constexpr double kAddedClassAnomalySensitivity = 1.0;
constexpr double kMaxAnomalySensitivity = 10.0;

// Highest priority first.
std::span<const BuiltinClass> builtinClasses();
const BuiltinClass* findBuiltinClass(std::string_view name);

constexpr std::string_view kDefaultTrafficClass = "administrative";
constexpr std::uint32_t kMaxDscp = 63;
constexpr std::uint32_t kMaxSkbPriority = 15;  // TC_PRIO_MAX

// Built-ins (highest first) with the policy's overrides applied, then the
// classes the policy adds, in file order. Assumes a validated policy for
// the added classes' fields (an added class without dscp gets 0).
std::vector<v1::ResolvedClass> resolveClasses(const v1::Policy& policy);

}  // namespace shhim::core
