#include "support/http_wire.hpp"

#include <algorithm>
#include <charconv>

namespace shhim::tools {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

std::string_view trim(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    return text;
}

// Splits a head into its first line and parsed header fields.
bool split_head(std::string_view head, std::string_view& first_line, HttpHeaders& headers, std::string& error)
{
    auto line_end = head.find("\r\n");
    first_line = head.substr(0, line_end);
    while (line_end != std::string_view::npos) {
        head.remove_prefix(line_end + 2);
        line_end = head.find("\r\n");
        const auto line = head.substr(0, line_end);
        if (line.empty())
            break;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            error = "header line without a name: '" + std::string(line.substr(0, 80)) + "'";
            return false;
        }
        headers.push_back({std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1)))});
    }
    return true;
}

int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool percent_decode(std::string_view text, std::string& out)
{
    out.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out += ' ';
        } else if (text[i] == '%') {
            if (i + 2 >= text.size())
                return false;
            const int high = hex_value(text[i + 1]);
            const int low = hex_value(text[i + 2]);
            if (high < 0 || low < 0)
                return false;
            out += static_cast<char>(high * 16 + low);
            i += 2;
        } else {
            out += text[i];
        }
    }
    return true;
}

} // namespace

std::optional<std::string_view> find_header(const HttpHeaders& headers, std::string_view name)
{
    for (const auto& header : headers)
        if (iequals(header.name, name))
            return std::string_view(header.value);
    return std::nullopt;
}

bool header_has_token(std::string_view value, std::string_view token)
{
    while (!value.empty()) {
        const auto comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token))
            return true;
        if (comma == std::string_view::npos)
            break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

std::optional<std::size_t> find_head_end(std::string_view buffer)
{
    const auto blank = buffer.find("\r\n\r\n");
    if (blank == std::string_view::npos)
        return std::nullopt;
    return blank + 4;
}

std::optional<HttpRequestHead> parse_request_head(std::string_view head, std::string& error)
{
    HttpRequestHead request;
    std::string_view line;
    if (!split_head(head, line, request.headers, error))
        return std::nullopt;
    const auto first_space = line.find(' ');
    const auto last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space) {
        error = "request line is not 'METHOD TARGET VERSION': '" + std::string(line.substr(0, 80)) + "'";
        return std::nullopt;
    }
    request.method = std::string(line.substr(0, first_space));
    request.target = std::string(line.substr(first_space + 1, last_space - first_space - 1));
    request.version = std::string(line.substr(last_space + 1));
    if (request.version != "HTTP/1.1" && request.version != "HTTP/1.0") {
        error = "unsupported version '" + request.version.substr(0, 20) + "'";
        return std::nullopt;
    }
    if (request.target.empty() || request.target.front() != '/') {
        error = "request target '" + request.target.substr(0, 80) + "' is not an absolute path";
        return std::nullopt;
    }
    return request;
}

std::optional<HttpResponseHead> parse_response_head(std::string_view head, std::string& error)
{
    HttpResponseHead response;
    std::string_view line;
    if (!split_head(head, line, response.headers, error))
        return std::nullopt;
    // "HTTP/1.1 200 OK" (the reason phrase may be empty).
    if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ') {
        error = "status line is not 'HTTP/1.x NNN ...': '" + std::string(line.substr(0, 80)) + "'";
        return std::nullopt;
    }
    response.version = std::string(line.substr(0, 8));
    const auto code = line.substr(9, 3);
    const auto [ptr, ec] = std::from_chars(code.data(), code.data() + code.size(), response.status);
    if (ec != std::errc{} || ptr != code.data() + code.size() || response.status < 100 || response.status > 599) {
        error = "status code '" + std::string(code) + "' is not a number from 100 to 599";
        return std::nullopt;
    }
    return response;
}

std::optional<std::size_t> content_length(const HttpHeaders& headers, std::string& error)
{
    const auto value = find_header(headers, "Content-Length");
    if (!value)
        return std::nullopt;
    std::size_t length = 0;
    const auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), length);
    if (value->empty() || ec != std::errc{} || ptr != value->data() + value->size()) {
        error = "Content-Length '" + std::string(value->substr(0, 40)) + "' is not a number";
        return std::nullopt;
    }
    return length;
}

bool keeps_alive(std::string_view version, const HttpHeaders& headers)
{
    const auto connection = find_header(headers, "Connection");
    if (version == "HTTP/1.0")
        return connection && header_has_token(*connection, "keep-alive");
    return !(connection && header_has_token(*connection, "close"));
}

std::string_view reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

bool parse_query(std::string_view query, std::vector<std::pair<std::string, std::string>>& out)
{
    while (!query.empty()) {
        const auto amp = query.find('&');
        const auto item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (item.empty())
            continue;
        const auto eq = item.find('=');
        std::string key, value;
        if (!percent_decode(item.substr(0, eq), key))
            return false;
        if (eq != std::string_view::npos && !percent_decode(item.substr(eq + 1), value))
            return false;
        out.emplace_back(std::move(key), std::move(value));
    }
    return true;
}

} // namespace shhim::tools
