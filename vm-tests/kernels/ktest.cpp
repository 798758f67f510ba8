// shhim-ktest - does every shhim BPF program load, attach and count on this kernel?
//
// Runs as PID 1's child in a qemu guest (vm-tests/kernels.sh boots one per kernel) or on the
// host inside a fresh network namespace. It loads every program through shhim_datapath (the
// loader shhimd uses), attaches XDP + TC to one end of a veth pair, sockops to a child cgroup
// this process joins, and the tp_btf programs; then it drives HTTP requests, a refused
// connection and a forced retransmission through the pair and checks that each program's
// counters moved as the ABI (bpf/shhim_abi.h) says they must.
//
// Output, one line per program, read by kernels.sh:
//   @ktest|<program>|loaded|refused|skipped|<verified insns or ->|pass|fail|skip|<detail>
//   @vlog|<program>|<one of the verifier's last lines>      (refused programs)
//   @preflight|<check>|ok|missing|<required or optional>|<detail>   (shhimd --preflight's checks)
//   @kinfo|<key>|<value>                                   (kernel facts)
// Exit status: number of programs that did not load and pass (capped at 100).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/utsname.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "bench_empty.skel.h"
#include "datapath/loader.h"
#include "datapath/maps.h"
#include "datapath/pins.h"
#include "datapath/preflight.h"
#include "datapath/route_maps.h"
#include "datapath/shipped.h"
#include "libbpf_log.h"
#include "netlab.h"
#include "shhim_abi.h"

namespace shhim::ktest {
namespace {

namespace dp = shhim::datapath;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kHttpRequests = 5;
constexpr size_t kVerifierLines = 8;

struct Options {
	std::string cgroup;
	std::string pin_root = "/sys/fs/bpf/shhim";
	bool verbose = false;
};

Options parse_args(int argc, char **argv)
{
	Options o;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&]() -> std::string {
			if (i + 1 >= argc)
				throw std::runtime_error(a + " needs a value");
			return argv[++i];
		};
		if (a == "--cgroup")
			o.cgroup = value();
		else if (a == "--pin-root")
			o.pin_root = value();
		else if (a == "--verbose")
			o.verbose = true;
		else
			throw std::runtime_error("unknown argument " + a +
						 " (usage: shhim-ktest --cgroup DIR [--pin-root DIR] [--verbose])");
	}
	if (o.cgroup.empty())
		throw std::runtime_error("--cgroup DIR (a child cgroup v2 directory) is required");
	return o;
}

std::string sanitize(std::string s)
{
	for (char &c : s)
		if (c == '|' || c == '\n' || c == '\r')
			c = ' ';
	return s;
}

// bpf_prog_info.verified_insns: instructions the verifier processed (kernel >= 5.16; 0 before).
std::string verified_insns(int prog_fd)
{
	if (prog_fd < 0)
		return "-";
	bpf_prog_info info{};
	__u32 len = sizeof(info);
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0)
		return "?";
	if (info.verified_insns == 0)
		return "n/a";
	return std::to_string(info.verified_insns);
}

// The counters and backend entries the checks look at, read through shhim_datapath's
// map readers (the agent's own code path, batched lookups included).
class MapView {
public:
	explicit MapView(const dp::Maps &maps) : maps_(maps) {}

	uint64_t counter(shhim_counter id) const { return maps_.counters()[id]; }

	std::optional<shhim_backend> backend(const char *ipv4, uint16_t port, uint8_t proto) const
	{
		shhim_endpoint key{};
		key.addr[10] = 0xff; // IPv4-mapped ::ffff:a.b.c.d
		key.addr[11] = 0xff;
		inet_pton(AF_INET, ipv4, &key.addr[12]);
		key.port = htons(port);
		key.family = SHHIM_FAMILY_IPV4;
		key.proto = proto;
		for (const auto &record : maps_.backends())
			if (std::memcmp(&record.endpoint, &key, sizeof(key)) == 0)
				return record.backend;
		return std::nullopt;
	}

private:
	const dp::Maps &maps_;
};

