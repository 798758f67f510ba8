// Priority classes in the agent (issue 3): everything shhimd does about
// classes, in one object the agent wires in with four calls.
//
//   after Datapath::start():       auto classes = ClassControl::start(pin_root, interfaces, log);
//   a validated policy (load,      classes->applyPolicy(policy);   // compile + atomic apply + HTB
//     SIGHUP, ApplyPolicy RPC):    (throws ClassControlError; the running policy is then unchanged)
//   every tick:                    classes->tick(monotonic_ns);    // auto stress, stress lease
//   RPC ListClasses / SetStress:   classes->report() / classes->setStress(request.mode(), actor)
//   the event feed:                classes->onStressChange(publish);  // entered / left / level
//
// Thread-safe: the tick and gRPC handlers may call it concurrently.
// State: the kernel maps hold the policy generation, the stress mode and
// level (so a restarted agent continues where the last one stopped); this
// object keeps only what it derives: the last applied tables (re-applied
// from the policy file on restart), counter samples for rates, and the
// auto-stress hysteresis.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/classify_tables.h"
#include "core/stress_control.h"
#include "datapath/policy_maps.h"
#include "shhim.pb.h"

namespace shhim::agent {

class ClassControlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class ClassControl {
public:
    using Log = std::function<void(const std::string&)>;
    // Called (under the object's lock: do not call back) whenever the
    // kernel's stress level changes: entering, leaving, another level.
    using StressListener = std::function<void(const shhim::v1::StressNotice&)>;

    // Opens the class maps under pin_root, gives each attached interface its
    // own counter row and restores the stress mode the kernel remembers.
    // tick_ms: the agent's tick, to turn the policy's stress.hold_ms into ticks.
    static std::unique_ptr<ClassControl> start(const std::string& pin_root, const std::vector<std::string>& interfaces,
                                               Log log = {}, std::uint32_t tick_ms = 100);

    // Compiles a policy that passed validation and applies it: HTB on every
    // interface with a capacity (removed where a capacity went away), then
    // the class maps as one generation. Returns the generation. Throws
    // ClassControlError naming what failed; the running policy keeps working.
    // The policy's stress.enabled sets the mode (auto or off) unless an
    // operator chose one with `shhimctl stress` (or the kernel's mode is on,
    // which only an operator sets).
    // (Inline: only code that applies policies needs core::compileClassTables.)
    std::uint32_t applyPolicy(const shhim::v1::Policy& policy)
    {
        core::ClassTables tables;
        try {
            tables = core::compileClassTables(policy);
        } catch (const core::ClassTablesError& e) {
            throw ClassControlError(std::string("priority classes not applied: ") + e.what());
        }
        return applyTables(tables);
    }
    // The same from compiled tables.
    std::uint32_t applyTables(const core::ClassTables& tables);

    // One agent tick: measures egress load per interface with a capacity,
    // moves the auto stress level, renews the kernel's stress lease.
    void tick(std::uint64_t monotonic_ns);

    shhim::v1::ClassReport report() const;
    // "on", "off" or "auto"; throws std::invalid_argument for anything else.
    // actor: who asked, for the stress notice ("uid 0").
    shhim::v1::StressStatus setStress(std::string_view mode, const std::string& actor = {});

    // Where stress changes go besides the log (the agent's event feed).
    void onStressChange(StressListener listener);

private:
    ClassControl(datapath::PolicyMaps maps, Log log, std::uint32_t tick_ms);
    core::StressConfig stressConfigLocked() const;
    shhim::v1::StressStatus stressStatusLocked() const;
    struct StressCause {
        std::string kind;   // "manual", "auto", "policy"
        std::string actor;
    };
    void writeStressLocked(const StressCause& cause);
    // After the maps refused a policy: the HTB trees of `touched` as the policy in force wants them.
    void restoreQdiscsLocked(const std::set<std::uint32_t>& touched);

    mutable std::mutex mutex_;
    datapath::PolicyMaps maps_;
    Log log_;
    StressListener stress_listener_;
    core::ClassTables tables_ = core::defaultClassTables();
    std::map<std::string, std::uint32_t> ifindex_of_;   // policy interfaces, resolved when applied
    core::StressController stress_;
    std::uint32_t written_level_ = 0;
    std::uint32_t tick_ms_ = 100;
    bool operator_mode_ = false;          // the mode was set by `shhimctl stress`
    // Egress bits/s per (ifindex, class) over the last tick window.
    std::map<std::pair<std::uint32_t, std::uint32_t>, double> egress_bps_;
    std::map<std::pair<std::uint32_t, std::uint32_t>, std::uint64_t> last_egress_bytes_;
    std::uint64_t last_tick_ns_ = 0;
};

}  // namespace shhim::agent
