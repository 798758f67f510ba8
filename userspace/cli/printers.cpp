#include "cli/printers.h"
#include "core/audit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string_view>

#include <google/protobuf/util/json_util.h>

#include "core/policy.h"
#include "core/policy_defaults.h"
#include "core/policy_yaml.h"

namespace shhim::cli {
namespace {

std::string printf1(const char* format, double value)
{
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), format, value);
    return buffer;
}

std::string number(std::uint64_t value) { return std::to_string(value); }

// "12 (4.0%)" when there are failures; plain "0" otherwise, so healthy
// backends read quietly.
std::string countWithShare(std::uint64_t count, std::uint64_t out_of)
{
    if (count == 0 || out_of == 0)
        return number(count);
    return number(count) + " (" + formatPercent(static_cast<double>(count) / static_cast<double>(out_of)) + ")";
}

std::string orDash(const std::string& text) { return text.empty() ? "-" : text; }

}  // namespace

namespace {

// The protobuf JSON mapping, with zero counters present and proto field names.
std::string protobufJson(const google::protobuf::Message& message, bool pretty)
{
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = pretty;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string json;
    const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
    if (!status.ok())
        throw std::runtime_error("cannot convert " + message.GetTypeName() + " to JSON: " +
                                 std::string(status.message()));
    if (json.empty() || json.back() != '\n')
        json += '\n';
    return json;
}

}  // namespace

std::string toJson(const google::protobuf::Message& message) { return protobufJson(message, true); }

std::string toJsonLine(const google::protobuf::Message& message) { return protobufJson(message, false); }

std::string formatDuration(double seconds)
{
    if (!(seconds > 0.0))
        return "-";
    const double ms = seconds * 1e3;
    if (ms < 1.0)
        return printf1("%.3f ms", ms);
    if (seconds < 10.0)
        return printf1("%.1f ms", ms);
    return printf1("%.1f s", seconds);
}

std::string formatBytes(std::uint64_t bytes)
{
    if (bytes < 1024)
        return std::to_string(bytes) + " B";
    static constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes) / 1024.0;
    std::size_t unit = 0;
    while (value >= 1024.0 && unit + 1 < std::size(units)) {
        value /= 1024.0;
        ++unit;
    }
    return printf1("%.1f", value) + " " + units[unit];
}

std::string formatRate(double per_second) { return printf1("%.1f/s", per_second); }

std::string formatPercent(double fraction) { return printf1("%.1f%%", fraction * 100.0); }

std::string formatUptime(double seconds)
{
    if (!(seconds > 0.0))
        return "0s";
    auto total = static_cast<std::uint64_t>(seconds);
    const auto days = total / 86400, hours = total / 3600 % 24, minutes = total / 60 % 60, secs = total % 60;
    char buffer[64];
    if (days > 0)
        std::snprintf(buffer, sizeof(buffer), "%llud %02lluh %02llum", static_cast<unsigned long long>(days),
                      static_cast<unsigned long long>(hours), static_cast<unsigned long long>(minutes));
    else if (hours > 0)
        std::snprintf(buffer, sizeof(buffer), "%lluh %02llum %02llus", static_cast<unsigned long long>(hours),
                      static_cast<unsigned long long>(minutes), static_cast<unsigned long long>(secs));
    else if (minutes > 0)
        std::snprintf(buffer, sizeof(buffer), "%llum %02llus", static_cast<unsigned long long>(minutes),
                      static_cast<unsigned long long>(secs));
    else
        std::snprintf(buffer, sizeof(buffer), "%llus", static_cast<unsigned long long>(secs));
    return buffer;
}

std::string formatUnixTimeUtc(std::int64_t unix_ns)
{
    if (unix_ns <= 0)
        return "-";
    // The audit trail's format: one way of writing a time across the project.
    return core::rfc3339Millis(core::EngineTime(
        std::chrono::duration_cast<core::EngineTime::duration>(std::chrono::nanoseconds(unix_ns))));
}

