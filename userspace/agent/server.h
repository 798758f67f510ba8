// The gRPC API (service shhim.v1.Shhim) on a Unix socket. gRPC types stay
// inside server.cpp; this header is all the event loop sees.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent/state.h"
#include "datapath/loader.h"

namespace shhim::agent {

class ClassControl;
class PolicyApplier;
class Router;
class AuditLog;
class RouteControl;

struct ApiContext {
    const datapath::Datapath& datapath;
    AgentState& state;  // ApplyPolicy replaces its policy
    ClassControl* classes = nullptr;  // priority classes in the kernel; null where not serving them
    std::chrono::steady_clock::time_point started;
    std::string version;
    PolicyApplier* applier = nullptr;  // ApplyPolicy: classes, routes, router; null where not serving them
    Router* router = nullptr;          // services, drain, restore, reroute
    AuditLog* audit = nullptr;         // audit tail
};

class ApiServer {
public:
    // Creates the socket's directory (0755) if needed, refuses if another
    // agent answers on the socket, binds and chmods the socket to 0600.
    // Throws std::runtime_error with the socket path on failure.
    ApiServer(const std::string& socket_path, ApiContext context);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Stops accepting calls, waits briefly for running ones, removes the socket.
    void shutdown();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Fails (std::runtime_error) if something accepts connections on the
// socket: two agents on one socket would answer for different datapaths.
// A stale socket file from a killed agent is removed.
void claimSocketPath(const std::string& socket_path);

}  // namespace shhim::agent
