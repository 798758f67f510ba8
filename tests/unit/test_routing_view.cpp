// The routing picture as the dashboard and Prometheus show it: the state a
// backend shows (drained on top of the engine's state), the join of the
// router's ServiceList into the dashboard snapshot, the reroute timeline
// from audit records, and the routing families of the exposition.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/routing_view.h"

using namespace shhim::core;
namespace v1 = shhim::v1;

namespace {

v1::RoutedBackend routed(const std::string& backend, const std::string& state, const std::string& actor = "engine",
                         const std::string& reason = "")
{
    v1::RoutedBackend b;
    b.set_backend(backend);
    b.set_pool("primary");
    b.set_state(state);
    b.set_actor(actor);
    b.set_reason(reason);
    b.set_since_unix_ns(1'700'000'000'000'000'000);
    return b;
}

// fhir: .10 ejected by the kernel, .11 healthy, .12 (fallback) drained.
v1::ServiceList fhirRouting()
{
    v1::ServiceList list;
    v1::RoutedService& s = *list.add_services();
    s.set_name("fhir");
    s.set_class_name("clinical");
    s.set_address("198.18.0.100:8080");
    s.set_active_pool("primary");
    *s.add_backends() = routed("198.18.0.10:8080", "ejected", "kernel", "1 refused (breaker threshold 1)");
    *s.add_backends() = routed("198.18.0.11:8080", "healthy");
    v1::RoutedBackend drained = routed("198.18.0.12:8080", "healthy");
    drained.set_pool("fallback");
    drained.set_drained(true);
    drained.set_drained_by("uid:0");
    drained.set_drain_reason("kernel update");
    *s.add_backends() = drained;
    return list;
}

v1::BackendView kernelView(const std::string& address, std::uint32_t port, const std::string& service,
                           std::uint64_t requests, const std::string& protocol = "tcp")
{
    v1::BackendView view;
    view.mutable_backend()->mutable_endpoint()->set_address(address);
    view.mutable_backend()->mutable_endpoint()->set_port(port);
    view.mutable_backend()->set_protocol(protocol);
    view.mutable_backend()->set_requests(requests);
    view.set_service(service);
    return view;
}

const v1::BackendView* findView(const v1::ServiceView& service, const std::string& address)
{
    for (const auto& view : service.backends())
        if (view.backend().endpoint().address() == address)
            return &view;
    return nullptr;
}

bool hasLine(const std::string& text, const std::string& line)
{
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l == line)
            return true;
    return false;
}

std::size_t countPrefix(const std::string& text, const std::string& prefix)
{
    std::size_t n = 0;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        n += l.starts_with(prefix);
    return n;
}

}  // namespace

TEST_CASE("shown state: the engine's state, or drained while an engineer holds it out")
{
    CHECK(shownState(routed("198.18.0.10:8080", "ejected")) == "ejected");
    v1::RoutedBackend b = routed("198.18.0.10:8080", "suspect");
    b.set_drained(true);
    CHECK(shownState(b) == "drained");
}

TEST_CASE("shown reason names who and why; a drain says until when")
{
    CHECK(shownReason(routed("198.18.0.10:8080", "ejected", "kernel", "1 refused")) == "kernel: 1 refused");
    CHECK(shownReason(routed("198.18.0.10:8080", "healthy", "", "")) == "");
    CHECK(shownReason(routed("198.18.0.10:8080", "healthy", "", "policy applied")) == "policy applied");
    v1::RoutedBackend b = routed("198.18.0.10:8080", "healthy");
    b.set_drained(true);
    b.set_drained_by("uid:1000");
    b.set_drain_reason("patching");
    CHECK(shownReason(b) == "uid:1000: patching (until restored)");
    b.set_drained_until_unix_ns(1);
    CHECK(shownReason(b) == "uid:1000: patching");
}