std::string formatEndpoint(const shhim::v1::Endpoint& endpoint)
{
    const bool ipv6 = endpoint.address().find(':') != std::string::npos;
    if (endpoint.port() == 0)
        return endpoint.address();
    if (ipv6)
        return "[" + endpoint.address() + "]:" + std::to_string(endpoint.port());
    return endpoint.address() + ":" + std::to_string(endpoint.port());
}

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::addRow(std::vector<std::string> cells)
{
    if (cells.size() != columns_.size())
        throw std::logic_error("table row has " + std::to_string(cells.size()) + " cells, expected " +
                               std::to_string(columns_.size()));
    rows_.push_back(std::move(cells));
}

std::string Table::render() const
{
    std::vector<std::size_t> widths(columns_.size());
    for (std::size_t c = 0; c < columns_.size(); ++c) {
        widths[c] = columns_[c].header.size();
        for (const auto& row : rows_)
            widths[c] = std::max(widths[c], row[c].size());
    }

    std::string out;
    auto emit = [&](const std::vector<std::string>& cells) {
        std::string line;
        for (std::size_t c = 0; c < cells.size(); ++c) {
            if (c)
                line += "  ";
            const std::size_t pad = widths[c] - cells[c].size();
            if (columns_[c].align == Align::Right)
                line.append(pad, ' ').append(cells[c]);
            else
                line.append(cells[c]).append(pad, ' ');
        }
        while (!line.empty() && line.back() == ' ')
            line.pop_back();
        out += line + '\n';
    };
    std::vector<std::string> headers;
    for (const auto& column : columns_)
        headers.push_back(column.header);
    emit(headers);
    for (const auto& row : rows_)
        emit(row);
    return out;
}

std::string formatStatus(const shhim::v1::Status& status)
{
    using Align = Table::Align;
    std::string out;
    out += "shhimd " + orDash(status.version());
    if (!status.build_id().empty())
        out += " (build " + status.build_id() + ")";
    out += ", up " + formatUptime(status.uptime_seconds());
    out += status.reused_pinned_state() ? ", reusing pinned state from a previous run" : ", fresh start";
    out += "\npolicy: " + orDash(status.policy_file());
    if (!status.policy_version().empty())
        out += " (version " + core::shortVersion(status.policy_version()) + ")";
    out += "\n";

    out += "\nAttached programs\n";
    if (status.attachments().empty()) {
        out += "  none\n";
    } else {
        Table attachments({{"HOOK"}, {"TARGET"}, {"PROGRAM"}, {"ID", Align::Right}, {"MODE"}});
        for (const auto& a : status.attachments())
            attachments.addRow({a.hook(), a.target(), a.program(),
                                a.program_id() ? number(a.program_id()) : "-", orDash(a.mode())});
        out += attachments.render();
    }

    out += "\nMaps\n";
    if (status.maps().empty()) {
        out += "  none\n";
    } else {
        Table maps({{"MAP"}, {"ENTRIES", Align::Right}, {"MAX", Align::Right}, {"FILL", Align::Right}});
        for (const auto& m : status.maps())
            maps.addRow({m.name(), number(m.entries()), m.max_entries() ? number(m.max_entries()) : "-",
                         m.max_entries() ? formatPercent(static_cast<double>(m.entries()) /
                                                         static_cast<double>(m.max_entries()))
                                         : "-"});
        out += maps.render();
    }

    out += "\nEvents: " + number(status.events_received()) + " received, " + number(status.events_lost()) +
           " lost";
    if (status.events_lost() > 0)
        out += " (ring buffer full: some failures were counted but not reported one by one)";
    out += "\nParse errors: " + number(status.parse_errors()) + " (frames passed, not parsed)\n";

    // Counters: everything that is not a parse-error reason, then the
    // parse-error reasons that happened (most are 0 on a healthy network).
    Table counters({{"COUNTER"}, {"VALUE", Align::Right}});
    Table parse_errors({{"PARSE ERROR"}, {"FRAMES", Align::Right}});
    for (const auto& c : status.counters()) {
        if (std::string_view(c.name()).starts_with("perr_")) {
            if (c.value() > 0)
                parse_errors.addRow({c.name().substr(5), number(c.value())});
        } else {
            counters.addRow({c.name(), number(c.value())});
        }
    }
    if (counters.rows() > 0)
        out += "\n" + counters.render();
    if (parse_errors.rows() > 0)
        out += "\n" + parse_errors.render();
    return out;
}

