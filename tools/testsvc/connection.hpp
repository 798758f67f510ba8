// connection.hpp - server-side connection plumbing: the stop signal, the registry of open
// connections (so shutdown can wake every blocked thread), and one accepted connection.
#pragma once

#include "common/unique_fd.h"

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace shhim::testsvc {

// Level-triggered "we are stopping": an eventfd that becomes readable once and stays so,
// so any number of poll()s can include it.
class StopSignal {
public:
    StopSignal();
    void trigger() const;
    [[nodiscard]] int fd() const { return fd_.get(); }

private:
    UniqueFd fd_;
};

// Sleeps for `duration` (nanosecond precision) unless `stop` fires; false when stopped.
bool sleep_unless_stopped(std::chrono::nanoseconds duration, const StopSignal& stop);

// Every open server connection, so that shutdown can shutdown(2) them all and wake threads
// blocked in recv/send. Connections remove themselves before they close their fd, so the
// registry never touches a recycled fd number.
class ConnectionRegistry {
public:
    explicit ConnectionRegistry(std::size_t max_connections) : max_connections_(max_connections) {}
    // False when full or shutting down.
    bool add(int fd);
    void remove(int fd);
    void shutdown_all();
    bool wait_until_empty(std::chrono::milliseconds timeout);

private:
    std::mutex mutex_;
    std::condition_variable emptied_;
    std::unordered_set<int> fds_;
    std::size_t max_connections_;
    bool closing_ = false;
};

// One accepted TCP connection, registered for its whole life.
class ServerConnection {
public:
    // Null when the registry refuses it (too many connections, or shutting down).
    static std::unique_ptr<ServerConnection> admit(UniqueFd fd, std::string peer, ConnectionRegistry& registry);
    ServerConnection(const ServerConnection&) = delete;
    ServerConnection& operator=(const ServerConnection&) = delete;
    ~ServerConnection();

    [[nodiscard]] const std::string& peer() const { return peer_; }
    // Appends whatever arrives (blocking): bytes read, 0 on EOF, -1 on error (see last_error()).
    ssize_t receive(std::string& buffer);
    // Sends everything (blocking); false on error (see last_error()).
    bool send_all(std::string_view bytes);
    // Makes the coming close() abort the connection with a RST instead of a FIN.
    void reset_on_close();
    // Reads and discards until the peer closes or shutdown wakes us: the "hang" fault.
    void drain_until_closed();
    [[nodiscard]] int last_error() const { return last_error_; }

private:
    ServerConnection(UniqueFd fd, std::string peer, ConnectionRegistry& registry)
        : fd_(std::move(fd)), peer_(std::move(peer)), registry_(registry)
    {
    }

    UniqueFd fd_;
    std::string peer_;
    ConnectionRegistry& registry_;
    int last_error_ = 0;
};

} // namespace shhim::testsvc
