#include "deviceplugin/flags.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdmashare::deviceplugin {
namespace {

using ::rdmashare::testing::StatusIs;
using ::testing::HasSubstr;

TEST(DpFlagsTest, DefaultsMatchTheGoPluginLayout) {
  ASSERT_OK_AND_ASSIGN(DpFlags f, ParseDpFlags({}));
  EXPECT_EQ(f.config_path, "/k8s-rdma-shared-dev-plugin/config.json");
  EXPECT_EQ(f.paths.sys_root, "/sys");
  EXPECT_EQ(f.paths.dev_root, "/dev");
  EXPECT_EQ(f.paths.host_dev_root, "/dev");
  EXPECT_EQ(f.paths.kubelet_dir, "/var/lib/kubelet");
  EXPECT_EQ(f.log_level, "info");
  EXPECT_FALSE(f.validate);
}

TEST(DpFlagsTest, AcceptsGnuAndGoStyles) {
  ASSERT_OK_AND_ASSIGN(DpFlags f,
                       ParseDpFlags({"-config-file", "/c.json", "--sysfs-root=/s", "-dev-root=/d",
                                     "--kubelet-dir", "/k", "--log-level=debug", "--validate"}));
  EXPECT_EQ(f.config_path, "/c.json");
  EXPECT_EQ(f.paths.sys_root, "/s");
  EXPECT_EQ(f.paths.dev_root, "/d");
  EXPECT_EQ(f.paths.kubelet_dir, "/k");
  EXPECT_EQ(f.log_level, "debug");
  EXPECT_TRUE(f.validate);
}

TEST(DpFlagsTest, HostDevRootFollowsDevRootUnlessSet) {
  ASSERT_OK_AND_ASSIGN(DpFlags a, ParseDpFlags({"--dev-root", "/host/dev"}));
  EXPECT_EQ(a.paths.host_dev_root, "/host/dev");
  ASSERT_OK_AND_ASSIGN(DpFlags b,
                       ParseDpFlags({"--dev-root", "/host/dev", "--host-dev-root", "/dev"}));
  EXPECT_EQ(b.paths.host_dev_root, "/dev");
}

TEST(DpFlagsTest, CdiAndMetricsFlags) {
  ASSERT_OK_AND_ASSIGN(DpFlags def, ParseDpFlags({}));
  EXPECT_FALSE(def.cdi);
  EXPECT_EQ(def.cdi_dir, "/var/run/cdi");
  EXPECT_EQ(def.metrics_addr, "");
  ASSERT_OK_AND_ASSIGN(
      DpFlags f, ParseDpFlags({"--cdi", "--cdi-dir=/run/cdi", "--metrics-addr", "127.0.0.1:9646"}));
  EXPECT_TRUE(f.cdi);
  EXPECT_EQ(f.cdi_dir, "/run/cdi");
  EXPECT_EQ(f.metrics_addr, "127.0.0.1:9646");
}

TEST(DpFlagsTest, GoUseCdiIsABooleanFlag) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-use-cdi"}, {"-use-cdi=true"}, {"--use-cdi=1"}, {"--cdi=true"}}) {
    ASSERT_OK_AND_ASSIGN(DpFlags f, ParseDpFlags(args));
    EXPECT_TRUE(f.cdi) << args[0];
  }
  ASSERT_OK_AND_ASSIGN(DpFlags off, ParseDpFlags({"--cdi", "-use-cdi=false"}));
  EXPECT_FALSE(off.cdi);
}

TEST(DpFlagsTest, RejectsBadInputNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--bogus"}, "unknown flag '--bogus'"},
           {{"--config"}, "flag --config needs a value"},
           {{"--config="}, "flag --config: empty value"},
           {{"--validate=yes"}, "flag --validate takes no value"},
           {{"stray"}, "unexpected argument 'stray'"},
           {{"--cli-host-path", "bin/rdmashare"}, "is not an absolute path"},
           {{"--cdi-dir", "cdi"}, "flag --cdi-dir: 'cdi' is not an absolute path"},
           {{"--kubelet-dir", "kubelet"}, "flag --kubelet-dir: 'kubelet' is not an absolute path"},
           {{"--kubelet-dir=./k"}, "flag --kubelet-dir: './k' is not an absolute path"},
           {{"--sysfs-root", "sys"}, "flag --sysfs-root: 'sys' is not an absolute path"},
           {{"-dev-root", "dev"}, "flag --dev-root: 'dev' is not an absolute path"},
           {{"--host-dev-root", "d"}, "flag --host-dev-root: 'd' is not an absolute path"},
           {{"-use-cdi=yes"}, "flag --use-cdi: 'yes' is not a boolean"},
           {{"--metrics-addr", "nonsense"}, "flag --metrics-addr: "},
       }) {
    EXPECT_THAT(ParseDpFlags(c.args),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.args[0];
  }
}

}  // namespace
}  // namespace rdmashare::deviceplugin
