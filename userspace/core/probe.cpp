#include "core/probe.h"

#include <charconv>

namespace shhim::core {
namespace {

constexpr char kMllpStart = 0x0b;
constexpr char kMllpEnd[] = "\x1c\x0d";

std::string_view field(std::string_view segment, std::size_t index)
{
    for (std::size_t i = 0; i < index; ++i) {
        const auto bar = segment.find('|');
        if (bar == std::string_view::npos)
            return {};
        segment.remove_prefix(bar + 1);
    }
    return segment.substr(0, segment.find('|'));
}

}  // namespace

ProbeSettings probeSettings(const v1::Service& service)
{
    ProbeSettings settings;
    if (!service.has_probe())
        return settings;
    const v1::HealthProbe& probe = service.probe();
    if (!probe.http_path().empty())
        settings.http_path = probe.http_path();
    if (probe.has_interval_ms())
        settings.interval = std::chrono::milliseconds(probe.interval_ms());
    if (probe.has_timeout_ms())
        settings.timeout = std::chrono::milliseconds(probe.timeout_ms());
    if (probe.has_successes())
        settings.successes = probe.successes();
    return settings;
}

std::string httpProbeRequest(std::string_view host_port, std::string_view path)
{
    std::string request = "GET ";
    request.append(path).append(" HTTP/1.1\r\nHost: ").append(host_port);
    request.append("\r\nUser-Agent: shhimd-probe\r\nConnection: close\r\n\r\n");
    return request;
}

std::string mllpProbeRequest(std::string_view control_id, std::string_view timestamp)
{
    std::string message = "MSH|^~\\&|SHHIM|PROBE|||";
    message.append(timestamp).append("||NMD^N02|").append(control_id).append("|P|2.5\r");
    std::string frame(1, kMllpStart);
    frame.append(message).append(kMllpEnd);
    return frame;
}

ProbeJudgement judgeHttpProbe(std::string_view received)
{
    const auto line_end = received.find("\r\n");
    if (line_end == std::string_view::npos)
        return received.size() > 1024 ? ProbeJudgement{ProbeVerdict::Fail, "no HTTP status line"}
                                       : ProbeJudgement{};
    const std::string_view line = received.substr(0, line_end);
    // "HTTP/1.x NNN reason"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ')
        return {ProbeVerdict::Fail, "not an HTTP status line"};
    unsigned status = 0;
    const auto digits = line.substr(9, 3);
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), status);
    if (error != std::errc() || end != digits.data() + digits.size())
        return {ProbeVerdict::Fail, "not an HTTP status line"};
    const bool pass = status >= 200 && status < 400;
    return {pass ? ProbeVerdict::Pass : ProbeVerdict::Fail, "HTTP " + std::to_string(status)};
}

ProbeJudgement judgeMllpProbe(std::string_view received)
{
    const auto start = received.find(kMllpStart);
    const auto end = received.find(kMllpEnd);
    if (start == std::string_view::npos || end == std::string_view::npos || end < start)
        return received.size() > 65536 ? ProbeJudgement{ProbeVerdict::Fail, "no MLLP frame"} : ProbeJudgement{};
    std::string_view message = received.substr(start + 1, end - start - 1);
    while (!message.empty()) {
        const auto segment_end = message.find('\r');
        const std::string_view segment = message.substr(0, segment_end);
        if (segment.substr(0, 4) == "MSA|") {
            const std::string_view code = field(segment, 1);
            const bool pass = code == "AA" || code == "CA";
            return {pass ? ProbeVerdict::Pass : ProbeVerdict::Fail, "MSA " + std::string(code)};
        }
        if (segment_end == std::string_view::npos)
            break;
        message.remove_prefix(segment_end + 1);
    }
    return {ProbeVerdict::Fail, "acknowledgment without an MSA segment"};
}

}  // namespace shhim::core
