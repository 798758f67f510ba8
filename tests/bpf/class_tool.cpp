// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
// shhim-class-tool: drives the priority-class half of shhim on a running
// datapath (pins made by shhimd) through the agent's own ClassControl, from
// flags instead of a policy file: a bench tool for trying class tables by
// hand. (The end-to-end tests drive shhimd itself: --policy, `shhimctl
// policy apply`, SIGHUP, `shhimctl stress`.) Builds class tables
// from flags, applies them (HTB where a capacity is given), sets the stress
// mode and ticks like the agent (auto stress, lease renewal) for --hold
// seconds; or applies policies in a loop (--reload). Prints what it did as
// one JSON line on stdout; --report writes `shhimctl classes -o json`'s
// document at the end.
//
//   shhim-class-tool --pin-root /sys/fs/bpf/shhim-test-123 --iface veth0 --capacity veth0=20000000
//       --service 198.18.0.10:8001=life-critical --rule 198.18.0.0/24:8000-8099=bulk
//       --stress on --hold 30 --report classes.json
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "agent/class_control.h"
#include "core/classify_tables.h"
#include "frame_builder.hpp"

namespace core = shhim::core;
using shhim::bpftest::IpAddr;

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint8_t class_arg(const std::string& name) {
  const auto c = core::classFromName(name);
  if (!c) throw std::invalid_argument("unknown class " + name);
  return *c;
}

// "ADDR:PORT[/udp]=CLASS", ADDR may be [v6].
core::ServiceClass parse_service(const std::string& arg, std::uint32_t index) {
  const auto eq = arg.rfind('=');
  if (eq == std::string::npos) throw std::invalid_argument("--service " + arg + ": want ADDR:PORT=CLASS");
  std::string ep = arg.substr(0, eq);
  std::uint8_t proto = 6;
  if (ep.size() > 4 && ep.substr(ep.size() - 4) == "/udp") {
    proto = 17;
    ep.resize(ep.size() - 4);
  }
  const auto colon = ep.rfind(':');
  std::string addr = ep.substr(0, colon);
  if (!addr.empty() && addr.front() == '[') addr = addr.substr(1, addr.size() - 2);
  const IpAddr a = IpAddr::parse(addr);
  core::ServiceClass s;
  s.endpoint.address = a.mapped();
  s.endpoint.family = static_cast<std::uint8_t>(a.family);
  s.endpoint.port = static_cast<std::uint16_t>(std::stoi(ep.substr(colon + 1)));
  s.endpoint.protocol = proto;
  s.class_id = class_arg(arg.substr(eq + 1));
  s.service = ep;
  s.service_index = index;
  return s;
}

// "CIDR[:LO[-HI]][/tcp|/udp]=CLASS"
core::ClassRule parse_rule(const std::string& arg, std::uint32_t index) {
  const auto eq = arg.rfind('=');
  if (eq == std::string::npos) throw std::invalid_argument("--rule " + arg + ": want CIDR[:LO-HI]=CLASS");
  std::string spec = arg.substr(0, eq);
  core::ClassRule r;
  r.name = spec;
  r.rule_index = index;
  r.class_id = class_arg(arg.substr(eq + 1));
  for (const auto& [suffix, proto] : {std::pair<const char*, std::uint8_t>{"/tcp", 6}, {"/udp", 17}}) {
    if (spec.size() > 4 && spec.substr(spec.size() - 4) == suffix) {
      r.protocol = proto;
      spec.resize(spec.size() - 4);
    }
  }
  const auto slash = spec.find('/');
  if (slash == std::string::npos) throw std::invalid_argument("--rule " + arg + ": the prefix needs a /length");
  const auto colon = spec.find(':', slash);
  const IpAddr a = IpAddr::parse(spec.substr(0, slash));
  const int len = std::stoi(spec.substr(slash + 1, colon == std::string::npos ? std::string::npos : colon - slash - 1));
  r.prefix_length = static_cast<std::uint8_t>(a.family == 4 ? 96 + len : len);
  r.prefix = core::maskAddress(a.mapped(), r.prefix_length);
  if (colon != std::string::npos) {
    const std::string ports = spec.substr(colon + 1);
    const auto dash = ports.find('-');
    r.port_lo = static_cast<std::uint16_t>(std::stoi(ports.substr(0, dash)));
    r.port_hi = dash == std::string::npos ? r.port_lo : static_cast<std::uint16_t>(std::stoi(ports.substr(dash + 1)));
  }
  return r;
}

std::string to_json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

void usage() {
  std::fputs(
      "usage: shhim-class-tool --pin-root DIR --iface IF... [--capacity IF=BPS] [--remark IF]\n"
      "         [--service ADDR:PORT[/udp]=CLASS]... [--rule CIDR[:LO[-HI]][/tcp|/udp]=CLASS]...\n"
      "         [--default CLASS] [--threshold X] [--stress on|off|auto] [--hold SECONDS]\n"
      "         [--reload N --reload-interval-ms MS] [--report FILE]\n"
      "  --reload N  applies N policies in rotation: the tables given, the same with an extra rule and\n"
      "              another default class, and an invalid one (the traffic's services moved to bulk,\n"
      "              plus an interface that does not exist), which must be refused and change nothing\n",
      stderr);
}

}  // namespace

