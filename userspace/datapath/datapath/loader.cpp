#include "datapath/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <set>

#include "datapath/bpf_handles.h"
#include "datapath/class_qdisc.h"
#include "datapath/error.h"
#include "datapath/kernel_objects.h"
#include "datapath/libbpf_log.h"
#include "datapath/pins.h"
#include "datapath/shipped.h"

namespace fs = std::filesystem;

namespace shhim::datapath {
namespace {

class Logger {
public:
    explicit Logger(const LogFn& log) : log_(log) {}
    void info(const std::string& line) const { emit(LogLevel::Info, line); }
    void warn(const std::string& line) const { emit(LogLevel::Warn, line); }
    void debug(const std::string& line) const { emit(LogLevel::Debug, line); }

private:
    void emit(LogLevel level, const std::string& line) const
    {
        if (log_)
            log_(level, line);
    }
    const LogFn& log_;
};

bool exists(const std::string& path)
{
    std::error_code ec;
    return fs::exists(fs::symlink_status(path, ec));
}

// The pin root must live on a BPF filesystem; it may not exist yet, so the
// nearest existing ancestor is checked.
void requireBpfFs(const std::string& pin_root)
{
    fs::path probe = fs::absolute(pin_root);
    while (!probe.empty() && !exists(probe.string()) && probe != probe.root_path())
        probe = probe.parent_path();
    if (!isOnBpfFs(probe.string()))
        throw Error("pin root " + pin_root + " is not on a BPF filesystem (" + probe.string() +
                    " is not bpffs; mount one with `mount -t bpf bpf /sys/fs/bpf`)");
}

// Size of the flow LRU: a pinned table keeps its size; asking for another
// one needs the table (and the state in it) to go first.
std::uint32_t chooseFlowEntries(const LoadOptions& options)
{
    const std::string path = pins::map(options.pin_root, "shhim_flows");
    if (!exists(path))
        return options.flow_entries ? options.flow_entries : SHHIM_DEFAULT_FLOW_ENTRIES;
    UniqueFd fd = openPin(path, "map shhim_flows");
    bpf_map_info info = {};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0)
        throwErrno("read map info of " + path, errno);
    if (options.flow_entries != 0 && options.flow_entries != info.max_entries)
        throw Error("the pinned flow table " + path + " holds " + std::to_string(info.max_entries) +
                    " entries but " + std::to_string(options.flow_entries) +
                    " were asked for; a BPF map cannot be resized: run `shhimd --detach --pin-root " +
                    options.pin_root + "` first (this drops the flow and backend state) or leave the size out");
    return info.max_entries;
}

bool allProgramsPinned(const std::string& pin_root)
{
    return std::all_of(kShippedPrograms.begin(), kShippedPrograms.end(),
                       [&](const ShippedProgram& p) { return exists(pins::program(pin_root, p.name)); });
}

struct PinnedProgram {
    UniqueFd fd;
    std::uint32_t id = 0;
};

std::map<std::string, PinnedProgram, std::less<>> openPinnedPrograms(const std::string& pin_root)
{
    std::map<std::string, PinnedProgram, std::less<>> programs;
    for (const auto& shipped : kShippedPrograms) {
        const std::string name(shipped.name);
        PinnedProgram program;
        program.fd = openPin(pins::program(pin_root, name), "program " + name);
        program.id = programId(program.fd.get(), name);
        programs.emplace(name, std::move(program));
    }
    return programs;
}

const PinnedProgram& programFor(const std::map<std::string, PinnedProgram, std::less<>>& programs,
                                std::string_view name)
{
    const auto it = programs.find(name);
    if (it == programs.end())
        throw Error("program " + std::string(name) + " is not pinned");
    return it->second;
}

std::string describeProgram(std::uint32_t id)
{
    const std::string name = programNameById(id);
    return (name.empty() ? "program" : "'" + name + "'") + " (id " + std::to_string(id) + ")";
}

int interfaceIndex(const std::string& ifname)
{
    const unsigned index = if_nametoindex(ifname.c_str());
    if (index == 0)
        throwErrno("interface " + ifname + " (not in this network namespace?)", errno ? errno : ENODEV);
    return static_cast<int>(index);
}

// Link pinned at path if it is still attached to what `matches` accepts;
// otherwise the stale pin is removed and an empty fd returned.
template <typename Matches>
UniqueFd openLinkIf(const std::string& path, const std::string& what, Matches&& matches, const Logger& log,
                    bpf_link_info& info)
{
    if (!exists(path))
        return {};
    UniqueFd link = openPin(path, what);
    info = linkInfo(link.get(), what);
    if (matches(info))
        return link;
    log.info(what + ": pinned link no longer matches (target gone or changed): removing it");
    bpf_link_detach(link.get());
    ::unlink(path.c_str());
    return {};
}

// ---- XDP ----------------------------------------------------------------

void refuseForeignXdp(const std::string& ifname, int ifindex)
{
    auto query = libbpfOpts<bpf_xdp_query_opts>();
    const int rc = bpf_xdp_query(ifindex, 0, &query);
    if (rc != 0)
        throwErrno("query XDP programs on " + ifname, rc);
    if (query.attach_mode == XDP_ATTACHED_NONE)
        return;
    const std::uint32_t id = query.prog_id ? query.prog_id
                             : query.drv_prog_id ? query.drv_prog_id
                             : query.skb_prog_id ? query.skb_prog_id
                                                 : query.hw_prog_id;
    throw Error("interface " + ifname + " already has XDP " + describeProgram(id) +
                    " attached that shhim did not pin; shhim runs XDP in single-program mode (libxdp's "
                    "multi-program dispatcher needs freplace, which kernel lockdown refuses), so it will not "
                    "displace it. Remove it (`ip link set dev " +
                    ifname + " xdp off`) or leave " + ifname + " out",
                EBUSY);
}

// True if links/xdp@ifname exists and is attached to ifindex.
bool pinnedXdpLinkIsOn(const std::string& pin_root, const std::string& ifname, int ifindex)
{
    const std::string path = pins::xdpLink(pin_root, ifname);
    if (!exists(path))
        return false;
    const UniqueFd link = openPin(path, "XDP link on " + ifname);
    const bpf_link_info info = linkInfo(link.get(), "XDP link on " + ifname);
    return info.type == BPF_LINK_TYPE_XDP && static_cast<int>(info.xdp.ifindex) == ifindex;
}

UniqueFd createXdpLink(int prog_fd, const std::string& ifname, int ifindex, XdpMode mode, std::string& mode_name)
{
    struct Attempt {
        __u32 flags;
        const char* name;
    };
    std::vector<Attempt> attempts;
    if (mode != XdpMode::Generic)
        attempts.push_back({XDP_FLAGS_DRV_MODE, "native"});
    if (mode != XdpMode::Native)
        attempts.push_back({XDP_FLAGS_SKB_MODE, "generic"});

    std::string failures;
    for (const Attempt& attempt : attempts) {
        auto options = libbpfOpts<bpf_link_create_opts>();
        options.flags = attempt.flags;  // XDP links take the mode in link_create.flags
        const int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &options);
        if (fd >= 0) {
            mode_name = attempt.name;
            return UniqueFd(fd);
        }
        failures += std::string(failures.empty() ? "" : "; ") + attempt.name + " mode: " + errnoText(errno);
    }
    throw Error("attach XDP program to " + ifname + ": " + failures);
}

