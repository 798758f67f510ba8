#include "core/audit.h"

#include <cstdio>
#include <stdexcept>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "core/policy.h"

namespace shhim::core {
namespace {

// Protobuf JSON on one line, proto field names, every field present: the
// same bytes for the same record, and readable without the schema.
std::string jsonLine(const google::protobuf::Message& message)
{
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = false;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string json;
    const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
    if (!status.ok())
        throw std::runtime_error("cannot write " + message.GetTypeName() + " as JSON: " + std::string(status.message()));
    return json;
}

// Empty when `json` parses as `message`, else the parser's complaint.
std::string parseJson(std::string_view json, google::protobuf::Message& message)
{
    const auto status = google::protobuf::util::JsonStringToMessage(std::string(json), &message);
    if (status.ok())
        return {};
    // The parser's message spans lines (with a caret): one line is wanted.
    std::string text;
    for (const char c : std::string(status.message())) {
        if (c == '\n' || c == '^')
            continue;
        text += c;
    }
    while (!text.empty() && text.back() == ' ')
        text.pop_back();
    return text;
}

v1::AuditRecord parseRecordOrThrow(std::string_view line)
{
    v1::AuditRecord record;
    if (const std::string error = parseJson(line, record); !error.empty())
        throw std::invalid_argument("not an audit record: " + error);
    return record;
}

std::string shortHash(std::string_view sha) { return std::string(sha.substr(0, 12)); }

// The complete lines of `text` (without newlines) and what follows the last newline.
struct Lines {
    std::vector<std::string_view> complete;
    std::string_view partial;
};

Lines splitLines(std::string_view text)
{
    Lines lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) {
            lines.partial = text.substr(start);
            break;
        }
        lines.complete.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

std::optional<std::uint64_t> seqOf(std::string_view line)
{
    v1::AuditRecord record;
    if (!parseJson(line, record).empty())
        return std::nullopt;
    return record.seq();
}

AuditVerdict bad(AuditVerdict verdict, AuditProblem problem, std::size_t line, std::string why)
{
    verdict.problem = problem;
    verdict.line = line;
    verdict.why = std::move(why);
    return verdict;
}

}  // namespace

std::string auditHeadPath(std::string_view audit_file) { return std::string(audit_file) + ".head"; }

AuditLine appendAuditRecord(v1::AuditRecord record, const std::optional<v1::AuditHead>& previous)
{
    record.set_seq(previous ? previous->seq() + 1 : 1);
    record.set_prev_sha256(previous ? previous->sha256() : std::string(kAuditGenesis));
    AuditLine out;
    out.line = jsonLine(record);
    out.head.set_seq(record.seq());
    out.head.set_sha256(sha256Hex(out.line));
    return out;
}

AuditLine appendAuditRecord(v1::AuditRecord record, std::string_view previous_line)
{
    if (previous_line.empty())
        return appendAuditRecord(std::move(record), std::optional<v1::AuditHead>());
    return appendAuditRecord(std::move(record), std::optional<v1::AuditHead>(auditHeadOf(previous_line)));
}

v1::AuditHead auditHeadOf(std::string_view line)
{
    const v1::AuditRecord record = parseRecordOrThrow(line);
    v1::AuditHead head;
    head.set_seq(record.seq());
    head.set_sha256(sha256Hex(line));
    return head;
}

std::string formatAuditHead(const v1::AuditHead& head) { return jsonLine(head) + "\n"; }

v1::AuditHead parseAuditHead(std::string_view text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.remove_suffix(1);
    v1::AuditHead head;
    if (const std::string error = parseJson(text, head); !error.empty())
        throw std::invalid_argument("not an audit head (JSON {\"seq\": N, \"sha256\": HEX}): " + error);
    if (head.sha256().size() != kAuditGenesis.size())
        throw std::invalid_argument("audit head: sha256 must be 64 hex digits");
    return head;
}

std::string rfc3339Millis(EngineTime time)
{
    using namespace std::chrono;
    const auto ms = time_point_cast<milliseconds>(time);
    const auto day = floor<days>(ms);
    const year_month_day date{day};
    const hh_mm_ss clock{ms - day};
    char text[32];
    std::snprintf(text, sizeof(text), "%04d-%02u-%02uT%02ld:%02ld:%02ld.%03ldZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<long>(clock.hours().count()), static_cast<long>(clock.minutes().count()),
                  static_cast<long>(clock.seconds().count()), static_cast<long>(clock.subseconds().count()));
    return text;
}

v1::AuditRecord auditRecordOf(const Change& change, std::string_view policy_version)
{
    v1::AuditRecord record;
    record.set_time(rfc3339Millis(change.time));
    record.set_time_unix_ns(
        std::chrono::duration_cast<std::chrono::nanoseconds>(change.time.time_since_epoch()).count());
    record.set_actor(change.actor);
    record.set_action(change.action);
    record.set_service(change.service);
    record.set_backend(change.backend);
    record.set_before(change.before);
    record.set_after(change.after);
    record.set_reason(change.reason);
    for (const auto& item : change.evidence) {
        auto* e = record.add_evidence();
        e->set_name(item.name);
        e->set_value(item.value);
    }
    record.set_policy_version(std::string(policy_version));
    return record;
}

std::string_view auditProblemName(AuditProblem problem)
{
    switch (problem) {
    case AuditProblem::None: return "intact";
    case AuditProblem::Edited: return "edited";
    case AuditProblem::Deleted: return "deleted";
    case AuditProblem::Reordered: return "reordered";
    case AuditProblem::Truncated: return "truncated";
    case AuditProblem::Unparseable: return "unparseable";
    }
    return "unknown";
}

AuditVerdict verifyAuditChain(std::string_view text, const std::optional<v1::AuditHead>& head)
{
    const Lines lines = splitLines(text);
    AuditVerdict verdict;
    std::optional<v1::AuditRecord> previous;
    std::string previous_sha;
    std::vector<std::string> shas;  // of each complete line, for the head check
    for (std::size_t i = 0; i < lines.complete.size(); ++i) {
        const std::size_t number = i + 1;
        const std::string_view line = lines.complete[i];
        v1::AuditRecord record;
        if (line.empty())
            return bad(verdict, AuditProblem::Unparseable, number, "empty line");
        if (const std::string error = parseJson(line, record); !error.empty())
            return bad(verdict, AuditProblem::Unparseable, number, "not an audit record: " + error);
        if (record.seq() == 0)
            return bad(verdict, AuditProblem::Unparseable, number, "no seq (records count from 1)");

        const std::uint64_t expected = previous ? previous->seq() + 1 : 1;
        if (record.seq() != expected) {
            // The seq that belongs here comes later: records were moved.
            for (std::size_t j = i + 1; j < lines.complete.size(); ++j)
                if (seqOf(lines.complete[j]) == expected)
                    return bad(verdict, AuditProblem::Reordered, number,
                               "seq " + std::to_string(record.seq()) + " where " + std::to_string(expected) +
                                   " belongs; seq " + std::to_string(expected) + " is on line " +
                                   std::to_string(j + 1));
            // The next record carries on from `expected`: this one's seq was changed.
            const auto next_seq = i + 1 < lines.complete.size() ? seqOf(lines.complete[i + 1]) : std::nullopt;
            if (next_seq && *next_seq == expected + 1)
                return bad(verdict, AuditProblem::Edited, number,
                           "seq " + std::to_string(record.seq()) + " where " + std::to_string(expected) +
                               " belongs (the record was changed)");
            if (record.seq() < expected)
                return bad(verdict, AuditProblem::Reordered, number,
                           "seq " + std::to_string(record.seq()) + " comes after seq " + std::to_string(expected - 1));
            const std::uint64_t missing = record.seq() - expected;
            return bad(verdict, AuditProblem::Deleted, number,
                       std::to_string(missing) + (missing == 1 ? " record" : " records") + " missing before it (seq " +
                           std::to_string(expected) +
                           (missing == 1 ? "" : "-" + std::to_string(record.seq() - 1)) + ")");
        }
        const std::string expected_prev = previous ? previous_sha : std::string(kAuditGenesis);
        if (record.prev_sha256() != expected_prev) {
            if (!previous)
                return bad(verdict, AuditProblem::Edited, number,
                           "the first record's prev_sha256 is not 64 zeros (the record was changed)");
            return bad(verdict, AuditProblem::Edited, number - 1,
                       "its SHA-256 " + shortHash(previous_sha) + " does not match prev_sha256 " +
                           shortHash(record.prev_sha256()) + " of the next record (line " + std::to_string(number) +
                           "): one of the two was changed");
        }
        previous_sha = sha256Hex(line);
        shas.push_back(previous_sha);
        previous = std::move(record);
        verdict.records += 1;
        verdict.last_seq = previous->seq();
        verdict.last_sha256 = previous_sha;
    }
    const std::size_t after_last = lines.complete.size() + 1;
    if (!lines.partial.empty())
        return bad(verdict, AuditProblem::Truncated, after_last,
                   "incomplete last line (" + std::to_string(lines.partial.size()) +
                       " bytes without a newline): the file was cut");
    if (!head)
        return verdict;

    verdict.head_checked = true;
    if (verdict.last_seq < head->seq()) {
        const std::uint64_t missing = head->seq() - verdict.last_seq;
        return bad(verdict, AuditProblem::Truncated, after_last,
                   std::to_string(missing) + (missing == 1 ? " record" : " records") +
                       " missing at the end: the head says seq " + std::to_string(head->seq()) +
                       ", the file ends at seq " + std::to_string(verdict.last_seq));
    }
    if (head->seq() > 0) {
        const std::size_t index = head->seq() - 1;  // seq n is on line n in an intact file
        if (shas[index] != head->sha256())
            return bad(verdict, AuditProblem::Edited, index + 1,
                       "its SHA-256 " + shortHash(shas[index]) + " does not match the head's " +
                           shortHash(head->sha256()) + ": the record was changed");
    }
    verdict.beyond_head = verdict.last_seq - head->seq();
    return verdict;
}

std::string auditVerdictLine(std::string_view file, const AuditVerdict& v)
{
    std::string out(file);
    if (!v.ok())
        return out + ": line " + std::to_string(v.line) + ": " + std::string(auditProblemName(v.problem)) + ": " +
               v.why;
    out += ": intact: " + std::to_string(v.records) + (v.records == 1 ? " record" : " records");
    if (v.records > 0)
        out += " (seq 1-" + std::to_string(v.last_seq) + ", last " + shortHash(v.last_sha256) + ")";
    if (!v.head_checked)
        out += "; no head file: a cut-off end or an edited last record would go unnoticed";
    else if (v.beyond_head > 0)
        out += "; " + std::to_string(v.beyond_head) + " after the head (written before the head was updated)";
    else
        out += "; matches the head";
    return out;
}

}  // namespace shhim::core
