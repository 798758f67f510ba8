#include "agent/prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include "shhim_abi.h"

namespace shhim::agent {
namespace {

using Clock = std::chrono::steady_clock;

struct SockAddr {
    sockaddr_storage storage{};
    socklen_t length = 0;
};

SockAddr toSockAddr(const core::SocketAddress& address)
{
    SockAddr out;
    if (address.ip.family == core::IpFamily::V4) {
        auto* in = reinterpret_cast<sockaddr_in*>(&out.storage);
        in->sin_family = AF_INET;
        in->sin_port = htons(address.port);
        std::memcpy(&in->sin_addr, address.ip.bytes.data(), 4);
        out.length = sizeof(sockaddr_in);
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(address.port);
        std::memcpy(&in6->sin6_addr, address.ip.bytes.data(), 16);
        out.length = sizeof(sockaddr_in6);
    }
    return out;
}

int remainingMs(Clock::time_point deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on fd until the deadline; false on timeout.
bool waitFor(int fd, short events, Clock::time_point deadline)
{
    pollfd entry{fd, events, 0};
    for (;;) {
        const int ready = ::poll(&entry, 1, remainingMs(deadline));
        if (ready > 0)
            return true;
        if (ready == 0)
            return false;
        if (errno != EINTR)
            return false;
    }
}

std::string utcTimestamp()
{
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    char text[16];
    std::strftime(text, sizeof(text), "%Y%m%d%H%M%S", &utc);
    return text;
}

class ProbeRun {
public:
    explicit ProbeRun(const ProbeTarget& target)
        : target_(target), deadline_(Clock::now() + target.settings.timeout)
    {
    }

    std::string operator()()
    {
        const SockAddr peer = toSockAddr(target_.address);
        UniqueFd socket(::socket(peer.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!socket)
            return fail("socket: " + std::string(std::strerror(errno)));
        const std::uint32_t mark = SHHIM_PROBE_MARK;
        ::setsockopt(socket.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
        if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&peer.storage), peer.length) != 0 &&
            errno != EINPROGRESS)
            return fail("connect: " + std::string(std::strerror(errno)));
        if (!waitFor(socket.get(), POLLOUT, deadline_))
            return timedOut("connect");
        int error = 0;
        socklen_t length = sizeof(error);
        ::getsockopt(socket.get(), SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0)
            return fail("connect: " + std::string(std::strerror(error)));
        if (target_.protocol == v1::APP_PROTOCOL_TCP)
            return pass("connected");
        return exchange(socket.get());
    }

    bool passed() const { return passed_; }

private:
    std::string exchange(int fd)
    {
        const bool http = target_.protocol == v1::APP_PROTOCOL_HTTP;
        const std::string request = http ? core::httpProbeRequest(core::formatSocketAddress(target_.address),
                                                                  target_.settings.http_path)
                                         : core::mllpProbeRequest("SHHIM" + utcTimestamp(), utcTimestamp());
        std::size_t sent = 0;
        while (sent < request.size()) {
            if (!waitFor(fd, POLLOUT, deadline_))
                return timedOut("send");
            const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return fail("send: " + std::string(std::strerror(errno)));
            if (n > 0)
                sent += static_cast<std::size_t>(n);
        }
        std::string received;
        char buffer[4096];
        for (;;) {
            if (!waitFor(fd, POLLIN, deadline_))
                return timedOut("answer");
            const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n < 0)
                return fail("recv: " + std::string(std::strerror(errno)));
            if (n == 0)
                return fail(received.empty() ? "closed without an answer" : "closed mid-answer");
            received.append(buffer, static_cast<std::size_t>(n));
            const core::ProbeJudgement judgement =
                http ? core::judgeHttpProbe(received) : core::judgeMllpProbe(received);
            if (judgement.verdict == core::ProbeVerdict::Pass)
                return pass(judgement.detail);
            if (judgement.verdict == core::ProbeVerdict::Fail)
                return fail(judgement.detail);
        }
    }

    std::string pass(std::string detail)
    {
        passed_ = true;
        return detail;
    }
    static std::string fail(std::string detail) { return detail; }
    std::string timedOut(const char* stage) const
    {
        return stage + std::string(": timeout after ") + std::to_string(target_.settings.timeout.count()) + " ms";
    }

    const ProbeTarget& target_;
    const Clock::time_point deadline_;
    bool passed_ = false;
};

}  // namespace

ProbeOutcome runProbe(const ProbeTarget& target)
{
    const auto started = Clock::now();
    ProbeRun run(target);
    ProbeOutcome outcome;
    outcome.service = target.service;
    outcome.backend = target.backend;
    outcome.detail = run();
    outcome.passed = run.passed();
    outcome.took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
    return outcome;
}

ProbeWorker::ProbeWorker() : event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (!event_fd_)
        throw std::system_error(errno, std::generic_category(), "create the probe eventfd");
    thread_ = std::thread([this] { run(); });
}

ProbeWorker::~ProbeWorker()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void ProbeWorker::submit(ProbeTarget target)
{
    {
        std::lock_guard lock(mutex_);
        if (!pending_.emplace(target.service, target.backend).second)
            return;
        queue_.push_back(std::move(target));
    }
    wake_.notify_one();
}

std::vector<ProbeOutcome> ProbeWorker::takeOutcomes()
{
    std::uint64_t ignored = 0;
    (void)::read(event_fd_.get(), &ignored, sizeof(ignored));
    std::lock_guard lock(mutex_);
    return std::exchange(outcomes_, {});
}

void ProbeWorker::run()
{
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_)
            return;
        ProbeTarget target = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        ProbeOutcome outcome = runProbe(target);
        lock.lock();
        pending_.erase({outcome.service, outcome.backend});
        outcomes_.push_back(std::move(outcome));
        const std::uint64_t one = 1;
        (void)::write(event_fd_.get(), &one, sizeof(one));
    }
}

}  // namespace shhim::agent
