#include "datapath/preflight.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "datapath/bpf_handles.h"
#include "datapath/error.h"
#include "common/unique_fd.h"
#include "datapath/kernel_objects.h"
#include "datapath/libbpf_log.h"

namespace shhim::datapath {
namespace {

struct BtfDeleter {
    void operator()(btf* b) const noexcept { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

// r0 = value; exit
std::array<bpf_insn, 2> returnConstant(std::int32_t value)
{
    std::array<bpf_insn, 2> insns = {};
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
    insns[0].dst_reg = BPF_REG_0;
    insns[0].imm = value;
    insns[1].code = BPF_JMP | BPF_EXIT;
    return insns;
}

bool fileReadable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

std::string firstLine(const std::string& path)
{
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

bool kernelHasFilesystem(const std::string& type)
{
    std::ifstream filesystems("/proc/filesystems");
    std::string line;
    while (std::getline(filesystems, line)) {
        const auto tab = line.rfind('\t');
        if (line.substr(tab == std::string::npos ? 0 : tab + 1) == type)
            return true;
    }
    return false;
}

// Undo the octal escapes (\040 for a space) of /proc/self/mountinfo.
std::string unescapeMountField(const std::string& field)
{
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            const std::string octal = field.substr(i + 1, 3);
            if (octal.find_first_not_of("01234567") == std::string::npos) {
                out += static_cast<char>(std::stoi(octal, nullptr, 8));
                i += 3;
                continue;
            }
        }
        out += field[i];
    }
    return out;
}

PreflightCheck probeProgType(const std::string& name, bpf_prog_type type, const std::string& ok_detail)
{
    LibbpfLogCapture quiet;
    const int rc = libbpf_probe_bpf_prog_type(type, nullptr);
    if (rc == 1)
        return {name, true, true, ok_detail};
    return {name, true, false,
            rc == 0 ? "program type refused by this kernel" : "probe failed: " + errnoText(rc)};
}

// BPF helpers the shipped programs call that arrived after 5.4, with the first
// kernel that has each: a missing one is named with the version to upgrade to.
struct NeededHelper {
    bpf_prog_type prog_type;
    bpf_func_id helper;
    const char* name;
    const char* since;
};

constexpr NeededHelper kNeededHelpers[] = {
    {BPF_PROG_TYPE_XDP, BPF_FUNC_jiffies64, "bpf_jiffies64", "5.5"},
    {BPF_PROG_TYPE_XDP, BPF_FUNC_ringbuf_reserve, "bpf_ringbuf_reserve", "5.8"},
    {BPF_PROG_TYPE_XDP, BPF_FUNC_ktime_get_coarse_ns, "bpf_ktime_get_coarse_ns", "5.11"},
    {BPF_PROG_TYPE_XDP, BPF_FUNC_xdp_load_bytes, "bpf_xdp_load_bytes", "5.18"},
    {BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_skb_pull_data, "bpf_skb_pull_data", "4.9"},
};

PreflightCheck probeHelpers()
{
    LibbpfLogCapture quiet;
    std::string missing;
    for (const auto& needed : kNeededHelpers) {
        if (libbpf_probe_bpf_helper(needed.prog_type, needed.helper, nullptr) == 1)
            continue;
        missing += std::string(missing.empty() ? "" : "; ") + needed.name + " (needs Linux >= " + needed.since + ")";
    }
    if (missing.empty())
        return {"bpf_helpers", true, true, "every BPF helper the programs call is available (newest: 5.18)"};
    return {"bpf_helpers", true, false, "missing " + missing};
}

PreflightCheck probeTpBtf()
{
    const char* tracepoint = "tcp_retransmit_skb";
    LibbpfLogCapture quiet;
    const int btf_id = libbpf_find_vmlinux_btf_id(tracepoint, BPF_TRACE_RAW_TP);
    if (btf_id <= 0)
        return {"tp_btf", true, false,
                std::string("tracepoint ") + tracepoint + " not found in kernel BTF: " + errnoText(btf_id)};
    auto options = libbpfOpts<bpf_prog_load_opts>();
    options.expected_attach_type = BPF_TRACE_RAW_TP;
    options.attach_btf_id = static_cast<__u32>(btf_id);
    const auto insns = returnConstant(0);
    UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_TRACING, "shhim_probe_tp", "GPL", insns.data(), insns.size(),
                                &options));
    if (!prog)
        return {"tp_btf", true, false, std::string("loading a tp_btf program failed: ") + errnoText(errno)};
    // Attaching is where lockdown-style policies bite; the empty program is
    // detached again when the link fd closes.
    UniqueFd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
    if (!link)
        return {"tp_btf", true, false, std::string("attaching a tp_btf program failed: ") + errnoText(errno)};
    return {"tp_btf", true, true, std::string("BTF tracepoints load and attach (probed on ") + tracepoint + ")"};
}

// libxdp runs several XDP programs on one interface through a dispatcher
// whose slots are replaced with freplace (BPF_PROG_TYPE_EXT) programs. The
// probe builds the smallest such pair by hand: an XDP program with BTF,
// and an extension program replacing its function.
PreflightCheck probeFreplace()
{
    const std::string fallback = " - fallback: single-program XDP (shhim owns the interface's XDP hook)";
    LibbpfLogCapture quiet;
    BtfPtr types(btf__new_empty());
    if (!types)
        return {"xdp_multiprog", false, false, "could not build BTF: " + errnoText(errno) + fallback};
    const int int_id = btf__add_int(types.get(), "int", 4, BTF_INT_SIGNED);
    const int ctx_id = btf__add_struct(types.get(), "xdp_md", 24);
    const int ctx_ptr_id = btf__add_ptr(types.get(), ctx_id);
    const int proto_id = btf__add_func_proto(types.get(), int_id);
    btf__add_func_param(types.get(), "ctx", ctx_ptr_id);
    const int target_func = btf__add_func(types.get(), "shhim_probe_target", BTF_FUNC_GLOBAL, proto_id);
    const int ext_func = btf__add_func(types.get(), "shhim_probe_ext", BTF_FUNC_GLOBAL, proto_id);
    if (int_id < 0 || ctx_id < 0 || ctx_ptr_id < 0 || proto_id < 0 || target_func < 0 || ext_func < 0)
        return {"xdp_multiprog", false, false, "could not build BTF" + fallback};
    if (btf__load_into_kernel(types.get()) != 0)
        return {"xdp_multiprog", false, false, "loading BTF refused: " + errnoText(errno) + fallback};

    const auto insns = returnConstant(2 /* XDP_PASS */);
    bpf_func_info target_info = {0, static_cast<__u32>(target_func)};
    auto target_options = libbpfOpts<bpf_prog_load_opts>();
    target_options.prog_btf_fd = static_cast<__u32>(btf__fd(types.get()));
    target_options.func_info = &target_info;
    target_options.func_info_cnt = 1;
    target_options.func_info_rec_size = sizeof(target_info);
    UniqueFd target(bpf_prog_load(BPF_PROG_TYPE_XDP, "shhim_probe_tgt", "GPL", insns.data(), insns.size(),
                                  &target_options));
    if (!target)
        return {"xdp_multiprog", false, false,
                "loading the probe's XDP program failed: " + errnoText(errno) + fallback};

    bpf_func_info ext_info = {0, static_cast<__u32>(ext_func)};
    auto ext_options = libbpfOpts<bpf_prog_load_opts>();
    ext_options.prog_btf_fd = static_cast<__u32>(btf__fd(types.get()));
    ext_options.func_info = &ext_info;
    ext_options.func_info_cnt = 1;
    ext_options.func_info_rec_size = sizeof(ext_info);
    ext_options.attach_prog_fd = static_cast<__u32>(target.get());
    ext_options.attach_btf_id = static_cast<__u32>(target_func);
    UniqueFd extension(bpf_prog_load(BPF_PROG_TYPE_EXT, "shhim_probe_ext", "GPL", insns.data(), insns.size(),
                                     &ext_options));
    if (!extension)
        return {"xdp_multiprog", false, false,
                "freplace (BPF_PROG_TYPE_EXT) refused: " + errnoText(errno) + fallback};
    UniqueFd link(bpf_raw_tracepoint_open(nullptr, extension.get()));
    if (!link)
        return {"xdp_multiprog", false, false, "attaching freplace refused: " + errnoText(errno) + fallback};
    return {"xdp_multiprog", false, true,
            "freplace works: libxdp's dispatcher could share XDP hooks (shhim still attaches one program)"};
}

// The lockdown file lives on securityfs, which many systems do not mount.
// It is then mounted read-only in a throwaway mount namespace of a child
// process, so the host's mounts are never touched.
std::string lockdownState()
{
    const std::string path = "/sys/kernel/security/lockdown";
    if (fileReadable(path))
        return firstLine(path);
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0)
        return "unknown (securityfs not mounted)";
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(pipe_fds[1]);
    const pid_t child = ::fork();
    if (child < 0)
        return "unknown (securityfs not mounted)";
    if (child == 0) {
        read_end.reset();  // the child only writes
        if (::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
            ::mount("securityfs", "/sys/kernel/security", "securityfs", MS_RDONLY | MS_NOSUID | MS_NOEXEC | MS_NODEV,
                    nullptr) == 0) {
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                char buffer[256];
                const ssize_t n = ::read(fd, buffer, sizeof(buffer));
                if (n > 0 && ::write(write_end.get(), buffer, static_cast<size_t>(n)) < 0)
                    ::_exit(1);
            }
        }
        ::_exit(0);
    }
    write_end.reset();
    std::string text;
    char buffer[256];
    ssize_t n;
    while ((n = ::read(read_end.get(), buffer, sizeof(buffer))) > 0)
        text.append(buffer, static_cast<size_t>(n));
    int status = 0;
    ::waitpid(child, &status, 0);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
        text.pop_back();
    if (text.empty())
        return "unknown (securityfs not mounted)";
    return text + " (read via a private securityfs mount)";
}

