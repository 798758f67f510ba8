// Layout of the pin root (see bpf/shhim_abi.h and the team brief):
//   <root>/<map name>            maps, pinned by libbpf (pin_root_path)
//   <root>/progs/<function>      programs
//   <root>/links/xdp@<ifname>    XDP links; TC egress filters sit on the
//   <root>/links/sockops@cgroup  same interfaces
//   <root>/links/tp@<tracepoint>
//   <root>/links/connect4@cgroup ...  cgroup sock_addr hooks (service reroute)
//   <root>/staging/              transient: a pin being replaced
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace shhim::datapath::pins {

inline constexpr std::string_view kProgsDir = "progs";
inline constexpr std::string_view kLinksDir = "links";
// Replacement pins are made here and renamed into place (bpffs has no dots).
inline constexpr std::string_view kStagingDir = "staging";
inline constexpr std::string_view kXdpLinkPrefix = "xdp@";
inline constexpr std::string_view kSockopsLink = "sockops@cgroup";
inline constexpr std::string_view kTracepointLinkPrefix = "tp@";

// Telemetry maps, the priority-class maps (datapath/policy_maps.h), the
// service-route maps (datapath/route_maps.h), then packet capture
// (datapath/capture.h).
inline constexpr std::array<std::string_view, 21> kMapNames = {
    "shhim_flows",         "shhim_backends",       "shhim_counters",     "shhim_events",
    "shhim_config",        "shhim_policy_state",   "shhim_policies",     "shhim_services",
    "shhim_rules",         "shhim_ifaces",         "shhim_class_counters", "shhim_class_buckets",
    "shhim_route_vips",    "shhim_routes",         "shhim_route_active", "shhim_backend_health",
    "shhim_backend_ids",   "shhim_route_counters", "shhim_sock_routes",  "shhim_capture_config",
    "shhim_capture_ring"};

inline std::string join(std::string_view root, std::string_view a)
{
    std::string path(root);
    if (!path.empty() && path.back() != '/')
        path += '/';
    path += a;
    return path;
}
inline std::string join(std::string_view root, std::string_view a, std::string_view b)
{
    return join(join(root, a), b);
}

inline std::string map(std::string_view root, std::string_view name) { return join(root, name); }
inline std::string program(std::string_view root, std::string_view name) { return join(root, kProgsDir, name); }
inline std::string xdpLink(std::string_view root, std::string_view ifname)
{
    return join(root, kLinksDir, std::string(kXdpLinkPrefix) + std::string(ifname));
}
inline std::string sockopsLink(std::string_view root) { return join(root, kLinksDir, kSockopsLink); }
inline constexpr std::string_view kCgroupLinkSuffix = "@cgroup";
// links/<attach point>@cgroup, e.g. links/connect4@cgroup.
inline std::string sockAddrLink(std::string_view root, std::string_view attach_point)
{
    return join(root, kLinksDir, std::string(attach_point) + std::string(kCgroupLinkSuffix));
}
inline std::string tracepointLink(std::string_view root, std::string_view tracepoint)
{
    return join(root, kLinksDir, std::string(kTracepointLinkPrefix) + std::string(tracepoint));
}

}  // namespace shhim::datapath::pins
