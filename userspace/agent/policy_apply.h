// The one way a validated policy reaches the kernel and the router, used
// by `shhimd --policy` at start, SIGHUP and `shhimctl policy apply`: route
// tables compiled first (kernel limits refuse the policy before anything
// changes), then the class tables, the route tables, the decision engine,
// and last the agent's notion of the applied policy.
#pragma once

#include <stdexcept>

#include "agent/policy.h"

namespace shhim::agent {

class AgentState;
class ClassControl;
class RouteControl;
class Router;

class PolicyApplyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class PolicyApplier {
public:
    // kernel_breaker false: the kernel counts evidence but never trips a
    // backend itself; the decision engine alone ejects (shhimd --no-kernel-breaker).
    PolicyApplier(AgentState& state, ClassControl& classes, RouteControl& routes, Router& router,
                  bool kernel_breaker = true)
        : state_(state), classes_(classes), routes_(routes), router_(router), kernel_breaker_(kernel_breaker)
    {
    }

    // Throws PolicyApplyError naming what refused it; the running policy
    // then stays in force.
    void apply(const PolicyPtr& policy, bool agent_start = false);

private:
    AgentState& state_;
    ClassControl& classes_;
    RouteControl& routes_;
    Router& router_;
    bool kernel_breaker_;
};

}  // namespace shhim::agent
