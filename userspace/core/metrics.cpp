#include "core/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <tuple>
#include <utility>

#include "core/address.h"
#include "core/policy_address.h"
#include "core/routing_view.h"
#include "core/telemetry.h"

namespace shhim::core {
namespace {

constexpr double kNsPerSecond = 1e9;
constexpr double kUsPerSecond = 1e6;

using Label = std::pair<std::string_view, std::string>;
using Labels = std::vector<Label>;

std::string formatDouble(double value)
{
    if (std::isnan(value))
        return "NaN";
    if (std::isinf(value))
        return value > 0 ? "+Inf" : "-Inf";
    // Shortest round-trip text; fixed notation where it stays short
    // (0.0003, 1700000000.5), scientific for the extremes.
    const double magnitude = std::fabs(value);
    const bool fixed = magnitude == 0.0 || (magnitude >= 1e-6 && magnitude < 1e16);
    char buffer[400];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value,
                                      fixed ? std::chars_format::fixed : std::chars_format::general);
    return std::string(buffer, result.ptr);
}

// Appends families of the text format: HELP and TYPE once, then samples.
class Exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help)
    {
        out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }

    void sample(std::string_view name, const Labels& labels, std::uint64_t value)
    {
        sampleText(name, labels, std::to_string(value));
    }

    void sampleDouble(std::string_view name, const Labels& labels, double value)
    {
        sampleText(name, labels, formatDouble(value));
    }

    std::string take() { return std::move(out_); }

private:
    void sampleText(std::string_view name, const Labels& labels, const std::string& value)
    {
        out_.append(name);
        if (!labels.empty()) {
            out_ += '{';
            bool first = true;
            for (const auto& [key, text] : labels) {
                if (!first)
                    out_ += ',';
                first = false;
                out_.append(key).append("=\"").append(escapeLabelValue(text)).append("\"");
            }
            out_ += '}';
        }
        out_.append(" ").append(value).append("\n");
    }

    std::string out_;
};

Labels backendLabels(const BackendMetrics& b)
{
    return {{"service", b.labels.service},
            {"class", b.labels.priority_class},
            {"backend", backendLabel(b.endpoint)},
            {"protocol", protocolName(b.endpoint.proto)}};
}

Labels with(Labels labels, std::string_view key, std::string value)
{
    labels.emplace_back(key, std::move(value));
    return labels;
}

// A counter family with one unlabelled sample.
void singleCounter(Exposition& out, std::string_view name, std::string_view help, std::uint64_t value)
{
    out.family(name, "counter", help);
    out.sample(name, {}, value);
}

void histogram(Exposition& out, const std::string& name, const Labels& labels, const shhim_hist& hist)
{
    const CollapsedHistogram collapsed = collapseHistogram(hist);
    for (std::size_t i = 0; i < kLatencyBounds.size(); ++i)
        out.sample(name + "_bucket", with(labels, "le", std::string(kLatencyBounds[i].label)),
                   collapsed.cumulative[i]);
    out.sample(name + "_bucket", with(labels, "le", "+Inf"), collapsed.count);
    out.sampleDouble(name + "_sum", labels, collapsed.sum_seconds);
    out.sample(name + "_count", labels, collapsed.count);
}

// The kernel counts MLLP acknowledgments that report a failure as errors
// (AE, AR, CE, CR); backendErrorCount() is the sum of these kinds.
std::uint64_t mllpNacks(const shhim_backend& b)
{
    return b.mllp_acks[SHHIM_MLLP_AE] + b.mllp_acks[SHHIM_MLLP_AR] + b.mllp_acks[SHHIM_MLLP_CE] +
           b.mllp_acks[SHHIM_MLLP_CR];
}

