// Endpoint validation: every malformed endpoint is code 7 from EtcdClient::Create (no connection
// is made, so no etcd is needed).
#include "cni/ipam/etcd_endpoint.h"

#include <chrono>
#include <string>
#include <vector>

#include "cni/ipam/etcd_client.h"
#include "cni/protocol/error.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::cni::ipam {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

EtcdOptions Options(const std::vector<std::string>& endpoints) {
  EtcdOptions o;
  o.endpoints = endpoints;
  o.dial_timeout = std::chrono::milliseconds(1000);
  o.request_timeout = std::chrono::milliseconds(3000);
  return o;
}

struct BadEndpoint {
  std::string name;
  std::string endpoint;
  std::string message;
};

class BadEndpointTest : public ::testing::TestWithParam<BadEndpoint> {};

TEST_P(BadEndpointTest, IsRejectedWithCode7) {
  EtcdOptions o;
  o.endpoints = {GetParam().endpoint};
  auto c = EtcdClient::Create(o);
  EXPECT_THAT(c.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().message)));
  EXPECT_EQ(CniCode(c.status()), kInvalidNetworkConfig);
}

INSTANTIATE_TEST_SUITE_P(
    Endpoints, BadEndpointTest,
    ::testing::Values(BadEndpoint{"HttpsWithoutCa", "https://127.0.0.1:2379", "set store.tls.ca"},
                      BadEndpoint{"NoPort", "127.0.0.1", "has no port"},
                      BadEndpoint{"BadHostName", "etcd_0.example:2379", "nor a valid host name"},
                      BadEndpoint{"PortZero", "127.0.0.1:0", "not in 1..65535"},
                      BadEndpoint{"PortTooBig", "127.0.0.1:99999", "not in 1..65535"},
                      BadEndpoint{"PortNotNumber", "127.0.0.1:x", "not in 1..65535"},
                      BadEndpoint{"UnclosedBracket", "[::1", "is not [address]:port"}),
    [](const ::testing::TestParamInfo<BadEndpoint>& info) { return info.param.name; });

TEST(EtcdClientTest, NoEndpointsIsRejected) {
  EXPECT_THAT(EtcdClient::Create(EtcdOptions{}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one endpoint")));
}

struct BadHost {
  std::string name;
  std::string endpoint;
  std::string message;
};

class BadHostTest : public ::testing::TestWithParam<BadHost> {};

TEST_P(BadHostTest, IsCode7) {
  auto c = EtcdClient::Create(Options({GetParam().endpoint}));
  EXPECT_THAT(c.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Hosts, BadHostTest,
    ::testing::Values(BadHost{"Underscore", "etcd_0:2379", "nor a valid host name"},
                      BadHost{"LeadingDash", "-etcd:2379", "nor a valid host name"},
                      BadHost{"EmptyLabel", "etcd..example:2379", "nor a valid host name"},
                      BadHost{"LongLabel", std::string(64, 'a') + ":2379", "nor a valid host name"},
                      BadHost{"Scheme", "grpc://etcd:2379", "scheme must be http or https"},
                      BadHost{"BracketedName", "[etcd]:2379", "is not an IPv6 address"}),
    [](const ::testing::TestParamInfo<BadHost>& info) { return info.param.name; });

}  // namespace
}  // namespace rdmashare::cni::ipam
