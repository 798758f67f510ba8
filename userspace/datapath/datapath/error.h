// Errors of the datapath layer: one exception type whose message says what
// was attempted, on which map/program/interface, and the errno text.
#pragma once

#include <stdexcept>
#include <string>

namespace shhim::datapath {

class Error : public std::runtime_error {
public:
    // `what` is the full sentence; `error` is the positive errno (0: none).
    explicit Error(const std::string& what, int error = 0);
    int errorNumber() const noexcept { return error_; }

private:
    int error_;
};

// "Operation not permitted (EPERM)" for 1; accepts negative libbpf codes.
std::string errnoText(int error);

// Throws Error("<context>: <errno text>", |error|).
[[noreturn]] void throwErrno(const std::string& context, int error);

}  // namespace shhim::datapath