void ensureXdp(const std::string& pin_root, const std::string& ifname, int ifindex, const PinnedProgram& program,
               XdpMode mode, const Logger& log)
{
    const std::string path = pins::xdpLink(pin_root, ifname);
    const std::string what = "XDP link on " + ifname;
    bpf_link_info info = {};
    UniqueFd link = openLinkIf(
        path, what,
        [&](const bpf_link_info& i) {
            return i.type == BPF_LINK_TYPE_XDP && static_cast<int>(i.xdp.ifindex) == ifindex;
        },
        log, info);
    if (link) {
        const std::string mode_name = xdpModeOf(ifindex, info.prog_id);
        if (info.prog_id == program.id) {
            log.info("xdp on " + ifname + ": keeping attached program id " + std::to_string(program.id) + " (" +
                     mode_name + ")");
            return;
        }
        // One syscall swaps the program under the running link: no packet
        // sees no program.
        if (bpf_link_update(link.get(), program.fd.get(), nullptr) != 0)
            throwErrno("replace XDP program on " + ifname + " (link update)", errno);
        log.info("xdp on " + ifname + ": replaced program id " + std::to_string(info.prog_id) + " by " +
                 std::to_string(program.id) + " (atomic link update, " + mode_name + ")");
        return;
    }
    refuseForeignXdp(ifname, ifindex);
    std::string mode_name;
    UniqueFd created = createXdpLink(program.fd.get(), ifname, ifindex, mode, mode_name);
    pinReplacing(created.get(), path, what);
    log.info("xdp on " + ifname + ": attached program id " + std::to_string(program.id) + " in " + mode_name +
             " mode" +
             (mode_name == "generic" && mode == XdpMode::Auto ? " (the driver has no native XDP)" : ""));
}