// "[none] integrity confidentiality" -> "integrity"
std::string activeLockdownMode(const std::string& state)
{
    const auto open = state.find('[');
    const auto close = state.find(']', open);
    if (open == std::string::npos || close == std::string::npos)
        return "";
    return state.substr(open + 1, close - open - 1);
}

std::string driverOf(const std::string& ifname)
{
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock)
        return "?";
    ethtool_drvinfo info = {};
    info.cmd = ETHTOOL_GDRVINFO;
    ifreq request = {};
    std::strncpy(request.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    request.ifr_data = reinterpret_cast<char*>(&info);
    if (::ioctl(sock.get(), SIOCETHTOOL, &request) != 0)
        return errno == ENODEV ? "(no such interface)" : "unknown (no ethtool driver info)";
    return info.driver;
}

}  // namespace

bool mountBpfFsIfMissing(const std::string& mount_point)
{
    if (isOnBpfFs(mount_point))
        return false;
    if (::mkdir(mount_point.c_str(), 0700) != 0 && errno != EEXIST)
        throwErrno("create BPF filesystem mount point " + mount_point, errno);
    if (::mount("bpf", mount_point.c_str(), "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") != 0)
        throwErrno("mount BPF filesystem at " + mount_point, errno);
    return true;
}

std::string kernelRelease()
{
    utsname name = {};
    if (::uname(&name) != 0)
        return "unknown";
    return name.release;
}

