// Consumer of the shhim_events ring buffer. The agent polls epollFd() in
// its own loop and calls consume() when it is readable; every complete
// struct shhim_event record is handed to the callback in kernel order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "shhim_abi.h"

namespace shhim::datapath {

class EventRing {
public:
    using Callback = std::function<void(const shhim_event&)>;

    // map_fd: the shhim_events map (Maps::eventsFd()); only borrowed.
    EventRing(int map_fd, Callback callback);
    EventRing(EventRing&&) noexcept;
    EventRing& operator=(EventRing&&) noexcept;
    ~EventRing();

    // Readable when records are waiting.
    int epollFd() const;
    // Hands every waiting record to the callback; returns how many.
    std::uint64_t consume();
    // Records shorter than struct shhim_event (another ABI): skipped, counted.
    std::uint64_t malformedRecords() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace shhim::datapath
