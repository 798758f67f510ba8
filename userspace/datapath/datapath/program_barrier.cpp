#include "datapath/program_barrier.h"

#include <bpf/bpf.h>

#include <cerrno>

#include "datapath/error.h"
#include "datapath/bpf_handles.h"

namespace shhim::datapath {

ProgramBarrier::ProgramBarrier(const std::string& name) : name_(name + "_sync")
{
    const std::string inner_name = name + "_inner";
    const int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, inner_name.c_str(), sizeof(__u32), sizeof(__u32), 1, nullptr);
    if (inner < 0)
        throwErrno("create map " + inner_name + " (used to wait for running BPF programs)", errno);
    inner_.reset(inner);
    auto outer_opts = libbpfOpts<bpf_map_create_opts>();
    outer_opts.inner_map_fd = static_cast<__u32>(inner);
    const int outer =
        bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, name_.c_str(), sizeof(__u32), sizeof(__u32), 1, &outer_opts);
    if (outer < 0)
        throwErrno("create map " + name_ + " (used to wait for running BPF programs)", errno);
    outer_.reset(outer);
}

void ProgramBarrier::wait() const
{
    const __u32 zero = 0;
    const __u32 inner = static_cast<__u32>(inner_.get());
    if (bpf_map_update_elem(outer_.get(), &zero, &inner, BPF_ANY) != 0)
        throwErrno("wait for running BPF programs (update of " + name_ + ")", errno);
}

}  // namespace shhim::datapath
