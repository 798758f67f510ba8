// `shhimctl classes` and `shhimctl stress` (issue 3).
#include <cstdio>
#include <string>

#include "cli/printers.h"

namespace shhim::cli {
namespace {

std::string fixed(const char* format, double value)
{
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), format, value);
    return buffer;
}

}  // namespace

std::string formatBitRate(double bits_per_second)
{
    if (bits_per_second < 1000.0)
        return fixed("%.0f", bits_per_second) + " bit/s";
    static constexpr const char* units[] = {"kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
    double value = bits_per_second / 1000.0;
    std::size_t unit = 0;
    while (value >= 1000.0 && unit + 1 < std::size(units)) {
        value /= 1000.0;
        ++unit;
    }
    return fixed("%.1f", value) + " " + units[unit];
}

std::string formatStressStatus(const shhim::v1::StressStatus& s)
{
    std::string out = "stress " + s.mode() + ": ";
    if (!s.active()) {
        out += "not shedding";
    } else {
        out += "shedding ";
        out += s.level() >= 255 ? std::string("every shed class") : "shed ranks 1-" + std::to_string(s.level());
        out += " (lease " + fixed("%.1f", s.lease_remaining_seconds()) + " s)";
    }
    if (s.mode() == "auto")
        out += "; link utilisation " + formatPercent(s.utilisation()) + ", threshold " + formatPercent(s.threshold());
    return out + "\n";
}

std::string formatClasses(const shhim::v1::ClassReport& report)
{
    std::string out;
    if (report.policy_generation() == 0)
        out += "no policy applied: every packet is " + report.default_class() + ", nothing is marked\n";
    else
        out += "policy generation " + std::to_string(report.policy_generation()) + ", default class " +
               report.default_class() + "\n";
    out += formatStressStatus(report.stress());
    for (const auto& iface : report.interfaces()) {
        std::uint64_t packets = 0;
        for (const auto& c : iface.classes())
            packets += c.ingress_packets() + c.egress_packets();
        // The shared row only when something counted there.
        if (iface.ifindex() == 0 && packets == 0)
            continue;
        out += "\n";
        if (iface.ifindex() == 0) {
            out += "interfaces without a row of their own\n";
        } else {
            out += "interface " + (iface.interface().empty() ? std::string("?") : iface.interface()) + " (ifindex " +
                   std::to_string(iface.ifindex()) + ")";
            if (iface.capacity_bps())
                out += ", capacity " + formatBitRate(static_cast<double>(iface.capacity_bps())) + ", egress " +
                       formatPercent(iface.egress_utilisation());
            if (!iface.qdisc().empty())
                out += ", " + iface.qdisc();
            out += iface.remark_untrusted() ? ", re-marks untrusted DSCP" : "";
            out += "\n";
        }
        Table table({{"CLASS"},
                     {"DSCP", Table::Align::Right},
                     {"SHED", Table::Align::Right},
                     {"IN PKTS", Table::Align::Right},
                     {"IN BYTES", Table::Align::Right},
                     {"OUT PKTS", Table::Align::Right},
                     {"OUT BYTES", Table::Align::Right},
                     {"OUT RATE", Table::Align::Right},
                     {"DROPS", Table::Align::Right},
                     {"REMARKED", Table::Align::Right}});
        for (const auto& c : iface.classes()) {
            std::string shed = c.shed_rank() ? std::to_string(c.shed_rank()) : "-";
            if (c.shed())
                shed += "*";
            table.addRow({c.priority_class(), std::to_string(c.dscp()), shed, std::to_string(c.ingress_packets()),
                          formatBytes(c.ingress_bytes()), std::to_string(c.egress_packets()),
                          formatBytes(c.egress_bytes()), formatBitRate(c.egress_bits_per_second()),
                          std::to_string(c.egress_drops()),
                          std::to_string(c.ingress_dscp_rewrites() + c.egress_dscp_rewrites())});
        }
        out += table.render();
    }
    return out;
}

}  // namespace shhim::cli
