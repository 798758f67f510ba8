#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include "cli/printers.h"

using namespace shhim::cli;

namespace {

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

// The line of `text` that contains `needle`, or "" when none does.
std::string lineWith(const std::string& text, const std::string& needle)
{
    for (const auto& line : lines(text))
        if (line.find(needle) != std::string::npos)
            return line;
    return {};
}

void setEndpoint(shhim::v1::Endpoint* e, const std::string& address, std::uint32_t port)
{
    e->set_address(address);
    e->set_port(port);
}

shhim::v1::Backend httpBackend()
{
    shhim::v1::Backend b;
    setEndpoint(b.mutable_endpoint(), "198.18.0.10", 8080);
    b.set_protocol("tcp");
    b.set_requests(100);
    b.set_responses(100);
    b.set_conn_attempts(20);
    b.set_refused(1);
    b.mutable_http()->set_status_2xx(95);
    b.mutable_http()->set_status_5xx(5);
    b.set_request_rate_per_second(12.345);
    b.set_error_rate_per_second(0.25);
    b.mutable_response()->set_count(100);
    b.mutable_response()->set_p50_seconds(0.0409);
    b.mutable_response()->set_p99_seconds(0.2);
    b.set_srtt_mean_seconds(0.000087);
    b.set_retransmits(3);
    return b;
}

}  // namespace

TEST_CASE("human units")
{
    CHECK(formatDuration(0.0409) == "40.9 ms");
    CHECK(formatDuration(0.000087) == "0.087 ms");
    CHECK(formatDuration(2.5) == "2500.0 ms");
    CHECK(formatDuration(12.34) == "12.3 s");
    CHECK(formatDuration(0.0) == "-");
    CHECK(formatBytes(0) == "0 B");
    CHECK(formatBytes(1023) == "1023 B");
    CHECK(formatBytes(1536) == "1.5 KiB");
    CHECK(formatBytes(3ULL << 20) == "3.0 MiB");
    CHECK(formatBytes(5ULL << 30) == "5.0 GiB");
    CHECK(formatRate(12.345) == "12.3/s");
    CHECK(formatRate(0) == "0.0/s");
    CHECK(formatPercent(1234.0 / 65536.0) == "1.9%");
    CHECK(formatUptime(45) == "45s");
    CHECK(formatUptime(187) == "3m 07s");
    CHECK(formatUptime(7392) == "2h 03m 12s");
    CHECK(formatUptime(90061) == "1d 01h 01m");
    CHECK(formatUnixTimeUtc(1'700'000'000'123'000'000) == "2023-11-14T22:13:20.123Z");
    CHECK(formatUnixTimeUtc(0) == "-");
}

TEST_CASE("endpoints: IPv6 in brackets, no port for ICMP")
{
    shhim::v1::Endpoint e;
    setEndpoint(&e, "198.18.0.1", 80);
    CHECK(formatEndpoint(e) == "198.18.0.1:80");
    setEndpoint(&e, "2001:db8::1", 443);
    CHECK(formatEndpoint(e) == "[2001:db8::1]:443");
    setEndpoint(&e, "198.18.0.1", 0);
    CHECK(formatEndpoint(e) == "198.18.0.1");
}

TEST_CASE("table columns line up, numbers right-aligned, no trailing spaces")
{
    Table table({{"NAME"}, {"COUNT", Table::Align::Right}, {"NOTE"}});
    table.addRow({"a", "1", "x"});
    table.addRow({"longer-name", "12345678", ""});
    const auto out = lines(table.render());
    REQUIRE(out.size() == 3);
    CHECK(out[0] == "NAME            COUNT  NOTE");
    CHECK(out[1] == "a                   1  x");
    CHECK(out[2] == "longer-name  12345678");
    CHECK_THROWS_AS(table.addRow({"too", "few"}), std::logic_error);
}

