#include "core/anomaly_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include "core/policy_classes.h"

namespace shhim::core {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string backendKey(std::string_view service, std::string_view backend)
{
    std::string key(service);
    key += '\0';
    key += backend;
    return key;
}

bool isLogFeature(Feature f) { return f == Feature::LogP50 || f == Feature::LogP99 || f == Feature::LogRtt; }
bool isFraction(Feature f)
{
    return f != Feature::RequestRate && f != Feature::RetransmitRate && !isLogFeature(f);
}

// A feature's value in the units people read: ms for the log features.
double naturalValue(Feature f, double v) { return isLogFeature(f) ? std::exp(v) : v; }

std::string printf1(const char* format, double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

// Three significant digits without an exponent: 0.142, 4.8, 35, 480, 1234.
std::string significant(double v)
{
    return printf1(std::abs(v) >= 1000 ? "%.0f" : "%.3g", v);
}

std::string inUnits(Feature f, double v)
{
    if (isLogFeature(f))
        return significant(v) + " ms";
    if (isFraction(f))
        return significant(100 * v) + "%";
    if (f == Feature::RequestRate)
        return significant(v) + "/s";
    return significant(v) + " per request";
}

std::string comparison(Feature f, double value, double baseline)
{
    std::string text = std::string(featureLabel(f)) + " " + inUnits(f, value) + " vs baseline " + inUnits(f, baseline);
    if (baseline > 0 && std::isfinite(value / baseline) && value / baseline >= 1.05)
        text += ", x" + significant(value / baseline);
    return text;
}

}  // namespace

std::map<std::string, double, std::less<>> defaultClassSensitivity()
{
    std::map<std::string, double, std::less<>> out;
    for (const auto& builtin : builtinClasses())
        out.emplace(builtin.name, builtin.anomaly_sensitivity);
    return out;
}

std::map<std::string, double, std::less<>> classSensitivity(const v1::Policy& policy)
{
    std::map<std::string, double, std::less<>> out;
    for (const auto& resolved : resolveClasses(policy))
        out.emplace(resolved.name(), resolved.anomaly_sensitivity());
    return out;
}

double mahalanobisScore(double distance_squared, double alarm_nines)
{
    const double nines = -logChiBarSquaredTail(distance_squared, kScoredFeatureCount) / std::log(10.0);
    return std::max(0.0, nines) / alarm_nines;
}

std::optional<Slope> leastSquaresSlope(std::span<const double> ys, std::size_t min_points)
{
    double n = 0, sx = 0, sy = 0;
    for (std::size_t i = 0; i < ys.size(); ++i)
        if (std::isfinite(ys[i])) {
            n += 1;
            sx += static_cast<double>(i);
            sy += ys[i];
        }
    if (n < static_cast<double>(std::max<std::size_t>(min_points, 3)))
        return std::nullopt;
    const double mx = sx / n, my = sy / n;
    double sxx = 0, sxy = 0;
    for (std::size_t i = 0; i < ys.size(); ++i)
        if (std::isfinite(ys[i])) {
            sxx += (static_cast<double>(i) - mx) * (static_cast<double>(i) - mx);
            sxy += (static_cast<double>(i) - mx) * (ys[i] - my);
        }
    if (sxx <= 0)
        return std::nullopt;
    Slope out;
    out.points = static_cast<std::size_t>(n);
    out.slope = sxy / sxx;
    double residuals = 0;
    for (std::size_t i = 0; i < ys.size(); ++i)
        if (std::isfinite(ys[i])) {
            const double r = ys[i] - (my + out.slope * (static_cast<double>(i) - mx));
            residuals += r * r;
        }
    const double se = std::sqrt(residuals / (n - 2) / sxx);
    out.t = se > 0 ? out.slope / se : (out.slope == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), out.slope));
    return out;
}

FeatureVector excessInSd(const Baseline& baseline, const FeatureVector& x)
{
    const ScoredVector excess = baseline.excess(x);
    const ScoredVector& sd = baseline.sd();
    FeatureVector out = FeatureVector::Zero();
    out.segment<kScoredFeatureCount>(kFirstScoredFeature) = excess.cwiseQuotient(sd);
    return out;
}

AnomalyEngine::AnomalyEngine(AnomalySettings settings, std::optional<AnomalyModel> model)
    : settings_(std::move(settings)), model_(std::move(model))
{
    if (!(settings_.alarm_nines > 0))
        throw std::invalid_argument("anomaly settings: alarm_nines must be > 0");
    if (!(settings_.iforest_threshold > 0.5 && settings_.iforest_threshold < 1))
        throw std::invalid_argument("anomaly settings: iforest_threshold must be in (0.5, 1)");
    if (settings_.iforest_persistence < 1)
        throw std::invalid_argument("anomaly settings: iforest_persistence must be >= 1");
    if (settings_.trend.window < 3 || settings_.trend.min_points < 3 || settings_.trend.min_points > settings_.trend.window)
        throw std::invalid_argument("anomaly settings: trend needs 3 <= min_points <= window");
    checkSensitivity(settings_.class_sensitivity);
    // Constructing a baseline checks the settings and every prior.
    Baseline check(settings_.default_prior, settings_.baseline);
    for (const auto& [name, prior] : settings_.class_priors)
        Baseline(prior, settings_.baseline);
}

