// Prometheus exposition: le buckets collapsed from the kernel histogram,
// names and labels as exported, and the text format's rules.
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/telemetry.h"
#include "test_support.h"

using namespace shhim::core;
using shhim::test::addSamples;
using shhim::test::endpointV4;
using shhim::test::endpointV6;

namespace {

constexpr std::uint64_t kUs = 1'000;
constexpr std::uint64_t kMs = 1'000'000;

std::size_t boundIndex(double seconds)
{
    for (std::size_t i = 0; i < kLatencyBounds.size(); ++i)
        if (kLatencyBounds[i].seconds == seconds)
            return i;
    FAIL("no bound " << seconds);
    return 0;
}

std::vector<std::string> lines(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

bool hasLine(const std::string& text, const std::string& line)
{
    for (const auto& l : lines(text))
        if (l == line)
            return true;
    return false;
}

// Metric name of a sample line: up to '{' or ' '.
std::string sampleName(const std::string& line) { return line.substr(0, line.find_first_of("{ ")); }

MetricsInput oneHttpBackend()
{
    MetricsInput in;
    in.version = "0.1.0";
    in.build_id = "00000000deadbeef";
    in.start_time_unix_seconds = 1'700'000'000.5;
    in.counters[SHHIM_CTR_XDP_PACKETS] = 1234;
    in.counters[SHHIM_CTR_EVENTS_LOST] = 2;
    in.counters[SHHIM_CTR_PERR_IPV4_TRUNC] = 3;
    in.events_by_kind[SHHIM_EV_REFUSED] = 4;
    in.maps = {{"shhim_flows", 10, 65536}, {"shhim_backends", 2, 1024}};
    in.attachments = {{"xdp", "veth0"}};
    in.interfaces = {{"veth0", 100, 90, 10000, 9000}};

    BackendMetrics b;
    b.endpoint = endpointV4({198, 18, 0, 10}, 8080);
    b.labels = {"fhir", "clinical"};
    b.backend.requests = 100;
    b.backend.responses = 98;
    b.backend.refused = 1;
    b.backend.resets = 1;
    b.backend.http_status[SHHIM_HTTP_2XX] = 83;
    b.backend.http_status[SHHIM_HTTP_5XX] = 15;
    b.backend.srtt_us_sum = 300;
    b.backend.srtt_samples = 3;
    addSamples(b.backend.response, 40 * kMs, 98);
    addSamples(b.backend.handshake, 30 * kUs, 50);
    in.backends.push_back(b);
    return in;
}

}  // namespace

TEST_CASE("collapsed histogram: 40 ms samples fall under le=0.05, not under le=0.025")
{
    auto hist = std::make_unique<shhim_hist>();
    addSamples(*hist, 40 * kMs, 7);
    const CollapsedHistogram c = collapseHistogram(*hist);
    CHECK(c.cumulative[boundIndex(0.025)] == 0);
    CHECK(c.cumulative[boundIndex(0.05)] == 7);
    CHECK(c.cumulative[boundIndex(10)] == 7);
    CHECK(c.count == 7);
    CHECK(c.sum_seconds == doctest::Approx(0.28));
}

TEST_CASE("collapsed histogram: a sample counts under a bound only when its whole kernel bucket does")
{
    // 900 us: its kernel bucket ends well below 1 ms.
    auto below = std::make_unique<shhim_hist>();
    addSamples(*below, 900 * kUs, 1);
    CHECK(collapseHistogram(*below).cumulative[boundIndex(0.001)] == 1);

    // Exactly 1 ms shares a kernel bucket (983040..1015807 ns) with values
    // above 1 ms: it is not claimed to be <= 1 ms, it is <= 2.5 ms.
    auto straddling = std::make_unique<shhim_hist>();
    addSamples(*straddling, 1 * kMs, 1);
    REQUIRE(shhim_hist_bucket_low(shhim_hist_bucket(1 * kMs) + 1) - 1 > 1 * kMs);
    CHECK(collapseHistogram(*straddling).cumulative[boundIndex(0.001)] == 0);
    CHECK(collapseHistogram(*straddling).cumulative[boundIndex(0.0025)] == 1);

    // The last kernel bucket also holds everything beyond 2^40 ns: +Inf only.
    auto huge = std::make_unique<shhim_hist>();
    addSamples(*huge, 1ULL << 41, 1);
    const CollapsedHistogram c = collapseHistogram(*huge);
    CHECK(c.cumulative[kLatencyBounds.size() - 1] == 0);
    CHECK(c.count == 1);
}

TEST_CASE("collapsed histogram: cumulative, bounded by the count, for samples across the whole range")
{
    auto hist = std::make_unique<shhim_hist>();
    std::uint64_t total = 0;
    for (std::uint64_t ns = 1; ns < (1ULL << 42); ns = ns * 3 + 7) {
        addSamples(*hist, ns, 2);
        total += 2;
    }
    const CollapsedHistogram c = collapseHistogram(*hist);
    CHECK(c.count == total);
    for (std::size_t i = 1; i < c.cumulative.size(); ++i)
        CHECK(c.cumulative[i] >= c.cumulative[i - 1]);
    CHECK(c.cumulative.back() <= c.count);
    // Every bound holds exactly the samples whose kernel bucket ends at or below it.
    for (std::size_t i = 0; i < kLatencyBounds.size(); ++i) {
        std::uint64_t expected = 0;
        for (std::uint64_t ns = 1; ns < (1ULL << 42); ns = ns * 3 + 7) {
            const auto b = shhim_hist_bucket(ns);
            if (b + 1 < SHHIM_HIST_BUCKETS &&
                static_cast<double>(shhim_hist_bucket_low(b + 1) - 1) <= kLatencyBounds[i].seconds * 1e9)
                expected += 2;
        }
        CAPTURE(kLatencyBounds[i].label);
        CHECK(c.cumulative[i] == expected);
    }
}

TEST_CASE("backend label: IPv4 plain, IPv6 in brackets")
{
    CHECK(backendLabel(endpointV4({198, 18, 0, 10}, 8080)) == "198.18.0.10:8080");
    CHECK(backendLabel(endpointV6({0x2001, 2, 0, 0, 0, 0, 0, 0x10}, 443)) == "[2001:2::10]:443");
}

TEST_CASE("label values escape backslash, quote and newline")
{
    CHECK(escapeLabelValue("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
    CHECK(escapeLabelValue("plain") == "plain");
}

TEST_CASE("exposition: backend counters, errors by kind, statuses and histograms carry the backend's labels")
{
    const MetricsInput in = oneHttpBackend();
    const std::string text = renderMetrics(in);
    const std::string labels = R"(service="fhir",class="clinical",backend="198.18.0.10:8080",protocol="tcp")";
    CHECK(hasLine(text, "shhim_backend_requests_total{" + labels + "} 100"));
    CHECK(hasLine(text, "shhim_backend_responses_total{" + labels + "} 98"));
    CHECK(hasLine(text, "shhim_backend_errors_total{" + labels + R"(,kind="refused"} 1)"));
    CHECK(hasLine(text, "shhim_backend_errors_total{" + labels + R"(,kind="reset"} 1)"));
    CHECK(hasLine(text, "shhim_backend_errors_total{" + labels + R"(,kind="http_5xx"} 15)"));
    CHECK(hasLine(text, "shhim_backend_errors_total{" + labels + R"(,kind="syn_timeout"} 0)"));
    CHECK(hasLine(text, "shhim_backend_http_responses_total{" + labels + R"(,code="2xx"} 83)"));
    CHECK(hasLine(text, "shhim_backend_mllp_acks_total{" + labels + R"(,ack="AE"} 0)"));
    CHECK(hasLine(text, "shhim_backend_response_duration_seconds_bucket{" + labels + R"(,le="0.025"} 0)"));
    CHECK(hasLine(text, "shhim_backend_response_duration_seconds_bucket{" + labels + R"(,le="0.05"} 98)"));
    CHECK(hasLine(text, "shhim_backend_response_duration_seconds_bucket{" + labels + R"(,le="+Inf"} 98)"));
    CHECK(hasLine(text, "shhim_backend_response_duration_seconds_count{" + labels + "} 98"));
    CHECK(hasLine(text, "shhim_backend_handshake_duration_seconds_bucket{" + labels + R"(,le="0.00005"} 50)"));
    CHECK(hasLine(text, "shhim_backend_srtt_seconds_sum{" + labels + "} 0.0003"));
    CHECK(hasLine(text, "shhim_backend_srtt_seconds_count{" + labels + "} 3"));

    // The kinds add up to the error count the API reports.
    std::uint64_t sum = 0;
    for (const auto& line : lines(text))
        if (line.starts_with("shhim_backend_errors_total{"))
            sum += std::stoull(line.substr(line.rfind(' ') + 1));
    CHECK(sum == backendErrorCount(in.backends[0].backend));
}

TEST_CASE("exposition: global counters, parse errors by reason, maps, interfaces")
{
    const std::string text = renderMetrics(oneHttpBackend());
    CHECK(hasLine(text, R"(shhim_build_info{version="0.1.0",build_id="00000000deadbeef"} 1)"));
    CHECK(hasLine(text, "shhim_agent_start_time_seconds 1700000000.5"));
    CHECK(hasLine(text, R"(shhim_packets_total{hook="xdp"} 1234)"));
    CHECK(hasLine(text, "shhim_events_lost_total 2"));
    CHECK(hasLine(text, R"(shhim_events_total{kind="refused"} 4)"));
    CHECK(hasLine(text, R"(shhim_parse_errors_total{reason="ipv4_trunc"} 3)"));
    CHECK(hasLine(text, R"(shhim_map_entries{map="shhim_flows"} 10)"));
    CHECK(hasLine(text, R"(shhim_map_max_entries{map="shhim_flows"} 65536)"));
    CHECK(hasLine(text, R"(shhim_interface_packets_total{interface="veth0",direction="rx"} 100)"));
    CHECK(hasLine(text, R"(shhim_attachment_info{hook="xdp",target="veth0"} 1)"));
    // Every parse-error reason is exported, zero or not.
    std::size_t reasons = 0;
    for (const auto& line : lines(text))
        reasons += line.starts_with("shhim_parse_errors_total{");
    CHECK(reasons == SHHIM_CTR_PERR_LAST - SHHIM_CTR_PERR_FIRST + 1);
    // No policy loaded: no policy gauge rather than a made-up 0.
    CHECK(text.find("shhim_policy_services") == std::string::npos);
}

TEST_CASE("exposition: text format rules (HELP/TYPE once per family, before its samples; counters end in _total)")
{
    MetricsInput in = oneHttpBackend();
    BackendMetrics v6;
    v6.endpoint = endpointV6({0x2001, 2, 0, 0, 0, 0, 0, 0x10}, 8080);
    in.backends.push_back(v6);
    in.policy_services = 2;
    in.routing.emplace();
    auto* service = in.routing->add_services();
    service->set_name("fhir");
    service->set_class_name("clinical");
    service->add_backends()->set_backend("198.18.0.10:8080");
    in.routing_changes[{"fhir", "eject", "kernel"}] = 1;
    const std::string text = renderMetrics(in);

    std::map<std::string, std::string> types;
    std::set<std::string> helped;
    for (const auto& line : lines(text)) {
        CAPTURE(line);
        REQUIRE(!line.empty());
        if (line.starts_with("# HELP ")) {
            const std::string name = line.substr(7, line.find(' ', 7) - 7);
            CHECK(helped.insert(name).second);
            continue;
        }
        if (line.starts_with("# TYPE ")) {
            const std::string rest = line.substr(7);
            const std::string name = rest.substr(0, rest.find(' '));
            CHECK(types.emplace(name, rest.substr(rest.find(' ') + 1)).second);
            CHECK(helped.contains(name));
            continue;
        }
        std::string name = sampleName(line);
        CHECK(name.starts_with("shhim_"));
        // A sample belongs to the family declared last; histogram and
        // summary samples carry a suffix.
        std::string family = name;
        for (const char* suffix : {"_bucket", "_sum", "_count"})
            if (!types.contains(family) && family.ends_with(suffix))
                family = family.substr(0, family.size() - std::string(suffix).size());
        REQUIRE(types.contains(family));
        if (types[family] == "counter")
            CHECK(family.ends_with("_total"));
        else
            CHECK_FALSE(family.ends_with("_total"));
    }
    CHECK(hasLine(text, "shhim_policy_services 2"));
    CHECK(text.find(R"(backend="[2001:2::10]:8080")") != std::string::npos);
    // Both backends in every backend family: 2 x (6 acknowledgment codes).
    std::size_t states = 0;
    for (const auto& line : lines(text))
        states += line.starts_with("shhim_backend_mllp_acks_total{");
    CHECK(states == 2 * SHHIM_MLLP_ACK_MAX);
}
