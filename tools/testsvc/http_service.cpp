#include "http_service.hpp"

#include "listener.hpp"
#include "support/json.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>
#include <vector>

namespace shhim::testsvc {

namespace {

constexpr std::size_t kMaxHeadBytes = 16 * 1024;
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;

struct ReceivedRequest {
    tools::HttpRequestHead head;
    std::string body;
};

// Why read_request() stopped.
struct ReadOutcome {
    enum class Kind { Request, PeerClosed, Malformed, IoError };
    Kind kind = Kind::Request;
    int status = 0;     // for Malformed: the status to answer with
    std::string error;  // for Malformed and IoError
};

ReadOutcome malformed(int status, std::string error)
{
    return {ReadOutcome::Kind::Malformed, status, std::move(error)};
}

// Reads one whole request (head and Content-Length body) from the connection; bytes of the
// next pipelined request stay in `buffer`.
ReadOutcome read_request(ServerConnection& connection, std::string& buffer, ReceivedRequest& out)
{
    for (;;) {
        if (const auto head_end = tools::find_head_end(buffer)) {
            if (*head_end > kMaxHeadBytes)
                return malformed(431, "request head exceeds " + std::to_string(kMaxHeadBytes) + " bytes");
            std::string error;
            auto head = tools::parse_request_head(std::string_view(buffer).substr(0, *head_end), error);
            if (!head)
                return malformed(400, error);
            if (tools::find_header(head->headers, "Transfer-Encoding"))
                return malformed(501, "chunked request bodies are not supported; send Content-Length");
            const auto length = tools::content_length(head->headers, error);
            if (!error.empty())
                return malformed(400, error);
            const auto body_bytes = length.value_or(0);
            if (body_bytes > kMaxBodyBytes)
                return malformed(413, "body of " + std::to_string(body_bytes) + " bytes exceeds " +
                                          std::to_string(kMaxBodyBytes));
            if (buffer.size() >= *head_end + body_bytes) {
                out.head = std::move(*head);
                out.body = buffer.substr(*head_end, body_bytes);
                buffer.erase(0, *head_end + body_bytes);
                return {};
            }
        } else if (buffer.size() > kMaxHeadBytes) {
            return malformed(431, "request head exceeds " + std::to_string(kMaxHeadBytes) + " bytes");
        }
        const auto got = connection.receive(buffer);
        if (got == 0) {
            if (buffer.empty())
                return {ReadOutcome::Kind::PeerClosed, 0, {}};
            return {ReadOutcome::Kind::IoError, 0,
                    "peer closed in the middle of a request (" + std::to_string(buffer.size()) + " bytes pending)"};
        }
        if (got < 0)
            return {ReadOutcome::Kind::IoError, 0, "receive: " + tools::errno_text(connection.last_error())};
    }
}

bool is_fhir_id(std::string_view id)
{
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    });
}

std::string patient_json(std::string_view id)
{
    return "{\"resourceType\":\"Patient\",\"id\":" + tools::json_quote(id) +
           ",\"active\":true,\"name\":[{\"family\":\"Synthetic\",\"given\":[\"Test\"]}],"
           "\"gender\":\"unknown\",\"birthDate\":\"1970-01-01\"}";
}

std::string observation_json(std::string_view id, std::string_view patient)
{
    return "{\"resourceType\":\"Observation\",\"id\":" + tools::json_quote(id) +
           ",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\","
           "\"display\":\"Heart rate\"}]},\"subject\":{\"reference\":" +
           tools::json_quote("Patient/" + std::string(patient)) +
           "},\"valueQuantity\":{\"value\":72,\"unit\":\"/min\",\"system\":\"http://unitsofmeasure.org\","
           "\"code\":\"/min\"}}";
}

std::optional<std::string> query_value(std::string_view query, std::string_view key)
{
    std::vector<std::pair<std::string, std::string>> pairs;
    if (!tools::parse_query(query, pairs))
        return std::nullopt;
    for (auto& [k, v] : pairs)
        if (k == key)
            return std::move(v);
    return std::nullopt;
}

HttpAnswer error_answer(int status, std::string_view diagnostics)
{
    return {status, operation_outcome(status, diagnostics), {}};
}

// "X-Shhim-Status: 503": nullopt when absent; throws the text of a 400 when invalid.
std::optional<int> forced_status(const tools::HttpRequestHead& request, std::string& error)
{
    const auto value = tools::find_header(request.headers, "X-Shhim-Status");
    if (!value)
        return std::nullopt;
    if (!tools::is_http_status_code(*value)) {
        error = "X-Shhim-Status '" + std::string(value->substr(0, 20)) + "' is not a status code from 200 to 599";
        return std::nullopt;
    }
    int status = 0;
    std::from_chars(value->data(), value->data() + value->size(), status);
    return status;
}

// The route's answer with `status` imposed: a 2xx keeps the route's body when the route
// succeeded, anything else explains itself in an OperationOutcome.
HttpAnswer impose_status(HttpAnswer answer, int status, std::string_view why)
{
    if (status == answer.status)
        return answer;
    const bool both_success = status / 100 == 2 && answer.status / 100 == 2;
    if (both_success)
        return {status, std::move(answer.body), status == 201 ? std::move(answer.location) : std::string{}};
    return error_answer(status, why);
}

} // namespace

std::string operation_outcome(int status, std::string_view diagnostics)
{
    std::string_view code = "processing";
    if (status == 404)
        code = "not-found";
    else if (status == 400 || status == 413 || status == 431)
        code = "invalid";
    else if (status == 405 || status == 501)
        code = "not-supported";
    else if (status == 503 || status == 504)
        code = "transient";
    else if (status / 100 == 5)
        code = "exception";
    return "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":" +
           tools::json_quote(code) + ",\"diagnostics\":" + tools::json_quote(diagnostics) + "}]}";
}