std::string findCgroup2Mount()
{
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mountinfo, line)) {
        const auto separator = line.find(" - ");
        if (separator == std::string::npos)
            continue;
        std::istringstream tail(line.substr(separator + 3));
        std::string fstype;
        tail >> fstype;
        if (fstype != "cgroup2")
            continue;
        std::istringstream head(line.substr(0, separator));
        std::string id, parent, device, root, mount_point;
        head >> id >> parent >> device >> root >> mount_point;
        return unescapeMountField(mount_point);
    }
    return "";
}

// The cgroup shhimd would attach sockops to: the one asked for, else the v2 mount.
PreflightCheck checkCgroup(const std::string& requested)
{
    if (requested == "none")
        return {"cgroup_v2", false, true, "not used (--cgroup none: no socket-level hooks)"};
    if (!requested.empty()) {
        const bool ok = isCgroup2Directory(requested);
        return {"cgroup_v2", true, ok,
                ok ? requested + " is a cgroup v2 directory"
                   : requested + " is not a cgroup v2 directory (sockops needs one; see /proc/self/mountinfo)"};
    }
    const std::string mount = findCgroup2Mount();
    return {"cgroup_v2", true, !mount.empty(),
            mount.empty() ? "no cgroup2 mount in /proc/self/mountinfo (sockops needs cgroup v2)"
                          : "mounted at " + mount};
}

