#include "client.hpp"

#include "support/http_wire.hpp"
#include "support/mix.hpp"
#include "support/mllp.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <ctime>

namespace shhim::loadgen {

namespace {

constexpr std::size_t kMaxResponseHeadBytes = 64 * 1024;
constexpr std::size_t kMaxResponseBytes = 16 * 1024 * 1024;

enum class Io { Ok, Eof, Timeout, Error };

struct IoResult {
    Io status = Io::Ok;
    int error = 0;
};

// Waits for `events` on `fd` until `deadline` (nanosecond precision).
IoResult wait_for(int fd, short events, Clock::time_point deadline)
{
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
        if (left <= 0)
            return {Io::Timeout, 0};
        const timespec timeout{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
        pollfd poll_fd{fd, events, 0};
        const int ready = ppoll(&poll_fd, 1, &timeout, nullptr);
        if (ready > 0)
            return {}; // readable/writable, or an error the next call will report
        if (ready < 0 && errno != EINTR)
            return {Io::Error, errno};
    }
}

IoResult send_all(int fd, std::string_view bytes, Clock::time_point deadline)
{
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(sent));
            continue;
        }
        if (sent < 0 && errno != EAGAIN && errno != EINTR)
            return {Io::Error, errno};
        if (const auto waited = wait_for(fd, POLLOUT, deadline); waited.status != Io::Ok)
            return waited;
    }
    return {};
}

// Appends what is available (waiting for something until `deadline`).
IoResult receive_some(int fd, std::string& buffer, Clock::time_point deadline)
{
    char chunk[16384];
    for (;;) {
        const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
        if (got > 0) {
            buffer.append(chunk, static_cast<std::size_t>(got));
            return {};
        }
        if (got == 0)
            return {Io::Eof, 0};
        if (errno != EAGAIN && errno != EINTR)
            return {Io::Error, errno};
        if (const auto waited = wait_for(fd, POLLIN, deadline); waited.status != Io::Ok)
            return waited;
    }
}

Failure failure_of(int error)
{
    switch (error) {
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
        return Failure::Reset;
    case ETIMEDOUT:
        return Failure::Timeout;
    default:
        return Failure::OtherError;
    }
}

ExchangeResult failed(ExchangeResult result, Failure failure, std::string detail)
{
    result.failure = failure;
    result.detail = std::move(detail);
    result.reusable = false;
    return result;
}

// Maps a failed send/receive onto the exchange result.
ExchangeResult io_failure(ExchangeResult result, const IoResult& io, std::string_view step)
{
    switch (io.status) {
    case Io::Timeout:
        return failed(std::move(result), Failure::Timeout, std::string(step) + ": no complete response in time");
    case Io::Eof:
        return failed(std::move(result), Failure::Eof, std::string(step) + ": peer closed the connection");
    default:
        return failed(std::move(result), failure_of(io.error), std::string(step) + ": " + tools::errno_text(io.error));
    }
}

// How an HTTP response under construction stands.
struct HttpProgress {
    std::optional<tools::HttpResponseHead> head;
    std::size_t head_end = 0;
    std::optional<std::size_t> body_length; // nullopt: the body runs to EOF
};

// Parses the head once it is complete; returns an error text for a bad response.
std::string advance_http(HttpProgress& progress, std::string& buffer, bool head_request)
{
    while (!progress.head) {
        const auto end = tools::find_head_end(buffer);
        if (!end)
            return buffer.size() > kMaxResponseHeadBytes ? "response head larger than 64 KiB" : "";
        std::string error;
        auto head = tools::parse_response_head(std::string_view(buffer).substr(0, *end), error);
        if (!head)
            return error;
        if (head->status < 200) { // interim 1xx: skip it, the real response follows
            buffer.erase(0, *end);
            continue;
        }
        progress.head_end = *end;
        if (head_request || head->status == 204 || head->status == 304) {
            progress.body_length = 0;
        } else if (tools::find_header(head->headers, "Transfer-Encoding")) {
            return "chunked responses are not supported";
        } else {
            progress.body_length = tools::content_length(head->headers, error);
            if (!error.empty())
                return error;
        }
        progress.head = std::move(head);
    }
    return "";
}

ConnectResult connect_failed(Failure failure, std::string detail, Clock::time_point start)
{
    ConnectResult result;
    result.failure = failure;
    result.detail = std::move(detail);
    result.elapsed = Clock::now() - start;
    return result;
}

// A connect that failed with `error`: refused, timed out, or anything else.
ConnectResult connect_failed(int error, const tools::Endpoint& target, Clock::time_point start)
{
    const auto failure = error == ECONNREFUSED ? Failure::ConnectRefused
                         : error == ETIMEDOUT  ? Failure::ConnectTimeout
                                               : Failure::ConnectError;
    return connect_failed(failure, "connect " + target.to_string() + ": " + tools::errno_text(error), start);
}

} // namespace

