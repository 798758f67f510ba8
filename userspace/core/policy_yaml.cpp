#include "core/policy_yaml.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "policy.pb.h"

namespace shhim::core {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

SourcePosition positionOf(const YAML::Mark& mark)
{
    // yaml-cpp counts from 0 and marks "no position" with -1.
    if (mark.line < 0)
        return {};
    return {mark.line + 1, mark.column + 1};
}

const char* kindOf(const YAML::Node& node)
{
    switch (node.Type()) {
    case YAML::NodeType::Scalar:
        return "a scalar";
    case YAML::NodeType::Sequence:
        return "a sequence";
    case YAML::NodeType::Map:
        return "a mapping";
    default:
        return "nothing";
    }
}

// yaml-cpp tags an untagged plain scalar "?"; quoted ones "!", explicit
// tags (!!str) keep their name. Only plain scalars are numbers or booleans.
bool isPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "?"; }

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// "AppProtocol" -> "APP_PROTOCOL", "HTTPRoute" -> "HTTP_ROUTE".
std::string upperSnake(std::string_view camel)
{
    std::string out;
    for (std::size_t i = 0; i < camel.size(); ++i) {
        const auto c = static_cast<unsigned char>(camel[i]);
        if (i > 0 && std::isupper(c)) {
            const auto prev = static_cast<unsigned char>(camel[i - 1]);
            const bool next_lower = i + 1 < camel.size() && std::islower(static_cast<unsigned char>(camel[i + 1]));
            if (std::islower(prev) || std::isdigit(prev) || (std::isupper(prev) && next_lower))
                out += '_';
        }
        out += static_cast<char>(std::toupper(c));
    }
    return out;
}

bool isUnspecified(const EnumValueDescriptor& value)
{
    const std::string& name = value.name();
    constexpr std::string_view suffix = "UNSPECIFIED";
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string acceptedEnumNames(const EnumDescriptor& type)
{
    std::string names;
    for (int i = 0; i < type.value_count(); ++i) {
        if (isUnspecified(*type.value(i)))
            continue;
        names += (names.empty() ? "" : ", ") + yamlEnumName(*type.value(i));
    }
    return names;
}

const EnumValueDescriptor* findEnumValue(const EnumDescriptor& type, std::string_view name)
{
    for (int i = 0; i < type.value_count(); ++i) {
        const EnumValueDescriptor* value = type.value(i);
        if (!isUnspecified(*value) && yamlEnumName(*value) == name)
            return value;
    }
    return nullptr;
}

std::size_t editDistance(std::string_view a, std::string_view b)
{
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
            diagonal = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
        }
    }
    return row[b.size()];
}

// "unknown field 'adress' (did you mean 'address'?; Service has: name, ...)"
std::string unknownFieldMessage(const Descriptor& type, std::string_view key)
{
    std::string names;
    const FieldDescriptor* closest = nullptr;
    std::size_t closest_distance = 3;  // suggest only near misses (typos)
    for (int i = 0; i < type.field_count(); ++i) {
        const FieldDescriptor* field = type.field(i);
        names += (names.empty() ? "" : ", ") + field->name();
        const std::size_t distance = editDistance(key, field->name());
        if (distance < closest_distance) {
            closest = field;
            closest_distance = distance;
        }
    }
    std::string message = "unknown field " + quoted(key) + " (";
    if (closest)
        message += "did you mean " + quoted(closest->name()) + "? ";
    return message + type.name() + " has: " + names + ")";
}

struct ParsedInteger {
    bool negative = false;
    std::uint64_t magnitude = 0;
};

// Decimal only: "1e3", "0x10", "1.0" are not integers.
std::optional<ParsedInteger> parseInteger(std::string_view text, bool& overflow)
{
    ParsedInteger parsed;
    if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
        parsed.negative = text.front() == '-';
        text.remove_prefix(1);
    }
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text.front())))
        return std::nullopt;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), parsed.magnitude);
    if (end != text.data() + text.size())
        return std::nullopt;
    overflow = error == std::errc::result_out_of_range;
    return parsed;
}

