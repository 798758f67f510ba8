// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// Exchanges through both hooks as a host sees them: what the client sends
// leaves through TC egress, what the server answers arrives through XDP
// ingress. Checks connection outcomes, latencies, application status and
// the failure events, for IPv4 and IPv6.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "bpf_harness.hpp"
#include "golden_frames.hpp"
#include "test_support.hpp"

using namespace shhim::bpftest;

namespace {

constexpr std::uint64_t kMs = 1000 * 1000;

// One conversation between a client (this host) and a server.
class Conversation {
 public:
  Conversation(Datapath& dp, int family, std::uint16_t client_port, std::uint16_t server_port,
               std::uint8_t proto = kProtoTcp)
      : dp_(dp),
        client_(family == 4 ? client4() : client6()),
        server_(family == 4 ? server4() : server6()),
        cport_(client_port),
        sport_(server_port),
        proto_(proto) {}

  // Layers every frame of this conversation carries (VLAN tags, IP options, extension headers).
  EthSpec eth;
  Bytes v4_options;
  std::vector<Ipv6Ext> v6_ext;

  void to_server(std::uint8_t flags, Bytes payload = {}) { send(dp_.run_tc(frame(true, flags, std::move(payload)))); }
  void to_client(std::uint8_t flags, Bytes payload = {}) { send(dp_.run_xdp(frame(false, flags, std::move(payload)))); }

  void handshake() {
    to_server(kTcpSyn);
    to_client(kTcpSyn | kTcpAck);
    to_server(kTcpAck);
  }

  Bytes frame(bool from_client, std::uint8_t flags, Bytes payload) const {
    IpSpec ip;
    ip.src = from_client ? client_ : server_;
    ip.dst = from_client ? server_ : client_;
    ip.v4_options = v4_options;
    ip.v6_ext = v6_ext;
    const std::uint16_t sp = from_client ? cport_ : sport_, dp = from_client ? sport_ : cport_;
    if (proto_ == kProtoUdp) {
      UdpSpec u;
      u.sport = sp;
      u.dport = dp;
      u.payload = std::move(payload);
      return build_frame(eth, ip, u);
    }
    TcpSpec t;
    t.sport = sp;
    t.dport = dp;
    t.flags = flags;
    t.payload = std::move(payload);
    return build_frame(eth, ip, t);
  }

  shhim_endpoint client_ep() const { return make_endpoint(client_, cport_, proto_); }
  shhim_endpoint server_ep() const { return make_endpoint(server_, sport_, proto_); }
  const IpAddr& client_addr() const { return client_; }
  const IpAddr& server_addr() const { return server_; }
  CanonicalKey key() const { return canonical_key(client_ep(), server_ep()); }

  shhim_flow flow() const {
    const auto f = dp_.flow(key().key);
    REQUIRE_MESSAGE(f.has_value(), "no flow entry for the conversation");
    return *f;
  }
  std::unique_ptr<shhim_backend> backend() const {
    auto b = dp_.backend(server_ep());
    REQUIRE_MESSAGE(b != nullptr, "no backend entry for the server");
    return b;
  }

 private:
  static void send(const TestRun& r) {
    REQUIRE(r.err == 0);
    CHECK((r.retval == kXdpPass || r.retval == kTcActOk));
  }

