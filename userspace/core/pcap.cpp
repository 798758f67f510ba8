#include "core/pcap.h"

namespace shhim::core {
namespace {

// pcap fields are in the writer's byte order; we always write little-endian.
void putLe32(std::string& out, std::uint32_t value)
{
    for (int i = 0; i < 4; ++i)
        out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void putLe16(std::string& out, std::uint16_t value)
{
    out.push_back(static_cast<char>(value & 0xff));
    out.push_back(static_cast<char>(value >> 8));
}

}  // namespace

std::string pcapFileHeader(PcapPrecision precision, std::uint32_t snaplen)
{
    std::string out;
    putLe32(out, precision == PcapPrecision::Nanos ? kPcapMagicNanos : kPcapMagicMicros);
    putLe16(out, 2);   // version 2.4
    putLe16(out, 4);
    putLe32(out, 0);   // thiszone: timestamps are UTC
    putLe32(out, 0);   // sigfigs
    putLe32(out, snaplen);
    putLe32(out, kPcapLinktypeEthernet);
    return out;
}

std::string pcapRecord(PcapPrecision precision, std::int64_t time_unix_ns, std::uint32_t wire_length,
                       std::string_view captured)
{
    const std::int64_t ns = time_unix_ns < 0 ? 0 : time_unix_ns;
    const auto seconds = static_cast<std::uint32_t>(ns / 1'000'000'000);
    const std::int64_t fraction_ns = ns % 1'000'000'000;
    const auto fraction = static_cast<std::uint32_t>(precision == PcapPrecision::Nanos ? fraction_ns
                                                                                       : fraction_ns / 1000);
    std::string out;
    out.reserve(16 + captured.size());
    putLe32(out, seconds);
    putLe32(out, fraction);
    putLe32(out, static_cast<std::uint32_t>(captured.size()));
    // orig_len is never less than what was captured.
    putLe32(out, wire_length < captured.size() ? static_cast<std::uint32_t>(captured.size()) : wire_length);
    out.append(captured);
    return out;
}

}  // namespace shhim::core