// Writes one value into a singular or repeated field.
class FieldWriter {
public:
    FieldWriter(Message& message, const FieldDescriptor& field)
        : message_(message), field_(field), reflection_(*message.GetReflection())
    {
    }

    void setString(std::string value)
    {
        if (field_.is_repeated())
            reflection_.AddString(&message_, &field_, std::move(value));
        else
            reflection_.SetString(&message_, &field_, std::move(value));
    }
    void setBool(bool value)
    {
        field_.is_repeated() ? reflection_.AddBool(&message_, &field_, value)
                             : reflection_.SetBool(&message_, &field_, value);
    }
    void setEnum(const EnumValueDescriptor& value)
    {
        field_.is_repeated() ? reflection_.AddEnum(&message_, &field_, &value)
                             : reflection_.SetEnum(&message_, &field_, &value);
    }
    void setDouble(double value)
    {
        if (field_.cpp_type() == FieldDescriptor::CPPTYPE_FLOAT)
            field_.is_repeated() ? reflection_.AddFloat(&message_, &field_, static_cast<float>(value))
                                 : reflection_.SetFloat(&message_, &field_, static_cast<float>(value));
        else
            field_.is_repeated() ? reflection_.AddDouble(&message_, &field_, value)
                                 : reflection_.SetDouble(&message_, &field_, value);
    }
    // The value has been checked against the field's own range.
    void setInteger(ParsedInteger value)
    {
        const auto signed_value = value.negative ? -static_cast<std::int64_t>(value.magnitude - 1) - 1
                                                 : static_cast<std::int64_t>(value.magnitude);
        switch (field_.cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
            field_.is_repeated() ? reflection_.AddInt32(&message_, &field_, static_cast<std::int32_t>(signed_value))
                                 : reflection_.SetInt32(&message_, &field_, static_cast<std::int32_t>(signed_value));
            break;
        case FieldDescriptor::CPPTYPE_INT64:
            field_.is_repeated() ? reflection_.AddInt64(&message_, &field_, signed_value)
                                 : reflection_.SetInt64(&message_, &field_, signed_value);
            break;
        case FieldDescriptor::CPPTYPE_UINT32:
            field_.is_repeated()
                ? reflection_.AddUInt32(&message_, &field_, static_cast<std::uint32_t>(value.magnitude))
                : reflection_.SetUInt32(&message_, &field_, static_cast<std::uint32_t>(value.magnitude));
            break;
        default:
            field_.is_repeated() ? reflection_.AddUInt64(&message_, &field_, value.magnitude)
                                 : reflection_.SetUInt64(&message_, &field_, value.magnitude);
            break;
        }
    }

private:
    Message& message_;
    const FieldDescriptor& field_;
    const Reflection& reflection_;
};

struct IntegerBounds {
    bool is_signed;
    std::uint64_t max_positive;  // largest value
    std::uint64_t max_negative;  // largest magnitude below zero
};

IntegerBounds boundsOf(const FieldDescriptor& field)
{
    switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
        return {true, std::numeric_limits<std::int32_t>::max(), std::uint64_t(1) << 31};
    case FieldDescriptor::CPPTYPE_INT64:
        return {true, std::numeric_limits<std::int64_t>::max(), std::uint64_t(1) << 63};
    case FieldDescriptor::CPPTYPE_UINT32:
        return {false, std::numeric_limits<std::uint32_t>::max(), 0};
    default:
        return {false, std::numeric_limits<std::uint64_t>::max(), 0};
    }
}

std::string rangeText(const FieldDescriptor& field, const IntegerBounds& bounds)
{
    const std::string low = bounds.is_signed ? "-" + std::to_string(bounds.max_negative) : "0";
    return std::string(field.cpp_type_name()) + " (" + low + ".." + std::to_string(bounds.max_positive) + ")";
}

bool isIntegerField(const FieldDescriptor& field)
{
    switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
        return true;
    default:
        return false;
    }
}

