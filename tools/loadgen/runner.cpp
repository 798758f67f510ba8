#include "runner.hpp"

#include "client.hpp"
#include "requests.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace shhim::loadgen {

namespace {

constexpr std::size_t kMaxErrorExamples = 5;

std::int64_t unix_now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

OutcomeKind outcome_of(Failure failure)
{
    switch (failure) {
    case Failure::None: return OutcomeKind::Response;
    case Failure::ConnectRefused: return OutcomeKind::ConnectRefused;
    case Failure::ConnectTimeout: return OutcomeKind::ConnectTimeout;
    case Failure::ConnectError: return OutcomeKind::ConnectError;
    case Failure::Reset: return OutcomeKind::Reset;
    case Failure::Timeout: return OutcomeKind::Timeout;
    case Failure::Eof: return OutcomeKind::Eof;
    case Failure::ProtocolError: return OutcomeKind::ProtocolError;
    case Failure::OtherError: return OutcomeKind::OtherError;
    }
    return OutcomeKind::OtherError;
}

void copy_code(std::array<char, 4>& into, std::string_view code)
{
    into.fill('\0');
    std::copy_n(code.begin(), std::min(code.size(), into.size() - 1), into.begin());
}

// What one worker accumulates besides the records; merged after the join.
struct WorkerTally {
    std::uint64_t connections_opened = 0;
    Clock::duration max_lag{0};
};

// Shared state of one run; workers take request numbers from `next_`.
class LoadRun {
public:
    LoadRun(const Options& options, std::stop_token stop)
        : options_(options), stop_(std::move(stop)), factory_(options), records_(options.count)
    {
    }

    RunResult execute()
    {
        RunResult result;
        result.started_unix_ns = unix_now_ns();
        start_ = Clock::now();
        std::vector<WorkerTally> tallies(options_.concurrency);
        {
            std::vector<std::jthread> workers;
            for (auto& tally : tallies)
                workers.emplace_back([this, &tally] { work(tally); });
        }
        result.wall_seconds = std::chrono::duration<double>(Clock::now() - start_).count();
        Clock::duration max_lag{0};
        for (const auto& tally : tallies) {
            result.connections_opened += tally.connections_opened;
            max_lag = std::max(max_lag, tally.max_lag);
        }
        result.max_start_lag_seconds = std::chrono::duration<double>(max_lag).count();
        result.interrupted = stop_.stop_requested();
        result.records = std::move(records_);
        result.error_examples = std::move(error_examples_);
        return result;
    }

private:
    void work(WorkerTally& tally)
    {
        UniqueFd connection; // kept across requests in keep-alive mode
        for (;;) {
            const auto index = next_.fetch_add(1);
            if (index >= options_.count || stop_.stop_requested())
                return;
            if (options_.rate && !wait_for_slot(index, tally))
                continue; // too late (or stopping): this one stays NotSent
            perform(index, records_[index], connection, tally);
        }
    }

    // Rate mode: sleeps until request `index` is due. False when stopping or hopelessly late.
    bool wait_for_slot(std::uint64_t index, WorkerTally& tally)
    {
        const auto due = start_ + std::chrono::nanoseconds(
                                      static_cast<std::int64_t>(static_cast<double>(index) * 1e9 / *options_.rate));
        {
            std::unique_lock lock(sleep_mutex_);
            sleeper_.wait_until(lock, stop_, due, [] { return false; });
        }
        if (stop_.stop_requested())
            return false;
        const auto now = Clock::now();
        // Past the end of the run plus one timeout: sending it now would not be "the rate".
        const auto give_up = start_ + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(*options_.duration_s)) +
                             options_.timeout + std::chrono::seconds(1);
        if (now > give_up)
            return false;
        tally.max_lag = std::max(tally.max_lag, now - due);
        return true;
    }

    void perform(std::uint64_t index, RequestRecord& record, UniqueFd& connection, WorkerTally& tally)
    {
        record.start_unix_ns = unix_now_ns();
        if (options_.connect_only) {
            auto attempt = connect_to(options_.target, options_.timeout);
            record.outcome = attempt.failure == Failure::None ? OutcomeKind::Connected : outcome_of(attempt.failure);
            if (attempt.failure == Failure::None) {
                record.connect_ns = record.latency_ns = attempt.elapsed.count();
                ++tally.connections_opened;
            } else {
                note_error(attempt.detail);
            }
            return; // attempt.fd closes here: a clean FIN
        }

        const auto request = factory_.make(index);
        copy_code(record.requested, request.requested);
        if (options_.connection == ConnectionMode::New || !connection.valid()) {
            auto attempt = connect_to(options_.target, options_.timeout);
            if (attempt.failure != Failure::None) {
                record.outcome = outcome_of(attempt.failure);
                note_error(attempt.detail);
                return;
            }
            record.connect_ns = attempt.elapsed.count();
            ++tally.connections_opened;
            connection = std::move(attempt.fd);
        }
        const auto exchange =
            options_.protocol == Protocol::Http
                ? exchange_http(connection.get(), request.bytes, options_.method == "HEAD", options_.timeout)
                : exchange_mllp(connection.get(), request.bytes, request.control_id, options_.timeout);
        record.written = exchange.written;
        if (exchange.first_byte)
            record.latency_ns = exchange.first_byte->count();
        record.outcome = outcome_of(exchange.failure);
        if (exchange.failure == Failure::None)
            copy_code(record.code, exchange.code);
        else
            note_error(exchange.detail);
        if (options_.connection == ConnectionMode::New || !exchange.reusable)
            connection.reset();
    }

    void note_error(const std::string& detail)
    {
        std::lock_guard lock(errors_mutex_);
        if (error_examples_.size() < kMaxErrorExamples &&
            std::find(error_examples_.begin(), error_examples_.end(), detail) == error_examples_.end())
            error_examples_.push_back(detail);
    }

    const Options& options_;
    std::stop_token stop_;
    RequestFactory factory_;
    std::vector<RequestRecord> records_; // each index written by exactly one worker
    std::atomic<std::uint64_t> next_{0};
    Clock::time_point start_;

    std::mutex sleep_mutex_;
    std::condition_variable_any sleeper_;
    std::mutex errors_mutex_;
    std::vector<std::string> error_examples_;
};

} // namespace

RunResult run_load(const Options& options, std::stop_token stop)
{
    return LoadRun(options, std::move(stop)).execute();
}

} // namespace shhim::loadgen