  Datapath& dp_;
  IpAddr client_, server_;
  std::uint16_t cport_, sport_;
  std::uint8_t proto_;
};

void check_event_endpoints(const shhim_event& ev, const Conversation& c) {
  CHECK(same_endpoint(ev.client, c.client_ep()));
  CHECK(same_endpoint(ev.server, c.server_ep()));
  CHECK(ev.ts_ns > 0);
}

Bytes http_request(const std::string& path) {
  return to_bytes("GET " + path + " HTTP/1.1\r\nHost: ehr.example\r\nAccept: application/fhir+json\r\n\r\n");
}

Bytes http_response(int status, const std::string& reason) {
  return to_bytes("HTTP/1.1 " + std::to_string(status) + " " + reason +
                  "\r\nContent-Type: application/fhir+json\r\nContent-Length: 2\r\n\r\n{}");
}

// An HL7 v2 message framed by MLLP; msh_pad makes the MSH segment longer.
Bytes mllp(const std::string& segments) { return to_bytes("\x0b" + segments + "\x1c\r"); }
Bytes mllp_ack(const std::string& code, std::size_t msh_pad = 0) {
  return mllp("MSH|^~\\&|EHR|HOSP|LAB|HOSP|20240101120001||ACK^R01|ACK0001|P|2.5" + std::string(msh_pad, 'x') +
              "\rMSA|" + code + "|MSG0001\r");
}
Bytes mllp_result() {
  return mllp("MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||ORU^R01|MSG0001|P|2.5\rPID|1||12345\r"
              "OBX|1|NM|2345-7^Glucose||95|mg/dL\r");
}

void handshake_latency(int family) {
  Datapath dp;
  Conversation c(dp, family, 45100, 80);
  c.to_server(kTcpSyn);
  {
    const shhim_flow f = c.flow();
    CHECK(f.tcp_state == SHHIM_TCP_SYN_SENT);
    CHECK(f.syn_ts_ns > 0);
    CHECK(c.backend()->conn_attempts == 1);
  }
  sleep_at_least_ns(2 * kMs);
  c.to_client(kTcpSyn | kTcpAck);
  c.to_server(kTcpAck);

  const shhim_flow f = c.flow();
  CHECK(f.tcp_state == SHHIM_TCP_ESTABLISHED);
  CHECK(f.syn_ts_ns == 0);
  CHECK(f.handshake_ns >= 2 * kMs);
  CHECK(f.syn == 1);
  CHECK(f.synack == 1);
  CHECK(f.packets[SHHIM_DIR_TO_SERVER] == 2);
  CHECK(f.packets[SHHIM_DIR_TO_CLIENT] == 1);
  CHECK((f.flags & SHHIM_FLOW_F_ROLE_GUESSED) == 0);
  CHECK(same_endpoint(client_of(c.key().key, f.client_is_b), c.client_ep()));
  CHECK(f.first_seen_ns > 0);
  CHECK(f.last_seen_ns >= f.first_seen_ns);
  CHECK(f.last_seen_ns <= monotonic_ns());

  const auto be = c.backend();
  CHECK(be->flows == 1);
  CHECK(be->conn_attempts == 1);
  CHECK(be->conn_established == 1);
  CHECK(be->handshake.count == 1);
  CHECK(be->handshake.sum_ns == f.handshake_ns);
  CHECK(be->handshake.buckets[shhim_hist_bucket(f.handshake_ns)] == 1);
  CHECK(be->refused == 0);
  CHECK(dp.drain_events().empty());
}

void refused_once(int family) {
  Datapath dp;
  Conversation c(dp, family, 45200, 2575);
  c.to_server(kTcpSyn);
  c.to_client(kTcpRst | kTcpAck);
  std::vector<shhim_event> events = dp.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == SHHIM_EV_REFUSED);
  CHECK(events[0].hook == SHHIM_HOOK_XDP_INGRESS);
  check_event_endpoints(events[0], c);

  // A second RST for the same attempt is not a second refusal.
  c.to_client(kTcpRst | kTcpAck);
  CHECK(dp.drain_events().empty());
  const shhim_flow f = c.flow();
  CHECK(f.tcp_state == SHHIM_TCP_CLOSED);
  CHECK(f.rst == 2);
  CHECK(f.errors == 1);
  CHECK(c.backend()->refused == 1);
  CHECK(c.backend()->conn_established == 0);

  // The client tries again on the same 4-tuple: a new attempt, refused again.
  c.to_server(kTcpSyn);
  CHECK(c.flow().tcp_state == SHHIM_TCP_SYN_SENT);
  c.to_client(kTcpRst | kTcpAck);
  events = dp.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == SHHIM_EV_REFUSED);
  CHECK(c.backend()->conn_attempts == 2);
  CHECK(c.backend()->refused == 2);
}

