// The file side of telemetry_record.h: plain or gzip'd JSON lines.
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "core/telemetry_record.h"

namespace shhim::core {
namespace {

struct GzCloser {
    void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Calls `line(text, number)` for each non-empty line; gzread also reads plain files.
template <typename OnLine>
void forEachLine(const std::string& path, OnLine&& line)
{
    errno = 0;
    GzFile file(gzopen(path.c_str(), "rb"));
    if (!file)
        throw TraceError(path + ": cannot open: " + std::strerror(errno ? errno : ENOMEM));
    std::string pending;
    std::size_t number = 0;
    char buffer[1 << 16];
    for (;;) {
        const int n = gzread(file.get(), buffer, sizeof buffer);
        if (n < 0) {
            int code = 0;
            const char* message = gzerror(file.get(), &code);
            throw TraceError(path + ": cannot read: " + (code == Z_ERRNO ? std::strerror(errno) : message));
        }
        if (n == 0)
            break;
        pending.append(buffer, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
            ++number;
            if (end > start)
                line(std::string_view(pending).substr(start, end - start), number);
        }
        pending.erase(0, start);
    }
    if (!pending.empty())
        line(std::string_view(pending), number + 1);
}

std::string where(const std::string& path, std::size_t line) { return path + ":" + std::to_string(line); }

}  // namespace

Trace readTrace(const std::string& path, Label label)
{
    Trace trace;
    trace.source = path;
    std::size_t lines = 0;
    forEachLine(path, [&](std::string_view text, std::size_t number) {
        if (++lines == 1) {
            try {
                trace.label = parseTraceLabel(text, where(path, number));
                return;
            } catch (const TraceError&) {
                if (label == Label::Required)
                    throw;
            }
        }
        trace.ticks.push_back(parseRecordedTick(text, where(path, number)));
    });
    if (lines == 0 && label == Label::Required)
        throw TraceError(path + ": empty; a trace starts with its label line");
    return trace;
}

}  // namespace shhim::core
