#include "datapath/policy_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "datapath/bpf_handles.h"
#include "datapath/error.h"
#include "datapath/kernel_objects.h"
#include "datapath/pins.h"

namespace shhim::datapath {
namespace {

constexpr std::uint32_t kZero = 0;
// Where the class maps are missing, the pins came from an older build.
constexpr std::string_view kOlderBuildHint =
    "loaded by a shhimd build without priority classes? restart shhimd to load this build";

std::uint64_t monotonicNs()
{
    timespec ts = {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string interfaceName(std::uint32_t ifindex)
{
    char name[IF_NAMESIZE] = {};
    return ::if_indextoname(ifindex, name) ? std::string(name) : std::string();
}

// Every key of a hash or LPM map (get_next_key walk; nothing else deletes
// entries of these maps meanwhile: the agent is their only writer).
template <typename Key>
std::vector<Key> allKeys(int fd, std::string_view name, std::size_t bound)
{
    std::vector<Key> keys;
    Key key{};
    Key next{};
    const Key* previous = nullptr;
    while (keys.size() <= bound) {
        if (bpf_map_get_next_key(fd, previous, &next) != 0) {
            if (errno == ENOENT)
                break;
            throwErrno("iterate map " + std::string(name), errno);
        }
        keys.push_back(next);
        key = next;
        previous = &key;
    }
    return keys;
}

std::vector<std::uint8_t> keyBytes(const void* key, std::size_t size)
{
    const auto* p = static_cast<const std::uint8_t*>(key);
    return std::vector<std::uint8_t>(p, p + size);
}

// The kernel form of ClassTables for one policy slot, built and checked
// completely before anything is written.
struct KernelTables {
    shhim_policy policy{};
    std::vector<std::pair<shhim_service_key, shhim_service_value>> services;
    std::vector<std::pair<shhim_rule_key, shhim_rule_set>> rules;
    struct Iface {
        std::uint32_t ifindex;
        bool remark;
        std::uint64_t capacity_bps;  // > 0: the agent installs its HTB tree there
    };
    std::vector<Iface> interfaces;
};

KernelTables toKernel(const core::ClassTables& t, std::uint32_t generation)
{
    const std::uint32_t slot = SHHIM_GEN_SLOT(generation);
    KernelTables k;
    auto fail = [](const std::string& what) { throw Error("policy not applied: " + what, EINVAL); };

    if (t.classes.size() < SHHIM_CLASS_BUILTINS || t.classes.size() > SHHIM_CLASS_SLOTS)
        fail(std::to_string(t.classes.size()) + " classes; the kernel has the 7 built-in ones and room for " +
             std::to_string(SHHIM_CLASS_SLOTS - SHHIM_CLASS_BUILTINS) + " more");
    const std::size_t classes = t.classes.size();
    if (t.default_class >= classes)
        fail("default class " + std::to_string(t.default_class) + " is not a class id");
    k.policy.generation = generation;
    k.policy.default_class = t.default_class;
    for (std::size_t c = 0; c < classes; ++c) {
        const core::ClassConfig& in = t.classes[c];
        shhim_class_cfg& out = k.policy.classes[c];
        const std::string where = "class " + t.nameOf(static_cast<std::uint8_t>(c)) + ": ";
        if (in.dscp > 63)
            fail(where + "DSCP " + std::to_string(in.dscp) + " is beyond 63");
        if (in.rate_permille > 1000)
            fail(where + "rate share " + std::to_string(in.rate_permille) + " permille is beyond 1000");
        if (in.burst_bytes > core::kMaxBurstBytes)
            fail(where + "burst of " + std::to_string(in.burst_bytes) + " bytes is beyond " +
                 std::to_string(core::kMaxBurstBytes));
        out.dscp = in.dscp;
        out.flags = SHHIM_CLASS_F_MARK;
        out.skb_priority = in.skb_priority;
        // The kernel never sheds life-critical and emergency; say the same here.
        out.shed_rank = c < SHHIM_CLASS_FIRST_SHEDDABLE ? 0 : in.shed_rank;
        out.rate_bps = in.rate_bps;
        out.rate_permille = in.rate_permille;
        out.burst_bytes = in.burst_bytes;
    }

    if (t.services.size() > core::kMaxServiceEndpoints)
        fail(std::to_string(t.services.size()) + " service endpoints, the kernel table holds " +
             std::to_string(core::kMaxServiceEndpoints));
    std::map<std::vector<std::uint8_t>, std::size_t> seen;
    for (const core::ServiceClass& s : t.services) {
        if (s.class_id >= classes)
            fail("service " + s.service + ": class " + std::to_string(s.class_id) + " is not a class id");
        if (s.endpoint.family != 4 && s.endpoint.family != 6)
            fail("service " + s.service + ": address family " + std::to_string(s.endpoint.family));
        shhim_service_key key{};
        key.policy_slot = slot;
        std::memcpy(key.server.addr, s.endpoint.address.data(), sizeof(key.server.addr));
        key.server.port = htons(s.endpoint.port);
        key.server.family = s.endpoint.family == 4 ? SHHIM_FAMILY_IPV4 : SHHIM_FAMILY_IPV6;
        key.server.proto = s.endpoint.protocol;
        const auto [it, fresh] = seen.emplace(keyBytes(&key, sizeof(key)), k.services.size());
        if (!fresh) {
            if (k.services[it->second].second.class_id != s.class_id)
                fail("service " + s.service + ": endpoint port " + std::to_string(s.endpoint.port) +
                     " is already in another class");
            continue;
        }
        k.services.push_back({key, shhim_service_value{s.class_id, s.service_index}});
    }

    for (const core::ClassRule& r : t.rules) {
        if (r.class_id >= classes)
            fail("rule " + r.name + ": class " + std::to_string(r.class_id) + " is not a class id");
        if (r.prefix_length > 128)
            fail("rule " + r.name + ": prefix length " + std::to_string(r.prefix_length) + " is beyond 128");
        if (r.port_lo > r.port_hi)
            fail("rule " + r.name + ": port range " + std::to_string(r.port_lo) + "-" + std::to_string(r.port_hi) +
                 " is empty");
    }
    const std::vector<core::RulePrefix> prefixes = core::rulePrefixes(t.rules);
    if (prefixes.size() > core::kMaxRulePrefixes)
        fail(std::to_string(prefixes.size()) + " distinct rule prefixes, the kernel table holds " +
             std::to_string(core::kMaxRulePrefixes));
    for (const core::RulePrefix& p : prefixes) {
        if (p.rules.size() > SHHIM_MAX_RULES_PER_PREFIX)
            fail(std::to_string(p.rules.size()) + " rules hold the addresses of rule " + t.rules[p.rules[0]].name +
                 "'s prefix; at most " + std::to_string(SHHIM_MAX_RULES_PER_PREFIX) + " may overlap");
        shhim_rule_key key{};
        key.prefixlen = SHHIM_RULE_SLOT_BITS + p.prefix_length;
        key.policy_slot = slot;
        std::memcpy(key.addr, p.prefix.data(), sizeof(key.addr));
        shhim_rule_set set{};
        set.count = static_cast<std::uint32_t>(p.rules.size());
        for (std::size_t i = 0; i < p.rules.size(); ++i) {
            const core::ClassRule& r = t.rules[p.rules[i]];
            set.rules[i] = shhim_rule{r.port_lo, r.port_hi, r.protocol, r.class_id,
                                      static_cast<std::uint16_t>(std::min<std::uint32_t>(r.rule_index, 0xffff))};
        }
        k.rules.push_back({key, set});
    }

    std::set<std::uint32_t> ifindexes;
    for (const core::InterfaceConfig& i : t.interfaces) {
        const unsigned ifindex = ::if_nametoindex(i.name.c_str());
        if (ifindex == 0)
            fail("interface " + i.name + ": " + errnoText(errno));
        if (ifindex >= SHHIM_MAX_IFINDEX)
            fail("interface " + i.name + " has ifindex " + std::to_string(ifindex) +
                 "; per-interface options need an ifindex below " + std::to_string(SHHIM_MAX_IFINDEX));
        if (!ifindexes.insert(ifindex).second)
            fail("interface " + i.name + " is named twice");
        k.interfaces.push_back({ifindex, i.remark_untrusted, i.capacity_bps});
    }
    return k;
}

// The kernel's maps themselves.
class KernelMapWriter final : public MapWriter {
public:
    int update(int fd, std::string_view, const void* key, const void* value) override
    {
        return bpf_map_update_elem(fd, key, value, BPF_ANY) == 0 ? 0 : errno;
    }
    int remove(int fd, std::string_view, const void* key) override
    {
        return bpf_map_delete_elem(fd, key) == 0 ? 0 : errno;
    }
};

}  // namespace

std::shared_ptr<MapWriter> kernelMapWriter() { return std::make_shared<KernelMapWriter>(); }

void PolicyMaps::setMapWriter(std::shared_ptr<MapWriter> writer)
{
    const std::lock_guard lock(*writer_);
    map_writer_ = writer ? std::move(writer) : kernelMapWriter();
}

std::uint32_t nextGeneration(std::uint32_t current)
{
    const std::uint32_t next = (current + 1) & SHHIM_GEN_MASK;
    // Wrapping to 0 would mean "no policy"; 2 keeps the slot alternating.
    return next == 0 ? 2 : next;
}

PolicyMaps PolicyMaps::openPinned(const std::string& pin_root)
{
    PolicyMaps m;
    m.state_ = openPinnedMap(pin_root, "shhim_policy_state", kOlderBuildHint);
    m.policies_ = openPinnedMap(pin_root, "shhim_policies", kOlderBuildHint);
    m.services_ = openPinnedMap(pin_root, "shhim_services", kOlderBuildHint);
    m.rules_ = openPinnedMap(pin_root, "shhim_rules", kOlderBuildHint);
    m.ifaces_ = openPinnedMap(pin_root, "shhim_ifaces", kOlderBuildHint);
    m.class_counters_ = openPinnedMap(pin_root, "shhim_class_counters", kOlderBuildHint);
    m.class_buckets_ = openPinnedMap(pin_root, "shhim_class_buckets", kOlderBuildHint);
    checkLayout(m.state_.get(), "shhim_policy_state", sizeof(__u32), sizeof(shhim_policy_state));
    checkLayout(m.policies_.get(), "shhim_policies", sizeof(__u32), sizeof(shhim_policy));
    checkLayout(m.services_.get(), "shhim_services", sizeof(shhim_service_key), sizeof(shhim_service_value));
    checkLayout(m.rules_.get(), "shhim_rules", sizeof(shhim_rule_key), sizeof(shhim_rule_set));
    checkLayout(m.ifaces_.get(), "shhim_ifaces", sizeof(__u32), sizeof(shhim_iface));
    checkLayout(m.class_counters_.get(), "shhim_class_counters", sizeof(__u32), sizeof(shhim_class_counter));
    checkLayout(m.class_buckets_.get(), "shhim_class_buckets", sizeof(__u32), sizeof(shhim_class_bucket));

    m.barrier_ = std::make_unique<ProgramBarrier>("shhim_rcu");

    m.ncpus_ = libbpf_num_possible_cpus();
    if (m.ncpus_ <= 0)
        throwErrno("count possible CPUs", m.ncpus_);
    return m;
}

void PolicyMaps::waitForPrograms() const { barrier_->wait(); }

shhim_policy_state PolicyMaps::readState() const
{
    shhim_policy_state state{};
    if (bpf_map_lookup_elem(state_.get(), &kZero, &state) != 0)
        throwErrno("read map shhim_policy_state", errno);
    return state;
}

void PolicyMaps::writeState(const shhim_policy_state& state) const
{
    if (const int error = map_writer_->update(state_.get(), "shhim_policy_state", &kZero, &state))
        throwErrno("write map shhim_policy_state", error);
}

std::vector<shhim_iface> PolicyMaps::readIfaces() const
{
    std::vector<shhim_iface> out(SHHIM_MAX_IFINDEX);
    std::vector<__u32> keys(SHHIM_MAX_IFINDEX);
    __u32 count = SHHIM_MAX_IFINDEX;
    __u32 cursor = 0;
    const auto options = libbpfOpts<bpf_map_batch_opts>();
    const int rc = bpf_map_lookup_batch(ifaces_.get(), nullptr, &cursor, keys.data(), out.data(), &count, &options);
    if ((rc == 0 || errno == ENOENT) && count == SHHIM_MAX_IFINDEX)
        return out;  // arrays return their entries in index order
    for (__u32 i = 0; i < SHHIM_MAX_IFINDEX; ++i) {
        if (bpf_map_lookup_elem(ifaces_.get(), &i, &out[i]) != 0)
            throwErrno("read map shhim_ifaces entry " + std::to_string(i), errno);
    }
    return out;
}

std::vector<InterfaceSlot> PolicyMaps::ensureInterfaceSlots(const std::vector<std::uint32_t>& ifindexes)
{
    const std::lock_guard lock(*writer_);
    return ensureInterfaceSlotsLocked(ifindexes);
}

std::vector<InterfaceSlot> PolicyMaps::ensureInterfaceSlotsLocked(const std::vector<std::uint32_t>& ifindexes)
{
    // Emptied after the writes, whether they all succeed or not: a reader
    // that refilled the cache meanwhile may hold the slots from before them.
    struct ForgetOnExit {
        const PolicyMaps& maps;
        ~ForgetOnExit() { maps.forgetSlottedInterfaces(); }
    } forget{*this};
    std::vector<shhim_iface> ifaces = readIfaces();
    std::array<bool, SHHIM_MAX_IF_SLOTS> used{};
    used[0] = true;  // the shared row
    std::set<std::uint32_t> wanted(ifindexes.begin(), ifindexes.end());

    for (std::uint32_t i = 1; i < SHHIM_MAX_IFINDEX; ++i) {
        shhim_iface& e = ifaces[i];
        if (e.slot == 0)
            continue;
        if (!wanted.count(i) && interfaceName(i).empty()) {
            // The interface is gone: its slot goes back to the pool.
            e = shhim_iface{};
            if (const int error = map_writer_->update(ifaces_.get(), "shhim_ifaces", &i, &e))
                throwErrno("release slot of vanished ifindex " + std::to_string(i) + " in shhim_ifaces", error);
            continue;
        }
        if (e.slot < SHHIM_MAX_IF_SLOTS)
            used[e.slot] = true;
    }

    std::vector<InterfaceSlot> out;
    for (const std::uint32_t ifindex : wanted) {
        if (ifindex == 0 || ifindex >= SHHIM_MAX_IFINDEX) {
            out.push_back({ifindex, 0});
            continue;
        }
        shhim_iface& e = ifaces[ifindex];
        if (e.slot == 0) {
            const auto free = std::find(used.begin(), used.end(), false);
            if (free == used.end()) {
                out.push_back({ifindex, 0});
                continue;
            }
            *free = true;
            e.slot = static_cast<std::uint16_t>(free - used.begin());
            e.ifindex = ifindex;
            // A slot starts from zero: counters and buckets of an earlier owner go.
            std::vector<shhim_class_counter> zeros(static_cast<std::size_t>(ncpus_));
            for (std::uint32_t dir = 0; dir < SHHIM_CLASS_DIRS; ++dir) {
                for (std::uint32_t c = 0; c < SHHIM_CLASS_SLOTS; ++c) {
                    const __u32 idx = shhim_class_counter_index(e.slot, dir, c);
                    if (const int error = map_writer_->update(class_counters_.get(), "shhim_class_counters", &idx, zeros.data()))
                        throwErrno("reset shhim_class_counters entry " + std::to_string(idx), error);
                }
            }
            const shhim_class_bucket empty{};
            for (std::uint32_t c = 0; c < SHHIM_CLASS_SLOTS; ++c) {
                const __u32 idx = e.slot * SHHIM_CLASS_SLOTS + c;
                if (const int error = map_writer_->update(class_buckets_.get(), "shhim_class_buckets", &idx, &empty))
                    throwErrno("reset shhim_class_buckets entry " + std::to_string(idx), error);
            }
            if (const int error = map_writer_->update(ifaces_.get(), "shhim_ifaces", &ifindex, &e))
                throwErrno("write shhim_ifaces entry " + std::to_string(ifindex), error);
        }
        out.push_back({ifindex, e.slot});
    }
    return out;
}

std::uint32_t PolicyMaps::stage(const core::ClassTables& tables)
{
    const std::lock_guard lock(*writer_);
    return stageLocked(tables);
}

void PolicyMaps::publish(std::uint32_t generation)
{
    const std::lock_guard lock(*writer_);
    publishLocked(generation);
}

std::uint32_t PolicyMaps::apply(const core::ClassTables& tables)
{
    const std::lock_guard lock(*writer_);
    const std::uint32_t generation = stageLocked(tables);
    publishLocked(generation);
    return generation;
}

std::uint32_t PolicyMaps::stageLocked(const core::ClassTables& tables)
{
    const std::uint32_t generation = nextGeneration(readState().generation);
    const std::uint32_t slot = SHHIM_GEN_SLOT(generation);
    // Everything is built and checked first: a refused policy writes nothing.
    const KernelTables k = toKernel(tables, generation);

    std::vector<std::uint32_t> named;
    for (const auto& i : k.interfaces)
        named.push_back(i.ifindex);
    ensureInterfaceSlotsLocked(named);

    // No program may still read this slot (it may have seen generation - 2).
    waitForPrograms();

    if (const int error = map_writer_->update(policies_.get(), "shhim_policies", &slot, &k.policy))
        throwErrno("write map shhim_policies slot " + std::to_string(slot), error);

    // Services of this slot: stale ones out first (the table holds both slots), then the new ones.
    std::set<std::vector<std::uint8_t>> fresh_services;
    for (const auto& [key, value] : k.services)
        fresh_services.insert(keyBytes(&key, sizeof(key)));
    for (const shhim_service_key& key :
         allKeys<shhim_service_key>(services_.get(), "shhim_services", 2 * SHHIM_MAX_SERVICE_ENDPOINTS)) {
        if (key.policy_slot != slot || fresh_services.count(keyBytes(&key, sizeof(key))))
            continue;
        if (const int error = map_writer_->remove(services_.get(), "shhim_services", &key); error != 0 && error != ENOENT)
            throwErrno("delete stale entry of map shhim_services", error);
    }
    for (const auto& [key, value] : k.services) {
        if (const int error = map_writer_->update(services_.get(), "shhim_services", &key, &value))
            throwErrno("write map shhim_services (" + std::to_string(k.services.size()) + " endpoints)", error);
    }

    std::set<std::vector<std::uint8_t>> fresh_rules;
    for (const auto& [key, value] : k.rules)
        fresh_rules.insert(keyBytes(&key, sizeof(key)));
    for (const shhim_rule_key& key :
         allKeys<shhim_rule_key>(rules_.get(), "shhim_rules", 2 * SHHIM_MAX_RULE_PREFIXES)) {
        if (key.policy_slot != slot || fresh_rules.count(keyBytes(&key, sizeof(key))))
            continue;
        if (const int error = map_writer_->remove(rules_.get(), "shhim_rules", &key); error != 0 && error != ENOENT)
            throwErrno("delete stale entry of map shhim_rules", error);
    }
    for (const auto& [key, value] : k.rules) {
        if (const int error = map_writer_->update(rules_.get(), "shhim_rules", &key, &value))
            throwErrno("write map shhim_rules (" + std::to_string(k.rules.size()) + " prefixes)", error);
    }

    // Interface options of this slot: the policy's interfaces get theirs, every other entry none.
    std::vector<shhim_iface> ifaces = readIfaces();
    std::map<std::uint32_t, const KernelTables::Iface*> options;
    for (const auto& i : k.interfaces)
        options[i.ifindex] = &i;
    for (std::uint32_t ifindex = 1; ifindex < SHHIM_MAX_IFINDEX; ++ifindex) {
        shhim_iface e = ifaces[ifindex];
        const auto it = options.find(ifindex);
        std::uint8_t flags = 0;
        std::uint64_t capacity = 0;
        if (it != options.end()) {
            capacity = it->second->capacity_bps;
            flags = static_cast<std::uint8_t>((it->second->remark ? SHHIM_IFACE_F_REMARK : 0) |
                                              (capacity ? SHHIM_IFACE_F_HTB : 0));
        }
        if (e.flags[slot] == flags && e.capacity_bps[slot] == capacity)
            continue;
        e.flags[slot] = flags;
        e.capacity_bps[slot] = capacity;
        e.ifindex = ifindex;
        if (const int error = map_writer_->update(ifaces_.get(), "shhim_ifaces", &ifindex, &e))
            throwErrno("write map shhim_ifaces entry " + std::to_string(ifindex), error);
    }
    return generation;
}

void PolicyMaps::publishLocked(std::uint32_t generation)
{
    shhim_policy_state state = readState();
    if (generation != nextGeneration(state.generation))
        throw Error("publish policy generation " + std::to_string(generation) + ": the current one is " +
                        std::to_string(state.generation) + ", so the staged slot is not the inactive one any more",
                    ESTALE);
    shhim_policy stored{};
    const std::uint32_t slot = SHHIM_GEN_SLOT(generation);
    if (bpf_map_lookup_elem(policies_.get(), &slot, &stored) != 0)
        throwErrno("read map shhim_policies slot " + std::to_string(slot), errno);
    if (stored.generation != generation)
        throw Error("publish policy generation " + std::to_string(generation) + ": slot " + std::to_string(slot) +
                        " holds generation " + std::to_string(stored.generation) + " (not staged)",
                    ESTALE);
    state.generation = generation;
    writeState(state);  // the flip: one update of one entry
    waitForPrograms();
}

void PolicyMaps::writeStress(std::uint32_t mode, std::uint32_t level, std::uint64_t lease_ns)
{
    const std::lock_guard lock(*writer_);
    shhim_policy_state state = readState();
    state.stress_mode = mode;
    state.stress_level = level;
    state.stress_until_ns = level ? monotonicNs() + lease_ns : 0;
    writeState(state);
}

std::uint32_t PolicyMaps::generation() const { return readState().generation; }

AppliedPolicy PolicyMaps::current() const
{
    AppliedPolicy out;
    out.generation = readState().generation;
    if (out.generation == 0)
        return out;
    const std::uint32_t slot = SHHIM_GEN_SLOT(out.generation);
    shhim_policy policy{};
    if (bpf_map_lookup_elem(policies_.get(), &slot, &policy) != 0)
        throwErrno("read map shhim_policies slot " + std::to_string(slot), errno);
    out.default_class = policy.default_class;
    std::copy_n(policy.classes, SHHIM_CLASS_SLOTS, out.classes.begin());
    return out;
}

StressState PolicyMaps::stress() const
{
    const shhim_policy_state state = readState();
    StressState out;
    out.mode = state.stress_mode;
    out.level = state.stress_level;
    out.until_ns = state.stress_until_ns;
    out.active = state.stress_level != 0 && monotonicNs() < state.stress_until_ns;
    return out;
}

std::vector<InterfaceSlot> PolicyMaps::slottedInterfaces() const
{
    const std::lock_guard lock(slot_cache_->mutex);
    if (!slot_cache_->slots) {
        const std::vector<shhim_iface> ifaces = readIfaces();
        std::vector<InterfaceSlot> slots;
        for (std::uint32_t i = 1; i < SHHIM_MAX_IFINDEX; ++i) {
            if (ifaces[i].slot != 0 && ifaces[i].slot < SHHIM_MAX_IF_SLOTS)
                slots.push_back({i, ifaces[i].slot});
        }
        slot_cache_->slots = std::move(slots);
    }
    return *slot_cache_->slots;
}

void PolicyMaps::forgetSlottedInterfaces() const noexcept
{
    const std::lock_guard lock(slot_cache_->mutex);
    slot_cache_->slots.reset();
}

std::vector<InterfaceClassCounters> PolicyMaps::classCounters() const
{
    std::vector<InterfaceClassCounters> rows;
    rows.push_back(InterfaceClassCounters{});  // slot 0: interfaces without a slot
    for (const InterfaceSlot& slotted : slottedInterfaces()) {
        InterfaceClassCounters row;
        row.ifindex = slotted.ifindex;
        row.ifname = interfaceName(slotted.ifindex);
        row.slot = slotted.slot;
        rows.push_back(std::move(row));
    }
    std::vector<shhim_class_counter> per_cpu(static_cast<std::size_t>(ncpus_));
    for (InterfaceClassCounters& row : rows) {
        for (std::uint32_t dir = 0; dir < SHHIM_CLASS_DIRS; ++dir) {
            for (std::uint32_t c = 0; c < SHHIM_CLASS_SLOTS; ++c) {
                const __u32 idx = shhim_class_counter_index(row.slot, dir, c);
                if (bpf_map_lookup_elem(class_counters_.get(), &idx, per_cpu.data()) != 0)
                    throwErrno("read map shhim_class_counters entry " + std::to_string(idx), errno);
                shhim_class_counter& sum = row.counters[dir][c];
                for (const shhim_class_counter& v : per_cpu) {
                    sum.packets += v.packets;
                    sum.bytes += v.bytes;
                    sum.drops += v.drops;
                    sum.drop_bytes += v.drop_bytes;
                    sum.dscp_rewrites += v.dscp_rewrites;
                }
            }
        }
    }
    return rows;
}

}  // namespace shhim::datapath
