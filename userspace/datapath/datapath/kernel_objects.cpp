#include "datapath/kernel_objects.h"

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <cerrno>

#include "datapath/bpf_handles.h"
#include "datapath/error.h"
#include "datapath/libbpf_log.h"
#include "datapath/pins.h"

namespace shhim::datapath {

UniqueFd openPinnedMap(const std::string& pin_root, std::string_view name, std::string_view hint)
{
    const std::string path = pins::map(pin_root, name);
    const int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
        std::string what = "open pinned map " + std::string(name) + " at " + path;
        if (!hint.empty())
            what += " (" + std::string(hint) + ")";
        throwErrno(what, errno);
    }
    return UniqueFd(fd);
}

bpf_map_info mapInfo(int fd, std::string_view name)
{
    bpf_map_info info = {};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0)
        throwErrno("read info of map " + std::string(name), errno);
    return info;
}

void checkLayout(int fd, std::string_view name, std::uint32_t key_size, std::uint32_t value_size)
{
    const bpf_map_info info = mapInfo(fd, name);
    if (info.key_size != key_size || info.value_size != value_size)
        throw Error("pinned map " + std::string(name) + " has key/value size " + std::to_string(info.key_size) +
                    "/" + std::to_string(info.value_size) + ", this build expects " + std::to_string(key_size) + "/" +
                    std::to_string(value_size) + " (pinned by another shhim version: run shhimd --detach)");
}

UniqueFd openPin(const std::string& path, const std::string& what)
{
    const int fd = bpf_obj_get(path.c_str());
    if (fd < 0)
        throwErrno("open pinned " + what + " at " + path, errno);
    return UniqueFd(fd);
}

bpf_link_info linkInfo(int link_fd, const std::string& what)
{
    bpf_link_info info = {};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(link_fd, &info, &length) != 0)
        throwErrno("read link info of " + what, errno);
    return info;
}

std::uint32_t programId(int prog_fd, const std::string& what)
{
    bpf_prog_info info = {};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) != 0)
        throwErrno("read program info of " + what, errno);
    return info.id;
}

std::string programNameById(std::uint32_t id)
{
    if (id == 0)
        return "";
    UniqueFd fd(bpf_prog_get_fd_by_id(id));
    if (!fd)
        return "";
    bpf_prog_info info = {};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0)
        return "";
    return info.name;
}

bool isOnBpfFs(const std::string& path)
{
    struct statfs fs = {};
    return ::statfs(path.c_str(), &fs) == 0 && static_cast<unsigned long>(fs.f_type) == BPF_FS_MAGIC;
}

bool isCgroup2Directory(const std::string& path)
{
    struct statfs fs = {};
    return ::statfs(path.c_str(), &fs) == 0 && static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC;
}

std::string xdpModeOf(int ifindex, std::uint32_t prog_id)
{
    auto query = libbpfOpts<bpf_xdp_query_opts>();
    if (ifindex <= 0 || bpf_xdp_query(ifindex, 0, &query) != 0)
        return "";
    switch (query.attach_mode) {
    case XDP_ATTACHED_DRV:
        return "native";
    case XDP_ATTACHED_SKB:
        return "generic";
    case XDP_ATTACHED_HW:
        return "offload";
    case XDP_ATTACHED_MULTI:
        if (query.drv_prog_id == prog_id)
            return "native";
        if (query.skb_prog_id == prog_id)
            return "generic";
        if (query.hw_prog_id == prog_id)
            return "offload";
        return "";
    default:
        return "";
    }
}

std::uint32_t queryTcEgress(int ifindex, const std::string& ifname)
{
    auto hook = libbpfOpts<bpf_tc_hook>();
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_EGRESS;
    auto query = libbpfOpts<bpf_tc_opts>();
    query.handle = kTcHandle;
    query.priority = kTcPriority;
    // libbpf prints the kernel's "Cannot find specified filter chain" for
    // the normal no-filter answer: keep that off stderr.
    const LibbpfLogCapture quiet;
    const int rc = bpf_tc_query(&hook, &query);
    // ENOENT: no such filter; EINVAL: no clsact qdisc on the interface.
    if (rc == -ENOENT || rc == -EINVAL)
        return 0;
    if (rc != 0)
        throwErrno("query TC egress filter on " + ifname, rc);
    return query.prog_id;
}

}  // namespace shhim::datapath
