#include "agent/server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <net/if.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "agent/audit_log.h"
#include "agent/class_control.h"
#include "agent/policy_apply.h"
#include "agent/router.h"
#include "agent/http_views.h"
#include "core/capture.h"
#include "core/feed.h"
#include "core/telemetry.h"
#include "datapath/capture.h"
#include "datapath/error.h"
#include "shhim.grpc.pb.h"

namespace shhim::agent {
namespace {

std::int64_t clockNs(clockid_t clock)
{
    timespec ts = {};
    ::clock_gettime(clock, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Kernel timestamps are CLOCK_MONOTONIC; the API speaks Unix time.
std::int64_t monoToUnixNow()
{
    const std::int64_t mono = clockNs(CLOCK_MONOTONIC);
    const std::int64_t real = clockNs(CLOCK_REALTIME);
    return core::monoToUnixOffsetNs(real, mono);
}

grpc::Status internalError(const std::string& rpc, const std::exception& e)
{
    return grpc::Status(grpc::StatusCode::INTERNAL, rpc + ": " + e.what());
}

class ShhimService final : public shhim::v1::Shhim::Service {
public:
    explicit ShhimService(ApiContext context) : context_(std::move(context)) {}

    grpc::Status GetStatus(grpc::ServerContext*, const v1::StatusRequest*, v1::Status* out) override
    {
        try {
            *out = statusView(context_);
            return grpc::Status::OK;
        } catch (const std::exception& e) {
            return internalError("GetStatus", e);
        }
    }

    grpc::Status ListFlows(grpc::ServerContext*, const v1::FlowsRequest* request, v1::FlowList* out) override
    {
        const auto sort = core::parseFlowSort(request->sort());
        if (!sort)
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "unknown sort '" + request->sort() + "' (bytes, packets, latency, errors)");
        try {
            const std::int64_t offset = monoToUnixNow();
            const auto records = context_.datapath.maps().flows();
            std::vector<v1::Flow> flows;
            flows.reserve(records.size());
            for (const auto& record : records)
                flows.push_back(core::toFlow(record.key, record.flow, offset));
            out->set_total(flows.size());
            core::sortAndTrim(flows, *sort, request->top());
            for (auto& flow : flows)
                *out->add_flows() = std::move(flow);
            return grpc::Status::OK;
        } catch (const std::exception& e) {
            return internalError("ListFlows", e);
        }
    }

    grpc::Status ListBackends(grpc::ServerContext*, const v1::BackendsRequest*, v1::BackendList* out) override
    {
        try {
            const std::int64_t offset = monoToUnixNow();
            for (const auto& record : context_.datapath.maps().backends()) {
                v1::Backend backend = core::toBackend(record.endpoint, record.backend, offset);
                // Rates exist once the entry has been seen by two ticks.
                if (const auto rates = context_.state.ratesOf(record.endpoint)) {
                    backend.set_request_rate_per_second(rates->requests_per_second);
                    backend.set_error_rate_per_second(rates->errors_per_second);
                }
                *out->add_backends() = std::move(backend);
            }
            return grpc::Status::OK;
        } catch (const std::exception& e) {
            return internalError("ListBackends", e);
        }
    }

    grpc::Status ListEvents(grpc::ServerContext*, const v1::EventsRequest* request, v1::EventList* out) override
    {
        try {
            const std::int64_t offset = monoToUnixNow();
            for (const auto& event : context_.state.newestEvents(request->last()))
                *out->add_events() = core::toEvent(event, offset);
            return grpc::Status::OK;
        } catch (const std::exception& e) {
            return internalError("ListEvents", e);
        }
    }

    grpc::Status ListClasses(grpc::ServerContext*, const v1::ClassesRequest*, v1::ClassReport* out) override
    {
        if (!context_.classes)
            return grpc::Status(grpc::StatusCode::UNAVAILABLE, "priority classes are not served by this agent");
        try {
            *out = context_.classes->report();
            return grpc::Status::OK;
        } catch (const std::exception& e) {
            return internalError("ListClasses", e);
        }
    }

    grpc::Status SetStress(grpc::ServerContext*, const v1::StressRequest* request, v1::StressStatus* out) override
    {
        if (!context_.classes)
            return grpc::Status(grpc::StatusCode::UNAVAILABLE, "priority classes are not served by this agent");
        try {
            // The socket is 0600: whoever calls runs as its owner, this process's uid (or holds
            // CAP_DAC_OVERRIDE). Peer credentials per call need SO_PEERCRED, which gRPC does not hand over.
            const std::string actor = "uid " + std::to_string(::geteuid()) + " (agent socket owner)";
            *out = context_.classes->setStress(request->mode(), actor);
            spdlog::info("stress mode set to {} by {} (active: {})", request->mode(), actor,
                         out->active() ? "yes" : "no");
            return grpc::Status::OK;
        } catch (const std::invalid_argument& e) {
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        } catch (const std::exception& e) {
            return internalError("SetStress", e);
        }
    }

    grpc::Status GetPolicy(grpc::ServerContext*, const v1::GetPolicyRequest*, v1::PolicyState* out) override
    {
        *out = policyState(context_.state.appliedPolicy());
        return grpc::Status::OK;
    }

    // An invalid policy is an answer listing its errors, not an RPC failure:
    // the call worked, the policy did not pass.
    grpc::Status ApplyPolicy(grpc::ServerContext*, const v1::ApplyPolicyRequest* request,
                             v1::ApplyPolicyResponse* out) override
    {
        try {
            const std::string& file = request->file_name();
            const PolicyPtr candidate = candidateFromRequest(*request, *out);
            const PolicyPtr current = context_.state.appliedPolicy();
            if (!candidate) {
                std::vector<std::string> errors;
                for (const auto& issue : out->errors())
                    errors.push_back(core::formatIssue(file, core::fromProto(issue)));
                for (const auto& line : errors)
                    spdlog::warn("policy apply: {}", line);
                notePolicy(context_.state.observability(), "rejected", file, nullptr, joinedErrors(errors));
                spdlog::warn("policy apply: {} not applied ({} errors); {}", file, out->errors_size(),
                             current ? "keeping " + describePolicy(*current) : std::string("still no policy"));
                return grpc::Status::OK;
            }
            if (current && current->validated.version == candidate->validated.version) {
                out->set_unchanged(true);
                spdlog::info("policy apply: {} unchanged", describePolicy(*current));
                return grpc::Status::OK;
            }
            if (context_.applier) {
                try {
                    context_.applier->apply(candidate);
                } catch (const PolicyApplyError& e) {
                    notePolicy(context_.state.observability(), "rejected", file, nullptr, e.what());
                    spdlog::error("policy apply: {}; keeping {}", e.what(),
                                  current ? describePolicy(*current) : std::string("no policy"));
                    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, e.what());
                }
            } else {
                context_.state.setPolicy(candidate);
            }
            notePolicy(context_.state.observability(), "reloaded", file, context_.state.appliedPolicy());
            spdlog::info("policy apply: applied {}", describePolicy(*candidate));
            return grpc::Status::OK;
        } catch (const std::exception& e) {
            return internalError("ApplyPolicy", e);
        }
    }

    grpc::Status ListServices(grpc::ServerContext*, const v1::ServicesRequest* request, v1::ServiceList* out) override
    {
        if (!context_.router)
            return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this agent does not route");
        try {
            *out = context_.router->services(request->service());
            if (!request->service().empty() && out->services().empty())
                return grpc::Status(grpc::StatusCode::NOT_FOUND,
                                    "no service '" + request->service() + "' in the applied policy");
            return grpc::Status::OK;
        } catch (const std::exception& e) {
            return internalError("ListServices", e);
        }
    }

    grpc::Status Drain(grpc::ServerContext*, const v1::DrainRequest* request, v1::RoutingResponse* out) override
    {
        return routingCall("Drain", out, [&] {
            std::optional<std::chrono::milliseconds> duration;
            if (request->for_ms() > 0)
                duration = std::chrono::milliseconds(request->for_ms());
            return context_.router->drain(request->service(), request->backend(), request->reason(), caller(),
                                          duration);
        });
    }

    grpc::Status Restore(grpc::ServerContext*, const v1::RestoreRequest* request, v1::RoutingResponse* out) override
    {
        return routingCall("Restore", out, [&] {
            const std::string reason = request->reason().empty() ? "restored by hand" : request->reason();
            return context_.router->restore(request->service(), request->backend(), reason, caller());
        });
    }

    grpc::Status Reroute(grpc::ServerContext*, const v1::RerouteRequest* request, v1::RoutingResponse* out) override
    {
        return routingCall("Reroute", out, [&] {
            std::optional<std::chrono::milliseconds> duration;
            if (request->for_ms() > 0)
                duration = std::chrono::milliseconds(request->for_ms());
            return context_.router->reroute(request->service(), request->to(), request->reason(), caller(), duration);
        });
    }

    grpc::Status Explain(grpc::ServerContext*, const v1::ExplainRequest* request, v1::AnomalyExplanation* out) override
    {
        if (!context_.router)
            return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this agent does not route");
        try {
            *out = context_.router->explain(request->service(), request->backend());
            return grpc::Status::OK;
        } catch (const std::invalid_argument& e) {
            return grpc::Status(grpc::StatusCode::NOT_FOUND, e.what());
        } catch (const std::exception& e) {
            return internalError("Explain", e);
        }
    }

    grpc::Status AuditTail(grpc::ServerContext* call, const v1::AuditTailRequest* request,
                           grpc::ServerWriter<v1::AuditRecord>* writer) override
    {
        if (!context_.audit)
            return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this agent keeps no audit trail");
        const std::size_t last = request->last() == 0 ? 10 : request->last();
        std::uint64_t cursor = 0;
        for (const auto& record : context_.audit->newest(last)) {
            if (!writer->Write(record))
                return grpc::Status::OK;
            cursor = record.seq();
        }
        if (cursor == 0)
            cursor = context_.audit->lastSeq();
        while (request->follow() && !call->IsCancelled() && !context_.state.observability().feed.closed()) {
            for (const auto& record : context_.audit->after(cursor, std::chrono::milliseconds(250))) {
                if (!writer->Write(record))
                    return grpc::Status::OK;
                cursor = record.seq();
            }
        }
        return grpc::Status::OK;
    }

    grpc::Status Observe(grpc::ServerContext* call, const v1::ObserveRequest* request,
                         grpc::ServerWriter<v1::FeedEvent>* writer) override
    {
        std::optional<core::FeedFilter> filter;
        try {
            filter = core::FeedFilter::fromRequest(*request);
        } catch (const std::invalid_argument& e) {
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        }
        // How often a follower with nothing to read checks whether its
        // client left or the agent is stopping.
        constexpr auto kIdleCheck = std::chrono::milliseconds(250);
        const EventFeed& feed = context_.state.observability().feed;
        std::uint64_t cursor = 0;  // newest seq handled
        while (true) {
            for (const auto& entry : feed.after(cursor)) {
                cursor = entry.seq();
                if (filter->matches(entry) && !writer->Write(entry))
                    return grpc::Status::OK;  // the client went away
            }
            if (!request->follow())
                return grpc::Status::OK;
            while (!feed.waitAfter(cursor, kIdleCheck))
                if (call->IsCancelled() || feed.closed())
                    return grpc::Status::OK;
        }
    }

    grpc::Status GetHistory(grpc::ServerContext*, const v1::HistoryRequest* request, v1::History* out) override
    {
        try {
            const auto filter = core::BackendFilter::parse(request->backend());
            *out = context_.state.observability().history.history(request->after_unix_seconds(), filter);
            return grpc::Status::OK;
        } catch (const std::invalid_argument& e) {
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        } catch (const std::exception& e) {
            return internalError("GetHistory", e);
        }
    }

    // Packet samples: arm, stream, disarm. The kernel sends exactly `count`
    // samples; the loop ends when all are written, the client cancels or
    // hangs up, or the agent stops (gRPC cancels the call).
    grpc::Status Capture(grpc::ServerContext* call, const v1::CaptureRequest* request,
                         grpc::ServerWriter<v1::CapturedPacket>* writer) override
    {
        std::unique_lock<std::mutex> only_one(capture_mutex_, std::try_to_lock);
        if (!only_one.owns_lock())
            return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                "another capture is running; wait for it to finish (one capture at a time)");
        std::uint32_t ifindex = 0;
        if (!request->interface().empty()) {
            ifindex = ::if_nametoindex(request->interface().c_str());
            if (ifindex == 0)
                return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    "interface '" + request->interface() + "' does not exist on the agent's host");
        }
        shhim_capture_config config;
        try {
            const PolicyPtr policy = context_.state.appliedPolicy();
            config = core::captureConfig(*request, policy ? &policy->validated.policy : nullptr, ifindex);
        } catch (const core::CaptureRequestError& e) {
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        }
        try {
            return streamCapture(call, *request, config, writer);
        } catch (const std::exception& e) {
            return internalError("Capture", e);
        }
    }

private:
    // Manual routing: unknown names and bad requests are the caller's error
    // (nothing changed); the audit records written are the answer.
    template <typename Call>
    grpc::Status routingCall(const char* rpc, v1::RoutingResponse* out, Call call)
    {
        if (!context_.router)
            return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this agent does not route");
        try {
            for (auto& record : call())
                *out->add_records() = std::move(record);
            return grpc::Status::OK;
        } catch (const std::invalid_argument& e) {
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
        } catch (const std::exception& e) {
            return internalError(rpc, e);
        }
    }