AnomalyEngine::BackendState& AnomalyEngine::state(const BackendId& id)
{
    const std::string key = backendKey(id.service, id.backend);
    auto it = backends_.find(key);
    if (it == backends_.end()) {
        const auto prior = settings_.class_priors.find(id.service_class);
        const BaselinePrior& start = prior != settings_.class_priors.end() ? prior->second : settings_.default_prior;
        Trend trend;
        trend.log_p99.assign(settings_.trend.window, kNaN);
        trend.retransmits.assign(settings_.trend.window, kNaN);
        it = backends_.try_emplace(key, id.service_class, Baseline(start, settings_.baseline), std::move(trend)).first;
    }
    it->second.service_class = id.service_class;
    return it->second;
}

void AnomalyEngine::checkSensitivity(const std::map<std::string, double, std::less<>>& by_class)
{
    for (const auto& [name, value] : by_class)
        if (!(value >= 0 && value <= kMaxAnomalySensitivity))
            throw std::invalid_argument("anomaly settings: sensitivity of class " + name + " must be in 0..10");
}

void AnomalyEngine::setClassSensitivity(std::map<std::string, double, std::less<>> by_class)
{
    checkSensitivity(by_class);
    settings_.class_sensitivity = std::move(by_class);
}

double AnomalyEngine::sensitivity(std::string_view service_class) const
{
    const auto it = settings_.class_sensitivity.find(service_class);
    return it != settings_.class_sensitivity.end() ? it->second : settings_.default_sensitivity;
}

void AnomalyEngine::pushTrend(Trend& trend, const FeatureVector& x) const
{
    trend.log_p99[trend.next] = x[index(Feature::LogP99)];
    trend.retransmits[trend.next] = x[index(Feature::RetransmitRate)];
    trend.next = (trend.next + 1) % trend.log_p99.size();
    trend.filled = std::min(trend.filled + 1, trend.log_p99.size());
}

namespace {

// The ring in time order, oldest first.
std::vector<double> chronological(const std::vector<double>& ring, std::size_t next, std::size_t filled)
{
    std::vector<double> out;
    out.reserve(filled);
    const std::size_t start = (next + ring.size() - filled) % ring.size();
    for (std::size_t i = 0; i < filled; ++i)
        out.push_back(ring[(start + i) % ring.size()]);
    return out;
}

}  // namespace

double AnomalyEngine::trendScore(const BackendState& s, const ScoredVector& excess) const
{
    const TrendSettings& t = settings_.trend;
    const ScoredVector& sd = s.baseline.sd();
    double best = 0;
    const auto consider = [&](const std::vector<double>& ring, Feature f, double alarm_rise) {
        const int i = index(f) - kFirstScoredFeature;
        if (excess[i] < t.min_excess_sd * sd[i])
            return;  // climbing, but still within normal
        const auto slope = leastSquaresSlope(chronological(ring, s.trend.next, s.trend.filled), t.min_points);
        if (!slope || slope->slope <= 0 || slope->t < t.min_t)
            return;
        best = std::max(best, slope->slope * static_cast<double>(t.window - 1) / alarm_rise);
    };
    consider(s.trend.log_p99, Feature::LogP99, t.latency_rise);
    consider(s.trend.retransmits, Feature::RetransmitRate, t.retransmit_rise);
    return best;
}

