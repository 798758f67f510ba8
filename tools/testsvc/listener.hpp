// listener.hpp - one listening socket of the test service (HTTP or MLLP) with its own fault
// knobs, mix rotation and counters; its accept loop runs on its own thread.
#pragma once

#include "connection.hpp"
#include "faults.hpp"
#include "support/endpoint.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace shhim::testsvc {

enum class Protocol { Http, Mllp };
std::string_view to_string(Protocol protocol);

// What every listener and connection shares; owned by main.
struct ServiceContext {
    spdlog::logger& log;
    ConnectionRegistry& connections;
    const StopSignal& stop;
};

class Listener {
public:
    Listener(Protocol protocol, tools::Endpoint requested, Faults initial, ServiceContext context);
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Binds now, so a bad address fails at start and port 0 gets its real number.
    // Throws std::system_error naming the address.
    void bind();
    // The accept loop; returns when the stop signal fires.
    void run();

    // Applies a change and waits until the accept loop has acted on it (a refuse has closed
    // the socket, a cleared refuse has reopened it). Returns an error text, empty on success.
    std::string apply(const FaultChange& change);
    [[nodiscard]] Faults faults() const;

    // The next key of this listener's rotation (status mix for HTTP, ack mix for MLLP),
    // or nullopt when no mix is set. Changing the mix restarts the rotation at slot 0.
    std::optional<std::string> next_mix_key();
    // Counts what happened to one request: "200", "AE", "hang", "close_mid", ...
    void count(std::string_view outcome);
    // A number unique within this listener, for resource ids.
    std::uint64_t next_serial() { return serial_.fetch_add(1) + 1; }

    [[nodiscard]] Protocol protocol() const { return protocol_; }
    [[nodiscard]] const tools::Endpoint& bound() const { return bound_; }
    [[nodiscard]] std::string name() const;
    [[nodiscard]] const ServiceContext& context() const { return context_; }
    // {"protocol":"http","address":...,"listening":true,"faults":{...},"rotation_index":..,"counts":{...}}
    [[nodiscard]] std::string state_json() const;

private:
    // Opens or closes the listening socket to match `refuse`; returns an error text.
    std::string reconcile_socket(bool refuse);
    void accept_connection();
    void serve(std::unique_ptr<ServerConnection> connection);
    void wake();

    const Protocol protocol_;
    tools::Endpoint bound_;
    ServiceContext context_;

    mutable std::mutex mutex_;
    std::condition_variable applied_;
    Faults faults_;
    std::uint64_t generation_ = 0;         // bumped by every apply()
    std::uint64_t applied_generation_ = 0; // what the accept loop has acted on
    std::string socket_error_;             // the accept loop's last reopen failure
    std::uint64_t rotation_index_ = 0;
    std::map<std::string, std::uint64_t, std::less<>> counts_;
    std::uint64_t connections_accepted_ = 0;

    std::atomic<bool> listening_{false};
    std::atomic<std::uint64_t> serial_{0};
    UniqueFd listen_fd_; // owned by the accept thread once run() starts
    UniqueFd wake_fd_;   // eventfd: "faults changed, look again"
};

} // namespace shhim::testsvc
