#include "core/telemetry.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <tuple>

namespace shhim::core {
namespace {

constexpr double kNsPerSecond = 1e9;
constexpr double kUsPerSecond = 1e6;
constexpr std::uint8_t kIpprotoTcp = 6;

double nsToSeconds(std::uint64_t ns) { return static_cast<double>(ns) / kNsPerSecond; }

// Indexed by enum shhim_counter; the static_assert keeps it in step with
// the ABI header.
constexpr std::array<std::string_view, SHHIM_CTR_MAX> kCounterNames = {
    "xdp_packets",
    "tc_packets",
    "non_ip",
    "fragments",
    "flows_created",
    "flow_create_failed",
    "backends_created",
    "backend_create_failed",
    "events_sent",
    "events_lost",
    "sockops_calls",
    "tp_retransmits",
    "tp_resets",
    "tp_state_changes",
    "perr_eth_trunc",
    "perr_vlan_trunc",
    "perr_vlan_too_deep",
    "perr_ipv4_trunc",
    "perr_ipv4_bad_version",
    "perr_ipv4_bad_ihl",
    "perr_ipv4_bad_totlen",
    "perr_ipv6_trunc",
    "perr_ipv6_bad_version",
    "perr_ipv6_ext_trunc",
    "perr_ipv6_ext_too_deep",
    "perr_ip_len_exceeds_frame",
    "perr_tcp_trunc",
    "perr_tcp_bad_doff",
    "perr_udp_trunc",
    "perr_udp_bad_len",
    "perr_icmp_trunc",
    "perr_icmp_inner_trunc",
};
static_assert(SHHIM_CTR_MAX == 32, "new counter in shhim_abi.h: name it in kCounterNames");
static_assert(SHHIM_CTR_PERR_FIRST == 14 && SHHIM_CTR_PERR_LAST == 31,
              "counter ids moved: check kCounterNames");

constexpr std::array<std::string_view, SHHIM_MLLP_ACK_MAX> kMllpAckNames = {
    "AA", "AE", "AR", "CA", "CE", "CR",
};

// Difference of a monotonic counter; a smaller current value means the
// entry started again from zero, so all of it is new.
std::uint64_t increase(std::uint64_t previous, std::uint64_t current, bool restarted)
{
    if (restarted || current < previous)
        return current;
    return current - previous;
}

std::string_view icmpv4Reason(unsigned type, unsigned code)
{
    if (type == 3) {
        switch (code) {
        case 0: return "net unreachable";
        case 1: return "host unreachable";
        case 2: return "protocol unreachable";
        case 3: return "port unreachable";
        case 4: return "fragmentation needed";
        case 5: return "source route failed";
        case 6: return "destination network unknown";
        case 7: return "destination host unknown";
        case 9: return "network administratively prohibited";
        case 10: return "host administratively prohibited";
        case 13: return "communication administratively prohibited";
        default: return "destination unreachable";
        }
    }
    if (type == 11)
        return code == 1 ? "fragment reassembly time exceeded" : "ttl exceeded";
    if (type == 12)
        return "parameter problem";
    return "error";
}

std::string_view icmpv6Reason(unsigned type, unsigned code)
{
    if (type == 1) {
        switch (code) {
        case 0: return "no route to destination";
        case 1: return "administratively prohibited";
        case 2: return "beyond scope of source address";
        case 3: return "address unreachable";
        case 4: return "port unreachable";
        case 5: return "source address failed policy";
        case 6: return "reject route";
        default: return "destination unreachable";
        }
    }
    if (type == 2)
        return "packet too big";
    if (type == 3)
        return code == 1 ? "fragment reassembly time exceeded" : "hop limit exceeded";
    if (type == 4)
        return "parameter problem";
    return "error";
}

// Deterministic last resort for equal sort keys.
auto endpointsKey(const shhim::v1::Flow& f)
{
    return std::make_tuple(std::string_view(f.server().address()), f.server().port(),
                           std::string_view(f.client().address()), f.client().port(),
                           std::string_view(f.protocol()));
}

std::uint64_t totalBytes(const shhim::v1::Flow& f) { return f.bytes_to_server() + f.bytes_to_client(); }
std::uint64_t totalPackets(const shhim::v1::Flow& f) { return f.packets_to_server() + f.packets_to_client(); }

}  // namespace

std::int64_t monoToUnixOffsetNs(std::int64_t realtime_ns, std::int64_t monotonic_ns)
{
    return realtime_ns - monotonic_ns;
}

std::int64_t toUnixNs(std::uint64_t monotonic_ns, std::int64_t mono_to_unix_ns)
{
    if (monotonic_ns == 0)
        return 0;
    return static_cast<std::int64_t>(monotonic_ns) + mono_to_unix_ns;
}

std::string_view tcpStateName(std::uint8_t state)
{
    switch (state) {
    case SHHIM_TCP_NONE: return "none";
    case SHHIM_TCP_SYN_SENT: return "syn_sent";
    case SHHIM_TCP_ESTABLISHED: return "established";
    case SHHIM_TCP_CLOSING: return "closing";
    case SHHIM_TCP_CLOSED: return "closed";
    default: return "";
    }
}

std::string_view appProtocolName(std::uint8_t app)
{
    switch (app) {
    case SHHIM_APP_HTTP: return "http";
    case SHHIM_APP_MLLP: return "mllp";
    default: return "";
    }
}

std::string_view hookName(std::uint32_t hook)
{
    switch (hook) {
    case SHHIM_HOOK_XDP_INGRESS: return "xdp";
    case SHHIM_HOOK_TC_EGRESS: return "tc-egress";
    case SHHIM_HOOK_SOCKOPS: return "sockops";
    case SHHIM_HOOK_TRACEPOINT: return "tp_btf";
    default: return "";
    }
}

std::string_view eventKindName(std::uint32_t kind)
{
    switch (kind) {
    case SHHIM_EV_REFUSED: return "refused";
    case SHHIM_EV_SYN_TIMEOUT: return "syn_timeout";
    case SHHIM_EV_RESET: return "reset";
    case SHHIM_EV_ICMP_ERROR: return "icmp_error";
    case SHHIM_EV_HTTP_5XX: return "http_5xx";
    case SHHIM_EV_MLLP_NACK: return "mllp_nack";
    case SHHIM_EV_BACKEND_DOWN: return "backend_down";
    default: return "unknown";
    }
}

std::string_view mllpAckName(std::uint32_t ack)
{
    return ack < kMllpAckNames.size() ? kMllpAckNames[ack] : std::string_view{};
}

std::string mllpAckFromStatus(std::uint16_t last_status)
{
    const char text[2] = {static_cast<char>(last_status >> 8), static_cast<char>(last_status & 0xff)};
    const std::string_view candidate(text, 2);
    for (auto name : kMllpAckNames)
        if (name == candidate)
            return std::string(candidate);
    return {};
}

std::string icmpErrorText(std::uint32_t detail, bool ipv6)
{
    const unsigned type = (detail >> 8) & 0xff;
    const unsigned code = detail & 0xff;
    std::string text = ipv6 ? "icmpv6 " : "icmp ";
    text += std::to_string(type) + "/" + std::to_string(code) + " ";
    text += ipv6 ? icmpv6Reason(type, code) : icmpv4Reason(type, code);
    return text;
}

shhim::v1::Flow toFlow(const shhim_flow_key& key, const shhim_flow& flow, std::int64_t mono_to_unix_ns)
{
    const shhim_endpoint& client = flow.client_is_b ? key.b : key.a;
    const shhim_endpoint& server = flow.client_is_b ? key.a : key.b;

    shhim::v1::Flow out;
    *out.mutable_client() = toEndpoint(client);
    *out.mutable_server() = toEndpoint(server);
    out.set_protocol(protocolName(server.proto));
    out.set_packets_to_server(flow.packets[SHHIM_DIR_TO_SERVER]);
    out.set_bytes_to_server(flow.bytes[SHHIM_DIR_TO_SERVER]);
    out.set_packets_to_client(flow.packets[SHHIM_DIR_TO_CLIENT]);
    out.set_bytes_to_client(flow.bytes[SHHIM_DIR_TO_CLIENT]);
    out.set_first_seen_unix_ns(toUnixNs(flow.first_seen_ns, mono_to_unix_ns));
    out.set_last_seen_unix_ns(toUnixNs(flow.last_seen_ns, mono_to_unix_ns));
    out.set_syn(flow.syn);
    out.set_synack(flow.synack);
    out.set_fin(flow.fin);
    out.set_rst(flow.rst);
    out.set_icmp_errors(flow.icmp_errors);
    out.set_errors(flow.errors);
    // TCP state means nothing for UDP/ICMP flows: leave it empty there.
    if (server.proto == kIpprotoTcp)
        out.set_tcp_state(std::string(tcpStateName(flow.tcp_state)));
    out.set_app_protocol(std::string(appProtocolName(flow.app_proto)));
    out.set_handshake_seconds(nsToSeconds(flow.handshake_ns));
    out.set_last_response_seconds(nsToSeconds(flow.last_response_ns));
    out.set_max_response_seconds(nsToSeconds(flow.max_response_ns));
    out.set_requests(flow.requests);
    out.set_responses(flow.responses);
    if (flow.app_proto == SHHIM_APP_MLLP)
        out.set_last_mllp_ack(mllpAckFromStatus(flow.last_status));
    else
        out.set_last_status(flow.last_status);
    out.set_srtt_seconds(static_cast<double>(flow.srtt_us) / kUsPerSecond);
    out.set_retransmits(flow.retransmits);
    out.set_rto_events(flow.rto_events);
    out.set_role_guessed((flow.flags & SHHIM_FLOW_F_ROLE_GUESSED) != 0);
    return out;
}

shhim::v1::Backend toBackend(const shhim_endpoint& endpoint, const shhim_backend& backend,
                             std::int64_t mono_to_unix_ns)
{
    shhim::v1::Backend out;
    *out.mutable_endpoint() = toEndpoint(endpoint);
    out.set_protocol(protocolName(endpoint.proto));
    out.set_flows(backend.flows);
    out.set_conn_attempts(backend.conn_attempts);
    out.set_conn_established(backend.conn_established);
    out.set_refused(backend.refused);
    out.set_syn_timeouts(backend.syn_timeouts);
    out.set_resets(backend.resets);
    out.set_icmp_errors(backend.icmp_errors);
    out.set_requests(backend.requests);
    out.set_responses(backend.responses);

    auto* http = out.mutable_http();
    http->set_status_1xx(backend.http_status[SHHIM_HTTP_1XX]);
    http->set_status_2xx(backend.http_status[SHHIM_HTTP_2XX]);
    http->set_status_3xx(backend.http_status[SHHIM_HTTP_3XX]);
    http->set_status_4xx(backend.http_status[SHHIM_HTTP_4XX]);
    http->set_status_5xx(backend.http_status[SHHIM_HTTP_5XX]);

    auto* mllp = out.mutable_mllp();
    mllp->set_aa(backend.mllp_acks[SHHIM_MLLP_AA]);
    mllp->set_ae(backend.mllp_acks[SHHIM_MLLP_AE]);
    mllp->set_ar(backend.mllp_acks[SHHIM_MLLP_AR]);
    mllp->set_ca(backend.mllp_acks[SHHIM_MLLP_CA]);
    mllp->set_ce(backend.mllp_acks[SHHIM_MLLP_CE]);
    mllp->set_cr(backend.mllp_acks[SHHIM_MLLP_CR]);

    out.set_app_unparsed(backend.app_unparsed);
    out.set_retransmits(backend.retransmits);
    out.set_rto_events(backend.rto_events);
    if (backend.srtt_samples > 0)
        out.set_srtt_mean_seconds(static_cast<double>(backend.srtt_us_sum) /
                                  static_cast<double>(backend.srtt_samples) / kUsPerSecond);
    out.set_srtt_last_seconds(static_cast<double>(backend.srtt_us_last) / kUsPerSecond);
    *out.mutable_handshake() = summarizeLatency(backend.handshake);
    *out.mutable_response() = summarizeLatency(backend.response);
    out.set_first_seen_unix_ns(toUnixNs(backend.first_seen_ns, mono_to_unix_ns));
    out.set_last_seen_unix_ns(toUnixNs(backend.last_seen_ns, mono_to_unix_ns));
    return out;
}

shhim::v1::Event toEvent(const shhim_event& event, std::int64_t mono_to_unix_ns)
{
    shhim::v1::Event out;
    out.set_time_unix_ns(toUnixNs(event.ts_ns, mono_to_unix_ns));
    out.set_kernel_ts_ns(static_cast<std::int64_t>(event.ts_ns));
    out.set_kind(std::string(eventKindName(event.kind)));
    *out.mutable_client() = toEndpoint(event.client);
    *out.mutable_server() = toEndpoint(event.server);
    out.set_protocol(protocolName(event.server.proto));
    out.set_detail(event.detail);
    switch (event.kind) {
    case SHHIM_EV_ICMP_ERROR:
        out.set_detail_text(icmpErrorText(event.detail, event.server.family == SHHIM_FAMILY_IPV6));
        break;
    case SHHIM_EV_HTTP_5XX:
        out.set_detail_text(std::to_string(event.detail));
        break;
    case SHHIM_EV_MLLP_NACK:
        out.set_detail_text(std::string(mllpAckName(event.detail)));
        break;
    case SHHIM_EV_BACKEND_DOWN:  // the kernel breaker tripped on this evidence
        out.set_detail_text("breaker: " + std::string(eventKindName(event.detail)));
        break;
    default:
        break;
    }
    out.set_ifindex(event.ifindex);
    out.set_hook(std::string(hookName(event.hook)));
    return out;
}

std::optional<FlowSort> parseFlowSort(std::string_view name)
{
    if (name.empty() || name == "bytes")
        return FlowSort::Bytes;
    if (name == "packets")
        return FlowSort::Packets;
    if (name == "latency")
        return FlowSort::Latency;
    if (name == "errors")
        return FlowSort::Errors;
    return std::nullopt;
}

std::string_view flowSortName(FlowSort sort)
{
    switch (sort) {
    case FlowSort::Bytes: return "bytes";
    case FlowSort::Packets: return "packets";
    case FlowSort::Latency: return "latency";
    case FlowSort::Errors: return "errors";
    }
    return "bytes";
}

void sortAndTrim(std::vector<shhim::v1::Flow>& flows, FlowSort sort, std::uint32_t top)
{
    // Compare by a tuple of keys, largest first; the endpoints (ascending)
    // make the order total.
    auto primary = [sort](const shhim::v1::Flow& f) {
        switch (sort) {
        case FlowSort::Packets:
            return std::make_tuple(static_cast<double>(totalPackets(f)), 0.0, 0.0);
        case FlowSort::Latency:
            return std::make_tuple(f.max_response_seconds(), f.last_response_seconds(),
                                   f.handshake_seconds());
        case FlowSort::Errors:
            return std::make_tuple(static_cast<double>(f.errors()) + f.icmp_errors(),
                                   static_cast<double>(f.rst()), static_cast<double>(f.retransmits()));
        case FlowSort::Bytes:
            break;
        }
        return std::make_tuple(0.0, 0.0, 0.0);  // bytes: the tie-break below is the key
    };
    auto before = [&](const shhim::v1::Flow& x, const shhim::v1::Flow& y) {
        const auto px = primary(x), py = primary(y);
        if (px != py)
            return px > py;
        if (totalBytes(x) != totalBytes(y))
            return totalBytes(x) > totalBytes(y);
        if (totalPackets(x) != totalPackets(y))
            return totalPackets(x) > totalPackets(y);
        return endpointsKey(x) < endpointsKey(y);
    };

    if (top > 0 && top < flows.size()) {
        std::partial_sort(flows.begin(), flows.begin() + top, flows.end(), before);
        flows.resize(top);
    } else {
        std::sort(flows.begin(), flows.end(), before);
    }
}

std::uint64_t backendErrorCount(const shhim_backend& b)
{
    return b.refused + b.syn_timeouts + b.resets + b.icmp_errors + b.http_status[SHHIM_HTTP_5XX] +
           b.mllp_acks[SHHIM_MLLP_AE] + b.mllp_acks[SHHIM_MLLP_AR] + b.mllp_acks[SHHIM_MLLP_CE] +
           b.mllp_acks[SHHIM_MLLP_CR];
}

BackendRates rates(const shhim_backend& previous, const shhim_backend& current, double seconds)
{
    if (!(seconds > 0.0) || !std::isfinite(seconds))
        return {0.0, 0.0};

    // A different creation time means the entry was deleted and created
    // again after `previous` was read: everything in it is new.
    const bool restarted = previous.first_seen_ns != 0 && current.first_seen_ns != previous.first_seen_ns;

    const std::uint64_t requests = increase(previous.requests, current.requests, restarted);
    // Per counter, so that one counter restarting does not hide the others.
    const std::uint64_t errors =
        increase(previous.refused, current.refused, restarted) +
        increase(previous.syn_timeouts, current.syn_timeouts, restarted) +
        increase(previous.resets, current.resets, restarted) +
        increase(previous.icmp_errors, current.icmp_errors, restarted) +
        increase(previous.http_status[SHHIM_HTTP_5XX], current.http_status[SHHIM_HTTP_5XX], restarted) +
        increase(previous.mllp_acks[SHHIM_MLLP_AE], current.mllp_acks[SHHIM_MLLP_AE], restarted) +
        increase(previous.mllp_acks[SHHIM_MLLP_AR], current.mllp_acks[SHHIM_MLLP_AR], restarted) +
        increase(previous.mllp_acks[SHHIM_MLLP_CE], current.mllp_acks[SHHIM_MLLP_CE], restarted) +
        increase(previous.mllp_acks[SHHIM_MLLP_CR], current.mllp_acks[SHHIM_MLLP_CR], restarted);

    return {static_cast<double>(requests) / seconds, static_cast<double>(errors) / seconds};
}

std::string_view counterName(std::uint32_t id)
{
    return id < kCounterNames.size() ? kCounterNames[id] : std::string_view{"unknown"};
}

bool isParseErrorCounter(std::uint32_t id)
{
    return id >= SHHIM_CTR_PERR_FIRST && id <= SHHIM_CTR_PERR_LAST;
}

}  // namespace shhim::core
