// shhim-loadgen: an exact-count or fixed-rate client for HTTP and HL7 MLLP services, with a
// JSON report of what it sent and what it measured.
#include "options.hpp"
#include "report.hpp"
#include "runner.hpp"

#include <csignal>
#include <ctime>
#include <fstream>
#include <iostream>
#include <stop_token>
#include <thread>

namespace {

using namespace shhim::loadgen;

constexpr int kExitAllSent = 0;
constexpr int kExitNotAllSent = 1;
constexpr int kExitBadFlags = 2;

// Waits for SIGINT/SIGTERM (blocked in every thread) and asks the run to stop; polls its
// own stop token so it can end when the run is over.
void watch_signals(std::stop_token watcher_stop, std::stop_source run_stop, sigset_t signals)
{
    const timespec poll_interval{0, 100'000'000};
    while (!watcher_stop.stop_requested()) {
        if (sigtimedwait(&signals, nullptr, &poll_interval) > 0) {
            std::cerr << "shhim-loadgen: interrupted; finishing requests in flight\n";
            run_stop.request_stop();
            return;
        }
    }
}

// Writes the report to the file opened before the run, or to stdout.
bool write_report(std::ofstream& file, const std::string& path, const std::string& json)
{
    std::ostream& out = path == "-" ? std::cout : file;
    out << json << std::flush;
    if (!out) {
        std::cerr << "shhim-loadgen: --report " << path << ": writing the report failed\n";
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    auto parsed = parse_options(argc, argv);
    if (const auto* exit_code = std::get_if<int>(&parsed))
        return *exit_code;
    const auto& options = std::get<Options>(parsed);

    // Opened before any traffic: a bad --report path fails fast instead of after the run.
    std::ofstream report_file;
    if (options.report_path != "-") {
        report_file.open(options.report_path, std::ios::trunc);
        if (!report_file) {
            std::cerr << "shhim-loadgen: --report " << options.report_path << ": cannot open for writing\n";
            return kExitBadFlags;
        }
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); // before any thread starts
    std::signal(SIGPIPE, SIG_IGN);

    std::stop_source run_stop;
    RunResult run;
    {
        std::jthread watcher(watch_signals, run_stop, stop_signals);
        run = run_load(options, run_stop.get_token());
    } // the watcher's stop is requested and it is joined here

    std::cerr << summary_line(options, run) << "\n";
    for (const auto& example : run.error_examples)
        std::cerr << "shhim-loadgen:   e.g. " << example << "\n";
    const bool reported = write_report(report_file, options.report_path, report_json(options, run));
    const auto counts = tally(run);
    return reported && counts.sent == counts.planned ? kExitAllSent : kExitNotAllSent;
}
