// shhimd's HTTP listener (cpp-httplib): GET /metrics (Prometheus), the
// dashboard page at / with its assets, and its JSON API. Read-only: every
// method but GET and HEAD is answered 405. Bound to 127.0.0.1 by default;
// on loopback, a Host header other than 127.0.0.1, localhost or [::1] is
// refused (421), so that no web page can reach it by DNS rebinding.
#pragma once

#include <memory>
#include <string>

#include "agent/server.h"

namespace shhim::agent {

struct ListenAddress {
    std::string host;  // "127.0.0.1", "::1"
    int port = 0;
};

// "127.0.0.1:9464", "[::1]:9464", "localhost:9464". Throws
// std::invalid_argument naming the text.
ListenAddress parseListenAddress(const std::string& text);

class HttpServer {
public:
    // Binds, then serves on its own thread. Throws std::runtime_error
    // naming the address if it cannot bind.
    HttpServer(const ListenAddress& address, ApiContext context);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Stops accepting, finishes running requests, joins the thread.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace shhim::agent
