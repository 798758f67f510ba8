// control.hpp - the runtime fault-control endpoint (--control ADDR:PORT), plain HTTP/1.1,
// one short request per connection.
#pragma once

#include "connection.hpp"
#include "listener.hpp"
#include "support/endpoint.hpp"
#include "common/unique_fd.h"

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <vector>

namespace shhim::testsvc {

// What a control request answers.
struct ControlReply {
    int status = 200;
    std::string body; // JSON
};

class ControlServer {
public:
    ControlServer(tools::Endpoint where, std::vector<std::unique_ptr<Listener>>& listeners, spdlog::logger& log,
                  const StopSignal& stop);

    void bind(); // throws std::system_error naming the address
    [[nodiscard]] const tools::Endpoint& bound() const { return bound_; }
    void run();  // until the stop signal fires

    // The API itself, separate from the socket handling.
    ControlReply handle(std::string_view method, std::string_view target, std::string_view content_type,
                        std::string_view body);

private:
    void serve_one(UniqueFd connection);
    ControlReply change_faults(std::string_view query, std::string_view content_type, std::string_view body,
                               bool reset_first);
    std::string state_json() const;

    tools::Endpoint bound_;
    std::vector<std::unique_ptr<Listener>>& listeners_;
    spdlog::logger& log_;
    const StopSignal& stop_;
    UniqueFd listen_fd_;
};

// The control API as documented in --help.
extern const char* const kControlApiHelp;

} // namespace shhim::testsvc
