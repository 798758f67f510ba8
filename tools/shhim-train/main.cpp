// shhim-train: the anomaly engine's Isolation Forest from recorded
// telemetry (`shhimd --record FILE`, or labelled traces), written as a
// model file shhimd --anomaly-model and shhim-eval --model load.
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "core/anomaly_training.h"
#include "core/audit.h"
#include "core/telemetry_record.h"
#include "trace_files.h"

namespace {

using namespace shhim;

constexpr const char* kDescription = R"(Train the anomaly engine's Isolation Forest on recorded normal telemetry.

Inputs are recordings written by `shhimd --record FILE` (one RecordedTick per
line) or labelled traces (tests/data/anomaly): of a trace labelled as a
failure only the ticks before its fault are used. Each input is replayed
through a fresh anomaly engine; once a backend's baseline has seen
--warmup updates, every tick the engine judges normal is one training
sample: how far each feature is above that backend's baseline, in the
baseline's standard deviations. --holdout of the samples are kept out and
scored afterwards. The score threshold is the training scores'
(1 - contamination) quantile.)";

constexpr const char* kExamples = R"(
Examples:
  shhimd ... --record /var/lib/shhim/telemetry.jsonl     (a day of normal traffic)
  shhim-train -o site.model --version site-2026-11 /var/lib/shhim/telemetry.jsonl
  shhim-train -o models/default.model tests/data/anomaly/traces
Exit status: 0; 2 for bad arguments, unreadable input or too little data.)";

// A bar on a terminal, a line per quarter otherwise (CI logs).
class ProgressBar {
public:
    explicit ProgressBar(bool terminal) : terminal_(terminal) {}
    void operator()(std::uint32_t done, std::uint32_t total)
    {
        constexpr int kWidth = 40;
        const int filled = static_cast<int>(static_cast<double>(done) / total * kWidth);
        if (terminal_) {
            std::fprintf(stderr, "\rtrees [%.*s%*s] %u/%u", filled, "########################################",
                         kWidth - filled, "", done, total);
            if (done == total)
                std::fputc('\n', stderr);
            return;
        }
        const std::uint32_t quarter = done * 4 / total;
        if (quarter != last_quarter_) {
            last_quarter_ = quarter;
            std::fprintf(stderr, "trees %u/%u\n", done, total);
        }
    }

private:
    bool terminal_;
    std::uint32_t last_quarter_ = 0;
};

std::string defaultVersion()
{
    const std::string now = core::rfc3339Millis(std::chrono::system_clock::now());
    return "trained-" + now.substr(0, 10);
}

}  // namespace

int main(int argc, char** argv)
{
    CLI::App app(kDescription, "shhim-train");
    app.footer(kExamples);
    std::vector<std::string> inputs;
    std::string out_path;
    std::string version;
    core::TrainingOptions options;
    options.forest.trees = 100;
    options.forest.subsample_size = 256;
    app.add_option("INPUT", inputs, "Recordings or labelled traces, or directories of them")
        ->required()
        ->type_name("FILE|DIR");
    app.add_option("-o,--output", out_path, "The model file to write")->required()->type_name("FILE");
    app.add_option("--version", version, "The model's name in explanations and logs (default: trained-DATE)");
    app.add_option("--trees", options.forest.trees, "Trees in the forest")->check(CLI::Range(1u, 1000u))->default_str("100");
    app.add_option("--subsample", options.forest.subsample_size, "Samples each tree is grown from (psi)")
        ->check(CLI::Range(2u, 65536u))
        ->default_str("256");
    app.add_option("--contamination", options.contamination,
                   "Share of normal samples the model may call anomalous; sets the score threshold")
        ->check(CLI::Range(1e-6, 0.5))
        ->default_str("0.0001");
    app.add_option("--holdout", options.holdout, "Share of the samples kept out of training and scored after")
        ->check(CLI::Range(0.01, 0.9))
        ->default_str("0.2");
    app.add_option("--warmup", options.anomaly.iforest_warmup,
                   "Updates of a backend's baseline before its ticks are samples (the engine's default: the same "
                   "number before the forest scores a backend)")
        ->check(CLI::Range(0u, 100000u))
        ->default_str("300");
    app.add_option("--seed", options.seed, "Random seed: the same inputs and seed give the same model")->default_str("1");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (version.empty())
        version = defaultVersion();

    try {
        const std::vector<std::string> files = tools::expandTraceArguments(inputs);
        std::vector<core::FeatureVector> samples;
        std::size_t abnormal = 0, ticks = 0;
        for (std::size_t i = 0; i < files.size(); ++i) {
            core::Trace trace = core::readTrace(files[i], core::Label::Optional);
            auto normal = std::span<const v1::RecordedTick>(trace.ticks);
            if (trace.label.failure()) {
                std::size_t before = 0;
                while (before < trace.ticks.size() && trace.ticks[before].unix_ms() < trace.label.fault_start_unix_ms())
                    ++before;
                normal = normal.first(before);
            }
            ticks += normal.size();
            abnormal += core::collectTrainingSamples(normal, options.anomaly, samples);
            std::fprintf(stderr, "read %zu/%zu %s: %zu ticks, %zu samples so far\n", i + 1, files.size(),
                         files[i].c_str(), normal.size(), samples.size());
        }
        ProgressBar bar(::isatty(STDERR_FILENO) != 0);
        core::AnomalyModel model = core::trainModel(samples, options, version, std::ref(bar));
        model.training.set_data(std::to_string(files.size()) + " file(s): " + inputs.front() +
                                (inputs.size() > 1 ? " ..." : ""));
        model.training.set_created(core::rfc3339Millis(std::chrono::system_clock::now()));
        core::writeModelFile(out_path, model);

        const auto& t = model.training;
        std::printf("model %s written to %s\n", model.version.c_str(), out_path.c_str());
        std::printf("  inputs        %zu file(s), %zu ticks\n", files.size(), ticks);
        std::printf("  samples       %llu trained, %llu held out, %zu ticks left out as abnormal\n",
                    static_cast<unsigned long long>(t.samples()), static_cast<unsigned long long>(t.heldout_samples()),
                    abnormal);
        std::printf("  features      %d scored (request rate never)\n", core::kScoredFeatureCount);
        std::printf("  forest        %zu trees, %u samples each, depth <= %u\n", model.forest.trees.size(),
                    model.forest.subsample_size, model.forest.max_depth);
        std::printf("  contamination %g -> score threshold %.4f\n", t.contamination(), model.score_threshold);
        std::printf("  held-out      p50 %.4f  p90 %.4f  p99 %.4f  max %.4f\n", t.heldout_score_p50(),
                    t.heldout_score_p90(), t.heldout_score_p99(), t.heldout_score_max());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "shhim-train: %s\n", e.what());
        return 2;
    }
    return 0;
}