// Reads YAML into messages, collecting every problem on the way.
class Mapper {
public:
    explicit Mapper(YamlMapping& result) : result_(result) {}

    // `node` should be a mapping; null is an empty message.
    void mapMessage(const YAML::Node& node, Message& message, const std::string& path, SourcePosition where)
    {
        const Descriptor& type = *message.GetDescriptor();
        if (!node.IsNull() && !node.IsMap()) {
            issue(path, where, "expected a mapping of " + type.name() + " fields, got " + kindOf(node));
            return;
        }
        std::map<int, SourcePosition> given;  // field number -> where it was first given
        if (node.IsMap()) {
            for (auto it = node.begin(); it != node.end(); ++it)
                mapEntry(it->first, it->second, message, path, given);
        }
        reportMissingRequired(type, path, where, given);
    }

private:
    void issue(const std::string& path, SourcePosition where, std::string message)
    {
        result_.issues.push_back({path, where, std::move(message)});
    }

    void mapEntry(const YAML::Node& key, const YAML::Node& value, Message& message, const std::string& parent,
                  std::map<int, SourcePosition>& given)
    {
        const SourcePosition key_at = positionOf(key.Mark());
        if (!key.IsScalar()) {
            issue(parent, key_at, std::string("a key must be a field name, got ") + kindOf(key));
            return;
        }
        const Descriptor& type = *message.GetDescriptor();
        const FieldDescriptor* field = type.FindFieldByName(key.Scalar());
        if (!field) {
            issue(fieldPath(parent, key.Scalar()), key_at, unknownFieldMessage(type, key.Scalar()));
            return;
        }
        const std::string path = fieldPath(parent, field->name());
        if (const auto first = given.find(field->number()); first != given.end()) {
            issue(path, key_at,
                  "given twice (first on line " + std::to_string(first->second.line) + "); give each field once");
            return;
        }
        if (const auto* oneof = field->real_containing_oneof()) {
            for (int i = 0; i < oneof->field_count(); ++i) {
                if (given.contains(oneof->field(i)->number())) {
                    issue(path, key_at,
                          "cannot be given together with " + quoted(oneof->field(i)->name()) + " (one of " +
                              oneof->name() + ")");
                    return;
                }
            }
        }
        given.emplace(field->number(), key_at);
        // Containers and empty values are placed at their key; a scalar at
        // its own text.
        const SourcePosition value_at = value.IsScalar() ? positionOf(value.Mark()) : key_at;
        result_.sources.record(path, value_at);
        mapField(value, message, *field, path, value_at);
    }

