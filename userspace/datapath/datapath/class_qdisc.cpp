#include "datapath/class_qdisc.h"

#include <linux/gen_stats.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/unique_fd.h"
#include "datapath/error.h"
#include "shhim_abi.h"

namespace shhim::datapath {
namespace {

constexpr std::uint32_t kMajor = SHHIM_QDISC_MAJOR << 16;
constexpr std::uint32_t kPschedShift = 6;   // HTB buffers are in 64 ns "ticks" (PSCHED_TICKS2NS)
constexpr std::uint64_t kMtuBytes = 1600;

// Guaranteed share of the link per built-in class, permille, highest class
// first, and of the unclassified leaf; with a policy's own classes (1% each)
// at most 1090. HTB serves every class within its guaranteed rate before any
// class borrows (and only then goes by prio), so the guarantees lean hard
// towards the top classes: a congested link then behaves close to strict
// priority, while idle capacity is still borrowed by everyone (ceil = capacity).
constexpr std::array<std::uint32_t, 7> kSharePermille = {350, 300, 120, 80, 50, 30, 20};
constexpr std::uint32_t kAddedSharePermille = 10;
constexpr std::uint32_t kUnclassifiedSharePermille = 50;
constexpr std::uint32_t kLowestHtbPrio = 7;  // TC_HTB_NUMPRIO - 1
constexpr std::array<const char*, 7> kLeafNames = {"life-critical", "emergency", "clinical-realtime", "clinical",
                                                   "imaging",       "administrative", "bulk"};

// A netlink request being built: header, fixed part, attributes.
class Request {
public:
    Request(std::uint16_t type, std::uint16_t flags)
    {
        nlmsghdr h{};
        h.nlmsg_type = type;
        h.nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST);
        append(&h, sizeof(h));
    }
    template <typename T>
    void fixed(const T& value)
    {
        append(&value, sizeof(value));
    }
    void attr(std::uint16_t type, const void* data, std::size_t len)
    {
        rtattr a{};
        a.rta_type = type;
        a.rta_len = static_cast<std::uint16_t>(RTA_LENGTH(len));
        append(&a, sizeof(a));
        append(data, len);
    }
    void attrString(std::uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
    std::size_t beginNested(std::uint16_t type)
    {
        const std::size_t at = bytes_.size();
        attr(type, nullptr, 0);
        return at;
    }
    void endNested(std::size_t at)
    {
        const auto len = static_cast<std::uint16_t>(bytes_.size() - at);
        std::memcpy(bytes_.data() + at + offsetof(rtattr, rta_len), &len, sizeof(len));
    }
    std::vector<std::uint8_t>& finish(std::uint32_t seq)
    {
        auto* h = reinterpret_cast<nlmsghdr*>(bytes_.data());
        h->nlmsg_len = static_cast<std::uint32_t>(bytes_.size());
        h->nlmsg_seq = seq;
        return bytes_;
    }

private:
    void append(const void* data, std::size_t len)
    {
        const auto* p = static_cast<const std::uint8_t*>(data);
        bytes_.insert(bytes_.end(), p, p + len);
        bytes_.resize(NLMSG_ALIGN(bytes_.size()), 0);
    }

    std::vector<std::uint8_t> bytes_;
};

class RouteSocket {
public:
    RouteSocket()
    {
        const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
            throwErrno("open rtnetlink socket", errno);
        fd_.reset(fd);
        const int one = 1;
        // Errors carry the kernel's explanation; acks do not echo the request.
        ::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        ::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
    }

    // Sends one request and waits for its ack; throws with the kernel's message.
    void call(Request& request, const std::string& what)
    {
        const std::uint32_t seq = ++seq_;
        send(request.finish(seq), what);
        for (;;) {
            auto n = receive(what);
            for (auto* h = reinterpret_cast<nlmsghdr*>(buffer_.data()); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
                if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
                    continue;
                const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
                if (err->error == 0)
                    return;
                throw Error(what + ": " + errnoText(-err->error) + extack(h), static_cast<int>(-err->error));
            }
        }
    }

