// mllp.hpp - HL7 v2 over MLLP: framing (0x0b message 0x1c 0x0d) and segment/field splitting.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace shhim::tools {

inline constexpr char kMllpStartBlock = 0x0b;
inline constexpr char kMllpEndBlock = 0x1c;
inline constexpr char kCarriageReturn = 0x0d;

// Wraps one HL7 message in an MLLP frame.
std::string mllp_frame(std::string_view message);

// The result of looking for one frame at the front of a receive buffer.
struct MllpScan {
    enum class Status {
        Incomplete, // need more bytes
        Complete,   // `message` is the payload; drop `consumed` bytes from the buffer
        Oversize,   // the frame exceeds the size limit
    };
    Status status = Status::Incomplete;
    std::string_view message; // points into the scanned buffer
    std::size_t consumed = 0;
    std::size_t skipped = 0;  // bytes before the start block that were not part of any frame
};
MllpScan scan_mllp_frame(std::string_view buffer, std::size_t max_message_bytes);

// Segments of an HL7 message: split on '\r' (a stray '\n' after it is tolerated); empty ones dropped.
std::vector<std::string_view> hl7_segments(std::string_view message);
// Fields of one segment split on `separator`; fields[0] is the segment name. For MSH,
// fields[n-1] is MSH-n (MSH-1 is the separator itself).
std::vector<std::string_view> hl7_fields(std::string_view segment, char separator);

} // namespace shhim::tools
