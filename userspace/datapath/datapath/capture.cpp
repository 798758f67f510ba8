#include "datapath/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include "datapath/bpf_handles.h"
#include "datapath/error.h"
#include "datapath/kernel_objects.h"

namespace shhim::datapath {
namespace {

constexpr std::string_view kConfigMap = "shhim_capture_config";
constexpr std::string_view kRingMap = "shhim_capture_ring";
constexpr std::string_view kOlderBuildHint = "loaded by a shhim build without packet capture: restart shhimd";

// A session id that differs between captures, also across agent restarts
// (the ring is pinned and may still hold an earlier capture's samples).
std::uint32_t newSessionId()
{
    timespec ts = {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::uint64_t ns = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
    const auto id = static_cast<std::uint32_t>(ns ^ (ns >> 32));
    return id == 0 ? 1 : id;
}

}  // namespace

// Heap-held: libbpf keeps its address as the ring callback's context.
struct CaptureSession::State {
    Callback callback;
    UniqueFd config;
    UniqueFd ring_map;
    RingBufferPtr ring;
    std::uint32_t session = 0;
    std::uint64_t handed = 0;
    // An exception must not unwind through libbpf's C frames.
    std::exception_ptr failure;

    static int onRecord(void* context, void* data, size_t size)
    {
        auto* self = static_cast<State*>(context);
        if (size < sizeof(shhim_capture_sample))
            return 0;
        shhim_capture_sample sample;
        std::memcpy(&sample, data, sizeof(sample));
        if (sample.session != self->session || sample.cap_len > SHHIM_CAPTURE_MAX_BYTES)
            return 0;
        ++self->handed;
        try {
            self->callback(sample);
        } catch (...) {
            self->failure = std::current_exception();
            return -1;
        }
        return 0;
    }

    void write(const shhim_capture_config& value) const
    {
        const __u32 zero = 0;
        if (bpf_map_update_elem(config.get(), &zero, &value, BPF_ANY) != 0)
            throwErrno("write " + std::string(kConfigMap), errno);
    }
};

CaptureSession::CaptureSession(const std::string& pin_root, Callback callback) : state_(std::make_unique<State>())
{
    state_->callback = std::move(callback);
    state_->config = openPinnedMap(pin_root, kConfigMap, kOlderBuildHint);
    checkLayout(state_->config.get(), kConfigMap, sizeof(__u32), sizeof(shhim_capture_config));
    state_->ring_map = openPinnedMap(pin_root, kRingMap, kOlderBuildHint);
    ring_buffer* ring = ring_buffer__new(state_->ring_map.get(), &State::onRecord, state_.get(), nullptr);
    if (!ring)
        throwErrno("open ring buffer " + std::string(kRingMap), errno);
    state_->ring.reset(ring);
    state_->session = newSessionId();
}

CaptureSession::CaptureSession(CaptureSession&&) noexcept = default;
CaptureSession& CaptureSession::operator=(CaptureSession&&) noexcept = default;

CaptureSession::~CaptureSession()
{
    if (state_)
        disarm();
}

void CaptureSession::arm(shhim_capture_config config)
{
    config.session = state_->session;
    state_->write(config);
}

void CaptureSession::disarm() noexcept
{
    shhim_capture_config off = {};
    off.session = state_->session;
    try {
        state_->write(off);
    } catch (const Error&) {
        // The map is gone (detached): nothing is armed any more either.
    }
}

std::int64_t CaptureSession::remaining() const
{
    const __u32 zero = 0;
    shhim_capture_config value = {};
    if (bpf_map_lookup_elem(state_->config.get(), &zero, &value) != 0)
        throwErrno("read " + std::string(kConfigMap), errno);
    return value.session == state_->session && value.remaining > 0 ? value.remaining : 0;
}

std::uint64_t CaptureSession::poll(std::chrono::milliseconds timeout)
{
    const std::uint64_t before = state_->handed;
    const int rc = ring_buffer__poll(state_->ring.get(), static_cast<int>(timeout.count()));
    if (state_->failure)
        std::rethrow_exception(std::exchange(state_->failure, nullptr));
    if (rc < 0 && rc != -EINTR)
        throwErrno("poll ring buffer " + std::string(kRingMap), -rc);
    return state_->handed - before;
}

std::uint32_t CaptureSession::session() const { return state_->session; }

}  // namespace shhim::datapath
