// The audit trail on disk (core/audit.h has the chain's rules): one
// append-only JSON-lines file, each record fsync'd before append() returns,
// then the head sidecar (FILE.head) replaced atomically. Thread-safe: the
// event loop and gRPC handlers append; `audit tail --follow` waits here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "shhim.pb.h"

namespace shhim::agent {

class AuditLog {
public:
    // Opens or creates `path` (directory 0700, file 0600) and continues its
    // chain. A partial last line (a crash mid-write) is cut off and said so
    // in `repairs()`. Throws std::runtime_error naming the file.
    explicit AuditLog(std::string path);

    // Sets seq and prev_sha256, writes, fsyncs; returns the record as written.
    // Throws std::runtime_error if the write fails (the caller logs it; the
    // routing change has happened and must not be undone for want of a log).
    v1::AuditRecord append(v1::AuditRecord record);

    // The newest `count` records kept in memory (up to kKept), oldest first.
    std::vector<v1::AuditRecord> newest(std::size_t count) const;
    // Records with seq > after_seq, waiting up to `wait` for one; empty on
    // timeout or after close().
    std::vector<v1::AuditRecord> after(std::uint64_t after_seq, std::chrono::milliseconds wait) const;
    // Every record in the file, oldest first (restart reconstruction).
    std::vector<v1::AuditRecord> all() const;
    std::uint64_t lastSeq() const;
    const std::string& path() const { return path_; }
    const std::vector<std::string>& repairs() const { return repairs_; }

    // Wakes followers for shutdown.
    void close();

    static constexpr std::size_t kKept = 4096;

private:
    std::string path_;
    UniqueFd fd_;
    std::vector<std::string> repairs_;
    mutable std::mutex mutex_;
    mutable std::condition_variable appended_;
    std::string last_line_;
    std::deque<v1::AuditRecord> kept_;
    bool closed_ = false;
};

}  // namespace shhim::agent