std::vector<AnomalyResult> AnomalyEngine::scoreTick(std::span<const BackendId> ids, const FeatureMatrix& rows)
{
    if (static_cast<std::size_t>(rows.rows()) != ids.size())
        throw std::invalid_argument("anomaly engine: " + std::to_string(rows.rows()) + " feature rows for " +
                                    std::to_string(ids.size()) + " backends");
    std::vector<BackendState*> states;
    std::vector<const Baseline*> baselines;
    states.reserve(ids.size());
    baselines.reserve(ids.size());
    ExcessMatrix excess(rows.rows(), kScoredFeatureCount);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        states.push_back(&state(ids[i]));
        baselines.push_back(&states.back()->baseline);
        excess.row(static_cast<Eigen::Index>(i)) = baselines.back()->excess(rows.row(static_cast<Eigen::Index>(i)).transpose()).transpose();
    }
    const Eigen::VectorXd d2 = distancesSquared(excess, baselines);

    std::vector<AnomalyResult> results(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        BackendState& s = *states[i];
        const auto row = static_cast<Eigen::Index>(i);
        const FeatureVector x = rows.row(row).transpose();
        const ScoredVector e = excess.row(row).transpose();
        AnomalyResult& r = results[i];
        r.distance_squared = d2[row];
        const double log_tail = tail_.logTail(r.distance_squared);
        r.probability = -std::expm1(log_tail);
        r.mahalanobis_score = std::max(0.0, -log_tail / std::log(10.0)) / settings_.alarm_nines;
        if (model_ && s.baseline.updates() >= settings_.iforest_warmup) {
            r.iforest = model_->forest.score(excessInSd(s.baseline, x));
            s.recent_forest.push_back(*r.iforest);
            if (s.recent_forest.size() > settings_.iforest_persistence)
                s.recent_forest.erase(s.recent_forest.begin());
            const double threshold = model_->score_threshold > 0 ? model_->score_threshold : settings_.iforest_threshold;
            const double lasting = s.recent_forest.size() < settings_.iforest_persistence
                                       ? 0.5
                                       : *std::min_element(s.recent_forest.begin(), s.recent_forest.end());
            r.iforest_score = std::max(0.0, (lasting - 0.5) / (threshold - 0.5));
        }
        pushTrend(s.trend, x);
        r.trend_score = trendScore(s, e);
        const double raw = std::max({r.mahalanobis_score, r.iforest_score, r.trend_score});
        r.sensitivity = sensitivity(s.service_class);
        r.score = r.sensitivity * raw;

        s.last = x;
        s.last_contributions = s.baseline.contributions(e);
        s.last_mean = s.baseline.mean();
        r.learned = std::max(r.mahalanobis_score, r.trend_score) < settings_.learn_below;
        if (r.learned)
            s.baseline.update(x);
        s.last_result = r;
    }
    return results;
}

std::string AnomalyEngine::trendText(const BackendState& s) const
{
    const auto slope = leastSquaresSlope(chronological(s.trend.log_p99, s.trend.next, s.trend.filled),
                                         settings_.trend.min_points);
    if (!slope || slope->slope <= 0 || s.last_result.trend_score <= 0)
        return "";
    const double factor = std::exp(slope->slope * static_cast<double>(settings_.trend.window - 1));
    return "p99 latency climbing x" + significant(factor) + " over " + std::to_string(settings_.trend.window) + " ticks";
}

std::optional<Explanation> AnomalyEngine::explain(std::string_view service, std::string_view backend) const
{
    const auto it = backends_.find(backendKey(service, backend));
    if (it == backends_.end())
        return std::nullopt;
    const BackendState& s = it->second;
    Explanation out;
    out.service = std::string(service);
    out.backend = std::string(backend);
    out.result = s.last_result;
    const double total = s.last_contributions.sum();
    for (int i = 0; i < kScoredFeatureCount; ++i) {
        if (!(s.last_contributions[i] > 0))
            continue;
        const auto f = static_cast<Feature>(kFirstScoredFeature + i);
        FeatureDriver d;
        d.feature = f;
        d.value = naturalValue(f, s.last[index(f)]);
        d.baseline = naturalValue(f, s.last_mean[index(f)]);
        d.share = total > 0 ? s.last_contributions[i] / total : 0;
        d.text = comparison(f, d.value, d.baseline);
        out.drivers.push_back(std::move(d));
    }
    std::sort(out.drivers.begin(), out.drivers.end(), [](const FeatureDriver& a, const FeatureDriver& b) {
        return a.share > b.share || (a.share == b.share && a.feature < b.feature);
    });
    constexpr std::size_t kTopDrivers = 3;
    if (out.drivers.size() > kTopDrivers)
        out.drivers.resize(kTopDrivers);
    const double rate = s.last[index(Feature::RequestRate)];
    if (std::isfinite(rate))
        out.rate = comparison(Feature::RequestRate, rate, s.last_mean[index(Feature::RequestRate)]) + " (not scored)";
    out.trend = trendText(s);
    out.baseline_weight = s.baseline.weight();
    out.baseline_version = std::string(kBaselineModelVersion);
    out.iforest_version = model_ ? model_->version : "";
    return out;
}

std::string AnomalyEngine::driversText(std::string_view service, std::string_view backend) const
{
    const auto explanation = explain(service, backend);
    if (!explanation)
        return "";
    std::string text;
    for (const auto& driver : explanation->drivers)
        text += (text.empty() ? "" : "; ") + driver.text;
    if (!explanation->trend.empty())
        text += (text.empty() ? "" : "; ") + explanation->trend;
    return text;
}

const Baseline* AnomalyEngine::baseline(std::string_view service, std::string_view backend) const
{
    const auto it = backends_.find(backendKey(service, backend));
    return it == backends_.end() ? nullptr : &it->second.baseline;
}

void AnomalyEngine::forget(std::string_view service, std::string_view backend)
{
    const auto it = backends_.find(backendKey(service, backend));
    if (it != backends_.end())
        backends_.erase(it);
}

}  // namespace shhim::core