    // Sends a dump request and hands every answer message to visit.
    template <typename Visit>
    void dump(Request& request, const std::string& what, Visit&& visit)
    {
        const std::uint32_t seq = ++seq_;
        send(request.finish(seq), what);
        for (;;) {
            auto n = receive(what);
            for (auto* h = reinterpret_cast<nlmsghdr*>(buffer_.data()); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
                if (h->nlmsg_seq != seq)
                    continue;
                if (h->nlmsg_type == NLMSG_DONE)
                    return;
                if (h->nlmsg_type == NLMSG_ERROR) {
                    const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
                    if (err->error == 0)
                        return;
                    throw Error(what + ": " + errnoText(-err->error) + extack(h), static_cast<int>(-err->error));
                }
                visit(h);
            }
        }
    }

private:
    void send(const std::vector<std::uint8_t>& bytes, const std::string& what)
    {
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        if (::sendto(fd_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0)
            throwErrno(what + ": send to rtnetlink", errno);
    }
    int receive(const std::string& what)
    {
        for (;;) {
            const ssize_t n = ::recv(fd_.get(), buffer_.data(), buffer_.size(), 0);
            if (n >= 0)
                return static_cast<int>(n);
            if (errno != EINTR)
                throwErrno(what + ": receive from rtnetlink", errno);
        }
    }
    // The extended ack's message, if the kernel gave one: " (reason)".
    static std::string extack(const nlmsghdr* h)
    {
        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
            return {};
        const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        // With NETLINK_CAP_ACK only the request's header is echoed back.
        const auto* base = reinterpret_cast<const std::uint8_t*>(err) + sizeof(*err);
        const std::size_t start = static_cast<std::size_t>(base - reinterpret_cast<const std::uint8_t*>(h));
        int left = static_cast<int>(h->nlmsg_len) - static_cast<int>(start);
        for (auto* a = reinterpret_cast<const rtattr*>(base); RTA_OK(a, left); a = RTA_NEXT(a, left)) {
            if (a->rta_type == NLMSGERR_ATTR_MSG)
                return std::string(" (") + static_cast<const char*>(RTA_DATA(a)) + ")";
        }
        return {};
    }

    UniqueFd fd_;
    std::uint32_t seq_ = 0;
    std::array<std::uint8_t, 32768> buffer_{};
};

// "5348:3", as tc prints handles.
std::string handleText(std::uint32_t minor)
{
    char text[16];
    std::snprintf(text, sizeof(text), "%x:%x", SHHIM_QDISC_MAJOR, minor);
    return text;
}

tcmsg tcHeader(std::uint32_t ifindex, std::uint32_t handle, std::uint32_t parent)
{
    tcmsg t{};
    t.tcm_family = AF_UNSPEC;
    t.tcm_ifindex = static_cast<int>(ifindex);
    t.tcm_handle = handle;
    t.tcm_parent = parent;
    return t;
}

tc_ratespec rateSpec(std::uint64_t bytes_per_second)
{
    tc_ratespec r{};
    // Link-layer aware: the kernel computes transmission times itself, no rate table needed.
    r.linklayer = TC_LINKLAYER_ETHERNET;
    r.rate = bytes_per_second >= std::numeric_limits<std::uint32_t>::max()
                 ? std::numeric_limits<std::uint32_t>::max()
                 : static_cast<std::uint32_t>(bytes_per_second);
    return r;
}

// Bucket depth in HTB ticks: one millisecond of the rate plus an MTU.
std::uint32_t bufferTicks(std::uint64_t bytes_per_second)
{
    const std::uint64_t burst = bytes_per_second / 1000 + kMtuBytes;
    const std::uint64_t ns = burst * 1000000000ull / bytes_per_second;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(ns >> kPschedShift, std::numeric_limits<std::uint32_t>::max()));
}

void putClass(RouteSocket& rtnl, std::uint32_t ifindex, const HtbClassPlan& c)
{
    const std::uint64_t rate = std::max<std::uint64_t>(c.rate_bps / 8, 1);
    const std::uint64_t ceil = std::max<std::uint64_t>(c.ceil_bps / 8, rate);
    Request req(RTM_NEWTCLASS, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
    req.fixed(tcHeader(ifindex, kMajor | c.minor, kMajor | c.parent_minor));
    req.attrString(TCA_KIND, "htb");
    const std::size_t options = req.beginNested(TCA_OPTIONS);
    tc_htb_opt opt{};
    opt.rate = rateSpec(rate);
    opt.ceil = rateSpec(ceil);
    opt.buffer = bufferTicks(rate);
    opt.cbuffer = bufferTicks(ceil);
    // At least one full frame per round; the kernel's rate/10 default warns outside 1000..200000.
    opt.quantum = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(rate / 10, kMtuBytes, 200000));
    opt.prio = c.prio;
    req.attr(TCA_HTB_PARMS, &opt, sizeof(opt));
    if (rate >= std::numeric_limits<std::uint32_t>::max())
        req.attr(TCA_HTB_RATE64, &rate, sizeof(rate));
    if (ceil >= std::numeric_limits<std::uint32_t>::max())
        req.attr(TCA_HTB_CEIL64, &ceil, sizeof(ceil));
    req.endNested(options);
    rtnl.call(req, "set HTB class " + handleText(c.minor) + " (" + c.what + ") on ifindex " + std::to_string(ifindex));
}

}  // namespace

bool RootQdisc::ours() const { return kind == "htb" && handle == kMajor; }

std::vector<HtbClassPlan> classQdiscPlan(std::uint64_t capacity_bps, std::size_t class_count)
{
    class_count = std::clamp<std::size_t>(class_count, kSharePermille.size(), SHHIM_CLASS_SLOTS);
    const std::uint64_t permille = capacity_bps / 1000;
    std::vector<HtbClassPlan> plan;
    plan.push_back({kHtbRootClassMinor, 0, capacity_bps, capacity_bps, 0, "link"});
    for (std::uint32_t id = 0; id < class_count; ++id) {
        const bool builtin = id < kSharePermille.size();
        // Minor = class id + 1: SHHIM_CLASS_SKB_PRIORITY, what TC egress writes.
        plan.push_back({id + 1, kHtbRootClassMinor, permille * (builtin ? kSharePermille[id] : kAddedSharePermille),
                        capacity_bps, builtin ? id : kLowestHtbPrio,
                        builtin ? kLeafNames[id] : "class " + std::to_string(id)});
    }
    plan.push_back({kHtbUnclassifiedMinor, kHtbRootClassMinor, permille * kUnclassifiedSharePermille, capacity_bps, 0,
                    "unclassified"});
    return plan;
}

RootQdisc rootQdisc(std::uint32_t ifindex)
{
    RouteSocket rtnl;
    Request req(RTM_GETQDISC, NLM_F_DUMP);
    req.fixed(tcHeader(ifindex, 0, 0));
    RootQdisc root;
    rtnl.dump(req, "list qdiscs", [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWQDISC)
            return;
        const auto* t = static_cast<const tcmsg*>(NLMSG_DATA(h));
        if (static_cast<std::uint32_t>(t->tcm_ifindex) != ifindex || t->tcm_parent != TC_H_ROOT)
            return;
        root.handle = t->tcm_handle;
        int left = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(tcmsg)));
        for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const std::uint8_t*>(t) + NLMSG_ALIGN(sizeof(tcmsg)));
             RTA_OK(a, left); a = RTA_NEXT(a, left)) {
            if (a->rta_type == TCA_KIND)
                root.kind = static_cast<const char*>(RTA_DATA(a));
        }
    });
    return root;
}