void http_exchanges(int family) {
  Datapath dp;
  Conversation c(dp, family, 45300, 8080);
  c.handshake();
  c.to_server(kTcpAck | kTcpPsh, http_request("/fhir/Patient/42"));
  CHECK(c.flow().request_ts_ns > 0);
  sleep_at_least_ns(3 * kMs);
  c.to_client(kTcpAck | kTcpPsh, http_response(503, "Service Unavailable"));

  shhim_flow f = c.flow();
  CHECK(f.requests == 1);
  CHECK(f.responses == 1);
  CHECK(f.request_ts_ns == 0);
  CHECK(f.last_response_ns >= 3 * kMs);
  CHECK(f.max_response_ns == f.last_response_ns);
  CHECK(f.last_status == 503);
  CHECK(f.app_proto == SHHIM_APP_HTTP);
  CHECK(f.errors == 1);
  auto be = c.backend();
  CHECK(be->requests == 1);
  CHECK(be->responses == 1);
  CHECK(be->http_status[SHHIM_HTTP_5XX] == 1);
  CHECK(be->response.count == 1);
  CHECK(be->response.sum_ns >= 3 * kMs);
  CHECK(be->response.buckets[shhim_hist_bucket(f.last_response_ns)] == 1);
  std::vector<shhim_event> events = dp.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == SHHIM_EV_HTTP_5XX);
  CHECK(events[0].detail == 503);
  check_event_endpoints(events[0], c);

  // More of the same response, and pure ACKs, change nothing at the app level.
  c.to_client(kTcpAck, to_bytes("more body bytes"));
  c.to_server(kTcpAck);
  c.to_client(kTcpAck);
  CHECK(c.flow().responses == 1);
  CHECK(c.flow().requests == 1);

  // Keep-alive: two more exchanges, 200 and 404, no further events.
  c.to_server(kTcpAck | kTcpPsh, http_request("/fhir/Observation?patient=42"));
  c.to_server(kTcpAck | kTcpPsh, to_bytes("second segment of the same request"));
  c.to_client(kTcpAck | kTcpPsh, http_response(200, "OK"));
  c.to_server(kTcpAck | kTcpPsh, http_request("/fhir/Patient/404"));
  c.to_client(kTcpAck | kTcpPsh, http_response(404, "Not Found"));
  f = c.flow();
  CHECK(f.requests == 3);
  CHECK(f.responses == 3);
  CHECK(f.last_status == 404);
  be = c.backend();
  CHECK(be->requests == 3);
  CHECK(be->responses == 3);
  CHECK(be->http_status[SHHIM_HTTP_2XX] == 1);
  CHECK(be->http_status[SHHIM_HTTP_4XX] == 1);
  CHECK(be->http_status[SHHIM_HTTP_5XX] == 1);
  CHECK(be->response.count == 3);
  CHECK(be->app_unparsed == 0);
  CHECK(dp.drain_events().empty());

  // A response that is not HTTP is counted as unparsed.
  c.to_server(kTcpAck | kTcpPsh, http_request("/"));
  c.to_client(kTcpAck | kTcpPsh, to_bytes("SSH-2.0-not-http\r\n"));
  CHECK(c.backend()->app_unparsed == 1);
}

void mllp_acks(int family) {
  Datapath dp;
  Conversation c(dp, family, 45400, 2575);
  c.handshake();
  struct Case {
    std::string code;
    std::size_t msh_pad;
    std::uint32_t ack;
    bool nack;
  };
  // Padding moves MSA past the first and second 64-byte peek chunks.
  const Case cases[] = {
      {"AA", 0, SHHIM_MLLP_AA, false},  {"AE", 0, SHHIM_MLLP_AE, true},   {"AR", 70, SHHIM_MLLP_AR, true},
      {"CA", 130, SHHIM_MLLP_CA, false}, {"CE", 10, SHHIM_MLLP_CE, true}, {"CR", 150, SHHIM_MLLP_CR, true},
  };
  std::uint64_t nacks = 0;
  for (const Case& k : cases) {
    INFO("MSA-1 ", k.code, " after ", k.msh_pad, " bytes of padding");
    c.to_server(kTcpAck | kTcpPsh, mllp_result());
    c.to_client(kTcpAck | kTcpPsh, mllp_ack(k.code, k.msh_pad));
    const shhim_flow f = c.flow();
    CHECK(f.app_proto == SHHIM_APP_MLLP);
    CHECK(f.last_status == ((k.code[0] << 8) | k.code[1]));
    CHECK(c.backend()->mllp_acks[k.ack] == 1);
    const std::vector<shhim_event> events = dp.drain_events();
    if (k.nack) {
      ++nacks;
      REQUIRE(events.size() == 1);
      CHECK(events[0].kind == SHHIM_EV_MLLP_NACK);
      CHECK(events[0].detail == k.ack);
      check_event_endpoints(events[0], c);
    } else {
      CHECK(events.empty());
    }
  }
  CHECK(c.flow().errors == nacks);
  CHECK(c.backend()->responses == std::size(cases));
  CHECK(c.backend()->app_unparsed == 0);

  // MSA beyond the peeked prefix: a response, but unparsed.
  c.to_server(kTcpAck | kTcpPsh, mllp_result());
  c.to_client(kTcpAck | kTcpPsh, mllp_ack("AE", 400));
  CHECK(c.backend()->app_unparsed == 1);
  CHECK(dp.drain_events().empty());
}

