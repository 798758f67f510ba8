#include "datapath/event_ring.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include "datapath/bpf_handles.h"
#include "datapath/error.h"

namespace shhim::datapath {

// Heap-held so that the address libbpf keeps as its callback context stays
// valid when the EventRing is moved.
struct EventRing::State {
    Callback callback;
    RingBufferPtr ring;
    std::uint64_t handled = 0;
    std::uint64_t malformed = 0;
    // An exception must not unwind through libbpf's C frames: it is parked
    // here and rethrown by consume().
    std::exception_ptr failure;

    static int onRecord(void* context, void* data, size_t size)
    {
        auto* self = static_cast<State*>(context);
        if (size < sizeof(shhim_event)) {
            ++self->malformed;
            return 0;
        }
        // The record may not be 8-byte aligned for our struct: copy it out.
        shhim_event event;
        std::memcpy(&event, data, sizeof(event));
        ++self->handled;
        try {
            self->callback(event);
        } catch (...) {
            self->failure = std::current_exception();
            return -1;  // stops ring_buffer__consume
        }
        return 0;
    }
};

EventRing::EventRing(int map_fd, Callback callback) : state_(std::make_unique<State>())
{
    state_->callback = std::move(callback);
    ring_buffer* ring = ring_buffer__new(map_fd, &State::onRecord, state_.get(), nullptr);
    if (!ring)
        throwErrno("open ring buffer shhim_events", errno);
    state_->ring.reset(ring);
}

EventRing::EventRing(EventRing&&) noexcept = default;
EventRing& EventRing::operator=(EventRing&&) noexcept = default;
EventRing::~EventRing() = default;

int EventRing::epollFd() const { return ring_buffer__epoll_fd(state_->ring.get()); }

std::uint64_t EventRing::consume()
{
    const std::uint64_t before = state_->handled;
    const int rc = ring_buffer__consume(state_->ring.get());
    if (state_->failure)
        std::rethrow_exception(std::exchange(state_->failure, nullptr));
    if (rc < 0)
        throwErrno("consume ring buffer shhim_events", rc);
    return state_->handled - before;
}

std::uint64_t EventRing::malformedRecords() const { return state_->malformed; }

}  // namespace shhim::datapath
