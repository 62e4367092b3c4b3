// etcd_ipam_bench: allocations per second and p50/p99 ADD latency of rdmashare-ipam (in-process
// IpamAdd, the code the binary runs) with 1 and 8 concurrent clients, on the etcd store (a real
// etcd on loopback, each client a distinct node; plain and over TLS) and on the local store
// (baseline), same run; the etcd rows with per-node blocks (the default) and without. TLS twice:
// with a full handshake per ADD (session cache off, store.tls.sessionCacheSeconds 0) and resuming
// the session the previous ADD cached under the data dir (the default); "x plain" is the plain etcd
// rate over the row's rate.
//
// 2. the scale case: 8 nodes x 8 concurrent clients and 1000 ADDs of distinct containers,
// on the etcd store with and without per-node blocks and on the local store (each node its own).
//
// 3. where TLS time goes: one etcd read (Get of one key) per request, plain and over TLS, either
// on one kept connection per client (no handshake at all: what etcd's own TLS serving costs, a
// floor no client-side change can go under) or on a new client per request (one handshake each:
// full, or resuming the cached session, as every plugin run does).
//
// Usage: etcd_ipam_bench [adds-per-client (default 200) [scale ADDs (default 1000)]]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cni/ipam/etcd_client.h"
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

Figures Summarize(std::vector<std::vector<double>>& lat, const std::vector<int>& failures,
                  double secs);

