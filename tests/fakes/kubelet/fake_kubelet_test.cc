// Tests of FakeKubelet against a small in-test device plugin served over real unix sockets.
#include "tests/fakes/kubelet/fake_kubelet.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pluginregistration/v1/api.grpc.pb.h"

namespace rdmashare::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kResource[] = "spidernet.io/shared_cx5_gpu1";

v1beta1::Device Dev(const std::string& id, const std::string& health = "Healthy") {
  v1beta1::Device d;
  d.set_id(id);
  d.set_health(health);
  return d;
}

std::vector<v1beta1::Device> Devs(int n) {
  std::vector<v1beta1::Device> out;
  for (int i = 0; i < n; ++i) out.push_back(Dev(fmt::format("dev{}", i)));
  return out;
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// A minimal device plugin: serves DevicePlugin on one socket, streams its device list, answers
// Allocate with one env per container ("IDS" = the IDs joined by ','), records calls.
class TestPlugin final : public v1beta1::DevicePlugin::Service {
 public:
  explicit TestPlugin(std::string socket_path, std::vector<v1beta1::Device> devices = Devs(3))
      : socket_path_(std::move(socket_path)), devices_(std::move(devices)) {}
  ~TestPlugin() override { Stop(); }

  void set_options(v1beta1::DevicePluginOptions options) { options_ = std::move(options); }
  // GetPreferredAllocation then prefers the last available devices instead of the first.
  void set_prefer_last(bool prefer_last) { prefer_last_ = prefer_last; }
  void FailAllocate(grpc::Status st) {
    absl::MutexLock lock(&mu_);
    allocate_error_ = std::move(st);
  }

  void Start() {
    {
      absl::MutexLock lock(&mu_);
      shutting_down_ = false;
    }
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix://" + socket_path_, grpc::InsecureServerCredentials());
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr) << socket_path_;
  }
  void Stop() {
    if (!server_) return;
    {
      absl::MutexLock lock(&mu_);
      shutting_down_ = true;
    }
    server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
    ::unlink(socket_path_.c_str());
  }

  void SetDevices(std::vector<v1beta1::Device> devices) {
    absl::MutexLock lock(&mu_);
    devices_ = std::move(devices);
    ++version_;
  }
  int open_streams() const {
    absl::MutexLock lock(&mu_);
    return open_streams_;
  }
  int cancelled_streams() const {
    absl::MutexLock lock(&mu_);
    return cancelled_streams_;
  }
  std::vector<v1beta1::AllocateRequest> allocate_requests() const {
    absl::MutexLock lock(&mu_);
    return allocate_requests_;
  }
  std::vector<std::vector<std::string>> prestart_calls() const {
    absl::MutexLock lock(&mu_);
    return prestart_calls_;
  }
  const std::string& socket_path() const { return socket_path_; }

  grpc::Status GetDevicePluginOptions(grpc::ServerContext*, const v1beta1::Empty*,
                                      v1beta1::DevicePluginOptions* out) override {
    *out = options_;
    return grpc::Status::OK;
  }

  grpc::Status ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty*,
                            grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override {
    absl::MutexLock lock(&mu_);
    ++open_streams_;
    uint64_t sent = ~uint64_t{0};
    for (;;) {
      if (shutting_down_) break;
      if (ctx->IsCancelled()) {
        ++cancelled_streams_;
        break;
      }
      if (sent != version_) {
        v1beta1::ListAndWatchResponse response;
        for (const auto& d : devices_) *response.add_devices() = d;
        sent = version_;
        mu_.Unlock();
        bool ok = writer->Write(response);
        mu_.Lock();
        if (!ok) {
          ++cancelled_streams_;
          break;
        }
        continue;
      }
      // The sync server has no cancellation callback: re-check the context now and then.
      auto changed = [this, sent] {
        mu_.AssertReaderHeld();  // absl::Condition runs it under the lock
        return shutting_down_ || version_ != sent;
      };
      mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Milliseconds(20));
    }
    --open_streams_;
    return grpc::Status::OK;
  }

  grpc::Status Allocate(grpc::ServerContext*, const v1beta1::AllocateRequest* request,
                        v1beta1::AllocateResponse* response) override {
    absl::MutexLock lock(&mu_);
    allocate_requests_.push_back(*request);
    if (!allocate_error_.ok()) return allocate_error_;
    for (const auto& c : request->container_requests()) {
      std::string ids;
      for (const auto& id : c.devices_ids()) ids += (ids.empty() ? "" : ",") + id;
      (*response->add_container_responses()->mutable_envs())["IDS"] = ids;
    }
    return grpc::Status::OK;
  }

  grpc::Status GetPreferredAllocation(grpc::ServerContext*,
                                      const v1beta1::PreferredAllocationRequest* request,
                                      v1beta1::PreferredAllocationResponse* response) override {
    for (const auto& c : request->container_requests()) {
      auto* out = response->add_container_responses();
      for (const auto& id : c.must_include_deviceids()) out->add_deviceids(id);
      std::vector<std::string> available(c.available_deviceids().begin(),
                                         c.available_deviceids().end());
      if (prefer_last_) std::reverse(available.begin(), available.end());
      for (const auto& id : available) {
        if (out->deviceids_size() >= c.allocation_size()) break;
        if (std::find(c.must_include_deviceids().begin(), c.must_include_deviceids().end(), id) ==
            c.must_include_deviceids().end()) {
          out->add_deviceids(id);
        }
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status PreStartContainer(grpc::ServerContext*,
                                 const v1beta1::PreStartContainerRequest* request,
                                 v1beta1::PreStartContainerResponse*) override {
    absl::MutexLock lock(&mu_);
    prestart_calls_.emplace_back(request->devices_ids().begin(), request->devices_ids().end());
    return grpc::Status::OK;
  }

 private:
  const std::string socket_path_;
  v1beta1::DevicePluginOptions options_;
  bool prefer_last_ = false;
  std::unique_ptr<grpc::Server> server_;
  mutable absl::Mutex mu_;
  std::vector<v1beta1::Device> devices_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  int open_streams_ ABSL_GUARDED_BY(mu_) = 0;
  int cancelled_streams_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status allocate_error_ ABSL_GUARDED_BY(mu_);
  std::vector<v1beta1::AllocateRequest> allocate_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<std::string>> prestart_calls_ ABSL_GUARDED_BY(mu_);
};

// The plugin side of the plugin-watcher protocol: serves pluginregistration.Registration on a
// socket in plugins_registry/ and records every NotifyRegistrationStatus.
class TestRegistrar final : public pluginregistration::Registration::Service {
 public:
  TestRegistrar(std::string socket_path, pluginregistration::PluginInfo info)
      : socket_path_(std::move(socket_path)), info_(std::move(info)) {}
  ~TestRegistrar() override { Stop(); }

  void Start() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix://" + socket_path_, grpc::InsecureServerCredentials());
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr) << socket_path_;
  }
  // Removes the socket first (what kubelet's watcher sees), then stops serving.
  void Stop() {
    if (!server_) return;
    ::unlink(socket_path_.c_str());
    server_->Shutdown(std::chrono::system_clock::now());
    server_.reset();
  }

  std::vector<pluginregistration::RegistrationStatus> statuses() const {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }
  int get_info_calls() const {
    absl::MutexLock lock(&mu_);
    return get_info_calls_;
  }

  grpc::Status GetInfo(grpc::ServerContext*, const pluginregistration::InfoRequest*,
                       pluginregistration::PluginInfo* out) override {
    absl::MutexLock lock(&mu_);
    ++get_info_calls_;
    *out = info_;
    return grpc::Status::OK;
  }
  grpc::Status NotifyRegistrationStatus(grpc::ServerContext*,
                                        const pluginregistration::RegistrationStatus* status,
                                        pluginregistration::RegistrationStatusResponse*) override {
    absl::MutexLock lock(&mu_);
    statuses_.push_back(*status);
    return grpc::Status::OK;
  }

 private:
  const std::string socket_path_;
  const pluginregistration::PluginInfo info_;
  std::unique_ptr<grpc::Server> server_;
  mutable absl::Mutex mu_;
  std::vector<pluginregistration::RegistrationStatus> statuses_ ABSL_GUARDED_BY(mu_);
  int get_info_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

pluginregistration::PluginInfo Info(const std::string& name, const std::string& endpoint,
                                    std::vector<std::string> versions = {"v1beta1"},
                                    const std::string& type = "DevicePlugin") {
  pluginregistration::PluginInfo info;
  info.set_type(type);
  info.set_name(name);
  info.set_endpoint(endpoint);
  for (auto& v : versions) info.add_supported_versions(v);
  return info;
}

// Calls kubelet's Register like a device plugin does.
grpc::Status Register(const FakeKubelet& kubelet, const std::string& resource,
                      const std::string& endpoint, const std::string& version = "v1beta1") {
  auto channel =
      grpc::CreateChannel("unix://" + kubelet.kubelet_socket(), grpc::InsecureChannelCredentials());
  auto stub = v1beta1::Registration::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  ctx.set_wait_for_ready(true);
  v1beta1::RegisterRequest request;
  request.set_version(version);
  request.set_endpoint(endpoint);
  request.set_resource_name(resource);
  v1beta1::Empty empty;
  return stub->Register(&ctx, request, &empty);
}

class FakeKubeletTest : public ::testing::Test {
 protected:
  FakeKubeletOptions Options(bool watcher = false) {
    FakeKubeletOptions o;
    o.kubelet_dir = dir_.path();
    o.plugin_watcher = watcher;
    return o;
  }
  std::string PluginSocket(const std::string& name) {
    return JoinPath(JoinPath(dir_.path(), "device-plugins"), name);
  }
  std::string RegistrySocket(const std::string& name) {
    return JoinPath(JoinPath(dir_.path(), "plugins_registry"), name);
  }
  static bool Connected(const FakeKubelet& k, const std::string& resource, int allocatable) {
    auto r = k.Resource(resource);
    return r && r->stream_connected && r->allocatable() == allocatable;
  }

  TempDir dir_;
};

// ---- Start / Stop / Restart ----

TEST_F(FakeKubeletTest, StartServesRegistrationOnKubeletSocket) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  EXPECT_TRUE(IsSocket(JoinPath(dir_.path(), "device-plugins/kubelet.sock")));
  EXPECT_THAT(kubelet.Resources(), IsEmpty());
}