    void mapField(const YAML::Node& value, Message& message, const FieldDescriptor& field, const std::string& path,
                  SourcePosition where)
    {
        if (field.is_map()) {
            // The schema is kept free of proto maps (their serialization
            // order is not canonical, and the version hashes it).
            issue(path, where, "map fields are not supported in policy files (schema error)");
            return;
        }
        if (field.is_repeated()) {
            mapSequence(value, message, field, path, where);
            return;
        }
        if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
            Message* child = message.GetReflection()->MutableMessage(&message, &field);
            mapMessage(value, *child, path, where);
            return;
        }
        mapScalar(value, message, field, path, where);
    }

    void mapSequence(const YAML::Node& value, Message& message, const FieldDescriptor& field,
                     const std::string& path, SourcePosition where)
    {
        if (value.IsNull())
            return;  // `fallback:` with nothing after it: an empty list
        if (!value.IsSequence()) {
            issue(path, where, std::string("expected a sequence (a list), got ") + kindOf(value));
            return;
        }
        for (std::size_t i = 0; i < value.size(); ++i) {
            const YAML::Node element = value[i];
            const std::string element_path = elementPath(path, i);
            const SourcePosition element_at = element.IsNull() ? where : positionOf(element.Mark());
            result_.sources.record(element_path, element_at);
            if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
                Message* child = message.GetReflection()->AddMessage(&message, &field);
                mapMessage(element, *child, element_path, element_at);
            } else {
                mapScalar(element, message, field, element_path, element_at);
            }
        }
    }

    void mapScalar(const YAML::Node& value, Message& message, const FieldDescriptor& field, const std::string& path,
                   SourcePosition where)
    {
        if (value.IsNull()) {
            issue(path, where, "has no value (expected " + expectedText(field) + ")");
            return;
        }
        if (!value.IsScalar()) {
            issue(path, where, "expected " + expectedText(field) + ", got " + kindOf(value));
            return;
        }
        if (std::string problem = writeScalar(value, FieldWriter(message, field), field); !problem.empty())
            issue(path, where, std::move(problem));
    }

    static std::string expectedText(const FieldDescriptor& field)
    {
        switch (field.cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING:
            return "a string";
        case FieldDescriptor::CPPTYPE_BOOL:
            return "true or false";
        case FieldDescriptor::CPPTYPE_ENUM:
            return "one of " + acceptedEnumNames(*field.enum_type());
        case FieldDescriptor::CPPTYPE_DOUBLE:
        case FieldDescriptor::CPPTYPE_FLOAT:
            return "a number";
        default:
            return "an integer (" + std::string(field.cpp_type_name()) + ")";
        }
    }

    // "" when written, else what is wrong with the text.
    static std::string writeScalar(const YAML::Node& value, FieldWriter writer, const FieldDescriptor& field)
    {
        const std::string& text = value.Scalar();
        const auto cpp_type = field.cpp_type();
        if (cpp_type == FieldDescriptor::CPPTYPE_STRING) {
            writer.setString(text);
            return "";
        }
        if (cpp_type == FieldDescriptor::CPPTYPE_ENUM) {
            const EnumValueDescriptor* found = findEnumValue(*field.enum_type(), text);
            if (!found)
                return "unknown value " + quoted(text) + " (expected one of " +
                       acceptedEnumNames(*field.enum_type()) + ")";
            writer.setEnum(*found);
            return "";
        }
        // Numbers and booleans: a quoted "8080" is a string, which the
        // strict reading refuses rather than guesses.
        if (!isPlainScalar(value))
            return "expected " + expectedText(field) + ", got the string " + quoted(text) +
                   " (write numbers and booleans without quotes)";
        if (cpp_type == FieldDescriptor::CPPTYPE_BOOL)
            return writeBool(text, writer);
        if (cpp_type == FieldDescriptor::CPPTYPE_DOUBLE || cpp_type == FieldDescriptor::CPPTYPE_FLOAT)
            return writeNumber(text, writer);
        if (isIntegerField(field))
            return writeInteger(text, writer, field);
        return std::string("fields of type ") + field.cpp_type_name() + " are not supported (schema error)";
    }

    static std::string writeBool(const std::string& text, FieldWriter& writer)
    {
        // YAML 1.2 core schema booleans; "yes"/"on" are YAML 1.1 and ambiguous.
        if (text == "true" || text == "True" || text == "TRUE") {
            writer.setBool(true);
            return "";
        }
        if (text == "false" || text == "False" || text == "FALSE") {
            writer.setBool(false);
            return "";
        }
        return "expected true or false, got " + quoted(text);
    }

    static std::string writeNumber(const std::string& text, FieldWriter& writer)
    {
        std::string_view digits = text;
        if (!digits.empty() && digits.front() == '+')
            digits.remove_prefix(1);
        double value = 0;
        const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (digits.empty() || end != digits.data() + digits.size() || error != std::errc() || !std::isfinite(value))
            return "expected a number, got " + quoted(text);
        writer.setDouble(value);
        return "";
    }

    static std::string writeInteger(const std::string& text, FieldWriter& writer, const FieldDescriptor& field)
    {
        bool overflow = false;
        const std::optional<ParsedInteger> parsed = parseInteger(text, overflow);
        if (!parsed)
            return "expected an integer (" + std::string(field.cpp_type_name()) + "), got " + quoted(text);
        const IntegerBounds bounds = boundsOf(field);
        const bool fits = !overflow && (parsed->negative ? parsed->magnitude <= bounds.max_negative
                                                         : parsed->magnitude <= bounds.max_positive);
        if (!fits)
            return text + " is out of range for " + rangeText(field, bounds);
        writer.setInteger(*parsed);
        return "";
    }

    void reportMissingRequired(const Descriptor& type, const std::string& path, SourcePosition where,
                               const std::map<int, SourcePosition>& given)
    {
        for (int i = 0; i < type.field_count(); ++i) {
            const FieldDescriptor* field = type.field(i);
            if (field->options().GetExtension(v1::required) && !given.contains(field->number()))
                issue(fieldPath(path, field->name()), where, "missing required field " + quoted(field->name()));
        }
    }

    YamlMapping& result_;
};

