#include "agent/policy.h"

#include <yaml-cpp/yaml.h>

#include <fstream>

namespace shhim::agent {
namespace {

std::string where(const std::string& path, const YAML::Mark& mark)
{
    // yaml-cpp counts lines and columns from 0.
    if (mark.line < 0)
        return path;
    return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

}  // namespace

PolicySummary loadPolicy(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        throw PolicyError(path + ": cannot open policy file");

    YAML::Node root;
    try {
        root = YAML::Load(in);
    } catch (const YAML::ParserException& e) {
        throw PolicyError(where(path, e.mark) + ": not valid YAML: " + e.msg);
    }

    PolicySummary summary;
    summary.path = path;
    if (root.IsNull())
        return summary;  // an empty policy names no services
    if (!root.IsMap())
        throw PolicyError(where(path, root.Mark()) + ": a policy is a mapping (version:, name:, services: ...)");
    if (const YAML::Node name = root["name"]; name && name.IsScalar())
        summary.name = name.Scalar();
    const YAML::Node services = root["services"];
    if (!services || services.IsNull())
        return summary;
    if (!services.IsSequence())
        throw PolicyError(where(path, services.Mark()) + ": `services` must be a list");
    for (const YAML::Node& service : services) {
        const YAML::Node name = service.IsMap() ? service["name"] : YAML::Node();
        if (!name || !name.IsScalar())
            throw PolicyError(where(path, service.Mark()) + ": every service needs a `name`");
        summary.service_names.push_back(name.Scalar());
    }
    return summary;
}

}  // namespace shhim::agent
