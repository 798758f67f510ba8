// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "frame_classifier.hpp"

#include "shhim_abi.h"

namespace shhim::bpftest {
namespace {

constexpr std::size_t kMaxVlanTags = 2;
constexpr std::size_t kMaxIpv6Ext = 6;

// Reads big-endian fields; the caller has checked the bounds.
struct View {
  std::span<const std::uint8_t> b;
  std::uint8_t u8(std::size_t at) const { return b[at]; }
  std::uint16_t u16(std::size_t at) const { return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]); }
};

bool is_ipv6_ext(std::uint8_t nh) { return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60; }

enum class ExtWalk { Ok, Trunc, TooDeep, NonFirstFragment };

// Walks extension headers from start to the transport header; [start, end) is the payload.
ExtWalk walk_ipv6_ext(const View& v, std::size_t start, std::size_t end, std::uint8_t first_nh,
                      std::size_t& l4, std::uint8_t& proto, bool& more_fragments,
                      std::vector<std::size_t>& seen) {
  std::size_t at = start;
  std::uint8_t nh = first_nh;
  for (std::size_t hops = 0; hops < kMaxIpv6Ext && is_ipv6_ext(nh); ++hops) {
    if (end < at + 8) return ExtWalk::Trunc;
    seen.push_back(at);
    std::size_t len;
    switch (nh) {
      case 44: {
        const std::uint16_t field = v.u16(at + 2);
        if ((field >> 3) != 0) return ExtWalk::NonFirstFragment;
        more_fragments = (field & 1) != 0;
        len = 8;
        break;
      }
      case 51: len = (static_cast<std::size_t>(v.u8(at + 1)) + 2) * 4; break;
      default: len = (static_cast<std::size_t>(v.u8(at + 1)) + 1) * 8; break;
    }
    if (end < at + len) return ExtWalk::Trunc;
    nh = v.u8(at);
    at += len;
  }
  if (is_ipv6_ext(nh)) return ExtWalk::TooDeep;
  l4 = at;
  proto = nh;
  return ExtWalk::Ok;
}

std::uint32_t check_transport(const View& v, std::size_t l4, std::size_t l4_len, std::uint8_t proto,
                              bool more_fragments) {
  if (proto == 6) {
    if (l4_len < 20) return SHHIM_CTR_PERR_TCP_TRUNC;
    const std::size_t doff = static_cast<std::size_t>(v.u8(l4 + 12) >> 4) * 4;
    if (doff < 20 || doff > l4_len) return SHHIM_CTR_PERR_TCP_BAD_DOFF;
    return 0;
  }
  if (l4_len < 8) return SHHIM_CTR_PERR_UDP_TRUNC;
  const std::size_t udp_len = v.u16(l4 + 4);
  if (udp_len < 8) return SHHIM_CTR_PERR_UDP_BAD_LEN;
  if (udp_len > l4_len && !more_fragments) return SHHIM_CTR_PERR_UDP_BAD_LEN;
  return 0;
}

// The packet an ICMP error quotes, [at, at + avail).
std::uint32_t check_quoted(const View& v, int family, std::size_t at, std::size_t avail,
                           FrameLayout& layout) {
  layout.inner_l3 = at;
  std::size_t l4 = 0;
  std::uint8_t proto = 0;
  if (family == 4) {
    if (avail < 20) return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
    if ((v.u8(at) >> 4) != 4) return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
    const std::size_t ihl = static_cast<std::size_t>(v.u8(at) & 0x0f) * 4;
    if (ihl < 20 || ihl > avail) return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
    if ((v.u16(at + 6) & 0x1fff) != 0) return 0;  // non-first fragment: nothing to attribute
    proto = v.u8(at + 9);
    l4 = at + ihl;
  } else {
    if (avail < 40) return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
    if ((v.u8(at) >> 4) != 6) return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
    bool more = false;
    switch (walk_ipv6_ext(v, at + 40, at + avail, v.u8(at + 6), l4, proto, more, layout.ipv6_ext)) {
      case ExtWalk::Ok: break;
      case ExtWalk::NonFirstFragment: return 0;
      default: return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
    }
  }
  if (proto == 6 || proto == 17) {
    if (l4 + 8 > at + avail) return SHHIM_CTR_PERR_ICMP_INNER_TRUNC;
    layout.inner_l4 = l4;
  }
  return 0;
}

