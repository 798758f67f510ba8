#include "core/policy_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace shhim::core {
namespace {

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

[[noreturn]] void fail(const std::string& path, int error)
{
    throw PolicyFileError("cannot read " + path + ": " + std::strerror(error));
}

}  // namespace

std::string readPolicyFile(const std::string& path)
{
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file)
        fail(path, errno);
    std::string text;
    char buffer[16384];
    for (;;) {
        const std::size_t n = std::fread(buffer, 1, sizeof(buffer), file.get());
        text.append(buffer, n);
        if (text.size() > kMaxPolicyFileBytes)
            throw PolicyFileError("cannot read " + path + ": larger than " +
                                  std::to_string(kMaxPolicyFileBytes >> 20) + " MiB, too large for a policy file");
        if (n < sizeof(buffer)) {
            if (std::ferror(file.get()))
                fail(path, errno ? errno : EIO);  // a directory gives EISDIR here
            break;
        }
    }
    return text;
}

}  // namespace shhim::core