// Polls cond until it holds or the deadline passes; returns whether it held.
bool wait_until(std::chrono::milliseconds timeout, const std::function<bool()> &cond)
{
	auto deadline = Clock::now() + timeout;
	while (!cond()) {
		if (Clock::now() >= deadline)
			return false;
		std::this_thread::sleep_for(10ms);
	}
	return true;
}

// A two-instruction XDP program that drops everything: put on the server's end of the veth
// it makes the client's data vanish, so TCP must retransmit. Test scaffolding, not shhim.
Fd load_drop_all_xdp()
{
	bpf_insn insns[2] = {};
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; // r0 = XDP_DROP
	insns[0].dst_reg = BPF_REG_0;
	insns[0].imm = XDP_DROP;
	insns[1].code = BPF_JMP | BPF_EXIT;
	Fd fd(bpf_prog_load(BPF_PROG_TYPE_XDP, "ktest_drop", "GPL", insns, 2, nullptr));
	if (!fd)
		throw std::runtime_error(std::string("loading the drop-all XDP test program: ") + std::strerror(errno));
	return fd;
}

// The XDP ingress result of the HTTP phase, completed by the refused-connection phase.
struct Verdict {
	bool pass = false;
	std::string detail;
};

enum class LoadState { loaded, refused, skipped };

struct LoadResult {
	std::string program;
	LoadState state = LoadState::skipped;
	int prog_fd = -1;                   // borrowed; -1 unless loaded
	std::string detail;                 // why refused / skipped
	std::vector<std::string> verifier;  // last lines of the verifier log when refused
};

struct Row {
	std::string program;
	std::string load;   // loaded / refused / skipped
	std::string insns;
	std::string smoke;  // pass / fail / skip
	std::string detail;
	std::vector<std::string> verifier;
};

void print_row(const Row &r)
{
	std::printf("@ktest|%s|%s|%s|%s|%s\n", r.program.c_str(), r.load.c_str(), r.insns.c_str(), r.smoke.c_str(),
		    sanitize(r.detail).c_str());
	for (const auto &line : r.verifier)
		std::printf("@vlog|%s|%s\n", r.program.c_str(), sanitize(line).c_str());
	std::fflush(stdout);
}

void join_cgroup(const std::string &cgroup)
{
	std::ofstream procs(cgroup + "/cgroup.procs");
	procs << getpid() << std::endl;
	if (!procs)
		throw std::runtime_error("cannot join cgroup " + cgroup + " (write cgroup.procs)");
}

std::string kernel_release()
{
	utsname u{};
	uname(&u);
	return u.release;
}

// The snapshot of counters one phase starts from.
struct Counters {
	uint64_t xdp, tc, sockops, tp_state, tp_resets, tp_retransmits;
	static Counters read(const MapView &m)
	{
		return {m.counter(SHHIM_CTR_XDP_PACKETS),     m.counter(SHHIM_CTR_TC_PACKETS),
			m.counter(SHHIM_CTR_SOCKOPS_CALLS),   m.counter(SHHIM_CTR_TP_STATE_CHANGES),
			m.counter(SHHIM_CTR_TP_RESETS),       m.counter(SHHIM_CTR_TP_RETRANSMITS)};
	}
};