    // The socket is 0600: whoever calls runs as its owner (or holds CAP_DAC_OVERRIDE).
    static std::string caller() { return "uid:" + std::to_string(::geteuid()); }
    grpc::Status streamCapture(grpc::ServerContext* call, const v1::CaptureRequest& request,
                               const shhim_capture_config& config, grpc::ServerWriter<v1::CapturedPacket>* writer)
    {
        // How often a capture with nothing to read checks whether its client left.
        constexpr auto kIdleCheck = std::chrono::milliseconds(200);
        const std::uint64_t count = request.count();
        const std::int64_t offset = monoToUnixNow();
        std::uint64_t sent = 0;
        bool client_gone = false;
        datapath::CaptureSession session(context_.datapath.pinRoot(), [&](const shhim_capture_sample& sample) {
            if (client_gone || sent >= count)
                return;
            v1::CapturedPacket packet = core::toCapturedPacket(sample, offset, sent + 1);
            char name[IF_NAMESIZE] = {};
            if (::if_indextoname(sample.ifindex, name))
                packet.set_interface(name);
            if (!writer->Write(packet)) {
                client_gone = true;
                return;
            }
            ++sent;
        });
        session.arm(config);
        spdlog::info("capture {} started: {} packets, filter {}", session.session(), count, describe(request));
        while (sent < count && !client_gone && !call->IsCancelled())
            session.poll(kIdleCheck);
        session.disarm();
        spdlog::info("capture {} ended: {} of {} packets sent{}", session.session(), sent, count,
                     sent < count ? " (client left)" : "");
        return grpc::Status::OK;
    }

