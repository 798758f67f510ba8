#include "datapath/error.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace shhim::datapath {

Error::Error(const std::string& what, int error) : std::runtime_error(what), error_(error) {}

std::string errnoText(int error)
{
    error = std::abs(error);
    if (error >= __LIBBPF_ERRNO__START && error < __LIBBPF_ERRNO__END) {
        char buffer[128] = {};
        libbpf_strerror(error, buffer, sizeof(buffer));
        return buffer;
    }
    // strerrorname_np (glibc 2.32+) gives the symbolic name scripts grep for.
    const char* name = strerrorname_np(error);
    std::string text = std::strerror(error);
    if (name)
        text += std::string(" (") + name + ")";
    return text;
}

void throwErrno(const std::string& context, int error)
{
    throw Error(context + ": " + errnoText(error), std::abs(error));
}

}  // namespace shhim::datapath
