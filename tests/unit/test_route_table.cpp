// Policy -> kernel route tables (core/route_table.h): ids stable across
// applies, breaker thresholds by class and policy, weights, and the
// application evidence each protocol counts.
#include <doctest/doctest.h>

#include <string>

#include "core/policy.h"
#include "core/route_table.h"
#include "policy.pb.h"

using namespace shhim::core;

namespace {

shhim::v1::Policy validated(const std::string& yaml)
{
    const PolicyCheck check = checkPolicyText(yaml);
    std::string issues;
    for (const auto& issue : check.issues)
        issues += issue.path + ": " + issue.message + "\n";
    INFO(issues);
    REQUIRE(check.policy.has_value());
    return check.policy->policy;
}

const std::string kTwoServices = R"(
schema_version: 1
name: routes
services:
  - name: alarms
    address: 198.18.0.100:7000
    protocol: tcp
    class: life-critical
    backends:
      primary: [198.18.0.10:7000, 198.18.0.11:7000]
      fallback: [198.18.0.12:7000]
  - name: fhir
    address: 198.18.0.101:8080
    protocol: http
    class: clinical
    backends:
      primary: [198.18.0.10:8080, 198.18.0.11:8080]
      weights:
        - {backend: 198.18.0.11:8080, weight: 4}
)";

const RouteBackend* backendAt(const RouteTables& t, std::uint8_t last_octet, std::uint16_t port)
{
    for (const RouteBackend& b : t.backends)
        if (b.endpoint.address[15] == last_octet && b.endpoint.port == port)
            return &b;
    return nullptr;
}

}  // namespace

TEST_CASE("route tables: services, pools, ids, thresholds, weights and evidence flags")
{
    const RouteTables t = compileRouteTables(validated(kTwoServices));
    REQUIRE(t.services.size() == 2);
    REQUIRE(t.backends.size() == 5);

    const RouteService& alarms = t.services[0];
    CHECK(alarms.name == "alarms");
    CHECK(alarms.id == 0);
    CHECK(alarms.class_id == kClassLifeCritical);
    CHECK(alarms.endpoint.family == 4);
    CHECK(alarms.endpoint.port == 7000);
    CHECK(alarms.endpoint.protocol == 6);
    CHECK(alarms.endpoint.address[15] == 100);
    REQUIRE(alarms.primary.size() == 2);
    REQUIRE(alarms.fallback.size() == 1);
    CHECK(alarms.primary[0] == RouteMember{1, 1});
    CHECK(alarms.primary[1] == RouteMember{2, 1});
    CHECK(alarms.fallback[0] == RouteMember{3, 1});

    const RouteService& fhir = t.services[1];
    CHECK(fhir.id == 1);
    CHECK(fhir.class_id == kClassClinical);
    REQUIRE(fhir.primary.size() == 2);
    CHECK(fhir.primary[0].weight == 1);
    CHECK(fhir.primary[1].weight == 4);

    // life-critical trips at the first hard failure, clinical at the third.
    CHECK(backendAt(t, 10, 7000)->threshold == 1);
    CHECK(backendAt(t, 10, 7000)->flags == 0);  // tcp: connection evidence only
    CHECK(backendAt(t, 10, 8080)->threshold == 3);
    CHECK(backendAt(t, 10, 8080)->flags == kCountHttp5xx);
    CHECK(backendAt(t, 10, 8080)->service == "fhir");
}

TEST_CASE("route tables: a re-apply keeps every id; a changed policy keeps the ids of what stays")
{
    const RouteTables first = compileRouteTables(validated(kTwoServices));
    CHECK(compileRouteTables(validated(kTwoServices), routeIdsOf(first)) == first);

    // alarms goes, fhir moves to the front and gains a backend.
    const std::string changed = R"(
schema_version: 1
name: routes
services:
  - name: fhir
    address: 198.18.0.101:8080
    protocol: http
    class: clinical
    thresholds: {consecutive_failures: 5}
    backends:
      primary: [198.18.0.12:8080, 198.18.0.11:8080, 198.18.0.10:8080]
)";
    const RouteTables second = compileRouteTables(validated(changed), routeIdsOf(first));
    REQUIRE(second.services.size() == 1);
    CHECK(second.services[0].id == first.services[1].id);
    CHECK(backendAt(second, 10, 8080)->id == backendAt(first, 10, 8080)->id);
    CHECK(backendAt(second, 11, 8080)->id == backendAt(first, 11, 8080)->id);
    // The new backend takes the lowest id no kept backend owns.
    const std::uint32_t fresh = backendAt(second, 12, 8080)->id;
    CHECK(fresh != backendAt(first, 10, 8080)->id);
    CHECK(fresh != backendAt(first, 11, 8080)->id);
    CHECK(fresh == 1);
    CHECK(backendAt(second, 12, 8080)->threshold == 5);
}

TEST_CASE("route tables: a backend shared by two services takes the lower threshold and both checks")
{
    const std::string shared = R"(
schema_version: 1
name: shared
services:
  - name: lab
    address: 198.18.0.100:2575
    protocol: mllp
    class: emergency
    backends:
      primary: [198.18.0.10:2575]
  - name: lab-http
    address: 198.18.0.101:2575
    protocol: http
    class: emergency
    thresholds: {consecutive_failures: 4}
    backends:
      primary: [198.18.0.10:2575]
)";
    const RouteTables t = compileRouteTables(validated(shared));
    REQUIRE(t.backends.size() == 1);
    CHECK(t.backends[0].threshold == 1);
    CHECK(t.backends[0].flags == (kCountHttp5xx | kCountMllpNack));
    CHECK(t.services[0].primary[0].backend_id == t.services[1].primary[0].backend_id);
}

TEST_CASE("route tables: more backends in a pool than the kernel holds is refused, naming the field")
{
    std::string many = R"(
schema_version: 1
name: many
services:
  - name: big
    address: 198.18.0.100:80
    protocol: http
    class: clinical
    backends:
      primary: [)";
    for (int i = 0; i < 17; ++i)
        many += (i ? ", " : "") + std::string("198.18.0.") + std::to_string(10 + i) + ":80";
    many += "]\n";
    CHECK_THROWS_WITH_AS(compileRouteTables(validated(many)), doctest::Contains("services[0].backends.primary"),
                         RouteTablesError);
}

TEST_CASE("breaker thresholds: policy value, else 1 for life-critical and emergency, else 3")
{
    CHECK(breakerThreshold(kClassLifeCritical, 0) == 1);
    CHECK(breakerThreshold(kClassEmergency, 0) == 1);
    CHECK(breakerThreshold(kClassClinical, 0) == 3);
    CHECK(breakerThreshold(kClassBulk, 0) == 3);
    CHECK(breakerThreshold(kClassLifeCritical, 4) == 4);
}