void renderBackends(Exposition& out, const std::vector<const BackendMetrics*>& backends)
{
    using Field = std::function<std::uint64_t(const shhim_backend&)>;
    auto counterFamily = [&](std::string_view name, std::string_view help, const Field& field) {
        out.family(name, "counter", help);
        for (const auto* b : backends)
            out.sample(name, backendLabels(*b), field(b->backend));
    };

    counterFamily("shhim_backend_flows_total", "Flows created towards the backend",
                  [](const shhim_backend& b) { return b.flows; });
    counterFamily("shhim_backend_connection_attempts_total", "First SYNs sent to the backend",
                  [](const shhim_backend& b) { return b.conn_attempts; });
    counterFamily("shhim_backend_connections_established_total", "SYN-ACKs answering a first SYN",
                  [](const shhim_backend& b) { return b.conn_established; });
    counterFamily("shhim_backend_requests_total", "Requests started (client payload with none outstanding)",
                  [](const shhim_backend& b) { return b.requests; });
    counterFamily("shhim_backend_responses_total", "Responses (first server payload answering a request)",
                  [](const shhim_backend& b) { return b.responses; });

    out.family("shhim_backend_errors_total", "counter",
               "Failures by kind: refused, syn_timeout, reset, icmp_error, http_5xx, mllp_nack (AE/AR/CE/CR)");
    for (const auto* b : backends) {
        const shhim_backend& k = b->backend;
        const std::pair<std::string_view, std::uint64_t> kinds[] = {
            {"refused", k.refused},       {"syn_timeout", k.syn_timeouts},
            {"reset", k.resets},          {"icmp_error", k.icmp_errors},
            {"http_5xx", k.http_status[SHHIM_HTTP_5XX]}, {"mllp_nack", mllpNacks(k)},
        };
        for (const auto& [kind, value] : kinds)
            out.sample("shhim_backend_errors_total", with(backendLabels(*b), "kind", std::string(kind)), value);
    }

    out.family("shhim_backend_http_responses_total", "counter", "HTTP responses by status class");
    for (const auto* b : backends) {
        static constexpr std::string_view codes[SHHIM_HTTP_CLASS_MAX] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
        for (std::size_t c = 0; c < SHHIM_HTTP_CLASS_MAX; ++c)
            out.sample("shhim_backend_http_responses_total", with(backendLabels(*b), "code", std::string(codes[c])),
                       b->backend.http_status[c]);
    }

    out.family("shhim_backend_mllp_acks_total", "counter", "HL7 MLLP acknowledgments by MSA-1 code");
    for (const auto* b : backends)
        for (std::uint32_t a = 0; a < SHHIM_MLLP_ACK_MAX; ++a)
            out.sample("shhim_backend_mllp_acks_total", with(backendLabels(*b), "ack", std::string(mllpAckName(a))),
                       b->backend.mllp_acks[a]);

    counterFamily("shhim_backend_unparsed_responses_total", "Responses that were neither HTTP/1.x nor MLLP",
                  [](const shhim_backend& b) { return b.app_unparsed; });
    counterFamily("shhim_backend_retransmits_total", "TCP retransmissions towards the backend",
                  [](const shhim_backend& b) { return b.retransmits; });
    counterFamily("shhim_backend_retransmit_timeouts_total", "TCP retransmission timeouts (RTO) on its sockets",
                  [](const shhim_backend& b) { return b.rto_events; });

    out.family("shhim_backend_srtt_seconds", "summary",
               "Smoothed RTT samples of the backend's sockets (sockops); rate(_sum)/rate(_count) is the mean");
    for (const auto* b : backends) {
        const auto labels = backendLabels(*b);
        out.sampleDouble("shhim_backend_srtt_seconds_sum", labels,
                         static_cast<double>(b->backend.srtt_us_sum) / kUsPerSecond);
        out.sample("shhim_backend_srtt_seconds_count", labels, b->backend.srtt_samples);
    }

    out.family("shhim_backend_handshake_duration_seconds", "histogram", "SYN to SYN-ACK time");
    for (const auto* b : backends)
        histogram(out, "shhim_backend_handshake_duration_seconds", backendLabels(*b), b->backend.handshake);
    out.family("shhim_backend_response_duration_seconds", "histogram",
               "Request start to first response byte, as the kernel saw it on the wire");
    for (const auto* b : backends)
        histogram(out, "shhim_backend_response_duration_seconds", backendLabels(*b), b->backend.response);
}

// The policy's "ADDRESS:PORT" as backendLabel() writes the kernel's
// endpoint, so that routing series join the backend counters on `backend`.
std::string routedBackendLabel(const std::string& text)
{
    const auto address = parseSocketAddress(text).value;
    return address ? formatSocketAddress(*address) : text;
}