std::vector<PreflightCheck> preflight(const PreflightOptions& options)
{
    std::vector<PreflightCheck> checks;
    checks.push_back({"kernel", false, true, "Linux " + kernelRelease()});

    const bool btf = fileReadable("/sys/kernel/btf/vmlinux");
    checks.push_back({"btf", true, btf,
                      btf ? "/sys/kernel/btf/vmlinux present (CO-RE relocations, tp_btf)"
                          : "/sys/kernel/btf/vmlinux missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y"});

    const bool bpffs = isOnBpfFs("/sys/fs/bpf");
    const bool bpffs_known = bpffs || kernelHasFilesystem("bpf");
    checks.push_back({"bpffs", true, bpffs_known,
                      bpffs         ? "mounted at /sys/fs/bpf"
                      : bpffs_known ? "not mounted at /sys/fs/bpf (shhimd mounts it at start; by hand: mount -t bpf "
                                      "bpf /sys/fs/bpf)"
                                    : "the kernel has no bpf filesystem (/proc/filesystems)"});

    PreflightCheck xdp = probeProgType(
        "xdp", BPF_PROG_TYPE_XDP,
        "XDP programs load; generic (skb) mode works on any interface, native (driver) mode depends on the "
        "NIC driver and is tried first at attach (status shows the mode per interface)");
    for (const auto& ifname : options.interfaces)
        xdp.detail += "; " + ifname + ": driver " + driverOf(ifname);
    checks.push_back(xdp);

    checks.push_back(probeProgType("tc_clsact", BPF_PROG_TYPE_SCHED_CLS,
                                   "sched_cls programs load (attached on a clsact qdisc, egress)"));

    checks.push_back(checkCgroup(options.cgroup_path));

    checks.push_back(probeProgType("sockops", BPF_PROG_TYPE_SOCK_OPS, "sock_ops programs load (RTT, RTO)"));
    checks.push_back(probeProgType("cgroup_sock_addr", BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                                   "cgroup sock_addr programs load (connect/sendmsg/recvmsg: service reroute)"));
    checks.push_back(probeTpBtf());
    checks.push_back(probeHelpers());

    {
        LibbpfLogCapture quiet;
        const int rc = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr);
        checks.push_back({"ringbuf", true, rc == 1,
                          rc == 1 ? "BPF ring buffer maps supported"
                          : rc == 0 ? "BPF ring buffer maps refused (kernel older than 5.8?)"
                                    : "probe failed: " + errnoText(rc)});
    }

    checks.push_back(probeFreplace());

    const std::string lockdown = lockdownState();
    const std::string mode = activeLockdownMode(lockdown);
    std::string lockdown_detail = lockdown;
    if (mode == "integrity" || mode == "confidentiality")
        lockdown_detail += " - kprobes and (on this project's kernels) fentry/freplace are refused; shhim "
                           "uses none of them";
    checks.push_back({"lockdown", false, true, lockdown_detail});
    return checks;
}

}  // namespace shhim::datapath
