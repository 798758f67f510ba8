// Packet capture, the pure parts: the pcap bytes shhimctl writes
// (core/pcap.h) and the kernel filter a CaptureRequest becomes (core/capture.h).
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/capture.h"
#include "core/pcap.h"
#include "test_support.h"

using namespace shhim::core;
using shhim::test::networkPort;

namespace {

std::vector<unsigned> bytesOf(const std::string& s)
{
    std::vector<unsigned> out;
    for (const char c : s)
        out.push_back(static_cast<unsigned char>(c));
    return out;
}

shhim::v1::Policy policyWithFhir()
{
    shhim::v1::Policy policy;
    auto* service = policy.add_services();
    service->set_name("fhir");
    service->set_address("198.18.0.100:8080");
    service->mutable_backends()->add_primary("198.18.0.10:8080");
    service->mutable_backends()->add_primary("198.18.0.11:8080");
    service->mutable_backends()->add_fallback("198.18.0.12:8081");
    auto* v6 = policy.add_services();
    v6->set_name("lab");
    v6->set_address("[2001:2::10]:2575");
    v6->mutable_backends()->add_primary("[2001:2::11]:2575");
    return policy;
}

std::array<std::uint8_t, 16> mappedV4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d)
{
    return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

bool sameAddr(const std::uint8_t (&addr)[16], const std::array<std::uint8_t, 16>& want)
{
    return std::memcmp(addr, want.data(), 16) == 0;
}

}  // namespace

TEST_CASE("pcap global header: little-endian magic, version 2.4, snaplen, LINKTYPE_ETHERNET")
{
    CHECK(bytesOf(pcapFileHeader(PcapPrecision::Nanos, 192)) ==
          std::vector<unsigned>{0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 0, 0, 1, 0, 0, 0});
    CHECK(bytesOf(pcapFileHeader(PcapPrecision::Micros, 65535)) ==
          std::vector<unsigned>{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0});
}

TEST_CASE("pcap record: seconds, fraction at the file's precision, incl_len, orig_len, bytes")
{
    const std::int64_t t = 1'700'000'000'123'456'789;  // 0x6553f100 s
    const std::string headers("\x01\x02\x03", 3);
    const std::string nanos = pcapRecord(PcapPrecision::Nanos, t, 1514, headers);
    CHECK(bytesOf(nanos) == std::vector<unsigned>{0x00, 0xf1, 0x53, 0x65,  // seconds
                                                  0x15, 0xcd, 0x5b, 0x07,  // 123456789 ns
                                                  3, 0, 0, 0,              // incl_len
                                                  0xea, 0x05, 0, 0,        // orig_len 1514
                                                  1, 2, 3});
    const std::string micros = pcapRecord(PcapPrecision::Micros, t, 1514, headers);
    CHECK(bytesOf(micros.substr(4, 4)) == std::vector<unsigned>{0x40, 0xe2, 0x01, 0x00});  // 123456 us
    // orig_len is never below incl_len.
    CHECK(bytesOf(pcapRecord(PcapPrecision::Nanos, t, 1, headers).substr(12, 4)) ==
          std::vector<unsigned>{3, 0, 0, 0});
}

TEST_CASE("capture filter: count, port, host, interface")
{
    shhim::v1::CaptureRequest request;
    request.set_count(20);
    request.set_port(8080);
    auto config = captureConfig(request, nullptr, 7);
    CHECK(config.remaining == 20);
    CHECK(config.ifindex == 7);
    REQUIRE(config.n_matches == 1);
    CHECK(config.matches[0].port == networkPort(8080));
    CHECK(config.matches[0].match_addr == 0);

    request.set_port(0);
    request.set_host("198.18.0.11");
    config = captureConfig(request, nullptr, 0);
    REQUIRE(config.n_matches == 1);
    CHECK(config.matches[0].match_addr == 1);
    CHECK(config.matches[0].port == 0);
    CHECK(sameAddr(config.matches[0].addr, mappedV4(198, 18, 0, 11)));

    request.set_host("[2001:2::10]");
    config = captureConfig(request, nullptr, 0);
    std::array<std::uint8_t, 16> v6{0x20, 0x01, 0, 2};
    v6[15] = 0x10;
    CHECK(sameAddr(config.matches[0].addr, v6));

    request.clear_host();
    config = captureConfig(request, nullptr, 0);
    CHECK(config.n_matches == 0);  // no filter: every packet
}

