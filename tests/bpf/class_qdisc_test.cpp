// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// The HTB tree shhim installs over rtnetlink (datapath/class_qdisc.h): made
// on a veth pair in a private network namespace of a forked child, checked
// through netlink and through `tc`, fed packets whose skb->priority is a
// class mark, and removed again. Needs root.
#include <doctest/doctest.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "datapath/class_qdisc.h"
#include "datapath/error.h"
#include "shhim_abi.h"

namespace dp = shhim::datapath;

namespace {

// Runs body in a forked child inside a fresh network namespace; the child's
// problems come back as text ("" = all fine). The namespace dies with the child.
std::string in_private_netns(const std::function<std::string()>& body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string problems;
    try {
      if (::unshare(CLONE_NEWNET) != 0) throw std::runtime_error(std::string("unshare: ") + std::strerror(errno));
      problems = body();
    } catch (const std::exception& e) {
      problems = std::string("exception: ") + e.what();
    }
    const ssize_t ignored = ::write(fds[1], problems.data(), problems.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out += " (child did not exit cleanly)";
  return out;
}

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

std::string capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof(buf), p)) out += buf;
    ::pclose(p);
  }
  return out;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("class qdisc plan: one leaf per class at minor class+1, an unclassified leaf, shares within the link") {
  const auto plan = dp::classQdiscPlan(100'000'000);
  REQUIRE(plan.size() == 9);
  CHECK(plan[0].minor == dp::kHtbRootClassMinor);
  CHECK(plan[0].rate_bps == 100'000'000);
  std::uint64_t sum = 0;
  for (std::size_t i = 1; i < plan.size(); ++i) {
    CHECK(plan[i].parent_minor == dp::kHtbRootClassMinor);
    CHECK(plan[i].ceil_bps == 100'000'000);
    sum += plan[i].rate_bps;
  }
  CHECK(sum <= 100'000'000);
  for (std::uint32_t cls = 0; cls < SHHIM_CLASS_BUILTINS; ++cls) {
    INFO("class ", cls);
    // The leaf a marked packet lands in is the skb->priority TC egress writes.
    CHECK(((SHHIM_QDISC_MAJOR << 16) | plan[cls + 1].minor) == SHHIM_CLASS_SKB_PRIORITY(cls));
    CHECK(plan[cls + 1].prio == cls);
  }
  CHECK(plan[8].minor == dp::kHtbUnclassifiedMinor);
  CHECK(plan[8].prio == 0);
  // A policy's own classes (ids 7..): leaves 8.., the lowest HTB prio, 1% each.
  const auto more = dp::classQdiscPlan(100'000'000, 9);
  REQUIRE(more.size() == 11);
  CHECK(((SHHIM_QDISC_MAJOR << 16) | more[9].minor) == SHHIM_CLASS_SKB_PRIORITY(8));
  CHECK(more[9].prio == 7);
  CHECK(more[9].rate_bps == 1'000'000);
  CHECK(more[10].minor == dp::kHtbUnclassifiedMinor);
}

