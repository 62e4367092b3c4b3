#include "deviceplugin/selectors.h"

#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

TEST(SelectorsMatchTest, EmptySelectorsMatchNothing) {
  rdma::RdmaDevice device;
  device.vendor_id = "15b3";
  EXPECT_FALSE(SelectorsMatch(Selectors{}, device));
}

}  // namespace
}  // namespace rdmashare::deviceplugin