void icmp_unreachable_attribution(int family) {
  Datapath dp;
  Conversation c(dp, family, 45500, 161, kProtoUdp);
  c.to_server(0, to_bytes("snmp get-request"));
  // The server's host answers with port unreachable, quoting the datagram.
  IpSpec quoted;
  quoted.src = c.client_addr();
  quoted.dst = c.server_addr();
  UdpSpec u;
  u.sport = 45500;
  u.dport = 161;
  u.payload = to_bytes("snmp get-request");
  const std::uint8_t type = family == 4 ? 3 : 1, code = family == 4 ? 3 : 4;
  const Bytes icmp = icmp_error_frame(c.server_addr(), c.client_addr(), type, code, build_ip(quoted, u));
  const Counters before = dp.counters();
  REQUIRE(dp.run_xdp(icmp).err == 0);
  const Counters after = dp.counters();
  CHECK(delta(before, after, SHHIM_CTR_FLOWS_CREATED) == 0);

  const shhim_flow f = c.flow();
  CHECK(f.icmp_errors == 1);
  CHECK(f.errors == 1);
  CHECK(f.packets[SHHIM_DIR_TO_SERVER] == 1);
  CHECK(f.packets[SHHIM_DIR_TO_CLIENT] == 0);
  CHECK(c.backend()->icmp_errors == 1);
  const std::vector<shhim_event> events = dp.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == SHHIM_EV_ICMP_ERROR);
  CHECK(events[0].detail == ((static_cast<std::uint32_t>(type) << 8) | code));
  check_event_endpoints(events[0], c);
}

void syn_timeout(int family) {
  Datapath dp;
  shhim_config cfg{};
  cfg.syn_timeout_ns = 20 * kMs;
  dp.set_config(cfg);
  Conversation c(dp, family, 45600, 443);
  c.to_server(kTcpSyn);
  c.to_server(kTcpSyn);  // retransmitted early: not a timeout yet
  CHECK(dp.drain_events().empty());
  sleep_at_least_ns(25 * kMs);
  c.to_server(kTcpSyn);
  std::vector<shhim_event> events = dp.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == SHHIM_EV_SYN_TIMEOUT);
  CHECK(events[0].hook == SHHIM_HOOK_TC_EGRESS);
  check_event_endpoints(events[0], c);
  c.to_server(kTcpSyn);  // reported once per attempt
  CHECK(dp.drain_events().empty());
  CHECK(c.backend()->syn_timeouts == 1);
  CHECK(c.backend()->conn_attempts == 1);
  CHECK(c.flow().syn == 4);
  CHECK((c.flow().flags & SHHIM_FLOW_F_SYN_TIMEOUT_REPORTED) != 0);
  // The late answer still completes the handshake, measured from the first SYN.
  c.to_client(kTcpSyn | kTcpAck);
  CHECK(c.flow().handshake_ns >= 25 * kMs);
  CHECK(c.backend()->conn_established == 1);
}

