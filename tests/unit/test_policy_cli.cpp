// The policy commands as an operator meets them: `shhimctl policy check`
// with no agent (exit 0 / 2, error lines), the agent-side subcommands
// without an agent (exit 1), the printers, and shhimd refusing to start on
// an invalid policy before it touches the kernel.
#include <doctest/doctest.h>

#include "command_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/printers.h"
#include "core/policy.h"

namespace {

namespace fs = std::filesystem;

const fs::path kSource(SHHIM_SOURCE_DIR);

using Run = shhim::test::CommandRun;
using shhim::test::slurp;
using ScratchDir = shhim::test::ScratchDir;

// Runs `command` (already quoted) from `cwd`, so that file names in
// messages are the relative ones an operator types.
Run runIn(const fs::path& cwd, const std::string& command) { return shhim::test::runCommand(command, cwd); }

// The whitespace-separated cells of the first line starting with `prefix`.
std::vector<std::string> rowOf(const std::string& text, const std::string& prefix)
{
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind(prefix, 0) != 0)
            continue;
        std::istringstream words(line);
        std::vector<std::string> cells;
        for (std::string word; words >> word;)
            cells.push_back(word);
        return cells;
    }
    return {};
}

Run shhimctl(const std::string& args) { return runIn(kSource, "'" + std::string(SHHIMCTL_PATH) + "' " + args); }

}  // namespace

TEST_CASE("policy check: a valid file prints one summary line and exits 0, with no agent anywhere")
{
    const auto r = shhimctl("--socket /nonexistent/shhimd.sock policy check policy/demo.yaml");
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    const auto expected = shhim::core::checkPolicyText(slurp(kSource / "policy/demo.yaml"));
    REQUIRE(expected.policy);
    CHECK(r.out == "policy/demo.yaml: ok: 2 services, 0 rules, 7 classes, 0 interfaces (version " +
                       expected.policy->version.substr(0, 12) + ")\n");
}

TEST_CASE("policy check: an invalid file prints every error as FILE:LINE:COL: PATH: message and exits 2")
{
    const auto r = shhimctl("policy check tests/data/policy/many-errors.yaml");
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());
    std::istringstream lines(r.err);
    std::string line;
    int errors = 0;
    while (std::getline(lines, line) && line.find(": 7 errors") == std::string::npos) {
        CAPTURE(line);
        CHECK(line.rfind("tests/data/policy/many-errors.yaml:", 0) == 0);
        ++errors;
    }
    CHECK(errors == 7);
    CHECK(line == "tests/data/policy/many-errors.yaml: 7 errors");
    CHECK(r.err.find("tests/data/policy/many-errors.yaml:11:35: services[0].backends.primary[1]: expected "
                     "ADDRESS:PORT") != std::string::npos);
}

TEST_CASE("policy check: an unreadable file is named with the reason, exit 2")
{
    auto r = shhimctl("policy check policy/no-such.yaml");
    CHECK(r.exit_code == 2);
    CHECK(r.err == "shhimctl: cannot read policy/no-such.yaml: No such file or directory\n");
    r = shhimctl("policy check policy");
    CHECK(r.exit_code == 2);
    CHECK(r.err == "shhimctl: cannot read policy: Is a directory\n");
    r = shhimctl("policy check");
    CHECK(r.exit_code == 2);  // usage: FILE is required
}

TEST_CASE("policy show and apply need the agent: one line, exit 1; apply of an unreadable file: exit 2")
{
    ScratchDir dir;
    const std::string socket = (dir.path / "missing.sock").string();
    for (const char* command : {"policy show", "policy show -o json", "policy apply policy/demo.yaml"}) {
        CAPTURE(command);
        const auto r = shhimctl("--socket '" + socket + "' " + command);
        CHECK(r.exit_code == 1);
        CHECK(r.err == "shhimctl: no agent running (cannot reach " + socket + ")\n");
    }
    const auto r = shhimctl("--socket '" + socket + "' policy apply policy/no-such.yaml");
    CHECK(r.exit_code == 2);
    CHECK(r.err == "shhimctl: cannot read policy/no-such.yaml: No such file or directory\n");
}

TEST_CASE("policy --help explains each subcommand with an example")
{
    for (const char* command : {"policy check --help", "policy apply --help", "policy show --help"}) {
        CAPTURE(command);
        const auto r = shhimctl(command);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("Examples:") != std::string::npos);
    }
}

TEST_CASE("status shows the policy file and the short version")
{
    shhim::v1::Status status;
    status.set_policy_file("policy/demo.yaml");
    status.set_policy_version("3f2a9c01b7e4d5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0");
    CHECK(shhim::cli::formatStatus(status).find("policy: policy/demo.yaml (version 3f2a9c01b7e4)\n") !=
          std::string::npos);
    status.clear_policy_version();
    status.clear_policy_file();
    CHECK(shhim::cli::formatStatus(status).find("policy: -\n") != std::string::npos);
}

