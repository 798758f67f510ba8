#include "listener.hpp"

#include "http_service.hpp"
#include "mllp_service.hpp"
#include "support/json.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>

namespace shhim::testsvc {

namespace {

constexpr int kListenBacklog = 1024;
// How long a control request waits for the accept loop to act on a change.
constexpr auto kApplyTimeout = std::chrono::seconds(2);
// How soon a failed reopen (port taken meanwhile) is retried.
constexpr int kReopenRetryMs = 500;

} // namespace

std::string_view to_string(Protocol protocol)
{
    return protocol == Protocol::Http ? "http" : "mllp";
}

Listener::Listener(Protocol protocol, tools::Endpoint requested, Faults initial, ServiceContext context)
    : protocol_(protocol), bound_(requested), context_(context), faults_(std::move(initial)),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (!wake_fd_.valid())
        throw std::system_error(errno, std::generic_category(), "eventfd for listener " + requested.to_string());
}

std::string Listener::name() const
{
    return std::string(to_string(protocol_)) + " " + bound_.to_string();
}

void Listener::bind()
{
    listen_fd_ = tools::listen_tcp(bound_, kListenBacklog);
    bound_ = tools::local_endpoint_of(listen_fd_.get());
    if (faults_.refuse)
        listen_fd_.reset(); // refusing from the start: the port is known, nothing listens
    listening_ = listen_fd_.valid();
}

std::string Listener::reconcile_socket(bool refuse)
{
    if (refuse && listen_fd_.valid()) {
        // Connections still in the accept queue are reset by the kernel, as are new SYNs.
        listen_fd_.reset();
        context_.log.info("{}: refusing connections (listening socket closed)", name());
    } else if (!refuse && !listen_fd_.valid()) {
        try {
            listen_fd_ = tools::listen_tcp(bound_, kListenBacklog);
            context_.log.info("{}: accepting connections again", name());
        } catch (const std::system_error& e) {
            listening_ = false;
            return std::string("reopening ") + name() + ": " + e.what();
        }
    }
    listening_ = listen_fd_.valid();
    return {};
}

void Listener::run()
{
    for (;;) {
        std::uint64_t generation = 0;
        bool refuse = false;
        {
            std::lock_guard lock(mutex_);
            generation = generation_;
            refuse = faults_.refuse;
        }
        const auto error = reconcile_socket(refuse);
        if (!error.empty())
            context_.log.error("{}", error);
        {
            std::lock_guard lock(mutex_);
            applied_generation_ = generation;
            socket_error_ = error;
            applied_.notify_all();
        }

        pollfd fds[3] = {
            {context_.stop.fd(), POLLIN, 0},
            {wake_fd_.get(), POLLIN, 0},
            {listen_fd_.valid() ? listen_fd_.get() : -1, POLLIN, 0},
        };
        const int ready = ::poll(fds, 3, error.empty() ? -1 : kReopenRetryMs);
        if (ready < 0 && errno != EINTR) {
            context_.log.error("{}: poll: {}", name(), tools::errno_text(errno));
            return;
        }
        if (fds[0].revents != 0)
            return;
        if (fds[1].revents != 0) {
            std::uint64_t count = 0;
            [[maybe_unused]] const auto drained = ::read(wake_fd_.get(), &count, sizeof count);
        }
        if (fds[2].revents != 0)
            accept_connection();
    }
}

void Listener::accept_connection()
{
    sockaddr_storage peer{};
    socklen_t peer_length = sizeof peer;
    UniqueFd fd(::accept4(listen_fd_.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC));
    if (!fd.valid()) {
        const int error = errno;
        if (error == EAGAIN || error == EINTR || error == ECONNABORTED)
            return;
        context_.log.error("{}: accept: {}", name(), tools::errno_text(error));
        if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM)
            std::this_thread::sleep_for(std::chrono::milliseconds(100)); // let connections finish
        return;
    }
    const int on = 1;
    // Responses go out in one send; no reason to let Nagle hold back a partial one.
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    auto peer_name = tools::endpoint_from(reinterpret_cast<sockaddr*>(&peer), peer_length).to_string();
    auto connection = ServerConnection::admit(std::move(fd), peer_name, context_.connections);
    if (!connection) {
        context_.log.error("{} <- {}: connection limit reached or stopping; closed at once", name(), peer_name);
        return;
    }
    {
        std::lock_guard lock(mutex_);
        ++connections_accepted_;
    }
    std::thread([this, connection = std::move(connection)]() mutable { serve(std::move(connection)); }).detach();
}

void Listener::serve(std::unique_ptr<ServerConnection> connection)
{
    try {
        if (protocol_ == Protocol::Http)
            serve_http_connection(*this, *connection);
        else
            serve_mllp_connection(*this, *connection);
    } catch (const std::exception& e) {
        context_.log.error("{} <- {}: {}", name(), connection->peer(), e.what());
    }
}

void Listener::wake()
{
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto written = ::write(wake_fd_.get(), &one, sizeof one);
}

std::string Listener::apply(const FaultChange& change)
{
    std::unique_lock lock(mutex_);
    change.apply_to(faults_);
    const bool mix_changed =
        protocol_ == Protocol::Http ? change.touches_status_mix() : change.touches_ack_mix();
    if (mix_changed)
        rotation_index_ = 0;
    const auto generation = ++generation_;
    wake();
    if (!applied_.wait_for(lock, kApplyTimeout, [&] { return applied_generation_ >= generation; }))
        return name() + ": the accept loop did not act on the change within 2 s";
    return socket_error_;
}

Faults Listener::faults() const
{
    std::lock_guard lock(mutex_);
    return faults_;
}

std::optional<std::string> Listener::next_mix_key()
{
    std::lock_guard lock(mutex_);
    const auto& mix = protocol_ == Protocol::Http ? faults_.status_mix : faults_.ack_mix;
    if (!mix)
        return std::nullopt;
    return mix->key_at(rotation_index_++);
}

void Listener::count(std::string_view outcome)
{
    std::lock_guard lock(mutex_);
    const auto it = counts_.find(outcome);
    if (it != counts_.end())
        ++it->second;
    else
        counts_.emplace(std::string(outcome), 1);
}

std::string Listener::state_json() const
{
    std::lock_guard lock(mutex_);
    std::string counts;
    for (const auto& [outcome, n] : counts_) {
        if (!counts.empty())
            counts += ',';
        counts += tools::json_quote(outcome) + ":" + std::to_string(n);
    }
    return "{\"protocol\":" + tools::json_quote(to_string(protocol_)) +
           ",\"address\":" + tools::json_quote(bound_.to_string()) +
           ",\"listening\":" + (listening_ ? "true" : "false") + ",\"faults\":" + faults_json(faults_) +
           ",\"rotation_index\":" + std::to_string(rotation_index_) +
           ",\"connections_accepted\":" + std::to_string(connections_accepted_) + ",\"counts\":{" + counts + "}}";
}

} // namespace shhim::testsvc
