// libbpf_log.h - keeps what libbpf prints, so a program the verifier refuses can be reported
// with the verifier's own last lines.
#pragma once

#include <string>
#include <vector>

namespace shhim::ktest {

// libbpf's print callback has no user-data argument, so the capture sink is necessarily one
// per process; this class is its only owner. Install once, before the first load.
class LibbpfLog {
public:
	// echo: also copy every message to stderr (debug level included).
	static void install(bool echo);
	// Everything captured since the last take(), and clears it.
	static std::string take();
};

// What a failed load printed, read out of the captured text.
struct LoadFailure {
	std::string program;                // "prog 'NAME': ..." of the last failure, or empty
	std::vector<std::string> verifier;  // last lines of that program's verifier log
	std::vector<std::string> messages;  // libbpf's own warnings around it (last few)
};
LoadFailure parse_load_failure(const std::string &captured, size_t verifier_lines);

} // namespace shhim::ktest
