// netlab.cpp - veth pair, server namespace and the HTTP server of the kernel smoke test.
#include "netlab.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace shhim::ktest {
namespace {

std::runtime_error sys_error(const std::string &what)
{
	return std::runtime_error(what + ": " + std::strerror(errno));
}

Fd open_netns_of_self()
{
	Fd fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
	if (!fd)
		throw sys_error("open /proc/thread-self/ns/net");
	return fd;
}

sockaddr_in ipv4(const char *addr, uint16_t port)
{
	sockaddr_in sa{};
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		throw std::runtime_error(std::string("bad IPv4 address ") + addr);
	return sa;
}

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline)
{
	auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
	return left > 0 ? static_cast<int>(left) : 0;
}

// Non-blocking connect bounded by the deadline. Returns the socket (blocking again) and 0, or
// an invalid Fd and the errno the connection failed with.
std::pair<Fd, int> connect_with_deadline(const char *addr, uint16_t port, Clock::time_point deadline)
{
	Fd s(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	if (!s)
		throw sys_error("socket");
	sockaddr_in sa = ipv4(addr, port);
	if (connect(s.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) != 0) {
		if (errno != EINPROGRESS)
			return {Fd(), errno};
		pollfd p{s.get(), POLLOUT, 0};
		int n = poll(&p, 1, remaining_ms(deadline));
		if (n == 0)
			return {Fd(), ETIMEDOUT};
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0)
			return {Fd(), err};
	}
	int flags = fcntl(s.get(), F_GETFL);
	fcntl(s.get(), F_SETFL, flags & ~O_NONBLOCK);
	return {std::move(s), 0};
}