TEST_F(FakeKubeletTest, StartTwiceIsFailedPrecondition) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  EXPECT_THAT(kubelet.Start(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already running")));
}

TEST_F(FakeKubeletTest, StartWithoutKubeletDirIsInvalidArgument) {
  FakeKubelet kubelet(FakeKubeletOptions{});
  EXPECT_THAT(kubelet.Start(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kubelet_dir")));
}

TEST_F(FakeKubeletTest, StopRemovesKubeletSocketAndCancelsStreams) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));

  kubelet.Stop();
  EXPECT_FALSE(PathExists(kubelet.kubelet_socket()));
  EXPECT_TRUE(WaitFor([&] { return plugin.open_streams() == 0; }));
  EXPECT_FALSE(kubelet.Resource(kResource)->stream_connected);
}

TEST_F(FakeKubeletTest, RestartDeletesPluginSocketsButKeepsCheckpointAndOtherFiles) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  const std::string checkpoint = PluginSocket("kubelet_internal_checkpoint");
  const std::string other = PluginSocket("notes.txt");
  ASSERT_TRUE(WaitFor([&] { return PathExists(checkpoint); }));
  WriteTestFile(other, "x");

  ASSERT_OK(kubelet.Restart());
  EXPECT_FALSE(PathExists(plugin.socket_path()));
  EXPECT_TRUE(PathExists(checkpoint));
  EXPECT_TRUE(PathExists(other));
  EXPECT_TRUE(IsSocket(kubelet.kubelet_socket()));
}

