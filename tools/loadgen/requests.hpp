// requests.hpp - the bytes of request number i: HTTP requests and HL7 ORU messages.
#pragma once

#include "options.hpp"

#include <cstdint>
#include <string>

namespace shhim::loadgen {

struct PlannedRequest {
    std::string bytes;      // what goes on the wire (an MLLP frame for MLLP)
    std::string requested;  // the status / ack code asked for, empty without a mix
    std::string control_id; // MLLP: MSH-10, which the ACK must echo
};

class RequestFactory {
public:
    explicit RequestFactory(const Options& options);
    // Request `index` (0-based) of the plan; asks for mix slot `index` when a mix is set.
    [[nodiscard]] PlannedRequest make(std::uint64_t index) const;

private:
    [[nodiscard]] PlannedRequest make_http(std::uint64_t index) const;
    [[nodiscard]] PlannedRequest make_mllp(std::uint64_t index) const;

    const Options& options_;
    std::string host_;      // Host header
    std::string id_prefix_; // unique per run: control ids never repeat across runs
};

} // namespace shhim::loadgen
