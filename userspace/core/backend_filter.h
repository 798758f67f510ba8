// Which backends a request names: `--backend 198.18.0.10:8080`,
// `--backend [2001:2::10]:8080`, or an address alone for every port.
// Shared by the event feed (`shhimctl observe`) and the history
// (`shhimctl backends --history`).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "shhim.pb.h"
#include "shhim_abi.h"

namespace shhim::core {

class BackendFilter {
public:
    // "" matches every backend. Throws std::invalid_argument naming the
    // text when it is not ADDR, ADDR:PORT, [V6ADDR]:PORT or V6ADDR.
    static BackendFilter parse(std::string_view text);

    bool matchesAll() const { return !address_; }
    bool matches(const shhim_endpoint& endpoint) const;
    bool matches(const shhim::v1::Endpoint& endpoint) const;

private:
    std::optional<std::array<std::uint8_t, 16>> address_;  // IPv4 stored IPv4-mapped
    std::optional<std::uint16_t> port_;                     // host order; nullopt: any port
};

}  // namespace shhim::core
