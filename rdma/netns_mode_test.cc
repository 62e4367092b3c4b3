#include "rdma/netns_mode.h"

#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::rdma {
namespace {

using ::rdmashare::testing::IsOk;
using ::rdmashare::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Optional;

constexpr uint16_t kSysGet = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_SYS_GET);

// Builds netlink datagrams the way the kernel lays them out.
class Datagram {
 public:
  // Starts a message; attributes added afterwards belong to it.
  Datagram& Message(uint16_t type, uint32_t seq) {
    start_ = bytes_.size();
    struct nlmsghdr h {};
    h.nlmsg_type = type;
    h.nlmsg_seq = seq;
    Append(&h, sizeof(h));
    Finish();
    return *this;
  }
  Datagram& U8Attr(uint16_t type, uint8_t value) {
    struct nlattr a {};
    a.nla_type = type;
    a.nla_len = sizeof(a) + 1;
    Append(&a, sizeof(a));
    Append(&value, 1);
    Pad();
    Finish();
    return *this;
  }
  Datagram& U32Attr(uint16_t type, uint32_t value) {
    struct nlattr a {};
    a.nla_type = type;
    a.nla_len = sizeof(a) + 4;
    Append(&a, sizeof(a));
    Append(&value, 4);
    Finish();
    return *this;
  }
  Datagram& Error(uint32_t seq, int error) {
    Message(NLMSG_ERROR, seq);
    struct nlmsgerr e {};
    e.error = error;
    Append(&e, sizeof(e));
    Finish();
    return *this;
  }
  // Overwrites the length of the current message (for corruption).
  Datagram& SetLength(uint32_t len) {
    std::memcpy(bytes_.data() + start_, &len, sizeof(len));
    return *this;
  }
  Datagram& Truncate(size_t n) {
    bytes_.resize(bytes_.size() - n);
    return *this;
  }
  absl::StatusOr<std::optional<NetnsMode>> Parse(uint32_t seq) const {
    return ParseNetnsModeReply(bytes_.data(), bytes_.size(), seq);
  }

 private:
  void Append(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  void Pad() {
    while (bytes_.size() % 4 != 0) bytes_.push_back(0);
  }
  void Finish() {
    uint32_t len = static_cast<uint32_t>(bytes_.size() - start_);
    std::memcpy(bytes_.data() + start_, &len, sizeof(len));
  }
  std::vector<uint8_t> bytes_;
  size_t start_ = 0;
};

TEST(NetnsModeTest, RealReaderOnThisMachineIsUnavailableOrAnswers) {
  // Probe what the kernel offers, independently of the reader.
  int probe = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA);
  int probe_errno = errno;
  if (probe >= 0) ::close(probe);
  NetlinkNetnsModeReader reader(std::chrono::milliseconds(500));
  auto mode = reader.Read();
  if (probe < 0 && (probe_errno == EPROTONOSUPPORT || probe_errno == EAFNOSUPPORT)) {
    // This machine: no RDMA netlink at all.
    ASSERT_OK_AND_ASSIGN(NetnsMode m, mode);
    EXPECT_EQ(m, NetnsMode::kUnavailable);
  } else if (!mode.ok()) {
    // A host with ib_core that does not answer in time: a clear, retryable error.
    EXPECT_THAT(mode, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("RDMA netns mode")));
  }
}

TEST(NetnsModeTest, NamesOfModes) {
  EXPECT_STREQ(NetnsModeName(NetnsMode::kShared), "shared");
  EXPECT_STREQ(NetnsModeName(NetnsMode::kExclusive), "exclusive");
  EXPECT_STREQ(NetnsModeName(NetnsMode::kUnavailable), "unavailable");
}

TEST(NetnsModeTest, SharedModeIsFitForSharing) {
  EXPECT_THAT(CheckNetnsModeForSharing(NetnsMode::kShared), IsOk());
}

TEST(NetnsModeTest, UnavailableModeIsLeftToTheCallerToWarn) {
  EXPECT_THAT(CheckNetnsModeForSharing(NetnsMode::kUnavailable), IsOk());
}

TEST(NetnsModeTest, ExclusiveModeIsFailedPreconditionSayingHowToFixIt) {
  EXPECT_THAT(CheckNetnsModeForSharing(NetnsMode::kExclusive),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("RDMA netns mode is exclusive"),
                             HasSubstr("rdma system set netns shared"), HasSubstr("netns_mode=1"),
                             HasSubstr("/etc/modprobe.d"))));
}

