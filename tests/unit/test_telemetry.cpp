#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/telemetry.h"
#include "test_support.h"

using namespace shhim::core;
using shhim::test::addSamples;
using shhim::test::endpointV4;
using shhim::test::endpointV6;

namespace {

constexpr std::int64_t kOffset = 1'700'000'000'000'000'000;  // Unix ns of monotonic 0
constexpr std::uint64_t kMs = 1'000'000;

// Server 198.18.0.10:80 is endpoint a (smaller port); client 198.18.1.5:40000 is b.
shhim_flow_key httpKey()
{
    return {endpointV4({198, 18, 0, 10}, 80), endpointV4({198, 18, 1, 5}, 40000)};
}

shhim::v1::Flow flowNamed(std::string client, std::uint64_t bytes, std::uint64_t packets, double max_response,
                          std::uint32_t errors)
{
    shhim::v1::Flow f;
    f.mutable_client()->set_address(std::move(client));
    f.mutable_client()->set_port(40000);
    f.mutable_server()->set_address("198.18.0.10");
    f.mutable_server()->set_port(80);
    f.set_bytes_to_server(bytes);
    f.set_packets_to_server(packets);
    f.set_max_response_seconds(max_response);
    f.set_errors(errors);
    return f;
}

std::vector<std::string> clients(const std::vector<shhim::v1::Flow>& flows)
{
    std::vector<std::string> out;
    for (const auto& f : flows)
        out.push_back(f.client().address());
    return out;
}

}  // namespace