// ---- TC egress ----------------------------------------------------------

void ensureTcEgress(const std::string& ifname, int ifindex, const PinnedProgram& program, const Logger& log)
{
    auto hook = libbpfOpts<bpf_tc_hook>();
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_EGRESS;
    int created = 0;
    {
        // An existing clsact qdisc is the normal case; libbpf would print
        // the kernel's "Exclusivity flag on" for it.
        const LibbpfLogCapture quiet;
        created = bpf_tc_hook_create(&hook);
    }
    if (created != 0 && created != -EEXIST)
        throwErrno("create clsact qdisc on " + ifname, created);

    const std::uint32_t current = queryTcEgress(ifindex, ifname);
    if (current == program.id) {
        log.info("tc-egress on " + ifname + ": keeping attached program id " + std::to_string(program.id));
        return;
    }
    if (current != 0) {
        const std::string name = programNameById(current);
        if (name.rfind("shhim_tc_egress", 0) != 0)
            throw Error("TC egress filter handle 0x5348 priority 1 on " + ifname + " runs " +
                            describeProgram(current) + ", not shhim's: refusing to replace it",
                        EBUSY);
    }
    auto options = libbpfOpts<bpf_tc_opts>();
    options.prog_fd = program.fd.get();
    options.handle = kTcHandle;
    options.priority = kTcPriority;
    // REPLACE swaps the program of an existing filter in place.
    options.flags = BPF_TC_F_REPLACE;
    const int rc = bpf_tc_attach(&hook, &options);
    if (rc != 0)
        throwErrno("attach TC egress program to " + ifname, rc);
    if (current != 0)
        log.info("tc-egress on " + ifname + ": replaced program id " + std::to_string(current) + " by " +
                 std::to_string(program.id) + " (in place)");
    else
        log.info("tc-egress on " + ifname + ": attached program id " + std::to_string(program.id) +
                 " (clsact, handle 0x5348, priority 1)");
}

// Removes shhim's TC egress filter on ifname, if the interface is the one
// the XDP link points at (so that a run in another network namespace never
// touches an unrelated interface of the same index).
void removeTcEgress(const std::string& ifname, int ifindex, DetachReport& report, const Logger& log)
{
    if (ifindex == 0)
        return;  // the interface is gone, and its filters with it
    const unsigned here = if_nametoindex(ifname.c_str());
    if (here == 0 || static_cast<int>(here) != ifindex) {
        report.problems.push_back("TC egress filter on " + ifname + " (ifindex " + std::to_string(ifindex) +
                                  ") not removed: that interface is not in this network namespace; run "
                                  "--detach in the namespace shhimd ran in");
        return;
    }
    const std::uint32_t current = queryTcEgress(ifindex, ifname);
    if (current == 0)
        return;
    const std::string name = programNameById(current);
    if (name.rfind("shhim_tc_egress", 0) != 0) {
        report.problems.push_back("TC egress filter handle 0x5348 on " + ifname + " runs " +
                                  describeProgram(current) + ", not shhim's: left in place");
        return;
    }
    auto hook = libbpfOpts<bpf_tc_hook>();
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_EGRESS;
    auto options = libbpfOpts<bpf_tc_opts>();
    options.handle = kTcHandle;
    options.priority = kTcPriority;
    const int rc = bpf_tc_detach(&hook, &options);
    if (rc != 0 && rc != -ENOENT) {
        report.problems.push_back("TC egress filter on " + ifname + ": " + errnoText(rc));
        return;
    }
    const std::string line = "TC egress filter on " + ifname + " (program id " + std::to_string(current) + ")";
    report.removed.push_back(line);
    log.info("removed " + line);
}

