#include "core/policy_validate.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/policy_address.h"
#include "core/policy_classes.h"
#include "core/policy_defaults.h"

namespace shhim::core {
namespace {

constexpr std::size_t kMaxNameLength = 63;        // a DNS label
constexpr std::size_t kMaxInterfaceNameLength = 15;  // IFNAMSIZ - 1
constexpr std::uint64_t kMaxCapacityMbps = 10'000'000;  // 10 Tbit/s: beyond is a unit mistake

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// Patient-safety floor: these classes keep flowing whatever the load.
bool isNeverShed(std::string_view class_name) { return class_name == "life-critical" || class_name == "emergency"; }

std::string number(double value)
{
    char text[32];
    std::snprintf(text, sizeof(text), "%g", value);
    return text;
}

// Lowercase letters, digits and '-', starting and ending with a letter or digit.
bool isDnsLabel(std::string_view name)
{
    if (name.empty() || name.size() > kMaxNameLength || name.front() == '-' || name.back() == '-')
        return false;
    for (const char c : name)
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
            return false;
    return true;
}

// The kernel's dev_valid_name().
std::optional<std::string> interfaceNameProblem(std::string_view name)
{
    if (name.empty())
        return "an interface name cannot be empty";
    if (name.size() > kMaxInterfaceNameLength)
        return quoted(name) + " is " + std::to_string(name.size()) + " bytes; interface names have at most " +
               std::to_string(kMaxInterfaceNameLength) + " (IFNAMSIZ)";
    if (name == "." || name == "..")
        return quoted(name) + " is not a valid interface name";
    for (const char c : name)
        if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)))
            return quoted(name) + " is not a valid interface name (no '/', ':' or whitespace)";
    return std::nullopt;
}

class Validator {
public:
    Validator(const v1::Policy& policy, const SourceMap& sources, const std::vector<PolicyIssue>& mapping_issues)
        : policy_(policy), sources_(sources), mapping_issues_(mapping_issues)
    {
        for (const auto& builtin : builtinClasses())
            known_classes_.emplace_back(builtin.name);
        for (const auto& added : policy.classes())
            if (!findBuiltinClass(added.name()) && !added.name().empty())
                known_classes_.push_back(added.name());
    }

    std::vector<PolicyIssue> run()
    {
        checkHeader();
        checkServices();
        checkRules();
        checkClasses();
        checkInterfaces();
        checkStress();
        return std::move(issues_);
    }

private:
    void report(const std::string& path, std::string message)
    {
        for (const auto& earlier : mapping_issues_)
            if (isWithin(path, earlier.path))
                return;
        issues_.push_back({path, sources_.find(path), std::move(message)});
    }

    bool given(const std::string& path) const { return sources_.given(path); }

    // Whether the mapper found something wrong at or below `path`.
    bool mappingIssueWithin(const std::string& path) const
    {
        for (const auto& earlier : mapping_issues_)
            if (isWithin(earlier.path, path))
                return true;
        return false;
    }

    // --- top level ---------------------------------------------------------

    void checkHeader()
    {
        if (given("schema_version") && policy_.schema_version() != kPolicySchemaVersion)
            report("schema_version", "unsupported schema version " + std::to_string(policy_.schema_version()) +
                                         " (this shhim reads " + std::to_string(kPolicySchemaVersion) + ")");
        if (given("name") && policy_.name().empty())
            report("name", "must not be empty");
        if (given("default_class"))
            checkClassReference("default_class", policy_.default_class());
    }

    // --- classes -----------------------------------------------------------

    bool isKnownClass(std::string_view name) const
    {
        for (const auto& known : known_classes_)
            if (known == name)
                return true;
        return false;
    }

    std::string knownClassList() const
    {
        std::string list;
        for (const auto& known : known_classes_)
            list += (list.empty() ? "" : ", ") + known;
        return list;
    }

    void checkClassReference(const std::string& path, const std::string& name)
    {
        if (!isKnownClass(name))
            report(path, "unknown class " + quoted(name) + " (known: " + knownClassList() + ")");
    }

