#include "faults.hpp"

#include "support/json.hpp"

#include <charconv>
#include <stdexcept>

namespace shhim::testsvc {

namespace {

bool parse_bool(std::string_view key, std::string_view text)
{
    if (text == "1" || text == "true" || text == "on" || text == "yes")
        return true;
    if (text == "0" || text == "false" || text == "off" || text == "no" || text.empty())
        return false;
    throw std::invalid_argument(std::string(key) + ": '" + std::string(text) + "' is not a boolean (1/0, true/false)");
}

// An empty text, "off" or "none" clears the mix.
std::shared_ptr<const tools::Mix> parse_mix_value(std::string_view key, std::string_view text, tools::MixKind kind)
{
    if (text.empty() || text == "off" || text == "none")
        return nullptr;
    try {
        return std::make_shared<const tools::Mix>(tools::Mix::parse(text, kind));
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string(key) + ": " + e.what());
    }
}

std::string mix_json(const std::shared_ptr<const tools::Mix>& mix)
{
    return mix ? tools::json_quote(mix->to_string()) : "null";
}

} // namespace

std::string_view to_string(CloseMode mode)
{
    switch (mode) {
    case CloseMode::Off: return "off";
    case CloseMode::Fin: return "fin";
    case CloseMode::Rst: return "rst";
    }
    return "off";
}

CloseMode parse_close_mode(std::string_view text)
{
    if (text == "off" || text == "0" || text == "false" || text.empty())
        return CloseMode::Off;
    if (text == "fin")
        return CloseMode::Fin;
    // A bare "on" means the harsher, more common failure: the peer sees a reset.
    if (text == "rst" || text == "1" || text == "true" || text == "on")
        return CloseMode::Rst;
    throw std::invalid_argument("'" + std::string(text) + "' is not off, fin or rst");
}

std::chrono::milliseconds parse_latency_ms(std::string_view text)
{
    long long value = -1;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value < 0 ||
        value > kMaxLatency.count())
        throw std::invalid_argument("'" + std::string(text) + "' is not a whole number of milliseconds from 0 to " +
                                    std::to_string(kMaxLatency.count()));
    return std::chrono::milliseconds(value);
}

void FaultChange::apply_to(Faults& faults) const
{
    if (reset)
        faults = Faults{};
    if (latency)
        faults.latency = *latency;
    if (status_mix)
        faults.status_mix = *status_mix;
    if (ack_mix)
        faults.ack_mix = *ack_mix;
    if (refuse)
        faults.refuse = *refuse;
    if (hang)
        faults.hang = *hang;
    if (close_mid)
        faults.close_mid = *close_mid;
}

bool set_fault_knob(FaultChange& change, std::string_view key, std::string_view value)
{
    if (key == "latency_ms") {
        try {
            change.latency = parse_latency_ms(value);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("latency_ms: " + std::string(e.what()));
        }
    } else if (key == "status_mix") {
        change.status_mix = parse_mix_value(key, value, tools::MixKind::HttpStatus);
    } else if (key == "ack_mix") {
        change.ack_mix = parse_mix_value(key, value, tools::MixKind::MllpAck);
    } else if (key == "refuse") {
        change.refuse = parse_bool(key, value);
    } else if (key == "hang") {
        change.hang = parse_bool(key, value);
    } else if (key == "close_mid" || key == "close_mid_response") {
        try {
            change.close_mid = parse_close_mode(value);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string(key) + ": " + e.what());
        }
    } else if (key == "reset" || key == "clear") {
        change.reset = parse_bool(key, value.empty() ? "1" : value);
    } else {
        return false;
    }
    return true;
}

std::string faults_json(const Faults& faults)
{
    return std::string("{\"latency_ms\":") + std::to_string(faults.latency.count()) +
           ",\"status_mix\":" + mix_json(faults.status_mix) + ",\"ack_mix\":" + mix_json(faults.ack_mix) +
           ",\"refuse\":" + (faults.refuse ? "true" : "false") + ",\"hang\":" + (faults.hang ? "true" : "false") +
           ",\"close_mid\":" + tools::json_quote(to_string(faults.close_mid)) + "}";
}

} // namespace shhim::testsvc