TEST_F(FakeKubeletTest, RestartKeepsResourceWithZeroCapacityUntilPluginRegistersAgain) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));

  ASSERT_OK(kubelet.Restart());
  auto state = kubelet.Resource(kResource);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->capacity(), 0);
  EXPECT_EQ(state->endpoint, "");
  EXPECT_FALSE(state->stream_connected);

  // The plugin notices its socket is gone and comes back.
  plugin.Stop();
  TestPlugin again(PluginSocket("p2.sock"));
  again.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p2.sock").ok());
  EXPECT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  EXPECT_EQ(kubelet.registration_count(kResource), 2);
}

TEST_F(FakeKubeletTest, CheckpointRecordsHealthyDevicesOfEachResource) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"), {Dev("a"), Dev("b", "Unhealthy"), Dev("c")});
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 2); }));
  nlohmann::json doc;
  EXPECT_TRUE(WaitFor([&] {
    auto text = ReadFile(PluginSocket("kubelet_internal_checkpoint"));
    if (!text.ok()) return false;
    doc = nlohmann::json::parse(*text, nullptr, false);
    return !doc.is_discarded();
  }));
  EXPECT_THAT(kubelet.registration_errors(), IsEmpty());
  EXPECT_EQ(doc["Data"]["RegisteredDevices"][kResource], nlohmann::json::array({"a", "c"}));
}

TEST_F(FakeKubeletTest, NewKubeletOnSameDirectoryRestoresCheckpointedResources) {
  {
    FakeKubelet kubelet(Options());
    ASSERT_OK(kubelet.Start());
    TestPlugin plugin(PluginSocket("p.sock"));
    plugin.Start();
    ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
    ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  }
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  EXPECT_THAT(kubelet.Resources(), ElementsAre(kResource));
  EXPECT_EQ(kubelet.Resource(kResource)->capacity(), 0);
}