// Detaches the link pinned at path (even if another process holds an fd
// to it) and unpins it.
void removeLinkPin(const std::string& path, const std::string& what, DetachReport* report, const Logger& log)
{
    const int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
        UniqueFd link(fd);
        // Tracepoint links cannot be detached: unpinning releases them.
        if (bpf_link_detach(link.get()) != 0 && errno != EOPNOTSUPP && errno != EINVAL && errno != ENOLINK &&
            report)
            report->problems.push_back("detach " + what + ": " + errnoText(errno));
    }
    if (::unlink(path.c_str()) != 0) {
        if (report)
            report->problems.push_back("unpin " + what + " at " + path + ": " + errnoText(errno));
        return;
    }
    if (report)
        report->removed.push_back(what + " (" + path + ")");
    log.info("removed " + what);
}

void removeUnrequestedXdp(const std::string& pin_root, const std::set<std::string>& requested, const Logger& log)
{
    const std::string dir = pins::join(pin_root, pins::kLinksDir);
    if (!exists(dir))
        return;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(pins::kXdpLinkPrefix, 0) != 0)
            continue;
        const std::string ifname = name.substr(pins::kXdpLinkPrefix.size());
        if (requested.count(ifname))
            continue;
        log.info("xdp on " + ifname + ": interface no longer requested: detaching");
        DetachReport report;
        UniqueFd link = openPin(entry.path().string(), "XDP link on " + ifname);
        const bpf_link_info info = linkInfo(link.get(), "XDP link on " + ifname);
        link.reset();
        removeTcEgress(ifname, static_cast<int>(info.xdp.ifindex), report, log);
        removeLinkPin(entry.path().string(), "XDP link on " + ifname, &report, log);
        for (const auto& problem : report.problems)
            log.warn(problem);
    }
}

// ---- sockops ------------------------------------------------------------

// One cgroup link pinned at `path` with `program` on cgroup_path for
// attach_type: kept if already there, switched in place (link update) if
// it runs another program, moved if it is on another cgroup, removed when
// no cgroup is requested. `hook` names it in messages ("sockops").
void ensureCgroupLink(const std::string& path, const std::string& hook, const std::string& cgroup_path,
                      const PinnedProgram& program, bpf_attach_type attach_type, const Logger& log)
{
    const std::string what = hook + " link";
    if (cgroup_path.empty()) {
        if (exists(path)) {
            log.info(hook + ": no cgroup requested: detaching the pinned " + what);
            removeLinkPin(path, what, nullptr, log);
        }
        return;
    }
    if (!isCgroup2Directory(cgroup_path))
        throw Error("cgroup " + cgroup_path + " is not a cgroup v2 directory (" + hook + " needs cgroup v2; see "
                    "`shhimd --preflight` for where it is mounted)",
                    ENOTDIR);
    const int raw = ::open(cgroup_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (raw < 0)
        throwErrno("open cgroup " + cgroup_path, errno);
    UniqueFd cgroup(raw);
    struct stat st = {};
    if (::fstat(cgroup.get(), &st) != 0)
        throwErrno("stat cgroup " + cgroup_path, errno);
    // On cgroup v2 the directory's inode number is the cgroup id the
    // kernel reports in link info.
    const std::uint64_t cgroup_id = st.st_ino;

    UniqueFd stale;
    if (exists(path)) {
        UniqueFd link = openPin(path, what);
        const bpf_link_info info = linkInfo(link.get(), what);
        if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id) {
            if (info.prog_id == program.id) {
                log.info(hook + " on " + cgroup_path + ": keeping attached program id " + std::to_string(program.id));
                return;
            }
            if (bpf_link_update(link.get(), program.fd.get(), nullptr) != 0)
                throwErrno("replace " + hook + " program on " + cgroup_path + " (link update)", errno);
            log.info(hook + " on " + cgroup_path + ": replaced program id " + std::to_string(info.prog_id) + " by " +
                     std::to_string(program.id) + " (atomic link update)");
            return;
        }
        stale = std::move(link);  // other cgroup: attach the new one first, then drop this
    }
    const int fd = bpf_link_create(program.fd.get(), cgroup.get(), attach_type, nullptr);
    if (fd < 0)
        throwErrno("attach " + hook + " program to cgroup " + cgroup_path, errno);
    UniqueFd link(fd);
    pinReplacing(link.get(), path, what);
    if (stale) {
        bpf_link_detach(stale.get());
        log.info(hook + ": moved from the previous cgroup to " + cgroup_path);
    }
    log.info(hook + " on " + cgroup_path + ": attached program id " + std::to_string(program.id));
}

