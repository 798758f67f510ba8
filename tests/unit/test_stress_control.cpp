// Stress mode decisions (core/stress_control.h) on synthetic egress counters.
#include <doctest/doctest.h>

#include <vector>

#include "core/stress_control.h"
#include "shhim_abi.h"

using namespace shhim::core;

namespace {

constexpr std::uint64_t kTick = 100'000'000;  // 100 ms
constexpr std::uint64_t kLink = 100'000'000;  // 100 Mbit/s

// Cumulative counters of one 100 Mbit/s link fed `offered` and shedding `shed`
// (fractions of the link) per tick.
struct Link {
    LinkLoad load{7, kLink, 0, 0};
    std::uint64_t now = 1'000'000'000;

    std::vector<LinkLoad> advance(double offered, double shed = 0)
    {
        now += kTick;
        const double bytes_per_tick = static_cast<double>(kLink) / 8 / 10;
        load.bytes += static_cast<std::uint64_t>(offered * bytes_per_tick);
        load.drop_bytes += static_cast<std::uint64_t>(shed * bytes_per_tick);
        return {load};
    }
};

}  // namespace

TEST_CASE("stress modes by name, and the kernel's numbering")
{
    CHECK(stressModeFromName("on") == StressMode::On);
    CHECK(stressModeFromName("OFF") == StressMode::Off);
    CHECK(stressModeFromName("auto") == StressMode::Auto);
    CHECK_FALSE(stressModeFromName("maybe").has_value());
    CHECK(stressModeName(StressMode::Auto) == "auto");
    CHECK(static_cast<int>(StressMode::On) == SHHIM_STRESS_ON);
    CHECK(static_cast<int>(StressMode::Auto) == SHHIM_STRESS_AUTO);
    CHECK(kStressLevelAll == SHHIM_STRESS_LEVEL_ALL);
}

TEST_CASE("on and off are fixed levels whatever the load")
{
    StressController s;
    Link link;
    s.setMode(StressMode::On);
    CHECK(s.tick(link.now, link.advance(0.0)) == kStressLevelAll);
    CHECK(s.tick(link.now, link.advance(0.1)) == kStressLevelAll);
    s.setMode(StressMode::Off);
    for (int i = 0; i < 10; ++i) CHECK(s.tick(link.now, link.advance(1.5)) == 0);
    CHECK(s.offeredUtilisation() == doctest::Approx(1.5).epsilon(0.01));
}

TEST_CASE("auto: escalates one shed rank per hold_ticks while what leaves stays above enter")
{
    StressConfig config;
    config.hold_ticks = 3;
    config.max_level = 5;
    StressController s(config);  // enter 0.9
    Link link;
    s.setMode(StressMode::Auto);
    s.tick(link.now, link.advance(0.5));  // first sample: a baseline only
    CHECK(s.level() == 0);
    for (int i = 0; i < 2; ++i) CHECK(s.tick(link.now, link.advance(1.2)) == 0);
    CHECK(s.tick(link.now, link.advance(1.2)) == 1);
    CHECK(s.sentUtilisation() == doctest::Approx(1.2).epsilon(0.01));
    // Shedding 0.2 of the link: 1.0 still leaves, so the level keeps rising...
    for (int i = 0; i < 3; ++i) s.tick(link.now, link.advance(1.2, 0.2));
    CHECK(s.level() == 2);
    // ... until what leaves is below the threshold: the level holds.
    for (int i = 0; i < 30; ++i) s.tick(link.now, link.advance(1.2, 0.4));
    CHECK(s.level() == 2);
    CHECK(s.sentUtilisation() == doctest::Approx(0.8).epsilon(0.01));
    // Never beyond the policy's highest shed rank.
    for (int i = 0; i < 100; ++i) s.tick(link.now, link.advance(3.0));
    CHECK(s.level() == 5);
}

TEST_CASE("auto: releases one rank per hold_ticks once the offered load itself is below exit")
{
    StressConfig config;
    config.hold_ticks = 5;
    config.exit = 0.72;
    config.max_level = 5;
    StressController s(config);
    Link link;
    s.setMode(StressMode::Auto, 3);  // e.g. the kernel's level after an agent restart
    CHECK(s.level() == 3);
    s.tick(link.now, link.advance(0.2));
    // Offered 0.75 is below enter (0.9) but not below exit (0.72): hold.
    for (int i = 0; i < 20; ++i) s.tick(link.now, link.advance(0.75));
    CHECK(s.level() == 3);
    for (int i = 0; i < 4; ++i) s.tick(link.now, link.advance(0.3));
    CHECK(s.level() == 3);
    s.tick(link.now, link.advance(0.3));
    CHECK(s.level() == 2);
    for (int i = 0; i < 10; ++i) s.tick(link.now, link.advance(0.3));
    CHECK(s.level() == 0);
}

TEST_CASE("auto: links without a capacity are not measured; a reset counter starts over")
{
    StressController s;
    s.setMode(StressMode::Auto);
    LinkLoad unknown{3, 0, 0, 0};
    for (std::uint64_t t = 1; t < 50; ++t) {
        unknown.bytes += 100'000'000;
        CHECK(s.tick(t * kTick, {unknown}) == 0);
    }
    Link link;
    s.tick(link.now, link.advance(2.0));
    link.load.bytes = 0;  // slot given to another interface
    link.now += kTick;
    CHECK(s.tick(link.now, {link.load}) == 0);
    CHECK(s.level() == 0);
}
