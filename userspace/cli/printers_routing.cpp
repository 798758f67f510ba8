// `shhimctl services`, the manual routing commands and `audit tail` (issue 4).
#include <cstdio>
#include <string>

#include "cli/printers.h"

namespace shhim::cli {
namespace {

// "ejected 42s (kernel: refused)" style age of a state, from now.
std::string age(std::int64_t since_unix_ns, std::int64_t now_unix_ns)
{
    if (since_unix_ns <= 0 || now_unix_ns < since_unix_ns)
        return "-";
    return formatUptime(static_cast<double>(now_unix_ns - since_unix_ns) / 1e9);
}

std::string until(std::int64_t until_unix_ns, std::int64_t now_unix_ns)
{
    if (until_unix_ns <= 0)
        return "until restored";
    return "for " + (until_unix_ns > now_unix_ns ? formatUptime(static_cast<double>(until_unix_ns - now_unix_ns) / 1e9)
                                                 : std::string("0s")) +
           " more";
}

// What the STATE column says: the engine's state, then what holds it there.
std::string stateCell(const v1::RoutedBackend& b)
{
    std::string cell = b.state();
    if (b.drained())
        cell = "drained";
    if (b.held())
        cell += " (held)";
    if (b.state() == "probing")
        cell += " " + std::to_string(b.probe_successes()) + " ok";
    return cell;
}

std::string whyCell(const v1::RoutedBackend& b, std::int64_t now_unix_ns)
{
    if (b.drained())
        return b.drained_by() + ": " + b.drain_reason() + " (" + until(b.drained_until_unix_ns(), now_unix_ns) + ")";
    if (b.reason().empty())
        return "-";
    return b.actor().empty() ? b.reason() : b.actor() + ": " + b.reason();
}

std::string poolLine(const v1::RoutedService& s, std::int64_t now_unix_ns)
{
    std::string line = s.name() + "  " + s.address() + " " + s.protocol() + "  class " + s.class_name() +
                       "  pool " + s.active_pool();
    if (s.fail_open())
        line += " (FAIL-OPEN: no routable backend)";
    if (s.pinned())
        line += " (pinned by " + s.pinned_by() + ", " + until(s.pinned_until_unix_ns(), now_unix_ns) + ")";
    line += " since " + age(s.since_unix_ns(), now_unix_ns);
    if (!s.reason().empty())
        line += ": " + s.reason();
    line += "  steered " + std::to_string(s.connects_steered()) + ", passed through " +
            std::to_string(s.connects_no_backend());
    return line + "\n";
}

}  // namespace

std::string formatServices(const v1::ServiceList& list, std::int64_t now_unix_ns)
{
    if (list.services().empty())
        return "no services: the applied policy names none (shhimctl policy show)\n";
    std::string out;
    for (const auto& service : list.services()) {
        out += poolLine(service, now_unix_ns);
        Table table({{"BACKEND"}, {"POOL"}, {"STATE"}, {"SINCE", Table::Align::Right}, {"ROUTED"}, {"KERNEL"},
                     {"EJECTIONS", Table::Align::Right}, {"WHY"}});
        for (const auto& b : service.backends())
            table.addRow({b.backend(), b.pool(), stateCell(b), age(b.since_unix_ns(), now_unix_ns),
                          b.routable() ? "yes" : "no", b.kernel_state(), std::to_string(b.ejections()),
                          whyCell(b, now_unix_ns)});
        std::string rendered = table.render();
        // Indent the table under its service line.
        std::string indented;
        std::size_t start = 0;
        while (start < rendered.size()) {
            const auto end = rendered.find('\n', start);
            indented += "  " + rendered.substr(start, end - start + 1);
            start = end == std::string::npos ? rendered.size() : end + 1;
        }
        out += indented + "\n";
    }
    return out;
}

std::string formatAuditRecord(const v1::AuditRecord& r)
{
    std::string line = r.time() + "  #" + std::to_string(r.seq()) + "  " + r.actor() + "  " + r.action() + "  " +
                       r.service();
    if (!r.backend().empty())
        line += " " + r.backend();
    line += "  " + (r.before().empty() ? std::string("-") : r.before()) + " -> " +
            (r.after().empty() ? std::string("-") : r.after());
    if (!r.reason().empty())
        line += "  " + r.reason();
    if (!r.evidence().empty()) {
        line += "  [";
        for (int i = 0; i < r.evidence_size(); ++i) {
            char value[32];
            std::snprintf(value, sizeof(value), "%g", r.evidence(i).value());
            line += (i ? " " : "") + r.evidence(i).name() + "=" + value;
        }
        line += "]";
    }
    return line + "\n";
}

std::string formatExplanation(const v1::AnomalyExplanation& e)
{
    char line[256];
    std::snprintf(line, sizeof(line), "%s %s: score %.2f (%s; x%.2f class sensitivity)\n", e.service().c_str(),
                  e.backend().c_str(), e.score(), e.score() >= 1.0 ? "degraded" : "normal", e.sensitivity());
    std::string out = line;
    std::snprintf(line, sizeof(line), "  parts: mahalanobis %.2f (p=%.6f), isolation forest %.2f, trend %.2f\n",
                  e.mahalanobis_score(), e.probability(), e.iforest_score(), e.trend_score());
    out += line;
    for (const auto& driver : e.drivers())
        out += "  " + driver.text() + "\n";
    if (!e.rate().empty())
        out += "  " + e.rate() + "\n";
    if (!e.trend().empty())
        out += "  " + e.trend() + "\n";
    std::snprintf(line, sizeof(line), "  baseline %s over %.0f samples; isolation forest %s; %s\n",
                  e.baseline_version().c_str(), e.baseline_samples(),
                  e.iforest_version().empty() ? "none loaded" : e.iforest_version().c_str(),
                  e.acting() ? "the score feeds the decision engine" : "shadow mode (shhimd --anomaly-shadow): computed, never ejects");
    return out + line;
}

std::string formatRoutingResponse(const v1::RoutingResponse& response)
{
    if (response.records().empty())
        return "nothing changed\n";
    std::string out;
    for (const auto& record : response.records())
        out += formatAuditRecord(record);
    return out;
}

}  // namespace shhim::cli
