// Recorded telemetry (shhimd --record, the labelled traces) and the tick
// both engines share: the JSON round trip loses nothing, bad lines are
// named, a gzip'd trace reads like a plain one, and judgeTick's scores
// reach the decision engine only when they act.
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include "core/anomaly_engine.h"
#include "core/telemetry_record.h"
#include "core/tick_judge.h"

using namespace shhim;

namespace {

core::BackendTick sampleTick()
{
    core::BackendTick t;
    t.id = {"lab", "198.18.0.10:2575", "clinical"};
    t.counts.seconds = 0.1;
    t.counts.application = true;
    t.counts.requests = 7;
    t.counts.responses = 6;
    t.counts.conn_attempts = 7;
    t.counts.conn_established = 7;
    t.counts.nacks = 1;
    t.counts.retransmits = 2;
    t.counts.srtt_samples = 3;
    t.counts.srtt_us_sum = 1234.5;
    t.counts.p50_ms = 15.2;
    t.counts.p99_ms = 41.0;
    return t;
}

std::string tempPath(const char* name)
{
    return "/tmp/shhim-unit-" + std::to_string(::getpid()) + "-" + name;
}

v1::Policy onePolicy(const std::string& cls)
{
    v1::Policy policy;
    policy.set_schema_version(1);
    policy.set_name("t");
    auto* s = policy.add_services();
    s->set_name("lab");
    s->set_address("198.18.10.1:2575");
    s->set_protocol(v1::APP_PROTOCOL_MLLP);
    s->set_class_(cls);
    s->mutable_backends()->add_primary("198.18.0.10:2575");
    s->mutable_backends()->add_primary("198.18.0.11:2575");
    return policy;
}

}  // namespace

TEST_CASE("telemetry record: a tick survives the JSON line round trip")
{
    const std::vector<core::BackendTick> ticks{sampleTick()};
    const std::string line = core::toJsonLine(core::recordedTick(1764000000123, 0.1, ticks));
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find("\"conn_attempts\":\"7\"") != std::string::npos);  // proto names, uint64 as strings
    CHECK(line.find("resets") == std::string::npos);                    // zeros left out
    const v1::RecordedTick parsed = core::parseRecordedTick(line, "test:1");
    CHECK(parsed.unix_ms() == 1764000000123);
    const auto back = core::backendTicks(parsed);
    REQUIRE(back.size() == 1);
    const core::TickCounts& c = back[0].counts;
    CHECK(back[0].id.backend == "198.18.0.10:2575");
    CHECK(back[0].id.service_class == "clinical");
    CHECK(c.seconds == 0.1);
    CHECK(c.requests == 7);
    CHECK(c.responses == 6);
    CHECK(c.nacks == 1);
    CHECK(c.srtt_us_sum == 1234.5);
    CHECK(c.p99_ms == 41.0);
    CHECK(!back[0].counts.server_errors);
    // The feature vector of the replayed tick is the live one.
    CHECK(core::featureVector(c).isApprox(core::featureVector(ticks[0].counts)));
}

TEST_CASE("telemetry record: bad lines are refused with their place")
{
    CHECK_THROWS_WITH_AS(core::parseRecordedTick("{\"seconds\": 0}", "rec:4"),
                         doctest::Contains("rec:4: seconds must be > 0"), core::TraceError);
    CHECK_THROWS_WITH_AS(core::parseRecordedTick("{\"seconds\": 0.1, \"bogus\": 1}", "rec:5"),
                         doctest::Contains("rec:5: not a recorded tick"), core::TraceError);
    CHECK_THROWS_WITH_AS(core::parseRecordedTick("{\"seconds\": 0.1, \"backends\": [{\"service\": \"a\"}]}", "rec:6"),
                         doctest::Contains("backends[0] needs both service and backend"), core::TraceError);
    CHECK_THROWS_WITH_AS(core::parseTraceLabel("{\"name\": \"x\", \"kind\": \"crash\", \"failure\": true}", "t:1"),
                         doctest::Contains("needs its backend and fault_start_unix_ms"), core::TraceError);
}