TEST_CASE("policy show: source, full version, services, rules, resolved classes, interfaces, stress")
{
    const auto check = shhim::core::checkPolicyText(slurp(kSource / "policy/hospital-gateway.yaml"));
    REQUIRE(check.policy);
    shhim::v1::PolicyState state;
    state.set_applied(true);
    state.set_version(check.policy->version);
    state.set_file("policy/hospital-gateway.yaml");
    state.set_source("shhimctl policy apply");
    state.set_applied_unix_ns(1'763'932'323'123'000'000);
    state.set_summary(shhim::core::policySummary(*check.policy));
    *state.mutable_policy() = check.policy->policy;
    for (const auto& c : check.policy->classes)
        *state.add_classes() = c;

    const std::string text = shhim::cli::formatPolicyState(state);
    CAPTURE(text);
    CHECK(text.find("policy hospital-gateway from policy/hospital-gateway.yaml\n") == 0);
    CHECK(text.find("version " + check.policy->version + "\n") != std::string::npos);
    CHECK(text.find("applied 2025-11-23T21:12:03.123Z by shhimctl policy apply\n") != std::string::npos);
    CHECK(text.find("7 services, 6 rules, 8 classes, 2 interfaces; other traffic: administrative\n") !=
          std::string::npos);
    CHECK(text.find("stress mode: on above 90.0% of capacity, off below 75.0%") != std::string::npos);
    // A service row: enum by its file name, pools, thresholds.
    CHECK(rowOf(text, "pharmacy ") ==
          std::vector<std::string>{"pharmacy", "[2001:db8:10::40]:8080", "http", "clinical", "[2001:db8:20::41]:8080",
                                   "[2001:db8:20::42]:8080", "-", "p99", "1000.0", "ms,", "errors", "2.0%"});
    // Rules in order; ports as a range or a single port.
    CHECK(rowOf(text, "3 ") ==
          std::vector<std::string>{"3", "telemedicine-media", "udp", "-", "16384-32767", "clinical-realtime"});
    CHECK(rowOf(text, "4 ")[4] == "104");
    // Classes with DSCP names, the override applied, the added class marked.
    CHECK(rowOf(text, "life-critical ") ==
          std::vector<std::string>{"life-critical", "EF", "(46)", "6", "never", "monitor", "alarms,", "nurse",
                                   "call,", "code", "alerts"});
    CHECK(rowOf(text, "bulk ")[1] == "CS1");
    CHECK(rowOf(text, "research (added) ")[2] == "CS1");
    CHECK(rowOf(text, "ens1f1 ") ==
          std::vector<std::string>{"ens1f1", "servers", "25000", "Mbit/s", "data", "center", "uplink"});

    CHECK(shhim::cli::formatPolicyState(shhim::v1::PolicyState{}).find("no policy applied") == 0);
    // JSON is the protobuf JSON mapping of the same message.
    CHECK(shhim::cli::toJson(state).find("\"source\": \"shhimctl policy apply\"") != std::string::npos);
}

TEST_CASE("DSCP names")
{
    CHECK(shhim::cli::dscpName(46) == "EF");
    CHECK(shhim::cli::dscpName(40) == "CS5");
    CHECK(shhim::cli::dscpName(34) == "AF41");
    CHECK(shhim::cli::dscpName(18) == "AF21");
    CHECK(shhim::cli::dscpName(10) == "AF11");
    CHECK(shhim::cli::dscpName(0) == "DF");
    CHECK(shhim::cli::dscpName(1) == "LE");
    CHECK(shhim::cli::dscpName(48) == "CS6");
    CHECK(shhim::cli::dscpName(3) == "3");
}

TEST_CASE("shhimd --policy with an invalid file prints every error and exits 2 before touching the kernel")
{
    if (!fs::exists(SHHIMD_PATH)) {
        MESSAGE("shhimd not built (" SHHIMD_PATH "); build target shhimd to run this check");
        return;
    }
    ScratchDir dir;
    // A private socket and pin root, no cgroup hook, no tracepoints: were
    // the policy accepted by mistake, nothing shared would be touched, and
    // `timeout` ends the agent.
    const std::string args = " --policy tests/data/policy/many-errors.yaml --socket '" +
                             (dir.path / "shhimd.sock").string() + "' --pin-root '" + (dir.path / "pins").string() +
                             "' --cgroup none --no-tracepoints";
    const auto r = runIn(kSource, "timeout 20 '" + std::string(SHHIMD_PATH) + "'" + args);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("tests/data/policy/many-errors.yaml:11:35: services[0].backends.primary[1]") !=
          std::string::npos);
    CHECK(r.err.find("tests/data/policy/many-errors.yaml:26:21: stress.exit_utilization") != std::string::npos);
    CHECK(r.err.find("is invalid (7 errors): not starting") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path / "shhimd.sock"));
    CHECK_FALSE(fs::exists(dir.path / "pins"));
}
