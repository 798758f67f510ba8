// RAII for the libbpf objects the loader holds: bpf_link, generated
// skeletons and ring_buffer. Include only where libbpf is used anyway.
#pragma once

#include <bpf/libbpf.h>

#include <memory>

namespace shhim::datapath {

// libbpf's versioned option structs: zeroed, with sz set (what
// LIBBPF_OPTS does in C, without its statement expressions).
template <typename Options>
Options libbpfOpts()
{
    Options options{};
    options.sz = sizeof(Options);
    return options;
}

struct BpfLinkDeleter {
    // Destroying a pinned link only drops this process's reference: the pin
    // keeps the attachment alive.
    void operator()(bpf_link* link) const noexcept { bpf_link__destroy(link); }
};
using BpfLinkPtr = std::unique_ptr<bpf_link, BpfLinkDeleter>;

// Every bpftool-generated C++ skeleton has a static destroy(Skel*).
struct SkeletonDeleter {
    template <typename Skeleton>
    void operator()(Skeleton* skeleton) const noexcept
    {
        Skeleton::destroy(skeleton);
    }
};
template <typename Skeleton>
using SkeletonPtr = std::unique_ptr<Skeleton, SkeletonDeleter>;

struct RingBufferDeleter {
    void operator()(ring_buffer* ring) const noexcept { ring_buffer__free(ring); }
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferDeleter>;

}  // namespace shhim::datapath
