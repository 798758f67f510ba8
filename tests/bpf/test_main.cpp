// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// shhim_bpf_tests: golden packets, exchanges and fuzzing through
// BPF_PROG_TEST_RUN. Needs root.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "shhim_bpf_tests: needs root (BPF_PROG_TEST_RUN, bpffs pins)\n");
    return 1;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