void ensureSockops(const std::string& pin_root, const std::string& cgroup_path, const PinnedProgram& program,
                   const Logger& log)
{
    ensureCgroupLink(pins::sockopsLink(pin_root), "sockops", cgroup_path, program, BPF_CGROUP_SOCK_OPS, log);
}

// The kernel's attach type of a sock_addr attach point ("connect4", ...).
bpf_attach_type sockAddrAttachType(std::string_view attach_point)
{
    static constexpr std::pair<std::string_view, bpf_attach_type> kTypes[] = {
        {"connect4", BPF_CGROUP_INET4_CONNECT}, {"connect6", BPF_CGROUP_INET6_CONNECT},
        {"sendmsg4", BPF_CGROUP_UDP4_SENDMSG},  {"sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
        {"recvmsg4", BPF_CGROUP_UDP4_RECVMSG},  {"recvmsg6", BPF_CGROUP_UDP6_RECVMSG},
    };
    for (const auto& [name, type] : kTypes)
        if (name == attach_point)
            return type;
    throw Error("unknown cgroup sock_addr attach point " + std::string(attach_point) + " (update datapath/loader.cpp)");
}

// Service reroute: every sock_addr program on the same cgroup as sockops.
void ensureSockAddr(const std::string& pin_root, const std::string& cgroup_path,
                    const std::map<std::string, PinnedProgram, std::less<>>& programs, const Logger& log)
{
    for (const auto& shipped : kShippedPrograms) {
        if (shipped.hook != ProgramHook::SockAddr)
            continue;
        ensureCgroupLink(pins::sockAddrLink(pin_root, shipped.tracepoint), "cgroup/" + std::string(shipped.tracepoint),
                         cgroup_path, programFor(programs, shipped.name), sockAddrAttachType(shipped.tracepoint), log);
    }
}

// ---- tp_btf -------------------------------------------------------------

void ensureTracepoints(const std::string& pin_root, bool wanted,
                       const std::map<std::string, PinnedProgram, std::less<>>& programs, const Logger& log)
{
    for (const auto& shipped : kShippedPrograms) {
        if (shipped.hook != ProgramHook::Tracepoint)
            continue;
        const std::string tracepoint(shipped.tracepoint);
        const std::string path = pins::tracepointLink(pin_root, tracepoint);
        const std::string what = "tp_btf link " + tracepoint;
        if (!wanted) {
            if (exists(path))
                removeLinkPin(path, what, nullptr, log);
            continue;
        }
        const PinnedProgram& program = programFor(programs, shipped.name);
        if (exists(path)) {
            UniqueFd link = openPin(path, what);
            if (linkInfo(link.get(), what).prog_id == program.id) {
                log.info("tp_btf " + tracepoint + ": keeping attached program id " + std::to_string(program.id));
                continue;
            }
        }
        // Tracepoint links cannot swap programs: the new link is attached
        // and pinned over the old one, whose last reference then goes. For
        // that instant both run (an event may be counted twice, none lost).
        const int fd = bpf_raw_tracepoint_open(nullptr, program.fd.get());
        if (fd < 0)
            throwErrno("attach tp_btf program " + std::string(shipped.name) + " to " + tracepoint, errno);
        UniqueFd link(fd);
        pinReplacing(link.get(), path, what);
        log.info("tp_btf " + tracepoint + ": attached program id " + std::to_string(program.id));
    }
}

// The HTB tree shhim installs for a policy's link capacity (class_qdisc.h);
// a root qdisc that is not shhim's stays.
void removeShhimQdisc(const std::string& ifname, std::uint32_t ifindex, DetachReport& report)
{
    try {
        if (removeClassQdisc(ifindex))
            report.removed.push_back("HTB priority qdisc on " + ifname);
    } catch (const Error& e) {
        report.problems.push_back("HTB priority qdisc on " + ifname + ": " + e.what());
    }
}

}  // namespace

