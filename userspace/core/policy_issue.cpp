#include "core/policy_issue.h"

#include <algorithm>
#include <tuple>

namespace shhim::core {
namespace {

// "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> "".
std::string_view parentPath(std::string_view path)
{
    const std::size_t cut = path.find_last_of(".[");
    return cut == std::string_view::npos ? std::string_view() : path.substr(0, cut);
}

}  // namespace

std::string fieldPath(std::string_view parent, std::string_view field)
{
    if (parent.empty())
        return std::string(field);
    std::string path(parent);
    path += '.';
    path += field;
    return path;
}

std::string elementPath(std::string_view parent, std::size_t index)
{
    return std::string(parent) + "[" + std::to_string(index) + "]";
}

bool isWithin(std::string_view path, std::string_view ancestor)
{
    if (ancestor.empty() || path == ancestor)
        return true;
    return path.size() > ancestor.size() && path.substr(0, ancestor.size()) == ancestor &&
           (path[ancestor.size()] == '.' || path[ancestor.size()] == '[');
}

void SourceMap::record(const std::string& path, SourcePosition where) { positions_[path] = where; }

SourcePosition SourceMap::find(std::string_view path) const
{
    for (;;) {
        if (const auto it = positions_.find(path); it != positions_.end())
            return it->second;
        if (path.empty())
            return {};
        path = parentPath(path);
    }
}

bool SourceMap::given(std::string_view path) const { return positions_.find(path) != positions_.end(); }

void sortIssues(std::vector<PolicyIssue>& issues)
{
    std::stable_sort(issues.begin(), issues.end(), [](const PolicyIssue& a, const PolicyIssue& b) {
        return std::tie(a.where.line, a.where.column, a.path) < std::tie(b.where.line, b.where.column, b.path);
    });
}

std::string formatIssue(std::string_view file, const PolicyIssue& issue)
{
    std::string line(file);
    if (issue.where.line > 0)
        line += ":" + std::to_string(issue.where.line) + ":" + std::to_string(issue.where.column);
    line += ": ";
    if (!issue.path.empty())
        line += issue.path + ": ";
    line += issue.message;
    return line;
}

}  // namespace shhim::core
