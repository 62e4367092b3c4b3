// etcd_ipam_bench: allocations per second and p50/p99 ADD latency of rdmashare-ipam (in-process
// IpamAdd, the code the binary runs) with 1 and 8 concurrent clients, on the etcd store (a real
// etcd on loopback, each client a distinct node; plain and over TLS) and on the local store
// (baseline), same run. TLS twice: with a full handshake per ADD (session cache off,
// store.tls.sessionCacheSeconds 0) and resuming the session the previous ADD cached under the
// data dir (the default); "x plain" is the plain etcd rate over the row's rate.
//
// Usage: etcd_ipam_bench [adds-per-client (default 200)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cni/ipam/ipam.h"
#include "common/testing/temp_dir.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"
#include "tests/etcd/etcd_harness.h"

namespace rdmashare::cni::ipam {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Figures {
  double per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int failures = 0;
};

Figures RunCase(const json& store, const std::string& network, const std::string& data_dir,
                int clients, int adds) {
  std::vector<std::vector<double>> lat(clients);
  std::vector<int> failures(clients, 0);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      IpamArgs args;
      args.network_name = network;
      args.ifname = "net1";
      args.ipam_conf = {{"type", "rdmashare-ipam"},
                        {"subnet", "10.40.0.0/16"},
                        {"dataDir", fmt::format("{}/node{}", data_dir, store.is_null() ? 0 : c)},
                        {"nodeName", fmt::format("node{}", c)}};
      if (!store.is_null()) args.ipam_conf["store"] = store;
      for (int i = 0; i < adds; ++i) {
        args.container_id = fmt::format("c{}x{}", c, i);
        auto t0 = Clock::now();
        bool ok = IpamAdd(args).ok();
        lat[c].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!ok) ++failures[c];
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  Figures f;
  for (int c = 0; c < clients; ++c) {
    all.insert(all.end(), lat[c].begin(), lat[c].end());
    f.failures += failures[c];
  }
  std::sort(all.begin(), all.end());
  f.per_second = all.size() / secs;
  f.p50_ms = all[all.size() / 2];
  f.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return f;
}

int Main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int adds = argc > 1 ? std::atoi(argv[1]) : 200;
  if (adds <= 0) {
    std::fprintf(stderr, "usage: etcd_ipam_bench [adds-per-client > 0]\n");
    return 2;
  }
  testing::EtcdCluster etcd(1);
  if (!etcd.ok()) {
    std::fprintf(stderr, "etcd did not start\n");
    return 1;
  }
  // A second etcd serving TLS (test CA from the openssl CLI): every IpamAdd opens a new client,
  // as every plugin invocation does, so each ADD pays one TLS handshake.
  testing::TestPki pki;
  if (!pki.ok()) {
    std::fprintf(stderr, "test PKI: %s\n", pki.error().c_str());
    return 1;
  }
  testing::EtcdTlsConfig tls;
  tls.cert = pki.server_cert();
  tls.key = pki.server_key();
  tls.ca = pki.ca();
  testing::EtcdCluster etcd_tls(1, tls);
  if (!etcd_tls.ok()) {
    std::fprintf(stderr, "etcd with TLS did not start\n");
    return 1;
  }
  testing::TempDir dir;
  json etcd_store = {{"type", "etcd"}, {"endpoints", etcd.Endpoints()}};
  json etcd_tls_full_store = {{"type", "etcd"},
                              {"endpoints", etcd_tls.Endpoints()},
                              {"tls", {{"ca", pki.ca()}, {"sessionCacheSeconds", 0}}}};
  json etcd_tls_store = {
      {"type", "etcd"}, {"endpoints", etcd_tls.Endpoints()}, {"tls", {{"ca", pki.ca()}}}};
  std::printf("rdmashare-ipam ADD, %d ADDs per client (in-process IpamAdd)\n", adds);
  std::printf("%-32s %8s %12s %10s %10s %9s %8s\n", "store", "clients", "allocs/s", "p50 ms",
              "p99 ms", "failures", "x plain");
  int run = 0;
  for (int clients : {1, 8}) {
    double plain_rate = 0;
    for (const auto& [name, store] :
         {std::make_pair(std::string("local (fsync)"), json()),
          std::make_pair(std::string("etcd (1 member, loopback)"), etcd_store),
          std::make_pair(std::string("etcd TLS, full handshake/ADD"), etcd_tls_full_store),
          std::make_pair(std::string("etcd TLS, resumed session"), etcd_tls_store)}) {
      Figures f = RunCase(store, fmt::format("bench{}", run++), dir.path(), clients, adds);
      if (store == etcd_store) plain_rate = f.per_second;
      bool tls = store.contains("tls");
      std::printf(
          "%-32s %8d %12.0f %10.2f %10.2f %9d %8s\n", name.c_str(), clients, f.per_second, f.p50_ms,
          f.p99_ms, f.failures,
          tls && f.per_second > 0 ? fmt::format("{:.2f}", plain_rate / f.per_second).c_str() : "");
    }
  }
  return 0;
}

}  // namespace
}  // namespace rdmashare::cni::ipam

int main(int argc, char** argv) { return rdmashare::cni::ipam::Main(argc, argv); }