    void checkClasses()
    {
        std::map<std::string, std::string> seen;  // name -> path
        for (int i = 0; i < policy_.classes_size(); ++i) {
            const v1::ClassOverride& override = policy_.classes(i);
            const std::string path = elementPath("classes", static_cast<std::size_t>(i));
            if (const auto [first, inserted] = seen.emplace(override.name(), path); !inserted)
                report(fieldPath(path, "name"), "class " + quoted(override.name()) + " is already set by " +
                                                    first->second + "; give each class once");
            checkClassOverride(override, path);
        }
        checkShedOrder();
        checkStressShares();
    }

    void checkClassOverride(const v1::ClassOverride& override, const std::string& path)
    {
        const BuiltinClass* builtin = findBuiltinClass(override.name());
        if (!builtin && !isDnsLabel(override.name()))
            report(fieldPath(path, "name"), quoted(override.name()) + " is not a valid class name (lowercase "
                                            "letters, digits and '-', at most 63)");
        else if (!builtin && !override.has_dscp())
            report(fieldPath(path, "dscp"), newClassWithoutDscp(override.name()));
        if (override.has_dscp() && override.dscp() > kMaxDscp)
            report(fieldPath(path, "dscp"),
                   "DSCP " + std::to_string(override.dscp()) + " is out of range (0-" + std::to_string(kMaxDscp) + ")");
        if (override.has_skb_priority() && override.skb_priority() > kMaxSkbPriority)
            report(fieldPath(path, "skb_priority"), "skb priority " + std::to_string(override.skb_priority()) +
                                                        " is out of range (0-" + std::to_string(kMaxSkbPriority) +
                                                        ", TC_PRIO_MAX)");
        if (builtin && isNeverShed(builtin->name) && override.has_shed_order() && override.shed_order() != 0)
            report(fieldPath(path, "shed_order"),
                   std::string(builtin->name) + " traffic is never shed: shed_order must be 0");
        if (override.has_stress_share() && !(override.stress_share() >= 0.0 && override.stress_share() <= 1.0))
            report(fieldPath(path, "stress_share"),
                   number(override.stress_share()) + " is out of range (a share of the link: 0 to 1)");
        if (override.has_anomaly_sensitivity() &&
            !(override.anomaly_sensitivity() >= 0.0 && override.anomaly_sensitivity() <= kMaxAnomalySensitivity))
            report(fieldPath(path, "anomaly_sensitivity"),
                   number(override.anomaly_sensitivity()) +
                       " is out of range (the anomaly score's multiplier: 0 to 10; 0 = the score never ejects)");
    }

    // stress_share only means something for a class that is shed, and the
    // shed classes' shares together cannot exceed the link.
    void checkStressShares()
    {
        const std::vector<v1::ResolvedClass> resolved = resolveClasses(policy_);
        std::string last_share_path;
        bool all_in_range = true;  // an out-of-range share is reported on its own, not summed
        for (int i = 0; i < policy_.classes_size(); ++i) {
            const v1::ClassOverride& override = policy_.classes(i);
            if (!override.has_stress_share())
                continue;
            all_in_range = all_in_range && override.stress_share() >= 0.0 && override.stress_share() <= 1.0;
            const std::string path = fieldPath(elementPath("classes", static_cast<std::size_t>(i)), "stress_share");
            last_share_path = path;
            for (const auto& c : resolved) {
                if (c.name() != override.name())
                    continue;
                if (isNeverShed(c.name()))
                    report(path, c.name() + " traffic is never shed: stress_share has no effect");
                else if (c.shed_order() == 0)
                    report(path, c.name() + " has shed_order 0 (never shed): stress_share has no effect "
                                            "unless shed_order is set too");
            }
        }
        double total = 0;
        std::string parts;
        for (const auto& c : resolved) {
            if (c.shed_order() == 0 || isNeverShed(c.name()))
                continue;
            total += c.stress_share();
            parts += (parts.empty() ? "" : " + ") + c.name() + " " + number(c.stress_share());
        }
        if (!last_share_path.empty() && all_in_range && total > 1.0 + 1e-9)
            report(last_share_path, "the shed classes keep more than the whole link under stress (" + parts + " = " +
                                        number(total) + "); the shares add up to at most 1");
    }

