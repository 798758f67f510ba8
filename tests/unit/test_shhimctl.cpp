// shhimctl as the on-call engineer meets it without an agent: one-line
// error and exit 1, usage and exit 2 on bad arguments, help with examples.
#include <doctest/doctest.h>

#include "command_support.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

using Result = shhim::test::CommandRun;
using TempDir = shhim::test::ScratchDir;
using shhim::test::slurp;

Result runShhimctl(const std::string& args)
{
    return shhim::test::runCommand(std::string("'") + SHHIMCTL_PATH + "' " + args);
}

}  // namespace

TEST_CASE("shhimctl without an agent: one line on stderr, exit 1, for every RPC subcommand")
{
    TempDir dir;
    const std::string socket = (dir.path / "missing.sock").string();
    for (const char* command : {"status", "flows", "backends", "events", "version", "flows -o json"}) {
        CAPTURE(command);
        const auto r = runShhimctl("--socket '" + socket + "' " + command);
        CHECK(r.exit_code == 1);
        CHECK(r.out.empty());
        CHECK(r.err == "shhimctl: no agent running (cannot reach " + socket + ")\n");
    }
}

TEST_CASE("shhimctl with a socket nobody listens on (refused): one line, exit 1")
{
    TempDir dir;
    const std::string socket = (dir.path / "stale.sock").string();
    // A socket file left by a dead agent: bound, never listening.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(socket.size() < sizeof(addr.sun_path));
    std::copy(socket.begin(), socket.end(), addr.sun_path);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    ::close(fd);

    const auto r = runShhimctl("--socket '" + socket + "' backends -o json");
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "shhimctl: no agent running (cannot reach " + socket + ")\n");
}

TEST_CASE("shhimctl bad arguments: usage and exit 2")
{
    for (const char* args : {"", "flows --sort rtt", "flows --top many", "backends -o yaml", "nosuchcommand",
                             "events --last -1", "status --bogus"}) {
        CAPTURE(args);
        const auto r = runShhimctl(args);
        CHECK(r.exit_code == 2);
        CHECK(r.err.find("Usage: shhimctl") != std::string::npos);
    }
}

TEST_CASE("shhimctl --help on the app and every subcommand explains flags with an example")
{
    struct Help {
        const char* args;
        const char* must_mention;
    };
    for (const Help help : {Help{"--help", "--socket"}, Help{"status --help", "--output"},
                            Help{"flows --help", "--sort"}, Help{"flows --help", "--top"},
                            Help{"backends --help", "--output"}, Help{"events --help", "--last"},
                            Help{"version --help", "--client"}}) {
        CAPTURE(help.args);
        const auto r = runShhimctl(help.args);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find(help.must_mention) != std::string::npos);
        CHECK(r.out.find("Example") != std::string::npos);
        CHECK(r.out.find("  shhimctl ") != std::string::npos);
    }
}

TEST_CASE("shhimctl version --client needs no agent")
{
    const auto r = runShhimctl("--socket /nonexistent/shhimd.sock version --client");
    CHECK(r.exit_code == 0);
    CHECK(r.out.starts_with("shhimctl "));
    const auto json = runShhimctl("version --client -o json");
    CHECK(json.exit_code == 0);
    CHECK(json.out.find("\"shhimctl\":") != std::string::npos);
}