TEST(FakeNetnsModeReaderTest, ReturnsConfiguredModeAndCountsReads) {
  FakeNetnsModeReader fake(NetnsMode::kExclusive);
  EXPECT_THAT(fake.Read(), ::testing::Eq(absl::StatusOr<NetnsMode>(NetnsMode::kExclusive)));
  fake.Set(NetnsMode::kShared);
  ASSERT_OK_AND_ASSIGN(NetnsMode mode, fake.Read());
  EXPECT_EQ(mode, NetnsMode::kShared);
  EXPECT_EQ(fake.reads(), 2);
}

TEST(FakeNetnsModeReaderTest, ReturnsConfiguredError) {
  FakeNetnsModeReader fake(absl::UnavailableError("netlink timeout"));
  EXPECT_THAT(fake.Read(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("timeout")));
}

TEST(ParseNetnsModeReplyTest, SharedAndExclusiveValues) {
  for (auto [value, mode] : std::vector<std::pair<uint8_t, NetnsMode>>{
           {1, NetnsMode::kShared}, {0, NetnsMode::kExclusive}}) {
    SCOPED_TRACE(NetnsModeName(mode));
    Datagram d;
    d.Message(kSysGet, 7).U8Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE, value);
    ASSERT_OK_AND_ASSIGN(auto got, d.Parse(7));
    EXPECT_THAT(got, Optional(mode));
  }
}

TEST(ParseNetnsModeReplyTest, FindsModeAfterOtherAttributesAndBeforeAck) {
  Datagram d;
  d.Message(kSysGet, 9)
      .U32Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE + 1, 5)
      .U8Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE, 1)
      .Error(9, 0);
  ASSERT_OK_AND_ASSIGN(auto got, d.Parse(9));
  EXPECT_THAT(got, Optional(NetnsMode::kShared));
}

TEST(ParseNetnsModeReplyTest, AckOrForeignSequenceIsNotConclusive) {
  Datagram ack;
  ack.Error(3, 0);
  ASSERT_OK_AND_ASSIGN(auto got, ack.Parse(3));
  EXPECT_FALSE(got.has_value());
  Datagram other;
  other.Message(kSysGet, 4).U8Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE, 0);
  ASSERT_OK_AND_ASSIGN(got, other.Parse(3));
  EXPECT_FALSE(got.has_value());
}

TEST(ParseNetnsModeReplyTest, KernelWithoutSysGetIsUnavailableMode) {
  for (int err : {EINVAL, EOPNOTSUPP}) {
    SCOPED_TRACE(err);
    Datagram d;
    d.Error(5, -err);
    ASSERT_OK_AND_ASSIGN(auto got, d.Parse(5));
    EXPECT_THAT(got, Optional(NetnsMode::kUnavailable));
  }
}

TEST(ParseNetnsModeReplyTest, OtherKernelErrorIsUnavailableStatus) {
  Datagram d;
  d.Error(5, -EPERM);
  EXPECT_THAT(d.Parse(5), StatusIs(absl::StatusCode::kUnavailable,
                                   HasSubstr("kernel refused SYS_GET: Operation not permitted")));
}

TEST(ParseNetnsModeReplyTest, MalformedRepliesAreInvalidArgument) {
  struct Case {
    std::string name;
    Datagram d;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({"message longer than datagram", Datagram(), "has bad length 4096"});
  cases.back().d.Message(kSysGet, 1).U8Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE, 1).SetLength(4096);
  cases.push_back({"message shorter than header", Datagram(), "has bad length 3"});
  cases.back().d.Message(kSysGet, 1).SetLength(3);
  cases.push_back({"attribute overruns message", Datagram(), "attribute at offset 0"});
  cases.back().d.Message(kSysGet, 1).U32Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE, 1).Truncate(2);
  cases.back().d.SetLength(sizeof(struct nlmsghdr) + 6);
  cases.push_back({"no mode attribute", Datagram(), "no netns mode attribute"});
  cases.back().d.Message(kSysGet, 1).U32Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE + 1, 1);
  cases.push_back({"unknown mode value", Datagram(), "unknown netns mode value 7"});
  cases.back().d.Message(kSysGet, 1).U8Attr(RDMA_NLDEV_SYS_ATTR_NETNS_MODE, 7);
  cases.push_back({"error code not -errno", Datagram(), "code -2147483648 is not -errno"});
  cases.back().d.Error(1, INT32_MIN);
  cases.push_back({"positive error code", Datagram(), "code 5 is not -errno"});
  cases.back().d.Error(1, 5);
  cases.push_back({"truncated error", Datagram(), "truncated netlink error"});
  cases.back().d.Message(NLMSG_ERROR, 1);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(c.d.Parse(1), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)));
  }
}

TEST(ParseNetnsModeReplyTest, EmptyDatagramIsNotConclusive) {
  ASSERT_OK_AND_ASSIGN(auto got, ParseNetnsModeReply(nullptr, 0, 1));
  EXPECT_FALSE(got.has_value());
}

}  // namespace
}  // namespace rdmashare::rdma
