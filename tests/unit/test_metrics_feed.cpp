// The event feed's entries and the `shhimctl observe` filter (core/feed.h,
// core/backend_filter.h).
#include <doctest/doctest.h>

#include <stdexcept>

#include "core/feed.h"
#include "test_support.h"

using namespace shhim::core;
using shhim::test::endpointV4;
using shhim::test::endpointV6;

namespace {

constexpr std::int64_t kOffset = 1'700'000'000'000'000'000;

shhim_event refusedEvent()
{
    shhim_event e{};
    e.ts_ns = 5'000;
    e.kind = SHHIM_EV_REFUSED;
    e.client = endpointV4({198, 18, 0, 1}, 40000);
    e.server = endpointV4({198, 18, 0, 10}, 8080);
    e.hook = SHHIM_HOOK_XDP_INGRESS;
    return e;
}

FeedFilter filterOf(std::function<void(shhim::v1::ObserveRequest&)> set)
{
    shhim::v1::ObserveRequest request;
    set(request);
    return FeedFilter::fromRequest(request);
}

}  // namespace

TEST_CASE("feed: a kernel failure becomes a failure entry about its server")
{
    const auto entry = failureEntry(refusedEvent(), kOffset, {"fhir", "clinical"});
    CHECK(entry.type() == "failure");
    CHECK(entry.time_unix_ns() == kOffset + 5'000);
    CHECK(entry.service() == "fhir");
    CHECK(entry.priority_class() == "clinical");
    CHECK(entry.backend().address() == "198.18.0.10");
    CHECK(entry.backend().port() == 8080);
    CHECK(entry.failure().kind() == "refused");
    CHECK(entry.summary() == "refused 198.18.0.1:40000 -> 198.18.0.10:8080 tcp");
}

TEST_CASE("feed: policy entries summarise loads and rejections")
{
    shhim::v1::PolicyNotice notice;
    notice.set_action("loaded");
    notice.set_file("/etc/shhim/policy.yaml");
    notice.set_name("demo");
    notice.set_services(2);
    CHECK(policyEntry(notice, 7).summary() == "policy loaded /etc/shhim/policy.yaml (demo): 2 services");
    notice.set_action("rejected");
    notice.set_error("line 3: not YAML");
    CHECK(policyEntry(notice, 7).summary() == "policy rejected /etc/shhim/policy.yaml (demo): line 3: not YAML");
    CHECK(policyEntry(notice, 7).type() == "policy");
}

TEST_CASE("feed filter: type, service, class, since")
{
    const auto entry = failureEntry(refusedEvent(), kOffset, {"fhir", "clinical"});
    CHECK(filterOf([](auto&) {}).matches(entry));
    CHECK(filterOf([](auto& r) { r.add_types("failure"); }).matches(entry));
    CHECK_FALSE(filterOf([](auto& r) { r.add_types("reroute"); }).matches(entry));
    CHECK(filterOf([](auto& r) { r.add_types("reroute"); r.add_types("failure"); }).matches(entry));
    CHECK(filterOf([](auto& r) { r.set_service("fhir"); }).matches(entry));
    CHECK_FALSE(filterOf([](auto& r) { r.set_service("lab-hl7"); }).matches(entry));
    CHECK(filterOf([](auto& r) { r.set_priority_class("clinical"); }).matches(entry));
    CHECK_FALSE(filterOf([](auto& r) { r.set_priority_class("emergency"); }).matches(entry));
    CHECK(filterOf([](auto& r) { r.set_since_unix_ns(kOffset + 5'000); }).matches(entry));
    CHECK_FALSE(filterOf([](auto& r) { r.set_since_unix_ns(kOffset + 5'001); }).matches(entry));
    CHECK_THROWS_AS(filterOf([](auto& r) { r.add_types("failures"); }), std::invalid_argument);
}

TEST_CASE("feed filter: backend by address and port, address alone, IPv6; policy entries are about no backend")
{
    const auto entry = failureEntry(refusedEvent(), kOffset, {});
    CHECK(filterOf([](auto& r) { r.set_backend("198.18.0.10:8080"); }).matches(entry));
    CHECK(filterOf([](auto& r) { r.set_backend("198.18.0.10"); }).matches(entry));
    CHECK_FALSE(filterOf([](auto& r) { r.set_backend("198.18.0.10:8081"); }).matches(entry));
    CHECK_FALSE(filterOf([](auto& r) { r.set_backend("198.18.0.11"); }).matches(entry));

    shhim_event v6 = refusedEvent();
    v6.client = endpointV6({0x2001, 2, 0, 0, 0, 0, 0, 1}, 40000);
    v6.server = endpointV6({0x2001, 2, 0, 0, 0, 0, 0, 0x10}, 8080);
    const auto v6_entry = failureEntry(v6, kOffset, {});
    CHECK(filterOf([](auto& r) { r.set_backend("[2001:2::10]:8080"); }).matches(v6_entry));
    CHECK(filterOf([](auto& r) { r.set_backend("2001:2:0::10"); }).matches(v6_entry));
    CHECK_FALSE(filterOf([](auto& r) { r.set_backend("[2001:2::10]:80"); }).matches(v6_entry));

    shhim::v1::PolicyNotice notice;
    notice.set_action("loaded");
    CHECK_FALSE(filterOf([](auto& r) { r.set_backend("198.18.0.10"); }).matches(policyEntry(notice, kOffset)));
}

TEST_CASE("backend filter: malformed text is refused with the text in the message")
{
    for (const char* bad : {"198.18.0.300", "198.18.0.10:", "198.18.0.10:70000", "[2001:2::10", "[2001:2::10]x",
                            "host.example:80", "198.18.0.10:8o"}) {
        CAPTURE(bad);
        try {
            BackendFilter::parse(bad);
            FAIL("accepted");
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()).find(bad) != std::string::npos);
        }
    }
    CHECK(BackendFilter::parse("").matchesAll());
    CHECK(BackendFilter::parse("198.18.0.10").matches(endpointV4({198, 18, 0, 10}, 1)));
}

TEST_CASE("feed: stress changes say entered, left or level, and why (manual by whom, auto against which threshold)")
{
    shhim::core::StressChange change;
    change.mode = "auto";
    change.cause = "auto";
    change.level_before = 0;
    change.level = 1;
    change.sent_utilisation = 0.934;
    change.offered_utilisation = 1.2;
    change.enter = 0.6;
    change.exit = 0.3;
    const auto entered = shhim::core::stressNotice(change);
    CHECK(entered.action() == "entered");
    CHECK(entered.utilisation() == doctest::Approx(0.934));
    CHECK(entered.threshold() == doctest::Approx(0.6));
    CHECK(entered.reason() == "auto: egress at 93% of capacity >= enter_utilization 60%");
    const auto entry = shhim::core::stressEntry(entered, 42);
    CHECK(entry.type() == "stress");
    CHECK(entry.time_unix_ns() == 42);
    CHECK(entry.summary() == "stress mode entered (level 0 -> 1): auto: egress at 93% of capacity >= "
                             "enter_utilization 60%");

    change.level_before = 2;
    change.level = 0;
    change.offered_utilisation = 0.05;
    const auto left = shhim::core::stressNotice(change);
    CHECK(left.action() == "left");
    CHECK(left.threshold() == doctest::Approx(0.3));
    CHECK(left.reason() == "auto: offered load at 5% of capacity < exit_utilization 30%");

    change.level_before = 1;
    change.level = 2;
    CHECK(shhim::core::stressNotice(change).action() == "level");

    shhim::core::StressChange manual;
    manual.mode = "on";
    manual.cause = "manual";
    manual.actor = "uid 0";
    manual.level = 255;
    const auto on = shhim::core::stressNotice(manual);
    CHECK(on.action() == "entered");
    CHECK(on.actor() == "uid 0");
    CHECK(shhim::core::stressSummary(on) == "stress mode entered (level 0 -> all): manual: shhimctl stress on by uid 0");
}
