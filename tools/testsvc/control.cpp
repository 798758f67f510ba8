#include "control.hpp"

#include "support/http_wire.hpp"
#include "support/json.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <stdexcept>
#include <utility>

namespace shhim::testsvc {

const char* const kControlApiHelp = R"(Runtime control (--control ADDR:PORT, HTTP/1.1, JSON replies):
  GET  /faults          every listener: address, faults, rotation index, counts of outcomes
  POST /faults          change knobs; only the knobs given change. Knobs come as a JSON object
                        body, or as query/form parameters:
         curl -X POST http://CTL/faults -d '{"latency_ms": 40, "status_mix": "200:8,503:2"}'
         curl -X POST 'http://CTL/faults?refuse=1&listener=198.18.0.2:8080'
       knobs: latency_ms (0..600000), status_mix (MIX, "" or null clears), ack_mix (MIX),
              refuse, hang (true/false or 1/0), close_mid (off|fin|rst), reset (true: all
              knobs back to none before the others apply)
       scope: listener=ADDR:PORT and/or protocol=http|mllp (default: every listener)
  POST /faults/reset    every knob of the scoped listeners back to none (also /faults/clear)
  GET  /healthz         {"status":"ok"}
  A change answers only once it is in effect (a refused port no longer listens); setting a
  mix restarts that listener's rotation at slot 0. 400 names a bad knob or value.)";

namespace {

constexpr std::size_t kMaxControlRequestBytes = 64 * 1024;
constexpr int kControlIoTimeoutS = 2;

ControlReply error_reply(int status, std::string_view message)
{
    return {status, "{\"error\":" + tools::json_quote(message) + "}"};
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Query parameters plus the body: a JSON object, or form-encoded text.
std::optional<Pairs> collect_parameters(std::string_view query, std::string_view content_type, std::string_view body,
                                        std::string& error)
{
    Pairs pairs;
    if (!tools::parse_query(query, pairs)) {
        error = "bad %-escape in the query string";
        return std::nullopt;
    }
    auto first = body.find_first_not_of(" \t\r\n");
    const bool json = content_type.find("json") != std::string_view::npos ||
                      (first != std::string_view::npos && body[first] == '{');
    if (json) {
        auto members = tools::parse_flat_json_object(body, error);
        if (!members)
            return std::nullopt;
        for (auto& member : *members)
            pairs.push_back(std::move(member));
    } else if (!tools::parse_query(body, pairs)) {
        error = "bad %-escape in the form body";
        return std::nullopt;
    }
    return pairs;
}

} // namespace

ControlServer::ControlServer(tools::Endpoint where, std::vector<std::unique_ptr<Listener>>& listeners,
                             spdlog::logger& log, const StopSignal& stop)
    : bound_(where), listeners_(listeners), log_(log), stop_(stop)
{
}

void ControlServer::bind()
{
    listen_fd_ = tools::listen_tcp(bound_, 64);
    bound_ = tools::local_endpoint_of(listen_fd_.get());
}

void ControlServer::run()
{
    for (;;) {
        pollfd fds[2] = {{stop_.fd(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
            log_.error("control {}: poll: {}", bound_.to_string(), tools::errno_text(errno));
            return;
        }
        if (fds[0].revents != 0)
            return;
        if (fds[1].revents == 0)
            continue;
        UniqueFd connection(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (connection.valid())
            serve_one(std::move(connection));
    }
}

void ControlServer::serve_one(UniqueFd connection)
{
    // One request at a time, on this thread: a stuck client may delay control for at most this.
    const timeval io_timeout{kControlIoTimeoutS, 0};
    ::setsockopt(connection.get(), SOL_SOCKET, SO_RCVTIMEO, &io_timeout, sizeof io_timeout);
    ::setsockopt(connection.get(), SOL_SOCKET, SO_SNDTIMEO, &io_timeout, sizeof io_timeout);

    std::string buffer;
    std::optional<tools::HttpRequestHead> head;
    std::size_t body_bytes = 0;
    std::size_t head_end = 0;
    std::string error;
    for (;;) {
        if (!head) {
            if (const auto end = tools::find_head_end(buffer)) {
                head_end = *end;
                head = tools::parse_request_head(std::string_view(buffer).substr(0, head_end), error);
                if (head)
                    body_bytes = tools::content_length(head->headers, error).value_or(0);
                if (!head || !error.empty())
                    break;
            }
        }
        if (head && buffer.size() >= head_end + body_bytes)
            break;
        if (buffer.size() > kMaxControlRequestBytes) {
            error = "control request larger than 64 KiB";
            break;
        }
        char chunk[4096];
        const auto got = ::recv(connection.get(), chunk, sizeof chunk, 0);
        if (got <= 0) {
            if (!buffer.empty())
                log_.error("control {}: request cut short: {}", bound_.to_string(),
                           got == 0 ? "peer closed" : tools::errno_text(errno));
            return;
        }
        buffer.append(chunk, static_cast<std::size_t>(got));
    }

    ControlReply reply;
    if (!error.empty()) {
        log_.error("control {}: malformed request: {}", bound_.to_string(), error);
        reply = error_reply(400, error);
    } else {
        const auto content_type = tools::find_header(head->headers, "Content-Type").value_or("");
        reply = handle(head->method, head->target, content_type,
                       std::string_view(buffer).substr(head_end, body_bytes));
    }
    const auto response = "HTTP/1.1 " + std::to_string(reply.status) + " " +
                          std::string(tools::reason_phrase(reply.status)) +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(reply.body.size() + 1) + "\r\nConnection: close\r\n\r\n" + reply.body + "\n";
    std::string_view rest = response;
    while (!rest.empty()) {
        const auto sent = ::send(connection.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
        if (sent <= 0)
            return;
        rest.remove_prefix(static_cast<std::size_t>(sent));
    }
}

ControlReply ControlServer::handle(std::string_view method, std::string_view target, std::string_view content_type,
                                   std::string_view body)
{
    const auto question = target.find('?');
    const auto path = target.substr(0, question);
    const auto query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);

    if (path == "/healthz")
        return {200, "{\"status\":\"ok\"}"};
    if (path == "/faults" || path == "/state") {
        if (method == "GET")
            return {200, state_json()};
        if (method == "POST" && path == "/faults")
            return change_faults(query, content_type, body, false);
        return error_reply(405, "use GET " + std::string(path) + " or POST /faults");
    }
    if (path == "/faults/reset" || path == "/faults/clear") {
        if (method != "POST")
            return error_reply(405, "use POST " + std::string(path));
        return change_faults(query, content_type, body, true);
    }
    return error_reply(404, "unknown path " + std::string(path) + "; see shhim-testsvc --help");
}

ControlReply ControlServer::change_faults(std::string_view query, std::string_view content_type,
                                          std::string_view body, bool reset_first)
{
    std::string error;
    const auto parameters = collect_parameters(query, content_type, body, error);
    if (!parameters)
        return error_reply(400, error);

    FaultChange change;
    change.reset = reset_first;
    std::optional<std::string> only_listener;
    std::optional<std::string> only_protocol;
    bool any_knob = reset_first;
    try {
        for (const auto& [key, value] : *parameters) {
            if (key == "listener") {
                only_listener = tools::parse_endpoint(value).to_string();
            } else if (key == "protocol") {
                if (value != "http" && value != "mllp")
                    throw std::invalid_argument("protocol: '" + value + "' is not http or mllp");
                only_protocol = value;
            } else if (set_fault_knob(change, key, value)) {
                any_knob = true;
            } else {
                throw std::invalid_argument("unknown knob '" + key +
                                            "' (knobs: latency_ms status_mix ack_mix refuse hang close_mid reset; "
                                            "scope: listener protocol)");
            }
        }
    } catch (const std::invalid_argument& e) {
        return error_reply(400, e.what());
    }
    if (!any_knob)
        return error_reply(400, "no fault knob given; see shhim-testsvc --help");

    std::string failures;
    std::size_t matched = 0;
    for (auto& listener : listeners_) {
        if (only_listener && listener->bound().to_string() != *only_listener)
            continue;
        if (only_protocol && to_string(listener->protocol()) != *only_protocol)
            continue;
        ++matched;
        const auto failure = listener->apply(change);
        log_.info("control: {} faults now {}", listener->name(), faults_json(listener->faults()));
        if (!failure.empty())
            failures += (failures.empty() ? "" : "; ") + failure;
    }
    if (matched == 0)
        return error_reply(404, "no listener matches " + only_listener.value_or("") + " " + only_protocol.value_or(""));
    if (!failures.empty())
        return error_reply(500, failures);
    return {200, state_json()};
}

std::string ControlServer::state_json() const
{
    std::string json = "{\"listeners\":[";
    for (std::size_t i = 0; i < listeners_.size(); ++i)
        json += (i ? "," : "") + listeners_[i]->state_json();
    return json + "]}";
}

} // namespace shhim::testsvc
