// Classic libpcap files (the format tcpdump, Wireshark and tshark read):
// a 24-byte global header, then per packet a 16-byte record header and the
// captured bytes. Little-endian, LINKTYPE_ETHERNET, nanosecond timestamps
// (magic 0xa1b23c4d) or microseconds (0xa1b2c3d4).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace shhim::core {

inline constexpr std::uint32_t kPcapMagicMicros = 0xa1b2c3d4;
inline constexpr std::uint32_t kPcapMagicNanos = 0xa1b23c4d;
inline constexpr std::uint32_t kPcapLinktypeEthernet = 1;

enum class PcapPrecision { Micros, Nanos };

// The global header; snaplen is the most bytes any record carries.
std::string pcapFileHeader(PcapPrecision precision, std::uint32_t snaplen);

// One record: timestamp (Unix ns, shown at the file's precision), incl_len
// = captured.size(), orig_len = the frame's length on the wire, then the
// captured bytes.
std::string pcapRecord(PcapPrecision precision, std::int64_t time_unix_ns, std::uint32_t wire_length,
                       std::string_view captured);

}  // namespace shhim::core
