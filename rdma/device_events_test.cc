#include "rdma/device_events.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdma/udev_events.h"

namespace rdmashare::rdma {
namespace {

using ::rdmashare::testing::RunProgram;
using ::rdmashare::testing::RunResult;
using ::rdmashare::testing::Subprocess;
using ::testing::HasSubstr;

std::string Uevent(const std::string& action, const std::string& devpath,
                   const std::string& subsystem) {
  std::string m = action + "@" + devpath;
  m.push_back('\0');
  for (const std::string& kv : {"ACTION=" + action, "DEVPATH=" + devpath, "SUBSYSTEM=" + subsystem,
                                std::string("SEQNUM=42")}) {
    m += kv;
    m.push_back('\0');
  }
  return m;
}

struct UeventCase {
  std::string name;
  std::string action;
  std::string subsystem;
  bool relevant;
};

class RelevantUeventTest : public ::testing::TestWithParam<UeventCase> {};

TEST_P(RelevantUeventTest, FiltersBySubsystemAndAction) {
  const UeventCase& c = GetParam();
  std::string msg = Uevent(c.action, "/devices/pci0000:00/0000:0b:00.0/x", c.subsystem);
  auto got = RelevantUevent(msg.data(), msg.size());
  EXPECT_EQ(got.has_value(), c.relevant);
  if (got) {
    EXPECT_EQ(*got, fmt::format("uevent {}@/devices/pci0000:00/0000:0b:00.0/x ({})", c.action,
                                c.subsystem));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RelevantUeventTest,
    ::testing::Values(UeventCase{"IbAdd", "add", "infiniband", true},
                      UeventCase{"VerbsRemove", "remove", "infiniband_verbs", true},
                      UeventCase{"MadChange", "change", "infiniband_mad", true},
                      UeventCase{"NetMove", "move", "net", true},
                      UeventCase{"PciBind", "bind", "pci", true},
                      UeventCase{"PciUnbind", "unbind", "pci", true},
                      UeventCase{"BlockAdd", "add", "block", false},
                      UeventCase{"UsbBind", "bind", "usb", false},
                      UeventCase{"NetOnline", "online", "net", false}),
    [](const ::testing::TestParamInfo<UeventCase>& info) { return info.param.name; });

TEST(RelevantUeventTest, MalformedAndLibudevMessagesAreIgnored) {
  std::string libudev("libudev\0\xfe\xed\xca\xfe", 12);
  EXPECT_FALSE(RelevantUevent(libudev.data(), libudev.size()).has_value());
  EXPECT_FALSE(RelevantUevent("", 0).has_value());
  std::string no_nul = "add@/devices/x";
  EXPECT_FALSE(RelevantUevent(no_nul.data(), no_nul.size()).has_value());
  std::string truncated = Uevent("add", "/devices/x", "net").substr(0, 20);
  EXPECT_FALSE(RelevantUevent(truncated.data(), truncated.size()).has_value());
}

bool Readable(int fd, std::chrono::milliseconds timeout) {
  struct pollfd p = {fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

TEST(FakeEventSourceTest, TriggersAreDrainedTogether) {
  FakeEventSource src;
  EXPECT_FALSE(Readable(src.fd(), std::chrono::milliseconds(0)));
  src.Trigger("a");
  src.Trigger("b");
  ASSERT_TRUE(Readable(src.fd(), std::chrono::milliseconds(1000)));
  EventBatch b = src.Drain();
  EXPECT_EQ(b.relevant, 2);
  EXPECT_THAT(b.samples, ::testing::ElementsAre("a", "b"));
  EXPECT_TRUE(b.needs_reconcile());
  EXPECT_FALSE(Readable(src.fd(), std::chrono::milliseconds(0)));
  EXPECT_FALSE(src.Drain().needs_reconcile());
}

RunResult Ip(const std::vector<std::string>& args) {
  Subprocess::Options o;
  o.argv = {"/usr/sbin/ip"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return RunProgram(o, std::chrono::seconds(10));
}

// Real kernel events: creating a veth pair raises uevents (subsystem net) and rtnetlink
// RTM_NEWLINK; setting it down raises RTM_NEWLINK only. Both must make the fd readable.
TEST(NetlinkEventSourceTest, RealVethCreateAndLinkDownAreSeen) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a veth pair";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NetlinkEventSource> src, NetlinkEventSource::Open());
  const std::string a = fmt::format("rsev{}a", ::getpid() % 100000);
  const std::string b = fmt::format("rsev{}b", ::getpid() % 100000);
  (void)Ip({"link", "del", a});
  (void)src->Drain();
  ASSERT_EQ(Ip({"link", "add", a, "type", "veth", "peer", "name", b}).exit_code, 0);
  ASSERT_TRUE(Readable(src->fd(), std::chrono::milliseconds(5000)));
  // uevents and link messages arrive separately; collect for a moment.
  bool saw_uevent = false, saw_link = false;
  for (int i = 0; i < 50 && !(saw_uevent && saw_link); ++i) {
    if (!Readable(src->fd(), std::chrono::milliseconds(100))) continue;
    EventBatch batch = src->Drain();
    for (const auto& s : batch.samples) {
      if (s.find("uevent add@") == 0 && s.find("/net/" + a) != std::string::npos) saw_uevent = true;
      if (s.find("link new") == 0 && s.find(a) != std::string::npos) saw_link = true;
    }
  }
  EXPECT_TRUE(saw_uevent);
  EXPECT_TRUE(saw_link);
  ASSERT_EQ(Ip({"link", "set", a, "up"}).exit_code, 0);
  while (Readable(src->fd(), std::chrono::milliseconds(200))) (void)src->Drain();
  ASSERT_EQ(Ip({"link", "set", a, "down"}).exit_code, 0);
  ASSERT_TRUE(Readable(src->fd(), std::chrono::milliseconds(5000)));
  EventBatch down = src->Drain();
  EXPECT_TRUE(down.needs_reconcile());
  ASSERT_FALSE(down.samples.empty());
  EXPECT_THAT(down.samples[0], HasSubstr("link new"));
  EXPECT_EQ(Ip({"link", "del", a}).exit_code, 0);
}

// libudev's monitor (what rdmashare-dp runs): creating a veth pair raises net uevents; a uevent
// of another subsystem causes no rescan (libudev drops it: for the kernel source its subsystem
// filter runs in user space). The pair is made in this netns: the kernel delivers a netdev's
// uevents only to its own netns.
TEST(UdevEventSourceTest, NetUeventsAreSeenOtherSubsystemsFiltered) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a veth pair";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<UdevEventSource> src, UdevEventSource::Open());
  const std::string a = fmt::format("rsuv{}a", ::getpid() % 100000);
  const std::string b = fmt::format("rsuv{}b", ::getpid() % 100000);
  (void)Ip({"link", "del", a});
  while (Readable(src->fd(), std::chrono::milliseconds(100))) (void)src->Drain();
  ASSERT_EQ(Ip({"link", "add", a, "type", "veth", "peer", "name", b}).exit_code, 0);
  bool saw_uevent = false;
  for (int i = 0; i < 50 && !saw_uevent; ++i) {
    if (!Readable(src->fd(), std::chrono::milliseconds(100))) continue;
    EventBatch batch = src->Drain();
    for (const auto& s : batch.samples) {
      if (s.find("uevent add@/devices/virtual/net/" + a + " (net)") == 0) saw_uevent = true;
    }
  }
  EXPECT_TRUE(saw_uevent);
  EXPECT_EQ(Ip({"link", "del", a}).exit_code, 0);
  while (Readable(src->fd(), std::chrono::milliseconds(200))) (void)src->Drain();
  // A uevent of an unrelated subsystem (/dev/null's "mem"): nothing relevant.
  const std::string other = "/sys/class/mem/null/uevent";  // subsystem "mem"
  int fd = ::open(other.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << other;
  ssize_t n = ::write(fd, "change", 6);
  ::close(fd);
  ASSERT_EQ(n, 6);
  if (Readable(src->fd(), std::chrono::milliseconds(300))) {
    EXPECT_FALSE(src->Drain().needs_reconcile());
  }
}

TEST(UdevEventSourceTest, LinkDownArrivesOverRtnetlink) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a veth pair";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<UdevEventSource> src, UdevEventSource::Open());
  const std::string a = fmt::format("rsud{}a", ::getpid() % 100000);
  const std::string b = fmt::format("rsud{}b", ::getpid() % 100000);
  (void)Ip({"link", "del", a});
  ASSERT_EQ(Ip({"link", "add", a, "type", "veth", "peer", "name", b}).exit_code, 0);
  ASSERT_EQ(Ip({"link", "set", a, "up"}).exit_code, 0);
  while (Readable(src->fd(), std::chrono::milliseconds(200))) (void)src->Drain();
  ASSERT_EQ(Ip({"link", "set", a, "down"}).exit_code, 0);
  ASSERT_TRUE(Readable(src->fd(), std::chrono::milliseconds(5000)));
  EventBatch down = src->Drain();
  EXPECT_TRUE(down.needs_reconcile());
  ASSERT_FALSE(down.samples.empty());
  EXPECT_THAT(down.samples[0], HasSubstr("link new"));
  EXPECT_EQ(Ip({"link", "del", a}).exit_code, 0);
}

}  // namespace
}  // namespace rdmashare::rdma