ConnectResult connect_to(const tools::Endpoint& target, std::chrono::milliseconds timeout)
{
    const auto start = Clock::now();
    UniqueFd fd(::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return connect_failed(Failure::ConnectError, "socket: " + tools::errno_text(errno), start);
    const int on = 1;
    // Requests go out in one write; Nagle would only delay a second segment.
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (::connect(fd.get(), target.addr(), target.length) != 0) {
        if (errno != EINPROGRESS)
            return connect_failed(errno, target, start);
        const auto waited = wait_for(fd.get(), POLLOUT, start + timeout);
        if (waited.status == Io::Timeout)
            return connect_failed(Failure::ConnectTimeout,
                                  "connect " + target.to_string() + ": no answer within " +
                                      std::to_string(timeout.count()) + " ms",
                                  start);
        if (waited.status == Io::Error)
            return connect_failed(waited.error, target, start);
        int error = 0;
        socklen_t length = sizeof error;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0)
            error = errno;
        if (error != 0)
            return connect_failed(error, target, start);
    }
    ConnectResult result;
    result.fd = std::move(fd);
    result.elapsed = Clock::now() - start;
    return result;
}

ExchangeResult exchange_http(int fd, std::string_view request, bool head_request, std::chrono::milliseconds timeout)
{
    ExchangeResult result;
    const auto start = Clock::now(); // "just before the request write"
    const auto deadline = start + timeout;
    if (const auto sent = send_all(fd, request, deadline); sent.status != Io::Ok)
        return io_failure(std::move(result), sent, "send");
    result.written = true;

    std::string buffer;
    HttpProgress progress;
    for (;;) {
        if (const auto error = advance_http(progress, buffer, head_request); !error.empty())
            return failed(std::move(result), Failure::ProtocolError, error);
        if (progress.head && progress.body_length && buffer.size() >= progress.head_end + *progress.body_length) {
            result.code = std::to_string(progress.head->status);
            // Bytes beyond the response would belong to nothing we asked for: do not reuse.
            result.reusable = tools::keeps_alive(progress.head->version, progress.head->headers) &&
                              buffer.size() == progress.head_end + *progress.body_length;
            return result;
        }
        if (buffer.size() > kMaxResponseBytes)
            return failed(std::move(result), Failure::ProtocolError, "response larger than 16 MiB");
        const auto got = receive_some(fd, buffer, deadline);
        if (got.status == Io::Ok && !result.first_byte)
            result.first_byte = Clock::now() - start;
        if (got.status == Io::Eof && progress.head && !progress.body_length) {
            result.code = std::to_string(progress.head->status); // body delimited by EOF
            return result;
        }
        if (got.status != Io::Ok)
            return io_failure(std::move(result), got, "receive");
    }
}

ExchangeResult exchange_mllp(int fd, std::string_view frame, std::string_view control_id,
                             std::chrono::milliseconds timeout)
{
    ExchangeResult result;
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    if (const auto sent = send_all(fd, frame, deadline); sent.status != Io::Ok)
        return io_failure(std::move(result), sent, "send");
    result.written = true;

    std::string buffer;
    for (;;) {
        const auto scan = tools::scan_mllp_frame(buffer, kMaxResponseBytes);
        if (scan.skipped > 0)
            return failed(std::move(result), Failure::ProtocolError, "bytes outside an MLLP frame in the reply");
        if (scan.status == tools::MllpScan::Status::Oversize)
            return failed(std::move(result), Failure::ProtocolError, "ACK frame larger than 16 MiB");
        if (scan.status == tools::MllpScan::Status::Complete) {
            std::string_view code;
            std::string_view answered;
            for (const auto segment : tools::hl7_segments(scan.message)) {
                if (segment.starts_with("MSA|")) {
                    const auto fields = tools::hl7_fields(segment, '|');
                    code = fields.size() > 1 ? fields[1] : std::string_view{};
                    answered = fields.size() > 2 ? fields[2] : std::string_view{};
                    break;
                }
            }
            if (!tools::is_mllp_ack_code(code))
                return failed(std::move(result), Failure::ProtocolError, "reply has no MSA segment with an ack code");
            if (answered != control_id)
                return failed(std::move(result), Failure::ProtocolError,
                              "ACK answers control id '" + std::string(answered) + "', expected '" +
                                  std::string(control_id) + "'");
            result.code = std::string(code);
            result.reusable = buffer.size() == scan.consumed;
            return result;
        }
        const auto got = receive_some(fd, buffer, deadline);
        if (got.status == Io::Ok && !result.first_byte)
            result.first_byte = Clock::now() - start;
        if (got.status != Io::Ok)
            return io_failure(std::move(result), got, "receive");
    }
}

} // namespace shhim::loadgen
