// json.hpp - the little JSON both tools need: escaping for output, and flat objects for input.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shhim::tools {

// A JSON string literal, quotes included.
std::string json_quote(std::string_view text);
// A JSON number for a double (shortest round-trip form; non-finite values become null).
std::string json_number(double value);

// Parses one flat JSON object {"key": scalar, ...}. Scalars come back as text: strings
// unescaped, numbers verbatim, true/false as "true"/"false", null as "". Nested objects
// and arrays are refused. On failure returns nullopt and sets `error` (with the offset).
std::optional<std::vector<std::pair<std::string, std::string>>> parse_flat_json_object(std::string_view text,
                                                                                       std::string& error);

} // namespace shhim::tools
