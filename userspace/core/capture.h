// Packet capture, the pure parts (issue 6): a CaptureRequest and the
// applied policy -> the kernel's filter (struct shhim_capture_config), and
// a kernel sample -> the API's CapturedPacket.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

// Most packets one capture may ask for.
inline constexpr std::uint32_t kMaxCaptureCount = 100000;

// A request the kernel cannot be armed with; the message names the field.
class CaptureRequestError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// The kernel filter for `request` (remaining = count, session 0: the
// datapath sets it). `policy` may be null (no policy applied): then a
// --service filter is an error. `ifindex` is the resolved interface, 0 for
// any. Throws CaptureRequestError: count outside 1..kMaxCaptureCount, more
// than one of service/host/port, an unknown service, a bad address, a
// port above 65535, or a service with more endpoints than the kernel takes.
shhim_capture_config captureConfig(const v1::CaptureRequest& request, const v1::Policy* policy,
                                   std::uint32_t ifindex);

// One sample as the API sends it: Unix time, direction from the hook,
// exactly cap_len header bytes. The interface name is the caller's.
v1::CapturedPacket toCapturedPacket(const shhim_capture_sample& sample, std::int64_t mono_to_unix_ns,
                                    std::uint64_t seq);

}  // namespace shhim::core