int main(int argc, char** argv) try {
  std::string pin_root, report_file, stress;
  std::vector<std::string> interfaces;
  core::ClassTables tables = core::defaultClassTables();
  double hold_seconds = 0;
  int reload = 0, reload_interval_ms = 100;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--pin-root") pin_root = value();
    else if (a == "--iface") interfaces.push_back(value());
    else if (a == "--capacity" || a == "--remark") {
      const std::string v = value();
      const auto eq = v.find('=');
      const std::string name = a == "--capacity" ? v.substr(0, eq) : v;
      core::InterfaceConfig* config = nullptr;
      for (auto& c : tables.interfaces)
        if (c.name == name) config = &c;
      if (!config) {
        tables.interfaces.push_back(core::InterfaceConfig{name, false, 0});
        config = &tables.interfaces.back();
      }
      if (a == "--capacity") config->capacity_bps = std::stoull(v.substr(eq + 1));
      else config->remark_untrusted = true;
    } else if (a == "--service") tables.services.push_back(parse_service(value(), static_cast<std::uint32_t>(tables.services.size())));
    else if (a == "--rule") tables.rules.push_back(parse_rule(value(), static_cast<std::uint32_t>(tables.rules.size())));
    else if (a == "--default") tables.default_class = class_arg(value());
    else if (a == "--threshold") tables.stress_enter = std::stod(value());
    else if (a == "--stress") stress = value();
    else if (a == "--hold") hold_seconds = std::stod(value());
    else if (a == "--reload") reload = std::stoi(value());
    else if (a == "--reload-interval-ms") reload_interval_ms = std::stoi(value());
    else if (a == "--report") report_file = value();
    else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      throw std::invalid_argument("unknown option " + a);
    }
  }
  if (pin_root.empty()) throw std::invalid_argument("--pin-root is required");

  ::signal(SIGTERM, on_signal);
  ::signal(SIGINT, on_signal);
  auto control = shhim::agent::ClassControl::start(pin_root, interfaces,
                                                   [](const std::string& line) { std::cerr << line << "\n"; });
  std::string summary = "{";
  if (reload > 0) {
    core::ClassTables alternate = tables;
    alternate.rules.push_back(parse_rule("198.19.200.0/24=imaging", static_cast<std::uint32_t>(tables.rules.size())));
    alternate.default_class = tables.default_class == core::kClassBulk ? core::kClassAdministrative : core::kClassBulk;
    alternate.classes[core::kClassImaging].dscp = 12;
    core::ClassTables invalid = tables;
    for (auto& s : invalid.services) s.class_id = core::kClassBulk;
    invalid.interfaces.push_back(core::InterfaceConfig{"shhim-nosuch0", true, 0});
    const std::uint32_t gen_before = control->report().policy_generation();
    int applied = 0, refused = 0, unexpected = 0;
    for (int n = 0; n < reload && !g_stop; ++n) {
      const int kind = n % 3;
      try {
        control->applyTables(kind == 0 ? tables : kind == 1 ? alternate : invalid);
        if (kind == 2) ++unexpected;
        ++applied;
      } catch (const shhim::agent::ClassControlError& e) {
        if (kind != 2) {
          ++unexpected;
          std::cerr << "apply " << n << " failed: " << e.what() << "\n";
        }
        ++refused;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(reload_interval_ms));
    }
    // End on the tables given, so what follows sees them.
    control->applyTables(tables);
    const std::uint32_t gen_after = control->report().policy_generation();
    summary += "\"applied\":" + std::to_string(applied) + ",\"refused\":" + std::to_string(refused) +
               ",\"unexpected\":" + std::to_string(unexpected) + ",\"generation_before\":" + std::to_string(gen_before) +
               ",\"generation_after\":" + std::to_string(gen_after) + ",";
  } else {
    const std::uint32_t gen = control->applyTables(tables);
    summary += "\"generation\":" + std::to_string(gen) + ",";
  }
  if (!stress.empty()) control->setStress(stress);
  const std::uint64_t end = monotonic_ns() + static_cast<std::uint64_t>(hold_seconds * 1e9);
  std::uint32_t max_level = 0;
  while (!g_stop && monotonic_ns() < end) {
    control->tick(monotonic_ns());
    max_level = std::max(max_level, control->report().stress().level());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  summary += "\"max_stress_level\":" + std::to_string(max_level) + "}";
  if (!report_file.empty()) {
    control->tick(monotonic_ns());
    std::ofstream(report_file) << to_json(control->report()) << "\n";
  }
  std::cout << summary << std::endl;
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "shhim-class-tool: %s\n", e.what());
  return 2;
}
