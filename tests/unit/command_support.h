// Running the real binaries (shhimctl, shhimd) from unit tests, and the
// scratch directories they write into. One copy for every test file.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace shhim::test {

struct CommandRun {
    int exit_code = 0;
    std::string out;
    std::string err;
};

inline std::string slurp(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

// A scratch directory under the system temp directory, removed at scope exit.
struct ScratchDir {
    std::filesystem::path path;
    explicit ScratchDir(const std::string& prefix = "shhim-test")
    {
        std::string templ = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        path = templ;
    }
    ~ScratchDir() { std::filesystem::remove_all(path); }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
};

// Runs a shell command line (already quoted) with no stdin, in `cwd` if
// given; its exit code, stdout and stderr.
inline CommandRun runCommand(const std::string& command, const std::filesystem::path& cwd = {})
{
    ScratchDir dir("shhim-command");
    const auto out = dir.path / "out", err = dir.path / "err";
    std::string line = cwd.empty() ? std::string() : "cd '" + cwd.string() + "' && ";
    line += command + " >'" + out.string() + "' 2>'" + err.string() + "' </dev/null";
    const int status = std::system(line.c_str());
    REQUIRE(status != -1);
    REQUIRE(WIFEXITED(status));
    return {WEXITSTATUS(status), slurp(out), slurp(err)};
}

}  // namespace shhim::test
