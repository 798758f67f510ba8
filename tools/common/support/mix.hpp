// mix.hpp - weighted outcome mixes ("200:70,404:20,503:10") and their deterministic rotation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shhim::tools {

// What the keys of a mix are.
enum class MixKind {
    HttpStatus, // three-digit HTTP status codes 200..599
    MllpAck,    // HL7 acknowledgement codes AA AE AR CA CE CR
};

struct MixEntry {
    std::string key;
    std::uint32_t weight = 0;
};

// A parsed mix plus its rotation: slot i of the rotation is key_at(i). Every run of
// total() consecutive slots holds each key exactly `weight` times, and keys are
// interleaved (smooth weighted round robin), so the first N slots of a mix whose total
// divides N contain exactly N/total*weight of each key whatever the concurrency.
class Mix {
public:
    // Throws std::invalid_argument naming the bad entry ("'404x:3': ...").
    static Mix parse(std::string_view text, MixKind kind);

    [[nodiscard]] std::uint64_t total() const { return slots_.size(); }
    [[nodiscard]] const std::vector<MixEntry>& entries() const { return entries_; }
    // The key of rotation slot `index` (index wraps around total()).
    [[nodiscard]] const std::string& key_at(std::uint64_t index) const;
    // The mix in its canonical text form, "200:70,404:20".
    [[nodiscard]] std::string to_string() const;

private:
    std::vector<MixEntry> entries_;
    std::vector<std::uint32_t> slots_; // entry index per rotation slot
};

// The largest total weight of a mix: bounds the rotation table (4 bytes per slot).
inline constexpr std::uint64_t kMaxMixTotal = 10'000'000;

[[nodiscard]] bool is_http_status_code(std::string_view text);
[[nodiscard]] bool is_mllp_ack_code(std::string_view text);

} // namespace shhim::tools
