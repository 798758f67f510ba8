// libbpf_log.cpp - capture libbpf's messages (see libbpf_log.h).
#include "libbpf_log.h"

#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <sstream>

namespace shhim::ktest {
namespace {

struct Sink {
	std::mutex mu;
	std::string text;
	bool echo = false;
};

// The one sink libbpf's argument-less callback can reach (see the class comment).
Sink &sink()
{
	static Sink s;
	return s;
}

// A refused program's verifier log can be megabytes; its end is what matters.
constexpr size_t kMaxCaptured = 8u << 20;

int capture(enum libbpf_print_level, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = std::vsnprintf(nullptr, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return n;
	std::string msg(static_cast<size_t>(n) + 1, '\0');
	std::vsnprintf(msg.data(), msg.size(), fmt, ap);
	msg.pop_back();
	Sink &s = sink();
	std::lock_guard lock(s.mu);
	// Not echoed by default: a refused program's verifier log is reported by its tail, and
	// libbpf's warnings about probes that are expected to fail would only be noise.
	if (s.echo)
		std::fputs(msg.c_str(), stderr);
	s.text += msg;
	if (s.text.size() > kMaxCaptured)
		s.text.erase(0, s.text.size() - kMaxCaptured / 2);
	return n;
}

std::vector<std::string> split_lines(const std::string &text)
{
	std::vector<std::string> lines;
	std::istringstream in(text);
	std::string line;
	while (std::getline(in, line))
		if (!line.empty())
			lines.push_back(line);
	return lines;
}

// "libbpf: prog 'NAME': ..." -> NAME
std::string prog_name_in(const std::string &line)
{
	auto start = line.find("prog '");
	if (start == std::string::npos)
		return {};
	start += 6;
	auto end = line.find('\'', start);
	return end == std::string::npos ? std::string() : line.substr(start, end - start);
}

} // namespace

void LibbpfLog::install(bool echo)
{
	sink().echo = echo;
	libbpf_set_print(capture);
}

std::string LibbpfLog::take()
{
	Sink &s = sink();
	std::lock_guard lock(s.mu);
	std::string out;
	out.swap(s.text);
	return out;
}

LoadFailure parse_load_failure(const std::string &captured, size_t verifier_lines)
{
	LoadFailure f;
	static const std::string begin = "-- BEGIN PROG LOAD LOG --";
	static const std::string end = "-- END PROG LOAD LOG --";
	auto e = captured.rfind(end);
	auto last_begin = captured.rfind(begin);
	if (last_begin != std::string::npos && (e == std::string::npos || e < last_begin)) {
		// A log cut short by whoever relayed it (no END marker): it runs until libbpf's next
		// own line. Its last lines are the best there is, marked as such.
		auto stop = captured.find("\nlibbpf: ", last_begin);
		std::string body = captured.substr(last_begin + begin.size(),
						   stop == std::string::npos ? std::string::npos : stop - last_begin - begin.size());
		auto line_start = captured.rfind('\n', last_begin);
		line_start = line_start == std::string::npos ? 0 : line_start + 1;
		f.program = prog_name_in(captured.substr(line_start, last_begin - line_start));
		auto lines = split_lines(body);
		size_t from = lines.size() > verifier_lines ? lines.size() - verifier_lines : 0;
		f.verifier.assign(lines.begin() + static_cast<long>(from), lines.end());
		f.verifier.push_back("(verifier log truncated before its end by the loader's log capture)");
		e = std::string::npos;
	} else if (e != std::string::npos) {
		auto b = captured.rfind(begin, e);
		size_t body = b == std::string::npos ? 0 : b + begin.size();
		if (b != std::string::npos) {
			auto line_start = captured.rfind('\n', b);
			f.program = prog_name_in(captured.substr(line_start == std::string::npos ? 0 : line_start + 1,
								 b - (line_start == std::string::npos ? 0 : line_start + 1)));
		}
		auto lines = split_lines(captured.substr(body, e - body));
		size_t from = lines.size() > verifier_lines ? lines.size() - verifier_lines : 0;
		f.verifier.assign(lines.begin() + static_cast<long>(from), lines.end());
	}
	// libbpf's own lines (not the verifier log): the failing program and the error.
	std::string outside = e == std::string::npos ? captured : captured.substr(e + end.size());
	auto b = captured.rfind(begin);
	if (e != std::string::npos && b != std::string::npos)
		outside = captured.substr(0, b) + outside;
	for (const auto &line : split_lines(outside)) {
		if (line.rfind("libbpf: ", 0) != 0)
			continue;
		if (f.program.empty() && line.find("failed to load") != std::string::npos)
			f.program = prog_name_in(line);
		f.messages.push_back(line);
	}
	if (f.messages.size() > 6)
		f.messages.erase(f.messages.begin(), f.messages.end() - 6);
	return f;
}

} // namespace shhim::ktest