Datapath::Datapath(std::string pin_root, std::string cgroup_path, Maps maps, std::uint64_t build_id, bool reused)
    : pin_root_(std::move(pin_root)),
      cgroup_path_(std::move(cgroup_path)),
      maps_(std::move(maps)),
      build_id_(build_id),
      reused_(reused)
{
}

Datapath Datapath::start(const LoadOptions& options)
{
    const Logger log(options.log);
    const std::string& root = options.pin_root;
    requireBpfFs(root);

    // Validate every interface before changing anything, so that a typo in
    // the second --iface does not leave the first one half set up.
    std::vector<std::pair<std::string, int>> interfaces;
    std::set<std::string> requested;
    for (const auto& ifname : options.interfaces) {
        if (!requested.insert(ifname).second)
            continue;
        const int ifindex = interfaceIndex(ifname);
        interfaces.emplace_back(ifname, ifindex);
        if (!pinnedXdpLinkIsOn(root, ifname, ifindex))
            refuseForeignXdp(ifname, ifindex);
    }

    if (!options.cgroup_path.empty() && !isCgroup2Directory(options.cgroup_path))
        throw Error("cgroup " + options.cgroup_path + " is not a cgroup v2 directory (sockops needs cgroup v2; "
                    "`shhimd --preflight` shows where it is mounted)",
                    ENOTDIR);
    const std::uint32_t flow_entries = chooseFlowEntries(options);
    const std::uint64_t ours = shippedBuildId();
    shhim_config pinned = {};
    const bool have_config = readPinnedConfig(root, pinned);
    const bool reuse = have_config && pinned.build_id == ours && allProgramsPinned(root);

    if (!reuse) {
        if (have_config)
            log.info("pinned datapath under " + root + " is build " + formatBuildId(pinned.build_id) +
                     ", this is build " + formatBuildId(ours) +
                     ": loading the new programs; attachments switch over in place and the pinned maps (with "
                     "every count) are kept");
        else
            log.info("loading BPF programs of build " + formatBuildId(ours) + ", pinning under " + root +
                     " (flow table: " + std::to_string(flow_entries) + " entries)");
        loadAndPinShippedObjects(root, flow_entries, options.log);
    }

    Maps maps = Maps::openPinned(root);
    if (reuse) {
        std::uint64_t flows = 0;
        std::uint64_t backends = 0;
        for (const MapFill& fill : maps.fills())
            (fill.name == "shhim_flows" ? flows : backends) = fill.entries;
        log.info("reusing pinned datapath of build " + formatBuildId(ours) + " (" + std::to_string(flows) +
                 " flows, " + std::to_string(backends) + " backends)");
    }

    shhim_config config = maps.config();
    // build_id 0 marks a switch-over in progress: if this run dies before
    // every attachment is in place, the next one loads again.
    if (!reuse)
        config.build_id = 0;
    if (have_config && config.syn_timeout_ns != options.syn_timeout_ns)
        log.info("SYN timeout: " + std::to_string(config.syn_timeout_ns) + " ns -> " +
                 std::to_string(options.syn_timeout_ns) + " ns (0 = kernel default 1 s)");
    config.syn_timeout_ns = options.syn_timeout_ns;
    maps.writeConfig(config);

    const auto programs = openPinnedPrograms(root);
    for (const auto& [ifname, ifindex] : interfaces) {
        ensureXdp(root, ifname, ifindex, programFor(programs, "shhim_xdp_ingress"), options.xdp_mode, log);
        ensureTcEgress(ifname, ifindex, programFor(programs, "shhim_tc_egress"), log);
    }
    removeUnrequestedXdp(root, requested, log);
    ensureSockops(root, options.cgroup_path, programFor(programs, "shhim_sockops"), log);
    ensureSockAddr(root, options.cgroup_path, programs, log);
    ensureTracepoints(root, options.tracepoints, programs, log);

    config.build_id = ours;
    maps.writeConfig(config);
    return Datapath(root, options.cgroup_path, std::move(maps), ours, reuse);
}

