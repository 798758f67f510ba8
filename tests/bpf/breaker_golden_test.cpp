// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// The kernel circuit breaker (bpf/flow.bpf.h) on the real XDP program: hard
// evidence about a routed backend trips it to DOWN_KERNEL at the backend's
// threshold, exactly once, with one SHHIM_EV_BACKEND_DOWN; good news resets
// the consecutive count. Backends are registered through the agent's own
// writer (datapath::RouteMaps), so the test also covers what it writes.
#include <doctest/doctest.h>

#include <string>

#include "bpf_harness.hpp"
#include "datapath/route_maps.h"
#include "golden_frames.hpp"
#include "test_support.hpp"

using namespace shhim::bpftest;

namespace {

constexpr std::uint16_t kTcpPort = 7000;   // threshold 1, connection evidence only
constexpr std::uint16_t kHttpPort = 8080;  // threshold 3, HTTP 5xx counts too

shhim::core::ServiceEndpoint coreEndpoint(const IpAddr& addr, std::uint16_t port)
{
    shhim::core::ServiceEndpoint e;
    e.address = addr.mapped();
    e.family = static_cast<std::uint8_t>(addr.family);
    e.port = port;
    e.protocol = kProtoTcp;
    return e;
}

// Two backends on server4(): id 1 (tcp, threshold 1), id 2 (http, threshold 3).
shhim::datapath::RouteMaps registerBackends(const Datapath& dp)
{
    auto routes = shhim::datapath::RouteMaps::openPinned(dp.pin_root());
    shhim::core::RouteTables t;
    t.backends.push_back({coreEndpoint(server4(), kTcpPort), 1, 1, 0, "alarms"});
    t.backends.push_back({coreEndpoint(server4(), kHttpPort), 2, 3, shhim::core::kCountHttp5xx, "fhir"});
    shhim::core::RouteService alarms;
    alarms.name = "alarms";
    alarms.endpoint = coreEndpoint(IpAddr::parse("198.18.0.100"), kTcpPort);
    alarms.id = 0;
    alarms.primary = {{1, 1}};
    t.services.push_back(alarms);
    routes.apply(t);
    return routes;
}

shhim_backend_health health(const shhim::datapath::RouteMaps& routes, std::uint32_t id)
{
    for (const auto& b : routes.backends())
        if (b.id == id)
            return b.kernel;
    FAIL("backend id " << id << " is not in the kernel");
    return {};
}

void run(const Datapath& dp, const Bytes& frame, bool ingress)
{
    const TestRun r = ingress ? dp.run_xdp(frame) : dp.run_tc(frame);
    REQUIRE(r.err == 0);
}

// client -> server through TC egress, server -> client through XDP ingress.
void toServer(const Datapath& dp, std::uint16_t cport, std::uint16_t sport, std::uint8_t flags, Bytes payload = {})
{
    run(dp, tcp_frame(client4(), cport, server4(), sport, flags, std::move(payload)), false);
}
void toClient(const Datapath& dp, std::uint16_t cport, std::uint16_t sport, std::uint8_t flags, Bytes payload = {})
{
    run(dp, tcp_frame(server4(), sport, client4(), cport, flags, std::move(payload)), true);
}

// One HTTP exchange on a fresh connection answered with `status`.
void httpExchange(const Datapath& dp, std::uint16_t cport, int status)
{
    toServer(dp, cport, kHttpPort, kTcpSyn);
    toClient(dp, cport, kHttpPort, kTcpSyn | kTcpAck);
    toServer(dp, cport, kHttpPort, kTcpAck);
    toServer(dp, cport, kHttpPort, kTcpAck | kTcpPsh, to_bytes("GET /fhir/Patient HTTP/1.1\r\nHost: x\r\n\r\n"));
    toClient(dp, cport, kHttpPort, kTcpAck | kTcpPsh,
             to_bytes("HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 0\r\n\r\n"));
}

std::vector<shhim_event> backendDownEvents(Datapath& dp)
{
    std::vector<shhim_event> out;
    for (const shhim_event& e : dp.drain_events())
        if (e.kind == SHHIM_EV_BACKEND_DOWN)
            out.push_back(e);
    return out;
}

}  // namespace

TEST_CASE("breaker: threshold 1 trips on one RST answering a SYN, with exactly one BACKEND_DOWN")
{
    Datapath dp;
    auto routes = registerBackends(dp);
    CHECK(health(routes, 1).state == SHHIM_BACKEND_UP);

    const std::uint64_t before = monotonic_ns();
    toServer(dp, 46000, kTcpPort, kTcpSyn);
    toClient(dp, 46000, kTcpPort, kTcpRst | kTcpAck);
    const shhim_backend_health h = health(routes, 1);
    CHECK(h.state == SHHIM_BACKEND_DOWN_KERNEL);
    CHECK(h.trip_kind == SHHIM_EV_REFUSED);
    CHECK(h.trips == 1);
    CHECK(h.tripped_ns >= before);
    auto events = backendDownEvents(dp);
    REQUIRE(events.size() == 1);
    CHECK(events[0].detail == SHHIM_EV_REFUSED);
    CHECK(same_endpoint(events[0].server, make_endpoint(server4(), kTcpPort, kProtoTcp)));
    CHECK(same_endpoint(events[0].client, make_endpoint(client4(), 46000, kProtoTcp)));

    // More refusals while it is down: no second trip, no second event.
    toServer(dp, 46001, kTcpPort, kTcpSyn);
    toClient(dp, 46001, kTcpPort, kTcpRst | kTcpAck);
    CHECK(health(routes, 1).trips == 1);
    CHECK(backendDownEvents(dp).empty());

    // The other backend saw nothing.
    CHECK(health(routes, 2).state == SHHIM_BACKEND_UP);

    // The agent restores it: UP, counters cleared; the next refusal trips it again.
    routes.setBackendState(1, SHHIM_BACKEND_UP);
    CHECK(health(routes, 1).state == SHHIM_BACKEND_UP);
    CHECK(health(routes, 1).conn_failures == 0);
    toServer(dp, 46002, kTcpPort, kTcpSyn);
    toClient(dp, 46002, kTcpPort, kTcpRst | kTcpAck);
    CHECK(health(routes, 1).state == SHHIM_BACKEND_DOWN_KERNEL);
    CHECK(health(routes, 1).trips == 2);
    CHECK(backendDownEvents(dp).size() == 1);
}