void reset_mid_connection(int family) {
  Datapath dp;
  Conversation c(dp, family, 45700, 8080);
  c.handshake();
  c.to_server(kTcpAck | kTcpPsh, http_request("/fhir/metadata"));
  c.to_client(kTcpRst | kTcpAck);
  const std::vector<shhim_event> events = dp.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == SHHIM_EV_RESET);
  check_event_endpoints(events[0], c);
  CHECK(c.backend()->resets == 1);
  CHECK(c.backend()->refused == 0);
  CHECK(c.flow().tcp_state == SHHIM_TCP_CLOSED);
  CHECK(c.flow().request_ts_ns == 0);

  // A client's RST is no failure of the server.
  Conversation d(dp, family, 45701, 8080);
  d.handshake();
  d.to_server(kTcpRst | kTcpAck);
  CHECK(dp.drain_events().empty());
  CHECK(d.backend()->resets == 1);  // the same backend: still only the first reset
}

}  // namespace

TEST_CASE("handshake: SYN via TC, SYN-ACK via XDP gives one handshake sample") {
  SUBCASE("ipv4") { handshake_latency(4); }
  SUBCASE("ipv6") { handshake_latency(6); }
}

TEST_CASE("last_seen follows the clock on the established-flow fast path") {
  Datapath dp;
  Conversation c(dp, 4, 45150, 80);
  c.handshake();
  c.to_server(kTcpAck);
  const std::uint64_t before = c.flow().last_seen_ns;
  sleep_at_least_ns(30 * kMs);
  const std::uint64_t after_sleep = monotonic_ns();
  c.to_server(kTcpAck);  // counted inline: no flags, no payload
  c.to_client(kTcpAck);
  const shhim_flow f = c.flow();
  CHECK(f.last_seen_ns > before);
  // Tick resolution: behind real time by at most one tick (10 ms at HZ=100).
  CHECK(f.last_seen_ns + 10 * kMs >= after_sleep);
  CHECK(f.last_seen_ns <= monotonic_ns());
  CHECK(f.packets[SHHIM_DIR_TO_SERVER] == 4);
  CHECK(f.packets[SHHIM_DIR_TO_CLIENT] == 2);
}

TEST_CASE("refused: SYN then RST from the server is one REFUSED event per attempt") {
  SUBCASE("ipv4") { refused_once(4); }
  SUBCASE("ipv6") { refused_once(6); }
}

TEST_CASE("SYN timeout: a SYN retransmitted after syn_timeout_ns is one SYN_TIMEOUT event") {
  SUBCASE("ipv4") { syn_timeout(4); }
  SUBCASE("ipv6") { syn_timeout(6); }
}

TEST_CASE("SYN timeout: config 0 means the default of one second") {
  Datapath dp;
  dp.set_config(shhim_config{});
  Conversation c(dp, 4, 45650, 443);
  c.to_server(kTcpSyn);
  sleep_at_least_ns(25 * kMs);
  c.to_server(kTcpSyn);
  CHECK(dp.drain_events().empty());
  CHECK(c.backend()->syn_timeouts == 0);
}

TEST_CASE("reset: RST from the server on an established connection is one RESET event") {
  SUBCASE("ipv4") { reset_mid_connection(4); }
  SUBCASE("ipv6") { reset_mid_connection(6); }
}

TEST_CASE("HTTP: request then 503 gives the 5xx class, the latency and an HTTP_5XX event") {
  SUBCASE("ipv4") { http_exchanges(4); }
  SUBCASE("ipv6") { http_exchanges(6); }
}

TEST_CASE("MLLP: MSA-1 codes counted; AE, AR, CE, CR are MLLP_NACK events") {
  SUBCASE("ipv4") { mllp_acks(4); }
  SUBCASE("ipv6") { mllp_acks(6); }
}

TEST_CASE("ICMP port unreachable quoting a UDP flow is attributed to that flow") {
  SUBCASE("ipv4") { icmp_unreachable_attribution(4); }
  SUBCASE("ipv6") { icmp_unreachable_attribution(6); }
}

TEST_CASE("ICMP time exceeded from a router quoting a TCP SYN is attributed to that flow") {
  Datapath dp;
  Conversation c(dp, 4, 45800, 443);
  c.to_server(kTcpSyn);
  IpSpec quoted;
  quoted.src = c.client_addr();
  quoted.dst = c.server_addr();
  quoted.v4_options = {0x94, 0x04, 0, 0};
  TcpSpec syn;
  syn.sport = 45800;
  syn.dport = 443;
  syn.flags = kTcpSyn;
  REQUIRE(dp.run_xdp(icmp_error_frame(router4(), c.client_addr(), 11, 0, build_ip(quoted, syn))).err == 0);
  CHECK(c.flow().icmp_errors == 1);
  const auto events = dp.drain_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].detail == (11u << 8));
  check_event_endpoints(events[0], c);
}