TEST_CASE("join: kernel views get their routed backend, state and reason; unseen backends are added")
{
    v1::Dashboard dashboard;
    v1::ServiceView& fhir = *dashboard.add_services();
    fhir.set_name("fhir");
    fhir.set_priority_class("clinical");
    *fhir.add_backends() = kernelView("198.18.0.10", 8080, "fhir", 40);
    *fhir.add_backends() = kernelView("198.18.0.11", 8080, "fhir", 50);
    *fhir.add_backends() = kernelView("198.18.0.100", 8080, "fhir", 0);  // the service's own address
    v1::ServiceView& unassigned = *dashboard.add_services();
    *unassigned.add_backends() = kernelView("198.18.0.50", 9000, "", 3);

    joinRouting(dashboard, fhirRouting());

    REQUIRE(dashboard.services_size() == 2);
    const v1::ServiceView& joined = dashboard.services(0);
    REQUIRE(joined.backends_size() == 4);

    const v1::BackendView* a = findView(joined, "198.18.0.10");
    REQUIRE(a != nullptr);
    CHECK(a->state() == "ejected");
    CHECK(a->state_reason() == "kernel: 1 refused (breaker threshold 1)");
    CHECK(a->routing().actor() == "kernel");
    CHECK(a->backend().requests() == 40);  // the kernel's counters stay

    const v1::BackendView* b = findView(joined, "198.18.0.11");
    REQUIRE(b != nullptr);
    CHECK(b->state() == "healthy");
    CHECK(b->routing().pool() == "primary");

    // The fallback has had no traffic: on the page all the same, with no counters.
    const v1::BackendView* c = findView(joined, "198.18.0.12");
    REQUIRE(c != nullptr);
    CHECK(c->state() == "drained");
    CHECK(c->routing().pool() == "fallback");
    CHECK(c->backend().endpoint().port() == 8080);
    CHECK(c->backend().protocol() == "tcp");
    CHECK(c->backend().requests() == 0);
    CHECK(c->service() == "fhir");
    CHECK(c->priority_class() == "clinical");

    const v1::BackendView* vip = findView(joined, "198.18.0.100");
    REQUIRE(vip != nullptr);
    CHECK(vip->state().empty());
    CHECK_FALSE(vip->has_routing());
    CHECK(vip->state_reason() == "not in the pools of fhir: not routed");

    REQUIRE(dashboard.services(1).backends_size() == 1);
    CHECK(dashboard.services(1).backends(0).state().empty());
    CHECK(dashboard.services(1).backends(0).state_reason() == "in no policy service: not routed");

    // The whole list rides along for the service-level view (pool, fail-open, pin).
    CHECK(dashboard.routing().services_size() == 1);
    CHECK(dashboard.routing().services(0).address() == "198.18.0.100:8080");
}

TEST_CASE("join: a UDP view of the same address is not the routed (TCP) backend")
{
    v1::Dashboard dashboard;
    v1::ServiceView& fhir = *dashboard.add_services();
    fhir.set_name("fhir");
    *fhir.add_backends() = kernelView("198.18.0.10", 8080, "fhir", 7, "udp");
    joinRouting(dashboard, fhirRouting());
    const auto& joined = dashboard.services(0);
    REQUIRE(joined.backends_size() == 4);  // the UDP view plus the three routed ones
    CHECK(joined.backends(0).backend().protocol() == "udp");
    CHECK_FALSE(joined.backends(0).has_routing());
    CHECK(joined.backends(1).state() == "ejected");
}

TEST_CASE("join: IPv6 policy text matches the kernel's canonical address")
{
    v1::ServiceList list;
    v1::RoutedService& s = *list.add_services();
    s.set_name("pacs");
    *s.add_backends() = routed("[2001:2:0::10]:104", "suspect");
    v1::Dashboard dashboard;
    v1::ServiceView& pacs = *dashboard.add_services();
    pacs.set_name("pacs");
    *pacs.add_backends() = kernelView("2001:2::10", 104, "pacs", 9);
    joinRouting(dashboard, list);
    REQUIRE(dashboard.services(0).backends_size() == 1);
    CHECK(dashboard.services(0).backends(0).state() == "suspect");
}

TEST_CASE("join: a routed service missing from the snapshot gets its own card")
{
    v1::Dashboard dashboard;
    joinRouting(dashboard, fhirRouting());
    REQUIRE(dashboard.services_size() == 1);
    CHECK(dashboard.services(0).name() == "fhir");
    CHECK(dashboard.services(0).priority_class() == "clinical");
    CHECK(dashboard.services(0).backends_size() == 3);
}