std::string formatFlows(const shhim::v1::FlowList& list)
{
    using Align = Table::Align;
    Table table({{"CLIENT"},
                 {"SERVER"},
                 {"PROTO"},
                 {"STATE"},
                 {"APP"},
                 {"PKTS", Align::Right},
                 {"BYTES OUT/IN", Align::Right},
                 {"REQS", Align::Right},
                 {"LAST", Align::Right},
                 {"RESP LAST", Align::Right},
                 {"RESP MAX", Align::Right},
                 {"HANDSHAKE", Align::Right},
                 {"RTT", Align::Right},
                 {"RETX", Align::Right},
                 {"ERRS", Align::Right}});
    bool any_guessed = false;
    for (const auto& f : list.flows()) {
        std::string client = formatEndpoint(f.client());
        if (f.role_guessed()) {
            client += "*";
            any_guessed = true;
        }
        std::string last = "-";
        if (!f.last_mllp_ack().empty())
            last = f.last_mllp_ack();
        else if (f.last_status() != 0)
            last = number(f.last_status());
        table.addRow({client, formatEndpoint(f.server()), f.protocol(), orDash(f.tcp_state()),
                      orDash(f.app_protocol()), number(f.packets_to_server() + f.packets_to_client()),
                      formatBytes(f.bytes_to_server()) + " / " + formatBytes(f.bytes_to_client()),
                      number(f.requests()), last, formatDuration(f.last_response_seconds()),
                      formatDuration(f.max_response_seconds()), formatDuration(f.handshake_seconds()),
                      formatDuration(f.srtt_seconds()), number(f.retransmits()),
                      number(f.errors() + f.icmp_errors())});
    }
    std::string out = table.render();
    out += "showing " + std::to_string(list.flows_size()) + " of " + number(list.total()) + " flows";
    out += "; BYTES OUT = client to server, IN = server to client; ERRS = failure events + ICMP errors\n";
    if (any_guessed)
        out += "* client/server roles guessed: the flow was first seen mid-connection\n";
    return out;
}

std::string formatBackends(const shhim::v1::BackendList& list)
{
    using Align = Table::Align;
    Table table({{"BACKEND"},
                 {"PROTO"},
                 {"REQ/S", Align::Right},
                 {"ERR/S", Align::Right},
                 {"REQS", Align::Right},
                 {"HTTP 5XX", Align::Right},
                 {"MLLP NACK", Align::Right},
                 {"REFUSED", Align::Right},
                 {"SYN TMO", Align::Right},
                 {"RESETS", Align::Right},
                 {"ICMP", Align::Right},
                 {"P50", Align::Right},
                 {"P99", Align::Right},
                 {"CONNECT P50", Align::Right},
                 {"RTT", Align::Right},
                 {"RETX", Align::Right}});
    for (const auto& b : list.backends()) {
        const auto& http = b.http();
        const auto& mllp = b.mllp();
        const std::uint64_t http_total =
            http.status_1xx() + http.status_2xx() + http.status_3xx() + http.status_4xx() + http.status_5xx();
        const std::uint64_t nacks = mllp.ae() + mllp.ar() + mllp.ce() + mllp.cr();
        const std::uint64_t mllp_total = nacks + mllp.aa() + mllp.ca();
        const auto latency = [](const shhim::v1::Latency& l, double value) {
            return l.count() > 0 ? formatDuration(value) : std::string("-");
        };
        table.addRow({formatEndpoint(b.endpoint()), b.protocol(), formatRate(b.request_rate_per_second()),
                      formatRate(b.error_rate_per_second()), number(b.requests()),
                      // "-" where the backend never spoke that protocol.
                      http_total ? countWithShare(http.status_5xx(), http_total) : "-",
                      mllp_total ? countWithShare(nacks, mllp_total) : "-",
                      countWithShare(b.refused(), b.conn_attempts()),
                      countWithShare(b.syn_timeouts(), b.conn_attempts()), number(b.resets()),
                      number(b.icmp_errors()), latency(b.response(), b.response().p50_seconds()),
                      latency(b.response(), b.response().p99_seconds()),
                      latency(b.handshake(), b.handshake().p50_seconds()),
                      formatDuration(b.srtt_mean_seconds()), number(b.retransmits())});
    }
    std::string out = table.render();
    out += std::to_string(list.backends_size()) + (list.backends_size() == 1 ? " backend" : " backends");
    out += "; P50/P99 = request to first response byte; % = share of responses (5XX, NACK) or of connection "
           "attempts (REFUSED, SYN TMO)\n";
    return out;
}

