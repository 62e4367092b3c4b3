#include "deviceplugin/plugin_service.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "common/absl_format.h"
#include "deviceplugin/cdi.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {
namespace {

constexpr char kHealthy[] = "Healthy";
constexpr char kUnhealthy[] = "Unhealthy";
// How often an idle ListAndWatch handler checks for cancellation.
constexpr std::chrono::milliseconds kStreamPoll(200);

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace

v1beta1::ListAndWatchResponse ToListAndWatchResponse(const PoolSnapshot& snapshot) {
  v1beta1::ListAndWatchResponse resp;
  for (const std::string& id : snapshot.ids) {
    v1beta1::Device* dev = resp.add_devices();
    dev->set_id(id);
    dev->set_health(snapshot.healthy ? kHealthy : kUnhealthy);
    if (!snapshot.numa_nodes.empty()) {
      for (int64_t n : snapshot.numa_nodes) dev->mutable_topology()->add_nodes()->set_id(n);
    }
  }
  return resp;
}

v1beta1::ContainerAllocateResponse ToContainerAllocateResponse(const PoolSnapshot& snapshot,
                                                               const std::string& cdi_kind) {
  v1beta1::ContainerAllocateResponse resp;
  for (const auto& [name, value] : snapshot.envs) (*resp.mutable_envs())[name] = value;
  if (!cdi_kind.empty()) {
    const std::string qualified = CdiQualifiedName(cdi_kind);
    resp.add_cdi_devices()->set_name(qualified);
    (*resp.mutable_annotations())[CdiAnnotationKey(cdi_kind)] = qualified;
    return resp;
  }
  for (const DeviceNode& n : snapshot.nodes) {
    v1beta1::DeviceSpec* spec = resp.add_devices();
    spec->set_container_path(n.container_path);
    spec->set_host_path(n.host_path);
    spec->set_permissions(n.permissions);
  }
  if (!snapshot.cli_host_path.empty()) {
    v1beta1::Mount* m = resp.add_mounts();
    m->set_container_path(kCliContainerPath);
    m->set_host_path(snapshot.cli_host_path);
    m->set_read_only(true);
  }
  return resp;
}

grpc::Status DevicePluginService::GetDevicePluginOptions(grpc::ServerContext*,
                                                         const v1beta1::Empty*,
                                                         v1beta1::DevicePluginOptions* resp) {
  resp->set_pre_start_required(false);
  resp->set_get_preferred_allocation_available(false);
  return grpc::Status::OK;
}

grpc::Status DevicePluginService::ListAndWatch(
    grpc::ServerContext* ctx, const v1beta1::Empty*,
    grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) {
  open_streams_.fetch_add(1);
  std::shared_ptr<const PoolSnapshot> snap = pool_->Current();
  spdlog::info("ListAndWatch opened resource={} version={} units={}", pool_->full_name(),
               snap->version, snap->ids.size());
  std::string last_sent;
  bool first = true;
  for (;;) {
    v1beta1::ListAndWatchResponse resp = ToListAndWatchResponse(*snap);
    std::string encoded = resp.SerializeAsString();
    // A new snapshot can differ only in what kubelet does not see (port details, node paths);
    // kubelet gets a message only when its view changes.
    if (first || encoded != last_sent) {
      if (!writer->Write(resp)) {
        spdlog::info("ListAndWatch closed by kubelet resource={}", pool_->full_name());
        break;
      }
      last_sent = std::move(encoded);
      first = false;
    }
    uint64_t seen = snap->version;
    std::shared_ptr<const PoolSnapshot> next;
    while (next == nullptr) {
      if (stopping_.load() || ctx->IsCancelled() || pool_->is_shut_down()) {
        open_streams_.fetch_sub(1);
        return grpc::Status::OK;
      }
      next = pool_->WaitForNewer(seen, kStreamPoll);
    }
    snap = std::move(next);
  }
  open_streams_.fetch_sub(1);
  return grpc::Status::OK;
}

grpc::Status DevicePluginService::GetPreferredAllocation(
    grpc::ServerContext*, const v1beta1::PreferredAllocationRequest* req,
    v1beta1::PreferredAllocationResponse* resp) {
  for (const auto& creq : req->container_requests()) {
    auto* cresp = resp->add_container_responses();
    std::set<std::string> chosen;
    for (const std::string& id : creq.must_include_deviceids()) {
      if (chosen.insert(id).second) cresp->add_deviceids(id);
    }
    for (const std::string& id : creq.available_deviceids()) {
      if (cresp->deviceids_size() >= creq.allocation_size()) break;
      if (chosen.insert(id).second) cresp->add_deviceids(id);
    }
  }
  return grpc::Status::OK;
}

grpc::Status DevicePluginService::Allocate(grpc::ServerContext*,
                                           const v1beta1::AllocateRequest* req,
                                           v1beta1::AllocateResponse* resp) {
  std::shared_ptr<const PoolSnapshot> snap = pool_->Current();
  auto reject = [&](const absl::Status& st) {
    spdlog::warn("Allocate rejected resource={} error=\"{}\"", pool_->full_name(), st.message());
    if (options_.on_allocate) options_.on_allocate(false);
    return ToGrpc(st);
  };
  const std::string cdi_kind = options_.cdi ? pool_->full_name() : "";
  for (const auto& creq : req->container_requests()) {
    std::vector<std::string> ids(creq.devices_ids().begin(), creq.devices_ids().end());
    absl::Status st = ResourcePool::CheckIds(*snap, ids, pool_->full_name());
    if (!st.ok()) return reject(st);
    if (snap->nodes.empty()) {
      return reject(absl::FailedPreconditionError(fmt::format(
          "resource {}: no usable RDMA device to allocate (all selected HCAs lack a uverbs node)",
          pool_->full_name())));
    }
    *resp->add_container_responses() = ToContainerAllocateResponse(*snap, cdi_kind);
  }
  spdlog::debug("Allocate resource={} containers={} nodes={}", pool_->full_name(),
                req->container_requests_size(), snap->nodes.size());
  if (options_.on_allocate) options_.on_allocate(true);
  return grpc::Status::OK;
}

grpc::Status DevicePluginService::PreStartContainer(grpc::ServerContext*,
                                                    const v1beta1::PreStartContainerRequest*,
                                                    v1beta1::PreStartContainerResponse*) {
  return grpc::Status::OK;
}

grpc::Status WatcherRegistrationService::GetInfo(grpc::ServerContext*,
                                                 const pluginregistration::InfoRequest*,
                                                 pluginregistration::PluginInfo* resp) {
  resp->set_type("DevicePlugin");
  resp->set_name(resource_name_);
  resp->set_endpoint(endpoint_);
  resp->add_supported_versions("v1beta1");
  return grpc::Status::OK;
}

grpc::Status WatcherRegistrationService::NotifyRegistrationStatus(
    grpc::ServerContext*, const pluginregistration::RegistrationStatus* req,
    pluginregistration::RegistrationStatusResponse*) {
  registered_.store(req->plugin_registered());
  if (req->plugin_registered()) {
    spdlog::info("registered with kubelet (plugin watcher) resource={}", resource_name_);
  } else {
    spdlog::error("kubelet rejected registration resource={} error=\"{}\"", resource_name_,
                  req->error());
    if (on_rejected_) on_rejected_(req->error());
  }
  return grpc::Status::OK;
}

}  // namespace rdmashare::deviceplugin