TEST_CASE("the payload is found behind VLAN tags, IPv4 options and IPv6 extension headers") {
  Datapath dp;
  SUBCASE("802.1ad+802.1Q, IPv4 options") {
    Conversation c(dp, 4, 45900, 80);
    c.eth.vlans = {Vlan{kEth8021AD, 7}, Vlan{kEth8021Q, 70}};
    c.v4_options = Bytes(12, 0x01);
    c.handshake();
    c.to_server(kTcpAck | kTcpPsh, http_request("/"));
    c.to_client(kTcpAck | kTcpPsh, http_response(502, "Bad Gateway"));
    CHECK(c.flow().last_status == 502);
    CHECK(c.backend()->http_status[SHHIM_HTTP_5XX] == 1);
    CHECK(c.backend()->handshake.count == 1);
  }
  SUBCASE("802.1Q, IPv6 hop-by-hop, routing and destination options") {
    Conversation c(dp, 6, 45901, 2575);
    c.eth.vlans = {Vlan{kEth8021Q, 71}};
    c.v6_ext = {ext_hop_by_hop(1), ext_routing(), ext_dest_opts(0)};
    c.handshake();
    c.to_server(kTcpAck | kTcpPsh, mllp_result());
    c.to_client(kTcpAck | kTcpPsh, mllp_ack("AR", 20));
    CHECK(c.backend()->mllp_acks[SHHIM_MLLP_AR] == 1);
    CHECK(c.backend()->handshake.count == 1);
  }
  const auto events = dp.drain_events();
  REQUIRE(events.size() == 1);
}

TEST_CASE("ring buffer full: every event is either delivered or counted as lost") {
  Datapath dp;
  // The ring holds about 14,500 64-byte events; nobody consumes while we refuse 16,000 connects.
  constexpr int kAttempts = 16000;
  const Counters before = dp.counters();
  for (int i = 0; i < kAttempts; ++i) {
    const std::uint16_t port = static_cast<std::uint16_t>(20000 + i);
    REQUIRE(dp.run_tc(tcp_frame(client4(), port, server4(), 5432, kTcpSyn)).err == 0);
    REQUIRE(dp.run_xdp(tcp_frame(server4(), 5432, client4(), port, kTcpRst | kTcpAck)).err == 0);
  }
  const Counters after = dp.counters();
  const std::uint64_t sent = delta(before, after, SHHIM_CTR_EVENTS_SENT);
  const std::uint64_t lost = delta(before, after, SHHIM_CTR_EVENTS_LOST);
  CHECK(sent + lost == kAttempts);
  CHECK(lost > 0);
  CHECK(dp.drain_events().size() == sent);
  CHECK(dp.backend(make_endpoint(server4(), 5432, kProtoTcp))->refused == kAttempts);
  // Consumed: room again.
  REQUIRE(dp.run_tc(tcp_frame(client4(), 19999, server4(), 5432, kTcpSyn)).err == 0);
  REQUIRE(dp.run_xdp(tcp_frame(server4(), 5432, client4(), 19999, kTcpRst)).err == 0);
  CHECK(dp.drain_events().size() == 1);
}

// ---- sockops and the TCP tracepoints on a loopback connection ---------------

namespace {

// A child cgroup of the cgroup v2 hierarchy with this process moved into it
// for its lifetime; moved back and removed on destruction.
class CgroupScope {
 public:
  explicit CgroupScope(const std::string& root) {
    std::ifstream self("/proc/self/cgroup");
    std::string line;
    while (std::getline(self, line))
      if (line.rfind("0::", 0) == 0) original_ = root + line.substr(3);
    if (original_.empty()) throw std::runtime_error("no cgroup v2 entry in /proc/self/cgroup");
    path_ = root + "/shhim-test-" + std::to_string(::getpid());
    if (::mkdir(path_.c_str(), 0755) != 0) throw std::runtime_error("mkdir " + path_ + ": " + std::strerror(errno));
    fd_ = UniqueFd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY));
    move_self(path_);
  }
  ~CgroupScope() {
    try {
      move_self(original_);
    } catch (...) {
    }
    fd_ = UniqueFd();
    ::rmdir(path_.c_str());
  }
  int fd() const { return fd_.get(); }

 private:
  static void move_self(const std::string& dir) {
    std::ofstream procs(dir + "/cgroup.procs");
    procs << ::getpid() << std::flush;
    if (!procs) throw std::runtime_error("moving into " + dir);
  }
  std::string original_, path_;
  UniqueFd fd_;
};