TEST_CASE("capture filter: a service is its address and every backend")
{
    const auto policy = policyWithFhir();
    shhim::v1::CaptureRequest request;
    request.set_count(5);
    request.set_service("fhir");
    const auto config = captureConfig(request, &policy, 0);
    REQUIRE(config.n_matches == 4);
    CHECK(sameAddr(config.matches[0].addr, mappedV4(198, 18, 0, 100)));
    CHECK(config.matches[0].port == networkPort(8080));
    CHECK(sameAddr(config.matches[3].addr, mappedV4(198, 18, 0, 12)));
    CHECK(config.matches[3].port == networkPort(8081));
    for (std::uint32_t i = 0; i < config.n_matches; ++i)
        CHECK(config.matches[i].match_addr == 1);
}

TEST_CASE("capture filter: bad requests name what is wrong")
{
    const auto policy = policyWithFhir();
    shhim::v1::CaptureRequest request;
    request.set_count(0);
    CHECK_THROWS_WITH_AS(captureConfig(request, nullptr, 0), "count 0 is outside 1..100000", CaptureRequestError);
    request.set_count(kMaxCaptureCount + 1);
    CHECK_THROWS_AS(captureConfig(request, nullptr, 0), CaptureRequestError);
    request.set_count(1);
    request.set_host("198.18.0.1");
    request.set_port(80);
    CHECK_THROWS_WITH_AS(captureConfig(request, nullptr, 0), "give at most one of service, host and port",
                         CaptureRequestError);
    request.set_port(0);
    request.set_host("pacs.example");
    CHECK_THROWS_WITH_AS(captureConfig(request, nullptr, 0), "host 'pacs.example' is not an IPv4 or IPv6 address",
                         CaptureRequestError);
    request.clear_host();
    request.set_port(70000);
    CHECK_THROWS_AS(captureConfig(request, nullptr, 0), CaptureRequestError);
    request.set_port(0);
    request.set_service("pacs");
    CHECK_THROWS_WITH_AS(captureConfig(request, &policy, 0),
                         "service 'pacs' is not in the applied policy (services: fhir, lab)", CaptureRequestError);
    CHECK_THROWS_AS(captureConfig(request, nullptr, 0), CaptureRequestError);
}

TEST_CASE("captured sample -> CapturedPacket: Unix time, direction, exactly cap_len bytes")
{
    shhim_capture_sample sample{};
    sample.ts_ns = 5'000;
    sample.ifindex = 3;
    sample.wire_len = 1514;
    sample.cap_len = 66;
    sample.hook = SHHIM_HOOK_TC_EGRESS;
    for (int i = 0; i < SHHIM_CAPTURE_MAX_BYTES; ++i)
        sample.data[i] = static_cast<std::uint8_t>(i);
    const auto packet = toCapturedPacket(sample, 1'000'000, 4);
    CHECK(packet.time_unix_ns() == 1'005'000);
    CHECK(packet.direction() == "egress");
    CHECK(packet.wire_length() == 1514);
    CHECK(packet.seq() == 4);
    REQUIRE(packet.headers().size() == 66);
    CHECK(static_cast<unsigned char>(packet.headers()[65]) == 65);
    sample.hook = SHHIM_HOOK_XDP_INGRESS;
    CHECK(toCapturedPacket(sample, 0, 1).direction() == "ingress");
}
