// http_wire.hpp - just enough HTTP/1.1 message syntax for the test service and the load generator.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shhim::tools {

struct HttpHeader {
    std::string name;
    std::string value;
};
using HttpHeaders = std::vector<HttpHeader>;

// Case-insensitive header lookup (first match).
std::optional<std::string_view> find_header(const HttpHeaders& headers, std::string_view name);
// True when a comma-separated header value contains `token` (case-insensitive), e.g. "close".
bool header_has_token(std::string_view value, std::string_view token);

// Offset just past the blank line ending the head, if the buffer holds a whole head.
std::optional<std::size_t> find_head_end(std::string_view buffer);

struct HttpRequestHead {
    std::string method;
    std::string target; // path plus optional "?query"
    std::string version; // "HTTP/1.1"
    HttpHeaders headers;
};

struct HttpResponseHead {
    std::string version;
    int status = 0;
    HttpHeaders headers;
};

// Parse a head (without its final blank line is fine). On failure return nullopt and set `error`.
std::optional<HttpRequestHead> parse_request_head(std::string_view head, std::string& error);
std::optional<HttpResponseHead> parse_response_head(std::string_view head, std::string& error);

// Content-Length as a number; nullopt when absent; sets `error` when present but invalid.
std::optional<std::size_t> content_length(const HttpHeaders& headers, std::string& error);

// Whether the connection stays open after this message (HTTP/1.1 default yes, 1.0 default no).
bool keeps_alive(std::string_view version, const HttpHeaders& headers);

std::string_view reason_phrase(int status);

// Splits "a=1&b=x%2Cy" into decoded pairs ('+' is a space). Returns false on bad %-escapes.
bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out);

} // namespace shhim::tools