std::vector<QdiscClassStats> qdiscClassStats(std::uint32_t ifindex)
{
    RouteSocket rtnl;
    Request req(RTM_GETTCLASS, NLM_F_DUMP);
    req.fixed(tcHeader(ifindex, 0, 0));
    std::vector<QdiscClassStats> out;
    rtnl.dump(req, "list traffic classes of ifindex " + std::to_string(ifindex), [&](const nlmsghdr* h) {
        if (h->nlmsg_type != RTM_NEWTCLASS)
            return;
        const auto* t = static_cast<const tcmsg*>(NLMSG_DATA(h));
        if (static_cast<std::uint32_t>(t->tcm_ifindex) != ifindex)
            return;
        QdiscClassStats c;
        c.handle = t->tcm_handle;
        c.parent = t->tcm_parent;
        int left = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(tcmsg)));
        for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const std::uint8_t*>(t) + NLMSG_ALIGN(sizeof(tcmsg)));
             RTA_OK(a, left); a = RTA_NEXT(a, left)) {
            if (a->rta_type == TCA_KIND) {
                c.kind = static_cast<const char*>(RTA_DATA(a));
            } else if (a->rta_type == TCA_STATS2) {
                int inner = static_cast<int>(RTA_PAYLOAD(a));
                for (auto* s = static_cast<const rtattr*>(RTA_DATA(a)); RTA_OK(s, inner); s = RTA_NEXT(s, inner)) {
                    if (s->rta_type == TCA_STATS_BASIC && RTA_PAYLOAD(s) >= 12) {
                        // bytes (u64) then packets (u32); packed or padded depending on the kernel.
                        std::uint32_t packets = 0;
                        std::memcpy(&c.bytes, RTA_DATA(s), sizeof(c.bytes));
                        std::memcpy(&packets, static_cast<const std::uint8_t*>(RTA_DATA(s)) + 8, sizeof(packets));
                        c.packets = packets;
                    } else if (s->rta_type == TCA_STATS_PKT64 && RTA_PAYLOAD(s) >= sizeof(std::uint64_t)) {
                        std::memcpy(&c.packets, RTA_DATA(s), sizeof(c.packets));
                    } else if (s->rta_type == TCA_STATS_QUEUE && RTA_PAYLOAD(s) >= sizeof(gnet_stats_queue)) {
                        gnet_stats_queue queue{};
                        std::memcpy(&queue, RTA_DATA(s), sizeof(queue));
                        c.drops = queue.drops;
                        c.backlog_bytes = queue.backlog;
                        c.queue_packets = queue.qlen;
                    }
                }
            }
        }
        out.push_back(std::move(c));
    });
    return out;
}

