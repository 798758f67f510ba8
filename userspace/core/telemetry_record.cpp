#include "core/telemetry_record.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>

namespace shhim::core {
namespace {

v1::RecordedBackend recordedBackend(const BackendTick& tick)
{
    const TickCounts& c = tick.counts;
    v1::RecordedBackend out;
    out.set_service(tick.id.service);
    out.set_backend(tick.id.backend);
    out.set_service_class(tick.id.service_class);
    out.set_application(c.application);
    out.set_requests(c.requests);
    out.set_responses(c.responses);
    out.set_conn_attempts(c.conn_attempts);
    out.set_conn_established(c.conn_established);
    out.set_refused(c.refused);
    out.set_syn_timeouts(c.syn_timeouts);
    out.set_resets(c.resets);
    out.set_server_errors(c.server_errors);
    out.set_nacks(c.nacks);
    out.set_client_errors(c.client_errors);
    out.set_retransmits(c.retransmits);
    out.set_srtt_samples(c.srtt_samples);
    out.set_srtt_us_sum(c.srtt_us_sum);
    if (c.p50_ms)
        out.set_p50_ms(*c.p50_ms);
    if (c.p99_ms)
        out.set_p99_ms(*c.p99_ms);
    return out;
}

BackendTick backendTick(const v1::RecordedBackend& b, double seconds)
{
    BackendTick out;
    out.id = BackendId{b.service(), b.backend(), b.service_class()};
    TickCounts& c = out.counts;
    c.seconds = seconds;
    c.application = b.application();
    c.requests = b.requests();
    c.responses = b.responses();
    c.conn_attempts = b.conn_attempts();
    c.conn_established = b.conn_established();
    c.refused = b.refused();
    c.syn_timeouts = b.syn_timeouts();
    c.resets = b.resets();
    c.server_errors = b.server_errors();
    c.nacks = b.nacks();
    c.client_errors = b.client_errors();
    c.retransmits = b.retransmits();
    c.srtt_samples = b.srtt_samples();
    c.srtt_us_sum = b.srtt_us_sum();
    if (b.has_p50_ms())
        c.p50_ms = b.p50_ms();
    if (b.has_p99_ms())
        c.p99_ms = b.p99_ms();
    return out;
}

template <typename Message>
Message parseJson(std::string_view line, std::string_view where, std::string_view what)
{
    Message message;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    const auto status = google::protobuf::util::JsonStringToMessage(std::string(line), &message, options);
    if (!status.ok())
        throw TraceError(std::string(where) + ": not a " + std::string(what) + ": " + std::string(status.message()));
    return message;
}

}  // namespace

v1::RecordedTick recordedTick(std::int64_t unix_ms, double seconds, std::span<const BackendTick> ticks)
{
    v1::RecordedTick out;
    out.set_unix_ms(unix_ms);
    out.set_seconds(seconds);
    for (const auto& tick : ticks)
        *out.add_backends() = recordedBackend(tick);
    return out;
}

std::vector<BackendTick> backendTicks(const v1::RecordedTick& tick)
{
    std::vector<BackendTick> out;
    out.reserve(static_cast<std::size_t>(tick.backends_size()));
    for (const auto& b : tick.backends())
        out.push_back(backendTick(b, tick.seconds()));
    return out;
}

std::string toJsonLine(const google::protobuf::Message& message)
{
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.add_whitespace = false;
    const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
    if (!status.ok())
        throw TraceError("cannot write " + message.GetTypeName() + " as JSON: " + std::string(status.message()));
    return out;
}

v1::RecordedTick parseRecordedTick(std::string_view line, std::string_view where)
{
    auto tick = parseJson<v1::RecordedTick>(line, where, "recorded tick (shhim.v1.RecordedTick)");
    if (!(tick.seconds() > 0) || !std::isfinite(tick.seconds()))
        throw TraceError(std::string(where) + ": seconds must be > 0 (the tick's length), got " +
                         std::to_string(tick.seconds()));
    for (int i = 0; i < tick.backends_size(); ++i)
        if (tick.backends(i).service().empty() || tick.backends(i).backend().empty())
            throw TraceError(std::string(where) + ": backends[" + std::to_string(i) +
                             "] needs both service and backend");
    return tick;
}

v1::TraceLabel parseTraceLabel(std::string_view line, std::string_view where)
{
    auto label = parseJson<v1::TraceLabel>(line, where, "trace label (shhim.v1.TraceLabel)");
    if (label.name().empty())
        throw TraceError(std::string(where) + ": the trace label needs a name");
    if (label.kind().empty())
        throw TraceError(std::string(where) + ": the trace label needs a kind");
    if (label.failure() && (label.backend().empty() || label.fault_start_unix_ms() <= 0))
        throw TraceError(std::string(where) + ": a failure trace needs its backend and fault_start_unix_ms");
    return label;
}

}  // namespace shhim::core
