#include "agent/class_control.h"

#include <net/if.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "core/feed.h"
#include "datapath/class_qdisc.h"
#include "datapath/error.h"
#include "shhim_abi.h"

namespace shhim::agent {
namespace {

std::uint64_t monotonicNs()
{
    timespec ts = {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint32_t maxShedRank(const core::ClassTables& t)
{
    std::uint32_t max = 0;
    for (const auto& c : t.classes)
        max = std::max<std::uint32_t>(max, c.shed_rank);
    return max;
}

}  // namespace

ClassControl::ClassControl(datapath::PolicyMaps maps, Log log, std::uint32_t tick_ms)
    : maps_(std::move(maps)), log_(std::move(log)), tick_ms_(std::max<std::uint32_t>(tick_ms, 1))
{
    stress_.setConfig(stressConfigLocked());
}

core::StressConfig ClassControl::stressConfigLocked() const
{
    core::StressConfig config;
    config.enter = tables_.stress_enter;
    config.exit = tables_.stress_exit;
    config.hold_ticks = std::max<std::uint32_t>(1, (tables_.stress_hold_ms + tick_ms_ - 1) / tick_ms_);
    config.max_level = maxShedRank(tables_);
    return config;
}

std::unique_ptr<ClassControl> ClassControl::start(const std::string& pin_root,
                                                  const std::vector<std::string>& interfaces, Log log,
                                                  std::uint32_t tick_ms)
{
    try {
        auto control = std::unique_ptr<ClassControl>(
            new ClassControl(datapath::PolicyMaps::openPinned(pin_root), log, tick_ms));
        std::vector<std::uint32_t> ifindexes;
        for (const std::string& name : interfaces) {
            if (const unsigned ifindex = ::if_nametoindex(name.c_str()))
                ifindexes.push_back(ifindex);
        }
        for (const auto& slot : control->maps_.ensureInterfaceSlots(ifindexes)) {
            if (slot.slot == 0 && control->log_)
                control->log_("priority classes: no counter row left for ifindex " + std::to_string(slot.ifindex) +
                              "; its packets count in the shared row");
        }
        // The kernel remembers the stress mode and level of the previous run.
        const datapath::StressState kernel = control->maps_.stress();
        const auto mode = static_cast<core::StressMode>(kernel.mode <= SHHIM_STRESS_AUTO ? kernel.mode : 0);
        control->stress_.setMode(mode, kernel.level);
        control->written_level_ = kernel.level;
        control->operator_mode_ = mode == core::StressMode::On;
        return control;
    } catch (const datapath::Error& e) {
        throw ClassControlError(std::string("priority classes: ") + e.what());
    }
}

std::uint32_t ClassControl::applyTables(const core::ClassTables& tables)
{
    const std::lock_guard lock(mutex_);
    const std::vector<std::string> problems = core::classTablesProblems(tables);
    if (!problems.empty()) {
        std::string text = "priority classes not applied:";
        for (const auto& p : problems)
            text += " " + p + ";";
        throw ClassControlError(text);
    }
    std::map<std::string, std::uint32_t> ifindex_of;
    for (const core::InterfaceConfig& i : tables.interfaces) {
        const unsigned ifindex = ::if_nametoindex(i.name.c_str());
        if (ifindex == 0)
            throw ClassControlError("priority classes not applied: interface " + i.name + ": " +
                                    datapath::errnoText(errno));
        ifindex_of[i.name] = ifindex;
    }
    try {
        // Queueing first: HTB honours the marks of the old policy as well as the new.
        std::set<std::uint32_t> shaped;
        for (const core::InterfaceConfig& i : tables.interfaces) {
            if (i.capacity_bps == 0)
                continue;
            datapath::installClassQdisc(ifindex_of[i.name], i.capacity_bps, tables.classes.size());
            shaped.insert(ifindex_of[i.name]);
            if (log_)
                log_("priority classes: HTB " + std::to_string(i.capacity_bps) + " bit/s on " + i.name);
        }
        std::set<std::uint32_t> touched = shaped;
        for (const auto& [name, ifindex] : ifindex_of_) {
            if (shaped.count(ifindex))
                continue;
            touched.insert(ifindex);
            if (datapath::removeClassQdisc(ifindex) && log_)
                log_("priority classes: removed HTB from " + name + " (no capacity in the policy any more)");
        }
        std::uint32_t generation = 0;
        try {
            generation = maps_.apply(tables);
        } catch (const datapath::Error&) {
            restoreQdiscsLocked(touched);
            throw;
        }
        tables_ = tables;
        ifindex_of_ = std::move(ifindex_of);
        stress_.setConfig(stressConfigLocked());
        if (!operator_mode_) {
            const auto mode = tables_.stress_enabled ? core::StressMode::Auto : core::StressMode::Off;
            if (mode != stress_.mode()) {
                stress_.setMode(mode, stress_.level());
                writeStressLocked({"policy", {}});
            }
        }
        if (log_)
            log_("priority classes: policy generation " + std::to_string(generation) + " applied (" +
                 std::to_string(tables.services.size()) + " service endpoints, " + std::to_string(tables.rules.size()) +
                 " rules, default " + std::string(core::className(tables.default_class)) + ")");
        return generation;
    } catch (const datapath::Error& e) {
        throw ClassControlError(std::string("priority classes not applied: ") + e.what());
    }
}

void ClassControl::restoreQdiscsLocked(const std::set<std::uint32_t>& touched)
{
    // The maps refused the new policy: put the queueing of the one in force back as it was.
    std::map<std::uint32_t, std::uint64_t> previous;
    for (const core::InterfaceConfig& i : tables_.interfaces)
        if (const auto it = ifindex_of_.find(i.name); it != ifindex_of_.end() && i.capacity_bps)
            previous[it->second] = i.capacity_bps;
    for (const std::uint32_t ifindex : touched) {
        try {
            if (const auto it = previous.find(ifindex); it != previous.end())
                datapath::installClassQdisc(ifindex, it->second, tables_.classes.size());
            else
                datapath::removeClassQdisc(ifindex);
        } catch (const datapath::Error& e) {
            if (log_)
                log_("priority classes: could not restore the queueing of ifindex " + std::to_string(ifindex) +
                     " after a failed apply: " + e.what());
        }
    }
}

void ClassControl::tick(std::uint64_t now_ns)
{
    const std::lock_guard lock(mutex_);
    std::vector<datapath::InterfaceClassCounters> rows;
    try {
        rows = maps_.classCounters();
    } catch (const datapath::Error& e) {
        if (log_)
            log_(std::string("priority classes: ") + e.what());
        return;
    }
    std::map<std::uint32_t, std::uint64_t> capacity;
    for (const auto& i : tables_.interfaces)
        if (const auto it = ifindex_of_.find(i.name); it != ifindex_of_.end())
            capacity[it->second] = i.capacity_bps;

    std::vector<core::LinkLoad> links;
    const double seconds = last_tick_ns_ && now_ns > last_tick_ns_ ? static_cast<double>(now_ns - last_tick_ns_) / 1e9 : 0;
    for (const auto& row : rows) {
        core::LinkLoad link;
        link.ifindex = row.ifindex;
        link.capacity_bps = row.ifindex && capacity.count(row.ifindex) ? capacity[row.ifindex] : 0;
        for (std::uint32_t c = 0; c < SHHIM_CLASS_SLOTS; ++c) {
            const shhim_class_counter& out = row.counters[SHHIM_CLASS_DIR_EGRESS][c];
            link.bytes += out.bytes;
            link.drop_bytes += out.drop_bytes;
            const auto key = std::make_pair(row.ifindex, c);
            const auto last = last_egress_bytes_.find(key);
            if (seconds > 0 && last != last_egress_bytes_.end() && out.bytes >= last->second)
                egress_bps_[key] = static_cast<double>(out.bytes - last->second) * 8 / seconds;
            last_egress_bytes_[key] = out.bytes;
        }
        links.push_back(link);
    }
    last_tick_ns_ = now_ns;
    stress_.tick(now_ns, links);
    writeStressLocked({"auto", {}});
}

void ClassControl::writeStressLocked(const StressCause& cause)
{
    const std::uint32_t level = stress_.level();
    try {
        if (stress_.mode() == core::StressMode::Off && written_level_ == 0 &&
            maps_.stress().mode == SHHIM_STRESS_OFF)
            return;  // nothing to renew
        const std::uint32_t before = written_level_;
        // Every tick renews the lease, so the kernel keeps shedding only while the agent lives.
        maps_.writeStress(static_cast<std::uint32_t>(stress_.mode()), level);
        written_level_ = level;
        if (before == level)
            return;
        core::StressChange change;
        change.mode = std::string(core::stressModeName(stress_.mode()));
        change.level_before = before;
        change.level = level;
        change.cause = cause.kind;
        change.actor = cause.actor;
        change.sent_utilisation = stress_.sentUtilisation();
        change.offered_utilisation = stress_.offeredUtilisation();
        change.enter = tables_.stress_enter;
        change.exit = tables_.stress_exit;
        const shhim::v1::StressNotice notice = core::stressNotice(change);
        if (log_)
            log_(core::stressSummary(notice));
        if (stress_listener_)
            stress_listener_(notice);
    } catch (const datapath::Error& e) {
        if (log_)
            log_(std::string("stress mode: ") + e.what());
    }
}

shhim::v1::StressStatus ClassControl::setStress(std::string_view mode, const std::string& actor)
{
    const auto parsed = core::stressModeFromName(mode);
    if (!parsed)
        throw std::invalid_argument("stress mode \"" + std::string(mode) + "\" is not on, off or auto");
    const std::lock_guard lock(mutex_);
    stress_.setMode(*parsed, stress_.level());
    operator_mode_ = true;
    writeStressLocked({"manual", actor});
    return stressStatusLocked();
}

void ClassControl::onStressChange(StressListener listener)
{
    const std::lock_guard lock(mutex_);
    stress_listener_ = std::move(listener);
}

shhim::v1::StressStatus ClassControl::stressStatusLocked() const
{
    const datapath::StressState kernel = maps_.stress();
    shhim::v1::StressStatus out;
    out.set_mode(std::string(core::stressModeName(stress_.mode())));
    out.set_active(kernel.active);
    out.set_level(kernel.level);
    const std::uint64_t now = monotonicNs();
    out.set_lease_remaining_seconds(kernel.active && kernel.until_ns > now
                                        ? static_cast<double>(kernel.until_ns - now) / 1e9
                                        : 0.0);
    out.set_threshold(tables_.stress_enter);
    out.set_utilisation(stress_.sentUtilisation());
    return out;
}

shhim::v1::ClassReport ClassControl::report() const
{
    const std::lock_guard lock(mutex_);
    shhim::v1::ClassReport out;
    const datapath::AppliedPolicy applied = maps_.current();
    out.set_policy_generation(applied.generation);
    out.set_default_class(tables_.nameOf(applied.generation ? applied.default_class : core::kDefaultClass));
    *out.mutable_stress() = stressStatusLocked();
    const datapath::StressState kernel = maps_.stress();

    for (const auto& row : maps_.classCounters()) {
        auto* iface = out.add_interfaces();
        iface->set_interface(row.ifname);
        iface->set_ifindex(row.ifindex);
        const core::InterfaceConfig* config = nullptr;
        for (const auto& i : tables_.interfaces)
            if (const auto it = ifindex_of_.find(i.name); it != ifindex_of_.end() && it->second == row.ifindex)
                config = &i;
        std::uint64_t egress_bits = 0;
        // The classes of the policy in force (the built-ins before any).
        const std::size_t classes = std::max(tables_.classes.size(), core::kClassCount);
        for (std::uint32_t c = 0; c < classes && c < SHHIM_CLASS_SLOTS; ++c) {
            const shhim_class_counter& in = row.counters[SHHIM_CLASS_DIR_INGRESS][c];
            const shhim_class_counter& eg = row.counters[SHHIM_CLASS_DIR_EGRESS][c];
            const shhim_class_cfg& cfg = applied.classes[c];
            auto* cls = iface->add_classes();
            cls->set_priority_class(tables_.nameOf(static_cast<std::uint8_t>(c)));
            cls->set_dscp(applied.generation ? cfg.dscp : 0);
            cls->set_shed_rank(applied.generation ? cfg.shed_rank : 0);
            cls->set_shed(kernel.active && applied.generation && c >= SHHIM_CLASS_FIRST_SHEDDABLE && cfg.shed_rank &&
                          cfg.shed_rank <= kernel.level);
            cls->set_ingress_packets(in.packets);
            cls->set_ingress_bytes(in.bytes);
            cls->set_ingress_dscp_rewrites(in.dscp_rewrites);
            cls->set_egress_packets(eg.packets);
            cls->set_egress_bytes(eg.bytes);
            cls->set_egress_dscp_rewrites(eg.dscp_rewrites);
            cls->set_egress_drops(eg.drops);
            cls->set_egress_drop_bytes(eg.drop_bytes);
            const auto rate = egress_bps_.find(std::make_pair(row.ifindex, c));
            cls->set_egress_bits_per_second(rate != egress_bps_.end() ? rate->second : 0.0);
            egress_bits += rate != egress_bps_.end() ? static_cast<std::uint64_t>(rate->second) : 0;
        }
        if (config) {
            iface->set_capacity_bps(config->capacity_bps);
            iface->set_remark_untrusted(config->remark_untrusted);
            if (config->capacity_bps)
                iface->set_egress_utilisation(static_cast<double>(egress_bits) /
                                              static_cast<double>(config->capacity_bps));
        }
        if (row.ifindex) {
            try {
                if (datapath::rootQdisc(row.ifindex).ours())
                    iface->set_qdisc("htb");
            } catch (const datapath::Error&) {
                // A vanished interface has no qdisc to report.
            }
        }
    }
    return out;
}

}  // namespace shhim::agent
