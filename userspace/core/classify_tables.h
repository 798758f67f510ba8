// Priority-class tables: what the kernel needs from a policy to classify,
// mark and shed packets (issue 3), as plain values.
//
// compileClassTables() turns a validated shhim::v1::Policy into ClassTables
// (pure: no syscalls); datapath::PolicyMaps::apply() writes them into the
// BPF maps as one atomic policy generation. The structs here depend on
// nothing but the standard library, so the datapath (which must not link
// protobuf) can include this header for the types alone.
//
// Classification of a flow, by its server endpoint (the kernel does this
// once per flow and policy generation):
//   1. services: the exact endpoint (address, port, protocol) of a service's
//      VIP or of one of its backends -> the service's class;
//   2. rules, in policy order: the first whose prefix holds the server
//      address, whose protocol matches (0 = any) and whose port range holds
//      the server port -> the rule's class;
//   3. default_class.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace shhim::v1 {
class Policy;
}

namespace shhim::core {

// Class ids: the seven built-ins, index = priority, highest first (DESIGN.md
// "Priority classes"; the same numbers as enum shhim_class in
// bpf/shhim_abi.h), then the classes a policy adds, from 7 on.
inline constexpr std::size_t kClassCount = 7;   // built-in classes
inline constexpr std::size_t kMaxClasses = 16;  // built-ins and added ones (SHHIM_CLASS_SLOTS)
inline constexpr std::uint8_t kClassLifeCritical = 0;
inline constexpr std::uint8_t kClassEmergency = 1;
inline constexpr std::uint8_t kClassClinicalRealtime = 2;
inline constexpr std::uint8_t kClassClinical = 3;
inline constexpr std::uint8_t kClassImaging = 4;
inline constexpr std::uint8_t kClassAdministrative = 5;
inline constexpr std::uint8_t kClassBulk = 6;
inline constexpr std::uint8_t kDefaultClass = kClassAdministrative;
inline constexpr std::array<std::string_view, kClassCount> kBuiltinClassNames = {
    "life-critical", "emergency", "clinical-realtime", "clinical", "imaging", "administrative", "bulk"};

// The built-ins: "life-critical", "emergency", "clinical-realtime",
// "clinical", "imaging", "administrative", "bulk"; "" for any other id
// (a policy's own classes are named in ClassTables::classes).
std::string_view className(std::uint8_t class_id);
// The inverse for built-ins; also accepts '_' for '-' and any letter case.
std::optional<std::uint8_t> classFromName(std::string_view name);
// RFC 4594 / RFC 8622 defaults: 46, 40, 34, 18, 10, 0, 1.
std::uint8_t defaultDscp(std::uint8_t class_id);

// Limits of the kernel tables (bpf/shhim_abi.h); compileClassTables rejects
// a policy beyond them.
inline constexpr std::size_t kMaxServiceEndpoints = 4096;
inline constexpr std::size_t kMaxRulePrefixes = 1024;
inline constexpr std::size_t kMaxRulesPerPrefix = 16;  // rules that may hold one address
inline constexpr std::size_t kMaxInterfaces = 31;       // interface slots 1..31
inline constexpr std::uint32_t kMaxBurstBytes = 1u << 30;

// An address in the kernel's 16-byte form: IPv6, or IPv4-mapped (::ffff:a.b.c.d).
using Address16 = std::array<std::uint8_t, 16>;

struct ClassConfig {
    std::string name;                  // "life-critical", ..., or a policy's own class
    std::uint8_t dscp = 0;             // 0..63
    // Egress skb->priority where shhim's HTB is not installed (a TC_PRIO_*
    // band); with HTB the kernel writes the class's HTB id instead.
    std::uint32_t skb_priority = 0;
    std::uint8_t shed_rank = 0;        // 0: never shed; 1: shed first, 2: next, ... (the policy's shed_order)
    std::uint64_t rate_bps = 0;        // rate left to the class in stress; 0: rate_permille of the link
    std::uint16_t rate_permille = 0;   // share of the interface capacity in stress (0..1000)
    std::uint32_t burst_bytes = 0;     // token bucket depth

    bool operator==(const ClassConfig&) const = default;
};

struct ServiceEndpoint {
    Address16 address{};
    std::uint8_t family = 4;           // 4 or 6
    std::uint16_t port = 0;            // host order
    std::uint8_t protocol = 6;         // IPPROTO_TCP (6) or IPPROTO_UDP (17)

    bool operator==(const ServiceEndpoint&) const = default;
};

struct ServiceClass {
    ServiceEndpoint endpoint;
    std::uint8_t class_id = kDefaultClass;
    std::uint32_t service_index = 0;   // position of the service in the policy
    std::string service;               // its name, for messages

    bool operator==(const ServiceClass&) const = default;
};

struct ClassRule {
    Address16 prefix{};                // masked to prefix_length
    std::uint8_t prefix_length = 0;    // bits of the 16-byte form: an IPv4 /p is 96 + p
    std::uint16_t port_lo = 0;         // server port range, host order, inclusive
    std::uint16_t port_hi = 65535;
    std::uint8_t protocol = 0;         // 0: any
    std::uint8_t class_id = kDefaultClass;
    std::uint32_t rule_index = 0;      // position in the policy (first match wins)
    std::string name;                  // for messages

