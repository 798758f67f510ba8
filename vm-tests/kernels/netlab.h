// netlab.h - the little network the kernel smoke test drives traffic through.
//
//   this process's netns                    server netns (created here, nameless)
//   [client_if 198.18.0.1/30] <== veth ==> [server_if 198.18.0.2/30]  HTTP server :8080
//
// shhim's XDP and TC programs attach to client_if, so ingress = server -> client and
// egress = client -> server. The server runs on a thread of this process, on sockets created
// inside the server netns. Everything is torn down when the Lab is destroyed (closing the last
// reference to the server netns deletes it and the veth pair with it).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace shhim::ktest {

// An owned file descriptor.
class Fd {
public:
	Fd() = default;
	explicit Fd(int fd) : fd_(fd) {}
	Fd(Fd &&o) noexcept : fd_(o.release()) {}
	Fd &operator=(Fd &&o) noexcept;
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	~Fd();
	int get() const { return fd_; }
	int release();
	explicit operator bool() const { return fd_ >= 0; }

private:
	int fd_ = -1;
};

// Moves the calling thread into a network namespace for its lifetime, then back.
class InNetns {
public:
	explicit InNetns(const Fd &target);
	InNetns(const InNetns &) = delete;
	InNetns &operator=(const InNetns &) = delete;
	~InNetns();

private:
	Fd home_;
};

// Runs a command (argv[0] looked up in PATH) in the calling thread's netns; throws with its
// output when it fails.
void run_command(const std::vector<std::string> &argv);

// The two-namespace veth lab plus its HTTP server.
class Lab {
public:
	static constexpr const char *kClientAddr = "198.18.0.1";
	static constexpr const char *kServerAddr = "198.18.0.2";
	static constexpr uint16_t kHttpPort = 8080;
	static constexpr uint16_t kClosedPort = 8089; // nothing listens: connects get a RST

	// tag makes the interface names unique (the pid): shk<tag>c / shk<tag>s.
	explicit Lab(const std::string &tag);
	Lab(const Lab &) = delete;
	Lab &operator=(const Lab &) = delete;
	~Lab();

	const std::string &client_if() const { return client_if_; }
	const std::string &server_if() const { return server_if_; }
	const Fd &server_netns() const { return server_netns_; }
	uint64_t requests_served() const { return served_.load(); }

	// Starts the HTTP server thread (after the caller joined its cgroup, so that the server's
	// sockets belong to it too).
	void start_server();

private:
	void serve();

	std::string client_if_;
	std::string server_if_;
	Fd server_netns_;
	Fd listener_;
	Fd stop_pipe_read_;
	Fd stop_pipe_write_;
	std::thread server_;
	std::atomic<uint64_t> served_{0};
};

// One HTTP/1.1 GET on a new connection; returns the status code. Throws on any socket error
// or when the deadline passes.
int http_get(const char *addr, uint16_t port, const std::string &path, std::chrono::milliseconds timeout);

// connect() to a port nobody listens on; returns the errno (ECONNREFUSED expected).
int connect_errno(const char *addr, uint16_t port, std::chrono::milliseconds timeout);

// A connected TCP socket (for the retransmission test).
Fd tcp_connect(const char *addr, uint16_t port, std::chrono::milliseconds timeout);

} // namespace shhim::ktest
