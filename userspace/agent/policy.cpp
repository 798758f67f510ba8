#include "agent/policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/policy_address.h"
#include "core/policy_file.h"

namespace shhim::agent {
namespace {

std::int64_t unixNowNs()
{
    timespec ts = {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

PolicyPtr makeApplied(core::ValidatedPolicy validated, std::string file, std::string source)
{
    auto applied = std::make_shared<AppliedPolicy>();
    applied->validated = std::move(validated);
    applied->file = std::move(file);
    applied->source = std::move(source);
    applied->applied_unix_ns = unixNowNs();
    return applied;
}

}  // namespace

PolicyCandidate candidateFromFile(const std::string& path, const std::string& source)
{
    PolicyCandidate candidate;
    std::string text;
    try {
        text = core::readPolicyFile(path);
    } catch (const core::PolicyFileError& e) {
        candidate.errors.emplace_back(e.what());
        return candidate;
    }
    core::PolicyCheck check = core::checkPolicyText(text);
    for (const auto& issue : check.issues)
        candidate.errors.push_back(core::formatIssue(path, issue));
    if (check.policy)
        candidate.policy = makeApplied(std::move(*check.policy), path, source);
    return candidate;
}

PolicyPtr candidateFromRequest(const v1::ApplyPolicyRequest& request, v1::ApplyPolicyResponse& response)
{
    core::PolicyCheck check = core::checkPolicyText(request.yaml());
    for (const auto& issue : check.issues)
        *response.add_errors() = core::toProto(issue);
    if (!check.policy)
        return nullptr;
    response.set_applied(true);
    response.set_version(check.policy->version);
    response.set_summary(core::policySummary(*check.policy));
    return makeApplied(std::move(*check.policy), request.file_name(), "shhimctl policy apply");
}

PolicySummary summaryOf(const AppliedPolicy& policy)
{
    PolicySummary summary;
    summary.path = policy.file;
    summary.name = policy.validated.policy.name();
    for (const auto& service : policy.validated.policy.services())
        summary.service_names.push_back(service.name());
    return summary;
}

namespace {

// The kernel's endpoint for a policy address (validated: it parses).
std::optional<shhim_endpoint> kernelEndpoint(const std::string& text)
{
    const auto parsed = core::parseSocketAddress(text);
    if (!parsed.value)
        return std::nullopt;
    shhim_endpoint endpoint = {};
    const core::IpAddress& ip = parsed.value->ip;
    if (ip.family == core::IpFamily::V4) {
        endpoint.addr[10] = endpoint.addr[11] = 0xff;  // ::ffff:a.b.c.d, as the kernel keys IPv4
        std::copy_n(ip.bytes.begin(), 4, endpoint.addr + 12);
        endpoint.family = SHHIM_FAMILY_IPV4;
    } else {
        std::copy_n(ip.bytes.begin(), 16, endpoint.addr);
        endpoint.family = SHHIM_FAMILY_IPV6;
    }
    endpoint.port = htons(parsed.value->port);
    endpoint.proto = IPPROTO_TCP;  // http, mllp and tcp services all run over TCP
    return endpoint;
}

}  // namespace

std::vector<ServiceBackends> servicesOf(const AppliedPolicy& policy)
{
    std::vector<ServiceBackends> out;
    for (const v1::Service& service : policy.validated.policy.services()) {
        ServiceBackends entry{service.name(), service.class_(), {}};
        auto add = [&entry](const std::string& text) {
            const auto endpoint = kernelEndpoint(text);
            if (!endpoint)
                return;
            const bool seen = std::any_of(entry.backends.begin(), entry.backends.end(), [&](const shhim_endpoint& e) {
                return std::memcmp(&e, &*endpoint, sizeof(e)) == 0;
            });
            if (!seen)
                entry.backends.push_back(*endpoint);
        };
        add(service.address());
        for (const auto& backend : service.backends().primary())
            add(backend);
        for (const auto& backend : service.backends().fallback())
            add(backend);
        out.push_back(std::move(entry));
    }
    return out;
}

std::string joinedErrors(const std::vector<std::string>& errors)
{
    std::string text = std::to_string(errors.size()) + (errors.size() == 1 ? " error" : " errors");
    for (std::size_t i = 0; i < errors.size(); ++i)
        text += (i == 0 ? ": " : "; ") + errors[i];
    return text;
}

std::string describePolicy(const AppliedPolicy& policy)
{
    return "policy " + policy.validated.policy.name() + " from " + policy.file + ": " +
           core::policySummary(policy.validated) + " (version " + core::shortVersion(policy.validated.version) +
           ")";
}

v1::PolicyState policyState(const PolicyPtr& policy)
{
    v1::PolicyState state;
    if (!policy)
        return state;
    state.set_applied(true);
    state.set_version(policy->validated.version);
    state.set_file(policy->file);
    state.set_source(policy->source);
    state.set_applied_unix_ns(policy->applied_unix_ns);
    state.set_summary(core::policySummary(policy->validated));
    *state.mutable_policy() = policy->validated.policy;
    for (const auto& resolved : policy->validated.classes)
        *state.add_classes() = resolved;
    return state;
}

}  // namespace shhim::agent
