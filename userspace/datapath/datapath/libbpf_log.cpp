#include "datapath/libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

#include "datapath/error.h"

namespace shhim::datapath {
namespace {

// libbpf's print hook takes no context pointer, so the active capture of
// this thread is the one piece of static state the datapath keeps. Outside
// a capture, messages go to stderr as with libbpf's default hook.
thread_local LibbpfLogCapture* active_capture = nullptr;

constexpr std::size_t kKeepChars = 64 * 1024;

}  // namespace

struct LibbpfLogSink {
    static int print(enum libbpf_print_level level, const char* format, va_list args)
    {
        if (level == LIBBPF_DEBUG)
            return 0;
        LibbpfLogCapture* capture = active_capture;
        if (!capture)
            return std::vfprintf(stderr, format, args);  // what libbpf does by default
        va_list sizing;
        va_copy(sizing, args);
        const int n = std::vsnprintf(nullptr, 0, format, sizing);
        va_end(sizing);
        if (n <= 0)
            return 0;
        std::string text(static_cast<std::size_t>(n) + 1, '\0');
        std::vsnprintf(text.data(), text.size(), format, args);
        text.pop_back();
        capture->text_ += text;
        if (capture->text_.size() > kKeepChars)
            capture->text_.erase(0, capture->text_.size() - kKeepChars);
        if (capture->log_) {
            while (!text.empty() && text.back() == '\n')
                text.pop_back();
            capture->log_(LogLevel::Debug, text);
        }
        return n;
    }
};

LibbpfLogCapture::LibbpfLogCapture(LogFn log) : log_(std::move(log)), outer_(active_capture)
{
    // The hook is process-wide and installed once: swapping it per scope
    // would race between threads (gRPC handlers query TC filters too).
    static std::once_flag installed;
    std::call_once(installed, [] { libbpf_set_print(&LibbpfLogSink::print); });
    active_capture = this;
}

LibbpfLogCapture::~LibbpfLogCapture() { active_capture = outer_; }

std::string LibbpfLogCapture::tail(std::size_t max_chars) const
{
    if (text_.size() <= max_chars)
        return text_;
    return "..." + text_.substr(text_.size() - max_chars);
}

void throwWithLibbpfLog(const std::string& what, int error, const LibbpfLogCapture& capture)
{
    std::string message = what + ": " + errnoText(error);
    std::string log = capture.tail();
    while (!log.empty() && log.back() == '\n')
        log.pop_back();
    if (!log.empty())
        message += "\nlibbpf said:\n" + log;
    throw Error(message, error < 0 ? -error : error);
}

}  // namespace shhim::datapath