// What the parser reported for one document: its first node and how many.
class DocumentShape : public YAML::EventHandler {
public:
    std::size_t nodes = 0;
    bool first_is_null = false;
    YAML::Mark first_at;

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, true); }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark, false); }
    void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override
    {
        node(mark, false);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        node(mark, false);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override
    {
        node(mark, false);
    }
    void OnMapEnd() override {}

    bool loneNull() const { return nodes == 1 && first_is_null; }

private:
    void node(const YAML::Mark& mark, bool is_null)
    {
        if (nodes++ == 0) {
            first_at = mark;
            first_is_null = is_null;
        }
    }
};

// A file holds one document. Documents are walked here, a bounded number,
// rather than with YAML::LoadAll: yaml-cpp 0.7 answers a token that cannot
// start a node at the top level (a stray ',') with an empty document
// without consuming the token, so LoadAll never returns and grows memory
// (jbeder/yaml-cpp#1040, fixed upstream after 0.7). Two empty documents at
// one position are that case, reported as the syntax error it is.
// Throws YAML::Exception for other syntax errors.
std::optional<PolicyIssue> checkDocuments(const std::string& text)
{
    constexpr std::size_t kEnough = 3;  // the first, a second, a repeat of the second
    std::istringstream in(text);
    YAML::Parser parser(in);
    std::vector<DocumentShape> documents;
    while (documents.size() < kEnough) {
        DocumentShape shape;
        if (!parser.HandleNextDocument(shape))
            break;
        if (!documents.empty() && documents.back().loneNull() && shape.loneNull() &&
            documents.back().first_at.pos == shape.first_at.pos) {
            const auto at = static_cast<std::size_t>(shape.first_at.pos);
            const std::string token = at < text.size() ? quoted(text.substr(at, 1)) : "end of input";
            return PolicyIssue{"", positionOf(shape.first_at), "not valid YAML: unexpected " + token};
        }
        documents.push_back(shape);
    }
    if (documents.size() > 1)
        return PolicyIssue{"", positionOf(documents[1].first_at),
                           "expected one YAML document, found more (remove the '---' separators)"};
    return std::nullopt;
}

}  // namespace

std::string yamlEnumName(const EnumValueDescriptor& value)
{
    const std::string prefix = upperSnake(value.type()->name()) + "_";
    std::string_view name = value.name();
    if (name.size() > prefix.size() && name.substr(0, prefix.size()) == prefix)
        name.remove_prefix(prefix.size());
    std::string out;
    for (const char c : name)
        out += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

YamlMapping mapYamlToMessage(std::string_view yaml, google::protobuf::Message& out)
{
    YamlMapping result;
    const std::string text(yaml);
    YAML::Node root;
    try {
        if (std::optional<PolicyIssue> problem = checkDocuments(text)) {
            result.issues.push_back(std::move(*problem));
            return result;
        }
        // The first (and only) document; Load parses just that one.
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        result.issues.push_back({"", positionOf(e.mark), "not valid YAML: " + e.msg});
        return result;
    }
    // An empty file is an empty mapping: its required fields are missing.
    const SourcePosition root_at = root.IsNull() ? SourcePosition{1, 1} : positionOf(root.Mark());
    result.sources.record("", root_at);
    Mapper(result).mapMessage(root, out, "", root_at);
    return result;
}

}  // namespace shhim::core
