// shhimctl output for the event feed (`observe`) and the per-backend
// history (`backends --history`); declared in cli/printers.h.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include <google/protobuf/util/json_util.h>

#include "cli/printers.h"

namespace shhim::cli {
namespace {

constexpr std::size_t kSparkWidth = 60;
// U+2581..U+2588: eight heights, each three bytes of UTF-8.
constexpr const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};

// One column of a sparkline covers `per` seconds: its value is the mean
// (rates) or the max (latency) of them; a column with no sample is blank.
struct Column {
    double value = 0;
    bool has_value = false;
};

std::vector<Column> columns(const std::vector<double>& values, const std::vector<bool>& present, bool use_max)
{
    std::vector<Column> out;
    if (values.empty())
        return out;
    const std::size_t per = (values.size() + kSparkWidth - 1) / kSparkWidth;
    for (std::size_t start = 0; start < values.size(); start += per) {
        Column column;
        double sum = 0;
        std::size_t n = 0;
        for (std::size_t i = start; i < std::min(values.size(), start + per); ++i) {
            if (!present[i])
                continue;
            sum += values[i];
            column.value = n == 0 ? values[i] : std::max(column.value, values[i]);
            ++n;
        }
        column.has_value = n > 0;
        if (n > 0 && !use_max)
            column.value = sum / static_cast<double>(n);
        out.push_back(column);
    }
    return out;
}

std::string sparkline(const std::vector<Column>& cols)
{
    double top = 0;
    for (const auto& c : cols)
        if (c.has_value)
            top = std::max(top, c.value);
    std::string out;
    for (const auto& c : cols) {
        if (!c.has_value) {
            out += ' ';
            continue;
        }
        // Zero is the lowest bar; anything above it at least the second.
        std::size_t level = 0;
        if (top > 0 && c.value > 0)
            level = 1 + static_cast<std::size_t>(std::lround(c.value / top * 6.0));
        out += kBars[std::min<std::size_t>(level, 7)];
    }
    return out;
}

struct Line {
    const char* name;
    std::vector<double> values;
    std::vector<bool> present;
    bool use_max;
    std::string (*format)(double);
};

std::string formatRateValue(double v) { return formatRate(v); }
std::string formatLatencyValue(double v) { return formatDuration(v); }

std::string newestOf(const Line& line)
{
    for (std::size_t i = line.values.size(); i-- > 0;)
        if (line.present[i])
            return line.format(line.values[i]);
    return "-";
}

std::string maxOf(const Line& line)
{
    bool any = false;
    double top = 0;
    for (std::size_t i = 0; i < line.values.size(); ++i)
        if (line.present[i]) {
            top = any ? std::max(top, line.values[i]) : line.values[i];
            any = true;
        }
    return any ? line.format(top) : "-";
}

}  // namespace

std::optional<std::int64_t> parseDurationNs(std::string_view text)
{
    if (text.empty())
        return std::nullopt;
    std::int64_t total = 0;
    while (!text.empty()) {
        std::int64_t amount = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), amount);
        if (ec != std::errc() || end == text.data() || amount < 0)
            return std::nullopt;
        text.remove_prefix(static_cast<std::size_t>(end - text.data()));
        std::int64_t unit = 0;
        if (text.starts_with("ms")) {
            unit = 1'000'000;
            text.remove_prefix(2);
        } else if (!text.empty() && (text[0] == 's' || text[0] == 'm' || text[0] == 'h' || text[0] == 'd')) {
            unit = text[0] == 's' ? 1'000'000'000LL
                 : text[0] == 'm' ? 60'000'000'000LL
                 : text[0] == 'h' ? 3'600'000'000'000LL
                                  : 86'400'000'000'000LL;
            text.remove_prefix(1);
        } else {
            return std::nullopt;  // a bare number has no unit: refuse rather than guess
        }
        if (amount > (INT64_MAX - total) / unit)
            return std::nullopt;
        total += amount * unit;
    }
    return total;
}


std::string formatFeedEvent(const shhim::v1::FeedEvent& entry)
{
    char type[16];
    std::snprintf(type, sizeof(type), "%-8s", entry.type().c_str());
    std::string line = formatUnixTimeUtc(entry.time_unix_ns()) + "  " + type + " " + entry.summary();
    if (!entry.service().empty())
        line += "  service=" + entry.service();
    if (!entry.priority_class().empty())
        line += " class=" + entry.priority_class();
    return line + "\n";
}

std::string formatHistory(const shhim::v1::History& history)
{
    if (history.backends().empty())
        return "no history yet (the agent records one point per second per backend, from its second second on)\n";
    std::string out;
    for (const auto& series : history.backends()) {
        const std::size_t n = static_cast<std::size_t>(series.requests_per_second_size());
        Line lines[] = {
            {"req/s", {}, {}, false, &formatRateValue},
            {"err/s", {}, {}, false, &formatRateValue},
            {"p50", {}, {}, true, &formatLatencyValue},
            {"p99", {}, {}, true, &formatLatencyValue},
        };
        for (std::size_t i = 0; i < n; ++i) {
            const int k = static_cast<int>(i);
            const bool measured = k < series.responses_size() && series.responses(k) > 0;
            lines[0].values.push_back(series.requests_per_second(k));
            lines[0].present.push_back(true);
            lines[1].values.push_back(k < series.errors_per_second_size() ? series.errors_per_second(k) : 0);
            lines[1].present.push_back(true);
            lines[2].values.push_back(k < series.p50_seconds_size() ? series.p50_seconds(k) : 0);
            lines[2].present.push_back(measured);
            lines[3].values.push_back(k < series.p99_seconds_size() ? series.p99_seconds(k) : 0);
            lines[3].present.push_back(measured);
        }
        out += formatEndpoint(series.endpoint()) + " " + series.protocol();
        if (!series.service().empty())
            out += "  service " + series.service();
        if (!series.priority_class().empty())
            out += "  class " + series.priority_class();
        out += "  (" + formatUptime(static_cast<double>(n * history.step_seconds())) + " from " +
               formatUnixTimeUtc(series.start_unix_seconds() * 1'000'000'000) + ", " +
               std::to_string(history.step_seconds()) + " s points)\n";
        for (const Line& line : lines) {
            char label[16];
            std::snprintf(label, sizeof(label), "  %-6s", line.name);
            out += std::string(label) + sparkline(columns(line.values, line.present, line.use_max)) + "  now " +
                   newestOf(line) + ", max " + maxOf(line) + "\n";
        }
    }
    return out;
}

}  // namespace shhim::cli
