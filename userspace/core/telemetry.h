// Kernel map records -> API messages (shhim.v1), and the small pieces of
// arithmetic the agent does on them: flow ordering, per-backend rates,
// counter names. Pure functions: the agent reads the maps and the clocks
// and passes the values in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.h"
#include "core/histogram.h"
#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

// Offset that turns a kernel CLOCK_MONOTONIC timestamp into Unix time:
// realtime - monotonic, both sampled by the caller at (nearly) one moment.
std::int64_t monoToUnixOffsetNs(std::int64_t realtime_ns, std::int64_t monotonic_ns);

// Kernel timestamp -> Unix ns. 0 stays 0 ("never"), so an unset time is
// not shown as the moment the machine booted.
std::int64_t toUnixNs(std::uint64_t monotonic_ns, std::int64_t mono_to_unix_ns);

// Short lowercase names; "" where the value has no name.
std::string_view tcpStateName(std::uint8_t state);      // "syn_sent", "established", ...
std::string_view appProtocolName(std::uint8_t app);     // "http", "mllp", "" (unknown)
std::string_view hookName(std::uint32_t hook);          // "xdp", "tc-egress", "sockops", "tp_btf"
std::string_view eventKindName(std::uint32_t kind);     // "refused", "syn_timeout", "reset",
                                                        // "icmp_error", "http_5xx", "mllp_nack"
std::string_view mllpAckName(std::uint32_t ack);        // enum shhim_mllp_ack -> "AA".."CR"
// shhim_flow.last_status of an MLLP flow ('A' << 8 | 'E') -> "AE"; "" if
// it is not one of AA AE AR CA CE CR.
std::string mllpAckFromStatus(std::uint16_t last_status);
// "icmp 3/3 port unreachable", "icmpv6 1/4 port unreachable"; detail is
// type << 8 | code as in SHHIM_EV_ICMP_ERROR.
std::string icmpErrorText(std::uint32_t detail, bool ipv6);

// Flow oriented client -> server: client = key.b if client_is_b else key.a.
shhim::v1::Flow toFlow(const shhim_flow_key& key, const shhim_flow& flow,
                       std::int64_t mono_to_unix_ns);

// Backend aggregates; request/error rates are left 0 (they need two
// snapshots: see rates()).
shhim::v1::Backend toBackend(const shhim_endpoint& endpoint, const shhim_backend& backend,
                             std::int64_t mono_to_unix_ns);

shhim::v1::Event toEvent(const shhim_event& event, std::int64_t mono_to_unix_ns);

enum class FlowSort { Bytes, Packets, Latency, Errors };

// "bytes", "packets", "latency", "errors"; "" -> Bytes (the proto default
// of FlowsRequest.sort); anything else -> nullopt.
std::optional<FlowSort> parseFlowSort(std::string_view name);
std::string_view flowSortName(FlowSort sort);

// Largest first by the key (both directions summed for bytes/packets;
// latency = max_response, then last_response, then handshake; errors =
// errors + icmp_errors, then rst, then retransmits); ties broken by bytes
// and then by the endpoints, so the order is deterministic. Keeps the first
// `top` flows; top 0 keeps all.
void sortAndTrim(std::vector<shhim::v1::Flow>& flows, FlowSort sort, std::uint32_t top);

// Failures of a backend as counted by error_rate_per_second:
// refused + syn_timeouts + resets + icmp_errors + 5xx + MLLP AE/AR/CE/CR.
std::uint64_t backendErrorCount(const shhim_backend& backend);

struct BackendRates {
    double requests_per_second;
    double errors_per_second;
};

// Rates between two snapshots of one backend entry taken `seconds` apart.
// If the entry was recreated in between (first_seen_ns changed, or a
// counter went down: agent restart, map recreated, LRU eviction) the
// current values count as the increase, never a negative rate. seconds <= 0
// gives zero rates. A zeroed `previous` also counts everything as new, so
// for a backend seen for the first time (e.g. just after an agent restart
// on pinned maps) report no rate yet rather than calling this with zeros.
BackendRates rates(const shhim_backend& previous, const shhim_backend& current, double seconds);

// Name of a global counter (enum shhim_counter): "xdp_packets",
// "events_lost", "perr_ipv4_trunc", ...; "unknown" outside the enum.
std::string_view counterName(std::uint32_t shhim_counter_id);
bool isParseErrorCounter(std::uint32_t shhim_counter_id);

}  // namespace shhim::core
