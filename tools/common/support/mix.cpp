#include "support/mix.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace shhim::tools {

namespace {

std::string_view trim(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
        text.remove_suffix(1);
    return text;
}

MixEntry parse_entry(std::string_view item, MixKind kind)
{
    const auto bad = [&](const std::string& why) {
        return std::invalid_argument("'" + std::string(item) + "': " + why);
    };
    const auto colon = item.find(':');
    if (colon == std::string_view::npos)
        throw bad("expected KEY:COUNT");
    MixEntry entry;
    entry.key = std::string(trim(item.substr(0, colon)));
    if (kind == MixKind::HttpStatus && !is_http_status_code(entry.key))
        throw bad("'" + entry.key + "' is not an HTTP status code (200..599)");
    if (kind == MixKind::MllpAck && !is_mllp_ack_code(entry.key))
        throw bad("'" + entry.key + "' is not an HL7 ack code (AA AE AR CA CE CR)");
    const auto count = trim(item.substr(colon + 1));
    const auto* end = count.data() + count.size();
    const auto [ptr, ec] = std::from_chars(count.data(), end, entry.weight);
    if (count.empty() || ec != std::errc{} || ptr != end)
        throw bad("count '" + std::string(count) + "' is not a non-negative integer");
    return entry;
}

// Smooth weighted round robin: each slot adds every weight to its entry's credit and
// picks the entry with most credit (first on ties), which then pays the total. Over
// one period of `total` slots each entry is picked exactly `weight` times, spread out.
std::vector<std::uint32_t> rotation_slots(const std::vector<MixEntry>& entries, std::uint64_t total)
{
    std::vector<std::int64_t> credit(entries.size(), 0);
    std::vector<std::uint32_t> slots;
    slots.reserve(total);
    for (std::uint64_t slot = 0; slot < total; ++slot) {
        std::size_t best = 0;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            credit[i] += entries[i].weight;
            if (credit[i] > credit[best])
                best = i;
        }
        credit[best] -= static_cast<std::int64_t>(total);
        slots.push_back(static_cast<std::uint32_t>(best));
    }
    return slots;
}

} // namespace

bool is_http_status_code(std::string_view text)
{
    return text.size() == 3 && text[0] >= '2' && text[0] <= '5' &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_mllp_ack_code(std::string_view text)
{
    return text == "AA" || text == "AE" || text == "AR" || text == "CA" || text == "CE" || text == "CR";
}

Mix Mix::parse(std::string_view text, MixKind kind)
{
    Mix mix;
    std::uint64_t total = 0;
    while (!text.empty()) {
        const auto comma = text.find(',');
        const auto item = trim(text.substr(0, comma));
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (item.empty())
            throw std::invalid_argument("empty entry (stray comma?)");
        auto entry = parse_entry(item, kind);
        const bool duplicate = std::any_of(mix.entries_.begin(), mix.entries_.end(),
                                           [&](const MixEntry& e) { return e.key == entry.key; });
        if (duplicate)
            throw std::invalid_argument("'" + entry.key + "' appears twice");
        total += entry.weight;
        if (total > kMaxMixTotal)
            throw std::invalid_argument("counts add up to more than " + std::to_string(kMaxMixTotal));
        mix.entries_.push_back(std::move(entry));
    }
    if (total == 0)
        throw std::invalid_argument("counts add up to 0 (expected e.g. 200:70,503:30)");
    mix.slots_ = rotation_slots(mix.entries_, total);
    return mix;
}

const std::string& Mix::key_at(std::uint64_t index) const
{
    return entries_[slots_[index % slots_.size()]].key;
}

std::string Mix::to_string() const
{
    std::string text;
    for (const auto& entry : entries_) {
        if (!text.empty())
            text += ',';
        text += entry.key + ":" + std::to_string(entry.weight);
    }
    return text;
}

} // namespace shhim::tools