HttpAnswer route_fhir(const tools::HttpRequestHead& request, std::uint64_t serial)
{
    const std::string_view target = request.target;
    const auto question = target.find('?');
    const auto path = target.substr(0, question);
    const auto query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);
    const bool get = request.method == "GET" || request.method == "HEAD";

    if (path == "/healthz")
        return get ? HttpAnswer{200, "{\"status\":\"ok\"}", {}} : error_answer(405, "use GET");

    constexpr std::string_view kPatient = "/fhir/Patient/";
    if (path.starts_with(kPatient)) {
        const auto id = path.substr(kPatient.size());
        if (!get)
            return error_answer(405, "Patient is read-only here; use GET");
        if (!is_fhir_id(id))
            return error_answer(404, "no Patient with that id");
        return {200, patient_json(id), {}};
    }

    if (path == "/fhir/Observation") {
        if (request.method == "POST") {
            const auto id = "obs-" + std::to_string(serial);
            return {201, observation_json(id, "example"), "/fhir/Observation/" + id};
        }
        if (!get)
            return error_answer(405, "use GET to search or POST to create");
        const auto patient = query_value(query, "patient");
        if (!patient || !is_fhir_id(*patient))
            return error_answer(400, "search needs patient=ID");
        return {200,
                "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":1,\"entry\":[{\"resource\":" +
                    observation_json("obs-" + *patient + "-1", *patient) + "}]}",
                {}};
    }
    return error_answer(404, "unknown path");
}

std::string render_http_response(const HttpAnswer& answer, bool keep_alive)
{
    std::string response = "HTTP/1.1 " + std::to_string(answer.status) + " " +
                           std::string(tools::reason_phrase(answer.status)) +
                           "\r\nServer: shhim-testsvc\r\nContent-Type: application/fhir+json\r\nContent-Length: " +
                           std::to_string(answer.body.size()) + "\r\nConnection: " +
                           (keep_alive ? "keep-alive" : "close") + "\r\n";
    if (!answer.location.empty())
        response += "Location: " + answer.location + "\r\n";
    response += "\r\n";
    response += answer.body;
    return response;
}

namespace {

bool is_health_probe(const tools::HttpRequestHead& request)
{
    const std::string_view target = request.target;
    return target.substr(0, target.find('?')) == "/healthz";
}

// Sends part of `response` and ends the connection as the fault says.
void send_cut_short(Listener& listener, ServerConnection& connection, std::string_view response, CloseMode mode)
{
    // Half the bytes: always the whole status line, never the whole message.
    const auto cut = std::max<std::size_t>(1, response.size() / 2);
    connection.send_all(response.substr(0, cut));
    if (mode == CloseMode::Rst)
        connection.reset_on_close();
    listener.count("close_mid");
    listener.context().log.debug("{} -> {}: close-mid-response fault: sent {} of {} bytes, then {}", listener.name(),
                                 connection.peer(), cut, response.size(), to_string(mode));
}

// Decides the answer to one request; returns false when the connection must end.
bool answer_request(Listener& listener, ServerConnection& connection, const ReceivedRequest& request)
{
    auto& log = listener.context().log;
    const Faults faults = listener.faults();
    if (faults.hang) {
        listener.count("hang");
        log.debug("{} <- {}: hang fault: not answering", listener.name(), connection.peer());
        connection.drain_until_closed();
        return false;
    }

    bool keep_alive = tools::keeps_alive(request.head.version, request.head.headers);
    std::string header_error;
    const auto forced = forced_status(request.head, header_error);
    HttpAnswer answer = route_fhir(request.head, listener.next_serial());
    if (!header_error.empty()) {
        answer = error_answer(400, header_error);
    } else if (forced) {
        answer = impose_status(std::move(answer), *forced, "status forced by X-Shhim-Status");
    } else if (!is_health_probe(request.head)) {
        // Health probes never take a slot: the rotation stays exact for real traffic.
        if (const auto key = listener.next_mix_key())
            answer = impose_status(std::move(answer), std::stoi(*key), "status chosen by the status mix fault");
    }

    if (!sleep_unless_stopped(faults.latency, listener.context().stop))
        return false;
    std::string response = render_http_response(answer, keep_alive);
    if (request.head.method == "HEAD")
        response.resize(response.size() - answer.body.size());
    if (faults.close_mid != CloseMode::Off) {
        send_cut_short(listener, connection, response, faults.close_mid);
        return false;
    }
    if (!connection.send_all(response)) {
        log.error("{} -> {}: send: {}", listener.name(), connection.peer(), tools::errno_text(connection.last_error()));
        listener.count("send_error");
        return false;
    }
    listener.count(std::to_string(answer.status));
    return keep_alive;
}

} // namespace

void serve_http_connection(Listener& listener, ServerConnection& connection)
{
    auto& log = listener.context().log;
    std::string buffer;
    for (;;) {
        ReceivedRequest request;
        const auto read = read_request(connection, buffer, request);
        switch (read.kind) {
        case ReadOutcome::Kind::PeerClosed:
            return;
        case ReadOutcome::Kind::IoError:
            log.error("{} <- {}: {}", listener.name(), connection.peer(), read.error);
            listener.count("receive_error");
            return;
        case ReadOutcome::Kind::Malformed:
            log.error("{} <- {}: malformed request: {}", listener.name(), connection.peer(), read.error);
            listener.count("malformed");
            connection.send_all(render_http_response(error_answer(read.status, read.error), false));
            return;
        case ReadOutcome::Kind::Request:
            if (!answer_request(listener, connection, request))
                return;
        }
    }
}

} // namespace shhim::testsvc
