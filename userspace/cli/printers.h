// shhimctl output: pure functions from API messages to text, so every
// table and unit format is unit-tested without an agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/message.h>

#include "shhim.pb.h"

namespace shhim::cli {

// Protobuf JSON mapping of the message, field names as in the .proto, zero
// values included, one document ending in a newline.
std::string toJson(const google::protobuf::Message& message);

// Human units.
std::string formatDuration(double seconds);      // "0.087 ms", "40.9 ms", "12.3 s"; "-" for 0
std::string formatBytes(std::uint64_t bytes);    // "512 B", "1.5 KiB", "3.0 MiB", "2.0 GiB"
std::string formatRate(double per_second);       // "12.5/s"
std::string formatPercent(double fraction);      // "1.9%"
std::string formatUptime(double seconds);        // "45s", "3m 07s", "2h 03m 12s", "4d 01h 00m"
std::string formatUnixTimeUtc(std::int64_t unix_ns);  // "2025-11-23T21:12:03.123Z", "-" for 0
std::string formatEndpoint(const shhim::v1::Endpoint& endpoint);  // "198.18.0.1:80", "[2001:db8::1]:443"

// A text table: columns padded to their widest cell, two spaces apart,
// numbers right-aligned, no trailing spaces.
class Table {
public:
    enum class Align { Left, Right };
    struct Column {
        std::string header;
        Align align = Align::Left;
    };

    explicit Table(std::vector<Column> columns);
    void addRow(std::vector<std::string> cells);  // must have one cell per column
    std::size_t rows() const { return rows_.size(); }
    std::string render() const;

private:
    std::vector<Column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

std::string formatStatus(const shhim::v1::Status& status);
std::string formatFlows(const shhim::v1::FlowList& flows);
std::string formatBackends(const shhim::v1::BackendList& backends);
std::string formatEvents(const shhim::v1::EventList& events);

// `shhimctl policy show`: the applied policy, its classes as resolved, and
// where it came from; "no policy applied" when the agent runs without one.
std::string formatPolicyState(const shhim::v1::PolicyState& state);
// "EF", "AF41", "LE", ... or the number.
std::string dscpName(std::uint32_t dscp);

// ---- `observe` and `backends --history` (printers_observe.cpp) ----

// "90s", "5m", "1h30m", "500ms", "2d" -> ns; nullopt for anything else
// (a number without a unit included).
std::optional<std::int64_t> parseDurationNs(std::string_view text);
// Protobuf JSON mapping on one line, ending in a newline: JSON lines for jq.
std::string toJsonLine(const google::protobuf::Message& message);
// "2025-11-23T21:12:03.123Z  failure  refused 198.18.0.1:40000 -> 198.18.0.10:8080 tcp  service=fhir class=clinical"
std::string formatFeedEvent(const shhim::v1::FeedEvent& entry);
// Per backend: req/s, err/s, p50 and p99 as sparklines over the window,
// with the newest and largest value.
std::string formatHistory(const shhim::v1::History& history);

// ---- `classes` and `stress` (printers_classes.cpp) ----

std::string formatBitRate(double bits_per_second);  // "950 bit/s", "12.5 Mbit/s"
// Per interface: each class's DSCP, shed rank ('*': shed now), packets and
// bytes both ways, egress rate, drops, re-marked packets.
std::string formatClasses(const shhim::v1::ClassReport& report);
std::string formatStressStatus(const shhim::v1::StressStatus& status);

// ---- routing (printers_routing.cpp) ----

// `shhimctl services`: per service its pool line, then a table of its
// backends (pool, state, since, routed, kernel state, why); ages from now.
std::string formatServices(const shhim::v1::ServiceList& list, std::int64_t now_unix_ns);
// "2026-11-23T12:00:00.123Z  #7  kernel  eject  fhir 198.18.0.10:8080  healthy -> ejected  ..."
std::string formatAuditRecord(const shhim::v1::AuditRecord& record);
// `shhimctl explain`: the score, its parts, and the features behind it.
std::string formatExplanation(const shhim::v1::AnomalyExplanation& explanation);
// What a drain, restore or reroute changed: its audit records.
std::string formatRoutingResponse(const shhim::v1::RoutingResponse& response);

}  // namespace shhim::cli