void installClassQdisc(std::uint32_t ifindex, std::uint64_t capacity_bps, std::size_t class_count)
{
    if (capacity_bps < 8000)
        throw Error("HTB on ifindex " + std::to_string(ifindex) + ": capacity " + std::to_string(capacity_bps) +
                        " bit/s is too small",
                    EINVAL);
    RouteSocket rtnl;
    if (!rootQdisc(ifindex).ours()) {
        // Create, replacing whatever root qdisc the interface has.
        Request req(RTM_NEWQDISC, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
        req.fixed(tcHeader(ifindex, kMajor, TC_H_ROOT));
        req.attrString(TCA_KIND, "htb");
        const std::size_t options = req.beginNested(TCA_OPTIONS);
        tc_htb_glob glob{};
        glob.version = 3;  // TC_HTB_PROTOVER
        glob.rate2quantum = 10;
        glob.defcls = kHtbUnclassifiedMinor;
        req.attr(TCA_HTB_INIT, &glob, sizeof(glob));
        req.endNested(options);
        rtnl.call(req, "install HTB root qdisc " + handleText(0) + " on ifindex " + std::to_string(ifindex));
    }
    // Parent first; NLM_F_REPLACE makes each call "create or change".
    const std::vector<HtbClassPlan> plan = classQdiscPlan(capacity_bps, class_count);
    for (const HtbClassPlan& c : plan)
        putClass(rtnl, ifindex, c);
    // Leaves of classes an earlier policy had and this one has not.
    for (const QdiscClassStats& have : qdiscClassStats(ifindex)) {
        if ((have.handle >> 16) != SHHIM_QDISC_MAJOR)
            continue;
        const std::uint32_t minor = have.handle & 0xffff;
        if (std::any_of(plan.begin(), plan.end(), [minor](const HtbClassPlan& c) { return c.minor == minor; }))
            continue;
        Request req(RTM_DELTCLASS, NLM_F_ACK);
        req.fixed(tcHeader(ifindex, have.handle, kMajor | kHtbRootClassMinor));
        rtnl.call(req, "remove HTB class " + handleText(minor) + " on ifindex " + std::to_string(ifindex));
    }
}

bool removeClassQdisc(std::uint32_t ifindex)
{
    if (!rootQdisc(ifindex).ours())
        return false;
    RouteSocket rtnl;
    Request req(RTM_DELQDISC, NLM_F_ACK);
    req.fixed(tcHeader(ifindex, kMajor, TC_H_ROOT));
    rtnl.call(req, "remove HTB root qdisc on ifindex " + std::to_string(ifindex));
    return true;
}

}  // namespace shhim::datapath
