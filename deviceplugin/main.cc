// rdmashare-dp: kubelet device plugin for shared RDMA HCAs. Thin main: flags, logging, config,
// RDMA netns mode check, then the Daemon. The one place that reads argv, the environment and
// signals.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <thread>

#include "common/absl_format.h"
#include "common/files.h"
#include "common/logging.h"
#include "deviceplugin/config.h"
#include "deviceplugin/daemon.h"
#include "deviceplugin/flags.h"
#include "deviceplugin/metrics_http.h"
#include "deviceplugin/resource_pool.h"
#include "fmt/format.h"
#include "rdma/device_events.h"
#include "rdma/device_scanner.h"
#include "rdma/netns_mode.h"
#include "rdma/udev_events.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

int Validate(const DpFlags& flags, const PluginConfig& config) {
  rdma::SysfsDeviceScanner scanner(flags.paths);
  absl::StatusOr<rdma::NodeInventory> inv = scanner.Scan();
  if (!inv.ok()) {
    std::cerr << "rdmashare-dp: scan " << flags.paths.sys_root << ": " << inv.status().message()
              << "\n";
    return kExitError;
  }
  std::cout << fmt::format("config {}: valid ({} resources, periodicUpdateInterval {}s)\n",
                           flags.config_path, config.resources.size(),
                           config.periodic_update_interval_s);
  std::cout << fmt::format("node: {} RDMA devices under {}\n", inv->devices.size(),
                           flags.paths.sys_root);
  int unmatched = 0;
  for (const ResourceConfig& rc : config.resources) {
    ResourcePool pool(rc, flags.paths.dev_root, flags.paths.host_dev_root);
    pool.Update(*inv);
    auto snap = pool.Current();
    if (snap->devices.empty()) {
      ++unmatched;
      std::cout << fmt::format("  {}: matches no RDMA device on this node (0 units)\n",
                               rc.FullName());
      continue;
    }
    std::cout << fmt::format("  {}: {} units{}\n", rc.FullName(), snap->ids.size(),
                             snap->healthy ? "" : " (Unhealthy: " + snap->health_cause + ")");
    for (const rdma::RdmaDevice& d : snap->devices) {
      std::string netdevs;
      for (const auto& n : d.netdevs) netdevs += (netdevs.empty() ? "" : ",") + n;
      std::cout << fmt::format("    {} pci={} netdev={} numa={}{}\n", d.ibdev,
                               d.pci_address.empty() ? "-" : d.pci_address,
                               netdevs.empty() ? "-" : netdevs, d.numa_node,
                               d.usable() ? "" : " (no uverbs node: not usable)");
    }
  }
  if (unmatched > 0) {
    std::cout << fmt::format(
        "warning: {} resource(s) match nothing here; they register with 0 units\n", unmatched);
  }
  return kExitOk;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<DpFlags> flags = ParseDpFlags(args);
  if (!flags.ok()) {
    std::cerr << "rdmashare-dp: " << flags.status().message() << "\n";
    return kExitUsage;
  }
  if (flags->help) {
    std::cout << DpUsage();
    return kExitOk;
  }
  if (flags->version) {
    std::cout << "rdmashare-dp " << RDMASHARE_VERSION << "\n";
    return kExitOk;
  }
  if (absl::Status st = SetupLogging(flags->log_level); !st.ok()) {
    std::cerr << "rdmashare-dp: " << st.message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::string> text = ReadFile(flags->config_path);
  if (!text.ok()) {
    spdlog::error("cannot read config: {}", text.status().message());
    return kExitError;
  }
  std::vector<std::string> warnings;
  absl::StatusOr<PluginConfig> config = ParseConfig(*text, &warnings);
  for (const std::string& w : warnings) spdlog::warn("config {}: {}", flags->config_path, w);
  if (!config.ok()) {
    spdlog::error("invalid config {}: {}", flags->config_path, config.status().message());
    return kExitError;
  }

  rdma::NetlinkNetnsModeReader netns_reader;
  absl::StatusOr<rdma::NetnsMode> mode = netns_reader.Read();
  if (!mode.ok()) {
    spdlog::warn("cannot read the RDMA netns mode: {}", mode.status().message());
  } else if (*mode == rdma::NetnsMode::kUnavailable) {
    spdlog::warn(
        "RDMA netns mode unavailable (no RDMA netlink in this kernel); assuming shared mode");
  } else if (absl::Status st = rdma::CheckNetnsModeForSharing(*mode); !st.ok()) {
    spdlog::error("{}", st.message());
    return kExitError;
  }

  if (flags->validate) return Validate(*flags, *config);

  // Signals go to a dedicated thread; block them before any other thread exists.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  // Our sockets must be born private (0600), not only chmod'ed after bind.
  ::umask(077);

  // libudev's monitor on the kernel source; the raw netlink socket if libudev refuses.
  std::unique_ptr<rdma::EventSource> events;
  absl::StatusOr<std::unique_ptr<rdma::UdevEventSource>> udev = rdma::UdevEventSource::Open();
  if (udev.ok()) {
    events = std::move(*udev);
  } else {
    absl::StatusOr<std::unique_ptr<rdma::NetlinkEventSource>> netlink =
        rdma::NetlinkEventSource::Open();
    if (netlink.ok()) {
      spdlog::warn("{}; reading kernel uevents from netlink directly", udev.status().message());
      events = std::move(*netlink);
    } else {
      spdlog::warn("no kernel device events ({}; {}); relying on the periodic rescan every {}s",
                   udev.status().message(), netlink.status().message(),
                   config->periodic_update_interval_s);
    }
  }

  MetricsRegistry registry;
  // The event loop wakes at least every 10 s; /healthz fails after 60 s without a beat.
  Heartbeat heartbeat(std::chrono::seconds(60));
  DaemonOptions opts;
  opts.paths = flags->paths;
  opts.config = *config;
  opts.config_path = flags->config_path;
  opts.cli_host_path = flags->cli_host_path;
  opts.cdi = flags->cdi;
  opts.cdi_dir = flags->cdi_dir;
  opts.metrics = flags->metrics_addr.empty() ? nullptr : &registry;
  opts.heartbeat = &heartbeat;
  Daemon daemon(std::move(opts), std::make_unique<rdma::SysfsDeviceScanner>(flags->paths),
                std::move(events));
  if (absl::Status st = daemon.Start(); !st.ok()) {
    spdlog::error("start failed: {}", st.message());
    return kExitError;
  }
  std::unique_ptr<HttpServer> http;
  if (!flags->metrics_addr.empty()) {
    HttpServerOptions hopts;
    hopts.address = flags->metrics_addr;
    http = std::make_unique<HttpServer>(
        hopts, &registry, [&heartbeat] { return heartbeat.Check(); },
        [&daemon] { return daemon.Ready(); });
    if (absl::Status st = http->Start(); !st.ok()) {
      spdlog::error("metrics endpoint: {}", st.message());
      return kExitError;
    }
    spdlog::info("serving /metrics, /healthz, /readyz on {} (port {})", flags->metrics_addr,
                 http->port());
  }
  std::thread signal_thread([&daemon, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig != 0) spdlog::info("received signal {}; shutting down", sig);
    daemon.Stop();
  });
  daemon.Run();
  // Run may also end without a signal (fatal poll error): release the signal thread.
  // SIGTERM is blocked in every thread and taken by the signal thread's sigwait: this wakes it,
  // it does not kill anything.
  // NOLINTNEXTLINE(bugprone-bad-signal-to-kill-thread)
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  if (http) http->Stop();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace
}  // namespace rdmashare::deviceplugin

int main(int argc, char** argv) {
  try {
    return rdmashare::deviceplugin::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rdmashare-dp: fatal: %s\n", e.what());
    return 1;
  }
}
