#include "agent/route_control.h"

#include <utility>

#include "datapath/error.h"

namespace shhim::agent {

RouteControl::RouteControl(datapath::RouteMaps maps, Log log) : maps_(std::move(maps)), log_(std::move(log)) {}

std::unique_ptr<RouteControl> RouteControl::start(const std::string& pin_root, Log log)
{
    try {
        auto control = std::unique_ptr<RouteControl>(new RouteControl(datapath::RouteMaps::openPinned(pin_root), log));
        // A restarted agent continues with the ids (and health) the kernel kept.
        control->ids_ = control->maps_.ids();
        if (control->log_ && !control->ids_.services.empty())
            control->log_("service routes: " + std::to_string(control->ids_.services.size()) + " services and " +
                          std::to_string(control->ids_.backends.size()) + " backends found in the kernel");
        return control;
    } catch (const datapath::Error& e) {
        throw RouteControlError(std::string("service routes: ") + e.what());
    }
}

core::RouteTables RouteControl::compile(const shhim::v1::Policy& policy) const
{
    const std::lock_guard lock(mutex_);
    try {
        return core::compileRouteTables(policy, ids_);
    } catch (const core::RouteTablesError& e) {
        throw RouteControlError(std::string("service routes not applied: ") + e.what());
    }
}

void RouteControl::apply(const core::RouteTables& tables)
{
    const std::lock_guard lock(mutex_);
    try {
        maps_.apply(tables);
    } catch (const datapath::Error& e) {
        throw RouteControlError(std::string("service routes: ") + e.what());
    }
    ids_ = core::routeIdsOf(tables);
    if (log_)
        log_("service routes: " + std::to_string(tables.services.size()) + " services, " +
             std::to_string(tables.backends.size()) + " backends in the kernel");
}

}  // namespace shhim::agent
