// The dashboard's files (userspace/agent/dashboard/), embedded into shhimd
// at build time so the page works on a network with no way out: no CDN,
// nothing fetched but the agent's own JSON.
#pragma once

#include <span>
#include <string_view>

namespace shhim::agent {

struct HttpAsset {
    std::string_view path;          // "/", "/dashboard.js", ...
    std::string_view content_type;
    std::string_view body;
};

// Defined in the generated http_assets.cpp (dashboard/embed.cmake).
std::span<const HttpAsset> dashboardAssets();

}  // namespace shhim::agent