TEST_CASE("monotonic to Unix offset")
{
    CHECK(monoToUnixOffsetNs(1'700'000'100'000'000'000, 100'000'000'000) == kOffset);
    CHECK(toUnixNs(5, kOffset) == kOffset + 5);
    CHECK(toUnixNs(0, kOffset) == 0);  // "never" stays never
}

TEST_CASE("flow orientation: client_is_b picks key.b as the client")
{
    const auto key = httpKey();
    shhim_flow flow{};
    flow.client_is_b = 1;
    flow.packets[SHHIM_DIR_TO_SERVER] = 7;
    flow.bytes[SHHIM_DIR_TO_SERVER] = 700;
    flow.packets[SHHIM_DIR_TO_CLIENT] = 5;
    flow.bytes[SHHIM_DIR_TO_CLIENT] = 5000;

    const auto f = toFlow(key, flow, kOffset);
    CHECK(f.client().address() == "198.18.1.5");
    CHECK(f.client().port() == 40000);
    CHECK(f.server().address() == "198.18.0.10");
    CHECK(f.server().port() == 80);
    CHECK(f.packets_to_server() == 7);
    CHECK(f.bytes_to_server() == 700);
    CHECK(f.packets_to_client() == 5);
    CHECK(f.bytes_to_client() == 5000);

    flow.client_is_b = 0;
    const auto swapped = toFlow(key, flow, kOffset);
    CHECK(swapped.client().address() == "198.18.0.10");
    CHECK(swapped.client().port() == 80);
    CHECK(swapped.server().address() == "198.18.1.5");
    CHECK(swapped.server().port() == 40000);
    // Directions stay relative to the client.
    CHECK(swapped.bytes_to_server() == 700);
}

TEST_CASE("flow fields: times, TCP state, HTTP status, roles, seconds")
{
    shhim_flow flow{};
    flow.client_is_b = 1;
    flow.first_seen_ns = 1000;
    flow.last_seen_ns = 2000;
    flow.tcp_state = SHHIM_TCP_ESTABLISHED;
    flow.app_proto = SHHIM_APP_HTTP;
    flow.last_status = 503;
    flow.handshake_ns = 250'000;
    flow.last_response_ns = 40 * kMs;
    flow.max_response_ns = 45 * kMs;
    flow.srtt_us = 1500;
    flow.requests = 3;
    flow.responses = 2;
    flow.syn = 1;
    flow.synack = 1;
    flow.fin = 2;
    flow.rst = 1;
    flow.icmp_errors = 4;
    flow.errors = 6;
    flow.retransmits = 9;
    flow.rto_events = 1;
    flow.flags = SHHIM_FLOW_F_ROLE_GUESSED;

    const auto f = toFlow(httpKey(), flow, kOffset);
    CHECK(f.protocol() == "tcp");
    CHECK(f.first_seen_unix_ns() == kOffset + 1000);
    CHECK(f.last_seen_unix_ns() == kOffset + 2000);
    CHECK(f.tcp_state() == "established");
    CHECK(f.app_protocol() == "http");
    CHECK(f.last_status() == 503);
    CHECK(f.last_mllp_ack().empty());
    CHECK(f.handshake_seconds() == doctest::Approx(0.00025));
    CHECK(f.last_response_seconds() == doctest::Approx(0.040));
    CHECK(f.max_response_seconds() == doctest::Approx(0.045));
    CHECK(f.srtt_seconds() == doctest::Approx(0.0015));
    CHECK(f.requests() == 3);
    CHECK(f.responses() == 2);
    CHECK(f.syn() == 1);
    CHECK(f.synack() == 1);
    CHECK(f.fin() == 2);
    CHECK(f.rst() == 1);
    CHECK(f.icmp_errors() == 4);
    CHECK(f.errors() == 6);
    CHECK(f.retransmits() == 9);
    CHECK(f.rto_events() == 1);
    CHECK(f.role_guessed());

    flow.flags = SHHIM_FLOW_F_SYN_TIMEOUT_REPORTED;
    CHECK_FALSE(toFlow(httpKey(), flow, kOffset).role_guessed());
}

TEST_CASE("flow MLLP ack comes from last_status as two letters")
{
    shhim_flow flow{};
    flow.app_proto = SHHIM_APP_MLLP;
    flow.last_status = 'A' << 8 | 'E';
    auto f = toFlow(httpKey(), flow, kOffset);
    CHECK(f.app_protocol() == "mllp");
    CHECK(f.last_mllp_ack() == "AE");
    CHECK(f.last_status() == 0);  // not an HTTP status

    for (const char* ack : {"AA", "AE", "AR", "CA", "CE", "CR"}) {
        CAPTURE(ack);
        CHECK(mllpAckFromStatus(static_cast<std::uint16_t>(ack[0] << 8 | ack[1])) == ack);
    }
    CHECK(mllpAckFromStatus(0).empty());
    CHECK(mllpAckFromStatus('X' << 8 | 'Y').empty());
    CHECK(mllpAckFromStatus(200).empty());
}

TEST_CASE("state names")
{
    CHECK(tcpStateName(SHHIM_TCP_NONE) == "none");
    CHECK(tcpStateName(SHHIM_TCP_SYN_SENT) == "syn_sent");
    CHECK(tcpStateName(SHHIM_TCP_CLOSING) == "closing");
    CHECK(tcpStateName(SHHIM_TCP_CLOSED) == "closed");
    CHECK(tcpStateName(99) == "");
    CHECK(appProtocolName(SHHIM_APP_UNKNOWN) == "");

    // UDP flows carry no TCP state.
    shhim_flow_key key{endpointV4({198, 18, 0, 53}, 53, 17), endpointV4({198, 18, 1, 5}, 5353, 17)};
    shhim_flow flow{};
    flow.client_is_b = 1;
    const auto f = toFlow(key, flow, kOffset);
    CHECK(f.protocol() == "udp");
    CHECK(f.tcp_state().empty());
}

TEST_CASE("IPv6 flow endpoints")
{
    shhim_flow_key key{endpointV6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10}, 443),
                       endpointV6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x20}, 50000)};
    shhim_flow flow{};
    flow.client_is_b = 1;
    const auto f = toFlow(key, flow, kOffset);
    CHECK(f.client().address() == "2001:db8::20");
    CHECK(f.client().port() == 50000);
    CHECK(f.server().address() == "2001:db8::10");
    CHECK(f.server().port() == 443);
}

