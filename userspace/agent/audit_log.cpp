#include "agent/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <google/protobuf/util/json_util.h>

#include "core/audit.h"

namespace shhim::agent {
namespace {

std::runtime_error fileError(const std::string& what, const std::string& path, int error)
{
    return std::runtime_error(what + " " + path + ": " + std::strerror(error));
}

std::string readWhole(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void writeAll(int fd, const std::string& bytes, const std::string& path)
{
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw fileError("write", path, errno);
        done += static_cast<std::size_t>(n);
    }
}

// FILE.head replaced whole: a reader sees the old head or the new one.
void writeHead(const std::string& audit_path, const v1::AuditHead& head)
{
    const std::string head_path = core::auditHeadPath(audit_path);
    const std::string temporary = head_path + ".tmp";
    UniqueFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd)
        throw fileError("open", temporary, errno);
    writeAll(fd.get(), core::formatAuditHead(head), temporary);
    if (::fsync(fd.get()) != 0)
        throw fileError("fsync", temporary, errno);
    if (::rename(temporary.c_str(), head_path.c_str()) != 0)
        throw fileError("rename to", head_path, errno);
}

std::optional<v1::AuditRecord> parseRecord(const std::string& line)
{
    v1::AuditRecord record;
    if (!google::protobuf::util::JsonStringToMessage(line, &record).ok())
        return std::nullopt;
    return record;
}

std::vector<std::string> splitLines(const std::string& text)
{
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\n', start);
        if (end == std::string::npos)
            break;  // only complete lines
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

}  // namespace

AuditLog::AuditLog(std::string path) : path_(std::move(path))
{
    const std::filesystem::path directory = std::filesystem::path(path_).parent_path();
    std::error_code ec;
    if (!directory.empty() && !std::filesystem::exists(directory, ec)) {
        std::filesystem::create_directories(directory, ec);
        if (ec)
            throw std::runtime_error("create directory " + directory.string() + ": " + ec.message());
        ::chmod(directory.c_str(), 0700);
    }
    const std::string text = readWhole(path_);
    std::size_t complete = text.rfind('\n');
    complete = complete == std::string::npos ? 0 : complete + 1;
    fd_ = UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd_)
        throw fileError("open", path_, errno);
    if (complete < text.size()) {
        // A crash mid-write left part of a line: it was never acknowledged.
        if (::ftruncate(fd_.get(), static_cast<off_t>(complete)) != 0)
            throw fileError("truncate the partial last line of", path_, errno);
        repairs_.push_back("cut a partial last line of " + std::to_string(text.size() - complete) +
                           " bytes (a write interrupted by a crash)");
    }
    for (const std::string& line : splitLines(text.substr(0, complete))) {
        last_line_ = line;
        if (auto record = parseRecord(line)) {
            kept_.push_back(std::move(*record));
            if (kept_.size() > kKept)
                kept_.pop_front();
        }
    }
}

v1::AuditRecord AuditLog::append(v1::AuditRecord record)
{
    std::lock_guard lock(mutex_);
    const core::AuditLine next = core::appendAuditRecord(std::move(record), last_line_);
    writeAll(fd_.get(), next.line + "\n", path_);
    if (::fsync(fd_.get()) != 0)
        throw fileError("fsync", path_, errno);
    last_line_ = next.line;
    writeHead(path_, next.head);
    v1::AuditRecord written = *parseRecord(next.line);
    kept_.push_back(written);
    if (kept_.size() > kKept)
        kept_.pop_front();
    appended_.notify_all();
    return written;
}

std::vector<v1::AuditRecord> AuditLog::newest(std::size_t count) const
{
    std::lock_guard lock(mutex_);
    const std::size_t n = std::min(count, kept_.size());
    return {kept_.end() - static_cast<std::ptrdiff_t>(n), kept_.end()};
}

std::vector<v1::AuditRecord> AuditLog::after(std::uint64_t after_seq, std::chrono::milliseconds wait) const
{
    std::unique_lock lock(mutex_);
    const auto has_newer = [&] { return closed_ || (!kept_.empty() && kept_.back().seq() > after_seq); };
    appended_.wait_for(lock, wait, has_newer);
    std::vector<v1::AuditRecord> out;
    for (const auto& record : kept_)
        if (record.seq() > after_seq)
            out.push_back(record);
    return out;
}

std::vector<v1::AuditRecord> AuditLog::all() const
{
    std::lock_guard lock(mutex_);
    std::vector<v1::AuditRecord> out;
    for (const std::string& line : splitLines(readWhole(path_)))
        if (auto record = parseRecord(line))
            out.push_back(std::move(*record));
    return out;
}

std::uint64_t AuditLog::lastSeq() const
{
    std::lock_guard lock(mutex_);
    return kept_.empty() ? 0 : kept_.back().seq();
}

void AuditLog::close()
{
    std::lock_guard lock(mutex_);
    closed_ = true;
    appended_.notify_all();
}

}  // namespace shhim::agent
