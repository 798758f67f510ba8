#include "support/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace shhim::tools {

std::string json_quote(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (const char c : text) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
                out += escaped;
            } else {
                out += c;
            }
        }
    }
    out += '"';
    return out;
}

std::string json_number(double value)
{
    if (!std::isfinite(value))
        return "null";
    char text[64];
    const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
    return ec == std::errc{} ? std::string(text, end) : "null";
}

namespace {

// Recursive descent over one flat object; `pos` always indexes `text`.
class FlatObjectParser {
public:
    FlatObjectParser(std::string_view text, std::string& error) : text_(text), error_(error) {}

    std::optional<std::vector<std::pair<std::string, std::string>>> parse()
    {
        std::vector<std::pair<std::string, std::string>> members;
        skip_space();
        if (!expect('{'))
            return std::nullopt;
        skip_space();
        if (peek() == '}') {
            ++pos_;
            return finish(std::move(members));
        }
        for (;;) {
            skip_space();
            std::string key, value;
            if (!string_literal(key))
                return std::nullopt;
            skip_space();
            if (!expect(':'))
                return std::nullopt;
            skip_space();
            if (!scalar(value))
                return std::nullopt;
            members.emplace_back(std::move(key), std::move(value));
            skip_space();
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (!expect('}'))
                return std::nullopt;
            return finish(std::move(members));
        }
    }

private:
    std::optional<std::vector<std::pair<std::string, std::string>>> finish(
        std::vector<std::pair<std::string, std::string>> members)
    {
        skip_space();
        if (pos_ != text_.size())
            return fail("trailing characters after the object");
        return members;
    }

    std::nullopt_t fail(const std::string& why)
    {
        error_ = "JSON body at offset " + std::to_string(pos_) + ": " + why;
        return std::nullopt;
    }

    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

    void skip_space()
    {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
                                       text_[pos_] == '\r'))
            ++pos_;
    }

    bool expect(char c)
    {
        if (peek() != c) {
            fail(std::string("expected '") + c + "'");
            return false;
        }
        ++pos_;
        return true;
    }

    bool string_literal(std::string& out)
    {
        if (!expect('"'))
            return false;
        while (pos_ < text_.size()) {
            const char c = text_[pos_++];
            if (c == '"')
                return true;
            if (c != '\\') {
                out += c;
                continue;
            }
            const char escaped = peek();
            ++pos_;
            switch (escaped) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            default:
                // \uXXXX and friends never occur in fault settings; refuse rather than guess.
                fail(std::string("unsupported escape '\\") + escaped + "'");
                return false;
            }
        }
        fail("unterminated string");
        return false;
    }

    bool scalar(std::string& out)
    {
        const char c = peek();
        if (c == '"')
            return string_literal(out);
        if (c == '{' || c == '[') {
            fail("nested objects and arrays are not accepted; values are strings, numbers or booleans");
            return false;
        }
        for (const std::string_view word : {"true", "false", "null"}) {
            if (text_.substr(pos_, word.size()) == word) {
                pos_ += word.size();
                out = word == "null" ? "" : std::string(word);
                return true;
            }
        }
        const auto start = pos_;
        while (pos_ < text_.size() && std::string_view("+-0123456789.eE").find(text_[pos_]) != std::string_view::npos)
            ++pos_;
        if (pos_ == start) {
            fail("expected a string, number, true, false or null");
            return false;
        }
        out = std::string(text_.substr(start, pos_ - start));
        return true;
    }

    std::string_view text_;
    std::string& error_;
    std::size_t pos_ = 0;
};

} // namespace

std::optional<std::vector<std::pair<std::string, std::string>>> parse_flat_json_object(std::string_view text,
                                                                                       std::string& error)
{
    return FlatObjectParser(text, error).parse();
}

} // namespace shhim::tools
