// Small typed queries on kernel BPF objects shared by loader, detach and
// preflight. Internal to datapath.
#pragma once

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/unique_fd.h"

namespace shhim::datapath {

// bpf_obj_get; throws Error("open pinned <what> at <path>: ...").
UniqueFd openPin(const std::string& path, const std::string& what);
bpf_link_info linkInfo(int link_fd, const std::string& what);
std::uint32_t programId(int prog_fd, const std::string& what);
// The kernel's (possibly truncated, 15 chars) name of program `id`; "" if
// it is gone or cannot be read.
std::string programNameById(std::uint32_t id);

// The pinned map <pin_root>/<name>; throws naming it, with `hint` appended
// to the message when given (what the user should do about it).
UniqueFd openPinnedMap(const std::string& pin_root, std::string_view name, std::string_view hint = {});
bpf_map_info mapInfo(int fd, std::string_view name);
// Checks that a pinned map has the layout this build was compiled against,
// so that a read never misinterprets bytes of another ABI.
void checkLayout(int fd, std::string_view name, std::uint32_t key_size, std::uint32_t value_size);

// statfs() magic checks.
bool isOnBpfFs(const std::string& path);
bool isCgroup2Directory(const std::string& path);

// "native", "generic", "offload" for the XDP program `prog_id` on ifindex,
// "" if none is attached there.
std::string xdpModeOf(int ifindex, std::uint32_t prog_id);

// TC egress filter handle/priority shhim uses ("SH").
inline constexpr std::uint32_t kTcHandle = 0x5348;
inline constexpr std::uint32_t kTcPriority = 1;
// Program id of the filter at kTcHandle/kTcPriority on ifindex's egress, 0 if none.
std::uint32_t queryTcEgress(int ifindex, const std::string& ifname);

}  // namespace shhim::datapath
