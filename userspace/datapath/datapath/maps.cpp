#include "datapath/maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "datapath/bpf_handles.h"
#include "datapath/error.h"
#include "datapath/kernel_objects.h"
#include "datapath/pins.h"

namespace shhim::datapath {
namespace {

// Walks the map key by key. Used where batched lookups are not available
// (kernels before 5.6). An LRU may delete the key being walked, which makes
// get_next_key start over, so the walk is bounded by the capacity and
// duplicates are tolerated by the caller.
template <typename Key, typename Value, typename Visit>
void walkKeys(int fd, std::string_view name, std::uint32_t max_entries, Visit&& visit)
{
    Key key{};
    Key next{};
    const Key* previous = nullptr;
    for (std::uint64_t steps = 0; steps < std::uint64_t(max_entries) + 1; ++steps) {
        if (bpf_map_get_next_key(fd, previous, &next) != 0) {
            if (errno == ENOENT)
                return;
            throwErrno("iterate map " + std::string(name), errno);
        }
        Value value{};
        if (bpf_map_lookup_elem(fd, &next, &value) == 0)
            visit(next, value);
        else if (errno != ENOENT)
            throwErrno("look up entry of map " + std::string(name), errno);
        key = next;
        previous = &key;
    }
}

template <typename Key, typename Value, typename Visit>
void forEachEntry(int fd, std::string_view name, Visit&& visit)
{
    std::uint32_t chunk = 256;
    // Not zero-filled: the kernel writes `count` entries and only those are
    // read. (A backend entry is ~9.6 KB, so zeroing 256 of them cost 2.4 MB
    // of memset and page faults on every tick.)
    auto keys = std::make_unique_for_overwrite<Key[]>(chunk);
    auto values = std::make_unique_for_overwrite<Value[]>(chunk);
    // The batch cursor is opaque; for hash maps it is a bucket index (u32).
    alignas(8) unsigned char cursor_in[64] = {};
    alignas(8) unsigned char cursor_out[64] = {};
    bool first = true;
    const auto options = libbpfOpts<bpf_map_batch_opts>();

    for (;;) {
        __u32 count = chunk;
        const int rc = bpf_map_lookup_batch(fd, first ? nullptr : cursor_in, cursor_out, keys.get(), values.get(),
                                            &count, &options);
        const int error = rc < 0 ? errno : 0;
        if (error != 0 && error != ENOENT) {
            if (error == ENOSPC && chunk < (1u << 16)) {
                // One hash bucket holds more entries than the chunk.
                chunk *= 4;
                keys = std::make_unique_for_overwrite<Key[]>(chunk);
                values = std::make_unique_for_overwrite<Value[]>(chunk);
                continue;
            }
            if (first && (error == EINVAL || error == ENOTSUP || error == EOPNOTSUPP)) {
                walkKeys<Key, Value>(fd, name, mapInfo(fd, name).max_entries, visit);
                return;
            }
            throwErrno("read map " + std::string(name) + " (batched lookup)", error);
        }
        for (__u32 i = 0; i < count; ++i)
            visit(keys[i], values[i]);
        if (error == ENOENT)
            return;
        std::memcpy(cursor_in, cursor_out, sizeof(cursor_in));
        first = false;
    }
}

}  // namespace

Maps Maps::openPinned(const std::string& pin_root)
{
    Maps maps;
    maps.flows_ = openPinnedMap(pin_root, "shhim_flows");
    maps.backends_ = openPinnedMap(pin_root, "shhim_backends");
    maps.counters_ = openPinnedMap(pin_root, "shhim_counters");
    maps.events_ = openPinnedMap(pin_root, "shhim_events");
    maps.config_ = openPinnedMap(pin_root, "shhim_config");
    checkLayout(maps.flows_.get(), "shhim_flows", sizeof(shhim_flow_key), sizeof(shhim_flow));
    checkLayout(maps.backends_.get(), "shhim_backends", sizeof(shhim_endpoint), sizeof(shhim_backend));
    checkLayout(maps.counters_.get(), "shhim_counters", sizeof(__u32), sizeof(__u64));
    checkLayout(maps.config_.get(), "shhim_config", sizeof(__u32), sizeof(shhim_config));
    return maps;
}

std::vector<FlowRecord> Maps::flows() const
{
    std::vector<FlowRecord> out;
    forEachEntry<shhim_flow_key, shhim_flow>(flows_.get(), "shhim_flows",
                                             [&](const shhim_flow_key& k, const shhim_flow& v) {
                                                 out.push_back({k, v});
                                             });
    return out;
}

std::vector<BackendRecord> Maps::backends() const
{
    std::vector<BackendRecord> out;
    forEachEntry<shhim_endpoint, shhim_backend>(backends_.get(), "shhim_backends",
                                                [&](const shhim_endpoint& k, const shhim_backend& v) {
                                                    out.push_back({k, v});
                                                });
    return out;
}

Counters Maps::counters() const
{
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0)
        throwErrno("count possible CPUs (/sys/devices/system/cpu/possible)", cpus);
    // Per-CPU values are laid out one 8-byte slot per possible CPU.
    std::vector<__u64> per_cpu(static_cast<std::size_t>(cpus));
    Counters totals{};
    for (__u32 id = 0; id < SHHIM_CTR_MAX; ++id) {
        if (bpf_map_lookup_elem(counters_.get(), &id, per_cpu.data()) != 0)
            throwErrno("read counter " + std::to_string(id) + " of map shhim_counters", errno);
        for (const __u64 value : per_cpu)
            totals[id] += value;
    }
    return totals;
}

shhim_config Maps::config() const
{
    const __u32 key = 0;
    shhim_config config{};
    if (bpf_map_lookup_elem(config_.get(), &key, &config) != 0)
        throwErrno("read map shhim_config", errno);
    return config;
}

void Maps::writeConfig(const shhim_config& config) const
{
    const __u32 key = 0;
    if (bpf_map_update_elem(config_.get(), &key, &config, BPF_ANY) != 0)
        throwErrno("write map shhim_config", errno);
}

std::uint32_t Maps::flowCapacity() const { return mapInfo(flows_.get(), "shhim_flows").max_entries; }

std::vector<MapFill> Maps::fills() const
{
    std::uint64_t flow_count = 0;
    forEachEntry<shhim_flow_key, shhim_flow>(flows_.get(), "shhim_flows",
                                             [&](const shhim_flow_key&, const shhim_flow&) { ++flow_count; });
    std::uint64_t backend_count = 0;
    forEachEntry<shhim_endpoint, shhim_backend>(backends_.get(), "shhim_backends",
                                                [&](const shhim_endpoint&, const shhim_backend&) { ++backend_count; });
    return {
        {"shhim_flows", flow_count, mapInfo(flows_.get(), "shhim_flows").max_entries},
        {"shhim_backends", backend_count, mapInfo(backends_.get(), "shhim_backends").max_entries},
    };
}

bool readPinnedConfig(const std::string& pin_root, shhim_config& out)
{
    const std::string path = pins::map(pin_root, "shhim_config");
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return false;
    const int raw = bpf_obj_get(path.c_str());
    if (raw < 0)
        throwErrno("open pinned map shhim_config at " + path, errno);
    UniqueFd fd(raw);
    checkLayout(fd.get(), "shhim_config", sizeof(__u32), sizeof(shhim_config));
    const __u32 key = 0;
    if (bpf_map_lookup_elem(fd.get(), &key, &out) != 0)
        throwErrno("read pinned map shhim_config at " + path, errno);
    return true;
}

}  // namespace shhim::datapath