TEST_CASE("backend conversion keeps every counter in its field")
{
    shhim_backend b{};
    b.first_seen_ns = 10;
    b.last_seen_ns = 20;
    b.flows = 1;
    b.conn_attempts = 2;
    b.conn_established = 3;
    b.refused = 4;
    b.syn_timeouts = 5;
    b.resets = 6;
    b.icmp_errors = 7;
    b.requests = 8;
    b.responses = 9;
    for (int i = 0; i < SHHIM_HTTP_CLASS_MAX; ++i)
        b.http_status[i] = 100 + i;
    for (int i = 0; i < SHHIM_MLLP_ACK_MAX; ++i)
        b.mllp_acks[i] = 200 + i;
    b.app_unparsed = 11;
    b.retransmits = 12;
    b.rto_events = 13;
    b.srtt_us_sum = 3000;
    b.srtt_samples = 3;
    b.srtt_us_last = 500;
    addSamples(b.response, 40 * kMs, 100);
    addSamples(b.handshake, kMs / 10, 4);

    const auto out = toBackend(endpointV4({198, 18, 0, 10}, 2575), b, kOffset);
    CHECK(out.endpoint().address() == "198.18.0.10");
    CHECK(out.endpoint().port() == 2575);
    CHECK(out.protocol() == "tcp");
    CHECK(out.flows() == 1);
    CHECK(out.conn_attempts() == 2);
    CHECK(out.conn_established() == 3);
    CHECK(out.refused() == 4);
    CHECK(out.syn_timeouts() == 5);
    CHECK(out.resets() == 6);
    CHECK(out.icmp_errors() == 7);
    CHECK(out.requests() == 8);
    CHECK(out.responses() == 9);
    CHECK(out.http().status_1xx() == 100);
    CHECK(out.http().status_2xx() == 101);
    CHECK(out.http().status_3xx() == 102);
    CHECK(out.http().status_4xx() == 103);
    CHECK(out.http().status_5xx() == 104);
    CHECK(out.mllp().aa() == 200);
    CHECK(out.mllp().ae() == 201);
    CHECK(out.mllp().ar() == 202);
    CHECK(out.mllp().ca() == 203);
    CHECK(out.mllp().ce() == 204);
    CHECK(out.mllp().cr() == 205);
    CHECK(out.app_unparsed() == 11);
    CHECK(out.retransmits() == 12);
    CHECK(out.rto_events() == 13);
    CHECK(out.srtt_mean_seconds() == doctest::Approx(0.001));
    CHECK(out.srtt_last_seconds() == doctest::Approx(0.0005));
    CHECK(out.response().count() == 100);
    CHECK(out.response().p50_seconds() == doctest::Approx(0.040).epsilon(0.032));
    CHECK(out.handshake().count() == 4);
    CHECK(out.handshake().p99_seconds() == doctest::Approx(0.0001).epsilon(0.032));
    CHECK(out.first_seen_unix_ns() == kOffset + 10);
    CHECK(out.last_seen_unix_ns() == kOffset + 20);
    CHECK(out.request_rate_per_second() == 0.0);  // needs two snapshots: rates()
}

TEST_CASE("backend without RTT samples reports 0, not NaN")
{
    shhim_backend b{};
    const auto out = toBackend(endpointV4({198, 18, 0, 10}, 80), b, kOffset);
    CHECK(out.srtt_mean_seconds() == 0.0);
    CHECK(out.response().count() == 0);
}

