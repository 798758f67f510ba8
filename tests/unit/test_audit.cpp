// The audit chain (core/audit.h): records chained by SHA-256, and verify
// catching each kind of tampering, in memory and in the committed fixtures
// of tests/data/audit/. SHHIM_WRITE_AUDIT_FIXTURES=1 rewrites the fixtures.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/audit.h"
#include "core/decision_engine.h"
#include "core/policy.h"

using namespace shhim::core;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(SHHIM_SOURCE_DIR) / "tests/data/audit";
const std::string kVersion = "3f2a9c01b7e4d5c6a7b8c9d0e1f20304a5b6c7d8e9f00112233445566778899a";

EngineTime at(double seconds)
{
    return EngineTime(std::chrono::seconds(1'740'830'400)) +  // 2025-03-01T12:00:00Z
           std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// The changes of a short incident: a kernel trip, fallback, probes, restore, a drain.
std::vector<Change> incident()
{
    shhim::v1::Policy policy;
    policy.set_schema_version(1);
    policy.set_name("audit-fixture");
    auto* s = policy.add_services();
    s->set_name("fhir");
    s->set_address("198.18.10.1:8080");
    s->set_protocol(shhim::v1::APP_PROTOCOL_HTTP);
    s->set_class_("clinical");
    s->mutable_backends()->add_primary("198.18.20.1:8080");
    s->mutable_backends()->add_fallback("198.18.30.1:8080");
    s->mutable_thresholds()->set_ejection_ms(10'000);

    DecisionEngine engine;
    std::vector<Change> all;
    auto add = [&](std::vector<Change> changes) { all.insert(all.end(), changes.begin(), changes.end()); };
    engine.applyPolicy(policy, at(0));  // the adds are not part of the fixture
    add(engine.onHardFailure("fhir", "198.18.20.1:8080", FailureKind::Refused, at(1), true));
    add(engine.tick(at(11)));
    for (int i = 0; i < 3; ++i)
        add(engine.onProbe("fhir", "198.18.20.1:8080", true, at(11.5 + i)));
    add(engine.tick(at(45)));
    add(engine.drain("fhir", "198.18.30.1:8080", "DR site maintenance", "uid:1000", at(60)));
    return all;
}

std::vector<std::string> goodLines()
{
    std::vector<std::string> lines;
    std::string previous;
    for (const auto& change : incident()) {
        AuditLine next = appendAuditRecord(auditRecordOf(change, kVersion), previous);
        previous = next.line;
        lines.push_back(next.line);
    }
    return lines;
}

std::string joined(const std::vector<std::string>& lines)
{
    std::string text;
    for (const auto& line : lines)
        text += line + "\n";
    return text;
}

std::string slurp(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// Every tampered variant of the good lines, as (fixture name, text).
std::vector<std::pair<std::string, std::string>> tamperedFixtures(const std::vector<std::string>& good)
{
    std::vector<std::pair<std::string, std::string>> out;
    auto edited = good;
    const auto at_reason = edited[2].find("\"reason\":\"") + 10;
    edited[2].insert(at_reason, "nothing to see: ");
    out.emplace_back("edited.jsonl", joined(edited));

    auto edited_last = good;
    edited_last.back().replace(edited_last.back().find("uid:1000"), 8, "uid:0000");
    out.emplace_back("edited-last.jsonl", joined(edited_last));

    auto deleted = good;
    deleted.erase(deleted.begin() + 2);
    out.emplace_back("deleted.jsonl", joined(deleted));

    auto reordered = good;
    std::swap(reordered[2], reordered[3]);
    out.emplace_back("reordered.jsonl", joined(reordered));

    std::string cut = joined(good);
    cut.resize(cut.size() - good.back().size() / 2 - 1);
    out.emplace_back("truncated-partial.jsonl", cut);

    auto tail = good;
    tail.resize(tail.size() - 2);
    out.emplace_back("truncated-tail.jsonl", joined(tail));

    auto garbage = good;
    garbage[3] = garbage[3].substr(0, 40) + "}";
    out.emplace_back("unparseable.jsonl", joined(garbage));
    return out;
}

struct Expected {
    std::string file;
    bool with_head;
    AuditProblem problem;
    std::size_t line;
};

const std::vector<Expected> kExpected{
    {"edited.jsonl", false, AuditProblem::Edited, 3},
    {"edited-last.jsonl", true, AuditProblem::Edited, 6},
    {"deleted.jsonl", false, AuditProblem::Deleted, 3},
    {"reordered.jsonl", false, AuditProblem::Reordered, 3},
    {"truncated-partial.jsonl", false, AuditProblem::Truncated, 6},
    {"truncated-tail.jsonl", true, AuditProblem::Truncated, 5},
    {"unparseable.jsonl", false, AuditProblem::Unparseable, 4},
};

}  // namespace

TEST_CASE("audit: the incident fixture has six records")
{
    // eject (kernel), fallback, probe, restore, primary (after the hold), drain.
    const auto changes = incident();
    REQUIRE(changes.size() == 6);
    CHECK(changes[0].action == "eject");
    CHECK(changes[1].action == "fallback");
    CHECK(changes[3].action == "restore");
    CHECK(changes[4].action == "primary");
    CHECK(changes[5].actor == "uid:1000");
}

TEST_CASE("audit: records chain by the SHA-256 of the previous line's bytes")
{
    const auto lines = goodLines();
    REQUIRE(lines.size() == 6);
    const auto first = auditHeadOf(lines[0]);
    CHECK(first.seq() == 1);
    CHECK(lines[0].find("\"prev_sha256\":\"" + std::string(kAuditGenesis) + "\"") != std::string::npos);
    for (std::size_t i = 1; i < lines.size(); ++i) {
        CAPTURE(i);
        CHECK(lines[i].find("\"prev_sha256\":\"" + sha256Hex(lines[i - 1]) + "\"") != std::string::npos);
        CHECK(auditHeadOf(lines[i]).seq() == i + 1);
        CHECK(lines[i].find('\n') == std::string::npos);
    }
    CHECK(lines[0].find("\"time\":\"2025-03-01T12:00:01.000Z\"") != std::string::npos);
    CHECK(lines[0].find("\"actor\":\"kernel\"") != std::string::npos);
    CHECK(lines[0].find("\"policy_version\":\"" + kVersion + "\"") != std::string::npos);
    CHECK(lines[0].find("{\"name\":\"ejection_ms\",\"value\":10000}") != std::string::npos);

    // The head-based and line-based appends agree.
    shhim::v1::AuditRecord record;
    record.set_action("drain");
    const auto by_line = appendAuditRecord(record, lines.back());
    const auto by_head = appendAuditRecord(record, std::optional(auditHeadOf(lines.back())));
    CHECK(by_line.line == by_head.line);
    CHECK(by_line.head.seq() == 7);
    CHECK(by_line.head.sha256() == sha256Hex(by_line.line));
    CHECK_THROWS_AS(appendAuditRecord(record, std::string_view("not json")), std::invalid_argument);
}

TEST_CASE("audit: an intact chain verifies, with and without its head")
{
    const auto lines = goodLines();
    const std::string text = joined(lines);
    auto v = verifyAuditChain(text);
    CHECK(v.ok());
    CHECK(v.records == 6);
    CHECK(v.last_seq == 6);
    CHECK_FALSE(v.head_checked);
    CHECK(auditVerdictLine("a.jsonl", v).find("a.jsonl: intact: 6 records (seq 1-6, last ") == 0);

    const auto head = auditHeadOf(lines.back());
    v = verifyAuditChain(text, head);
    CHECK(v.ok());
    CHECK(v.head_checked);
    CHECK(auditVerdictLine("a.jsonl", v).find("matches the head") != std::string::npos);

    // The writer crashed between the line and the head: one record beyond it.
    v = verifyAuditChain(text, auditHeadOf(lines[4]));
    CHECK(v.ok());
    CHECK(v.beyond_head == 1);

    CHECK(verifyAuditChain("").ok());
    CHECK(verifyAuditChain("").records == 0);
}

TEST_CASE("audit: the head file round-trips and bad ones are named")
{
    shhim::v1::AuditHead head;
    head.set_seq(42);
    head.set_sha256(std::string(kAuditGenesis));
    const std::string text = formatAuditHead(head);
    CHECK(text.back() == '\n');
    const auto parsed = parseAuditHead(text);
    CHECK(parsed.seq() == 42);
    CHECK(parsed.sha256() == kAuditGenesis);
    CHECK_THROWS_WITH_AS(parseAuditHead("{\"seq\":1,\"sha256\":\"abc\"}"), "audit head: sha256 must be 64 hex digits",
                         std::invalid_argument);
    CHECK_THROWS_AS(parseAuditHead("seq 1"), std::invalid_argument);
    CHECK(auditHeadPath("/var/lib/shhim/audit.jsonl") == "/var/lib/shhim/audit.jsonl.head");
}

TEST_CASE("audit: verify names the first bad record and why, for each kind of tampering")
{
    const auto good = goodLines();
    const auto head = auditHeadOf(good.back());
    const auto variants = tamperedFixtures(good);
    for (const auto& expected : kExpected) {
        CAPTURE(expected.file);
        const auto it = std::find_if(variants.begin(), variants.end(),
                                     [&](const auto& v) { return v.first == expected.file; });
        REQUIRE(it != variants.end());
        const auto v = verifyAuditChain(it->second, expected.with_head ? std::optional(head) : std::nullopt);
        CHECK(v.problem == expected.problem);
        CHECK(v.line == expected.line);
        CHECK_FALSE(v.why.empty());
        CHECK(auditVerdictLine("f", v).find("f: line " + std::to_string(expected.line) + ": " +
                                            std::string(auditProblemName(expected.problem)) + ": ") == 0);
    }
}

TEST_CASE("audit: edge cases of tampering are still caught")
{
    const auto good = goodLines();
    SUBCASE("the first record deleted")
    {
        auto lines = good;
        lines.erase(lines.begin());
        const auto v = verifyAuditChain(joined(lines));
        CHECK(v.problem == AuditProblem::Deleted);
        CHECK(v.line == 1);
    }
    SUBCASE("a record's seq rewritten")
    {
        auto lines = good;
        lines[2].replace(lines[2].find("\"seq\":\"3\""), 9, "\"seq\":\"9\"");
        const auto v = verifyAuditChain(joined(lines));
        CHECK(v.problem == AuditProblem::Edited);
        CHECK(v.line == 3);
    }
    SUBCASE("a record moved from the end to the front")
    {
        auto lines = good;
        std::rotate(lines.rbegin(), lines.rbegin() + 1, lines.rend());
        const auto v = verifyAuditChain(joined(lines));
        CHECK(v.problem == AuditProblem::Reordered);
        CHECK(v.line == 1);
    }
    SUBCASE("two records deleted in the middle")
    {
        auto lines = good;
        lines.erase(lines.begin() + 1, lines.begin() + 3);
        const auto v = verifyAuditChain(joined(lines));
        CHECK(v.problem == AuditProblem::Deleted);
        CHECK(v.line == 2);
        CHECK(v.why == "2 records missing before it (seq 2-3)");
    }
    SUBCASE("whitespace added to one record")
    {
        auto lines = good;
        lines[1] += " ";
        const auto v = verifyAuditChain(joined(lines));
        CHECK(v.problem == AuditProblem::Edited);
        CHECK(v.line == 2);
    }
    SUBCASE("an empty line")
    {
        auto lines = good;
        lines.insert(lines.begin() + 2, "");
        const auto v = verifyAuditChain(joined(lines));
        CHECK(v.problem == AuditProblem::Unparseable);
        CHECK(v.line == 3);
    }
    SUBCASE("the whole file emptied, with its head")
    {
        const auto v = verifyAuditChain("", auditHeadOf(good.back()));
        CHECK(v.problem == AuditProblem::Truncated);
        CHECK(v.line == 1);
    }
}

TEST_CASE("audit: the committed fixtures verify as expected")
{
    const auto good = goodLines();
    if (std::getenv("SHHIM_WRITE_AUDIT_FIXTURES")) {
        fs::create_directories(kFixtures);
        std::ofstream(kFixtures / "good.jsonl", std::ios::binary) << joined(good);
        std::ofstream(kFixtures / "good.jsonl.head", std::ios::binary) << formatAuditHead(auditHeadOf(good.back()));
        for (const auto& [name, text] : tamperedFixtures(good))
            std::ofstream(kFixtures / name, std::ios::binary) << text;
    }
    const auto head = parseAuditHead(slurp(kFixtures / "good.jsonl.head"));
    const auto v = verifyAuditChain(slurp(kFixtures / "good.jsonl"), head);
    CHECK(v.ok());
    CHECK(v.records == 6);
    for (const auto& expected : kExpected) {
        CAPTURE(expected.file);
        const auto bad = verifyAuditChain(slurp(kFixtures / expected.file),
                                          expected.with_head ? std::optional(head) : std::nullopt);
        CHECK(bad.problem == expected.problem);
        CHECK(bad.line == expected.line);
    }
}
