#include "trace_files.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace shhim::tools {
namespace {

bool isTraceFile(const std::filesystem::path& p)
{
    const std::string name = p.filename().string();
    const auto endsWith = [&](std::string_view tail) {
        return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    return endsWith(".jsonl") || endsWith(".jsonl.gz");
}

}  // namespace

std::vector<std::string> expandTraceArguments(const std::vector<std::string>& arguments)
{
    namespace fs = std::filesystem;
    std::vector<std::string> files;
    for (const auto& argument : arguments) {
        std::error_code error;
        const auto status = fs::status(argument, error);
        if (error || !fs::exists(status))
            throw std::runtime_error(argument + ": no such file or directory");
        if (!fs::is_directory(status)) {
            files.push_back(argument);
            continue;
        }
        std::vector<std::string> found;
        for (const auto& entry : fs::directory_iterator(argument))
            if (entry.is_regular_file() && isTraceFile(entry.path()))
                found.push_back(entry.path().string());
        if (found.empty())
            throw std::runtime_error(argument + ": a directory without *.jsonl or *.jsonl.gz files");
        std::sort(found.begin(), found.end());
        files.insert(files.end(), found.begin(), found.end());
    }
    return files;
}

}  // namespace shhim::tools
