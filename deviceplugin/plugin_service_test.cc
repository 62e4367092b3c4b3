#include "deviceplugin/plugin_service.h"

#include <sys/stat.h>

#include <thread>

#include "common/files.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "deviceplugin/plugin_server.h"
#include "deviceplugin/test_inventory.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::deviceplugin::testing::TestHca;
using ::rdmashare::deviceplugin::testing::TestRdmaCm;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WaitFor;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ResourceConfig Rail(int max) {
  ResourceConfig rc;
  rc.resource_prefix = "spidernet.io";
  rc.resource_name = "shared_cx5_gpu1";
  rc.rdma_hca_max = max;
  rc.selectors.if_names = {"enp11s0f0np0"};
  return rc;
}

rdma::NodeInventory Inventory(int numa = 0) {
  rdma::NodeInventory inv;
  inv.devices = {TestHca(0, "enp11s0f0np0", numa)};
  inv.rdma_cm = TestRdmaCm();
  return inv;
}

class PluginServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_.Update(Inventory());
    server_ = std::make_unique<PluginServer>(&pool_, dir_.Sub("dp.sock"), /*watcher_mode=*/true,
                                             [this] { wakes_++; });
    ASSERT_OK(server_->Start());
    channel_ =
        grpc::CreateChannel("unix://" + dir_.Sub("dp.sock"), grpc::InsecureChannelCredentials());
    stub_ = v1beta1::DevicePlugin::NewStub(channel_);
  }
  void TearDown() override {
    pool_.Shutdown();
    server_->Stop();
  }

  TempDir dir_;
  ResourcePool pool_{Rail(4), "/dev", "/dev"};
  std::unique_ptr<PluginServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1beta1::DevicePlugin::Stub> stub_;
  std::atomic<int> wakes_{0};
};

TEST_F(PluginServiceTest, OptionsAreBothFalse) {
  grpc::ClientContext ctx;
  v1beta1::Empty req;
  v1beta1::DevicePluginOptions opts;
  ASSERT_TRUE(stub_->GetDevicePluginOptions(&ctx, req, &opts).ok());
  EXPECT_FALSE(opts.pre_start_required());
  EXPECT_FALSE(opts.get_preferred_allocation_available());
}

TEST_F(PluginServiceTest, ListAndWatchSendsFullListWithHealthAndTopologyOnConnect) {
  grpc::ClientContext ctx;
  auto reader = stub_->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(resp.devices_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(resp.devices(i).id(), std::to_string(i));
    EXPECT_EQ(resp.devices(i).health(), "Healthy");
    ASSERT_EQ(resp.devices(i).topology().nodes_size(), 1);
    EXPECT_EQ(resp.devices(i).topology().nodes(0).id(), 0);
  }
  ctx.TryCancel();
}

TEST_F(PluginServiceTest, ListAndWatchSendsNewListOnChangeToEveryStream) {
  grpc::ClientContext ctx1, ctx2;
  auto r1 = stub_->ListAndWatch(&ctx1, v1beta1::Empty());
  auto r2 = stub_->ListAndWatch(&ctx2, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(r1->Read(&resp));
  ASSERT_TRUE(r2->Read(&resp));
  ASSERT_TRUE(WaitFor([&] { return server_->open_streams() == 2; }));
  rdma::NodeInventory inv = Inventory();
  inv.devices[0].uverbs->present = false;
  pool_.Update(inv);
  for (auto* r : {r1.get(), r2.get()}) {
    ASSERT_TRUE(r->Read(&resp));
    ASSERT_EQ(resp.devices_size(), 4);
    EXPECT_EQ(resp.devices(0).health(), "Unhealthy");
  }
  ctx1.TryCancel();
  ctx2.TryCancel();
}

TEST_F(PluginServiceTest, ListAndWatchSkipsSnapshotsInvisibleToKubelet) {
  grpc::ClientContext ctx;
  auto reader = stub_->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  // A port detail changes (new snapshot) but IDs, health and topology stay: no message. Then a
  // NUMA change: exactly one message, carrying the new topology.
  rdma::NodeInventory inv = Inventory();
  inv.devices[0].ports[0].gid_table_size = 16;
  ASSERT_TRUE(pool_.Update(inv));
  inv.devices[0].numa_node = 1;
  ASSERT_TRUE(pool_.Update(inv));
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.devices(0).topology().nodes(0).id(), 1);
  ctx.TryCancel();
}

TEST_F(PluginServiceTest, AllocateReturnsDeviceSpecsPerContainer) {
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("0");
  auto* c2 = req.add_container_requests();
  c2->add_devices_ids("1");
  c2->add_devices_ids("3");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->Allocate(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 2);
  for (const auto& c : resp.container_responses()) {
    std::vector<std::string> got;
    for (const auto& d : c.devices()) {
      got.push_back(d.container_path() + "=" + d.host_path() + ":" + d.permissions());
    }
    EXPECT_THAT(got, ElementsAre("/dev/infiniband/uverbs0=/dev/infiniband/uverbs0:rw",
                                 "/dev/infiniband/umad0=/dev/infiniband/umad0:rw",
                                 "/dev/infiniband/rdma_cm=/dev/infiniband/rdma_cm:rw"));
    EXPECT_EQ(c.mounts_size(), 0);
  }
}

