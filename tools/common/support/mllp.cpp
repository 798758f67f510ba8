#include "support/mllp.hpp"

namespace shhim::tools {

std::string mllp_frame(std::string_view message)
{
    std::string frame;
    frame.reserve(message.size() + 3);
    frame += kMllpStartBlock;
    frame += message;
    frame += kMllpEndBlock;
    frame += kCarriageReturn;
    return frame;
}

MllpScan scan_mllp_frame(std::string_view buffer, std::size_t max_message_bytes)
{
    MllpScan scan;
    const auto start = buffer.find(kMllpStartBlock);
    if (start == std::string_view::npos) {
        // Nothing framed yet: everything seen so far is noise; keep none of it.
        scan.skipped = buffer.size();
        scan.consumed = buffer.size();
        return scan;
    }
    scan.skipped = start;
    const auto body = buffer.substr(start + 1);
    for (std::size_t i = 0; i + 1 < body.size(); ++i) {
        if (body[i] == kMllpEndBlock && body[i + 1] == kCarriageReturn) {
            if (i > max_message_bytes)
                break;
            scan.status = MllpScan::Status::Complete;
            scan.message = body.substr(0, i);
            scan.consumed = start + 1 + i + 2;
            return scan;
        }
    }
    if (body.size() > max_message_bytes + 1) {
        scan.status = MllpScan::Status::Oversize;
        return scan;
    }
    // Incomplete: drop only the noise in front of the start block.
    scan.consumed = start;
    return scan;
}

std::vector<std::string_view> hl7_segments(std::string_view message)
{
    std::vector<std::string_view> segments;
    while (!message.empty()) {
        const auto end = message.find_first_of("\r\n");
        const auto segment = message.substr(0, end);
        if (!segment.empty())
            segments.push_back(segment);
        if (end == std::string_view::npos)
            break;
        message.remove_prefix(end + 1);
    }
    return segments;
}

std::vector<std::string_view> hl7_fields(std::string_view segment, char separator)
{
    std::vector<std::string_view> fields;
    for (;;) {
        const auto end = segment.find(separator);
        fields.push_back(segment.substr(0, end));
        if (end == std::string_view::npos)
            return fields;
        segment.remove_prefix(end + 1);
    }
}

} // namespace shhim::tools
