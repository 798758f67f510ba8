// Captures libbpf's own messages (verifier logs, "can't reuse pinned map")
// printed by this thread while a scope runs, so that errors can quote them.
// The first capture installs datapath's libbpf print hook for the process
// (outside captures it prints to stderr like libbpf's default). Internal.
#pragma once

#include <string>

#include "datapath/log.h"

namespace shhim::datapath {

class LibbpfLogCapture {
public:
    // Lines are also forwarded to `log` at Debug level when it is set.
    explicit LibbpfLogCapture(LogFn log = {});
    ~LibbpfLogCapture();
    LibbpfLogCapture(const LibbpfLogCapture&) = delete;
    LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

    // The last `max_chars` of what libbpf printed at warning/info level.
    std::string tail(std::size_t max_chars = 3000) const;

private:
    friend struct LibbpfLogSink;
    LogFn log_;
    std::string text_;
    LibbpfLogCapture* outer_;
};

// "what: <errno text>" plus, when libbpf printed something, its tail.
[[noreturn]] void throwWithLibbpfLog(const std::string& what, int error, const LibbpfLogCapture& capture);

}  // namespace shhim::datapath