void renderRouting(Exposition& out, const shhim::v1::ServiceList& routing, const RoutingChangeCounts& changes)
{
    out.family("shhim_backend_state", "gauge",
               "1 for the routed backend's current state (healthy, suspect, ejected, probing, drained), "
               "0 for the others");
    for (const auto& service : routing.services())
        for (const auto& backend : service.backends()) {
            const std::string shown = shownState(backend);
            for (const auto state : kShownBackendStates)
                out.sample("shhim_backend_state",
                           {{"service", service.name()},
                            {"class", service.class_name()},
                            {"backend", routedBackendLabel(backend.backend())},
                            {"state", std::string(state)}},
                           shown == state ? 1 : 0);
        }

    out.family("shhim_service_fallback_active", "gauge",
               "1 while the service's new connections go to its fallback pool, else 0");
    for (const auto& service : routing.services())
        out.sample("shhim_service_fallback_active", {{"service", service.name()}, {"class", service.class_name()}},
                   service.active_pool() == "fallback" ? 1 : 0);

    out.family("shhim_routing_changes_total", "counter",
               "Routing changes this agent recorded in the audit trail, by service, action and actor");
    for (const auto& [key, count] : changes)
        out.sample("shhim_routing_changes_total",
                   {{"service", key.service}, {"action", key.action}, {"actor", key.actor}}, count);
}

std::string perrReason(std::uint32_t id)
{
    std::string_view name = counterName(id);
    if (name.starts_with("perr_"))
        name.remove_prefix(5);
    return std::string(name);
}

}  // namespace

std::string escapeLabelValue(std::string_view value)
{
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
    return out;
}

std::string backendLabel(const shhim_endpoint& endpoint)
{
    const shhim::v1::Endpoint text = toEndpoint(endpoint);
    if (endpoint.family == SHHIM_FAMILY_IPV6)
        return "[" + text.address() + "]:" + std::to_string(text.port());
    return text.address() + ":" + std::to_string(text.port());
}

CollapsedHistogram collapseHistogram(const shhim_hist& hist)
{
    CollapsedHistogram out;
    std::size_t bound = 0;
    std::uint64_t below = 0;  // samples of the buckets passed so far
    for (std::uint32_t b = 0; b < SHHIM_HIST_BUCKETS; ++b) {
        // Largest value bucket b holds; the last bucket also holds
        // everything that clamps into it, so it is under no finite bound.
        const double highest_ns = b + 1 == SHHIM_HIST_BUCKETS
                                      ? std::numeric_limits<double>::infinity()
                                      : static_cast<double>(shhim_hist_bucket_low(b + 1) - 1);
        // Close every bound this bucket no longer fits under.
        while (bound < kLatencyBounds.size() && highest_ns > kLatencyBounds[bound].seconds * kNsPerSecond)
            out.cumulative[bound++] = below;
        below += hist.buckets[b];
    }
    while (bound < kLatencyBounds.size())
        out.cumulative[bound++] = below;
    out.count = below;
    out.sum_seconds = static_cast<double>(hist.sum_ns) / kNsPerSecond;
    return out;
}