TEST_F(FakeKubeletTest, RestartWithoutCheckpointForgetsResources) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  kubelet.Stop();
  ASSERT_EQ(::unlink(PluginSocket("kubelet_internal_checkpoint").c_str()), 0);
  ASSERT_OK(kubelet.Start());
  EXPECT_THAT(kubelet.Resources(), IsEmpty());
}

TEST_F(FakeKubeletTest, CorruptCheckpointIsReportedAndIgnored) {
  WriteTestFile(PluginSocket("kubelet_internal_checkpoint"), "{not json");
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  EXPECT_THAT(kubelet.Resources(), IsEmpty());
  EXPECT_THAT(kubelet.registration_errors(),
              ElementsAre(HasSubstr("not a device manager checkpoint")));
}

// ---- Register ----

TEST_F(FakeKubeletTest, RegisterDialsBackAndReadsOptionsAndDevices) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  v1beta1::DevicePluginOptions options;
  options.set_pre_start_required(true);
  plugin.set_options(options);
  plugin.Start();

  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  auto state = kubelet.Resource(kResource);
  EXPECT_EQ(state->endpoint, plugin.socket_path());
  EXPECT_TRUE(state->options.pre_start_required());
  EXPECT_EQ(state->capacity(), 3);
  EXPECT_EQ(state->list_updates, 1);
  EXPECT_THAT(kubelet.Resources(), ElementsAre(kResource));
  EXPECT_EQ(kubelet.registration_count(kResource), 1);
  EXPECT_THAT(kubelet.registration_errors(), IsEmpty());
}

TEST_F(FakeKubeletTest, RegisterRejectsUnsupportedVersion) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  grpc::Status st = Register(kubelet, kResource, "p.sock", "v1alpha");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_THAT(st.error_message(),
              HasSubstr("requested API version \"v1alpha\" is not supported by kubelet. "
                        "Supported version is [\"v1beta1\"]"));
  EXPECT_THAT(kubelet.registration_errors(),
              ElementsAre(HasSubstr("requested API version \"v1alpha\"")));
  EXPECT_THAT(kubelet.Resources(), IsEmpty());
  EXPECT_EQ(kubelet.registration_count(kResource), 1);
}

class InvalidResourceNameTest : public FakeKubeletTest,
                                public ::testing::WithParamInterface<std::string> {};

TEST_P(InvalidResourceNameTest, RegisterRejectsInvalidResourceName) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  grpc::Status st = Register(kubelet, GetParam(), "p.sock");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNKNOWN);
  const std::string expected = fmt::format("the ResourceName \"{}\" is invalid", GetParam());
  EXPECT_THAT(st.error_message(), HasSubstr(expected));
  EXPECT_THAT(kubelet.registration_errors(), ElementsAre(HasSubstr(expected)));
  EXPECT_THAT(kubelet.Resources(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Names, InvalidResourceNameTest,
                         ::testing::Values("shared_cx5_gpu1", "kubernetes.io/rdma",
                                           "rdma.kubernetes.io/hca", "requests.example.com/hca",
                                           "Spidernet.io/hca", "spidernet.io/", "/hca",
                                           "spidernet.io/-hca", "spidernet.io/a/b",
                                           "spider_net.io/hca",
                                           std::string("spidernet.io/") + std::string(64, 'a')));

TEST(IsExtendedResourceNameTest, AcceptsDomainPrefixedNames) {
  for (const char* name : {"spidernet.io/shared_cx5_gpu1", "rdma/hca_shared_devices_a",
                           "nvidia.com/gpu", "example.com/A.b-c_9"}) {
    EXPECT_TRUE(IsExtendedResourceName(name)) << name;
  }
  EXPECT_TRUE(IsExtendedResourceName("x.io/" + std::string(63, 'a')));
}

TEST_F(FakeKubeletTest, SynchronousRegisterFailsWhenPluginDoesNotServe) {
  FakeKubeletOptions o = Options();
  o.dial_timeout = std::chrono::milliseconds(200);
  FakeKubelet kubelet(o);
  ASSERT_OK(kubelet.Start());
  grpc::Status st = Register(kubelet, kResource, "nobody.sock");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_THAT(st.error_message(), HasSubstr("failed to dial device plugin"));
  EXPECT_THAT(kubelet.registration_errors(),
              ElementsAre(HasSubstr("failed to dial device plugin")));
  EXPECT_THAT(kubelet.Resources(), IsEmpty());
}

TEST_F(FakeKubeletTest, AsynchronousRegisterAnswersFirstAndDialsBackLater) {
  FakeKubeletOptions o = Options();
  o.synchronous_register = false;
  FakeKubelet kubelet(o);
  ASSERT_OK(kubelet.Start());
  ASSERT_TRUE(Register(kubelet, kResource, "late.sock").ok());
  TestPlugin plugin(PluginSocket("late.sock"));
  plugin.Start();
  EXPECT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
}

TEST_F(FakeKubeletTest, RejectNextFailsOneRegisterCall) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  kubelet.RejectNext(kResource, "forced by test");
  grpc::Status st = Register(kubelet, kResource, "p.sock");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(st.error_message(), "forced by test");
  EXPECT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  EXPECT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
}

