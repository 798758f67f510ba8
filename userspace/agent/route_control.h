// Service routes in the agent (issue 4), the minimal glue: every applied
// policy becomes the kernel's route tables (datapath/route_maps.h).
//
//   after Datapath::start():   auto routes = RouteControl::start(pin_root, log);
//   a validated policy:        auto tables = routes->compile(policy);   // before anything is applied
//                              ... classes->applyPolicy(policy) ...
//                              routes->apply(tables);
//
// Ids (and with them each backend's health) stay with their endpoints
// across applies and agent restarts: the ids the kernel holds are the
// starting point. The decision engine and the audit trail are wired to
// maps() by the agent, not here. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "core/route_table.h"
#include "datapath/route_maps.h"

namespace shhim::v1 {
class Policy;
}

namespace shhim::agent {

class RouteControlError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class RouteControl {
public:
    using Log = std::function<void(const std::string&)>;

    // Opens the route maps under pin_root and reads the ids the kernel holds.
    // Throws RouteControlError.
    static std::unique_ptr<RouteControl> start(const std::string& pin_root, Log log = {});

    // The route tables of a validated policy, ids kept from the running ones.
    // Throws RouteControlError (kernel limits); nothing changes then.
    core::RouteTables compile(const shhim::v1::Policy& policy) const;
    // Writes them; throws RouteControlError naming what failed.
    void apply(const core::RouteTables& tables);

    // The kernel's tables, for readers and the engine (the lead wires these).
    datapath::RouteMaps& maps() { return maps_; }

private:
    RouteControl(datapath::RouteMaps maps, Log log);

    mutable std::mutex mutex_;
    datapath::RouteMaps maps_;
    Log log_;
    core::RouteIds ids_;
};

}  // namespace shhim::agent