// bench_empty is a test-only program (the benchmark's baseline), not loaded by shhimd: it is
// loaded through its own skeleton, run once with BPF_PROG_TEST_RUN and attached to the
// server's end of the veth while the HTTP requests flow (they must still get through).
class EmptyXdp {
public:
	EmptyXdp() = default;
	EmptyXdp(const EmptyXdp &) = delete;
	EmptyXdp &operator=(const EmptyXdp &) = delete;
	~EmptyXdp()
	{
		if (skel_)
			bench_empty_bpf__destroy(skel_);
	}
	LoadResult load(const std::string &pin_root)
	{
		LoadResult r;
		r.program = "shhim_xdp_empty";
		LibbpfLog::take();
		// Should it ever declare the shared maps (pinned by name), the pin root keeps them in
		// the test's private root instead of libbpf's default, /sys/fs/bpf itself.
		LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = pin_root.c_str());
		skel_ = bench_empty_bpf__open_opts(&open_opts);
		int err = skel_ ? bench_empty_bpf__load(skel_) : -errno;
		if (err != 0) {
			if (skel_)
				bench_empty_bpf__destroy(skel_);
			skel_ = nullptr;
			auto f = parse_load_failure(LibbpfLog::take(), kVerifierLines);
			r.state = f.verifier.empty() ? LoadState::skipped : LoadState::refused;
			r.detail = "bench_empty_bpf open/load: " + std::string(std::strerror(-err));
			r.verifier = f.verifier.empty() ? f.messages : f.verifier;
			return r;
		}
		r.state = LoadState::loaded;
		r.prog_fd = bpf_program__fd(skel_->progs.shhim_xdp_empty);
		return r;
	}
	int fd() const { return skel_ ? bpf_program__fd(skel_->progs.shhim_xdp_empty) : -1; }

private:
	bench_empty_bpf *skel_ = nullptr;
};

int test_run_xdp(int prog_fd)
{
	unsigned char frame[64] = {};
	std::memset(frame, 0xff, 6);
	frame[12] = 0x08; // IPv4 ethertype; the rest does not matter to an empty program
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof(frame), .repeat = 1);
	if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
		return -errno;
	return static_cast<int>(opts.retval);
}

std::string first_line(const std::string &text)
{
	return text.substr(0, text.find('\n'));
}

class Runner {
public:
	explicit Runner(Options opts) : opts_(std::move(opts)) {}

	int run()
	{
		std::printf("@kinfo|kernel|%s\n", kernel_release().c_str());
		report_preflight();

		join_cgroup(opts_.cgroup);
		Lab lab(std::to_string(getpid()));
		lab.start_server();

		start_datapath(lab);
		EmptyXdp empty;
		record_load(empty.load(opts_.pin_root));

		drive(lab, empty);
		datapath_.reset();
		remove_everything();

		int failures = 0;
		for (auto &[name, row] : rows_) {
			if (row.smoke.empty()) {
				row.smoke = row.load == "loaded" ? "fail" : "skip";
				if (row.load == "loaded" && row.detail.empty())
					row.detail = "no smoke test for this program in vm-tests/kernels/ktest.cpp";
			}
			print_row(row);
			failures += row.load == "loaded" && row.smoke == "pass" ? 0 : 1;
		}
		return std::min(failures, 100);
	}

private:
	// What shhimd --preflight would say on this kernel; kernels.sh flags a required check
	// that is missing on a kernel where everything loads (or the other way round).
	static void report_preflight()
	{
		try {
			for (const auto &c : dp::preflight())
				std::printf("@preflight|%s|%s|%s|%s\n", c.name.c_str(), c.ok ? "ok" : "missing",
					    c.required ? "required" : "optional", sanitize(c.detail).c_str());
		} catch (const std::exception &e) {
			std::printf("@preflight|(preflight)|missing|required|threw: %s\n", sanitize(e.what()).c_str());
		}
		std::fflush(stdout);
	}