TEST(AllocateResponseTest, MountCliAddsAReadOnlyMountOfTheCli) {
  ResourceConfig rc = Rail(2);
  rc.mount_cli = true;
  ResourcePool pool(rc, "/dev", "/dev", "/opt/cni/bin/rdmashare");
  pool.Update(Inventory());
  v1beta1::ContainerAllocateResponse resp = ToContainerAllocateResponse(*pool.Current());
  ASSERT_EQ(resp.mounts_size(), 1);
  EXPECT_EQ(resp.mounts(0).container_path(), "/usr/local/bin/rdmashare");
  EXPECT_EQ(resp.mounts(0).host_path(), "/opt/cni/bin/rdmashare");
  EXPECT_TRUE(resp.mounts(0).read_only());
  EXPECT_EQ(resp.devices_size(), 3);
}

TEST_F(PluginServiceTest, AllocateOfUnknownIdIsInvalidArgument) {
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("4");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub_->Allocate(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("unknown device ID \"4\""));
}

TEST_F(PluginServiceTest, AllocateWithoutUsableHcaIsFailedPrecondition) {
  rdma::NodeInventory inv = Inventory();
  inv.devices[0].uverbs->present = false;
  pool_.Update(inv);
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("0");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub_->Allocate(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("no usable RDMA device"));
}

TEST_F(PluginServiceTest, PreferredAllocationIsMustIncludePlusFirstAvailable) {
  v1beta1::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (const char* id : {"0", "1", "2", "3"}) c->add_available_deviceids(id);
  c->add_must_include_deviceids("2");
  c->set_allocation_size(3);
  v1beta1::PreferredAllocationResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->GetPreferredAllocation(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 1);
  EXPECT_THAT(resp.container_responses(0).deviceids(), ElementsAre("2", "0", "1"));
}

TEST_F(PluginServiceTest, PreStartContainerAnswersEmpty) {
  v1beta1::PreStartContainerRequest req;
  req.add_devices_ids("0");
  v1beta1::PreStartContainerResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub_->PreStartContainer(&ctx, req, &resp).ok());
}

TEST_F(PluginServiceTest, WatcherGetInfoNamesTheResourceAndSocket) {
  auto reg = pluginregistration::Registration::NewStub(channel_);
  pluginregistration::PluginInfo info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(reg->GetInfo(&ctx, pluginregistration::InfoRequest(), &info).ok());
  EXPECT_EQ(info.type(), "DevicePlugin");
  EXPECT_EQ(info.name(), "spidernet.io/shared_cx5_gpu1");
  EXPECT_EQ(info.endpoint(), dir_.Sub("dp.sock"));
  EXPECT_THAT(info.supported_versions(), ElementsAre("v1beta1"));
}

TEST_F(PluginServiceTest, WatcherRejectionMarksServerAndWakesTheDaemon) {
  auto reg = pluginregistration::Registration::NewStub(channel_);
  pluginregistration::RegistrationStatus status;
  status.set_plugin_registered(false);
  status.set_error("boom");
  pluginregistration::RegistrationStatusResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(reg->NotifyRegistrationStatus(&ctx, status, &resp).ok());
  EXPECT_TRUE(server_->rejected());
  EXPECT_FALSE(server_->watcher_registered());
  EXPECT_EQ(wakes_.load(), 1);
}

TEST_F(PluginServiceTest, SocketIsPrivateAndRemovedOnStop) {
  struct stat st;
  ASSERT_EQ(::stat(dir_.Sub("dp.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(server_->SocketIntact());
  server_->Stop();
  EXPECT_FALSE(PathExists(dir_.Sub("dp.sock")));
}

TEST_F(PluginServiceTest, StopEndsOpenStreams) {
  grpc::ClientContext ctx;
  auto reader = stub_->ListAndWatch(&ctx, v1beta1::Empty());
  v1beta1::ListAndWatchResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  server_->Stop();
  EXPECT_FALSE(reader->Read(&resp));
}

TEST(SocketNameTest, IsPrefixedAndSanitizedAndUnlikeTheGoPlugin) {
  ResourceConfig rc = Rail(1);
  EXPECT_EQ(SocketNameFor(rc), "rdmashare-spidernet.io_shared_cx5_gpu1.sock");
  rc.resource_prefix = "a/b c";
  EXPECT_EQ(SocketNameFor(rc), "rdmashare-a_b_c_shared_cx5_gpu1.sock");
}

}  // namespace
}  // namespace rdmashare::deviceplugin