TEST_CASE("class qdisc: installed by rtnetlink, honours skb->priority, updated in place, removed") {
  const std::string problems = in_private_netns([]() -> std::string {
    std::string p;
    auto expect = [&p](bool ok, const std::string& what) {
      if (!ok) p += what + "; ";
    };
    if (!sh("ip link add shq0 type veth peer name shq1") || !sh("ip link set shq0 up") || !sh("ip link set shq1 up") ||
        !sh("ip addr add 198.18.99.1/24 dev shq0"))
      return "could not set up the veth pair";
    const std::uint32_t ifindex = ::if_nametoindex("shq0");
    expect(!dp::rootQdisc(ifindex).ours(), "a fresh veth already had shhim's qdisc");

    dp::installClassQdisc(ifindex, 50'000'000);
    const dp::RootQdisc root = dp::rootQdisc(ifindex);
    expect(root.ours(), "root qdisc is " + root.kind + " after install");
    const std::string shown = capture("tc class show dev shq0");
    expect(count_of(shown, "class htb 5348:") == 9, "tc shows:\n" + shown);
    expect(shown.find("class htb 5348:1 parent 5348:100 prio 0 rate 17500Kbit ceil 50Mbit") != std::string::npos,
           "life-critical leaf not as planned:\n" + shown);

    // Packets leaving shq0 with a class mark as skb->priority land in that class's leaf;
    // unmarked ones in the unclassified leaf. 198.18.99.2 is shq1's (permanent) neighbour.
    // (sysfs shows the host's namespace: ask `ip` for shq1's MAC.)
    const std::string link = capture("ip -o link show shq1");
    const std::size_t at = link.find("link/ether ");
    if (at == std::string::npos) return p + "no MAC for shq1 in: " + link;
    const std::string mac = link.substr(at + 11, 17);
    if (!sh("ip neigh replace 198.18.99.2 lladdr " + mac + " dev shq0 nud permanent"))
      return p + "could not add the neighbour entry";
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    ::inet_pton(AF_INET, "198.18.99.2", &to.sin_addr);
    const char payload[100] = {};
    auto send_with_priority = [&](std::uint32_t prio, int n) {
      ::setsockopt(s, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio));
      for (int i = 0; i < n; ++i)
        ::sendto(s, payload, sizeof(payload), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
    };
    send_with_priority(SHHIM_CLASS_SKB_PRIORITY(SHHIM_CLASS_EMERGENCY), 7);
    send_with_priority(SHHIM_CLASS_SKB_PRIORITY(SHHIM_CLASS_BULK), 5);
    send_with_priority(0, 3);
    ::close(s);
    for (const auto& c : dp::qdiscClassStats(ifindex)) {
      const std::uint32_t minor = c.handle & 0xffff;
      if (minor == SHHIM_CLASS_EMERGENCY + 1) expect(c.packets == 7, "emergency leaf: " + std::to_string(c.packets));
      if (minor == SHHIM_CLASS_BULK + 1) expect(c.packets == 5, "bulk leaf: " + std::to_string(c.packets));
      if (minor == dp::kHtbUnclassifiedMinor) expect(c.packets >= 3, "unclassified leaf: " + std::to_string(c.packets));
      if (minor == SHHIM_CLASS_LIFE_CRITICAL + 1) expect(c.packets == 0, "life-critical leaf got packets");
    }

    // A new capacity changes the tree in place (same qdisc, counters kept).
    dp::installClassQdisc(ifindex, 20'000'000);
    const std::string updated = capture("tc class show dev shq0");
    expect(updated.find("class htb 5348:1 parent 5348:100 prio 0 rate 7Mbit ceil 20Mbit") != std::string::npos,
           "after the update tc shows:\n" + updated);
    for (const auto& c : dp::qdiscClassStats(ifindex))
      if ((c.handle & 0xffff) == SHHIM_CLASS_EMERGENCY + 1) expect(c.packets == 7, "update lost the counters");

    // A policy with two classes of its own gets two more leaves; back to the built-ins, they go.
    dp::installClassQdisc(ifindex, 20'000'000, 9);
    expect(count_of(capture("tc class show dev shq0"), "class htb 5348:") == 11, "no leaves for ids 7 and 8");
    dp::installClassQdisc(ifindex, 20'000'000, 7);
    expect(count_of(capture("tc class show dev shq0"), "class htb 5348:") == 9, "leaves of ids 7 and 8 stayed");

    // Errors name the interface and carry the kernel's reason.
    try {
      dp::installClassQdisc(999999, 10'000'000);
      p += "install on a missing interface succeeded; ";
    } catch (const dp::Error& e) {
      expect(std::string(e.what()).find("999999") != std::string::npos, std::string("error text: ") + e.what());
    }

    expect(dp::removeClassQdisc(ifindex), "remove said it was not ours");
    expect(!dp::rootQdisc(ifindex).ours(), "still ours after remove");
    expect(!dp::removeClassQdisc(ifindex), "second remove removed something");
    // Someone else's root qdisc is left alone.
    if (sh("tc qdisc add dev shq0 root handle 1: htb default 1")) {
      expect(!dp::removeClassQdisc(ifindex), "removed a foreign HTB");
      expect(dp::rootQdisc(ifindex).kind == "htb", "the foreign HTB is gone");
    }
    return p;
  });
  CHECK(problems == "");
}