TEST_CASE("status table")
{
    shhim::v1::Status s;
    s.set_version("0.1.0");
    s.set_build_id("abc123");
    s.set_uptime_seconds(7392);
    s.set_reused_pinned_state(true);
    s.set_policy_file("policy/demo.yaml");
    auto* xdp = s.add_attachments();
    xdp->set_hook("xdp");
    xdp->set_target("veth-gw0");
    xdp->set_program("shhim_xdp_ingress");
    xdp->set_program_id(42);
    xdp->set_mode("native");
    auto* sockops = s.add_attachments();
    sockops->set_hook("sockops");
    sockops->set_target("/sys/fs/cgroup/unified/shhim");
    sockops->set_program("shhim_sockops");
    sockops->set_program_id(44);
    auto* flows = s.add_maps();
    flows->set_name("shhim_flows");
    flows->set_entries(1234);
    flows->set_max_entries(65536);
    s.set_events_received(17);
    s.set_events_lost(2);
    s.set_parse_errors(5);
    auto* lost = s.add_counters();
    lost->set_name("events_lost");
    lost->set_value(2);
    auto* trunc = s.add_counters();
    trunc->set_name("perr_ipv4_trunc");
    trunc->set_value(5);
    auto* quiet = s.add_counters();
    quiet->set_name("perr_udp_bad_len");
    quiet->set_value(0);

    const auto text = formatStatus(s);
    CHECK(text.find("shhimd 0.1.0 (build abc123), up 2h 03m 12s") != std::string::npos);
    CHECK(text.find("reusing pinned state") != std::string::npos);
    CHECK(text.find("policy/demo.yaml") != std::string::npos);
    CHECK(lineWith(text, "veth-gw0").find("shhim_xdp_ingress") != std::string::npos);
    CHECK(lineWith(text, "veth-gw0").find("native") != std::string::npos);
    CHECK(lineWith(text, "/sys/fs/cgroup/unified/shhim").find("sockops") != std::string::npos);
    const auto map_line = lineWith(text, "shhim_flows");
    CHECK(map_line.find("1234") != std::string::npos);
    CHECK(map_line.find("65536") != std::string::npos);
    CHECK(map_line.find("1.9%") != std::string::npos);
    CHECK(text.find("Events: 17 received, 2 lost") != std::string::npos);
    CHECK(text.find("Parse errors: 5") != std::string::npos);
    CHECK(lineWith(text, "events_lost").find("2") != std::string::npos);
    CHECK(lineWith(text, "ipv4_trunc").find("5") != std::string::npos);
    CHECK(lineWith(text, "udp_bad_len").empty());  // zero reasons stay out of the way
}

TEST_CASE("status table of an agent with nothing attached still reads")
{
    const auto text = formatStatus(shhim::v1::Status{});
    CHECK(text.find("Attached programs\n  none") != std::string::npos);
    CHECK(text.find("Events: 0 received, 0 lost") != std::string::npos);
}

TEST_CASE("backends table: rates, errors by kind with shares, latency in ms")
{
    shhim::v1::BackendList list;
    *list.add_backends() = httpBackend();
    auto* mllp = list.add_backends();
    setEndpoint(mllp->mutable_endpoint(), "2001:db8::10", 2575);
    mllp->set_protocol("tcp");
    mllp->mutable_mllp()->set_aa(8);
    mllp->mutable_mllp()->set_ae(1);
    mllp->mutable_mllp()->set_ar(1);

    const auto text = formatBackends(list);
    const auto header = lines(text).at(0);
    for (const char* column : {"BACKEND", "REQ/S", "ERR/S", "HTTP 5XX", "MLLP NACK", "REFUSED", "SYN TMO",
                               "RESETS", "ICMP", "P50", "P99", "RTT", "RETX"})
        CHECK(header.find(column) != std::string::npos);

    const auto http = lineWith(text, "198.18.0.10:8080");
    CHECK(http.find("12.3/s") != std::string::npos);
    CHECK(http.find("0.2/s") != std::string::npos);  // 0.25 rounds to one decimal
    CHECK(http.find("5 (5.0%)") != std::string::npos);
    CHECK(http.find("1 (5.0%)") != std::string::npos);  // refused 1 of 20 attempts
    CHECK(http.find("40.9 ms") != std::string::npos);
    CHECK(http.find("200.0 ms") != std::string::npos);
    CHECK(http.find("0.087 ms") != std::string::npos);

    const auto v6 = lineWith(text, "[2001:db8::10]:2575");
    CHECK(v6.find("2 (20.0%)") != std::string::npos);  // AE + AR of 10 acks
    // The MLLP backend has no HTTP column value, the HTTP one no MLLP value.
    const auto nack_column_end = header.find("MLLP NACK") + std::string("MLLP NACK").size();
    CHECK(http.substr(0, nack_column_end).ends_with(" -"));
    const auto fivexx_column_end = header.find("HTTP 5XX") + std::string("HTTP 5XX").size();
    CHECK(v6.substr(0, fivexx_column_end).ends_with(" -"));
    CHECK(text.find("2 backends") != std::string::npos);

    // Columns line up: every row is as long as the header up to its last column start.
    const auto p50_column = header.find("P50");
    CHECK(http.substr(0, p50_column).size() == v6.substr(0, p50_column).size());
}