    bool operator==(const ClassRule&) const = default;
};

struct InterfaceConfig {
    std::string name;                  // resolved to an ifindex when applied
    bool remark_untrusted = false;     // ingress: rewrite DSCP to the class's
    std::uint64_t capacity_bps = 0;    // 0: unknown (no auto stress, no HTB)

    bool operator==(const InterfaceConfig&) const = default;
};

struct ClassTables {
    // Index = class id: the seven built-ins, then the policy's own (at most kMaxClasses).
    std::vector<ClassConfig> classes;
    std::uint8_t default_class = kDefaultClass;
    std::vector<ServiceClass> services;     // unique endpoints
    std::vector<ClassRule> rules;           // policy order
    std::vector<InterfaceConfig> interfaces;
    // Stress mode (auto): enter when an interface's measured egress passes
    // stress_enter of its capacity for stress_hold_ms; leave below stress_exit.
    bool stress_enabled = false;            // the policy turns auto stress on
    double stress_enter = 0.9;
    double stress_exit = 0.75;
    std::uint32_t stress_hold_ms = 2000;

    bool operator==(const ClassTables&) const = default;
    // The class's name, or "class N" for an id the tables do not have.
    // (Inline, like everything datapath uses: it does not link core.)
    std::string nameOf(std::uint8_t class_id) const
    {
        if (class_id < classes.size() && !classes[class_id].name.empty())
            return classes[class_id].name;
        if (class_id < kClassCount)
            return std::string(kBuiltinClassNames[class_id]);
        return "class " + std::to_string(class_id);
    }
    // The id of a class name, built-in or added.
    std::optional<std::uint8_t> idOf(std::string_view name) const
    {
        for (std::size_t i = 0; i < classes.size(); ++i)
            if (classes[i].name == name)
                return static_cast<std::uint8_t>(i);
        for (std::size_t i = 0; i < kClassCount; ++i)
            if (kBuiltinClassNames[i] == name)
                return static_cast<std::uint8_t>(i);
        return std::nullopt;
    }
};

class ClassTablesError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The tables of a policy that names no services, rules or interfaces: the
// seven built-ins with their defaults (DSCP, skb priority and shed order as
// core/policy_classes.h defines them) and a stress share for each class.
ClassTables defaultClassTables();

// Compiles a policy that passed validation (core/policy_validate.h) into
// the kernel's tables: the classes as resolveClasses() gives them (ids in
// that order), every service's address and backends (primary and fallback)
// as service endpoints, every rule once per CIDR (ICMP rules once per
// family), interfaces with their capacity (re-marking untrusted DSCP on
// interfaces facing clients), the stress settings. Throws ClassTablesError
// naming the field for what only this translation can find: more classes
// than the kernel has ids for, limits of the kernel tables, more than
// kMaxRulesPerPrefix rules holding one address.
ClassTables compileClassTables(const shhim::v1::Policy& policy);

// The checks compileClassTables makes on its result (and ClassControl
// before applying tables): class count and settings, limits, duplicate
// service endpoints with different classes, rule overlap. Empty: fine.
std::vector<std::string> classTablesProblems(const ClassTables& tables);

// ---- rule prefixes (inline: datapath uses them without linking core) ----

// The address with every bit after `length` cleared.
inline Address16 maskAddress(const Address16& address, std::uint8_t length)
{
    Address16 out{};
    for (std::size_t byte = 0; byte < out.size(); ++byte) {
        const int bits = static_cast<int>(length) - static_cast<int>(byte) * 8;
        if (bits >= 8)
            out[byte] = address[byte];
        else if (bits > 0)
            out[byte] = static_cast<std::uint8_t>(address[byte] & (0xff << (8 - bits)));
    }
    return out;
}

// True when prefix/length holds address.
inline bool prefixContains(const Address16& prefix, std::uint8_t length, const Address16& address)
{
    return maskAddress(address, length) == maskAddress(prefix, length);
}

// One distinct rule prefix with the rules that hold every address under it,
// in policy order: the content of one kernel LPM entry. Every rule holding
// an address also holds the longest rule prefix that matches the address
// (two prefixes holding one address are nested), so one longest-prefix
// lookup finds the complete ordered candidate list.
struct RulePrefix {
    Address16 prefix{};
    std::uint8_t prefix_length = 0;
    std::vector<std::size_t> rules;    // indexes into the rule list, policy order

    bool operator==(const RulePrefix&) const = default;
};

// Distinct prefixes in order of first appearance, each with its candidates.
inline std::vector<RulePrefix> rulePrefixes(const std::vector<ClassRule>& rules)
{
    std::vector<RulePrefix> out;
    for (const ClassRule& rule : rules) {
        const Address16 masked = maskAddress(rule.prefix, rule.prefix_length);
        bool seen = false;
        for (const RulePrefix& p : out)
            seen = seen || (p.prefix_length == rule.prefix_length && p.prefix == masked);
        if (!seen)
            out.push_back({masked, rule.prefix_length, {}});
    }
    for (RulePrefix& p : out) {
        for (std::size_t i = 0; i < rules.size(); ++i) {
            // Rule i holds every address under p when its prefix is no longer and holds p.
            if (rules[i].prefix_length <= p.prefix_length &&
                prefixContains(rules[i].prefix, rules[i].prefix_length, p.prefix))
                p.rules.push_back(i);
        }
    }
    return out;
}

}  // namespace shhim::core
