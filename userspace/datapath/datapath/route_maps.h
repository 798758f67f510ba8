// The service-route maps (bpf/shhim_abi.h, "Service routes and backend
// health"): writing a policy's route tables, setting one backend's state,
// and reading everything back (a restarted agent rebuilds from the kernel).
//
// How apply() keeps every connect consistent:
//  1. Backend health entries are written first: a new backend id gets its
//     endpoint and state UP; a kept one keeps its state and counters (only
//     threshold, flags and endpoint are refreshed). Then endpoint -> id.
//  2. After one RCU grace period (no program still reads the slots about to
//     be written), each service's inactive route slot is written, and then
//     each shhim_route_active entry is flipped with one 32-bit update: a
//     connect reads the old route or the new one, never half of one.
//  3. Service addresses are added to shhim_route_vips (new services start
//     steering only once their route is complete); removed services' VIPs go.
//  4. After another grace period, ids no longer used are cleared.
// If the tables break a kernel limit nothing is written.
//
// setBackendState() is one read-modify-write of one health entry. The
// kernel may trip the same entry meanwhile; setting UP wins (the agent
// decided after seeing the trip), setting DOWN_AGENT over DOWN_KERNEL is
// harmless. One agent process writes these maps; a mutex serialises it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "datapath/program_barrier.h"
#include "core/route_table.h"
#include "shhim_abi.h"

namespace shhim::datapath {

struct BackendHealth {
    std::uint32_t id = 0;
    core::ServiceEndpoint endpoint;
    shhim_backend_health kernel{};   // as the kernel holds it (state, counters, trip)
};

struct ServiceRoute {
    std::uint32_t id = 0;
    core::ServiceEndpoint endpoint;  // the service address (from shhim_route_vips)
    shhim_route route{};             // the active slot's entry
    shhim_route_counter counters{};  // summed over CPUs
};

class RouteMaps {
public:
    // Opens the pinned route maps under pin_root (Datapath::start() creates
    // them) and the private map used to wait for RCU grace periods. Throws Error.
    static RouteMaps openPinned(const std::string& pin_root);

    RouteMaps(RouteMaps&&) noexcept = default;
    RouteMaps& operator=(RouteMaps&&) noexcept = default;

    // Writes a policy's route tables (see the top of this file). Throws Error;
    // on a limit error nothing was written.
    void apply(const core::RouteTables& tables);

    // enum shhim_backend_state_kind; UP also clears the consecutive counters.
    // Throws Error for an unknown id or state.
    void setBackendState(std::uint32_t backend_id, std::uint32_t state);

    // One backend's entry (one lookup: the router's fast path). Throws Error.
    shhim_backend_health health(std::uint32_t backend_id) const;
    // Readers: every backend id in use, every service with a VIP.
    std::vector<BackendHealth> backends() const;
    std::vector<ServiceRoute> services() const;
    // The ids the kernel holds, for compileRouteTables after a restart.
    core::RouteIds ids() const;

    // Waits until no BPF program that started before the call still runs.
    void waitForPrograms() const;

private:
    RouteMaps() = default;

    UniqueFd vips_;
    UniqueFd routes_;
    UniqueFd active_;
    UniqueFd health_;
    UniqueFd backend_ids_;
    UniqueFd counters_;
    std::unique_ptr<ProgramBarrier> barrier_;  // waits for running programs between write and flip
    int ncpus_ = 0;
    std::unique_ptr<std::mutex> writer_ = std::make_unique<std::mutex>();
};

// Conversions between the kernel's endpoint and core's.
shhim_endpoint toKernelEndpoint(const core::ServiceEndpoint& e);
core::ServiceEndpoint fromKernelEndpoint(const shhim_endpoint& e);

}  // namespace shhim::datapath
