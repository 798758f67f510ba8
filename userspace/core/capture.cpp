#include "core/capture.h"

#include <arpa/inet.h>

#include <cstring>

#include "core/policy_address.h"
#include "core/telemetry.h"

namespace shhim::core {
namespace {

// The kernel's 16-byte form: IPv4 as ::ffff:a.b.c.d.
void setMappedAddress(shhim_capture_match& match, const IpAddress& ip)
{
    std::memset(match.addr, 0, sizeof(match.addr));
    if (ip.family == IpFamily::V4) {
        match.addr[10] = 0xff;
        match.addr[11] = 0xff;
        std::memcpy(match.addr + 12, ip.bytes.data(), 4);
    } else {
        std::memcpy(match.addr, ip.bytes.data(), 16);
    }
    match.match_addr = 1;
}

// Network byte order, written byte by byte so it is right on any host.
__be16 networkPort(std::uint16_t port)
{
    __be16 out;
    const std::uint8_t bytes[2] = {static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port & 0xff)};
    std::memcpy(&out, bytes, sizeof(out));
    return out;
}

IpAddress parseHost(const std::string& text)
{
    IpAddress ip;
    if (::inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) {
        ip.family = IpFamily::V4;
        return ip;
    }
    const std::string bare = text.size() > 2 && text.front() == '[' && text.back() == ']'
                                 ? text.substr(1, text.size() - 2)
                                 : text;
    if (::inet_pton(AF_INET6, bare.c_str(), ip.bytes.data()) == 1) {
        ip.family = IpFamily::V6;
        return ip;
    }
    throw CaptureRequestError("host '" + text + "' is not an IPv4 or IPv6 address");
}

void addEndpoint(shhim_capture_config& config, const std::string& service, const std::string& text)
{
    const auto parsed = parseSocketAddress(text);
    if (!parsed.value)
        throw CaptureRequestError("service '" + service + "': address '" + text + "': " + parsed.error);
    if (config.n_matches >= SHHIM_CAPTURE_MAX_MATCHES)
        throw CaptureRequestError("service '" + service + "' has more than " +
                                  std::to_string(SHHIM_CAPTURE_MAX_MATCHES) +
                                  " addresses (VIP and backends); capture by --host or --port instead");
    shhim_capture_match& match = config.matches[config.n_matches++];
    setMappedAddress(match, parsed.value->ip);
    match.port = networkPort(parsed.value->port);
}

void addService(shhim_capture_config& config, const std::string& name, const v1::Policy* policy)
{
    if (!policy)
        throw CaptureRequestError("service '" + name + "': the agent runs without a policy (use --host or --port)");
    for (const auto& service : policy->services()) {
        if (service.name() != name)
            continue;
        addEndpoint(config, name, service.address());
        for (const auto& backend : service.backends().primary())
            addEndpoint(config, name, backend);
        for (const auto& backend : service.backends().fallback())
            addEndpoint(config, name, backend);
        return;
    }
    std::string known;
    for (const auto& service : policy->services())
        known += (known.empty() ? "" : ", ") + service.name();
    throw CaptureRequestError("service '" + name + "' is not in the applied policy" +
                              (known.empty() ? std::string(" (it has no services)") : " (services: " + known + ")"));
}

}  // namespace

shhim_capture_config captureConfig(const v1::CaptureRequest& request, const v1::Policy* policy,
                                   std::uint32_t ifindex)
{
    if (request.count() < 1 || request.count() > kMaxCaptureCount)
        throw CaptureRequestError("count " + std::to_string(request.count()) + " is outside 1.." +
                                  std::to_string(kMaxCaptureCount));
    const int filters = !request.service().empty() + !request.host().empty() + (request.port() != 0);
    if (filters > 1)
        throw CaptureRequestError("give at most one of service, host and port");
    if (request.port() > 65535)
        throw CaptureRequestError("port " + std::to_string(request.port()) + " is outside 1..65535");

    shhim_capture_config config = {};
    config.remaining = request.count();
    config.ifindex = ifindex;
    if (!request.service().empty()) {
        addService(config, request.service(), policy);
    } else if (!request.host().empty()) {
        setMappedAddress(config.matches[0], parseHost(request.host()));
        config.n_matches = 1;
    } else if (request.port() != 0) {
        config.matches[0].port = networkPort(static_cast<std::uint16_t>(request.port()));
        config.n_matches = 1;
    }
    return config;
}

v1::CapturedPacket toCapturedPacket(const shhim_capture_sample& sample, std::int64_t mono_to_unix_ns,
                                    std::uint64_t seq)
{
    v1::CapturedPacket packet;
    packet.set_seq(seq);
    packet.set_time_unix_ns(toUnixNs(sample.ts_ns, mono_to_unix_ns));
    packet.set_ifindex(sample.ifindex);
    packet.set_direction(sample.hook == SHHIM_HOOK_TC_EGRESS ? "egress" : "ingress");
    packet.set_wire_length(sample.wire_len);
    const std::size_t length = sample.cap_len < SHHIM_CAPTURE_MAX_BYTES ? sample.cap_len : SHHIM_CAPTURE_MAX_BYTES;
    packet.set_headers(reinterpret_cast<const char*>(sample.data), length);
    return packet;
}

}  // namespace shhim::core