	// Loads and attaches everything exactly as shhimd does: one Datapath::start with the
	// client end of the veth, the test cgroup and the tracepoints. Each shipped program is
	// then loaded if its pin exists, refused if libbpf's log names it, skipped otherwise
	// (start stops at the first object that fails).
	void start_datapath(const Lab &lab)
	{
		dp::LoadOptions options;
		options.pin_root = opts_.pin_root;
		options.interfaces = {lab.client_if()};
		options.cgroup_path = opts_.cgroup;
		options.tracepoints = true;
		std::string log;
		options.log = [&](dp::LogLevel level, const std::string &line) {
			if (opts_.verbose || level == dp::LogLevel::Warn)
				std::fprintf(stderr, "datapath: %s\n", line.c_str());
			log += line + "\n";
		};
		LibbpfLog::take();
		try {
			datapath_.emplace(dp::Datapath::start(options));
		} catch (const std::exception &e) {
			start_error_ = e.what();
			std::printf("@kinfo|datapath-start-failed|%s\n", sanitize(first_line(start_error_)).c_str());
		}
		LoadFailure failure;
		if (!start_error_.empty())
			failure = parse_load_failure(start_error_ + "\n" + log + LibbpfLog::take(), kVerifierLines);
		for (const auto &shipped : dp::kShippedPrograms) {
			LoadResult r;
			r.program = std::string(shipped.name);
			Fd pinned(bpf_obj_get(dp::pins::program(opts_.pin_root, shipped.name).c_str()));
			if (pinned) {
				r.state = LoadState::loaded;
				r.prog_fd = pinned.get();
				if (!datapath_)
					r.detail = "loaded, but Datapath::start failed: " + first_line(start_error_);
			} else if (failure.program == r.program) {
				r.state = LoadState::refused;
				r.detail = first_line(start_error_);
				r.verifier = failure.verifier.empty() ? failure.messages : failure.verifier;
			} else {
				r.state = LoadState::skipped;
				r.detail = "not loaded: Datapath::start stopped at: " + first_line(start_error_);
			}
			record_load(r);
		}
		if (datapath_) {
			for (const auto &a : datapath_->attachments())
				if (a.hook == "xdp")
					xdp_mode_ = a.mode;
		}
	}

	// shhimd --detach's code path; anything it could not remove is reported.
	void remove_everything()
	{
		try {
			auto report = dp::detach(opts_.pin_root);
			for (const auto &problem : report.problems)
				std::printf("@kinfo|detach-problem|%s\n", sanitize(problem).c_str());
		} catch (const std::exception &e) {
			std::printf("@kinfo|detach-failed|%s\n", sanitize(e.what()).c_str());
		}
		if (access(opts_.pin_root.c_str(), F_OK) == 0)
			std::printf("@kinfo|detach-problem|%s still exists after detach\n", opts_.pin_root.c_str());
		std::fflush(stdout);
	}

	void record_load(const LoadResult &r)
	{
		Row row;
		row.program = r.program;
		row.load = r.state == LoadState::loaded ? "loaded" : r.state == LoadState::refused ? "refused" : "skipped";
		row.insns = r.state == LoadState::loaded ? verified_insns(r.prog_fd) : "-";
		row.detail = r.detail;
		row.verifier = r.verifier;
		rows_[r.program] = std::move(row);
	}

	void note_all(const std::string &why)
	{
		for (auto &[name, row] : rows_)
			if (row.load == "loaded" && row.smoke.empty() && row.detail.empty())
				row.detail = why;
	}

	bool loaded(const std::string &program) const
	{
		auto it = rows_.find(program);
		return it != rows_.end() && it->second.load == "loaded";
	}

	void verdict(const std::string &program, bool pass, const std::string &detail)
	{
		auto it = rows_.find(program);
		if (it == rows_.end() || it->second.load != "loaded")
			return;
		it->second.smoke = pass ? "pass" : "fail";
		it->second.detail = detail;
	}

	// Three phases of traffic; without a started datapath only the empty program is tested.
	void drive(Lab &lab, EmptyXdp &empty)
	{
		if (!datapath_) {
			http_phase(lab, nullptr, empty);
			return;
		}
		MapView maps(datapath_->maps());
		http_phase(lab, &maps, empty);
		refused_phase(maps);
		retransmit_phase(lab, maps);
		reroute_phase();
	}

	// ---- service reroute: the six cgroup sock_addr programs ----

	static shhim::core::ServiceEndpoint route_endpoint(int family, const char *addr, uint16_t port, uint8_t proto)
	{
		shhim::core::ServiceEndpoint e;
		e.family = static_cast<uint8_t>(family);
		e.port = port;
		e.protocol = proto;
		if (family == 4) {
			e.address[10] = e.address[11] = 0xff;
			inet_pton(AF_INET, addr, e.address.data() + 12);
		} else {
			inet_pton(AF_INET6, addr, e.address.data());
		}
		return e;
	}