TEST_CASE("telemetry record: a gzip'd trace reads like a plain one")
{
    const std::string label =
        R"({"name":"crash-a","kind":"crash","failure":true,"service":"lab","backend":"198.18.0.10:2575","fault_start_unix_ms":"1764000000500"})";
    const std::vector<core::BackendTick> ticks{sampleTick()};
    std::string text = label + "\n";
    for (int i = 0; i < 3; ++i)
        text += core::toJsonLine(core::recordedTick(1764000000000 + 100 * i, 0.1, ticks)) + "\n";

    const std::string plain = tempPath("trace.jsonl");
    const std::string packed = tempPath("trace.jsonl.gz");
    std::ofstream(plain) << text;
    gzFile gz = gzopen(packed.c_str(), "wb");
    REQUIRE(gz != nullptr);
    REQUIRE(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())) == static_cast<int>(text.size()));
    gzclose(gz);

    for (const auto& path : {plain, packed}) {
        const core::Trace trace = core::readTrace(path);
        CHECK(trace.label.name() == "crash-a");
        CHECK(trace.label.fault_start_unix_ms() == 1764000000500);
        REQUIRE(trace.ticks.size() == 3);
        CHECK(trace.ticks[2].unix_ms() == 1764000000200);
    }
    // The ticks without the label: a recording where a label is optional,
    // refused by line where it is required.
    const std::string recording = tempPath("recording.jsonl");
    std::ofstream(recording) << text.substr(text.find('\n') + 1);
    const core::Trace recorded = core::readTrace(recording, core::Label::Optional);
    CHECK(recorded.label.name().empty());
    CHECK(recorded.ticks.size() == 3);
    CHECK_THROWS_WITH_AS(core::readTrace(recording), doctest::Contains((recording + ":1: not a trace label").c_str()),
                         core::TraceError);
    // A bad tick is named by its line either way.
    std::ofstream(recording, std::ios::app) << "{\"seconds\": 0}\n";
    CHECK_THROWS_WITH_AS(core::readTrace(recording, core::Label::Optional),
                         doctest::Contains((recording + ":4: seconds must be > 0").c_str()), core::TraceError);
    std::remove(recording.c_str());
    CHECK_THROWS_WITH_AS(core::readTrace(tempPath("missing")), doctest::Contains("cannot open"), core::TraceError);
    std::remove(plain.c_str());
    std::remove(packed.c_str());
}

TEST_CASE("judgeTick: the score reaches the decision engine only when it acts")
{
    const auto start = core::EngineTime{} + std::chrono::hours(1000);
    for (const bool acts : {false, true}) {
        core::AnomalyEngine anomaly{core::AnomalySettings{}};
        core::DecisionEngine decisions;
        decisions.applyPolicy(onePolicy("clinical"), start);
        core::BackendTick good = sampleTick();
        good.counts.nacks = 0;
        core::BackendTick peer = good;
        peer.id.backend = "198.18.0.11:2575";
        // A minute of healthy ticks, then every message NACKed and slow.
        auto time = start;
        for (int i = 0; i < 600; ++i) {
            time += std::chrono::milliseconds(100);
            const std::vector<core::BackendTick> ticks{good, peer};
            CHECK(core::judgeTick(anomaly, decisions, time, ticks, acts).changes.empty());
        }
        core::BackendTick bad = good;
        bad.counts.nacks = 7;
        bad.counts.p99_ms = 900;
        std::vector<core::Change> changes;
        int anomalous = 0;
        for (int i = 0; i < 8; ++i) {
            time += std::chrono::milliseconds(100);
            const std::vector<core::BackendTick> ticks{bad, peer};
            const auto judged = core::judgeTick(anomaly, decisions, time, ticks, acts);
            REQUIRE(judged.scores.size() == 2);
            anomalous += judged.scores[0].score >= 1.0;
            CHECK(judged.scores[1].score < 1.0);
            changes.insert(changes.end(), judged.changes.begin(), judged.changes.end());
        }
        CHECK(anomalous == 8);
        bool ejected_by_score = false;
        for (const auto& c : changes)
            ejected_by_score |= c.action == "eject" && c.reason.find("anomalous for 5 ticks") != std::string::npos &&
                                c.reason.find("MLLP NACKs") != std::string::npos;
        CHECK(ejected_by_score == acts);
    }
}

TEST_CASE("class sensitivity: the policy's override, the built-in defaults, added classes at 1")
{
    v1::Policy policy = onePolicy("clinical");
    auto* override = policy.add_classes();
    override->set_name("bulk");
    override->set_anomaly_sensitivity(0);
    auto* added = policy.add_classes();
    added->set_name("research");
    added->set_dscp(8);
    const auto by_class = core::classSensitivity(policy);
    CHECK(by_class.at("life-critical") == 2.0);
    CHECK(by_class.at("bulk") == 0.0);
    CHECK(by_class.at("research") == 1.0);
    CHECK(by_class == [&] {
        auto expected = core::defaultClassSensitivity();
        expected["bulk"] = 0;
        expected["research"] = 1;
        return expected;
    }());
    core::AnomalyEngine engine{core::AnomalySettings{}};
    CHECK_NOTHROW(engine.setClassSensitivity(by_class));
    CHECK_THROWS_AS(engine.setClassSensitivity({{"clinical", 11.0}}), std::invalid_argument);
}
