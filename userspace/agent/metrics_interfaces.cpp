#include "agent/metrics_interfaces.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/unique_fd.h"

namespace shhim::agent {
namespace {

std::runtime_error netlinkError(const char* step, int error)
{
    return std::runtime_error(std::string("interface counters: ") + step + ": " + std::strerror(error));
}

// One RTM_NEWLINK message: name and 64-bit stats if both are present.
void parseLink(const nlmsghdr* header, const std::vector<std::string>& wanted,
               std::vector<core::InterfaceMetrics>& out)
{
    const auto* info = static_cast<const ifinfomsg*>(NLMSG_DATA(header));
    int length = static_cast<int>(header->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(*info)));
    std::string name;
    const rtnl_link_stats64* stats = nullptr;
    for (const rtattr* attr = IFLA_RTA(info); RTA_OK(attr, length); attr = RTA_NEXT(attr, length)) {
        if (attr->rta_type == IFLA_IFNAME)
            name = std::string(static_cast<const char*>(RTA_DATA(attr)),
                               strnlen(static_cast<const char*>(RTA_DATA(attr)), RTA_PAYLOAD(attr)));
        else if (attr->rta_type == IFLA_STATS64 && RTA_PAYLOAD(attr) >= sizeof(rtnl_link_stats64))
            stats = static_cast<const rtnl_link_stats64*>(RTA_DATA(attr));
    }
    if (!stats || std::find(wanted.begin(), wanted.end(), name) == wanted.end())
        return;
    // The attribute payload is only 4-byte aligned: copy before reading.
    rtnl_link_stats64 copy;
    std::memcpy(&copy, stats, sizeof(copy));
    out.push_back({name, copy.rx_packets, copy.tx_packets, copy.rx_bytes, copy.tx_bytes});
}

}  // namespace

std::vector<core::InterfaceMetrics> readInterfaceCounters(const std::vector<std::string>& names)
{
    std::vector<core::InterfaceMetrics> out;
    if (names.empty())
        return out;
    shhim::UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd)
        throw netlinkError("open rtnetlink socket", errno);

    struct {
        nlmsghdr header;
        ifinfomsg info;
    } request{};
    request.header.nlmsg_len = sizeof(request);
    request.header.nlmsg_type = RTM_GETLINK;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.nlmsg_seq = 1;
    request.info.ifi_family = AF_UNSPEC;
    if (::send(fd.get(), &request, sizeof(request), 0) < 0)
        throw netlinkError("send RTM_GETLINK dump", errno);

    alignas(nlmsghdr) char buffer[32768];
    // A dump ends with NLMSG_DONE; bounded so a misbehaving socket cannot spin us.
    for (int reads = 0; reads < 4096; ++reads) {
        const ssize_t received = ::recv(fd.get(), buffer, sizeof(buffer), 0);
        if (received < 0) {
            if (errno == EINTR)
                continue;
            throw netlinkError("receive link dump", errno);
        }
        int length = static_cast<int>(received);
        for (auto* header = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(header, length);
             header = NLMSG_NEXT(header, length)) {
            if (header->nlmsg_type == NLMSG_DONE)
                return out;
            if (header->nlmsg_type == NLMSG_ERROR) {
                const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(header));
                throw netlinkError("link dump answered", -error->error);
            }
            if (header->nlmsg_type == RTM_NEWLINK)
                parseLink(header, names, out);
        }
    }
    throw std::runtime_error("interface counters: link dump did not end");
}

}  // namespace shhim::agent
