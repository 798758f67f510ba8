// The priority-class maps (bpf/shhim_abi.h, "Priority classes, policy and
// stress mode"): applying a policy as one atomic generation, interface
// slots, stress mode, and reading the per-class per-interface counters.
//
// How a policy is applied (apply()), and why a packet is then classified by
// the old policy or the new one, never a mix:
//  1. Every policy map is indexed by a policy slot, generation & 1. The
//     kernel programs read the current generation once per packet, from the
//     one entry of shhim_policy_state, and look only at that slot.
//  2. The new generation N = current + 1 uses the other slot, which held
//     generation N - 2. apply() first waits for an RCU grace period: BPF
//     programs run inside RCU read-side sections, so once it has passed no
//     program that read generation N - 2 is still running.
//  3. apply() then writes N's class configs, services, rules and interface
//     options into that slot (deleting what N - 2 left there). No packet
//     reads the slot meanwhile.
//  4. It publishes N with one map update of shhim_policy_state. A packet that
//     read the generation before sees N - 1's slot, untouched; a packet that
//     read it after sees N's slot, complete.
//  5. It waits for a grace period again, so that when apply() returns no
//     packet is still classified under N - 1. Flows cache their class with
//     the generation it was decided under (shhim_flow.class_gen) and are
//     classified again on their next packet.
// The grace period is waited for by updating a private ARRAY_OF_MAPS map:
// the kernel calls synchronize_rcu() on every such update so that userspace
// knows no program still uses the previous inner map (kernel/bpf/syscall.c,
// maybe_wait_bpf_programs; the kernel's own selftests use it this way).
// If anything fails before step 4 (invalid tables, unknown interface, map
// full), the running policy is untouched and keeps working.
//
// One agent process writes these maps; a PolicyMaps serialises its own
// writers with a mutex, so gRPC threads and the tick may share it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Plain structs and inline helpers only: the datapath does not link
// shhim_core (which would pull in protobuf). Found through shhim_common's
// include directory (userspace/).
#include "core/classify_tables.h"
#include "common/unique_fd.h"
#include "datapath/program_barrier.h"
#include "shhim_abi.h"

namespace shhim::datapath {

// What the kernel holds for one applied policy slot.
struct AppliedPolicy {
    std::uint32_t generation = 0;     // 0: no policy applied yet
    std::uint8_t default_class = SHHIM_CLASS_DEFAULT;
    // Index = class id; classes the policy does not have are zero (flags 0).
    std::array<shhim_class_cfg, SHHIM_CLASS_SLOTS> classes{};
};

struct StressState {
    std::uint32_t mode = SHHIM_STRESS_OFF;   // enum shhim_stress_mode (the agent's setting)
    std::uint32_t level = 0;                 // 0: nothing shed; else shed ranks 1..level
    std::uint64_t until_ns = 0;              // lease end, CLOCK_MONOTONIC
    bool active = false;                     // level != 0 and the lease runs now
};

// Per-class counters of one interface, summed over CPUs.
struct InterfaceClassCounters {
    std::uint32_t ifindex = 0;    // 0: the shared row of interfaces without a slot
    std::string ifname;           // "" if the interface is gone or for the shared row
    std::uint16_t slot = 0;
    // [SHHIM_CLASS_DIR_INGRESS | SHHIM_CLASS_DIR_EGRESS][class id]
    std::array<std::array<shhim_class_counter, SHHIM_CLASS_SLOTS>, SHHIM_CLASS_DIRS> counters{};
};

struct InterfaceSlot {
    std::uint32_t ifindex = 0;
    std::uint16_t slot = 0;       // 0: none free (counted in the shared row)
};

// Every write to the class maps (apply, interface slots, stress) goes
// through a MapWriter: the kernel's by default. A test puts one in front
// that fails a chosen write, to see that apply() leaves the running policy
// in force whatever write fails.
class MapWriter {
public:
    virtual ~MapWriter() = default;
    // 0, or the errno of the failed write. `map` names the map ("shhim_services").
    virtual int update(int fd, std::string_view map, const void* key, const void* value) = 0;
    virtual int remove(int fd, std::string_view map, const void* key) = 0;
};

// bpf_map_update_elem / bpf_map_delete_elem.
std::shared_ptr<MapWriter> kernelMapWriter();

class PolicyMaps {
public:
    // Opens the pinned class maps under pin_root (they exist once
    // Datapath::start() has loaded the programs) and creates the private
    // map used to wait for RCU grace periods. Throws Error.
    static PolicyMaps openPinned(const std::string& pin_root);

