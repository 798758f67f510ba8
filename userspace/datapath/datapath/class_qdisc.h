// The queueing discipline that honours the class marks (issue 3 item 5):
// on an interface whose policy names a link capacity, shhim installs an HTB
// tree whose leaf classes are the skb->priority values TC egress writes
// (SHHIM_CLASS_SKB_PRIORITY: SHHIM_QDISC_MAJOR:<class id + 1>), so HTB
// sorts packets by class without any filter. Written over rtnetlink by hand
// (no libnl, no tc binary).
//
//   root qdisc   5348:      htb, default 5348:8
//   root class   5348:100   rate = ceil = capacity
//   leaves       5348:1..7  one per built-in class: a guaranteed share of
//                           the capacity, ceil = capacity (idle bandwidth is
//                           borrowed), HTB prio = class id (higher classes
//                           borrow first)
//                5348:8..   a policy's own classes (ids 7..15): 1% each,
//                           HTB prio 7 (the last to borrow)
//                5348:20    packets shhim did not classify (ARP, neighbour
//                           discovery, ICMP errors, unparsed): prio 0 and a
//                           small share, so the link's control traffic is
//                           never starved by congestion
// Each leaf keeps the kernel's default leaf qdisc (pfifo, txqueuelen deep).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shhim::datapath {

struct HtbClassPlan {
    std::uint32_t minor = 0;       // class id = SHHIM_QDISC_MAJOR:minor
    std::uint32_t parent_minor = 0;  // 0: the qdisc itself
    std::uint64_t rate_bps = 0;    // guaranteed
    std::uint64_t ceil_bps = 0;
    std::uint32_t prio = 0;        // HTB priority: lower borrows first
    std::string what;              // "life-critical", ..., "unclassified", "link"
};

// Minor of the leaf that takes unclassified packets (beyond every class's id + 1).
inline constexpr std::uint32_t kHtbUnclassifiedMinor = 0x20;
inline constexpr std::uint32_t kHtbRootClassMinor = 0x100;

// The tree for a link of capacity_bps and a policy with class_count classes
// (7 built-in ones and the policy's own; pure: what installClassQdisc writes).
std::vector<HtbClassPlan> classQdiscPlan(std::uint64_t capacity_bps, std::size_t class_count = 7);

// Installs the tree on ifindex, or updates it in place when it is already
// there (replacing any other root qdisc; leaves of classes the policy no
// longer has are removed). Throws Error naming the step and the kernel's own
// explanation (netlink extended ack).
void installClassQdisc(std::uint32_t ifindex, std::uint64_t capacity_bps, std::size_t class_count = 7);

// Removes the root qdisc of ifindex if it is shhim's; true if it was.
bool removeClassQdisc(std::uint32_t ifindex);

// What the root qdisc of ifindex is: its kind ("htb", "noqueue", ...) and handle.
struct RootQdisc {
    std::string kind;              // "" if the interface has none
    std::uint32_t handle = 0;
    bool ours() const;             // htb with handle SHHIM_QDISC_MAJOR:
};
RootQdisc rootQdisc(std::uint32_t ifindex);

// Counters of the HTB classes on ifindex (every class, shhim's or not).
struct QdiscClassStats {
    std::uint32_t handle = 0;      // major:minor
    std::uint32_t parent = 0;
    std::string kind;
    std::uint64_t bytes = 0;
    std::uint64_t packets = 0;
    std::uint32_t drops = 0;
    std::uint32_t backlog_bytes = 0;
    std::uint32_t queue_packets = 0;
};
std::vector<QdiscClassStats> qdiscClassStats(std::uint32_t ifindex);

}  // namespace shhim::datapath
