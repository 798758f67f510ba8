#include "agent/event_feed.h"

#include <algorithm>

#include "core/telemetry.h"

namespace shhim::agent {
namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;

std::uint32_t kindId(const std::string& kind)
{
    for (std::uint32_t id = 1; id < SHHIM_EV_KIND_MAX; ++id)
        if (core::eventKindName(id) == kind)
            return id;
    return 0;
}

}  // namespace

std::string recentFailuresKey(const shhim::v1::Endpoint& endpoint, const std::string& protocol)
{
    const bool ipv6 = endpoint.address().find(':') != std::string::npos;
    return (ipv6 ? "[" + endpoint.address() + "]" : endpoint.address()) + ":" + std::to_string(endpoint.port()) +
           "/" + protocol;
}

std::uint64_t EventFeed::publish(shhim::v1::FeedEvent entry)
{
    std::uint64_t seq = 0;
    {
        std::lock_guard lock(mutex_);
        seq = ++last_seq_;
        entry.set_seq(seq);
        if (entry.type() == "failure")
            countFailure(entry);
        if (entry.type() == "reroute" && entry.has_reroute())
            ++routing_changes_[{entry.reroute().service(), entry.reroute().action(), entry.reroute().actor()}];
        entries_.push_back(std::move(entry));
        if (entries_.size() > kKeptEntries)
            entries_.pop_front();
    }
    changed_.notify_all();
    return seq;
}

void EventFeed::countFailure(const shhim::v1::FeedEvent& entry)
{
    const auto& failure = entry.failure();
    if (const std::uint32_t id = kindId(failure.kind()); id != 0)
        ++failures_by_kind_[id];
    // Bounded: past kMaxRecentBackends, backends quiet for the whole
    // window are dropped first.
    if (recent_.size() >= kMaxRecentBackends) {
        const std::int64_t horizon = entry.time_unix_ns() - kRecentWindowSeconds * kNsPerSecond;
        std::erase_if(recent_, [horizon](const auto& item) { return item.second.last_unix_ns < horizon; });
    }
    BackendRecent& recent = recent_[recentFailuresKey(failure.server(), failure.protocol())];
    const std::int64_t second = entry.time_unix_ns() / kNsPerSecond;
    Slot& slot = recent.by_kind[failure.kind()][static_cast<std::size_t>(second % kRecentWindowSeconds)];
    if (slot.second != second)
        slot = Slot{second, 0};
    ++slot.count;
    recent.last_unix_ns = std::max(recent.last_unix_ns, entry.time_unix_ns());
}

std::vector<shhim::v1::FeedEvent> EventFeed::after(std::uint64_t after_seq, std::size_t limit) const
{
    std::lock_guard lock(mutex_);
    // Entries are consecutive: the first kept one has seq last_seq_ - size + 1.
    const std::uint64_t first_kept = last_seq_ - entries_.size() + 1;
    std::size_t start = after_seq < first_kept ? 0 : static_cast<std::size_t>(after_seq - first_kept + 1);
    start = std::min(start, entries_.size());
    if (limit > 0 && entries_.size() - start > limit)
        start = entries_.size() - limit;
    return {entries_.begin() + static_cast<std::ptrdiff_t>(start), entries_.end()};
}

std::vector<shhim::v1::FeedEvent> EventFeed::ofType(const std::string& type) const
{
    std::lock_guard lock(mutex_);
    std::vector<shhim::v1::FeedEvent> out;
    for (const auto& entry : entries_)
        if (entry.type() == type)
            out.push_back(entry);
    return out;
}

bool EventFeed::waitAfter(std::uint64_t after_seq, std::chrono::milliseconds timeout) const
{
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return closed_ || last_seq_ > after_seq; });
    return last_seq_ > after_seq;
}

void EventFeed::close()
{
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    changed_.notify_all();
}

bool EventFeed::closed() const
{
    std::lock_guard lock(mutex_);
    return closed_;
}

std::uint64_t EventFeed::lastSeq() const
{
    std::lock_guard lock(mutex_);
    return last_seq_;
}

std::array<std::uint64_t, SHHIM_EV_KIND_MAX> EventFeed::failuresByKind() const
{
    std::lock_guard lock(mutex_);
    return failures_by_kind_;
}

core::RoutingChangeCounts EventFeed::routingChanges() const
{
    std::lock_guard lock(mutex_);
    return routing_changes_;
}

std::map<std::string, EventFeed::RecentFailures> EventFeed::recentFailures(std::int64_t now_unix_ns) const
{
    const std::int64_t now_second = now_unix_ns / kNsPerSecond;
    std::lock_guard lock(mutex_);
    std::map<std::string, RecentFailures> out;
    for (const auto& [backend, recent] : recent_) {
        RecentFailures& summary = out[backend];
        summary.last_unix_ns = recent.last_unix_ns;
        for (const auto& [kind, slots] : recent.by_kind) {
            std::uint32_t count = 0;
            for (const Slot& slot : slots)
                if (slot.second > now_second - kRecentWindowSeconds && slot.second <= now_second)
                    count += slot.count;
            if (count > 0)
                summary.by_kind[kind] = count;
        }
    }
    return out;
}

}  // namespace shhim::agent
