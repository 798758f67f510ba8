// The flow log (issue 6): which flows a scan writes (core/flow_log.h) and
// rotation by size (core rule + agent/flow_log.h writer on a temp dir).
#include <doctest/doctest.h>
#include <google/protobuf/util/json_util.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "agent/flow_log.h"
#include "core/flow_log.h"
#include "core/telemetry.h"
#include "test_support.h"

using namespace shhim::core;
using shhim::test::endpointV4;

namespace {

constexpr std::uint64_t kS = 1'000'000'000;

shhim_flow_key keyFor(std::uint16_t client_port)
{
    return {endpointV4({198, 18, 0, 10}, 8080), endpointV4({198, 18, 0, 1}, client_port)};
}

shhim_flow flowAt(std::uint64_t first, std::uint64_t last, std::uint8_t state = SHHIM_TCP_ESTABLISHED)
{
    shhim_flow f{};
    f.first_seen_ns = first;
    f.last_seen_ns = last;
    f.tcp_state = state;
    f.client_is_b = 1;
    return f;
}

using Table = std::vector<std::pair<shhim_flow_key, shhim_flow>>;

std::vector<FlowLogReason> reasons(const std::vector<FlowLogEntry>& entries)
{
    std::vector<FlowLogReason> out;
    for (const auto& e : entries)
        out.push_back(e.reason);
    return out;
}

struct TempDir {
    std::filesystem::path path;
    TempDir()
    {
        std::string templ = (std::filesystem::temp_directory_path() / "shhim-flowlog-XXXXXX").string();
        path = ::mkdtemp(templ.data());
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("flow log: a closed flow is written once, after a quiet scan")
{
    FlowLogTracker tracker;
    CHECK(tracker.scan({{keyFor(40000), flowAt(1 * kS, 2 * kS)}}, 3 * kS).empty());
    // FIN seen, still moving: not yet.
    CHECK(tracker.scan({{keyFor(40000), flowAt(1 * kS, 3 * kS, SHHIM_TCP_CLOSING)}}, 4 * kS).empty());
    // Quiet for a scan: ended.
    const auto ended = tracker.scan({{keyFor(40000), flowAt(1 * kS, 3 * kS, SHHIM_TCP_CLOSING)}}, 5 * kS);
    CHECK(reasons(ended) == std::vector{FlowLogReason::Ended});
    CHECK(ended[0].flow.last_seen_ns == 3 * kS);
    // Never again while it stays in the table, nor when it leaves it.
    CHECK(tracker.scan({{keyFor(40000), flowAt(1 * kS, 3 * kS, SHHIM_TCP_CLOSING)}}, 6 * kS).empty());
    CHECK(tracker.scan({}, 7 * kS).empty());
    CHECK(tracker.tracked() == 0);
}

TEST_CASE("flow log: long flows every period, evicted flows once with their last counts")
{
    FlowLogTracker tracker(FlowLogTiming{10 * kS, 60 * kS});
    auto flow = flowAt(1 * kS, 2 * kS);
    CHECK(tracker.scan({{keyFor(1), flow}}, 2 * kS).empty());
    flow.last_seen_ns = 10 * kS;
    CHECK(tracker.scan({{keyFor(1), flow}}, 10 * kS).empty());
    flow.last_seen_ns = 11 * kS;
    CHECK(reasons(tracker.scan({{keyFor(1), flow}}, 11 * kS)) == std::vector{FlowLogReason::Periodic});
    flow.last_seen_ns = 15 * kS;
    CHECK(tracker.scan({{keyFor(1), flow}}, 15 * kS).empty());
    flow.last_seen_ns = 21 * kS;
    flow.packets[0] = 99;
    CHECK(reasons(tracker.scan({{keyFor(1), flow}}, 21 * kS)) == std::vector{FlowLogReason::Periodic});
    const auto evicted = tracker.scan({}, 22 * kS);
    REQUIRE(reasons(evicted) == std::vector{FlowLogReason::Evicted});
    CHECK(evicted[0].flow.packets[0] == 99);
}

TEST_CASE("flow log: an idle flow without FIN ends after the idle time; a reused tuple is a new flow")
{
    FlowLogTracker tracker(FlowLogTiming{100 * kS, 30 * kS});
    CHECK(tracker.scan({{keyFor(2), flowAt(1 * kS, 2 * kS, SHHIM_TCP_NONE)}}, 3 * kS).empty());
    CHECK(reasons(tracker.scan({{keyFor(2), flowAt(1 * kS, 2 * kS, SHHIM_TCP_NONE)}}, 32 * kS)) ==
          std::vector{FlowLogReason::Ended});
    // The kernel made a new entry for the same tuple (first_seen differs).
    CHECK(tracker.scan({{keyFor(2), flowAt(40 * kS, 41 * kS, SHHIM_TCP_CLOSED)}}, 41 * kS).empty());
    CHECK(reasons(tracker.scan({{keyFor(2), flowAt(40 * kS, 41 * kS, SHHIM_TCP_CLOSED)}}, 42 * kS)) ==
          std::vector{FlowLogReason::Ended});
}

TEST_CASE("flow log rotation rule and names")
{
    const RotationLimits limits{1000, 3};
    CHECK_FALSE(needsRotation(0, 5000, limits));   // an empty file takes any line
    CHECK_FALSE(needsRotation(900, 100, limits));  // exactly full is fine
    CHECK(needsRotation(900, 101, limits));
    CHECK(rotatedName("flows.jsonl", 0) == "flows.jsonl");
    CHECK(rotatedName("flows.jsonl", 2) == "flows.jsonl.2");
    const auto plan = rotationPlan("f", 3);
    REQUIRE(plan.size() == 4);
    CHECK(plan[0].from == "f.3");
    CHECK(plan[0].to.empty());
    CHECK(plan[1].from == "f.2");
    CHECK(plan[1].to == "f.3");
    CHECK(plan[3].from == "f");
    CHECK(plan[3].to == "f.1");
    const auto none = rotationPlan("f", 0);
    REQUIRE(none.size() == 1);
    CHECK(none[0].from == "f");  // keep 0: the live file is simply started again
    CHECK(flowLogMaxBytes(0.05) == 50'000);
    CHECK_THROWS_AS(flowLogMaxBytes(0), std::invalid_argument);
}

TEST_CASE("flow log writer: whole lines, FILE + at most keep rotated files, each within the size")
{
    TempDir dir;
    const std::string file = (dir.path / "flows.jsonl").string();
    const RotationLimits limits{2000, 3};
    shhim::agent::FlowLogWriter writer(file, limits);
    const shhim::v1::Flow flow = toFlow(keyFor(40001), flowAt(1 * kS, 2 * kS), 0);
    const std::string line = shhim::agent::flowJsonLine(flow);
    REQUIRE(line.find('\n') == std::string::npos);
    for (int i = 0; i < 60; ++i)
        writer.write(flow);
    CHECK(writer.linesWritten() == 60);
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path)) {
        ++files;
        CHECK(std::filesystem::file_size(entry.path()) <= limits.max_bytes);
        std::ifstream in(entry.path());
        std::string text;
        while (std::getline(in, text)) {
            shhim::v1::Flow parsed;
            CHECK(google::protobuf::util::JsonStringToMessage(text, &parsed).ok());
            CHECK(parsed.server().port() == 8080);
        }
    }
    CHECK(files == 4);
    CHECK(std::filesystem::exists(file + ".3"));
    CHECK_FALSE(std::filesystem::exists(file + ".4"));
}
