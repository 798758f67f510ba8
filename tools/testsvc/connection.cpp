#include "connection.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <system_error>

namespace shhim::testsvc {

StopSignal::StopSignal() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (!fd_.valid())
        throw std::system_error(errno, std::generic_category(), "eventfd for the stop signal");
}

void StopSignal::trigger() const
{
    const std::uint64_t one = 1;
    // Never read back, so it stays readable; a full counter (impossible here) changes nothing.
    [[maybe_unused]] const auto written = ::write(fd_.get(), &one, sizeof one);
}

bool sleep_unless_stopped(std::chrono::nanoseconds duration, const StopSignal& stop)
{
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + duration;
    for (;;) {
        const auto left = deadline - Clock::now();
        if (left <= std::chrono::nanoseconds::zero())
            return true;
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        const timespec timeout{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
        pollfd stop_poll{stop.fd(), POLLIN, 0};
        const int ready = ppoll(&stop_poll, 1, &timeout, nullptr);
        if (ready > 0)
            return false;
        // ready == 0: timed out (loop re-checks the clock); EINTR: retry.
    }
}

bool ConnectionRegistry::add(int fd)
{
    std::lock_guard lock(mutex_);
    if (closing_ || fds_.size() >= max_connections_)
        return false;
    fds_.insert(fd);
    return true;
}

void ConnectionRegistry::remove(int fd)
{
    std::lock_guard lock(mutex_);
    fds_.erase(fd);
    // Notified under the lock: the waiter may destroy the registry as soon as it sees empty.
    if (fds_.empty())
        emptied_.notify_all();
}

void ConnectionRegistry::shutdown_all()
{
    std::lock_guard lock(mutex_);
    closing_ = true;
    for (const int fd : fds_)
        ::shutdown(fd, SHUT_RDWR);
}

bool ConnectionRegistry::wait_until_empty(std::chrono::milliseconds timeout)
{
    std::unique_lock lock(mutex_);
    return emptied_.wait_for(lock, timeout, [this] { return fds_.empty(); });
}

std::unique_ptr<ServerConnection> ServerConnection::admit(UniqueFd fd, std::string peer,
                                                          ConnectionRegistry& registry)
{
    if (!registry.add(fd.get()))
        return nullptr;
    return std::unique_ptr<ServerConnection>(new ServerConnection(std::move(fd), std::move(peer), registry));
}

ServerConnection::~ServerConnection()
{
    registry_.remove(fd_.get());
    fd_.reset();
}

ssize_t ServerConnection::receive(std::string& buffer)
{
    char chunk[16384];
    for (;;) {
        const ssize_t got = ::recv(fd_.get(), chunk, sizeof chunk, 0);
        if (got > 0)
            buffer.append(chunk, static_cast<std::size_t>(got));
        if (got >= 0)
            return got;
        if (errno != EINTR) {
            last_error_ = errno;
            return -1;
        }
    }
}

bool ServerConnection::send_all(std::string_view bytes)
{
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            last_error_ = errno;
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
    return true;
}

void ServerConnection::reset_on_close()
{
    const linger abort_now{1, 0};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
}

void ServerConnection::drain_until_closed()
{
    std::string discarded;
    while (receive(discarded) > 0)
        discarded.clear();
}

} // namespace shhim::testsvc
