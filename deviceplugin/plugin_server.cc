#include "deviceplugin/plugin_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/files.h"
#include "fmt/format.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

namespace rdmashare::deviceplugin {

std::string SocketNameFor(const ResourceConfig& config) {
  std::string name = "rdmashare-" + config.resource_prefix + "_" + config.resource_name;
  for (char& c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return name + ".sock";
}

PluginServer::PluginServer(ResourcePool* pool, std::string socket_path, bool watcher_mode,
                           std::function<void()> wake, ServiceOptions service_options)
    : pool_(pool),
      socket_path_(std::move(socket_path)),
      watcher_mode_(watcher_mode),
      wake_(std::move(wake)),
      service_options_(std::move(service_options)) {}

PluginServer::~PluginServer() { Stop(); }

absl::Status PluginServer::Start() {
  if (server_) return absl::OkStatus();
  if (::unlink(socket_path_.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(fmt::format("resource {}: remove stale socket {}: {}",
                                           pool_->full_name(), socket_path_, std::strerror(errno)));
  }
  rejected_.store(false);
  service_ = std::make_unique<DevicePluginService>(pool_, service_options_);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + socket_path_, grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  if (watcher_mode_) {
    registration_ = std::make_unique<WatcherRegistrationService>(pool_->full_name(), socket_path_,
                                                                 [this](const std::string&) {
                                                                   rejected_.store(true);
                                                                   if (wake_) wake_();
                                                                 });
    builder.RegisterService(registration_.get());
  }
  // Few streams per server (kubelet keeps one ListAndWatch); keep the footprint small.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  server_ = builder.BuildAndStart();
  if (!server_) {
    service_.reset();
    registration_.reset();
    return absl::UnavailableError(
        fmt::format("resource {}: cannot listen on {}", pool_->full_name(), socket_path_));
  }
  // main() runs with umask 077, so the socket is born 0600; enforce it for embedders too.
  if (::chmod(socket_path_.c_str(), 0600) != 0) {
    int err = errno;
    if (err == ENOENT) {
      // Removed between bind and here: kubelet wipes device-plugins/ when it starts. The server
      // keeps running on an unlinked socket; SocketIntact() is false, so the daemon's next
      // reconcile (the removal raised an inotify event) restarts it under a new socket.
      spdlog::warn(
          "resource={} socket {} was removed right after it was created; it will be "
          "re-created",
          pool_->full_name(), socket_path_);
      socket_inode_ = 0;
      return absl::OkStatus();
    }
    server_->Shutdown();
    server_.reset();
    service_.reset();
    registration_.reset();
    return absl::InternalError(fmt::format("resource {}: chmod 0600 {}: {}", pool_->full_name(),
                                           socket_path_, std::strerror(err)));
  }
  struct stat st;
  socket_inode_ = ::stat(socket_path_.c_str(), &st) == 0 ? st.st_ino : 0;
  spdlog::info("serving resource={} socket={}", pool_->full_name(), socket_path_);
  return absl::OkStatus();
}

void PluginServer::Stop() {
  if (!server_) return;
  service_->Stop();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
  service_.reset();
  registration_.reset();
  struct stat st;
  if (::stat(socket_path_.c_str(), &st) == 0 && st.st_ino == socket_inode_) {
    ::unlink(socket_path_.c_str());
  }
  socket_inode_ = 0;
}

bool PluginServer::SocketIntact() const {
  if (!server_) return false;
  struct stat st;
  return ::stat(socket_path_.c_str(), &st) == 0 && st.st_ino == socket_inode_ &&
         S_ISSOCK(st.st_mode);
}

bool PluginServer::watcher_registered() const {
  return registration_ != nullptr && registration_->registered();
}

std::shared_ptr<grpc::Channel> KubeletChannel(const std::string& kubelet_socket) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  return grpc::CreateCustomChannel("unix://" + kubelet_socket, grpc::InsecureChannelCredentials(),
                                   args);
}

absl::Status RegisterWithKubelet(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& kubelet_socket, const std::string& endpoint,
                                 const std::string& resource_name,
                                 std::chrono::milliseconds timeout) {
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest req;
  req.set_version("v1beta1");
  req.set_endpoint(endpoint);
  req.set_resource_name(resource_name);
  req.mutable_options()->set_pre_start_required(false);
  req.mutable_options()->set_get_preferred_allocation_available(false);
  v1beta1::Empty resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status st = stub->Register(&ctx, req, &resp);
  if (st.ok()) return absl::OkStatus();
  std::string msg = fmt::format("register {} with kubelet at {}: {}", resource_name, kubelet_socket,
                                st.error_message());
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
      st.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(msg);
  }
  return absl::Status(static_cast<absl::StatusCode>(st.error_code()), msg);
}

}  // namespace rdmashare::deviceplugin