// ---- ListAndWatch ----

TEST_F(FakeKubeletTest, ListAndWatchResponsesReplaceTheDeviceList) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));

  plugin.SetDevices({Dev("a"), Dev("b", "Unhealthy")});
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) {
    auto r = k.Resource(kResource);
    return r && r->list_updates == 2;
  }));
  auto state = kubelet.Resource(kResource);
  EXPECT_EQ(state->capacity(), 2);
  EXPECT_EQ(state->allocatable(), 1);
  ASSERT_EQ(state->devices.size(), 2u);
  EXPECT_EQ(state->devices[1].id(), "b");
}

TEST_F(FakeKubeletTest, ReRegistrationReplacesEndpointAndClosesOldStream) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin first(PluginSocket("a.sock"), Devs(2));
  first.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "a.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 2); }));

  TestPlugin second(PluginSocket("b.sock"), Devs(5));
  second.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "b.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 5); }));
  EXPECT_EQ(kubelet.Resource(kResource)->endpoint, second.socket_path());
  EXPECT_TRUE(WaitFor([&] { return first.cancelled_streams() == 1; }));
  EXPECT_EQ(kubelet.registration_count(kResource), 2);

  // The replaced instance going away does not touch the resource.
  first.Stop();
  first.SetDevices({});
  second.SetDevices(Devs(4));
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 4); }));
}

