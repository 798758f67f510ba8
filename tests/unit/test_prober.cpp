// The agent's active probes against servers on loopback: pass, fail and
// timeout, each bounded by the probe's own timeout.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "agent/prober.h"
#include "common/unique_fd.h"

using namespace shhim;
using namespace std::chrono_literals;

namespace {

// A listening socket on 127.0.0.1 with a kernel-chosen port.
struct LoopbackListener {
    UniqueFd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    std::uint16_t port = 0;

    LoopbackListener()
    {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
        REQUIRE(::listen(fd.get(), 4) == 0);
        socklen_t length = sizeof(address);
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length);
        port = ntohs(address.sin_port);
    }

    // Accepts one connection, reads the request, writes `answer`, closes.
    std::thread answerOnce(std::string answer)
    {
        return std::thread([this, answer] {
            pollfd entry{fd.get(), POLLIN, 0};
            if (::poll(&entry, 1, 2000) != 1)
                return;
            UniqueFd client(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
            char buffer[1024];
            (void)::recv(client.get(), buffer, sizeof(buffer), 0);
            (void)::send(client.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
        });
    }
};

agent::ProbeTarget target(std::uint16_t port, v1::AppProtocol protocol)
{
    agent::ProbeTarget t;
    t.service = "fhir";
    t.backend = "127.0.0.1:" + std::to_string(port);
    t.address = *core::parseSocketAddress(t.backend).value;
    t.protocol = protocol;
    t.settings.timeout = 300ms;
    return t;
}

}  // namespace

TEST_CASE("prober: an HTTP backend answering 200 passes, 503 fails")
{
    LoopbackListener server;
    std::thread ok = server.answerOnce("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    const agent::ProbeOutcome passed = agent::runProbe(target(server.port, v1::APP_PROTOCOL_HTTP));
    ok.join();
    CHECK(passed.passed);
    CHECK(passed.detail == "HTTP 200");

    std::thread unavailable = server.answerOnce("HTTP/1.1 503 Service Unavailable\r\n\r\n");
    const agent::ProbeOutcome failed = agent::runProbe(target(server.port, v1::APP_PROTOCOL_HTTP));
    unavailable.join();
    CHECK_FALSE(failed.passed);
    CHECK(failed.detail == "HTTP 503");
}

TEST_CASE("prober: refused and silent backends fail within the timeout")
{
    std::uint16_t closed_port = 0;
    {
        LoopbackListener gone;  // bound then closed: nothing listens there any more
        closed_port = gone.port;
    }
    const agent::ProbeOutcome refused = agent::runProbe(target(closed_port, v1::APP_PROTOCOL_TCP));
    CHECK_FALSE(refused.passed);
    CHECK(refused.detail.find("Connection refused") != std::string::npos);

    LoopbackListener silent;  // accepts (backlog) but never answers
    const agent::ProbeOutcome timed_out = agent::runProbe(target(silent.port, v1::APP_PROTOCOL_HTTP));
    CHECK_FALSE(timed_out.passed);
    CHECK(timed_out.detail == "answer: timeout after 300 ms");
    CHECK(timed_out.took < 2s);

    const agent::ProbeOutcome connected = agent::runProbe(target(silent.port, v1::APP_PROTOCOL_TCP));
    CHECK(connected.passed);
}

TEST_CASE("prober: the worker runs a submitted probe and signals its eventfd")
{
    LoopbackListener server;
    agent::ProbeWorker worker;
    worker.submit(target(server.port, v1::APP_PROTOCOL_TCP));
    std::vector<agent::ProbeOutcome> outcomes;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (outcomes.empty() && std::chrono::steady_clock::now() < deadline) {
        pollfd entry{worker.eventFd(), POLLIN, 0};
        if (::poll(&entry, 1, 100) == 1)
            outcomes = worker.takeOutcomes();
    }
    REQUIRE(outcomes.size() == 1);
    CHECK(outcomes[0].passed);
    CHECK(outcomes[0].backend == "127.0.0.1:" + std::to_string(server.port));
}