std::vector<Attachment> Datapath::attachments() const
{
    // Kernel program names stop at 15 characters; the pins under progs/
    // carry the full function names, so ids are mapped back through them.
    std::map<std::uint32_t, std::string> pinned_names;
    std::error_code ec;
    const std::string progs = pins::join(pin_root_, pins::kProgsDir);
    for (const auto& entry : fs::directory_iterator(progs, ec)) {
        const int raw = bpf_obj_get(entry.path().c_str());
        if (raw < 0)
            continue;
        const UniqueFd prog(raw);
        bpf_prog_info info = {};
        __u32 length = sizeof(info);
        if (bpf_obj_get_info_by_fd(prog.get(), &info, &length) == 0)
            pinned_names[info.id] = entry.path().filename().string();
    }
    const auto nameOf = [&](std::uint32_t id) {
        const auto it = pinned_names.find(id);
        return it != pinned_names.end() ? it->second : programNameById(id);
    };

    std::vector<std::string> names;
    const std::string dir = pins::join(pin_root_, pins::kLinksDir);
    for (const auto& entry : fs::directory_iterator(dir, ec))
        names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());

    // Packet hooks first (per interface: xdp, then tc-egress), then the
    // socket hook, then tracepoints.
    std::vector<Attachment> packet, socket, tracepoints;
    for (const std::string& name : names) {
        const std::string path = pins::join(dir, name);
        const int raw = bpf_obj_get(path.c_str());
        if (raw < 0)
            continue;  // unpinned meanwhile (e.g. --detach)
        const UniqueFd link(raw);
        const bpf_link_info info = linkInfo(link.get(), "link " + path);
        if (name.rfind(pins::kXdpLinkPrefix, 0) == 0) {
            const std::string ifname = name.substr(pins::kXdpLinkPrefix.size());
            const int ifindex = static_cast<int>(info.xdp.ifindex);
            packet.push_back({"xdp", ifname, nameOf(info.prog_id), info.prog_id,
                              ifindex ? xdpModeOf(ifindex, info.prog_id) : "detached (interface gone)"});
            if (ifindex != 0) {
                if (const std::uint32_t tc = queryTcEgress(ifindex, ifname))
                    packet.push_back({"tc-egress", ifname, nameOf(tc), tc, ""});
            }
        } else if (name == pins::kSockopsLink) {
            socket.push_back({"sockops",
                              cgroup_path_.empty() ? "cgroup id " + std::to_string(info.cgroup.cgroup_id)
                                                   : cgroup_path_,
                              nameOf(info.prog_id), info.prog_id, ""});
        } else if (name.size() > pins::kCgroupLinkSuffix.size() &&
                   name.compare(name.size() - pins::kCgroupLinkSuffix.size(), std::string::npos,
                                pins::kCgroupLinkSuffix) == 0) {
            // Service reroute hooks: links/connect4@cgroup -> "cgroup/connect4".
            socket.push_back({"cgroup/" + name.substr(0, name.size() - pins::kCgroupLinkSuffix.size()),
                              cgroup_path_.empty() ? "cgroup id " + std::to_string(info.cgroup.cgroup_id)
                                                   : cgroup_path_,
                              nameOf(info.prog_id), info.prog_id, ""});
        } else if (name.rfind(pins::kTracepointLinkPrefix, 0) == 0) {
            tracepoints.push_back({"tp_btf", name.substr(pins::kTracepointLinkPrefix.size()), nameOf(info.prog_id),
                                   info.prog_id, ""});
        }
    }
    std::vector<Attachment> out = std::move(packet);
    out.insert(out.end(), socket.begin(), socket.end());
    out.insert(out.end(), tracepoints.begin(), tracepoints.end());
    return out;
}

