#include "agent/http_server.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <stdexcept>
#include <thread>

#include "agent/http_assets.h"
#include "agent/http_views.h"

namespace shhim::agent {
namespace {

// Prometheus text format version 0.0.4.
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kJsonContentType = "application/json";
// The page loads nothing but its own files and JSON from this listener.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::string toJson(const google::protobuf::Message& message)
{
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string json;
    const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
    if (!status.ok())
        throw std::runtime_error("cannot convert " + message.GetTypeName() + " to JSON: " +
                                 std::string(status.message()));
    return json;
}

// Optional integer query parameter; throws std::invalid_argument naming it.
template <typename Int>
Int queryInt(const httplib::Request& request, const char* name)
{
    if (!request.has_param(name))
        return 0;
    const std::string text = request.get_param_value(name);
    Int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        throw std::invalid_argument(std::string("query parameter ") + name + "=" + text + " is not an integer");
    return value;
}

void plain(httplib::Response& response, int status, const std::string& text)
{
    response.status = status;
    response.set_content(text + "\n", "text/plain; charset=utf-8");
}

bool isLoopback(const std::string& host) { return host == "127.0.0.1" || host == "::1" || host == "localhost"; }

// The Host header without its port: "127.0.0.1", "::1", "localhost".
std::string hostOf(const std::string& header)
{
    if (!header.empty() && header.front() == '[') {
        const auto close = header.find(']');
        return close == std::string::npos ? header : header.substr(1, close - 1);
    }
    return header.substr(0, header.find(':'));
}

// A page on some web site, in a browser on this host, can point its own
// name at 127.0.0.1 (DNS rebinding) and read what the listener serves.
// On loopback only the loopback names are accepted as Host, which such a
// page cannot send.
bool hostAllowed(const ListenAddress& listen, const httplib::Request& request)
{
    if (!isLoopback(listen.host))
        return true;
    return isLoopback(hostOf(request.get_header_value("Host")));
}

}  // namespace

ListenAddress parseListenAddress(const std::string& text)
{
    const auto invalid = [&] {
        return std::invalid_argument("listen address '" + text +
                                     "' is not HOST:PORT or [IPV6]:PORT (e.g. 127.0.0.1:9464)");
    };
    ListenAddress out;
    std::string port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find("]:");
        if (close == std::string::npos)
            throw invalid();
        out.host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string::npos || text.find(':') != colon)
            throw invalid();
        out.host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (out.host.empty() || ec != std::errc() || end != port.data() + port.size() || out.port <= 0 ||
        out.port > 65535)
        throw invalid();
    return out;
}

struct HttpServer::Impl {
    ListenAddress listen;
    ApiContext context;
    httplib::Server server;
    std::thread thread;

    Impl(ListenAddress l, ApiContext c) : listen(std::move(l)), context(std::move(c)) {}

    void routes()
    {
        // Read-only: nothing but GET (and HEAD, which httplib answers from
        // the GET handlers) reaches a handler.
        server.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
            if (!hostAllowed(listen, request)) {
                plain(response, 421, "Host " + request.get_header_value("Host") +
                                         " is not this listener's (use 127.0.0.1, localhost or [::1])");
                return httplib::Server::HandlerResponse::Handled;
            }
            if (request.method == "GET" || request.method == "HEAD")
                return httplib::Server::HandlerResponse::Unhandled;
            response.set_header("Allow", "GET, HEAD");
            plain(response, 405, "shhimd's HTTP listener is read-only: GET only");
            return httplib::Server::HandlerResponse::Handled;
        });
        server.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-store"}});

        server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
            response.set_content(metricsExposition(context), kMetricsContentType);
        });
        server.Get("/api/v1/dashboard", [this](const httplib::Request& request, httplib::Response& response) {
            shhim::v1::DashboardRequest query;
            query.set_events_after_seq(queryInt<std::uint64_t>(request, "events_after_seq"));
            query.set_series_after_unix_seconds(queryInt<std::int64_t>(request, "series_after_unix_seconds"));
            query.set_top_flows(queryInt<std::uint32_t>(request, "top_flows"));
            response.set_content(toJson(dashboardView(context, query)), kJsonContentType);
        });
        // The routing picture alone, as `shhimctl services -o json` prints it.
        server.Get("/api/v1/services", [this](const httplib::Request& request, httplib::Response& response) {
            const std::string only = request.has_param("service") ? request.get_param_value("service") : "";
            const shhim::v1::ServiceList list = servicesView(context, only);
            if (!only.empty() && list.services().empty()) {
                plain(response, 404, "no service " + only + " in the applied policy");
                return;
            }
            response.set_content(toJson(list), kJsonContentType);
        });
        server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
            response.set_content("{\"status\":\"ok\"}", kJsonContentType);
        });
        for (const HttpAsset& asset : dashboardAssets()) {
            server.Get(std::string(asset.path), [asset](const httplib::Request&, httplib::Response& response) {
                response.set_header("Content-Security-Policy", kContentSecurityPolicy);
                response.set_header("X-Frame-Options", "DENY");
                response.set_content(asset.body.data(), asset.body.size(), std::string(asset.content_type).c_str());
            });
        }

        server.set_exception_handler(
            [](const httplib::Request& request, httplib::Response& response, std::exception_ptr failure) {
                try {
                    std::rethrow_exception(failure);
                } catch (const std::invalid_argument& e) {
                    plain(response, 400, e.what());
                } catch (const std::exception& e) {
                    spdlog::error("HTTP {} {}: {}", request.method, request.path, e.what());
                    plain(response, 500, std::string(request.path) + ": " + e.what());
                } catch (...) {
                    plain(response, 500, std::string(request.path) + ": unknown error");
                }
            });
    }
};

HttpServer::HttpServer(const ListenAddress& address, ApiContext context)
    : impl_(std::make_unique<Impl>(address, std::move(context)))
{
    impl_->routes();
    if (!impl_->server.bind_to_port(address.host, address.port))
        throw std::runtime_error("cannot listen for HTTP on " + address.host + ":" + std::to_string(address.port) +
                                 " (address in use, or not an address of this host)");
    impl_->thread = std::thread([impl = impl_.get()] { impl->server.listen_after_bind(); });
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop()
{
    if (!impl_ || !impl_->thread.joinable())
        return;
    impl_->server.stop();
    impl_->thread.join();
}

}  // namespace shhim::agent