TEST_CASE("events: kind, hook, detail text, times")
{
    shhim_event e{};
    e.ts_ns = 5000;
    e.client = endpointV4({198, 18, 1, 5}, 40000);
    e.server = endpointV4({198, 18, 0, 10}, 80);
    e.ifindex = 7;

    e.kind = SHHIM_EV_HTTP_5XX;
    e.detail = 503;
    e.hook = SHHIM_HOOK_XDP_INGRESS;
    auto out = toEvent(e, kOffset);
    CHECK(out.kind() == "http_5xx");
    CHECK(out.detail() == 503);
    CHECK(out.detail_text() == "503");
    CHECK(out.hook() == "xdp");
    CHECK(out.time_unix_ns() == kOffset + 5000);
    CHECK(out.kernel_ts_ns() == 5000);
    CHECK(out.ifindex() == 7);
    CHECK(out.protocol() == "tcp");
    CHECK(out.client().address() == "198.18.1.5");
    CHECK(out.server().port() == 80);

    e.kind = SHHIM_EV_MLLP_NACK;
    e.detail = SHHIM_MLLP_AR;
    e.hook = SHHIM_HOOK_TC_EGRESS;
    out = toEvent(e, kOffset);
    CHECK(out.kind() == "mllp_nack");
    CHECK(out.detail_text() == "AR");
    CHECK(out.hook() == "tc-egress");

    e.kind = SHHIM_EV_ICMP_ERROR;
    e.detail = 3 << 8 | 3;
    out = toEvent(e, kOffset);
    CHECK(out.kind() == "icmp_error");
    CHECK(out.detail_text() == "icmp 3/3 port unreachable");

    e.client = endpointV6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x20}, 50000);
    e.server = endpointV6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10}, 443);
    e.detail = 1 << 8 | 4;
    CHECK(toEvent(e, kOffset).detail_text() == "icmpv6 1/4 port unreachable");
    e.detail = 2 << 8;
    CHECK(toEvent(e, kOffset).detail_text() == "icmpv6 2/0 packet too big");

    e.kind = SHHIM_EV_REFUSED;
    e.detail = 0;
    e.hook = SHHIM_HOOK_SOCKOPS;
    out = toEvent(e, kOffset);
    CHECK(out.kind() == "refused");
    CHECK(out.detail_text().empty());
    CHECK(out.hook() == "sockops");

    CHECK(eventKindName(SHHIM_EV_SYN_TIMEOUT) == "syn_timeout");
    CHECK(eventKindName(SHHIM_EV_RESET) == "reset");
    CHECK(hookName(SHHIM_HOOK_TRACEPOINT) == "tp_btf");
    CHECK(icmpErrorText(11 << 8, false) == "icmp 11/0 ttl exceeded");
    CHECK(icmpErrorText(3 << 8 | 4, false) == "icmp 3/4 fragmentation needed");
}

TEST_CASE("every event kind has a distinct name")
{
    std::set<std::string_view> names;
    for (std::uint32_t kind = 1; kind < SHHIM_EV_KIND_MAX; ++kind) {
        CAPTURE(kind);
        CHECK(eventKindName(kind) != "unknown");
        names.insert(eventKindName(kind));
    }
    CHECK(names.size() == SHHIM_EV_KIND_MAX - 1);
    CHECK(eventKindName(0) == "unknown");
    CHECK(eventKindName(SHHIM_EV_KIND_MAX) == "unknown");
}

TEST_CASE("parseFlowSort")
{
    CHECK(parseFlowSort("bytes") == FlowSort::Bytes);
    CHECK(parseFlowSort("packets") == FlowSort::Packets);
    CHECK(parseFlowSort("latency") == FlowSort::Latency);
    CHECK(parseFlowSort("errors") == FlowSort::Errors);
    CHECK(parseFlowSort("") == FlowSort::Bytes);  // FlowsRequest default
    CHECK_FALSE(parseFlowSort("Bytes").has_value());
    CHECK_FALSE(parseFlowSort("rtt").has_value());
    for (auto sort : {FlowSort::Bytes, FlowSort::Packets, FlowSort::Latency, FlowSort::Errors})
        CHECK(parseFlowSort(flowSortName(sort)) == sort);
}

TEST_CASE("sortAndTrim orders by each key, largest first")
{
    // Each flow leads in exactly one key.
    const std::vector<shhim::v1::Flow> flows = {
        flowNamed("bytes", 9000, 10, 0.001, 0),
        flowNamed("packets", 100, 500, 0.002, 1),
        flowNamed("latency", 200, 20, 0.900, 2),
        flowNamed("errors", 300, 30, 0.003, 50),
    };
    auto sorted = [&](FlowSort sort) {
        auto copy = flows;
        sortAndTrim(copy, sort, 0);
        return clients(copy);
    };
    CHECK(sorted(FlowSort::Bytes) == std::vector<std::string>{"bytes", "errors", "latency", "packets"});
    CHECK(sorted(FlowSort::Packets) == std::vector<std::string>{"packets", "errors", "latency", "bytes"});
    CHECK(sorted(FlowSort::Latency) == std::vector<std::string>{"latency", "errors", "packets", "bytes"});
    CHECK(sorted(FlowSort::Errors) == std::vector<std::string>{"errors", "latency", "packets", "bytes"});
}