DetachReport detach(const std::string& pin_root, const LogFn& log_fn)
{
    const Logger log(log_fn);
    DetachReport report;
    if (!exists(pin_root)) {
        log.info("nothing pinned at " + pin_root + ": nothing to remove");
        return report;
    }
    // Everything below deletes files: make sure they are BPF pins.
    if (!isOnBpfFs(pin_root))
        throw Error("refusing to detach: " + pin_root + " is not on a BPF filesystem");

    const std::string links = pins::join(pin_root, pins::kLinksDir);
    if (exists(links)) {
        std::vector<fs::path> entries;
        for (const auto& entry : fs::directory_iterator(links))
            entries.push_back(entry.path());
        std::sort(entries.begin(), entries.end());
        for (const fs::path& path : entries) {
            const std::string name = path.filename().string();
            std::string what = "link " + name;
            if (name.rfind(pins::kXdpLinkPrefix, 0) == 0) {
                const std::string ifname = name.substr(pins::kXdpLinkPrefix.size());
                what = "XDP link on " + ifname;
                const int raw = bpf_obj_get(path.c_str());
                if (raw >= 0) {
                    UniqueFd link(raw);
                    const bpf_link_info info = linkInfo(link.get(), what);
                    if (info.type == BPF_LINK_TYPE_XDP) {
                        removeTcEgress(ifname, static_cast<int>(info.xdp.ifindex), report, log);
                        removeShhimQdisc(ifname, info.xdp.ifindex, report);
                    }
                }
            } else if (name == pins::kSockopsLink) {
                what = "sockops link";
            } else if (name.rfind(pins::kTracepointLinkPrefix, 0) == 0) {
                what = "tp_btf link " + name.substr(pins::kTracepointLinkPrefix.size());
            }
            removeLinkPin(path.string(), what, &report, log);
        }
    }

    const std::string progs = pins::join(pin_root, pins::kProgsDir);
    if (exists(progs)) {
        for (const auto& entry : fs::directory_iterator(progs)) {
            const std::string what = "program " + entry.path().filename().string();
            if (::unlink(entry.path().c_str()) == 0) {
                report.removed.push_back(what + " (" + entry.path().string() + ")");
                log.info("removed " + what);
            } else {
                report.problems.push_back("unpin " + what + ": " + errnoText(errno));
            }
        }
    }

    // Leftovers of a run that died between staging and renaming a pin.
    const std::string staging = pins::join(pin_root, pins::kStagingDir);
    if (exists(staging)) {
        for (const auto& entry : fs::directory_iterator(staging)) {
            const int raw = bpf_obj_get(entry.path().c_str());
            if (raw >= 0) {
                UniqueFd object(raw);
                bpf_link_detach(object.get());  // harmless on programs: EINVAL
            }
            if (::unlink(entry.path().c_str()) == 0)
                report.removed.push_back("staged pin " + entry.path().string());
            else
                report.problems.push_back("unpin " + entry.path().string() + ": " + errnoText(errno));
        }
    }

    for (const std::string_view name : pins::kMapNames) {
        const std::string path = pins::map(pin_root, name);
        if (!exists(path))
            continue;
        if (::unlink(path.c_str()) == 0) {
            report.removed.push_back("map " + std::string(name) + " (" + path + ")");
            log.info("removed map " + std::string(name));
        } else {
            report.problems.push_back("unpin map " + std::string(name) + ": " + errnoText(errno));
        }
    }

    for (const std::string& dir : {links, progs, staging, pin_root}) {
        if (!exists(dir) || ::rmdir(dir.c_str()) == 0)
            continue;
        const int error = errno;
        std::string left;
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir, ec))
            left += " " + entry.path().filename().string();
        report.problems.push_back("remove directory " + dir + ": " + errnoText(error) +
                                  (left.empty() ? "" : " (left:" + left + ")"));
    }
    if (!exists(pin_root))
        report.removed.push_back("pin root " + pin_root);
    return report;
}

}  // namespace shhim::datapath
