// Active health probes: what is sent, and which answers restore a backend.
#include <doctest/doctest.h>

#include "core/probe.h"

using namespace shhim::core;

TEST_CASE("probe settings: defaults, and the policy's values when given")
{
    shhim::v1::Service service;
    ProbeSettings defaults = probeSettings(service);
    CHECK(defaults.http_path == "/");
    CHECK(defaults.interval == std::chrono::milliseconds(1000));
    CHECK(defaults.timeout == std::chrono::milliseconds(500));
    CHECK(defaults.successes == 3);

    service.mutable_probe()->set_http_path("/healthz");
    service.mutable_probe()->set_successes(5);
    service.mutable_probe()->set_timeout_ms(200);
    const ProbeSettings given = probeSettings(service);
    CHECK(given.http_path == "/healthz");
    CHECK(given.successes == 5);
    CHECK(given.timeout == std::chrono::milliseconds(200));
    CHECK(given.interval == std::chrono::milliseconds(1000));
}

TEST_CASE("HTTP probe: request line and verdicts from the status line")
{
    const std::string request = httpProbeRequest("198.18.0.10:8080", "/healthz");
    CHECK(request.rfind("GET /healthz HTTP/1.1\r\nHost: 198.18.0.10:8080\r\n", 0) == 0);
    CHECK(request.find("Connection: close\r\n\r\n") != std::string::npos);

    CHECK(judgeHttpProbe("HTTP/1.1 200 OK\r\n").verdict == ProbeVerdict::Pass);
    CHECK(judgeHttpProbe("HTTP/1.0 302 Found\r\nLocation: /\r\n").verdict == ProbeVerdict::Pass);
    const ProbeJudgement unavailable = judgeHttpProbe("HTTP/1.1 503 Service Unavailable\r\n");
    CHECK(unavailable.verdict == ProbeVerdict::Fail);
    CHECK(unavailable.detail == "HTTP 503");
    CHECK(judgeHttpProbe("HTTP/1.1 404 Not Found\r\n").verdict == ProbeVerdict::Fail);
    CHECK(judgeHttpProbe("HTTP/1.1 20").verdict == ProbeVerdict::NeedMore);
    CHECK(judgeHttpProbe("SSH-2.0-OpenSSH\r\n").verdict == ProbeVerdict::Fail);
    CHECK(judgeHttpProbe("HTTP/1.1 2x0 OK\r\n").verdict == ProbeVerdict::Fail);
}

TEST_CASE("MLLP probe: a framed NMD^N02, judged by MSA-1")
{
    const std::string frame = mllpProbeRequest("P42", "20261123120000");
    REQUIRE(frame.size() > 3);
    CHECK(frame.front() == '\x0b');
    CHECK(frame.substr(frame.size() - 2) == "\x1c\x0d");
    CHECK(frame.find("|NMD^N02|P42|P|2.5\r") != std::string::npos);

    const auto ack = [](const std::string& code) {
        return "\x0bMSH|^~\\&|LAB|LIS|SHHIM|PROBE|20261123||ACK|A1|P|2.5\rMSA|" + code + "|P42\r\x1c\x0d";
    };
    CHECK(judgeMllpProbe(ack("AA")).verdict == ProbeVerdict::Pass);
    CHECK(judgeMllpProbe(ack("CA")).verdict == ProbeVerdict::Pass);
    const ProbeJudgement error = judgeMllpProbe(ack("AE"));
    CHECK(error.verdict == ProbeVerdict::Fail);
    CHECK(error.detail == "MSA AE");
    CHECK(judgeMllpProbe(ack("AR")).verdict == ProbeVerdict::Fail);
    CHECK(judgeMllpProbe("\x0bMSH|^~\\&|LAB").verdict == ProbeVerdict::NeedMore);
    CHECK(judgeMllpProbe("\x0bMSH|^~\\&|LAB\r\x1c\x0d").verdict == ProbeVerdict::Fail);
}
