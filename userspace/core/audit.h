// The audit chain (issue 4 item 5, DESIGN.md "Audit trail"): pure functions
// over the text of an append-only JSON-lines file, one v1::AuditRecord per
// line in its protobuf JSON (proto field names, every field present).
//
// Chaining: record n carries seq n and prev_sha256 = SHA-256 (hex) of line
// n-1's exact bytes without the newline; record 1 carries 64 zeros. The
// writer also keeps its head (last seq and that line's SHA-256) in a
// sidecar, FILE.head (one line of v1::AuditHead JSON), written after the
// line is fsync'd; with it, verify also finds records cut off the end.
//
// verify names the first bad record (1-based line) and why:
//   edited       a record's bytes do not hash to the next record's
//                prev_sha256 (or to the head's hash), or its seq was changed
//   deleted      seq jumps forward and the missing seq is nowhere later
//   reordered    seq goes back, or jumps forward to a seq that comes later
//   truncated    the last line has no newline, or the head says the file
//                held more records than it does
//   unparseable  a line is not an AuditRecord
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/decision_types.h"
#include "shhim.pb.h"

namespace shhim::core {

inline constexpr std::string_view kAuditGenesis = "0000000000000000000000000000000000000000000000000000000000000000";
inline constexpr std::string_view kDefaultAuditFile = "/var/lib/shhim/audit.jsonl";

// Where the writer keeps the head of `audit_file`.
std::string auditHeadPath(std::string_view audit_file);

struct AuditLine {
    std::string line;   // without the newline
    v1::AuditHead head; // after this line
};

// The line for `record` after the chain whose head is `previous` (unset:
// the first record). Sets seq and prev_sha256; the rest is the caller's.
AuditLine appendAuditRecord(v1::AuditRecord record, const std::optional<v1::AuditHead>& previous);
// The same, given the previous line itself (empty: the first record).
// Throws std::invalid_argument if `previous_line` is not an AuditRecord.
AuditLine appendAuditRecord(v1::AuditRecord record, std::string_view previous_line);

// The head a line leaves the chain at. Throws std::invalid_argument for a
// line that is not an AuditRecord.
v1::AuditHead auditHeadOf(std::string_view line);

std::string formatAuditHead(const v1::AuditHead& head);  // one JSON line with '\n'
// Throws std::invalid_argument saying what is wrong with `text`.
v1::AuditHead parseAuditHead(std::string_view text);

// A Change of the decision engine as a record (seq and prev_sha256 unset).
v1::AuditRecord auditRecordOf(const Change& change, std::string_view policy_version);
// "2025-03-01T12:00:00.123Z"
std::string rfc3339Millis(EngineTime time);

enum class AuditProblem : std::uint8_t { None, Edited, Deleted, Reordered, Truncated, Unparseable };
std::string_view auditProblemName(AuditProblem problem);  // "edited", ...

struct AuditVerdict {
    AuditProblem problem = AuditProblem::None;
    std::size_t line = 0;            // 1-based line of the first bad record; 0 when intact
    std::string why;                 // one line for people
    std::uint64_t records = 0;       // complete, well-formed lines read before stopping
    std::uint64_t last_seq = 0;
    std::string last_sha256;         // of the last line read
    bool head_checked = false;
    std::uint64_t beyond_head = 0;   // records after the head (written, head not yet updated)

    bool ok() const { return problem == AuditProblem::None; }
};

AuditVerdict verifyAuditChain(std::string_view text, const std::optional<v1::AuditHead>& head = std::nullopt);

// "audit.jsonl: intact: 42 records (seq 1-42, head checked)" or
// "audit.jsonl: line 7: edited: ..."
std::string auditVerdictLine(std::string_view file, const AuditVerdict& verdict);

}  // namespace shhim::core