TEST_CASE("flows table")
{
    shhim::v1::FlowList list;
    list.set_total(10);
    auto* http = list.add_flows();
    setEndpoint(http->mutable_client(), "198.18.1.5", 40000);
    setEndpoint(http->mutable_server(), "198.18.0.10", 80);
    http->set_protocol("tcp");
    http->set_tcp_state("established");
    http->set_app_protocol("http");
    http->set_packets_to_server(6);
    http->set_packets_to_client(4);
    http->set_bytes_to_server(1536);
    http->set_bytes_to_client(3 << 20);
    http->set_last_status(503);
    http->set_last_response_seconds(0.0409);
    auto* mllp = list.add_flows();
    setEndpoint(mllp->mutable_client(), "198.18.1.6", 50000);
    setEndpoint(mllp->mutable_server(), "198.18.0.11", 2575);
    mllp->set_protocol("tcp");
    mllp->set_app_protocol("mllp");
    mllp->set_last_mllp_ack("AE");
    mllp->set_role_guessed(true);

    const auto text = formatFlows(list);
    const auto row = lineWith(text, "198.18.1.5:40000");
    CHECK(row.find("198.18.0.10:80") != std::string::npos);
    CHECK(row.find("established") != std::string::npos);
    CHECK(row.find("1.5 KiB / 3.0 MiB") != std::string::npos);
    CHECK(row.find(" 10 ") != std::string::npos);  // packets, both directions
    CHECK(row.find("503") != std::string::npos);
    CHECK(row.find("40.9 ms") != std::string::npos);
    const auto guessed = lineWith(text, "198.18.1.6:50000*");
    CHECK(guessed.find("AE") != std::string::npos);
    CHECK(text.find("showing 2 of 10 flows") != std::string::npos);
    CHECK(text.find("roles guessed") != std::string::npos);
}

TEST_CASE("events table is oldest first with readable details")
{
    shhim::v1::EventList list;
    auto* late = list.add_events();
    late->set_time_unix_ns(1'700'000'001'000'000'000);
    late->set_kind("http_5xx");
    late->set_detail_text("503");
    late->set_protocol("tcp");
    setEndpoint(late->mutable_client(), "198.18.1.5", 40000);
    setEndpoint(late->mutable_server(), "198.18.0.10", 80);
    late->set_hook("xdp");
    auto* early = list.add_events();
    early->set_time_unix_ns(1'700'000'000'000'000'000);
    early->set_kind("refused");
    early->set_protocol("tcp");
    setEndpoint(early->mutable_client(), "198.18.1.5", 40001);
    setEndpoint(early->mutable_server(), "198.18.0.10", 81);

    const auto out = lines(formatEvents(list));
    REQUIRE(out.size() == 4);
    CHECK(out[1].find("refused") != std::string::npos);
    CHECK(out[1].find("2023-11-14T22:13:20.000Z") != std::string::npos);
    CHECK(out[2].find("http_5xx") != std::string::npos);
    CHECK(out[2].find("503") != std::string::npos);
    CHECK(out[3] == "2 events, oldest first");
}

TEST_CASE("JSON is the protobuf mapping: proto field names, zeros present, round-trips")
{
    shhim::v1::BackendList list;
    *list.add_backends() = httpBackend();
    const auto json = toJson(list);
    CHECK(json.back() == '\n');
    CHECK(json.find("\"request_rate_per_second\"") != std::string::npos);  // not requestRatePerSecond
    CHECK(json.find("\"syn_timeouts\": \"0\"") != std::string::npos);     // zero counter present (uint64 as string)
    CHECK(json.find("\"status_5xx\": \"5\"") != std::string::npos);

    shhim::v1::BackendList parsed;
    REQUIRE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
    CHECK(google::protobuf::util::MessageDifferencer::Equals(list, parsed));

    const auto empty_status = toJson(shhim::v1::Status{});
    CHECK(empty_status.find("\"events_lost\": \"0\"") != std::string::npos);
    CHECK(empty_status.find("\"reused_pinned_state\": false") != std::string::npos);
}

TEST_CASE("explain: score, parts, drivers, and whether it acts")
{
    shhim::v1::AnomalyExplanation e;
    e.set_service("fhir");
    e.set_backend("198.18.0.10:8080");
    e.set_score(2.5);
    e.set_sensitivity(1.0);
    e.set_mahalanobis_score(2.5);
    e.set_probability(0.99999);
    auto* driver = e.add_drivers();
    driver->set_text("p99 latency 480 ms vs baseline 35 ms, x13.7");
    e.set_rate("request rate 44/s vs baseline 10/s, x4.4 (not scored)");
    e.set_baseline_version("ewma-mahalanobis/1");
    e.set_baseline_samples(600);
    const std::string text = shhim::cli::formatExplanation(e);
    CHECK(text.find("fhir 198.18.0.10:8080: score 2.50 (degraded") == 0);
    CHECK(text.find("  p99 latency 480 ms vs baseline 35 ms, x13.7\n") != std::string::npos);
    CHECK(text.find("(not scored)") != std::string::npos);
    CHECK(text.find("shadow mode") != std::string::npos);
    e.set_acting(true);
    e.set_score(0.2);
    const std::string acting = shhim::cli::formatExplanation(e);
    CHECK(acting.find("score 0.20 (normal") != std::string::npos);
    CHECK(acting.find("feeds the decision engine") != std::string::npos);
}