    static std::string newClassWithoutDscp(const std::string& name)
    {
        std::string message = quoted(name) + " is not a built-in class";
        for (const auto& builtin : builtinClasses())
            if (editDistanceSmall(name, builtin.name)) {
                message += " (did you mean " + quoted(builtin.name) + "?)";
                break;
            }
        return message + "; a new class must set dscp";
    }

    // Within two edits, by a simple bound good enough for a hint.
    static bool editDistanceSmall(std::string_view a, std::string_view b)
    {
        if (a.size() + 2 < b.size() || b.size() + 2 < a.size())
            return false;
        std::size_t prefix = 0;
        while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix])
            ++prefix;
        std::size_t suffix = 0;
        while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
               a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix])
            ++suffix;
        return std::max(a.size(), b.size()) - prefix - suffix <= 2;
    }

    static std::string shedText(std::uint32_t order)
    {
        return order == 0 ? std::string("never") : std::to_string(order);
    }

    // A built-in class that can be shed must not go before a lower-priority
    // built-in: shedding clinical while bulk still flows inverts the order
    // the classes exist for. Each override that takes part in an inversion
    // is reported once, naming the classes it conflicts with.
    void checkShedOrder()
    {
        const std::vector<v1::ResolvedClass> resolved = resolveClasses(policy_);
        const std::size_t builtins = builtinClasses().size();
        for (int i = 0; i < policy_.classes_size(); ++i) {
            const v1::ClassOverride& override = policy_.classes(i);
            if (!override.has_shed_order() || isNeverShed(override.name()))
                continue;  // never-shed classes are reported on their own
            std::size_t self = builtins;
            for (std::size_t c = 0; c < builtins; ++c)
                if (resolved[c].name() == override.name())
                    self = c;
            if (self == builtins)
                continue;  // an added class has no place in the built-in order
            const std::uint32_t mine = resolved[self].shed_order();
            std::string before, after;
            for (std::size_t other = 0; other < builtins; ++other) {
                const std::uint32_t theirs = resolved[other].shed_order();
                const std::string entry = resolved[other].name() + " (" + shedText(theirs) + ")";
                if (other < self && theirs != 0 && (mine == 0 || mine > theirs))
                    after += (after.empty() ? "" : ", ") + entry;
                if (other > self && mine != 0 && (theirs == 0 || theirs > mine))
                    before += (before.empty() ? "" : ", ") + entry;
            }
            if (before.empty() && after.empty())
                continue;
            std::string message = override.name() + " (shed_order " + shedText(mine) + ") would be shed";
            if (!before.empty())
                message += " before lower-priority " + before;
            if (!after.empty())
                message += std::string(before.empty() ? "" : " and") + " after higher-priority " + after;
            report(fieldPath(elementPath("classes", static_cast<std::size_t>(i)), "shed_order"),
                   message + ": lower-priority classes must be shed first or together");
        }
    }

    // --- services ----------------------------------------------------------

    void checkServices()
    {
        std::map<std::string, std::string> names;       // name -> path
        std::map<SocketAddress, std::string> addresses;  // address -> path
        for (int i = 0; i < policy_.services_size(); ++i) {
            const v1::Service& service = policy_.services(i);
            const std::string path = elementPath("services", static_cast<std::size_t>(i));
            checkServiceName(service, path, names);
            const std::optional<SocketAddress> address = checkServiceAddress(service, path, addresses);
            if (given(fieldPath(path, "class")))
                checkClassReference(fieldPath(path, "class"), service.class_());
            if (given(fieldPath(path, "backends")))
                checkBackendPools(service.backends(), fieldPath(path, "backends"), address);
            if (service.has_thresholds())
                checkThresholds(service.thresholds(), fieldPath(path, "thresholds"));
            if (service.has_probe())
                checkProbe(service.probe(), service.protocol(), fieldPath(path, "probe"));
        }
    }

    void checkServiceName(const v1::Service& service, const std::string& path,
                          std::map<std::string, std::string>& names)
    {
        const std::string name_path = fieldPath(path, "name");
        if (!given(name_path))
            return;
        if (!isDnsLabel(service.name())) {
            report(name_path, quoted(service.name()) +
                                  " is not a valid service name (lowercase letters, digits and '-', at most 63, "
                                  "starting and ending with a letter or digit)");
            return;
        }
        if (const auto [first, inserted] = names.emplace(service.name(), path); !inserted)
            report(name_path, "duplicate service name " + quoted(service.name()) + " (also " + first->second + ")");
    }

    std::optional<SocketAddress> checkServiceAddress(const v1::Service& service, const std::string& path,
                                                     std::map<SocketAddress, std::string>& addresses)
    {
        const std::string address_path = fieldPath(path, "address");
        if (!given(address_path))
            return std::nullopt;
        const ParseResult<SocketAddress> parsed = parseSocketAddress(service.address());
        if (!parsed.value) {
            report(address_path, parsed.error);
            return std::nullopt;
        }
        if (const auto [first, inserted] = addresses.emplace(*parsed.value, path); !inserted)
            report(address_path, "duplicate service address " + formatSocketAddress(*parsed.value) + " (also " +
                                     first->second + "): each service needs its own address:port");
        return parsed.value;
    }

    void checkBackendPools(const v1::BackendPools& pools, const std::string& path,
                           const std::optional<SocketAddress>& service_address)
    {
        if (pools.primary().empty())
            report(fieldPath(path, "primary"), "the primary pool has no backends (give at least one ADDRESS:PORT)");
        std::map<SocketAddress, std::string> seen;  // backend -> path, across both pools
        checkPool(pools.primary(), fieldPath(path, "primary"), service_address, seen);
        checkPool(pools.fallback(), fieldPath(path, "fallback"), service_address, seen);
        checkWeights(pools, fieldPath(path, "weights"), seen);
    }

    // Optional per-backend weights: a backend of this service's pools, once, 1..100.
    void checkWeights(const v1::BackendPools& pools, const std::string& path,
                      const std::map<SocketAddress, std::string>& backends)
    {
        std::map<SocketAddress, std::string> weighted;
        for (int i = 0; i < pools.weights_size(); ++i) {
            const v1::BackendWeight& w = pools.weights(i);
            const std::string at = elementPath(path, static_cast<std::size_t>(i));
            const std::string backend_path = fieldPath(at, "backend");
            if (given(backend_path)) {
                const ParseResult<SocketAddress> parsed = parseSocketAddress(w.backend());
                if (!parsed.value) {
                    report(backend_path, parsed.error);
                } else if (!backends.count(*parsed.value)) {
                    report(backend_path, "backend " + formatSocketAddress(*parsed.value) +
                                             " is in neither pool of this service (weights apply to its own backends)");
                } else if (const auto [first, inserted] = weighted.emplace(*parsed.value, at); !inserted) {
                    report(backend_path, "backend " + formatSocketAddress(*parsed.value) + " already has a weight at " +
                                             first->second);
                }
            }
            if (given(fieldPath(at, "weight")))
                checkCount(fieldPath(at, "weight"), w.weight(), 1, 100);
        }
    }

    void checkPool(const google::protobuf::RepeatedPtrField<std::string>& pool, const std::string& path,
                   const std::optional<SocketAddress>& service_address, std::map<SocketAddress, std::string>& seen)
    {
        for (int i = 0; i < pool.size(); ++i) {
            const std::string backend_path = elementPath(path, static_cast<std::size_t>(i));
            const ParseResult<SocketAddress> parsed = parseSocketAddress(pool[i]);
            if (!parsed.value) {
                report(backend_path, parsed.error);
                continue;
            }
            if (const auto [first, inserted] = seen.emplace(*parsed.value, backend_path); !inserted) {
                report(backend_path, "backend " + formatSocketAddress(*parsed.value) + " is already listed at " +
                                         first->second + "; a backend belongs to one pool, once");
                continue;
            }
            if (service_address && service_address->ip.family != parsed.value->ip.family)
                report(backend_path, "backend " + formatSocketAddress(*parsed.value) + " is " +
                                         familyName(parsed.value->ip.family) + " but the service address is " +
                                         familyName(service_address->ip.family) +
                                         " (rerouting rewrites headers and cannot change the family)");
        }
    }

    void checkFraction(const std::string& path, double value)
    {
        if (!(value > 0.0 && value <= 1.0))
            report(path, number(value) + " is out of range (a fraction: > 0 and <= 1)");
    }

    void checkCount(const std::string& path, std::uint64_t value, std::uint64_t low, std::uint64_t high)
    {
        if (value < low || value > high)
            report(path, std::to_string(value) + " is out of range (" + std::to_string(low) + "-" +
                             std::to_string(high) + ")");
    }

    void checkThresholds(const v1::Thresholds& t, const std::string& path)
    {
        if (t.has_p99_latency_ms() && !(t.p99_latency_ms() > 0.0 && t.p99_latency_ms() <= 600000.0))
            report(fieldPath(path, "p99_latency_ms"),
                   number(t.p99_latency_ms()) + " ms is out of range (> 0 and <= 600000)");
        if (t.has_error_rate())
            checkFraction(fieldPath(path, "error_rate"), t.error_rate());
        if (t.has_min_requests())
            checkCount(fieldPath(path, "min_requests"), t.min_requests(), 1, 1'000'000);
        if (t.has_window_ms())
            checkCount(fieldPath(path, "window_ms"), t.window_ms(), 100, 3'600'000);
        if (t.has_consecutive_failures())
            checkCount(fieldPath(path, "consecutive_failures"), t.consecutive_failures(), 1, 1000);
        if (t.has_ejection_ms())
            checkCount(fieldPath(path, "ejection_ms"), t.ejection_ms(), 1000, 3'600'000);
        if (t.has_max_ejected_fraction())
            checkFraction(fieldPath(path, "max_ejected_fraction"), t.max_ejected_fraction());
        if (t.has_fallback_hold_ms())
            checkCount(fieldPath(path, "fallback_hold_ms"), t.fallback_hold_ms(), 1000, 3'600'000);
    }

    void checkProbe(const v1::HealthProbe& probe, v1::AppProtocol protocol, const std::string& path)
    {
        if (!probe.http_path().empty())
            checkHttpPath(probe.http_path(), protocol, fieldPath(path, "http_path"));
        if (probe.has_interval_ms())
            checkCount(fieldPath(path, "interval_ms"), probe.interval_ms(), 100, 600'000);
        if (probe.has_timeout_ms())
            checkCount(fieldPath(path, "timeout_ms"), probe.timeout_ms(), 10, 60'000);
        if (probe.has_successes())
            checkCount(fieldPath(path, "successes"), probe.successes(), 1, 100);
    }

    // The path goes verbatim into a request line: nothing that could split it.
    void checkHttpPath(const std::string& http_path, v1::AppProtocol protocol, const std::string& path)
    {
        if (protocol != v1::APP_PROTOCOL_HTTP) {
            report(path, "is for http services only (this service's protocol is not http)");
            return;
        }
        const bool printable = std::all_of(http_path.begin(), http_path.end(),
                                           [](char c) { return c > ' ' && c < 0x7f; });
        if (http_path.front() != '/' || !printable || http_path.size() > 256)
            report(path, "'" + http_path + "' is not an absolute path of printable ASCII without spaces, "
                         "at most 256 bytes (e.g. \"/healthz\")");
    }

    // --- classification rules ----------------------------------------------

    void checkRules()
    {
        for (int i = 0; i < policy_.rules_size(); ++i)
            checkRule(policy_.rules(i), elementPath("rules", static_cast<std::size_t>(i)));
    }

    void checkRule(const v1::TrafficRule& rule, const std::string& path)
    {
        for (int c = 0; c < rule.cidrs_size(); ++c) {
            const ParseResult<Cidr> parsed = parseCidr(rule.cidrs(c));
            if (!parsed.value)
                report(elementPath(fieldPath(path, "cidrs"), static_cast<std::size_t>(c)), parsed.error);
        }
        if (rule.has_ports())
            checkPortRange(rule, fieldPath(path, "ports"));
        if (rule.cidrs().empty() && !rule.has_ports() && rule.protocol() == v1::TRANSPORT_ANY &&
            !mappingIssueWithin(path))
            report(path, "the rule matches all traffic (give cidrs, ports or protocol; for everything else set "
                         "default_class)");
        if (given(fieldPath(path, "class")))
            checkClassReference(fieldPath(path, "class"), rule.class_());
    }

    void checkPortRange(const v1::TrafficRule& rule, const std::string& path)
    {
        const v1::PortRange& ports = rule.ports();
        if (rule.protocol() == v1::TRANSPORT_ICMP) {
            report(path, "ICMP has no ports (drop ports, or match tcp or udp)");
            return;
        }
        const std::uint32_t last = given(fieldPath(path, "last")) ? ports.last() : lastPort(ports);
        bool in_range = true;
        for (const auto& [name, value] : {std::pair{"first", ports.first()}, std::pair{"last", last}}) {
            if (given(fieldPath(path, name)) && (value < 1 || value > 65535)) {
                report(fieldPath(path, name), "port " + std::to_string(value) + " is out of range (1-65535)");
                in_range = false;
            }
        }
        if (in_range && ports.first() > last)
            report(fieldPath(path, "last"), "the range ends (" + std::to_string(last) + ") before it starts (" +
                                                std::to_string(ports.first()) + ")");
    }

    // --- interfaces and stress mode ----------------------------------------

    void checkInterfaces()
    {
        std::map<std::string, std::string> seen;  // name -> path
        for (int i = 0; i < policy_.interfaces_size(); ++i) {
            const v1::Interface& interface = policy_.interfaces(i);
            const std::string path = elementPath("interfaces", static_cast<std::size_t>(i));
            if (given(fieldPath(path, "name"))) {
                if (const auto problem = interfaceNameProblem(interface.name()))
                    report(fieldPath(path, "name"), *problem);
                else if (const auto [first, inserted] = seen.emplace(interface.name(), path); !inserted)
                    report(fieldPath(path, "name"),
                           "interface " + quoted(interface.name()) + " is already listed at " + first->second);
            }
            if (given(fieldPath(path, "capacity_mbps")) &&
                (interface.capacity_mbps() == 0 || interface.capacity_mbps() > kMaxCapacityMbps))
                report(fieldPath(path, "capacity_mbps"),
                       std::to_string(interface.capacity_mbps()) + " Mbit/s is out of range (1-" +
                           std::to_string(kMaxCapacityMbps) + ")");
        }
    }

    void checkStress()
    {
        const v1::StressMode& stress = policy_.stress();
        if (stress.has_enter_utilization())
            checkFraction("stress.enter_utilization", stress.enter_utilization());
        if (stress.has_exit_utilization())
            checkFraction("stress.exit_utilization", stress.exit_utilization());
        // A threshold given alone is checked against the other's default.
        const StressSettings settings = stressSettings(stress);
        const double enter = settings.enter_utilization, exit = settings.exit_utilization;
        if ((stress.has_enter_utilization() || stress.has_exit_utilization()) && exit >= enter && exit <= 1.0 &&
            enter > 0.0)
            report(stress.has_exit_utilization() ? "stress.exit_utilization" : "stress.enter_utilization",
                   "exit_utilization " + number(exit) + (stress.has_exit_utilization() ? "" : " (default)") +
                       " must be below enter_utilization " + number(enter) +
                       (stress.has_enter_utilization() ? "" : " (default)"));
        if (stress.has_hold_ms())
            checkCount("stress.hold_ms", stress.hold_ms(), 100, 600'000);
        if (stress.enabled() && policy_.interfaces().empty())
            report("stress.enabled",
                   "stress mode needs at least one interface with capacity_mbps (utilization is measured against it)");
    }

    const v1::Policy& policy_;
    const SourceMap& sources_;
    const std::vector<PolicyIssue>& mapping_issues_;
    std::vector<std::string> known_classes_;
    std::vector<PolicyIssue> issues_;
};

}  // namespace

std::vector<PolicyIssue> validatePolicy(const v1::Policy& policy, const SourceMap& sources,
                                        const std::vector<PolicyIssue>& mapping_issues)
{
    return Validator(policy, sources, mapping_issues).run();
}

}  // namespace shhim::core