void set_io_timeout(int fd, Clock::time_point deadline)
{
	int ms = std::max(remaining_ms(deadline), 1);
	timeval tv{ms / 1000, (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

bool write_all(int fd, const std::string &data)
{
	size_t off = 0;
	while (off < data.size()) {
		ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		off += static_cast<size_t>(n);
	}
	return true;
}

} // namespace

Fd &Fd::operator=(Fd &&o) noexcept
{
	if (this != &o) {
		if (fd_ >= 0)
			close(fd_);
		fd_ = o.release();
	}
	return *this;
}

Fd::~Fd()
{
	if (fd_ >= 0)
		close(fd_);
}

int Fd::release()
{
	int fd = fd_;
	fd_ = -1;
	return fd;
}

InNetns::InNetns(const Fd &target) : home_(open_netns_of_self())
{
	if (setns(target.get(), CLONE_NEWNET) != 0)
		throw sys_error("setns into the server netns");
}

InNetns::~InNetns()
{
	// Failing to come back would leave every later step in the wrong namespace.
	if (setns(home_.get(), CLONE_NEWNET) != 0)
		std::abort();
}

void run_command(const std::vector<std::string> &argv)
{
	std::vector<char *> args;
	std::string line;
	for (const auto &a : argv) {
		args.push_back(const_cast<char *>(a.c_str()));
		line += (line.empty() ? "" : " ") + a;
	}
	args.push_back(nullptr);

	int out[2];
	if (pipe2(out, O_CLOEXEC) != 0)
		throw sys_error("pipe for " + line);
	Fd out_read(out[0]), out_write(out[1]);
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDERR_FILENO);
	pid_t pid = -1;
	int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	if (err != 0) {
		errno = err;
		throw sys_error("spawn " + line);
	}
	out_write = Fd();
	std::string output;
	char buf[512];
	ssize_t n;
	while ((n = read(out_read.get(), buf, sizeof(buf))) > 0)
		output.append(buf, static_cast<size_t>(n));
	int status = 0;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		throw std::runtime_error("`" + line + "` failed: " + output);
}

Lab::Lab(const std::string &tag) : client_if_("shk" + tag + "c"), server_if_("shk" + tag + "s")
{
	// A nameless netns for the server: unshare moves this thread into a new one, we keep an
	// fd to it and come straight back. Nothing outside this process can see or reach it.
	{
		Fd home = open_netns_of_self();
		if (unshare(CLONE_NEWNET) != 0)
			throw sys_error("unshare(CLONE_NEWNET) for the server netns");
		server_netns_ = open_netns_of_self();
		if (setns(home.get(), CLONE_NEWNET) != 0)
			throw sys_error("setns back from the server netns");
	}
	std::string netns_path = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(server_netns_.get());
	// The fd must survive exec for ip to open it through /proc.
	fcntl(server_netns_.get(), F_SETFD, 0);
	run_command({"ip", "link", "add", client_if_, "type", "veth", "peer", "name", server_if_, "netns", netns_path});
	fcntl(server_netns_.get(), F_SETFD, FD_CLOEXEC);
	run_command({"ip", "addr", "add", std::string(kClientAddr) + "/30", "dev", client_if_});
	run_command({"ip", "link", "set", client_if_, "up"});
	InNetns in_server(server_netns_);
	run_command({"ip", "link", "set", "lo", "up"});
	run_command({"ip", "addr", "add", std::string(kServerAddr) + "/30", "dev", server_if_});
	run_command({"ip", "link", "set", server_if_, "up"});
}

Lab::~Lab()
{
	if (server_.joinable()) {
		(void)!write(stop_pipe_write_.get(), "x", 1);
		server_.join();
	}
	listener_ = Fd();
	try {
		run_command({"ip", "link", "del", client_if_}); // takes the peer with it
	} catch (const std::exception &) {
		// Already gone; the namespace going away removes it anyway.
	}
}

void Lab::start_server()
{
	{
		InNetns in_server(server_netns_);
		listener_ = Fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
		if (!listener_)
			throw sys_error("server socket");
		int one = 1;
		setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sockaddr_in sa = ipv4(kServerAddr, kHttpPort);
		if (bind(listener_.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) != 0)
			throw sys_error("bind 198.18.0.2:8080 in the server netns");
		if (listen(listener_.get(), 16) != 0)
			throw sys_error("listen");
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		throw sys_error("pipe");
	stop_pipe_read_ = Fd(p[0]);
	stop_pipe_write_ = Fd(p[1]);
	server_ = std::thread([this] { serve(); });
}

// Answers every request with a small FHIR-ish JSON body and closes the connection.
void Lab::serve()
{
	static const std::string response = "HTTP/1.1 200 OK\r\n"
					    "Content-Type: application/fhir+json\r\n"
					    "Content-Length: 27\r\n"
					    "Connection: close\r\n\r\n"
					    "{\"resourceType\":\"Patient\"}\n";
	for (;;) {
		pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_pipe_read_.get(), POLLIN, 0}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (fds[1].revents)
			return;
		Fd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
		if (!conn)
			continue;
		// A request that never completes (the retransmission test drops it for a while)
		// must not hold the server forever.
		set_io_timeout(conn.get(), Clock::now() + std::chrono::seconds(10));
		std::string request;
		char buf[1024];
		while (request.find("\r\n\r\n") == std::string::npos) {
			ssize_t n = recv(conn.get(), buf, sizeof(buf), 0);
			if (n <= 0)
				break;
			request.append(buf, static_cast<size_t>(n));
		}
		if (request.find("\r\n\r\n") == std::string::npos)
			continue;
		if (write_all(conn.get(), response))
			served_++;
		shutdown(conn.get(), SHUT_WR);
		// Wait for the client's FIN so that the close is orderly on both sides.
		while (recv(conn.get(), buf, sizeof(buf), 0) > 0) {
		}
	}
}

int http_get(const char *addr, uint16_t port, const std::string &path, std::chrono::milliseconds timeout)
{
	auto deadline = Clock::now() + timeout;
	auto [s, err] = connect_with_deadline(addr, port, deadline);
	if (!s) {
		errno = err;
		throw sys_error(std::string("connect ") + addr + ":" + std::to_string(port));
	}
	set_io_timeout(s.get(), deadline);
	std::string request = "GET " + path + " HTTP/1.1\r\nHost: ehr.test\r\nAccept: application/fhir+json\r\n"
					      "Connection: close\r\n\r\n";
	if (!write_all(s.get(), request))
		throw sys_error("send request");
	std::string response;
	char buf[1024];
	ssize_t n;
	while ((n = recv(s.get(), buf, sizeof(buf), 0)) > 0)
		response.append(buf, static_cast<size_t>(n));
	if (n < 0)
		throw sys_error("receive response");
	// "HTTP/1.1 200 ..."
	if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0)
		throw std::runtime_error("not an HTTP response: " + response.substr(0, 40));
	return std::stoi(response.substr(9, 3));
}

int connect_errno(const char *addr, uint16_t port, std::chrono::milliseconds timeout)
{
	auto [s, err] = connect_with_deadline(addr, port, Clock::now() + timeout);
	return err;
}

Fd tcp_connect(const char *addr, uint16_t port, std::chrono::milliseconds timeout)
{
	auto deadline = Clock::now() + timeout;
	auto [s, err] = connect_with_deadline(addr, port, deadline);
	if (!s) {
		errno = err;
		throw sys_error(std::string("connect ") + addr + ":" + std::to_string(port));
	}
	set_io_timeout(s.get(), deadline);
	return std::move(s);
}

} // namespace shhim::ktest