std::string formatEvents(const shhim::v1::EventList& list)
{
    Table table({{"TIME (UTC)"}, {"KIND"}, {"CLIENT"}, {"SERVER"}, {"PROTO"}, {"DETAIL"}, {"HOOK"}});
    // Oldest first, whatever order the agent keeps them in, so the table
    // reads like a log.
    std::vector<const shhim::v1::Event*> events;
    for (const auto& e : list.events())
        events.push_back(&e);
    std::stable_sort(events.begin(), events.end(), [](const auto* x, const auto* y) {
        return x->time_unix_ns() < y->time_unix_ns();
    });
    for (const auto* event : events) {
        const auto& e = *event;
        table.addRow({formatUnixTimeUtc(e.time_unix_ns()), e.kind(), formatEndpoint(e.client()),
                      formatEndpoint(e.server()), e.protocol(), orDash(e.detail_text()), orDash(e.hook())});
    }
    std::string out = table.render();
    out += std::to_string(list.events_size()) + (list.events_size() == 1 ? " event" : " events") + ", oldest first\n";
    return out;
}

std::string dscpName(std::uint32_t dscp)
{
    switch (dscp) {
    case 0:
        return "DF";
    case 1:
        return "LE";
    case 46:
        return "EF";
    case 44:
        return "VA";
    default:
        break;
    }
    if (dscp % 8 == 0 && dscp <= 56)
        return "CS" + number(dscp / 8);
    // AFxy = 8x + 2y, x 1-4, y 1-3.
    const std::uint32_t x = dscp / 8, y = (dscp % 8) / 2;
    if (dscp % 2 == 0 && x >= 1 && x <= 4 && y >= 1 && y <= 3)
        return "AF" + number(x) + number(y);
    return number(dscp);
}

