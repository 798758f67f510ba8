#include "mllp_service.hpp"

#include "listener.hpp"
#include "support/mix.hpp"
#include "support/mllp.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace shhim::testsvc {

namespace {

constexpr std::size_t kMaxMessageBytes = 1024 * 1024;

// The parts of an inbound message the ACK needs.
struct MessageHeader {
    char separator = '|';
    std::vector<std::string_view> msh; // msh[n-1] is MSH-n
    std::optional<std::string_view> forced_code; // ZFA-1, when present
};

std::optional<MessageHeader> read_header(std::string_view message)
{
    std::optional<MessageHeader> header;
    for (const auto segment : tools::hl7_segments(message)) {
        if (!header && segment.size() >= 4 && segment.starts_with("MSH")) {
            header.emplace();
            header->separator = segment[3];
            header->msh = tools::hl7_fields(segment, header->separator);
        } else if (header && segment.size() > 3 && segment.starts_with("ZFA") && segment[3] == header->separator) {
            const auto fields = tools::hl7_fields(segment, header->separator);
            header->forced_code = fields.size() > 1 ? fields[1] : std::string_view{};
        }
    }
    return header;
}

std::string_view field_or(const std::vector<std::string_view>& fields, std::size_t index, std::string_view fallback)
{
    return index < fields.size() && !fields[index].empty() ? fields[index] : fallback;
}

std::string hl7_timestamp(std::time_t now)
{
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[16];
    std::strftime(text, sizeof text, "%Y%m%d%H%M%S", &utc);
    return text;
}

// The trigger event of MSH-9 ("ORU^R01" -> "R01").
std::string_view trigger_event(std::string_view message_type)
{
    const auto caret = message_type.find('^');
    if (caret == std::string_view::npos)
        return {};
    const auto rest = message_type.substr(caret + 1);
    return rest.substr(0, rest.find('^'));
}

// Chooses the ack code; sets `problem` when the message itself is at fault.
std::string choose_ack_code(Listener& listener, const std::optional<MessageHeader>& header, std::string& problem)
{
    if (!header) {
        problem = "message has no MSH segment; answering AR";
        return "AR";
    }
    if (header->forced_code) {
        if (tools::is_mllp_ack_code(*header->forced_code))
            return std::string(*header->forced_code);
        problem = "ZFA code '" + std::string(header->forced_code->substr(0, 8)) + "' is not AA/AE/AR/CA/CE/CR; answering AR";
        return "AR";
    }
    if (auto key = listener.next_mix_key())
        return std::move(*key);
    return "AA";
}

// Returns false when the connection must end.
bool answer_message(Listener& listener, ServerConnection& connection, std::string_view message)
{
    auto& log = listener.context().log;
    const Faults faults = listener.faults();
    if (faults.hang) {
        listener.count("hang");
        log.debug("{} <- {}: hang fault: not answering", listener.name(), connection.peer());
        connection.drain_until_closed();
        return false;
    }
    const auto header = read_header(message);
    std::string problem;
    const auto code = choose_ack_code(listener, header, problem);
    if (!problem.empty())
        log.error("{} <- {}: {}", listener.name(), connection.peer(), problem);

    if (!sleep_unless_stopped(faults.latency, listener.context().stop))
        return false;
    const auto frame = tools::mllp_frame(build_hl7_ack(message, code, std::time(nullptr)));
    if (faults.close_mid != CloseMode::Off) {
        // Past the start block and into the MSH segment, never the whole frame.
        const auto cut = std::max<std::size_t>(1, frame.size() / 2);
        connection.send_all(std::string_view(frame).substr(0, cut));
        if (faults.close_mid == CloseMode::Rst)
            connection.reset_on_close();
        listener.count("close_mid");
        log.debug("{} -> {}: close-mid-response fault: sent {} of {} bytes, then {}", listener.name(),
                  connection.peer(), cut, frame.size(), to_string(faults.close_mid));
        return false;
    }
    if (!connection.send_all(frame)) {
        log.error("{} -> {}: send: {}", listener.name(), connection.peer(), tools::errno_text(connection.last_error()));
        listener.count("send_error");
        return false;
    }
    listener.count(code);
    return true;
}

} // namespace

std::string build_hl7_ack(std::string_view message, std::string_view code, std::time_t now)
{
    const auto header = read_header(message);
    const std::vector<std::string_view> none;
    const auto& msh = header ? header->msh : none;
    const auto control_id = field_or(msh, 9, "");
    const auto trigger = trigger_event(field_or(msh, 8, ""));
    std::string ack = "MSH|^~\\&|";
    ack += field_or(msh, 4, "SHHIM-TESTSVC"); // sending app: whoever the message was for
    ack += '|';
    ack += field_or(msh, 5, "");
    ack += '|';
    ack += field_or(msh, 2, "");
    ack += '|';
    ack += field_or(msh, 3, "");
    ack += '|' + hl7_timestamp(now) + "||ACK";
    if (!trigger.empty())
        ack += "^" + std::string(trigger) + "^ACK";
    ack += '|';
    ack += control_id;
    ack += '|';
    ack += field_or(msh, 10, "P");
    ack += '|';
    ack += field_or(msh, 11, "2.5");
    ack += "\rMSA|";
    ack += code;
    ack += '|';
    ack += control_id;
    ack += '\r';
    return ack;
}

void serve_mllp_connection(Listener& listener, ServerConnection& connection)
{
    auto& log = listener.context().log;
    std::string buffer;
    for (;;) {
        const auto scan = tools::scan_mllp_frame(buffer, kMaxMessageBytes);
        const bool noise = std::any_of(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(scan.skipped),
                                       [](char c) { return c != '\r' && c != '\n' && c != ' '; });
        if (noise) {
            log.error("{} <- {}: skipped {} bytes outside any MLLP frame", listener.name(), connection.peer(),
                      scan.skipped);
            listener.count("unframed_bytes");
        }
        if (scan.status == tools::MllpScan::Status::Oversize) {
            log.error("{} <- {}: MLLP message exceeds {} bytes; closing", listener.name(), connection.peer(),
                      kMaxMessageBytes);
            listener.count("malformed");
            return;
        }
        if (scan.status == tools::MllpScan::Status::Complete) {
            const std::string message(scan.message);
            buffer.erase(0, scan.consumed);
            if (!answer_message(listener, connection, message))
                return;
            continue;
        }
        buffer.erase(0, scan.consumed);
        const auto got = connection.receive(buffer);
        if (got == 0) {
            if (!buffer.empty()) {
                log.error("{} <- {}: peer closed in the middle of a message ({} bytes pending)", listener.name(),
                          connection.peer(), buffer.size());
                listener.count("receive_error");
            }
            return;
        }
        if (got < 0) {
            log.error("{} <- {}: receive: {}", listener.name(), connection.peer(),
                      tools::errno_text(connection.last_error()));
            listener.count("receive_error");
            return;
        }
    }
}

} // namespace shhim::testsvc