TEST_CASE("reroute timeline entry from an audit record")
{
    v1::AuditRecord record;
    record.set_seq(7);
    record.set_time_unix_ns(1'700'000'000'123'000'000);
    record.set_actor("kernel");
    record.set_action("eject");
    record.set_service("fhir");
    record.set_backend("198.18.0.10:8080");
    record.set_before("healthy");
    record.set_after("ejected");
    record.set_reason("1 refused");

    const v1::FeedEvent entry = rerouteTimelineEntry(record, fhirRouting());
    CHECK(entry.type() == "reroute");
    CHECK(entry.seq() == 0);
    CHECK(entry.time_unix_ns() == record.time_unix_ns());
    CHECK(entry.service() == "fhir");
    CHECK(entry.priority_class() == "clinical");
    CHECK(entry.backend().address() == "198.18.0.10");
    CHECK(entry.backend().port() == 8080);
    CHECK(entry.summary() == "eject fhir 198.18.0.10:8080: healthy -> ejected by kernel (1 refused)");
    CHECK(entry.reroute().seq() == 7);

    // A pool change has no backend; a service gone from the policy has no class.
    v1::AuditRecord pool;
    pool.set_action("fallback");
    pool.set_service("gone");
    pool.set_before("primary");
    pool.set_after("fallback");
    pool.set_actor("engine");
    const v1::FeedEvent pool_entry = rerouteTimelineEntry(pool, fhirRouting());
    CHECK_FALSE(pool_entry.has_backend());
    CHECK(pool_entry.priority_class().empty());
    CHECK(pool_entry.summary() == "fallback gone: primary -> fallback by engine");
}

TEST_CASE("exposition: one 0/1 state gauge per routed backend and state, exactly one at 1")
{
    MetricsInput in;
    in.routing = fhirRouting();
    const std::string text = renderMetrics(in);
    const std::string a = R"(service="fhir",class="clinical",backend="198.18.0.10:8080")";
    CHECK(hasLine(text, "shhim_backend_state{" + a + R"(,state="ejected"} 1)"));
    CHECK(hasLine(text, "shhim_backend_state{" + a + R"(,state="healthy"} 0)"));
    CHECK(hasLine(text, "shhim_backend_state{" + a + R"(,state="drained"} 0)"));
    const std::string c = R"(service="fhir",class="clinical",backend="198.18.0.12:8080")";
    CHECK(hasLine(text, "shhim_backend_state{" + c + R"(,state="drained"} 1)"));
    CHECK(hasLine(text, "shhim_backend_state{" + c + R"(,state="healthy"} 0)"));
    CHECK(countPrefix(text, "shhim_backend_state{") == 3 * kShownBackendStates.size());
    std::size_t current = 0;  // gauges at 1: one per backend
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);)
        current += l.starts_with("shhim_backend_state{") && l.ends_with("} 1");
    CHECK(current == 3);
    CHECK(hasLine(text, R"(shhim_service_fallback_active{service="fhir",class="clinical"} 0)"));
    CHECK(text.find("# TYPE shhim_routing_changes_total counter") != std::string::npos);
}

TEST_CASE("exposition: the backend label is the kernel's canonical text, so routing joins the counters")
{
    MetricsInput in;
    in.routing.emplace();
    v1::RoutedService& s = *in.routing->add_services();
    s.set_name("pacs");
    s.set_class_name("imaging");
    s.set_active_pool("fallback");
    *s.add_backends() = routed("[2001:2:0:0::10]:104", "healthy");
    const std::string text = renderMetrics(in);
    CHECK(hasLine(text, R"(shhim_backend_state{service="pacs",class="imaging",backend="[2001:2::10]:104",state="healthy"} 1)"));
    CHECK(hasLine(text, R"(shhim_service_fallback_active{service="pacs",class="imaging"} 1)"));
}

TEST_CASE("exposition: routing changes by service, action and actor")
{
    MetricsInput in;
    in.routing = fhirRouting();
    in.routing_changes[{"fhir", "eject", "kernel"}] = 2;
    in.routing_changes[{"fhir", "drain", "uid:0"}] = 1;
    const std::string text = renderMetrics(in);
    CHECK(hasLine(text, R"(shhim_routing_changes_total{service="fhir",action="eject",actor="kernel"} 2)"));
    CHECK(hasLine(text, R"(shhim_routing_changes_total{service="fhir",action="drain",actor="uid:0"} 1)"));
}

TEST_CASE("exposition: no router, no routing families")
{
    const std::string text = renderMetrics(MetricsInput{});
    CHECK(text.find("shhim_backend_state") == std::string::npos);
    CHECK(text.find("shhim_service_fallback_active") == std::string::npos);
    CHECK(text.find("shhim_routing_changes_total") == std::string::npos);
}
