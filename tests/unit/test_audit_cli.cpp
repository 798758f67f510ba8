// `shhimctl audit verify` on the fixtures of tests/data/audit: no agent,
// exit 0 and one line when intact, exit 1 naming the first bad record,
// exit 2 on usage errors and unreadable files.
#include <doctest/doctest.h>

#include "command_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(SHHIM_SOURCE_DIR) / "tests/data/audit";

using Run = shhim::test::CommandRun;
using shhim::test::slurp;

Run shhimctl(const std::string& args)
{
    return shhim::test::runCommand(std::string("'") + SHHIMCTL_PATH + "' " + args);
}

std::string fixture(const std::string& name) { return "'" + (kFixtures / name).string() + "'"; }

}  // namespace

TEST_CASE("shhimctl audit verify: an intact trail is one line on stdout, exit 0")
{
    // good.jsonl.head beside it is found without --head.
    const Run run = shhimctl("audit verify " + fixture("good.jsonl"));
    CHECK(run.exit_code == 0);
    CHECK(run.err.empty());
    CHECK(run.out.find("good.jsonl: intact: 6 records (seq 1-6, last ") != std::string::npos);
    CHECK(run.out.find("matches the head") != std::string::npos);
    CHECK(std::count(run.out.begin(), run.out.end(), '\n') == 1);
}

TEST_CASE("shhimctl audit verify: each kind of tampering names the first bad record, exit 1")
{
    const std::string head = " --head " + fixture("good.jsonl.head");
    const struct {
        const char* file;
        const char* expect;
    } cases[] = {
        {"edited.jsonl", "edited.jsonl: line 3: edited: "},
        {"edited-last.jsonl", "edited-last.jsonl: line 6: edited: "},
        {"deleted.jsonl", "deleted.jsonl: line 3: deleted: 1 record missing before it (seq 3)"},
        {"reordered.jsonl", "reordered.jsonl: line 3: reordered: "},
        {"truncated-partial.jsonl", "truncated-partial.jsonl: line 6: truncated: "},
        {"truncated-tail.jsonl", "truncated-tail.jsonl: line 5: truncated: 2 records missing at the end"},
        {"unparseable.jsonl", "unparseable.jsonl: line 4: unparseable: "},
    };
    for (const auto& c : cases) {
        CAPTURE(c.file);
        const Run run = shhimctl("audit verify " + fixture(c.file) + head);
        CHECK(run.exit_code == 1);
        CHECK(run.out.empty());
        CHECK(run.err.find(c.expect) != std::string::npos);
        CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
    }
}

TEST_CASE("shhimctl audit verify: without a head, a trail cut at a record boundary looks intact but says so")
{
    const Run run = shhimctl("audit verify " + fixture("truncated-tail.jsonl"));
    CHECK(run.exit_code == 0);
    CHECK(run.out.find("no head file") != std::string::npos);
}

TEST_CASE("shhimctl audit verify: usage errors and unreadable files exit 2")
{
    Run run = shhimctl("audit verify /nonexistent/audit.jsonl");
    CHECK(run.exit_code == 2);
    CHECK(run.err == "shhimctl: cannot read /nonexistent/audit.jsonl: No such file or directory\n");

    run = shhimctl("audit verify " + fixture("good.jsonl") + " --head " + fixture("good.jsonl"));
    CHECK(run.exit_code == 2);
    CHECK(run.err.find("good.jsonl: not an audit head") != std::string::npos);

    run = shhimctl("audit verify a b");
    CHECK(run.exit_code == 2);
    run = shhimctl("audit");
    CHECK(run.exit_code == 2);
    run = shhimctl("audit verify --bogus");
    CHECK(run.exit_code == 2);
}
