// faults.hpp - the fault knobs of one listener and partial changes to them.
#pragma once

#include "support/mix.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace shhim::testsvc {

// How a response is cut short by the close-mid-response fault.
enum class CloseMode {
    Off,
    Fin, // send part of the response, then close normally (peer sees EOF)
    Rst, // send part of the response, then abort (SO_LINGER 0: peer sees a reset)
};
std::string_view to_string(CloseMode mode);

// What a listener does wrong. Mixes are shared, immutable, and swapped whole.
struct Faults {
    std::chrono::milliseconds latency{0}; // before the first response byte
    std::shared_ptr<const tools::Mix> status_mix; // HTTP listeners; null = route decides
    std::shared_ptr<const tools::Mix> ack_mix;    // MLLP listeners; null = AA
    bool refuse = false; // listening socket closed: connects get RST
    bool hang = false;   // read requests, never answer
    CloseMode close_mid = CloseMode::Off;
};

inline constexpr std::chrono::milliseconds kMaxLatency{600'000};

// A partial update: fields left unset keep their value. `reset` clears every fault first.
struct FaultChange {
    bool reset = false;
    std::optional<std::chrono::milliseconds> latency;
    std::optional<std::shared_ptr<const tools::Mix>> status_mix; // engaged null = clear
    std::optional<std::shared_ptr<const tools::Mix>> ack_mix;
    std::optional<bool> refuse;
    std::optional<bool> hang;
    std::optional<CloseMode> close_mid;

    void apply_to(Faults& faults) const;
    [[nodiscard]] bool touches_status_mix() const { return reset || status_mix.has_value(); }
    [[nodiscard]] bool touches_ack_mix() const { return reset || ack_mix.has_value(); }
};

// Sets one knob from its text form: latency_ms, status_mix, ack_mix, refuse, hang,
// close_mid (also close_mid_response), reset. Returns false for an unknown key; throws
// std::invalid_argument with "KEY: why" for a bad value.
bool set_fault_knob(FaultChange& change, std::string_view key, std::string_view value);

// {"latency_ms":40,"status_mix":"200:70,503:30","ack_mix":null,"refuse":false,...}
std::string faults_json(const Faults& faults);

// Parses the --close-mid-response / close_mid value (off|fin|rst, and 0/1/true/false).
CloseMode parse_close_mode(std::string_view text);
std::chrono::milliseconds parse_latency_ms(std::string_view text);

} // namespace shhim::testsvc
