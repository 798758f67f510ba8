#include "requests.hpp"

#include "support/mllp.hpp"

#include <unistd.h>

#include <ctime>

namespace shhim::loadgen {

namespace {

std::string hl7_timestamp()
{
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[16];
    std::strftime(text, sizeof text, "%Y%m%d%H%M%S", &utc);
    return text;
}

} // namespace

RequestFactory::RequestFactory(const Options& options)
    : options_(options), host_(options.target.to_string()),
      id_prefix_("LG" + std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr) % 100000) + "-")
{
}

PlannedRequest RequestFactory::make(std::uint64_t index) const
{
    return options_.protocol == Protocol::Http ? make_http(index) : make_mllp(index);
}

PlannedRequest RequestFactory::make_http(std::uint64_t index) const
{
    PlannedRequest request;
    if (options_.mix)
        request.requested = options_.mix->key_at(index);
    auto& bytes = request.bytes;
    bytes = options_.method + " " + options_.path + " HTTP/1.1\r\nHost: " + host_ +
            "\r\nUser-Agent: shhim-loadgen\r\nAccept: application/fhir+json\r\n";
    if (!request.requested.empty())
        bytes += "X-Shhim-Status: " + request.requested + "\r\n";
    if (options_.connection == ConnectionMode::New)
        bytes += "Connection: close\r\n";
    if (!options_.body.empty() || options_.method == "POST" || options_.method == "PUT")
        bytes += "Content-Type: application/fhir+json\r\nContent-Length: " + std::to_string(options_.body.size()) +
                 "\r\n";
    bytes += "\r\n";
    bytes += options_.body;
    return request;
}

PlannedRequest RequestFactory::make_mllp(std::uint64_t index) const
{
    PlannedRequest request;
    if (options_.mix)
        request.requested = options_.mix->key_at(index);
    request.control_id = id_prefix_ + std::to_string(index);
    // A synthetic ORU^R01 (heart rate): no real patient data, ever.
    std::string message = "MSH|^~\\&|SHHIM-LOADGEN|WARD|SHHIM-TESTSVC|LAB|" + hl7_timestamp() +
                          "||ORU^R01^ORU_R01|" + request.control_id + "|P|2.5\r" + "PID|1||SYN" +
                          std::to_string(index) + "^^^SHHIM^MR||SYNTHETIC^TEST||19700101|U\r" +
                          "OBR|1||" + request.control_id + "|8867-4^Heart rate^LN\r" +
                          "OBX|1|NM|8867-4^Heart rate^LN||72|/min|||||F\r";
    if (!request.requested.empty())
        message += "ZFA|" + request.requested + "\r"; // test-only: asks shhim-testsvc for this ack code
    request.bytes = tools::mllp_frame(message);
    return request;
}

} // namespace shhim::loadgen
