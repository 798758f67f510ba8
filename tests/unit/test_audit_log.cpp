// The audit trail on disk: appends chain across reopenings, the head sidecar
// follows, and a partial last line left by a crash is cut off at open.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/audit_log.h"
#include "command_support.h"
#include "core/audit.h"

using namespace shhim;

namespace {

using TempDir = shhim::test::ScratchDir;
using shhim::test::slurp;

v1::AuditRecord record(const std::string& action)
{
    v1::AuditRecord r;
    r.set_actor("engine");
    r.set_action(action);
    r.set_service("fhir");
    r.set_backend("198.18.0.10:8080");
    return r;
}

}  // namespace

TEST_CASE("audit log: appends chain across reopen, with the head sidecar")
{
    TempDir dir;
    const std::string file = (dir.path / "trail" / "audit.jsonl").string();
    {
        agent::AuditLog log(file);
        CHECK(log.append(record("eject")).seq() == 1);
        CHECK(log.append(record("probe")).seq() == 2);
    }
    agent::AuditLog reopened(file);
    CHECK(reopened.lastSeq() == 2);
    const v1::AuditRecord third = reopened.append(record("restore"));
    CHECK(third.seq() == 3);
    CHECK(reopened.newest(2).size() == 2);
    CHECK(reopened.newest(10).front().action() == "eject");
    CHECK(reopened.all().size() == 3);

    const auto head = core::parseAuditHead(slurp(core::auditHeadPath(file)));
    const core::AuditVerdict verdict = core::verifyAuditChain(slurp(file), head);
    CHECK_MESSAGE(verdict.ok(), verdict.why);
    CHECK(verdict.records == 3);
    CHECK(verdict.head_checked);
}

TEST_CASE("audit log: a partial last line is cut off at open and the chain goes on")
{
    TempDir dir;
    const std::string file = (dir.path / "audit.jsonl").string();
    {
        agent::AuditLog log(file);
        log.append(record("eject"));
    }
    {
        std::ofstream out(file, std::ios::app | std::ios::binary);
        out << "{\"seq\":\"2\",\"time\":";  // a crash mid-write
    }
    agent::AuditLog repaired(file);
    REQUIRE(repaired.repairs().size() == 1);
    CHECK(repaired.append(record("probe")).seq() == 2);
    const core::AuditVerdict verdict = core::verifyAuditChain(slurp(file));
    CHECK_MESSAGE(verdict.ok(), verdict.why);
    CHECK(verdict.records == 2);
}

TEST_CASE("audit log: after() returns newer records or times out")
{
    TempDir dir;
    agent::AuditLog log((dir.path / "audit.jsonl").string());
    log.append(record("eject"));
    CHECK(log.after(0, std::chrono::milliseconds(10)).size() == 1);
    CHECK(log.after(1, std::chrono::milliseconds(10)).empty());
}