    PolicyMaps(PolicyMaps&&) noexcept = default;
    PolicyMaps& operator=(PolicyMaps&&) noexcept = default;

    // The whole of "apply a policy": checks the tables against the kernel
    // limits and resolves interface names (nothing is written if either
    // fails), writes the inactive slot, publishes it (see the top of this
    // file). Returns the new generation. Throws Error; the running policy
    // then keeps working. An interface with a capacity is marked as carrying
    // shhim's HTB tree (egress skb->priority = its HTB class ids): install
    // the tree there first (class_qdisc.h).
    std::uint32_t apply(const core::ClassTables& tables);

    // apply() in its two halves, for tests that look at the moment between
    // them: stage() writes the inactive slot and returns the generation it
    // prepared (nothing changes for packets); publish() makes it current.
    // publish() refuses a generation that is not the one after the current.
    std::uint32_t stage(const core::ClassTables& tables);
    void publish(std::uint32_t generation);

    // Gives each interface an interface slot (its row in the class counters
    // and token buckets) if it has none. The agent calls it with the
    // interfaces it attached; apply() does it for the policy's interfaces.
    // Slots of ifindexes that no longer exist are released first.
    std::vector<InterfaceSlot> ensureInterfaceSlots(const std::vector<std::uint32_t>& ifindexes);

    // Stress mode: level 0 stops shedding; otherwise classes with
    // 1 <= shed_rank <= level are held to their token buckets for lease_ns
    // from now (SHHIM_STRESS_LEASE_NS by default). The agent renews the
    // lease every tick while stress should last; the kernel stops shedding by
    // itself when the lease runs out (an agent that died fails open).
    void writeStress(std::uint32_t mode, std::uint32_t level, std::uint64_t lease_ns = SHHIM_STRESS_LEASE_NS);

    // Where the writes go from now on (null: the kernel's maps again).
    void setMapWriter(std::shared_ptr<MapWriter> writer);

    // Readers.
    std::uint32_t generation() const;
    AppliedPolicy current() const;
    StressState stress() const;
    // Rows of interfaces that have a slot, plus the shared row (ifindex 0).
    std::vector<InterfaceClassCounters> classCounters() const;

    // Waits until no BPF program that started before the call is still
    // running (one RCU grace period).
    void waitForPrograms() const;

private:
    PolicyMaps() = default;

    shhim_policy_state readState() const;
    void writeState(const shhim_policy_state& state) const;
    std::vector<shhim_iface> readIfaces() const;
    // The interfaces that have a counter row, from the cache below.
    std::vector<InterfaceSlot> slottedInterfaces() const;
    void forgetSlottedInterfaces() const noexcept;
    std::vector<InterfaceSlot> ensureInterfaceSlotsLocked(const std::vector<std::uint32_t>& ifindexes);
    std::uint32_t stageLocked(const core::ClassTables& tables);
    void publishLocked(std::uint32_t generation);

    UniqueFd state_;
    UniqueFd policies_;
    UniqueFd services_;
    UniqueFd rules_;
    UniqueFd ifaces_;
    UniqueFd class_counters_;
    UniqueFd class_buckets_;
    std::unique_ptr<ProgramBarrier> barrier_;  // waits for running programs between write and flip
    int ncpus_ = 0;
    std::unique_ptr<std::mutex> writer_ = std::make_unique<std::mutex>();
    std::shared_ptr<MapWriter> map_writer_ = kernelMapWriter();
    // (ifindex, slot) of every interface with a counter row, as last read
    // from shhim_ifaces. classCounters() runs on every tick, and reading the
    // whole 4096-entry array each time was most of an idle agent's CPU; the
    // slots change only through ensureInterfaceSlots() of this object (one
    // agent writes these maps), which empties the cache.
    struct SlotCache {
        std::mutex mutex;
        std::optional<std::vector<InterfaceSlot>> slots;
    };
    std::unique_ptr<SlotCache> slot_cache_ = std::make_unique<SlotCache>();
};

// The next policy generation after `current`: 24 bits, never 0, and always
// in the other policy slot.
std::uint32_t nextGeneration(std::uint32_t current);

}  // namespace shhim::datapath
