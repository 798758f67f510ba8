// shhimctl's printers for `observe` and `backends --history`.
#include <doctest/doctest.h>

#include <string>

#include "cli/printers.h"

using namespace shhim::cli;

TEST_CASE("durations: units ms s m h d, combined; bare numbers and junk refused")
{
    CHECK(parseDurationNs("500ms") == 500'000'000);
    CHECK(parseDurationNs("30s") == 30'000'000'000);
    CHECK(parseDurationNs("5m") == 300'000'000'000);
    CHECK(parseDurationNs("1h30m") == 5'400'000'000'000);
    CHECK(parseDurationNs("2d") == 172'800'000'000'000);
    CHECK_FALSE(parseDurationNs(""));
    CHECK_FALSE(parseDurationNs("30"));
    CHECK_FALSE(parseDurationNs("5x"));
    CHECK_FALSE(parseDurationNs("-5m"));
    CHECK_FALSE(parseDurationNs("m"));
    CHECK_FALSE(parseDurationNs("99999999999999999d"));
}

TEST_CASE("observe: compact line and JSON line")
{
    shhim::v1::FeedEvent entry;
    entry.set_seq(7);
    entry.set_time_unix_ns(1'700'000'000'123'000'000);
    entry.set_type("failure");
    entry.set_summary("refused 198.18.0.1:40000 -> 198.18.0.10:8080 tcp");
    entry.set_service("fhir");
    entry.set_priority_class("clinical");
    CHECK(formatFeedEvent(entry) ==
          "2023-11-14T22:13:20.123Z  failure  refused 198.18.0.1:40000 -> 198.18.0.10:8080 tcp  service=fhir "
          "class=clinical\n");
    const std::string json = toJsonLine(entry);
    CHECK(json.back() == '\n');
    CHECK(json.find('\n') == json.size() - 1);  // one line
    CHECK(json.find(R"("seq":"7")") != std::string::npos);
    CHECK(json.find(R"("type":"failure")") != std::string::npos);
    CHECK(json.find(R"("priority_class":"clinical")") != std::string::npos);
}

TEST_CASE("history: one block per backend with sparklines, newest and largest values")
{
    shhim::v1::History history;
    history.set_step_seconds(1);
    history.set_kept_seconds(900);
    auto* s = history.add_backends();
    s->mutable_endpoint()->set_address("198.18.0.10");
    s->mutable_endpoint()->set_port(8080);
    s->set_protocol("tcp");
    s->set_service("fhir");
    s->set_start_unix_seconds(1'700'000'000);
    for (int i = 0; i < 120; ++i) {
        s->add_requests_per_second(i < 60 ? 10 : 20);
        s->add_errors_per_second(i == 100 ? 4 : 0);
        s->add_responses(i % 2 == 0 ? 10 : 0);
        s->add_p50_seconds(i % 2 == 0 ? 0.040 : 0);
        s->add_p99_seconds(i % 2 == 0 ? (i == 50 ? 0.400 : 0.080) : 0);
    }
    const std::string text = formatHistory(history);
    CAPTURE(text);
    CHECK(text.find("198.18.0.10:8080 tcp  service fhir  (2m 00s from 2023-11-14T22:13:20.000Z, 1 s points)") !=
          std::string::npos);
    CHECK(text.find("req/s") != std::string::npos);
    CHECK(text.find("now 20.0/s, max 20.0/s") != std::string::npos);
    CHECK(text.find("now 0.0/s, max 4.0/s") != std::string::npos);
    // p99: newest measured second (118) is 80 ms; the worst was 400 ms.
    CHECK(text.find("now 80.0 ms, max 400.0 ms") != std::string::npos);
    CHECK(text.find("\xe2\x96\x88") != std::string::npos);  // a full bar somewhere

    CHECK(formatHistory(shhim::v1::History{}).starts_with("no history yet"));
}