std::uint32_t check_l4(const View& v, int family, std::size_t l4, std::size_t l4_len, std::uint8_t proto,
                       bool more_fragments, FrameLayout& layout) {
  layout.l4 = l4;
  layout.l4_proto = proto;
  if (proto == 6 || proto == 17) return check_transport(v, l4, l4_len, proto, more_fragments);
  const std::uint8_t icmp = family == 4 ? 1 : 58;
  if (proto != icmp) return 0;
  if (l4_len < 8) return SHHIM_CTR_PERR_ICMP_TRUNC;
  const std::uint8_t type = v.u8(l4);
  const bool error = family == 4 ? (type == 3 || type == 11) : (type == 1 || type == 2 || type == 3);
  if (!error) return 0;
  return check_quoted(v, family, l4 + 8, l4_len - 8, layout);
}

std::uint32_t check_ipv4(const View& v, std::size_t l3, FrameLayout& layout) {
  const std::size_t avail = v.b.size() - l3;
  layout.l3 = l3;
  layout.family = 4;
  if (avail < 20) return SHHIM_CTR_PERR_IPV4_TRUNC;
  if ((v.u8(l3) >> 4) != 4) return SHHIM_CTR_PERR_IPV4_BAD_VERSION;
  const std::size_t ihl = static_cast<std::size_t>(v.u8(l3) & 0x0f) * 4;
  if (ihl < 20) return SHHIM_CTR_PERR_IPV4_BAD_IHL;
  if (avail < ihl) return SHHIM_CTR_PERR_IPV4_TRUNC;
  const std::size_t total = v.u16(l3 + 2);
  if (total < ihl) return SHHIM_CTR_PERR_IPV4_BAD_TOTLEN;
  if (total > avail) return SHHIM_CTR_PERR_IP_LEN_EXCEEDS_FRAME;
  const std::uint16_t frag = v.u16(l3 + 6);
  if ((frag & 0x1fff) != 0) return SHHIM_CTR_FRAGMENTS;
  return check_l4(v, 4, l3 + ihl, total - ihl, v.u8(l3 + 9), (frag & 0x2000) != 0, layout);
}

std::uint32_t check_ipv6(const View& v, std::size_t l3, FrameLayout& layout) {
  const std::size_t avail = v.b.size() - l3;
  layout.l3 = l3;
  layout.family = 6;
  if (avail < 40) return SHHIM_CTR_PERR_IPV6_TRUNC;
  if ((v.u8(l3) >> 4) != 6) return SHHIM_CTR_PERR_IPV6_BAD_VERSION;
  const std::size_t payload = v.u16(l3 + 4);
  if (40 + payload > avail) return SHHIM_CTR_PERR_IP_LEN_EXCEEDS_FRAME;
  const std::size_t end = l3 + 40 + payload;
  std::size_t l4 = 0;
  std::uint8_t proto = 0;
  bool more = false;
  switch (walk_ipv6_ext(v, l3 + 40, end, v.u8(l3 + 6), l4, proto, more, layout.ipv6_ext)) {
    case ExtWalk::Ok: break;
    case ExtWalk::Trunc: return SHHIM_CTR_PERR_IPV6_EXT_TRUNC;
    case ExtWalk::TooDeep: return SHHIM_CTR_PERR_IPV6_EXT_TOO_DEEP;
    case ExtWalk::NonFirstFragment: return SHHIM_CTR_FRAGMENTS;
  }
  return check_l4(v, 6, l4, end - l4, proto, more, layout);
}

}  // namespace

Classification classify_frame(std::span<const std::uint8_t> frame) {
  Classification c;
  const View v{frame};
  if (frame.size() < 14) {
    c.counter = SHHIM_CTR_PERR_ETH_TRUNC;
    return c;
  }
  std::size_t at = 12;
  std::uint16_t type = v.u16(at);
  at += 2;
  auto is_vlan = [](std::uint16_t t) { return t == 0x8100 || t == 0x88A8; };
  for (std::size_t tags = 0; tags < kMaxVlanTags && is_vlan(type); ++tags) {
    if (frame.size() < at + 4) {
      c.counter = SHHIM_CTR_PERR_VLAN_TRUNC;
      return c;
    }
    type = v.u16(at + 2);
    at += 4;
  }
  if (is_vlan(type)) c.counter = SHHIM_CTR_PERR_VLAN_TOO_DEEP;
  else if (type == 0x0800) c.counter = check_ipv4(v, at, c.layout);
  else if (type == 0x86DD) c.counter = check_ipv6(v, at, c.layout);
  else c.counter = SHHIM_CTR_NON_IP;
  return c;
}

}  // namespace shhim::bpftest