	static Fd udp_socket(int family, std::chrono::milliseconds timeout)
	{
		Fd s(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
		if (!s)
			throw std::runtime_error(std::string("udp socket: ") + std::strerror(errno));
		timeval tv{0, static_cast<suseconds_t>(timeout.count() * 1000)};
		setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		return s;
	}

	// One datagram client -> VIP -> (rewritten) echo -> client. Returns what the
	// client saw as the reply's source ("" when nothing came back) and whether
	// the echo socket got it at all.
	static std::pair<bool, std::string> udp_round_trip(int family, const sockaddr *vip, socklen_t vip_len, int echo)
	{
		Fd client = udp_socket(family, 1000ms);
		const char ping[] = "ping";
		if (sendto(client.get(), ping, sizeof(ping), 0, vip, vip_len) < 0)
			return {false, std::string("sendto: ") + std::strerror(errno)};
		char buf[16];
		sockaddr_storage from{};
		socklen_t from_len = sizeof(from);
		if (recvfrom(echo, buf, sizeof(buf), 0, reinterpret_cast<sockaddr *>(&from), &from_len) <= 0)
			return {false, "the echo socket received nothing"};
		sendto(echo, buf, sizeof(ping), 0, reinterpret_cast<sockaddr *>(&from), from_len);
		sockaddr_storage src{};
		socklen_t src_len = sizeof(src);
		if (recvfrom(client.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr *>(&src), &src_len) <= 0)
			return {true, ""};
		char text[INET6_ADDRSTRLEN] = {};
		uint16_t port = 0;
		if (src.ss_family == AF_INET) {
			const auto *in = reinterpret_cast<const sockaddr_in *>(&src);
			inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
			port = ntohs(in->sin_port);
		} else {
			const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(&src);
			inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
			port = ntohs(in6->sin6_port);
		}
		return {true, std::string(text) + ":" + std::to_string(port)};
	}

	// Routes a TCP VIP to the lab's HTTP server and two UDP VIPs to an echo socket on
	// loopback (this process is in the cgroup): connect4 by an HTTP GET to the VIP,
	// connect6 by a dual-stack connect to its v4-mapped form, sendmsg4/6 by the echo
	// receiving, recvmsg4/6 by the reply showing the VIP as its source.
	void reroute_phase()
	{
		if (!loaded("shhim_connect4"))
			return;
		static constexpr const char *kVip4 = "198.18.0.100";
		static constexpr const char *kVip6 = "2001:2::100";
		static constexpr uint16_t kEchoPort = 9753;
		try {
			run_command({"ip", "link", "set", "lo", "up"});
			auto routes = dp::RouteMaps::openPinned(opts_.pin_root);
			shhim::core::RouteTables t;
			t.backends.push_back({route_endpoint(4, Lab::kServerAddr, Lab::kHttpPort, IPPROTO_TCP), 1, 0, 0, "http"});
			t.backends.push_back({route_endpoint(4, "127.0.0.1", kEchoPort, IPPROTO_UDP), 2, 0, 0, "echo4"});
			t.backends.push_back({route_endpoint(6, "::1", kEchoPort, IPPROTO_UDP), 3, 0, 0, "echo6"});
			shhim::core::RouteService http{"http", route_endpoint(4, kVip4, Lab::kHttpPort, IPPROTO_TCP), 0, 3, {{1, 1}}, {}};
			shhim::core::RouteService echo4{"echo4", route_endpoint(4, kVip4, kEchoPort, IPPROTO_UDP), 1, 3, {{2, 1}}, {}};
			shhim::core::RouteService echo6{"echo6", route_endpoint(6, kVip6, kEchoPort, IPPROTO_UDP), 2, 3, {{3, 1}}, {}};
			t.services = {http, echo4, echo6};
			routes.apply(t);

			int status = 0;
			std::string err;
			try {
				status = http_get(kVip4, Lab::kHttpPort, "/", 3s);
			} catch (const std::exception &e) {
				err = e.what();
			}
			verdict("shhim_connect4", status == 200,
				std::string("GET http://") + kVip4 + ":8080/ -> " + (err.empty() ? std::to_string(status) : err));

			Fd s6(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
			sockaddr_in6 mapped{};
			mapped.sin6_family = AF_INET6;
			mapped.sin6_port = htons(Lab::kHttpPort);
			inet_pton(AF_INET6, "::ffff:198.18.0.100", &mapped.sin6_addr);
			timeval tv{3, 0};
			setsockopt(s6.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			const int rc = connect(s6.get(), reinterpret_cast<sockaddr *>(&mapped), sizeof(mapped));
			verdict("shhim_connect6", rc == 0,
				std::string("dual-stack connect to [::ffff:") + kVip4 + "]:8080: " +
					(rc == 0 ? "connected" : std::strerror(errno)));

			Fd echo = udp_socket(AF_INET6, 1000ms);
			int off = 0;
			setsockopt(echo.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
			sockaddr_in6 any{};
			any.sin6_family = AF_INET6;
			any.sin6_port = htons(kEchoPort);
			if (bind(echo.get(), reinterpret_cast<sockaddr *>(&any), sizeof(any)) != 0)
				throw std::runtime_error(std::string("bind the echo socket: ") + std::strerror(errno));

			sockaddr_in vip4{};
			vip4.sin_family = AF_INET;
			vip4.sin_port = htons(kEchoPort);
			inet_pton(AF_INET, kVip4, &vip4.sin_addr);
			const auto [got4, src4] =
				udp_round_trip(AF_INET, reinterpret_cast<sockaddr *>(&vip4), sizeof(vip4), echo.get());
			const std::string want4 = std::string(kVip4) + ":" + std::to_string(kEchoPort);
			verdict("shhim_sendmsg4", got4, std::string("datagram to ") + want4 + (got4 ? " reached 127.0.0.1" : ": " + src4));
			verdict("shhim_recvmsg4", src4 == want4, "reply source " + (src4.empty() ? "none" : src4) + " (want " + want4 + ")");

			sockaddr_in6 vip6{};
			vip6.sin6_family = AF_INET6;
			vip6.sin6_port = htons(kEchoPort);
			inet_pton(AF_INET6, kVip6, &vip6.sin6_addr);
			const auto [got6, src6] =
				udp_round_trip(AF_INET6, reinterpret_cast<sockaddr *>(&vip6), sizeof(vip6), echo.get());
			const std::string want6 = std::string(kVip6) + ":" + std::to_string(kEchoPort);
			verdict("shhim_sendmsg6", got6, "datagram to [" + std::string(kVip6) + "]:" + std::to_string(kEchoPort) +
								(got6 ? " reached ::1" : ": " + src6));
			verdict("shhim_recvmsg6", src6 == want6, "reply source " + (src6.empty() ? "none" : src6) + " (want " + want6 + ")");
		} catch (const std::exception &e) {
			for (const char *p : {"shhim_connect4", "shhim_connect6", "shhim_sendmsg4", "shhim_sendmsg6",
					      "shhim_recvmsg4", "shhim_recvmsg6"})
				verdict(p, false, std::string("reroute phase: ") + e.what());
		}
	}

	// kHttpRequests GETs, each on a new connection.
	void http_phase(Lab &lab, const MapView *pinned, EmptyXdp &empty)
	{
		Counters before = pinned ? Counters::read(*pinned) : Counters{};
		std::string empty_detail;
		bool empty_attached = false;
		int empty_rv = -1;
		if (empty.fd() >= 0) {
			int rv = empty_rv = test_run_xdp(empty.fd());
			empty_detail = "test_run retval=" + std::to_string(rv);
			InNetns in_server(lab.server_netns());
			int ifindex = static_cast<int>(if_index(lab.server_if()));
			empty_attached = bpf_xdp_attach(ifindex, empty.fd(), 0, nullptr) == 0;
			if (!empty_attached)
				empty_detail += " attach failed: " + std::string(std::strerror(errno));
		}
		int ok = 0;
		std::string error;
		for (int i = 0; i < kHttpRequests; i++) {
			try {
				int status = http_get(Lab::kServerAddr, Lab::kHttpPort, "/fhir/Patient/" + std::to_string(i), 5s);
				ok += status == 200 ? 1 : 0;
			} catch (const std::exception &e) {
				error = e.what();
			}
		}
		if (empty_attached) {
			InNetns in_server(lab.server_netns());
			bpf_xdp_detach(static_cast<int>(if_index(lab.server_if())), 0, nullptr);
		}
		std::string http = std::to_string(ok) + "/" + std::to_string(kHttpRequests) + " GETs ok" +
				   (error.empty() ? "" : " (" + error + ")");
		verdict("shhim_xdp_empty", ok == kHttpRequests && empty_attached && empty_rv == XDP_PASS,
			empty_detail + ", attached to the server end, " + http);
		if (!pinned)
			return;
		const MapView &maps = *pinned;

		// Ingress sees the server's packets: SYN-ACKs and responses.
		auto b = maps.backend(Lab::kServerAddr, Lab::kHttpPort, IPPROTO_TCP);
		Counters after{};
		wait_until(1s, [&] {
			after = Counters::read(maps);
			b = maps.backend(Lab::kServerAddr, Lab::kHttpPort, IPPROTO_TCP);
			return b && b->responses >= kHttpRequests && b->requests >= kHttpRequests;
		});
		const uint64_t n = kHttpRequests;
		uint64_t xdp = after.xdp - before.xdp, tc = after.tc - before.tc;
		std::ostringstream x, t;
		x << http << "; " << (xdp_mode_.empty() ? "" : xdp_mode_ + " mode, ") << "xdp_packets+" << xdp;
		t << http << "; tc_packets+" << tc;
		bool xdp_ok = ok == kHttpRequests && xdp >= 3 * n, tc_ok = ok == kHttpRequests && tc >= 3 * n;
		if (!b) {
			x << ", no backend entry for " << Lab::kServerAddr << ":" << Lab::kHttpPort;
			t << ", no backend entry";
			xdp_ok = tc_ok = false;
		} else {
			x << ", established=" << b->conn_established << " responses=" << b->responses
			  << " 2xx=" << b->http_status[SHHIM_HTTP_2XX];
			t << ", attempts=" << b->conn_attempts << " requests=" << b->requests;
			xdp_ok = xdp_ok && b->conn_established == n && b->responses == n &&
				 b->http_status[SHHIM_HTTP_2XX] == n;
			tc_ok = tc_ok && b->conn_attempts == n && b->requests == n;
		}
		x << " (want >=" << 3 * n << " packets, " << n << " each)";
		t << " (want >=" << 3 * n << " packets, " << n << " each)";
		xdp_result_ = {xdp_ok, x.str()};
		verdict("shhim_tc_egress", tc_ok, t.str());

		uint64_t calls = after.sockops - before.sockops;
		uint64_t samples = b ? b->srtt_samples : 0;
		verdict("shhim_sockops", calls > 0 && samples > 0,
			"sockops_calls+" + std::to_string(calls) + ", backend srtt_samples=" + std::to_string(samples) +
				(b ? " srtt_last=" + std::to_string(b->srtt_us_last) + "us" : "") + " (want both > 0)");
		uint64_t states = after.tp_state - before.tp_state;
		verdict("shhim_tp_state", states >= n,
			"tp_state_changes+" + std::to_string(states) + " over " + std::to_string(n) + " connections (want >=" +
				std::to_string(n) + ")");
	}

	// A connect to a closed port: the server's kernel answers the SYN with a RST.
	void refused_phase(const MapView &maps)
	{
		Counters before = Counters::read(maps);
		int err = connect_errno(Lab::kServerAddr, Lab::kClosedPort, 3s);
		std::optional<shhim_backend> b;
		Counters after{};
		wait_until(1s, [&] {
			after = Counters::read(maps);
			b = maps.backend(Lab::kServerAddr, Lab::kClosedPort, IPPROTO_TCP);
			return after.tp_resets > before.tp_resets && b && b->refused >= 1;
		});
		uint64_t resets = after.tp_resets - before.tp_resets;
		std::string conn = err == ECONNREFUSED ? "connect refused" : std::string("connect: ") + std::strerror(err);
		verdict("shhim_tp_receive_reset", err == ECONNREFUSED && resets >= 1,
			conn + "; tp_resets+" + std::to_string(resets) + " (want >=1)");
		// XDP's verdict combines the HTTP phase and the refusal it must have seen on ingress.
		uint64_t refused = b ? b->refused : 0;
		verdict("shhim_xdp_ingress", xdp_result_.pass && err == ECONNREFUSED && refused == 1,
			xdp_result_.detail + "; closed port refused=" + std::to_string(refused) + " (want 1)");
	}

	// Data sent while the server's end drops everything must be retransmitted.
	void retransmit_phase(Lab &lab, const MapView &maps)
	{
		if (!loaded("shhim_tp_retransmit"))
			return;
		Counters before = Counters::read(maps);
		std::string detail;
		bool moved = false;
		try {
			Fd conn = tcp_connect(Lab::kServerAddr, Lab::kHttpPort, 3s);
			Fd drop = load_drop_all_xdp();
			int ifindex;
			{
				InNetns in_server(lab.server_netns());
				ifindex = static_cast<int>(if_index(lab.server_if()));
				if (bpf_xdp_attach(ifindex, drop.get(), 0, nullptr) != 0)
					throw std::runtime_error(std::string("attach drop-all XDP: ") + std::strerror(errno));
			}
			std::string req = "GET /fhir/Observation HTTP/1.1\r\nHost: ehr.test\r\nConnection: close\r\n\r\n";
			if (send(conn.get(), req.data(), req.size(), MSG_NOSIGNAL) < 0)
				throw std::runtime_error(std::string("send: ") + std::strerror(errno));
			auto t0 = Clock::now();
			moved = wait_until(5s, [&] { return Counters::read(maps).tp_retransmits > before.tp_retransmits; });
			auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
			{
				InNetns in_server(lab.server_netns());
				bpf_xdp_detach(ifindex, 0, nullptr);
			}
			Counters after = Counters::read(maps);
			auto b = maps.backend(Lab::kServerAddr, Lab::kHttpPort, IPPROTO_TCP);
			detail = "tp_retransmits+" + std::to_string(after.tp_retransmits - before.tp_retransmits) + " after " +
				 std::to_string(waited) + "ms of drops" +
				 (b ? ", backend retransmits=" + std::to_string(b->retransmits) +
					      " rto_events=" + std::to_string(b->rto_events)
				    : "") +
				 " (want >=1)";
		} catch (const std::exception &e) {
			detail = e.what();
		}
		verdict("shhim_tp_retransmit", moved, detail);
	}

	static unsigned if_index(const std::string &name)
	{
		unsigned idx = if_nametoindex(name.c_str());
		if (idx == 0)
			throw std::runtime_error("no interface " + name);
		return idx;
	}

	Options opts_;
	std::optional<dp::Datapath> datapath_;
	std::string start_error_;
	std::string xdp_mode_;
	std::map<std::string, Row> rows_;
	Verdict xdp_result_;
};

} // namespace
} // namespace shhim::ktest

int main(int argc, char **argv)
{
	using namespace shhim::ktest;
	try {
		Options opts = parse_args(argc, argv);
		LibbpfLog::install(opts.verbose);
		Runner runner(std::move(opts));
		return runner.run();
	} catch (const std::exception &e) {
		std::printf("@kinfo|fatal|%s\n", sanitize(e.what()).c_str());
		std::fflush(stdout);
		return 101;
	}
}
