// Weighted rendezvous hashing (bpf/route_hash.h), the very function the
// cgroup connect hooks run: ejecting one of N backends moves only its own
// keys (<= 1/N + 2%), weights are respected, the pool fallback and the
// fail-open case.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "route_hash.h"

namespace {

constexpr int kKeys = 100000;

// Keys as the kernel sees them: socket cookies, here spread like a counter.
std::uint64_t keyAt(int i) { return 0x1000 + static_cast<std::uint64_t>(i) * 7919; }

std::vector<shhim_route_member> pool(std::uint32_t n, std::uint16_t weight = 1)
{
    std::vector<shhim_route_member> members;
    for (std::uint32_t i = 0; i < n; ++i)
        members.push_back({static_cast<__u16>(10 + i), weight});
    members.resize(SHHIM_ROUTE_POOL_MAX);  // the pick reads a whole pool, as in shhim_route
    return members;
}

__u32 allUp(std::uint32_t n) { return n >= 32 ? ~0u : (1u << n) - 1; }

}  // namespace

TEST_CASE("rendezvous: ejecting one of N backends moves only its keys, at most 1/N + 2%")
{
    for (std::uint32_t n = 2; n <= SHHIM_ROUTE_POOL_MAX; ++n) {
        const auto members = pool(n);
        for (std::uint32_t ejected = 0; ejected < n; ejected += (n > 4 ? n / 3 : 1)) {
            const __u32 up = allUp(n) & ~(1u << ejected);
            int moved = 0;
            int moved_from_others = 0;
            for (int k = 0; k < kKeys; ++k) {
                const int before = shhim_hrw_pick(members.data(), n, allUp(n), keyAt(k));
                const int after = shhim_hrw_pick(members.data(), n, up, keyAt(k));
                REQUIRE(before >= 0);
                REQUIRE(after >= 0);
                CHECK(after != static_cast<int>(ejected));
                if (before != after) {
                    ++moved;
                    if (before != static_cast<int>(ejected))
                        ++moved_from_others;
                }
            }
            INFO("n=" << n << " ejected=" << ejected << " moved=" << moved);
            CHECK(moved_from_others == 0);
            CHECK(static_cast<double>(moved) / kKeys <= 1.0 / n + 0.02);
        }
    }
}

TEST_CASE("rendezvous: equal weights share evenly, unequal weights in proportion (within 3%)")
{
    for (std::uint32_t n : {2u, 3u, 7u, 16u}) {
        const auto members = pool(n);
        std::vector<int> hits(n);
        for (int k = 0; k < kKeys; ++k)
            ++hits[static_cast<std::size_t>(shhim_hrw_pick(members.data(), n, allUp(n), keyAt(k)))];
        for (std::uint32_t i = 0; i < n; ++i) {
            INFO("n=" << n << " member " << i << " hits " << hits[i]);
            CHECK(std::abs(static_cast<double>(hits[i]) / kKeys - 1.0 / n) < 0.03 / std::sqrt(n));
        }
    }
    std::vector<shhim_route_member> weighted = {{1, 1}, {2, 3}, {3, 6}, {4, 10}, {5, 100}};
    weighted.resize(SHHIM_ROUTE_POOL_MAX);
    std::array<int, 5> hits{};
    for (int k = 0; k < kKeys; ++k)
        ++hits[static_cast<std::size_t>(shhim_hrw_pick(weighted.data(), 5, allUp(5), keyAt(k)))];
    const double total = 1 + 3 + 6 + 10 + 100;
    for (std::size_t i = 0; i < 5; ++i) {
        const double expected = weighted[i].weight / total;
        INFO("weight " << weighted[i].weight << " share " << static_cast<double>(hits[i]) / kKeys);
        CHECK(std::abs(static_cast<double>(hits[i]) / kKeys - expected) <= 0.03 * expected + 0.002);
    }
}

TEST_CASE("rendezvous: the choice depends on the key and the backend ids, not on member order")
{
    auto members = pool(5);
    auto reversed = members;
    std::reverse(reversed.begin(), reversed.begin() + 5);
    for (int k = 0; k < 2000; ++k) {
        const int a = shhim_hrw_pick(members.data(), 5, allUp(5), keyAt(k));
        const int b = shhim_hrw_pick(reversed.data(), 5, allUp(5), keyAt(k));
        CHECK(members[static_cast<std::size_t>(a)].backend_id == reversed[static_cast<std::size_t>(b)].backend_id);
    }
}

TEST_CASE("rendezvous: nobody up, weight 0 and n beyond the pool")
{
    const auto members = pool(4);
    CHECK(shhim_hrw_pick(members.data(), 4, 0, 42) == SHHIM_HRW_NONE);
    CHECK(shhim_hrw_pick(members.data(), 0, allUp(4), 42) == SHHIM_HRW_NONE);
    std::vector<shhim_route_member> zero = {{7, 0}, {8, 1}};
    zero.resize(SHHIM_ROUTE_POOL_MAX);
    for (int k = 0; k < 100; ++k)
        CHECK(shhim_hrw_pick(zero.data(), 2, 3, keyAt(k)) == 1);
}

TEST_CASE("route choice: active pool first, the other when it has nobody up, 0 when nobody is up")
{
    shhim_route route{};
    route.count[SHHIM_POOL_PRIMARY] = 2;
    route.pools[SHHIM_POOL_PRIMARY][0] = {1, 1};
    route.pools[SHHIM_POOL_PRIMARY][1] = {2, 1};
    route.count[SHHIM_POOL_FALLBACK] = 1;
    route.pools[SHHIM_POOL_FALLBACK][0] = {3, 1};
    __u32 pool = 9;

    __u32 up[SHHIM_POOLS] = {0x3, 0x1};
    const __u32 id = shhim_route_choose(&route, up, 77, &pool);
    CHECK((id == 1 || id == 2));
    CHECK(pool == SHHIM_POOL_PRIMARY);

    up[0] = 0;
    CHECK(shhim_route_choose(&route, up, 77, &pool) == 3);
    CHECK(pool == SHHIM_POOL_FALLBACK);

    route.active_pool = SHHIM_POOL_FALLBACK;
    up[0] = 0x3;
    CHECK(shhim_route_choose(&route, up, 77, &pool) == 3);
    CHECK(pool == SHHIM_POOL_FALLBACK);

    up[0] = up[1] = 0;
    CHECK(shhim_route_choose(&route, up, 77, &pool) == 0);
}

TEST_CASE("neg_log2: exact at powers of two, monotone, within 2^-20 of the real value")
{
    CHECK(shhim_neg_log2_q24(1) == (32ull << SHHIM_HRW_FRAC_BITS));
    CHECK(shhim_neg_log2_q24(1u << 31) == (1ull << SHHIM_HRW_FRAC_BITS));
    std::uint64_t last = ~0ull;
    for (std::uint64_t h = 1; h < (1ull << 32); h = h * 3 + 1) {
        const std::uint64_t v = shhim_neg_log2_q24(static_cast<__u32>(h));
        CHECK(v <= last);
        last = v;
        const double real = 32.0 - std::log2(static_cast<double>(h));
        CHECK(std::abs(static_cast<double>(v) / (1 << SHHIM_HRW_FRAC_BITS) - real) < 1.0 / (1 << 20));
    }
}
