#include "core/policy.h"

#include <openssl/sha.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "core/policy_classes.h"
#include "core/policy_validate.h"
#include "core/policy_yaml.h"

namespace shhim::core {
namespace {

std::string counted(std::size_t count, std::string_view one, std::string_view many)
{
    return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

std::string deterministicBytes(const google::protobuf::Message& message)
{
    std::string bytes;
    {
        google::protobuf::io::StringOutputStream stream(&bytes);
        google::protobuf::io::CodedOutputStream coded(&stream);
        coded.SetSerializationDeterministic(true);
        message.SerializeToCodedStream(&coded);
    }  // the coded stream flushes into `bytes` when it goes
    return bytes;
}

}  // namespace

PolicyCheck checkPolicyText(std::string_view yaml)
{
    PolicyCheck check;
    v1::Policy policy;
    YamlMapping mapping = mapYamlToMessage(yaml, policy);
    std::vector<PolicyIssue> semantic = validatePolicy(policy, mapping.sources, mapping.issues);
    check.issues = std::move(mapping.issues);
    check.issues.insert(check.issues.end(), semantic.begin(), semantic.end());
    sortIssues(check.issues);
    if (!check.issues.empty())
        return check;

    ValidatedPolicy validated;
    validated.version = policyVersion(policy);
    validated.classes = resolveClasses(policy);
    validated.policy = std::move(policy);
    check.policy = std::move(validated);
    return check;
}

std::string sha256Hex(std::string_view bytes)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    ::SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    text.reserve(2 * sizeof(digest));
    for (const unsigned char byte : digest) {
        text += hex[byte >> 4];
        text += hex[byte & 0xf];
    }
    return text;
}

std::string policyVersion(const v1::Policy& policy) { return sha256Hex(deterministicBytes(policy)); }

std::string shortVersion(std::string_view version) { return std::string(version.substr(0, 12)); }

std::string policySummary(const ValidatedPolicy& policy)
{
    const v1::Policy& p = policy.policy;
    return counted(static_cast<std::size_t>(p.services_size()), "service", "services") + ", " +
           counted(static_cast<std::size_t>(p.rules_size()), "rule", "rules") + ", " +
           counted(policy.classes.size(), "class", "classes") + ", " +
           counted(static_cast<std::size_t>(p.interfaces_size()), "interface", "interfaces");
}

std::string policyOkLine(std::string_view file, const ValidatedPolicy& policy)
{
    return std::string(file) + ": ok: " + policySummary(policy) + " (version " + shortVersion(policy.version) + ")";
}

v1::PolicyIssue toProto(const PolicyIssue& issue)
{
    v1::PolicyIssue out;
    out.set_path(issue.path);
    out.set_line(static_cast<std::uint32_t>(issue.where.line));
    out.set_column(static_cast<std::uint32_t>(issue.where.column));
    out.set_message(issue.message);
    return out;
}

PolicyIssue fromProto(const v1::PolicyIssue& issue)
{
    return {issue.path(), {static_cast<int>(issue.line()), static_cast<int>(issue.column())}, issue.message()};
}

}  // namespace shhim::core