    static std::string describe(const v1::CaptureRequest& request)
    {
        std::string filter = !request.service().empty() ? "service " + request.service()
                             : !request.host().empty()  ? "host " + request.host()
                             : request.port() != 0      ? "port " + std::to_string(request.port())
                                                        : std::string("none");
        if (!request.interface().empty())
            filter += " on " + request.interface();
        return filter;
    }

    ApiContext context_;
    std::mutex capture_mutex_;  // one capture at a time: the kernel has one capture config
};

std::string errnoText(int error) { return datapath::errnoText(error); }

}  // namespace

struct ApiServer::Impl {
    std::string socket_path;
    ShhimService service;
    std::unique_ptr<grpc::Server> server;

    Impl(std::string path, ApiContext context) : socket_path(std::move(path)), service(std::move(context)) {}
};

void claimSocketPath(const std::string& socket_path)
{
    namespace fs = std::filesystem;
    const fs::path directory = fs::path(socket_path).parent_path();
    std::error_code ec;
    if (!directory.empty() && !fs::exists(directory, ec)) {
        fs::create_directories(directory, ec);
        if (ec)
            throw std::runtime_error("create socket directory " + directory.string() + ": " + ec.message());
        ::chmod(directory.c_str(), 0755);
    }
    if (!fs::exists(fs::symlink_status(socket_path, ec)))
        return;

    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof(address.sun_path))
        throw std::runtime_error("socket path " + socket_path + " is too long for a Unix socket");
    std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        throw std::runtime_error("create probe socket: " + errnoText(errno));
    const bool answered = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
    ::close(probe);
    if (answered)
        throw std::runtime_error("another shhimd is serving on " + socket_path +
                                 " (stop it first, or give this one --socket)");
    if (::unlink(socket_path.c_str()) != 0)
        throw std::runtime_error("remove stale socket " + socket_path + ": " + errnoText(errno));
}

ApiServer::ApiServer(const std::string& socket_path, ApiContext context)
    : impl_(std::make_unique<Impl>(socket_path, std::move(context)))
{
    claimSocketPath(socket_path);
    grpc::ServerBuilder builder;
    int bound_port = 0;
    builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials(), &bound_port);
    builder.RegisterService(&impl_->service);
    // The socket is created inside BuildAndStart: a tight umask means it
    // is never reachable by others, not even before the chmod below.
    const mode_t previous_umask = ::umask(0077);
    impl_->server = builder.BuildAndStart();
    ::umask(previous_umask);
    if (!impl_->server)
        throw std::runtime_error("cannot serve gRPC on unix:" + socket_path + " (see the gRPC message above)");
    if (::chmod(socket_path.c_str(), 0600) != 0)
        throw std::runtime_error("chmod 0600 " + socket_path + ": " + errnoText(errno));
}

ApiServer::~ApiServer() { shutdown(); }

void ApiServer::shutdown()
{
    if (!impl_ || !impl_->server)
        return;
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    impl_->server->Wait();
    impl_->server.reset();
    ::unlink(impl_->socket_path.c_str());
}

}  // namespace shhim::agent