TEST_F(FakeKubeletTest, PluginGoneMarksDevicesUnhealthyButKeepsCapacity) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));

  plugin.Stop();
  ASSERT_TRUE(kubelet.WaitFor(
      [](const FakeKubelet& k) { return !k.Resource(kResource)->stream_connected; }));
  auto state = kubelet.Resource(kResource);
  EXPECT_EQ(state->capacity(), 3);
  EXPECT_EQ(state->allocatable(), 0);
  EXPECT_THAT(kubelet.Allocate(kResource, {{"dev0"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no healthy devices")));
}

TEST_F(FakeKubeletTest, WaitForReturnsFalseAfterTimeout) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  EXPECT_FALSE(kubelet.WaitFor([](const FakeKubelet& k) { return !k.Resources().empty(); },
                               std::chrono::milliseconds(50)));
}

// ---- Calls into the plugin ----

class RegisteredPluginTest : public FakeKubeletTest {
 protected:
  void SetUp() override {
    v1beta1::DevicePluginOptions options;
    options.set_pre_start_required(true);
    options.set_get_preferred_allocation_available(true);
    plugin_.set_options(options);
    ASSERT_OK(kubelet_.Start());
    plugin_.Start();
    ASSERT_TRUE(Register(kubelet_, kResource, "p.sock").ok());
    ASSERT_TRUE(kubelet_.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  }
  FakeKubelet kubelet_{Options()};
  TestPlugin plugin_{PluginSocket("p.sock")};
};

TEST_F(RegisteredPluginTest, AllocateIsForwardedWithOneRequestPerContainer) {
  ASSERT_OK_AND_ASSIGN(auto response, kubelet_.Allocate(kResource, {{"dev0", "dev2"}, {"dev1"}}));
  ASSERT_EQ(response.container_responses_size(), 2);
  EXPECT_EQ(response.container_responses(0).envs().at("IDS"), "dev0,dev2");
  EXPECT_EQ(response.container_responses(1).envs().at("IDS"), "dev1");
  ASSERT_EQ(plugin_.allocate_requests().size(), 1u);
  EXPECT_EQ(plugin_.allocate_requests()[0].container_requests_size(), 2);
}

TEST_F(RegisteredPluginTest, AllocateOfUnregisteredResourceIsNotFound) {
  EXPECT_THAT(kubelet_.Allocate("example.com/other", {{"x"}}),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("cannot allocate unregistered device example.com/other")));
}

TEST_F(RegisteredPluginTest, AllocateOfUnknownDeviceIdIsInvalidArgument) {
  EXPECT_THAT(kubelet_.Allocate(kResource, {{"dev7"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"dev7\"")));
  EXPECT_THAT(plugin_.allocate_requests(), IsEmpty());
}

TEST_F(RegisteredPluginTest, AllocateOfRepeatedDeviceIdIsInvalidArgument) {
  EXPECT_THAT(kubelet_.Allocate(kResource, {{"dev1"}, {"dev1"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("requested twice")));
}

TEST_F(RegisteredPluginTest, AllocateErrorKeepsPluginCodeAndMessage) {
  plugin_.FailAllocate(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no such hca"));
  EXPECT_THAT(kubelet_.Allocate(kResource, {{"dev0"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no such hca")));
}

TEST_F(RegisteredPluginTest, GetPreferredAllocationIsForwarded) {
  ASSERT_OK_AND_ASSIGN(auto response, kubelet_.GetPreferredAllocation(
                                          kResource, {"dev0", "dev1", "dev2"}, {"dev2"}, 2));
  ASSERT_EQ(response.container_responses_size(), 1);
  EXPECT_THAT(response.container_responses(0).deviceids(), ElementsAre("dev2", "dev0"));
}

TEST_F(RegisteredPluginTest, PreStartContainerIsForwarded) {
  ASSERT_OK(kubelet_.PreStartContainer(kResource, {"dev1"}).status());
  EXPECT_THAT(plugin_.prestart_calls(), ElementsAre(ElementsAre("dev1")));
}

TEST_F(RegisteredPluginTest, AdmitContainerTakesPreferredDevicesAndCallsPreStart) {
  plugin_.set_prefer_last(true);
  ASSERT_OK_AND_ASSIGN(ContainerAllocation admitted, kubelet_.AdmitContainer(kResource, 2));
  EXPECT_THAT(admitted.device_ids, ElementsAre("dev2", "dev1"));
  EXPECT_EQ(admitted.response.envs().at("IDS"), "dev2,dev1");
  EXPECT_THAT(plugin_.prestart_calls(), ElementsAre(ElementsAre("dev2", "dev1")));
  EXPECT_THAT(kubelet_.allocated(kResource), ElementsAre("dev1", "dev2"));
}

TEST_F(RegisteredPluginTest, AdmitContainerBeyondFreeDevicesIsResourceExhaustedUntilRelease) {
  ASSERT_OK_AND_ASSIGN(ContainerAllocation first, kubelet_.AdmitContainer(kResource, 2));
  EXPECT_THAT(
      kubelet_.AdmitContainer(kResource, 2),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("Requested: 2, Available: 1")));
  kubelet_.Release(kResource, first.device_ids);
  EXPECT_THAT(kubelet_.allocated(kResource), IsEmpty());
  EXPECT_OK(kubelet_.AdmitContainer(kResource, 2).status());
}

TEST_F(RegisteredPluginTest, AdmitContainerOfZeroDevicesIsInvalidArgument) {
  EXPECT_THAT(kubelet_.AdmitContainer(kResource, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 1 device")));
}

TEST_F(RegisteredPluginTest, AdmitContainerFailureFreesItsDevices) {
  plugin_.FailAllocate(grpc::Status(grpc::StatusCode::UNAVAILABLE, "hca gone"));
  EXPECT_THAT(kubelet_.AdmitContainer(kResource, 1),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("hca gone")));
  EXPECT_THAT(kubelet_.allocated(kResource), IsEmpty());
}

TEST_F(FakeKubeletTest, AdmitContainerWithoutOptionalCallsUsesAdvertisedOrder) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  ASSERT_OK_AND_ASSIGN(ContainerAllocation admitted, kubelet.AdmitContainer(kResource, 1));
  EXPECT_THAT(admitted.device_ids, ElementsAre("dev0"));
  EXPECT_THAT(plugin.prestart_calls(), IsEmpty());
}

TEST_F(FakeKubeletTest, OptionalCallsAreRefusedWhenPluginOptionsDoNotAllowThem) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  ASSERT_TRUE(Register(kubelet, kResource, "p.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  EXPECT_THAT(kubelet.GetPreferredAllocation(kResource, {"dev0"}, {}, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("get_preferred_allocation_available")));
  EXPECT_THAT(kubelet.PreStartContainer(kResource, {"dev0"}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("pre_start_required")));
  EXPECT_THAT(plugin.prestart_calls(), IsEmpty());
}

// ---- Plugin watcher ----

TEST_F(FakeKubeletTest, WatcherRegistersNewSocketAndNotifiesSuccess) {
  FakeKubelet kubelet(Options(/*watcher=*/true));
  ASSERT_OK(kubelet.Start());
  EXPECT_TRUE(PathExists(JoinPath(dir_.path(), "plugins_registry")));
  EXPECT_TRUE(IsSocket(kubelet.kubelet_socket()));
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  TestRegistrar registrar(RegistrySocket("rdma-reg.sock"), Info(kResource, plugin.socket_path()));
  registrar.Start();

  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  ASSERT_TRUE(WaitFor([&] { return registrar.statuses().size() >= 1; }));
  EXPECT_TRUE(registrar.statuses()[0].plugin_registered());
  EXPECT_EQ(registrar.statuses()[0].error(), "");
  EXPECT_EQ(kubelet.Resource(kResource)->endpoint, plugin.socket_path());
}

TEST_F(FakeKubeletTest, WatcherRegistersSocketPresentAtStart) {
  TestPlugin plugin(PluginSocket("p.sock"));
  ASSERT_OK(MakeDirs(JoinPath(dir_.path(), "device-plugins")));
  ASSERT_OK(MakeDirs(JoinPath(dir_.path(), "plugins_registry")));
  TestRegistrar registrar(RegistrySocket("rdma-reg.sock"), Info(kResource, plugin.socket_path()));
  registrar.Start();
  FakeKubelet kubelet(Options(/*watcher=*/true));
  ASSERT_OK(kubelet.Start());
  // Started after kubelet: its socket in device-plugins/ would have been cleaned up otherwise.
  plugin.Start();
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  EXPECT_TRUE(WaitFor([&] { return registrar.statuses().size() >= 1; }));
}

TEST_F(FakeKubeletTest, WatcherFindsSocketsInSubdirectories) {
  FakeKubelet kubelet(Options(/*watcher=*/true));
  ASSERT_OK(kubelet.Start());
  ASSERT_OK(MakeDirs(RegistrySocket("vendor")));
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  TestRegistrar registrar(RegistrySocket("vendor/reg.sock"), Info(kResource, plugin.socket_path()));
  registrar.Start();
  EXPECT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
}

struct WatcherRejectCase {
  std::string test_name;
  pluginregistration::PluginInfo info;
  std::string expected_error;
};

class WatcherRejectTest : public FakeKubeletTest,
                          public ::testing::WithParamInterface<WatcherRejectCase> {};

TEST_P(WatcherRejectTest, WatcherNotifiesFailureWithKubeletMessage) {
  FakeKubelet kubelet(Options(/*watcher=*/true));
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  pluginregistration::PluginInfo info = GetParam().info;
  info.set_endpoint(plugin.socket_path());
  TestRegistrar registrar(RegistrySocket("reg.sock"), info);
  registrar.Start();

  ASSERT_TRUE(WaitFor([&] { return registrar.statuses().size() >= 1; }));
  EXPECT_EQ(registrar.statuses().size(), 1u);
  EXPECT_FALSE(registrar.statuses()[0].plugin_registered());
  EXPECT_THAT(registrar.statuses()[0].error(), HasSubstr(GetParam().expected_error));
  EXPECT_THAT(kubelet.registration_errors(), Contains(HasSubstr(GetParam().expected_error)));
  EXPECT_THAT(kubelet.Resources(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, WatcherRejectTest,
    ::testing::Values(
        WatcherRejectCase{"UnsupportedVersion", Info(kResource, "", {"v1alpha1", "v1beta2"}),
                          "RegisterPlugin error -- plugin validation failed with err: manager "
                          "version, v1beta1, is not among plugin supported versions [v1alpha1 "
                          "v1beta2]"},
        WatcherRejectCase{"InvalidName", Info("shared_cx5_gpu1", ""),
                          "RegisterPlugin error -- plugin validation failed with err: invalid "
                          "name of device plugin socket: the ResourceName \"shared_cx5_gpu1\" "
                          "is invalid"},
        WatcherRejectCase{"UnknownType", Info(kResource, "", {"v1beta1"}, "CSIPlugin"),
                          "RegisterPlugin error -- no handler registered for plugin type: "
                          "CSIPlugin"}),
    [](const ::testing::TestParamInfo<WatcherRejectCase>& p) { return p.param.test_name; });

TEST_F(FakeKubeletTest, WatcherRejectNextNotifiesFailureAndPluginCanRetry) {
  FakeKubelet kubelet(Options(/*watcher=*/true));
  ASSERT_OK(kubelet.Start());
  kubelet.RejectNext(kResource, "forced by test");
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  auto registrar = std::make_unique<TestRegistrar>(RegistrySocket("reg.sock"),
                                                   Info(kResource, plugin.socket_path()));
  registrar->Start();
  ASSERT_TRUE(WaitFor([&] { return registrar->statuses().size() >= 1; }));
  EXPECT_FALSE(registrar->statuses()[0].plugin_registered());
  EXPECT_EQ(registrar->statuses()[0].error(),
            "RegisterPlugin error -- plugin registration failed with err: forced by test");
  EXPECT_THAT(kubelet.Resources(), IsEmpty());

  // What the plugin does on failure: re-create its registration socket.
  registrar.reset();
  registrar = std::make_unique<TestRegistrar>(RegistrySocket("reg.sock"),
                                              Info(kResource, plugin.socket_path()));
  registrar->Start();
  ASSERT_TRUE(WaitFor([&] { return registrar->statuses().size() >= 1; }));
  EXPECT_TRUE(registrar->statuses()[0].plugin_registered());
  EXPECT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));
  EXPECT_EQ(kubelet.registration_count(kResource), 2);
}

TEST_F(FakeKubeletTest, WatcherSocketRemovalDeregistersPlugin) {
  FakeKubelet kubelet(Options(/*watcher=*/true));
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  TestRegistrar registrar(RegistrySocket("reg.sock"), Info(kResource, plugin.socket_path()));
  registrar.Start();
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) { return Connected(k, kResource, 3); }));

  ASSERT_EQ(::unlink(RegistrySocket("reg.sock").c_str()), 0);
  ASSERT_TRUE(kubelet.WaitFor(
      [](const FakeKubelet& k) { return !k.Resource(kResource)->stream_connected; }));
  EXPECT_EQ(kubelet.Resource(kResource)->allocatable(), 0);
  EXPECT_TRUE(WaitFor([&] { return plugin.cancelled_streams() == 1; }));
}

TEST_F(FakeKubeletTest, WatcherIgnoresDotSockets) {
  FakeKubelet kubelet(Options(/*watcher=*/true));
  ASSERT_OK(kubelet.Start());
  TestPlugin plugin(PluginSocket("p.sock"));
  plugin.Start();
  TestRegistrar hidden(RegistrySocket(".hidden.sock"), Info(kResource, plugin.socket_path()));
  hidden.Start();
  TestRegistrar visible(RegistrySocket("reg.sock"), Info(kResource, plugin.socket_path()));
  visible.Start();
  // Events are handled in order, so once the later socket is done the hidden one was skipped.
  ASSERT_TRUE(WaitFor([&] { return visible.statuses().size() >= 1; }));
  EXPECT_EQ(hidden.get_info_calls(), 0);
}

// ---- Node view ----

TEST_F(FakeKubeletTest, FormatNodeViewListsResourcesSortedLikeKubectl) {
  FakeKubelet kubelet(Options());
  ASSERT_OK(kubelet.Start());
  TestPlugin gpu2(PluginSocket("g2.sock"), Devs(100));
  gpu2.Start();
  TestPlugin gpu1(PluginSocket("g1.sock"), {Dev("a"), Dev("b", "Unhealthy")});
  gpu1.Start();
  ASSERT_TRUE(Register(kubelet, "spidernet.io/shared_cx5_gpu2", "g2.sock").ok());
  ASSERT_TRUE(Register(kubelet, "spidernet.io/shared_cx5_gpu1", "g1.sock").ok());
  ASSERT_TRUE(kubelet.WaitFor([](const FakeKubelet& k) {
    return Connected(k, "spidernet.io/shared_cx5_gpu1", 1) &&
           Connected(k, "spidernet.io/shared_cx5_gpu2", 100);
  }));
  EXPECT_EQ(FormatNodeView(kubelet),
            "allocatable:\n"
            "  spidernet.io/shared_cx5_gpu1: \"1\"\n"
            "  spidernet.io/shared_cx5_gpu2: \"100\"\n"
            "capacity:\n"
            "  spidernet.io/shared_cx5_gpu1: \"2\"\n"
            "  spidernet.io/shared_cx5_gpu2: \"100\"\n");
}

TEST_F(FakeKubeletTest, FormatNodeViewOfEmptyNode) {
  FakeKubelet kubelet(Options());
  EXPECT_EQ(FormatNodeView(kubelet), "allocatable: {}\ncapacity: {}\n");
}

}  // namespace
}  // namespace rdmashare::testing