TEST_CASE("breaker: threshold 3 needs three consecutive 503s; a 200 in between starts over")
{
    Datapath dp;
    auto routes = registerBackends(dp);
    std::uint16_t port = 47000;

    httpExchange(dp, port++, 503);
    httpExchange(dp, port++, 503);
    CHECK(health(routes, 2).app_failures == 2);
    httpExchange(dp, port++, 200);
    CHECK(health(routes, 2).app_failures == 0);
    httpExchange(dp, port++, 503);
    httpExchange(dp, port++, 503);
    CHECK(health(routes, 2).state == SHHIM_BACKEND_UP);
    CHECK(backendDownEvents(dp).empty());

    httpExchange(dp, port++, 503);
    const shhim_backend_health h = health(routes, 2);
    CHECK(h.state == SHHIM_BACKEND_DOWN_KERNEL);
    CHECK(h.trip_kind == SHHIM_EV_HTTP_5XX);
    const auto events = backendDownEvents(dp);
    REQUIRE(events.size() == 1);
    CHECK(events[0].detail == SHHIM_EV_HTTP_5XX);
    CHECK(same_endpoint(events[0].server, make_endpoint(server4(), kHttpPort, kProtoTcp)));
}

TEST_CASE("breaker: 5xx does not count where the policy does not ask for it; handshakes reset refusals")
{
    Datapath dp;
    auto routes = registerBackends(dp);
    // Backend 1 is a plain tcp service: an HTTP-looking 503 from it is not evidence.
    toServer(dp, 48000, kTcpPort, kTcpSyn);
    toClient(dp, 48000, kTcpPort, kTcpSyn | kTcpAck);
    toServer(dp, 48000, kTcpPort, kTcpAck | kTcpPsh, to_bytes("GET / HTTP/1.1\r\n\r\n"));
    toClient(dp, 48000, kTcpPort, kTcpAck | kTcpPsh, to_bytes("HTTP/1.1 503 X\r\n\r\n"));
    CHECK(health(routes, 1).state == SHHIM_BACKEND_UP);
    CHECK(health(routes, 1).app_failures == 0);

    // Backend 2 (threshold 3): two refusals, a completed handshake, two refusals: still UP.
    for (std::uint16_t p = 48100; p < 48102; ++p) {
        toServer(dp, p, kHttpPort, kTcpSyn);
        toClient(dp, p, kHttpPort, kTcpRst | kTcpAck);
    }
    CHECK(health(routes, 2).conn_failures == 2);
    toServer(dp, 48102, kHttpPort, kTcpSyn);
    toClient(dp, 48102, kHttpPort, kTcpSyn | kTcpAck);
    CHECK(health(routes, 2).conn_failures == 0);
    for (std::uint16_t p = 48103; p < 48105; ++p) {
        toServer(dp, p, kHttpPort, kTcpSyn);
        toClient(dp, p, kHttpPort, kTcpRst | kTcpAck);
    }
    CHECK(health(routes, 2).state == SHHIM_BACKEND_UP);
    CHECK(backendDownEvents(dp).empty());
}

TEST_CASE("breaker: ICMP unreachable quoting a SYN to the backend trips it")
{
    Datapath dp;
    auto routes = registerBackends(dp);
    toServer(dp, 49000, kTcpPort, kTcpSyn);
    IpSpec quoted;
    quoted.src = client4();
    quoted.dst = server4();
    TcpSpec syn;
    syn.sport = 49000;
    syn.dport = kTcpPort;
    syn.flags = kTcpSyn;
    // Host unreachable from a router on the way.
    run(dp, icmp_error_frame(router4(), client4(), 3, 1, build_ip(quoted, syn)), true);
    const shhim_backend_health h = health(routes, 1);
    CHECK(h.state == SHHIM_BACKEND_DOWN_KERNEL);
    CHECK(h.trip_kind == SHHIM_EV_ICMP_ERROR);
    const auto events = backendDownEvents(dp);
    REQUIRE(events.size() == 1);
    CHECK(events[0].detail == SHHIM_EV_ICMP_ERROR);

    // Time exceeded is not unreachable: no evidence.
    routes.setBackendState(1, SHHIM_BACKEND_UP);
    run(dp, icmp_error_frame(router4(), client4(), 11, 0, build_ip(quoted, syn)), true);
    CHECK(health(routes, 1).state == SHHIM_BACKEND_UP);
}

TEST_CASE("breaker: a backend set DOWN_AGENT stays so whatever the kernel sees; unknown ids are refused")
{
    Datapath dp;
    auto routes = registerBackends(dp);
    routes.setBackendState(1, SHHIM_BACKEND_DOWN_AGENT);
    toServer(dp, 49500, kTcpPort, kTcpSyn);
    toClient(dp, 49500, kTcpPort, kTcpRst | kTcpAck);
    CHECK(health(routes, 1).state == SHHIM_BACKEND_DOWN_AGENT);
    CHECK(backendDownEvents(dp).empty());
    CHECK_THROWS(routes.setBackendState(9, SHHIM_BACKEND_UP));
    CHECK_THROWS(routes.setBackendState(1, 7));
}
