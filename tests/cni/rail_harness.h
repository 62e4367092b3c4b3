// RailHarness: a miniature rail-optimised GPU node built from real kernel objects, for the CNI
// end-to-end tests and the benchmark.
//
//   node netns  (stands in for the host; rail NICs keep the walkthrough's names because the
//                namespace is private to this harness: enp11s0f0np0 ... enp18s0f0np0)
//     enp1Ks0f0np0  <-veth->  railK in the gateway netns, 172.16.1K.254/24 (the rail's gateway)
//   pod netns   eth0 (veth to the node) 10.233.P.Q/32, "default via 169.254.1.1 dev eth0"
//               like calico; macvlans of the rail NICs are added by the plugin under test.
//
// Every namespace name carries the pid and a counter, so several test processes (ctest -j) and
// several harnesses per process coexist. Plugins run as child processes forked from a thread
// inside the node netns (the child inherits it), exactly as a runtime on the node would run them.
// Not thread-safe for construction/teardown; Run() may be called from many threads at once.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace rdmashare::cni::testing {

// Result of one plugin execution.
struct PluginRun {
  int exit_code = -1;
  std::string stdout_data;
  // stdout parsed (null when it was empty or not JSON).
  nlohmann::json json;
  // The CNI error code when exit_code != 0 (0 otherwise).
  int code() const {
    return json.is_object() && json.contains("code") ? json["code"].get<int>() : 0;
  }
  std::string msg() const {
    return json.is_object() && json.contains("msg") ? json["msg"].get<std::string>() : "";
  }
};

class RailHarness {
 public:
  // Builds the node and gateway namespaces and `rails` rails (1..8).
  explicit RailHarness(int rails = 8);
  ~RailHarness();
  RailHarness(const RailHarness&) = delete;
  RailHarness& operator=(const RailHarness&) = delete;

  // Walkthrough names and addresses of rail k (1-based).
  static std::string RailNic(int k);      // "enp11s0f0np0" for k = 1
  static std::string RailSubnet(int k);   // "172.16.11.0/24"
  static std::string RailGateway(int k);  // "172.16.11.254"

  const std::string& node_ns() const { return node_ns_; }  // path
  const std::string& node_ns_name() const { return node_name_; }
  const std::string& gateway_ns_name() const { return gw_name_; }

  // Creates a pod netns with the stand-in calico eth0; returns its path.
  std::string AddPod();
  // Deletes a pod netns (its links go with it).
  void RemovePod(const std::string& path);
  // `ip netns` name of a pod path.
  static std::string NsName(const std::string& path);

  // Runs `binary` in the node netns with exactly `env` and `stdin_data`.
  PluginRun Run(const std::string& binary, const std::map<std::string, std::string>& env,
                const std::string& stdin_data) const;

  // Runs a shell command (on the test host) and returns its stdout; fails the test on a non-zero
  // exit unless `allow_fail`.
  static std::string Sh(const std::string& cmd, bool allow_fail = false);
  // `ip -n <ns> <args>` output.
  static std::string Ip(const std::string& ns_name, const std::string& args);

  // The rail's gateway stops answering (its address is removed).
  void SilenceGateway(int k);
  // The rail NIC (node side) goes down / disappears.
  void SetRailDown(int k);
  void DeleteRail(int k);

 private:
  int rails_;
  std::string node_name_, node_ns_, gw_name_, gw_ns_;
  std::vector<std::string> pods_;
  int pod_counter_ = 0;
};

}  // namespace rdmashare::cni::testing
