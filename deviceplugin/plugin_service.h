// DevicePluginService: the kubelet-facing gRPC services of one ResourcePool.
//
// Implements v1beta1.DevicePlugin (ListAndWatch, Allocate, ...) and, for the plugin-watcher
// registration mode, pluginregistration.Registration (GetInfo, NotifyRegistrationStatus).
// The pool is owned elsewhere and outlives the service. gRPC calls it from its own threads; all
// methods are thread-safe. ListAndWatch streams block only their own handler thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "deviceplugin/resource_pool.h"
#include "deviceplugin/v1beta1/api.grpc.pb.h"
#include "pluginregistration/v1/api.grpc.pb.h"

namespace rdmashare::deviceplugin {

// Converts a snapshot into the ListAndWatch message kubelet receives.
v1beta1::ListAndWatchResponse ToListAndWatchResponse(const PoolSnapshot& snapshot);

// Builds the Allocate answer for one container from a snapshot. With a non-empty `cdi_kind`
// (CDI mode) the nodes and the CLI mount come from the resource's CDI spec: the answer names
// "<kind>=all" in cdi_devices and in the cdi.k8s.io/ annotation (for kubelets predating the
// field) and carries no DeviceSpecs or mounts. Environment variables are set either way.
v1beta1::ContainerAllocateResponse ToContainerAllocateResponse(const PoolSnapshot& snapshot,
                                                               const std::string& cdi_kind = "");

// How a DevicePluginService answers, beyond its pool.
struct ServiceOptions {
  // CDI mode: Allocate answers with the CDI device of the pool (see ToContainerAllocateResponse).
  bool cdi = false;
  // Runs after every Allocate with its outcome (metrics); may be empty. Called on gRPC threads.
  std::function<void(bool ok)> on_allocate;
};

class DevicePluginService final : public v1beta1::DevicePlugin::Service {
 public:
  explicit DevicePluginService(ResourcePool* pool, ServiceOptions options = {})
      : pool_(pool), options_(std::move(options)) {}

  grpc::Status GetDevicePluginOptions(grpc::ServerContext* ctx, const v1beta1::Empty* req,
                                      v1beta1::DevicePluginOptions* resp) override;
  grpc::Status ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty* req,
                            grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override;
  grpc::Status GetPreferredAllocation(grpc::ServerContext* ctx,
                                      const v1beta1::PreferredAllocationRequest* req,
                                      v1beta1::PreferredAllocationResponse* resp) override;
  grpc::Status Allocate(grpc::ServerContext* ctx, const v1beta1::AllocateRequest* req,
                        v1beta1::AllocateResponse* resp) override;
  grpc::Status PreStartContainer(grpc::ServerContext* ctx,
                                 const v1beta1::PreStartContainerRequest* req,
                                 v1beta1::PreStartContainerResponse* resp) override;

  // Makes every open ListAndWatch return (server shutdown).
  void Stop() {
    stopping_.store(true);
    pool_->Kick();
  }

  // Number of ListAndWatch streams currently open.
  int open_streams() const { return open_streams_.load(); }

 private:
  ResourcePool* const pool_;
  const ServiceOptions options_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_streams_{0};
};

// pluginregistration.Registration for plugin-watcher mode. `on_rejected` runs (on a gRPC
// thread; it must not block on the server) when kubelet reports plugin_registered=false.
class WatcherRegistrationService final : public pluginregistration::Registration::Service {
 public:
  WatcherRegistrationService(std::string resource_name, std::string endpoint,
                             std::function<void(const std::string& error)> on_rejected)
      : resource_name_(std::move(resource_name)),
        endpoint_(std::move(endpoint)),
        on_rejected_(std::move(on_rejected)) {}

  grpc::Status GetInfo(grpc::ServerContext* ctx, const pluginregistration::InfoRequest* req,
                       pluginregistration::PluginInfo* resp) override;
  grpc::Status NotifyRegistrationStatus(
      grpc::ServerContext* ctx, const pluginregistration::RegistrationStatus* req,
      pluginregistration::RegistrationStatusResponse* resp) override;

  // True once kubelet reported a successful registration.
  bool registered() const { return registered_.load(); }

 private:
  const std::string resource_name_;
  const std::string endpoint_;
  const std::function<void(const std::string&)> on_rejected_;
  std::atomic<bool> registered_{false};
};

}  // namespace rdmashare::deviceplugin
