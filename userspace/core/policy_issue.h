// A problem found in a policy file, where it is, and where each field of
// the file was written (so that checks made after parsing can still name a
// line).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace shhim::core {

// 1-based, as editors count; 0 = unknown.
struct SourcePosition {
    int line = 0;
    int column = 0;

    friend bool operator==(const SourcePosition&, const SourcePosition&) = default;
};

struct PolicyIssue {
    std::string path;  // "services[1].backends.primary[0]"; "" = the file as a whole
    SourcePosition where;
    std::string message;

    friend bool operator==(const PolicyIssue&, const PolicyIssue&) = default;
};

// Field paths: "services" + "[1]" + ".backends" ...
std::string fieldPath(std::string_view parent, std::string_view field);
std::string elementPath(std::string_view parent, std::size_t index);
// Whether `path` is `ancestor` or lies below it ("" is above everything).
bool isWithin(std::string_view path, std::string_view ancestor);

// Position of every field path the YAML gave.
class SourceMap {
public:
    void record(const std::string& path, SourcePosition where);
    // The position of `path`, else of its nearest recorded ancestor (a
    // field that is missing is reported where its parent is), else {}.
    SourcePosition find(std::string_view path) const;
    // Whether the file gave exactly this path.
    bool given(std::string_view path) const;

private:
    std::map<std::string, SourcePosition, std::less<>> positions_;
};

// By line, then column, then path: the order a reader fixes them in.
void sortIssues(std::vector<PolicyIssue>& issues);

// "FILE:LINE:COL: PATH: message" (":LINE:COL" omitted when unknown,
// "PATH: " when the issue is about the whole file).
std::string formatIssue(std::string_view file, const PolicyIssue& issue);

}  // namespace shhim::core
