#include "deviceplugin/registration.h"

#include <memory>
#include <thread>

#include "deviceplugin/plugin_server.h"

namespace rdmashare::deviceplugin {

std::vector<absl::Status> RegisterAll(const std::string& kubelet_socket,
                                      const std::vector<RegistrationRequest>& requests,
                                      std::chrono::milliseconds timeout) {
  std::shared_ptr<grpc::Channel> channel = KubeletChannel(kubelet_socket);
  std::vector<absl::Status> results(requests.size());
  std::vector<std::thread> workers;
  workers.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    workers.emplace_back([&, i] {
      results[i] = RegisterWithKubelet(channel, kubelet_socket, requests[i].endpoint,
                                       requests[i].resource, timeout);
    });
  }
  for (std::thread& t : workers) t.join();
  return results;
}

bool WatcherFallbackDue(bool kubelet_present, bool any_watcher_registered,
                        std::chrono::steady_clock::time_point watcher_since,
                        std::chrono::milliseconds fallback_after,
                        std::chrono::steady_clock::time_point now) {
  return kubelet_present && now - watcher_since >= fallback_after && !any_watcher_registered;
}

}  // namespace rdmashare::deviceplugin