std::string renderMetrics(const MetricsInput& in)
{
    Exposition out;

    out.family("shhim_build_info", "gauge", "Always 1; the agent's version and the BPF build id as labels");
    out.sample("shhim_build_info", {{"version", in.version}, {"build_id", in.build_id}}, 1);
    out.family("shhim_agent_start_time_seconds", "gauge", "Unix time the running agent started");
    out.sampleDouble("shhim_agent_start_time_seconds", {}, in.start_time_unix_seconds);
    if (in.policy_services) {
        out.family("shhim_policy_services", "gauge", "Services declared by the loaded policy");
        out.sample("shhim_policy_services", {}, *in.policy_services);
    }

    const auto& c = in.counters;
    out.family("shhim_packets_total", "counter", "Packets the BPF programs saw, by hook");
    out.sample("shhim_packets_total", {{"hook", "xdp"}}, c[SHHIM_CTR_XDP_PACKETS]);
    out.sample("shhim_packets_total", {{"hook", "tc-egress"}}, c[SHHIM_CTR_TC_PACKETS]);
    singleCounter(out, "shhim_non_ip_packets_total", "Frames that were not IP (ARP, LLDP...): passed, not parsed",
                  c[SHHIM_CTR_NON_IP]);
    singleCounter(out, "shhim_fragments_total", "Non-first IP fragments (no L4 header): passed",
                  c[SHHIM_CTR_FRAGMENTS]);
    singleCounter(out, "shhim_flows_created_total", "Entries created in the flow table", c[SHHIM_CTR_FLOWS_CREATED]);
    singleCounter(out, "shhim_flow_create_failures_total", "Flow entries that could not be created",
                  c[SHHIM_CTR_FLOW_CREATE_FAILED]);
    singleCounter(out, "shhim_backends_created_total", "Entries created in the backend table",
                  c[SHHIM_CTR_BACKENDS_CREATED]);
    singleCounter(out, "shhim_backend_create_failures_total", "Backend entries that could not be created (table full)",
                  c[SHHIM_CTR_BACKEND_CREATE_FAILED]);
    singleCounter(out, "shhim_events_sent_total", "Failure events the kernel put on the ring buffer",
                  c[SHHIM_CTR_EVENTS_SENT]);
    singleCounter(out, "shhim_events_lost_total", "Failure events lost because the ring buffer was full",
                  c[SHHIM_CTR_EVENTS_LOST]);

    out.family("shhim_events_total", "counter", "Failure events this agent received from the ring buffer, by kind");
    for (std::uint32_t kind = 1; kind < SHHIM_EV_KIND_MAX; ++kind) {
        // A kind added to the ABI before it has a name would export a
        // second "unknown" series: skip it until it is named.
        const std::string_view name = eventKindName(kind);
        if (name != "unknown")
            out.sample("shhim_events_total", {{"kind", std::string(name)}}, in.events_by_kind[kind]);
    }

    singleCounter(out, "shhim_sockops_calls_total", "sockops program invocations", c[SHHIM_CTR_SOCKOPS_CALLS]);
    out.family("shhim_tracepoint_hits_total", "counter", "tp_btf TCP tracepoint invocations");
    out.sample("shhim_tracepoint_hits_total", {{"tracepoint", "tcp_retransmit_skb"}}, c[SHHIM_CTR_TP_RETRANSMITS]);
    out.sample("shhim_tracepoint_hits_total", {{"tracepoint", "tcp_receive_reset"}}, c[SHHIM_CTR_TP_RESETS]);
    out.sample("shhim_tracepoint_hits_total", {{"tracepoint", "inet_sock_set_state"}},
               c[SHHIM_CTR_TP_STATE_CHANGES]);

    out.family("shhim_parse_errors_total", "counter", "Malformed or truncated frames by reason (every one passed)");
    for (std::uint32_t id = SHHIM_CTR_PERR_FIRST; id <= SHHIM_CTR_PERR_LAST; ++id)
        out.sample("shhim_parse_errors_total", {{"reason", perrReason(id)}}, c[id]);

    out.family("shhim_map_entries", "gauge", "Entries in a BPF table now");
    for (const auto& m : in.maps)
        out.sample("shhim_map_entries", {{"map", m.name}}, m.entries);
    out.family("shhim_map_max_entries", "gauge", "Capacity of a BPF table");
    for (const auto& m : in.maps)
        out.sample("shhim_map_max_entries", {{"map", m.name}}, m.max_entries);

    out.family("shhim_attachment_info", "gauge", "1 per program attachment: hook and its target");
    for (const auto& a : in.attachments)
        out.sample("shhim_attachment_info", {{"hook", a.hook}, {"target", a.target}}, 1);

    if (!in.interfaces.empty()) {
        out.family("shhim_interface_packets_total", "counter",
                   "Packets of a watched interface as its driver counts them, by direction");
        for (const auto& i : in.interfaces) {
            out.sample("shhim_interface_packets_total", {{"interface", i.name}, {"direction", "rx"}}, i.rx_packets);
            out.sample("shhim_interface_packets_total", {{"interface", i.name}, {"direction", "tx"}}, i.tx_packets);
        }
        out.family("shhim_interface_bytes_total", "counter",
                   "Bytes of a watched interface as its driver counts them, by direction");
        for (const auto& i : in.interfaces) {
            out.sample("shhim_interface_bytes_total", {{"interface", i.name}, {"direction", "rx"}}, i.rx_bytes);
            out.sample("shhim_interface_bytes_total", {{"interface", i.name}, {"direction", "tx"}}, i.tx_bytes);
        }
    }

    std::vector<const BackendMetrics*> backends;
    backends.reserve(in.backends.size());
    for (const auto& b : in.backends)
        backends.push_back(&b);
    std::sort(backends.begin(), backends.end(), [](const BackendMetrics* x, const BackendMetrics* y) {
        return std::make_tuple(x->labels.service, backendLabel(x->endpoint), x->endpoint.proto) <
               std::make_tuple(y->labels.service, backendLabel(y->endpoint), y->endpoint.proto);
    });
    renderBackends(out, backends);
    if (in.routing)
        renderRouting(out, *in.routing, in.routing_changes);

    return out.take();
}

}  // namespace shhim::core
