// YAML text onto any protobuf message, driven by nothing but the message's
// descriptor, so that the .proto stays the only schema of a file:
//   - a mapping fills a message; each key must be one of its field names;
//   - a sequence fills a repeated field (null = empty);
//   - enums by value name: the enum's prefix dropped, lowercase, '_' as '-'
//     (APP_PROTOCOL_HTTP of enum AppProtocol -> "http"); *_UNSPECIFIED is
//     not accepted;
//   - numbers and booleans must be plain scalars ("true"/"false", decimal);
//   - fields with option (shhim.v1.required) must be present.
// Every problem is collected (the mapper never stops at the first), with
// the field path and the YAML position; the position of every field given
// is recorded for later checks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "core/policy_issue.h"

namespace shhim::core {

struct YamlMapping {
    std::vector<PolicyIssue> issues;  // in the order found
    SourceMap sources;
};

// Fills `out` (which should start empty) from one YAML document. A syntax
// error yields that one issue; the message is then left as far as it got.
YamlMapping mapYamlToMessage(std::string_view yaml, google::protobuf::Message& out);

// The name a file uses for an enum value ("http" for APP_PROTOCOL_HTTP).
std::string yamlEnumName(const google::protobuf::EnumValueDescriptor& value);

}  // namespace shhim::core
