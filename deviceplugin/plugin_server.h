// PluginServer: the gRPC server of one ResourcePool on its unix socket.
//
// In device-plugins mode the socket lives in <kubelet-dir>/device-plugins/ and serves
// v1beta1.DevicePlugin; in plugin-watcher mode it lives in <kubelet-dir>/plugins_registry/ and
// serves pluginregistration.Registration as well. Start/Stop are called by the daemon's event
// loop thread only; socket_inode() and rejected() may be read from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "deviceplugin/plugin_service.h"
#include "deviceplugin/resource_pool.h"
#include "grpcpp/channel.h"
#include "grpcpp/server.h"

namespace rdmashare::deviceplugin {

// "rdmashare-<prefix>_<name>.sock", with characters outside [A-Za-z0-9._-] as '_'. Never the Go
// plugin's "<resourceName>.sock", so both plugins can run side by side during a migration.
std::string SocketNameFor(const ResourceConfig& config);

class PluginServer {
 public:
  // `wake` is called (from a gRPC thread) when kubelet rejects a watcher-mode registration, so
  // the event loop can re-create the socket.
  PluginServer(ResourcePool* pool, std::string socket_path, bool watcher_mode,
               std::function<void()> wake, ServiceOptions service_options = {});
  ~PluginServer();
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  // Removes a stale socket file, listens, restricts the socket to mode 0600.
  absl::Status Start();
  // Ends open streams and stops the server; removes the socket when it is still ours.
  void Stop();
  bool running() const { return server_ != nullptr; }

  const std::string& socket_path() const { return socket_path_; }
  // Inode of the socket we created (0 when not running). The daemon compares it with the file
  // on disk to notice deletion or replacement.
  ino_t socket_inode() const { return socket_inode_; }
  // True when the socket file on disk is still the one we created.
  bool SocketIntact() const;
  // Kubelet sent NotifyRegistrationStatus(false) since the last Start (watcher mode).
  bool rejected() const { return rejected_.load(); }
  // Watcher mode: kubelet confirmed registration since the last Start.
  bool watcher_registered() const;
  int open_streams() const { return service_ ? service_->open_streams() : 0; }

 private:
  ResourcePool* const pool_;
  const std::string socket_path_;
  const bool watcher_mode_;
  const std::function<void()> wake_;
  const ServiceOptions service_options_;
  std::unique_ptr<DevicePluginService> service_;
  std::unique_ptr<WatcherRegistrationService> registration_;
  std::unique_ptr<grpc::Server> server_;
  ino_t socket_inode_ = 0;
  std::atomic<bool> rejected_{false};
};

// A channel to kubelet's Registration socket that fails fast instead of waiting in gRPC's
// reconnect backoff (the daemon owns the retry policy). One channel serves concurrent calls.
std::shared_ptr<grpc::Channel> KubeletChannel(const std::string& kubelet_socket);

// Calls v1beta1.Registration/Register over `channel` (to `kubelet_socket`, named in errors).
// `endpoint` is the bare file name of our socket in the device-plugins directory. Unavailable
// when kubelet does not answer within `timeout`; the gRPC error otherwise. Thread-safe.
absl::Status RegisterWithKubelet(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& kubelet_socket, const std::string& endpoint,
                                 const std::string& resource_name,
                                 std::chrono::milliseconds timeout);

}  // namespace rdmashare::deviceplugin
