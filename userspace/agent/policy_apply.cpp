#include "agent/policy_apply.h"

#include "agent/class_control.h"
#include "agent/route_control.h"
#include "agent/router.h"
#include "agent/state.h"

namespace shhim::agent {

void PolicyApplier::apply(const PolicyPtr& policy, bool agent_start)
{
    core::RouteTables tables;
    try {
        tables = routes_.compile(policy->validated.policy);
        if (!kernel_breaker_)
            for (auto& backend : tables.backends)
                backend.threshold = 0;  // the kernel's "breaker off"
        classes_.applyPolicy(policy->validated.policy);
        routes_.apply(tables);
    } catch (const RouteControlError& e) {
        throw PolicyApplyError(e.what());
    } catch (const ClassControlError& e) {
        throw PolicyApplyError(e.what());
    }
    router_.applyPolicy(policy, tables, agent_start);
    state_.setPolicy(policy);
}

}  // namespace shhim::agent
