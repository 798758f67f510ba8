// The BPF programs shhim ships (bpf/*.bpf.c, see the team brief) and the
// function that loads them. Internal to datapath: the generated skeletons
// (and their embedded ELF bytes) are included by shipped.cpp only.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "datapath/log.h"

namespace shhim::datapath {

// SockAddr: a cgroup sock_addr hook (connect4, sendmsg6, ...: issue 4 reroute).
enum class ProgramHook { Xdp, TcEgress, Sockops, Tracepoint, SockAddr };

struct ShippedProgram {
    std::string_view name;        // function name = pin name under progs/
    ProgramHook hook;
    std::string_view tracepoint;  // tp_btf target; SockAddr: the attach point ("connect4"); "" for the others
};

// The six cgroup sock_addr programs of connect.bpf.c are the service
// reroute (issue 4), attached to shhimd's --cgroup.
inline constexpr std::array<ShippedProgram, 12> kShippedPrograms = {{
    {"shhim_xdp_ingress", ProgramHook::Xdp, ""},
    {"shhim_tc_egress", ProgramHook::TcEgress, ""},
    {"shhim_sockops", ProgramHook::Sockops, ""},
    {"shhim_tp_retransmit", ProgramHook::Tracepoint, "tcp_retransmit_skb"},
    {"shhim_tp_receive_reset", ProgramHook::Tracepoint, "tcp_receive_reset"},
    {"shhim_tp_state", ProgramHook::Tracepoint, "inet_sock_set_state"},
    {"shhim_connect4", ProgramHook::SockAddr, "connect4"},
    {"shhim_connect6", ProgramHook::SockAddr, "connect6"},
    {"shhim_sendmsg4", ProgramHook::SockAddr, "sendmsg4"},
    {"shhim_sendmsg6", ProgramHook::SockAddr, "sendmsg6"},
    {"shhim_recvmsg4", ProgramHook::SockAddr, "recvmsg4"},
    {"shhim_recvmsg6", ProgramHook::SockAddr, "recvmsg6"},
}};

// Opens every shipped object with pin_root_path = pin_root (maps are created
// and pinned, or reused from their pins), sizes shhim_flows to flow_entries
// in each, loads them and pins every program at <pin_root>/progs/<name>,
// replacing an older pin in one rename. Throws Error with libbpf's log.
void loadAndPinShippedObjects(const std::string& pin_root, std::uint32_t flow_entries, const LogFn& log);

// Pins fd at path; an existing pin is replaced atomically (pin beside it,
// then rename over it) so the path never disappears.
void pinReplacing(int fd, const std::string& path, const std::string& what);

}  // namespace shhim::datapath
