// mllp_service.hpp - the simulated HL7 v2 lab interface served on --mllp listeners.
#pragma once

#include "connection.hpp"

#include <ctime>
#include <string>
#include <string_view>

namespace shhim::testsvc {

class Listener;

// Answers every framed HL7 message on the connection with an ACK until the peer closes, a
// fault ends it, or the service stops. Ack code precedence: a test-only "ZFA|<code>"
// segment in the message, then the listener's ack mix rotation, then AA. A message without
// an MSH segment gets AR.
void serve_mllp_connection(Listener& listener, ServerConnection& connection);

// The ACK message (unframed) for `message`: an MSH segment with sender and receiver
// swapped and the original control id as MSH-10, then "MSA|<code>|<control id>"; every
// segment ends with '\r'.
std::string build_hl7_ack(std::string_view message, std::string_view code, std::time_t now);

} // namespace shhim::testsvc
