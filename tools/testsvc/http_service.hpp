// http_service.hpp - the simulated FHIR HTTP/1.1 API served on --http listeners.
#pragma once

#include "connection.hpp"
#include "support/http_wire.hpp"

#include <string>
#include <string_view>

namespace shhim::testsvc {

class Listener;

// Serves requests on one keep-alive connection until the peer closes, a fault ends it, or
// the service stops. Routes:
//   GET  /healthz                      {"status":"ok"}             (never takes a mix slot)
//   GET  /fhir/Patient/{id}            a synthetic Patient
//   GET  /fhir/Observation?patient=ID  a searchset Bundle with one Observation
//   POST /fhir/Observation             201 Created, the stored Observation with a new id
// Status precedence: "X-Shhim-Status: NNN" request header, then the listener's status mix
// rotation, then what the route says.
void serve_http_connection(Listener& listener, ServerConnection& connection);

// One rendered answer of the FHIR routes.
struct HttpAnswer {
    int status = 200;
    std::string body;     // JSON
    std::string location; // Location header, for 201
};
// The route's own answer for a request (no faults, no forced status).
HttpAnswer route_fhir(const tools::HttpRequestHead& request, std::uint64_t serial);
// A FHIR OperationOutcome body explaining `status`.
std::string operation_outcome(int status, std::string_view diagnostics);
// Status line, headers and body.
std::string render_http_response(const HttpAnswer& answer, bool keep_alive);

} // namespace shhim::testsvc