TEST_CASE("sortAndTrim sums both directions and counts ICMP errors as errors")
{
    std::vector<shhim::v1::Flow> flows = {flowNamed("a", 100, 1, 0, 0), flowNamed("b", 60, 1, 0, 0)};
    flows[1].set_bytes_to_client(60);  // 120 total beats 100
    flows[1].set_packets_to_client(5);
    flows[1].set_icmp_errors(3);
    sortAndTrim(flows, FlowSort::Bytes, 0);
    CHECK(clients(flows) == std::vector<std::string>{"b", "a"});
    sortAndTrim(flows, FlowSort::Packets, 0);
    CHECK(clients(flows) == std::vector<std::string>{"b", "a"});
    // "a" has 2 failure events, "b" 3 ICMP errors and none: b still leads.
    for (auto& f : flows)
        if (f.client().address() == "a")
            f.set_errors(2);
    sortAndTrim(flows, FlowSort::Errors, 0);
    CHECK(clients(flows) == std::vector<std::string>{"b", "a"});
    // 2 more failure events on "a" make it lead.
    for (auto& f : flows)
        if (f.client().address() == "a")
            f.set_errors(4);
    sortAndTrim(flows, FlowSort::Errors, 0);
    CHECK(clients(flows) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("sortAndTrim keeps the top N; 0 or more than there are keeps all")
{
    std::vector<shhim::v1::Flow> flows;
    for (int i = 0; i < 10; ++i)
        flows.push_back(flowNamed("c" + std::to_string(i), 100 * i, 1, 0, 0));

    auto top3 = flows;
    sortAndTrim(top3, FlowSort::Bytes, 3);
    CHECK(clients(top3) == std::vector<std::string>{"c9", "c8", "c7"});

    auto all = flows;
    sortAndTrim(all, FlowSort::Bytes, 0);
    CHECK(all.size() == 10);
    CHECK(all.front().client().address() == "c9");
    CHECK(all.back().client().address() == "c0");

    auto more = flows;
    sortAndTrim(more, FlowSort::Bytes, 50);
    CHECK(more.size() == 10);

    std::vector<shhim::v1::Flow> none;
    sortAndTrim(none, FlowSort::Latency, 5);
    CHECK(none.empty());
}

TEST_CASE("sortAndTrim breaks ties the same way whatever the input order")
{
    std::vector<shhim::v1::Flow> flows;
    for (const char* name : {"198.18.1.3", "198.18.1.1", "198.18.1.2", "198.18.1.4"})
        flows.push_back(flowNamed(name, 100, 1, 0.01, 0));
    std::sort(flows.begin(), flows.end(),
              [](const auto& x, const auto& y) { return x.client().address() < y.client().address(); });
    std::vector<std::string> first;
    do {
        auto copy = flows;
        sortAndTrim(copy, FlowSort::Latency, 2);
        if (first.empty())
            first = clients(copy);
        CHECK(clients(copy) == first);
    } while (std::next_permutation(flows.begin(), flows.end(), [](const auto& x, const auto& y) {
        return x.client().address() < y.client().address();
    }));
    CHECK(first == std::vector<std::string>{"198.18.1.1", "198.18.1.2"});
}

TEST_CASE("rates between two snapshots")
{
    shhim_backend previous{}, current{};
    previous.first_seen_ns = current.first_seen_ns = 42;
    previous.requests = 100;
    current.requests = 150;
    previous.http_status[SHHIM_HTTP_5XX] = 1;
    current.http_status[SHHIM_HTTP_5XX] = 3;
    current.refused = 1;
    current.mllp_acks[SHHIM_MLLP_AE] = 1;
    // Not failures:
    current.http_status[SHHIM_HTTP_2XX] = 40;
    current.http_status[SHHIM_HTTP_4XX] = 5;
    current.mllp_acks[SHHIM_MLLP_AA] = 7;
    current.mllp_acks[SHHIM_MLLP_CA] = 2;

    const auto r = rates(previous, current, 2.0);
    CHECK(r.requests_per_second == doctest::Approx(25.0));
    CHECK(r.errors_per_second == doctest::Approx(2.0));  // (2 + 1 + 1) / 2 s
}

TEST_CASE("each failure kind counts towards the error rate")
{
    struct Kind {
        const char* name;
        __u64 shhim_backend::*counter;
    };
    const Kind kinds[] = {{"refused", &shhim_backend::refused},
                          {"syn_timeouts", &shhim_backend::syn_timeouts},
                          {"resets", &shhim_backend::resets},
                          {"icmp_errors", &shhim_backend::icmp_errors}};
    for (const auto& kind : kinds) {
        CAPTURE(kind.name);
        shhim_backend previous{}, current{};
        current.*kind.counter = 3;
        CHECK(backendErrorCount(current) == 3);
        CHECK(rates(previous, current, 1.0).errors_per_second == doctest::Approx(3.0));
    }
    for (int ack : {SHHIM_MLLP_AE, SHHIM_MLLP_AR, SHHIM_MLLP_CE, SHHIM_MLLP_CR}) {
        CAPTURE(ack);
        shhim_backend current{};
        current.mllp_acks[ack] = 1;
        CHECK(backendErrorCount(current) == 1);
    }
    for (int ack : {SHHIM_MLLP_AA, SHHIM_MLLP_CA}) {
        shhim_backend current{};
        current.mllp_acks[ack] = 1;
        CHECK(backendErrorCount(current) == 0);
    }
    shhim_backend http{};
    http.http_status[SHHIM_HTTP_5XX] = 2;
    http.http_status[SHHIM_HTTP_4XX] = 9;
    CHECK(backendErrorCount(http) == 2);
}

TEST_CASE("rates never go negative when a counter restarts")
{
    shhim_backend previous{}, current{};
    previous.first_seen_ns = current.first_seen_ns = 42;
    previous.requests = 1000;
    previous.resets = 50;
    current.requests = 10;  // entry started again from zero
    current.resets = 2;

    const auto r = rates(previous, current, 1.0);
    CHECK(r.requests_per_second >= 0.0);
    CHECK(r.errors_per_second >= 0.0);
    CHECK(r.requests_per_second == doctest::Approx(10.0));  // what the new entry counted
    CHECK(r.errors_per_second == doctest::Approx(2.0));
}

TEST_CASE("rates: an entry recreated in between counts from zero even if it grew past the old values")
{
    shhim_backend previous{}, current{};
    previous.first_seen_ns = 42;
    previous.requests = 5;
    current.first_seen_ns = 99;  // created again after `previous` was read
    current.requests = 8;
    CHECK(rates(previous, current, 1.0).requests_per_second == doctest::Approx(8.0));
}

TEST_CASE("rates over a zero or negative window are zero")
{
    shhim_backend previous{}, current{};
    current.requests = 10;
    current.refused = 1;
    for (double seconds : {0.0, -1.0}) {
        const auto r = rates(previous, current, seconds);
        CHECK(r.requests_per_second == 0.0);
        CHECK(r.errors_per_second == 0.0);
    }
}

TEST_CASE("every counter id has a distinct name")
{
    std::set<std::string_view> names;
    for (std::uint32_t id = 0; id < SHHIM_CTR_MAX; ++id) {
        CAPTURE(id);
        const auto name = counterName(id);
        CHECK_FALSE(name.empty());
        CHECK(name != "unknown");
        CHECK(name.starts_with("perr_") == isParseErrorCounter(id));
        names.insert(name);
    }
    CHECK(names.size() == SHHIM_CTR_MAX);
    CHECK(counterName(SHHIM_CTR_EVENTS_LOST) == "events_lost");
    CHECK(counterName(SHHIM_CTR_XDP_PACKETS) == "xdp_packets");
    CHECK(counterName(SHHIM_CTR_PERR_ETH_TRUNC) == "perr_eth_trunc");
    CHECK(counterName(SHHIM_CTR_PERR_IPV4_TRUNC) == "perr_ipv4_trunc");
    CHECK(counterName(SHHIM_CTR_PERR_ICMP_INNER_TRUNC) == "perr_icmp_inner_trunc");
    CHECK(counterName(SHHIM_CTR_MAX) == "unknown");
}
