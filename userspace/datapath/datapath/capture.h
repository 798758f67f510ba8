// Packet capture in the kernel (bpf/shhim_abi.h, "Packet capture"): arms
// and disarms shhim_capture_config and reads the samples the hooks send to
// shhim_capture_ring. One CaptureSession at a time per agent; the agent
// serialises that, this class only moves bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "shhim_abi.h"

namespace shhim::datapath {

class CaptureSession {
public:
    using Callback = std::function<void(const shhim_capture_sample&)>;

    // Opens the pinned capture maps and a consumer of the ring; throws Error.
    // Samples of other sessions still in the ring (a capture that was cut
    // short) are skipped, never handed to the callback.
    CaptureSession(const std::string& pin_root, Callback callback);
    CaptureSession(CaptureSession&&) noexcept;
    CaptureSession& operator=(CaptureSession&&) noexcept;
    // Disarms.
    ~CaptureSession();

    // Writes the config entry: from now on matching packets are sent, at
    // most config.remaining of them. config.session is set here.
    void arm(shhim_capture_config config);
    // remaining = 0: the hooks stop sending. Idempotent, never throws.
    void disarm() noexcept;
    // Samples the kernel has yet to send (0 once disarmed or done).
    std::int64_t remaining() const;

    // Waits up to `timeout` for samples and hands each of this session to
    // the callback; returns how many it handed over.
    std::uint64_t poll(std::chrono::milliseconds timeout);

    std::uint32_t session() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace shhim::datapath