std::uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

}  // namespace

TEST_CASE("sockops and tracepoints record RTT samples into existing flow and backend entries") {
  const std::string cgroup_root = "/sys/fs/cgroup/unified";
  struct stat st{};
  if (::stat((cgroup_root + "/cgroup.procs").c_str(), &st) != 0) {
    MESSAGE("no cgroup v2 at ", cgroup_root, ": skipped");
    return;
  }
  Datapath dp;
  CgroupScope cg(cgroup_root);
  REQUIRE(bpf_prog_attach(dp.prog_fd(Program::Sockops), cg.fd(), BPF_CGROUP_SOCK_OPS, 0) == 0);
  struct Detach {
    int prog, cgroup;
    ~Detach() { bpf_prog_detach2(prog, cgroup, BPF_CGROUP_SOCK_OPS); }
  } detach{dp.prog_fd(Program::Sockops), cg.fd()};
  TracepointLinks links = dp.attach_tcp_tracepoints();

  // Loopback only: a listener and a client bound to known ports.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM, 0));
  UniqueFd client(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in lo{};
  lo.sin_family = AF_INET;
  lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0);
  REQUIRE(::listen(listener.get(), 1) == 0);
  REQUIRE(::bind(client.get(), reinterpret_cast<sockaddr*>(&lo), sizeof(lo)) == 0);
  const std::uint16_t server_port = bound_port(listener.get()), client_port = bound_port(client.get());

  // The packet hooks are not attached to lo: create the entries they would have.
  const IpAddr loopback = IpAddr::parse("127.0.0.1");
  const shhim_endpoint cep = make_endpoint(loopback, client_port, kProtoTcp);
  const shhim_endpoint sep = make_endpoint(loopback, server_port, kProtoTcp);
  const CanonicalKey key = canonical_key(cep, sep);
  shhim_flow flow{};
  flow.client_is_b = key.sender_is_b ? 1 : 0;
  REQUIRE(bpf_map_update_elem(dp.map_fd(Map::Flows), &key.key, &flow, BPF_NOEXIST) == 0);
  auto backend = std::make_unique<shhim_backend>();
  REQUIRE(bpf_map_update_elem(dp.map_fd(Map::Backends), &sep, backend.get(), BPF_NOEXIST) == 0);

  const Counters before = dp.counters();
  sockaddr_in to = lo;
  to.sin_port = htons(server_port);
  REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0);
  UniqueFd served(::accept(listener.get(), nullptr, nullptr));
  REQUIRE(served.get() >= 0);

  // Ping-pong until RTT samples arrive (they come with ACKs), with a deadline.
  const std::uint64_t deadline = monotonic_ns() + 5000 * kMs;
  std::uint64_t samples = 0;
  char buf[64];
  while (monotonic_ns() < deadline) {
    REQUIRE(::send(client.get(), "ping", 4, 0) == 4);
    REQUIRE(::recv(served.get(), buf, sizeof(buf), 0) > 0);
    REQUIRE(::send(served.get(), "pong", 4, 0) == 4);
    REQUIRE(::recv(client.get(), buf, sizeof(buf), 0) > 0);
    samples = dp.backend(sep)->srtt_samples;
    if (samples >= 2) break;
  }
  CHECK(samples >= 2);
  client = UniqueFd();
  served = UniqueFd();
  const Counters after = dp.counters();
  CHECK(delta(before, after, SHHIM_CTR_SOCKOPS_CALLS) > 0);
  CHECK(delta(before, after, SHHIM_CTR_TP_STATE_CHANGES) > 0);
  const auto be = dp.backend(sep);
  CHECK(be->srtt_us_sum >= be->srtt_us_last);
  CHECK(dp.flow(key.key)->retransmits == 0);
}