namespace {

template <typename Enum>
std::string enumText(const google::protobuf::EnumDescriptor* type, Enum value)
{
    const auto* described = type->FindValueByNumber(static_cast<int>(value));
    return described ? core::yamlEnumName(*described) : number(static_cast<std::uint64_t>(value));
}

std::string joined(const google::protobuf::RepeatedPtrField<std::string>& items)
{
    std::string text;
    for (const auto& item : items)
        text += (text.empty() ? "" : " ") + item;
    return orDash(text);
}

std::string limits(const v1::Thresholds& t)
{
    std::string text;
    auto add = [&text](const std::string& item) { text += (text.empty() ? "" : ", ") + item; };
    if (t.has_p99_latency_ms())
        add("p99 " + formatDuration(t.p99_latency_ms() / 1e3));
    if (t.has_error_rate())
        add("errors " + formatPercent(t.error_rate()));
    if (t.has_min_requests())
        add("min " + number(t.min_requests()) + " req");
    if (t.has_window_ms())
        add("window " + formatDuration(t.window_ms() / 1e3));
    if (t.has_consecutive_failures())
        add(number(t.consecutive_failures()) + " failures in a row");
    if (t.has_ejection_ms())
        add("eject " + formatDuration(t.ejection_ms() / 1e3));
    if (t.has_max_ejected_fraction())
        add("max ejected " + formatPercent(t.max_ejected_fraction()));
    return text.empty() ? "defaults" : text;
}

std::string servicesTable(const v1::Policy& policy)
{
    Table table({{"SERVICE"}, {"ADDRESS"}, {"PROTO"}, {"CLASS"}, {"PRIMARY"}, {"FALLBACK"}, {"THRESHOLDS"}});
    for (const auto& s : policy.services())
        table.addRow({s.name(), s.address(), enumText(v1::AppProtocol_descriptor(), s.protocol()), s.class_(),
                      joined(s.backends().primary()), joined(s.backends().fallback()), limits(s.thresholds())});
    return table.render();
}

std::string rulesTable(const v1::Policy& policy)
{
    Table table({{"#", Table::Align::Right}, {"RULE"}, {"PROTO"}, {"CIDRS"}, {"PORTS"}, {"CLASS"}});
    int index = 0;
    for (const auto& r : policy.rules()) {
        std::string ports = "-";
        if (r.has_ports()) {
            const std::uint32_t last = core::lastPort(r.ports());
            ports = number(r.ports().first()) + (last != r.ports().first() ? "-" + number(last) : "");
        }
        table.addRow({number(static_cast<std::uint64_t>(++index)), orDash(r.name()),
                      enumText(v1::Transport_descriptor(), r.protocol()), joined(r.cidrs()), ports, r.class_()});
    }
    return table.render();
}

std::string classesTable(const v1::PolicyState& state)
{
    Table table({{"CLASS"}, {"DSCP"}, {"SKB PRIO", Table::Align::Right}, {"SHED", Table::Align::Right}, {"CARRIES"}});
    for (const auto& c : state.classes())
        table.addRow({c.name() + (c.builtin() ? "" : " (added)"), dscpName(c.dscp()) + " (" + number(c.dscp()) + ")",
                      number(c.skb_priority()), c.shed_order() ? number(c.shed_order()) : "never",
                      orDash(c.description())});
    return table.render();
}

std::string interfacesTable(const v1::Policy& policy)
{
    Table table({{"INTERFACE"}, {"ROLE"}, {"CAPACITY", Table::Align::Right}, {"DESCRIPTION"}});
    for (const auto& i : policy.interfaces())
        table.addRow({i.name(), enumText(v1::InterfaceRole_descriptor(), i.role()),
                      number(i.capacity_mbps()) + " Mbit/s", orDash(i.description())});
    return table.render();
}

std::string stressLine(const v1::StressMode& stress)
{
    const core::StressSettings settings = core::stressSettings(stress);
    if (!settings.enabled)
        return "stress mode: off\n";
    return "stress mode: on above " + formatPercent(settings.enter_utilization) + " of capacity, off below " +
           formatPercent(settings.exit_utilization) + ", each held " + formatDuration(settings.hold_ms / 1e3) +
           "; classes shed in SHED order\n";
}

}  // namespace

std::string formatPolicyState(const shhim::v1::PolicyState& state)
{
    if (!state.applied())
        return "no policy applied (shhimd started without --policy; `shhimctl policy apply FILE` applies one)\n";
    const v1::Policy& policy = state.policy();
    std::string out = "policy " + policy.name() + " from " + orDash(state.file()) + "\n";
    if (!policy.description().empty())
        out += "  " + policy.description() + "\n";
    out += "version " + state.version() + "\n";
    out += "applied " + formatUnixTimeUtc(state.applied_unix_ns()) + " by " + orDash(state.source()) + "\n";
    out += orDash(state.summary()) + "; other traffic: " + std::string(core::defaultClass(policy)) + "\n";
    out += stressLine(policy.stress());
    if (policy.services_size() > 0)
        out += "\n" + servicesTable(policy);
    if (policy.rules_size() > 0)
        out += "\nRules, first match wins (server side of a connection)\n" + rulesTable(policy);
    out += "\nClasses, highest priority first\n" + classesTable(state);
    if (policy.interfaces_size() > 0)
        out += "\n" + interfacesTable(policy);
    return out;
}

}  // namespace shhim::cli
