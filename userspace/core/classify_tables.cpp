#include "core/classify_tables.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <tuple>

#include "core/policy_address.h"
#include "core/policy_classes.h"
#include "core/policy_defaults.h"
#include "policy.pb.h"
#include "shhim_abi.h"

namespace shhim::core {
namespace {

constexpr const auto& kClassNames = kBuiltinClassNames;
// RFC 4594 service classes; RFC 8622 lower effort for bulk.
constexpr std::array<std::uint8_t, kClassCount> kDefaultDscp = {46, 40, 34, 18, 10, 0, 1};
// What a class keeps of the link while it is shed, as the kernel takes it:
// permille of the interface's capacity (policy ClassOverride.stress_share;
// the built-in defaults are in core/policy_classes.cpp).
std::uint16_t stressPermille(double share)
{
    return static_cast<std::uint16_t>(std::clamp(share, 0.0, 1.0) * 1000.0 + 0.5);
}
constexpr std::uint32_t kDefaultBurstBytes = 64 * 1024;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoIcmpv6 = 58;

static_assert(kClassCount == SHHIM_CLASS_BUILTINS, "built-in classes differ from the kernel's");
static_assert(kMaxClasses == SHHIM_CLASS_SLOTS, "class ids differ from the kernel's");
static_assert(kMaxServiceEndpoints == SHHIM_MAX_SERVICE_ENDPOINTS, "service table size differs from the kernel's");
static_assert(kMaxRulePrefixes == SHHIM_MAX_RULE_PREFIXES, "rule table size differs from the kernel's");
static_assert(kMaxRulesPerPrefix == SHHIM_MAX_RULES_PER_PREFIX, "rules per prefix differ from the kernel's");
static_assert(kMaxInterfaces == SHHIM_MAX_IF_SLOTS - 1, "interface slots differ from the kernel's");

std::string endpointText(const ServiceEndpoint& e)
{
    std::string text;
    if (e.family == 4) {
        for (int i = 12; i < 16; ++i)
            text += (i > 12 ? "." : "") + std::to_string(e.address[static_cast<std::size_t>(i)]);
    } else {
        static const char* digits = "0123456789abcdef";
        text = "[";
        for (std::size_t i = 0; i < 16; i += 2) {
            if (i)
                text += ':';
            for (std::size_t b = i; b < i + 2; ++b) {
                text += digits[e.address[b] >> 4];
                text += digits[e.address[b] & 15];
            }
        }
        text += "]";
    }
    return text + ":" + std::to_string(e.port) + (e.protocol == kProtoUdp ? "/udp" : e.protocol == kProtoTcp ? "/tcp" : "");
}

// The kernel's 16-byte form: IPv6 as is, IPv4 as ::ffff:a.b.c.d.
Address16 toAddress16(const IpAddress& ip)
{
    if (ip.family == IpFamily::V6)
        return ip.bytes;
    Address16 out{};
    out[10] = out[11] = 0xff;
    std::copy_n(ip.bytes.begin(), 4, out.begin() + 12);
    return out;
}

std::string at(std::string_view list, std::size_t index) { return std::string(list) + "[" + std::to_string(index) + "]"; }

std::string ruleLabel(const ClassRule& r) { return "rule " + (r.name.empty() ? std::to_string(r.rule_index) : r.name); }

}  // namespace

std::string_view className(std::uint8_t class_id)
{
    return class_id < kClassCount ? kClassNames[class_id] : std::string_view();
}

std::optional<std::uint8_t> classFromName(std::string_view name)
{
    std::string normal;
    for (const char c : name)
        normal += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (std::uint8_t i = 0; i < kClassCount; ++i)
        if (kClassNames[i] == normal)
            return i;
    return std::nullopt;
}

std::uint8_t defaultDscp(std::uint8_t class_id) { return class_id < kClassCount ? kDefaultDscp[class_id] : 0; }

ClassTables defaultClassTables()
{
    ClassTables t;
    for (std::uint8_t c = 0; c < kClassCount; ++c) {
        const BuiltinClass* builtin = findBuiltinClass(kClassNames[c]);
        ClassConfig cfg;
        cfg.name = std::string(kClassNames[c]);
        cfg.dscp = builtin ? static_cast<std::uint8_t>(builtin->dscp) : kDefaultDscp[c];
        cfg.skb_priority = builtin ? builtin->skb_priority : 0;
        cfg.shed_rank = builtin ? static_cast<std::uint8_t>(builtin->shed_order) : 0;
        cfg.rate_permille = stressPermille(builtin ? builtin->stress_share : 0.0);
        cfg.burst_bytes = kDefaultBurstBytes;
        t.classes.push_back(cfg);
    }
    t.default_class = kDefaultClass;
    return t;
}

ClassTables compileClassTables(const v1::Policy& policy)
{
    ClassTables t = defaultClassTables();
    std::vector<std::string> problems;

    // Classes, in resolveClasses() order: their index is the kernel's class id.
    const std::vector<v1::ResolvedClass> resolved = resolveClasses(policy);
    if (resolved.size() > kMaxClasses)
        throw ClassTablesError("classes: " + std::to_string(resolved.size() - kClassCount) +
                               " classes added to the 7 built-in ones; the kernel has ids for " +
                               std::to_string(kMaxClasses - kClassCount));
    t.classes.clear();
    for (std::size_t i = 0; i < resolved.size(); ++i) {
        const v1::ResolvedClass& rc = resolved[i];
        ClassConfig cfg;
        cfg.name = rc.name();
        cfg.dscp = static_cast<std::uint8_t>(std::min<std::uint32_t>(rc.dscp(), 255));
        cfg.skb_priority = rc.skb_priority();
        cfg.shed_rank = static_cast<std::uint8_t>(std::min<std::uint32_t>(rc.shed_order(), 255));
        cfg.rate_permille = stressPermille(rc.stress_share());
        cfg.burst_bytes = kDefaultBurstBytes;
        t.classes.push_back(cfg);
    }
    auto classId = [&](const std::string& name, const std::string& path) -> std::uint8_t {
        if (const auto id = t.idOf(name))
            return *id;
        problems.push_back(path + ": unknown class \"" + name + "\"");
        return kDefaultClass;
    };
    t.default_class = classId(std::string(defaultClass(policy)), "default_class");

    // Services: what clients connect to, and every backend behind it.
    for (int si = 0; si < policy.services_size(); ++si) {
        const v1::Service& svc = policy.services(si);
        const std::string path = at("services", static_cast<std::size_t>(si));
        const std::uint8_t cls = classId(svc.class_(), path + ".class");
        auto add = [&](const std::string& text, const std::string& where) {
            const ParseResult<SocketAddress> parsed = parseSocketAddress(text);
            if (!parsed.value) {
                problems.push_back(where + ": " + parsed.error);
                return;
            }
            ServiceClass entry;
            entry.endpoint.address = toAddress16(parsed.value->ip);
            entry.endpoint.family = parsed.value->ip.family == IpFamily::V4 ? 4 : 6;
            entry.endpoint.port = parsed.value->port;
            entry.endpoint.protocol = kProtoTcp;  // http, mllp and tcp services all run over TCP
            entry.class_id = cls;
            entry.service_index = static_cast<std::uint32_t>(si);
            entry.service = svc.name();
            for (const ServiceClass& have : t.services)
                if (have.endpoint == entry.endpoint && have.service_index == entry.service_index)
                    return;  // the address is also one of its backends
            t.services.push_back(std::move(entry));
        };
        add(svc.address(), path + ".address");
        for (int b = 0; b < svc.backends().primary_size(); ++b)
            add(svc.backends().primary(b), at(path + ".backends.primary", static_cast<std::size_t>(b)));
        for (int b = 0; b < svc.backends().fallback_size(); ++b)
            add(svc.backends().fallback(b), at(path + ".backends.fallback", static_cast<std::size_t>(b)));
    }

    // Rules, in order; one kernel rule per CIDR (and per family for ICMP).
    for (int ri = 0; ri < policy.rules_size(); ++ri) {
        const v1::TrafficRule& rule = policy.rules(ri);
        const std::string path = at("rules", static_cast<std::size_t>(ri));
        ClassRule base;
        base.name = rule.name().empty() ? path : rule.name();
        base.rule_index = static_cast<std::uint32_t>(ri);
        base.class_id = classId(rule.class_(), path + ".class");
        if (rule.has_ports()) {
            base.port_lo = static_cast<std::uint16_t>(rule.ports().first());
            base.port_hi = static_cast<std::uint16_t>(lastPort(rule.ports()));
        }
        const bool icmp = rule.protocol() == v1::TRANSPORT_ICMP;
        switch (rule.protocol()) {
        case v1::TRANSPORT_TCP:
            base.protocol = kProtoTcp;
            break;
        case v1::TRANSPORT_UDP:
            base.protocol = kProtoUdp;
            break;
        default:
            base.protocol = 0;
            break;
        }
        auto add = [&](const Address16& prefix, std::uint8_t length, std::uint8_t protocol) {
            ClassRule r = base;
            r.prefix_length = length;
            r.prefix = maskAddress(prefix, length);
            r.protocol = protocol;
            t.rules.push_back(std::move(r));
        };
        Address16 v4_any{};
        v4_any[10] = v4_any[11] = 0xff;
        if (rule.cidrs_size() == 0) {
            if (icmp) {
                add(v4_any, 96, kProtoIcmp);
                add(Address16{}, 0, kProtoIcmpv6);
            } else {
                add(Address16{}, 0, base.protocol);  // ::/0 holds IPv4-mapped addresses too
            }
        }
        for (int c = 0; c < rule.cidrs_size(); ++c) {
            const ParseResult<Cidr> parsed = parseCidr(rule.cidrs(c));
            if (!parsed.value) {
                problems.push_back(at(path + ".cidrs", static_cast<std::size_t>(c)) + ": " + parsed.error);
                continue;
            }
            const bool v4 = parsed.value->network.family == IpFamily::V4;
            const auto length = static_cast<std::uint8_t>((v4 ? 96 : 0) + parsed.value->prefix_length);
            add(toAddress16(parsed.value->network), length,
                icmp ? (v4 ? kProtoIcmp : kProtoIcmpv6) : base.protocol);
        }
    }

    // Interfaces: capacity for stress mode and HTB; DSCP from the clients' side is not trusted
    // unless the policy says otherwise (remark_untrusted_dscp).
    for (const v1::Interface& iface : policy.interfaces()) {
        InterfaceConfig cfg;
        cfg.name = iface.name();
        cfg.capacity_bps = iface.capacity_mbps() * 1000000ull;
        cfg.remark_untrusted = iface.has_remark_untrusted_dscp() ? iface.remark_untrusted_dscp()
                                                                 : iface.role() == v1::INTERFACE_ROLE_CLIENTS;
        t.interfaces.push_back(std::move(cfg));
    }

    const StressSettings stress = stressSettings(policy.stress());
    t.stress_enabled = stress.enabled;
    t.stress_enter = stress.enter_utilization;
    t.stress_exit = stress.exit_utilization;
    t.stress_hold_ms = stress.hold_ms;

    for (std::string& p : classTablesProblems(t))
        problems.push_back(std::move(p));
    if (!problems.empty()) {
        std::string text = "policy \"" + policy.name() + "\" cannot be applied to the kernel:";
        for (const std::string& p : problems)
            text += " " + p + ";";
        throw ClassTablesError(text);
    }
    return t;
}

std::vector<std::string> classTablesProblems(const ClassTables& t)
{
    std::vector<std::string> problems;
    auto problem = [&problems](std::string text) { problems.push_back(std::move(text)); };

    if (t.classes.size() < kClassCount || t.classes.size() > kMaxClasses)
        problem(std::to_string(t.classes.size()) + " classes; the kernel takes the 7 built-in ones and at most " +
                std::to_string(kMaxClasses - kClassCount) + " more");
    for (std::size_t c = 0; c < std::min(t.classes.size(), kClassCount); ++c) {
        if (t.classes[c].name != kClassNames[c])
            problem("class id " + std::to_string(c) + " is \"" + t.classes[c].name + "\", the kernel has \"" +
                    std::string(kClassNames[c]) + "\" there");
    }
    if (t.default_class >= t.classes.size())
        problem("default class " + std::to_string(t.default_class) + " is not a class");
    for (std::size_t c = 0; c < t.classes.size(); ++c) {
        const ClassConfig& cfg = t.classes[c];
        const std::string where = "classes." + t.nameOf(static_cast<std::uint8_t>(c));
        if (cfg.dscp > 63)
            problem(where + ".dscp: " + std::to_string(cfg.dscp) + " is beyond 63");
        if (cfg.rate_permille > 1000)
            problem(where + ": a stress share of " + std::to_string(cfg.rate_permille) + " permille is beyond 1000");
        if (cfg.burst_bytes > kMaxBurstBytes)
            problem(where + ": burst of " + std::to_string(cfg.burst_bytes) + " bytes is beyond " +
                    std::to_string(kMaxBurstBytes));
        if (c < kClassClinicalRealtime && cfg.shed_rank != 0)
            problem(where + ": " + cfg.name + " is never shed (shed rank must be 0)");
    }

    if (t.services.size() > kMaxServiceEndpoints)
        problem(std::to_string(t.services.size()) + " service endpoints; the kernel table holds " +
                std::to_string(kMaxServiceEndpoints));
    std::map<std::tuple<Address16, std::uint16_t, std::uint8_t>, const ServiceClass*> endpoints;
    for (const ServiceClass& s : t.services) {
        if (s.class_id >= t.classes.size())
            problem("service " + s.service + ": class " + std::to_string(s.class_id) + " is not a class");
        if (s.endpoint.family != 4 && s.endpoint.family != 6)
            problem("service " + s.service + ": address family " + std::to_string(s.endpoint.family));
        const auto [it, fresh] =
            endpoints.emplace(std::make_tuple(s.endpoint.address, s.endpoint.port, s.endpoint.protocol), &s);
        if (!fresh && it->second->class_id != s.class_id)
            problem("service " + s.service + ": endpoint " + endpointText(s.endpoint) + " is also in service " +
                    it->second->service + " with another class");
    }

    for (const ClassRule& r : t.rules) {
        if (r.class_id >= t.classes.size())
            problem(ruleLabel(r) + ": class " + std::to_string(r.class_id) + " is not a class");
        if (r.prefix_length > 128)
            problem(ruleLabel(r) + ": prefix length " + std::to_string(r.prefix_length) + " is beyond 128");
        if (r.port_lo > r.port_hi)
            problem(ruleLabel(r) + ": port range " + std::to_string(r.port_lo) + "-" + std::to_string(r.port_hi) +
                    " is empty");
    }
    const std::vector<RulePrefix> prefixes = rulePrefixes(t.rules);
    if (prefixes.size() > kMaxRulePrefixes)
        problem(std::to_string(prefixes.size()) + " distinct rule prefixes; the kernel table holds " +
                std::to_string(kMaxRulePrefixes));
    for (const RulePrefix& p : prefixes) {
        if (p.rules.size() > kMaxRulesPerPrefix)
            problem(ruleLabel(t.rules[p.rules.back()]) + ": " + std::to_string(p.rules.size()) +
                    " rules hold the same addresses; at most " + std::to_string(kMaxRulesPerPrefix) + " may overlap");
    }

    if (t.interfaces.size() > kMaxInterfaces)
        problem(std::to_string(t.interfaces.size()) + " interfaces; at most " + std::to_string(kMaxInterfaces));
    std::set<std::string> names;
    for (const InterfaceConfig& i : t.interfaces) {
        if (i.name.empty() || i.name.size() >= 16)
            problem("interface \"" + i.name + "\": not an interface name (1 to 15 characters)");
        if (!names.insert(i.name).second)
            problem("interface " + i.name + " is named twice");
    }
    if (!(t.stress_enter > 0.0 && t.stress_enter <= 1.0) || !(t.stress_exit > 0.0 && t.stress_exit < t.stress_enter))
        problem("stress thresholds: enter " + std::to_string(t.stress_enter) + ", exit " +
                std::to_string(t.stress_exit) + " (want 0 < exit < enter <= 1)");
    return problems;
}

}  // namespace shhim::core