// `nodes` simulated nodes (distinct nodeName and data dir) with `clients` concurrent clients
// each; `total` ADDs of distinct containers spread over all clients.
Figures RunCase(const json& store, const std::string& network, const std::string& data_dir,
                int nodes, int clients, int total) {
  const int threads_n = nodes * clients;
  std::vector<std::vector<double>> lat(threads_n);
  std::vector<int> failures(threads_n, 0);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&, t] {
      const int node = t / clients;
      IpamArgs args;
      args.network_name = network;
      args.ifname = "net1";
      args.ipam_conf = {{"type", "rdmashare-ipam"},
                        {"subnet", "10.40.0.0/16"},
                        {"dataDir", fmt::format("{}/{}/node{}", data_dir, network, node)},
                        {"nodeName", fmt::format("node{}", node)}};
      if (!store.is_null()) args.ipam_conf["store"] = store;
      const int adds = total / threads_n + (t < total % threads_n ? 1 : 0);
      for (int i = 0; i < adds; ++i) {
        args.container_id = fmt::format("c{}x{}", t, i);
        auto t0 = Clock::now();
        bool ok = IpamAdd(args).ok();
        lat[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!ok) ++failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  return Summarize(lat, failures, std::chrono::duration<double>(Clock::now() - start).count());
}

Figures Summarize(std::vector<std::vector<double>>& lat, const std::vector<int>& failures,
                  double secs) {
  std::vector<double> all;
  Figures f;
  for (size_t t = 0; t < lat.size(); ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    f.failures += failures[t];
  }
  if (all.empty()) return f;
  std::sort(all.begin(), all.end());
  f.per_second = all.size() / secs;
  f.p50_ms = all[all.size() / 2];
  f.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return f;
}

// `clients` threads, each `per_client` Gets of `key`: on one client made up front (`kept`: its
// connection is reused) or on a new client per Get (a new connection and handshake each).
Figures RunGets(const EtcdOptions& options, const std::string& key, int clients, int per_client,
                bool kept) {
  std::vector<std::vector<double>> lat(clients);
  std::vector<int> failures(clients, 0);
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<EtcdClient> client;
      if (kept) {
        auto c = EtcdClient::Create(options);
        if (!c.ok()) {
          failures[t] = per_client;
          return;
        }
        client = std::move(*c);
      }
      for (int i = 0; i < per_client; ++i) {
        auto t0 = Clock::now();
        bool ok = false;
        if (kept) {
          ok = client->Get(key).ok();
        } else if (auto c = EtcdClient::Create(options); c.ok()) {
          ok = (*c)->Get(key).ok();
        }
        lat[t].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!ok) ++failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  return Summarize(lat, failures, std::chrono::duration<double>(Clock::now() - start).count());
}

json WithBlocks(json store, int block_size) {
  store["blockSize"] = block_size;
  return store;
}

int Main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  int adds = argc > 1 ? std::atoi(argv[1]) : 200;
  int scale_adds = argc > 2 ? std::atoi(argv[2]) : 1000;
  if (adds <= 0 || scale_adds <= 0) {
    std::fprintf(stderr, "usage: etcd_ipam_bench [adds-per-client > 0 [scale-adds > 0]]\n");
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
  std::printf(
      "rdmashare-ipam ADD (in-process IpamAdd, a new etcd client per ADD as each plugin\n"
      "run makes); etcd stores with blocks of 16 (the default) and without blocks\n"
      "(blockSize 0: every ADD reads the whole pool, the design before blocks)\n\n");
  std::printf("1. %d ADDs per client; 8 clients = 8 nodes (etcd) or one node's 8 clients (local)\n",
              adds);
  std::printf("%-34s %8s %12s %10s %10s %9s %8s\n", "store", "clients", "allocs/s", "p50 ms",
              "p99 ms", "failures", "x plain");
  int run = 0;
  for (int clients : {1, 8}) {
    double plain_rate = 0;
    for (const auto& [name, store] :
         {std::make_pair(std::string("local (fsync)"), json()),
          std::make_pair(std::string("etcd, blocks of 16"), etcd_store),
          std::make_pair(std::string("etcd, no blocks"), WithBlocks(etcd_store, 0)),
          std::make_pair(std::string("etcd TLS, full handshake/ADD"), etcd_tls_full_store),
          std::make_pair(std::string("etcd TLS, resumed session"), etcd_tls_store)}) {
      bool local = store.is_null();
      Figures f = RunCase(store, fmt::format("bench{}", run++), dir.path(), local ? 1 : clients,
                          local ? clients : 1, clients * adds);
      if (store == etcd_store) plain_rate = f.per_second;
      bool tls = store.contains("tls");
      std::string ratio =
          tls && f.per_second > 0 ? fmt::format("{:.2f}", plain_rate / f.per_second) : "";
      std::printf("%-34s %8d %12.0f %10.2f %10.2f %9d %8s\n", name.c_str(), clients, f.per_second,
                  f.p50_ms, f.p99_ms, f.failures, ratio.c_str());
    }
  }
  std::printf(
      "\n2. 8 nodes x 8 concurrent clients, %d ADDs of distinct containers (local: each "
      "node its own store)\n",
      scale_adds);
  std::printf("%-34s %12s %10s %10s %9s\n", "store", "allocs/s", "p50 ms", "p99 ms", "failures");
  for (const auto& [name, store] :
       {std::make_pair(std::string("local (fsync), per node"), json()),
        std::make_pair(std::string("etcd, blocks of 16"), etcd_store),
        std::make_pair(std::string("etcd, no blocks"), WithBlocks(etcd_store, 0))}) {
    Figures f = RunCase(store, fmt::format("bench{}", run++), dir.path(), 8, 8, scale_adds);
    std::printf("%-34s %12.0f %10.2f %10.2f %9d\n", name.c_str(), f.per_second, f.p50_ms, f.p99_ms,
                f.failures);
  }

  // 3. One key read per request; "x plain" is the plain rate of the same connection mode over
  // the row's rate.
  EtcdOptions plain_opts;
  plain_opts.endpoints = etcd.Endpoints();
  EtcdOptions tls_full_opts;
  tls_full_opts.endpoints = etcd_tls.Endpoints();
  tls_full_opts.tls.ca = pki.ca();
  EtcdOptions tls_resumed_opts = tls_full_opts;
  tls_resumed_opts.tls_sessions.base_dir = dir.path();
  tls_resumed_opts.tls_sessions.sub_dir = "bench-get-sessions";
  const std::string key = "/rdmashare-bench/get";
  for (const EtcdOptions* o : {&plain_opts, &tls_full_opts}) {
    auto c = EtcdClient::Create(*o);
    if (!c.ok() || !(*c)->Put(key, "value").ok()) {
      std::fprintf(stderr, "etcd Put of %s failed\n", key.c_str());
      return 1;
    }
  }
  std::printf(
      "\n3. one etcd read per request (%d per client): on a kept connection (no handshake) or on a "
      "new client per request\n",
      adds);
  std::printf("%-34s %8s %12s %10s %10s %9s %8s\n", "connection", "clients", "reads/s", "p50 ms",
              "p99 ms", "failures", "x plain");
  for (int clients : {1, 8}) {
    double kept_plain = 0, new_plain = 0;
    for (const auto& [name, opts, kept] :
         {std::make_tuple(std::string("kept, plain"), &plain_opts, true),
          std::make_tuple(std::string("kept, TLS"), &tls_full_opts, true),
          std::make_tuple(std::string("new per read, plain"), &plain_opts, false),
          std::make_tuple(std::string("new per read, TLS full"), &tls_full_opts, false),
          std::make_tuple(std::string("new per read, TLS resumed"), &tls_resumed_opts, false)}) {
      Figures f = RunGets(*opts, key, clients, adds, kept);
      bool plain = opts == &plain_opts;
      if (plain) (kept ? kept_plain : new_plain) = f.per_second;
      double base = kept ? kept_plain : new_plain;
      std::string ratio =
          !plain && f.per_second > 0 ? fmt::format("{:.2f}", base / f.per_second) : "";
      std::printf("%-34s %8d %12.0f %10.2f %10.2f %9d %8s\n", name.c_str(), clients, f.per_second,
                  f.p50_ms, f.p99_ms, f.failures, ratio.c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace rdmashare::cni::ipam

int main(int argc, char** argv) { return rdmashare::cni::ipam::Main(argc, argv); }
