// Tests of manifests/ and the Containerfile: the YAML lints and renders, and everything the
// manifests hand to our binaries is accepted by those binaries (rdmashare-dp --validate on the
// walkthrough fake node with the DaemonSet's own flags; the NetworkAttachmentDefinitions through
// rdmashare-macvlan + rdmashare-ipam ADD/DEL on a real rail netns; the installer and probe
// scripts run as written). YAML is turned into JSON by Debian's python3-yaml (a dependency of
// yamllint, which tools/setup.sh installs).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cni/ipam/config.h"
#include "cni/macvlan/config.h"
#include "cni/protocol/netconf.h"
#include "common/files.h"
#include "common/testing/loopback_http.h"
#include "common/testing/status_matchers.h"
#include "common/testing/subprocess.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cni/rail_harness.h"

namespace rdmashare {
namespace {

using ::rdmashare::cni::testing::PluginRun;
using ::rdmashare::cni::testing::RailHarness;
using ::rdmashare::testing::RunProgram;
using ::rdmashare::testing::RunResult;
using ::rdmashare::testing::Subprocess;
using ::rdmashare::testing::TempDir;
using ::rdmashare::testing::WaitFor;
using ::rdmashare::testing::WriteTestFile;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

const std::string kSrc = RS_SOURCE_DIR;
const std::string kManifests = kSrc + "/manifests";
constexpr int kRails = 8;

// The first executable `name` on PATH (or the standard dirs), "" when there is none.
std::string Which(const std::string& name) {
  std::string path = getenv("PATH") ? getenv("PATH") : "";
  path += ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find(':', pos);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(pos, end - pos);
    pos = end + 1;
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

RunResult Exec(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
               std::string stdin_data = "") {
  Subprocess::Options o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  o.stdin_data = std::move(stdin_data);
  return RunProgram(std::move(o));
}

std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path, size_t{256} << 20);
  EXPECT_TRUE(s.ok()) << path << ": " << s.status().message();
  return s.ok() ? *s : "";
}

// Every YAML document of `text` as a JSON array (null documents dropped). Debian's python3 is
// used on purpose: python3-yaml comes with yamllint.
json YamlDocs(const std::string& text) {
  std::string py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : Which("python3");
  RunResult r = Exec({py, "-c",
                      "import sys, json, yaml\n"
                      "json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None],"
                      " sys.stdout)\n"},
                     {}, text);
  EXPECT_EQ(r.exit_code, 0) << "python3-yaml (Debian package python3-yaml) converts YAML: "
                            << r.err;
  json docs = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(docs.is_array()) << r.out;
  return docs.is_array() ? docs : json::array();
}

json Manifest(const std::string& rel) { return YamlDocs(Slurp(kManifests + "/" + rel)); }

// The single object of `kind` named `name` in `docs` (null when absent).
json Find(const json& docs, const std::string& kind, const std::string& name) {
  for (const json& d : docs) {
    if (d.value("kind", "") == kind && d["metadata"].value("name", "") == name) return d;
  }
  ADD_FAILURE() << "no " << kind << " " << name;
  return json();
}

json DpDaemonSet() { return Find(Manifest("daemonset-dp.yaml"), "DaemonSet", "rdmashare-dp"); }

json Container(const json& workload) {
  return workload["spec"]["template"]["spec"]["containers"][0];
}

// Volume `name` of a pod template.
json Volume(const json& workload, const std::string& name) {
  for (const json& v : workload["spec"]["template"]["spec"]["volumes"]) {
    if (v.value("name", "") == name) return v;
  }
  ADD_FAILURE() << "no volume " << name;
  return json();
}

json MountAt(const json& container, const std::string& mount_path) {
  for (const json& m : container["volumeMounts"]) {
    if (m.value("mountPath", "") == mount_path) return m;
  }
  ADD_FAILURE() << "nothing mounted at " << mount_path;
  return json();
}

std::vector<std::string> Strings(const json& list) {
  std::vector<std::string> out;
  for (const json& s : list) out.push_back(s.get<std::string>());
  return out;
}

std::string ConfigJson() {
  json cm = Find(Manifest("configmap.yaml"), "ConfigMap", "rdmashare-dp-config");
  return cm.is_null() ? "" : cm["data"].value("config.json", "");
}

std::string RailNetworkFile(int k) { return fmt::format("networks/gpu{}-net{}.yaml", k, 10 + k); }

json RailNetwork(int k) {
  return Find(Manifest(RailNetworkFile(k)), "NetworkAttachmentDefinition",
              fmt::format("gpu{}-net{}", k, 10 + k));
}

// ------------------------------------------------------------------------------- yamllint

TEST(Yamllint, ManifestsPassStrict) {
  std::string yamllint = Which("yamllint");
  ASSERT_FALSE(yamllint.empty()) << "yamllint missing (Debian package yamllint, tools/setup.sh)";
  RunResult r = Exec({yamllint, "--strict", "-c", kSrc + "/.yamllint", kManifests});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(Yamllint, ProjectConfigStillRejectsBrokenYaml) {
  std::string yamllint = Which("yamllint");
  ASSERT_FALSE(yamllint.empty()) << "yamllint missing (Debian package yamllint, tools/setup.sh)";
  TempDir dir;
  WriteTestFile(dir.Sub("bad.yaml"), "kind: ConfigMap\nkind: Secret\ndata:  \n   x: 1\n");
  RunResult r = Exec({yamllint, "--strict", "-c", kSrc + "/.yamllint", dir.Sub("bad.yaml")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("duplication of key"));
}

// ------------------------------------------------------------------------------- kustomize

// kubectl, or "" (tests that need it skip). Debian 12: package kubernetes-client (1.20, whose
// kustomize the manifests are kept compatible with) or a kubectl from the Kubernetes apt repo.
std::string Kubectl() {
  if (const char* k = getenv("RS_KUBECTL"); k && *k) return k;
  return Which("kubectl");
}

json Kustomize(const std::string& dir) {
  RunResult r = Exec({Kubectl(), "kustomize", dir});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return YamlDocs(r.out);
}

TEST(Kustomize, BaseRendersEveryObjectInTheRdmashareNamespace) {
  if (Kubectl().empty()) {
    GTEST_SKIP() << "no kubectl installed (Debian 12: apt-get install kubernetes-client)";
  }
  json docs = Kustomize(kManifests);
  std::map<std::string, int> kinds;
  for (const json& d : docs) {
    ++kinds[d.value("kind", "")];
    if (d["kind"] != "Namespace") {
      EXPECT_EQ(d["metadata"].value("namespace", ""), "rdmashare") << d["metadata"];
    }
  }
  EXPECT_EQ(kinds, (std::map<std::string, int>{{"Namespace", 1},
                                               {"ConfigMap", 1},
                                               {"DaemonSet", 2},
                                               {"NetworkAttachmentDefinition", kRails}}));
  EXPECT_FALSE(Find(docs, "DaemonSet", "rdmashare-dp").is_null());
  EXPECT_FALSE(Find(docs, "DaemonSet", "rdmashare-cni-installer").is_null());
}

struct OverlayCase {
  std::string dir;
  std::map<std::string, int> kinds;
};

void PrintTo(const OverlayCase& c, std::ostream* os) { *os << c.dir; }

class KustomizeOverlay : public ::testing::TestWithParam<OverlayCase> {};

TEST_P(KustomizeOverlay, Renders) {
  if (Kubectl().empty()) {
    GTEST_SKIP() << "no kubectl installed (Debian 12: apt-get install kubernetes-client)";
  }
  std::map<std::string, int> kinds;
  for (const json& d : Kustomize(kManifests + "/" + GetParam().dir)) {
    ++kinds[d.value("kind", "")];
    EXPECT_EQ(d["metadata"].value("namespace", ""), "rdmashare");
  }
  EXPECT_EQ(kinds, GetParam().kinds);
}

INSTANTIATE_TEST_SUITE_P(
    Overlays, KustomizeOverlay,
    ::testing::Values(OverlayCase{"networks", {{"NetworkAttachmentDefinition", kRails}}},
                      OverlayCase{"etcd/in-cluster", {{"Service", 2}, {"StatefulSet", 1}}},
                      OverlayCase{"etcd/existing", {{"Secret", 1}}},
                      OverlayCase{"etcd/node-setup", {{"DaemonSet", 1}}}),
    [](const auto& info) {
      std::string n = info.param.dir;
      std::replace_if(
          n.begin(), n.end(), [](char c) { return !isalnum(c); }, '_');
      return n;
    });

// ------------------------------------------------------------------ rdmashare-dp DaemonSet

// Builds the walkthrough node under `dir`; returns {sys_root, dev_root}.
std::pair<std::string, std::string> WalkthroughNode(const TempDir& dir) {
  RunResult r = Exec({RS_FAKENODE_BIN, "--preset", "walkthrough-8rail", "--root", dir.Sub("node")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string sys, dev;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::ConsumePrefix(&line, "sys_root=")) sys = std::string(line);
    if (absl::ConsumePrefix(&line, "dev_root=")) dev = std::string(line);
  }
  EXPECT_FALSE(sys.empty()) << r.out;
  return {sys, dev};
}

// The DaemonSet's rdmashare-dp argv, then overrides pointing the roots at `dir`'s fake node
// (later flags win), then `extra`.
std::vector<std::string> DpArgv(const TempDir& dir, const std::string& config_path,
                                const std::vector<std::string>& extra) {
  json c = Container(DpDaemonSet());
  std::vector<std::string> argv = Strings(c["command"]);
  // Kubelet expands $(VAR) from the container's env; status.hostIP is this host's loopback here.
  for (std::string a : Strings(c["args"])) {
    for (size_t pos; (pos = a.find("$(HOST_IP)")) != std::string::npos;) {
      a.replace(pos, 10, "127.0.0.1");
    }
    argv.push_back(a);
  }
  auto [sys, dev] = WalkthroughNode(dir);
  for (const std::string& a : std::vector<std::string>{
           "--config=" + config_path, "--sysfs-root=" + sys, "--dev-root=" + dev,
           "--host-dev-root=/dev", "--kubelet-dir=" + dir.Sub("kubelet")}) {
    argv.push_back(a);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv[0] = RS_DP_BIN;
  return argv;
}

TEST(DpDaemonSet, ConfigMapValidatesOnTheWalkthroughNodeWithTheDaemonSetFlags) {
  TempDir dir;
  WriteTestFile(dir.Sub("config.json"), ConfigJson());
  RunResult r = Exec(DpArgv(dir, dir.Sub("config.json"), {"--validate"}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("valid (8 resources, periodicUpdateInterval 300s)"));
  EXPECT_THAT(r.out, Not(HasSubstr("matches no RDMA device")));
  EXPECT_THAT(r.err, Not(HasSubstr("warn"))) << "config.json has unknown or repeated keys";
  for (int k = 1; k <= kRails; ++k) {
    EXPECT_THAT(r.out, HasSubstr(fmt::format("spidernet.io/shared_cx5_gpu{}: 100 units", k)));
    EXPECT_THAT(r.out, HasSubstr(fmt::format("netdev=enp{}s0f0np0", 10 + k)));
  }
}

TEST(DpDaemonSet, EveryArgIsAFlagRdmashareDpAccepts) {
  // Each DaemonSet arg alone + --version: parsing fails (exit 2) on any unknown flag or value.
  json c = Container(DpDaemonSet());
  ASSERT_FALSE(c["args"].empty());
  for (const std::string& a : Strings(c["args"])) {
    RunResult r = Exec({RS_DP_BIN, a, "--version"});
    EXPECT_EQ(r.exit_code, 0) << a << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("rdmashare-dp ")) << a;
  }
  // The same check notices a flag rdmashare-dp does not know.
  RunResult bad = Exec({RS_DP_BIN, "--no-such-flag=1", "--version"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("unknown flag"));
}

TEST(DpDaemonSet, ConfigFlagNamesTheConfigMapMountedWithoutSubPath) {
  json ds = DpDaemonSet();
  json c = Container(ds);
  std::string config_path;
  for (const std::string& a : Strings(c["args"])) {
    if (a.rfind("--config=", 0) == 0) config_path = a.substr(9);
  }
  ASSERT_FALSE(config_path.empty());
  json mount = MountAt(c, config_path.substr(0, config_path.rfind('/')));
  EXPECT_FALSE(mount.contains("subPath")) << "subPath mounts never see ConfigMap edits";
  json vol = Volume(ds, mount.value("name", ""));
  EXPECT_EQ(vol["configMap"]["name"], "rdmashare-dp-config");
  EXPECT_EQ(BaseName(config_path), "config.json");
}

TEST(DpDaemonSet, MountsHostDirectoriesAsTheDaemonNeedsThem) {
  json ds = DpDaemonSet();
  json c = Container(ds);
  struct Want {
    std::string path;
    bool read_only;
  };
  for (const Want& w : {Want{"/var/lib/kubelet/device-plugins", false},
                        Want{"/var/lib/kubelet/plugins_registry", false}, Want{"/dev", true},
                        Want{"/sys", true}, Want{"/var/run/cdi", false}}) {
    json m = MountAt(c, w.path);
    EXPECT_EQ(m.value("readOnly", false), w.read_only) << w.path;
    EXPECT_EQ(Volume(ds, m.value("name", ""))["hostPath"].value("path", ""), w.path);
  }
}

TEST(DpDaemonSet, MetricsBindTheNodeAddressFromTheDownwardApi) {
  json c = Container(DpDaemonSet());
  std::string addr;
  for (const std::string& a : Strings(c["args"])) {
    if (a.rfind("--metrics-addr=", 0) == 0) addr = a.substr(15);
  }
  EXPECT_EQ(addr, "$(HOST_IP):9646");
  bool host_ip = false;
  for (const json& e : c["env"]) {
    if (e.value("name", "") == "HOST_IP") {
      host_ip = e["valueFrom"]["fieldRef"].value("fieldPath", "") == "status.hostIP";
    }
  }
  EXPECT_TRUE(host_ip) << "HOST_IP must come from status.hostIP";
}

TEST(Manifests, DaemonSetsRunOnLabelledRdmaNodesWithTheKustomizedImage) {
  json kust = YamlDocs(Slurp(kManifests + "/kustomization.yaml"))[0];
  ASSERT_EQ(kust["images"].size(), 1u);
  const std::string image_name = kust["images"][0].value("name", "");
  EXPECT_NE(image_name.find('/'), std::string::npos) << "a fully qualified image name";
  for (const auto& [file, name] : std::vector<std::pair<std::string, std::string>>{
           {"daemonset-dp.yaml", "rdmashare-dp"},
           {"daemonset-cni-installer.yaml", "rdmashare-cni-installer"},
           {"test-workload.yaml", "rdma-tools"}}) {
    json ds = Find(Manifest(file), "DaemonSet", name);
    EXPECT_EQ(ds["spec"]["template"]["spec"]["nodeSelector"].value("rdmashare.io/rdma", ""), "true")
        << file;
    if (file != "test-workload.yaml") {
      std::string image = Container(ds).value("image", "");
      EXPECT_EQ(image.substr(0, image.rfind(':')), image_name) << file;
    }
  }
  json reg = Volume(DpDaemonSet(), "plugins-registry");
  EXPECT_EQ(reg["hostPath"].value("type", ""), "DirectoryOrCreate");
}

TEST(DpDaemonSet, RunsOnTheHostNetworkAsNodeCriticalWithoutPrivileges) {
  json ds = DpDaemonSet();
  json spec = ds["spec"]["template"]["spec"];
  EXPECT_EQ(spec.value("hostNetwork", false), true);
  EXPECT_EQ(spec.value("priorityClassName", ""), "system-node-critical");
  json sc = Container(ds)["securityContext"];
  EXPECT_EQ(sc.value("privileged", true), false);
  EXPECT_EQ(sc.value("allowPrivilegeEscalation", true), false);
  EXPECT_EQ(sc.value("readOnlyRootFilesystem", false), true);
  EXPECT_EQ(sc["capabilities"]["drop"], json::array({"ALL"}));
  EXPECT_FALSE(sc["capabilities"].contains("add"));
  json res = Container(ds)["resources"];
  EXPECT_TRUE(res["requests"].contains("cpu") && res["requests"].contains("memory"));
  EXPECT_TRUE(res["limits"].contains("memory"));
}

// The container port a probe names (by name or number).
int ProbePort(const json& container, const json& probe) {
  const json& port = probe["httpGet"]["port"];
  if (port.is_number_integer()) return port.get<int>();
  for (const json& p : container["ports"]) {
    if (p.value("name", "") == port.get<std::string>()) return p.value("containerPort", 0);
  }
  return 0;
}

// GET http://127.0.0.1:<port><path> like kubelet's httpGet probe: the status code, or 0 when
// nothing answers.
int HttpStatus(int port, const std::string& path) {
  return ::rdmashare::testing::HttpStatusOf(::rdmashare::testing::LoopbackHttpGet(port, path));
}

TEST(DpDaemonSet, ProbesAreHttpGetsOnTheMetricsPortTheDaemonServes) {
  json c = Container(DpDaemonSet());
  std::string addr;
  for (const std::string& a : Strings(c["args"])) {
    if (a.rfind("--metrics-addr=", 0) == 0) addr = a.substr(15);
  }
  ASSERT_FALSE(addr.empty()) << "no --metrics-addr";
  const int port = std::atoi(addr.substr(addr.rfind(':') + 1).c_str());
  EXPECT_EQ(ProbePort(c, c["readinessProbe"]), port);
  EXPECT_EQ(ProbePort(c, c["livenessProbe"]), port);
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/readyz");
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"], "/healthz");
}

TEST(DpDaemonSet, ProbesAnswerAsTheRealDaemonRegistersAndFailOnceItStops) {
  TempDir dir;
  WriteTestFile(dir.Sub("config.json"), ConfigJson());
  // Plugin-watcher mode (kubelet's plugins_registry exists) and no kubelet: alive, not ready.
  ASSERT_OK(MakeDirs(dir.Sub("kubelet/plugins_registry")));
  json c = Container(DpDaemonSet());
  // The DaemonSet's port may be taken on a shared machine: same flag, a free loopback port.
  const int port = ::rdmashare::testing::FreeLoopbackPort();
  ASSERT_NE(port, 0);
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    EXPECT_EQ(HttpStatus(port, c[probe]["httpGet"]["path"]), 0) << probe << " with no daemon";
  }
  Subprocess::Options o;
  o.argv = DpArgv(dir, dir.Sub("config.json"), {fmt::format("--metrics-addr=127.0.0.1:{}", port)});
  o.work_dir = dir.path();
  Subprocess dp(o);
  ASSERT_TRUE(dp.Start());
  EXPECT_TRUE(
      WaitFor([&] { return HttpStatus(port, c["livenessProbe"]["httpGet"]["path"]) == 200; },
              std::chrono::seconds(30)))
      << dp.Stderr();
  EXPECT_EQ(HttpStatus(port, c["readinessProbe"]["httpGet"]["path"]), 503)
      << "ready although no kubelet registered it";
  dp.Signal(SIGTERM);
  ASSERT_EQ(dp.Wait(std::chrono::seconds(20)), 0) << dp.Stderr();
  EXPECT_EQ(HttpStatus(port, c["livenessProbe"]["httpGet"]["path"]), 0);
}

// ------------------------------------------------------------------------------ Grafana

// Every metric a dashboard panel queries, and every label it groups or filters by, is one the
// real rdmashare-dp serves: renaming a metric breaks this test, not the operators' dashboards.
TEST(GrafanaDashboard, QueriesOnlyMetricsAndLabelsTheDaemonServes) {
  json dash = json::parse(Slurp(kManifests + "/grafana/rdmashare-dashboard.json"), nullptr, false);
  ASSERT_TRUE(dash.is_object());
  std::set<std::string> vars;
  for (const json& v : dash["templating"]["list"]) vars.insert(v.value("name", ""));
  EXPECT_EQ(vars, (std::set<std::string>{"datasource", "node", "resource"}));

  TempDir dir;
  WriteTestFile(dir.Sub("config.json"), ConfigJson());
  const int port = ::rdmashare::testing::FreeLoopbackPort();
  ASSERT_NE(port, 0);
  Subprocess::Options o;
  o.argv = DpArgv(dir, dir.Sub("config.json"), {fmt::format("--metrics-addr=127.0.0.1:{}", port)});
  o.work_dir = dir.path();
  Subprocess dp(o);
  ASSERT_TRUE(dp.Start());
  std::string metrics;
  EXPECT_TRUE(WaitFor(
      [&] {
        metrics = ::rdmashare::testing::LoopbackHttpGet(port, "/metrics");
        return metrics.find("rdmashare_rdma_hw_counter_total{") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << dp.Stderr();
  dp.Signal(SIGTERM);
  dp.Wait(std::chrono::seconds(20));
  // metric name -> label names seen on its samples ("instance" is Prometheus's own).
  std::map<std::string, std::set<std::string>> served;
  std::regex sample(R"(^([a-z_]+)\{([^}]*)\} )");
  std::regex label(R"(([a-z_]+)=")");
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    std::string l(line);
    std::smatch m;
    if (!std::regex_search(l, m, sample)) continue;
    std::set<std::string>& names = served[m[1]];
    names.insert("instance");
    std::string labels = m[2];
    for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it) {
      names.insert((*it)[1]);
    }
  }
  std::regex metric_ref(R"(([a-z_]+)\{([^}]*)\})");
  std::regex by(R"(by \(([a-z_, ]+)\))");
  int queries = 0;
  for (const json& panel : dash["panels"]) {
    for (const json& target : panel["targets"]) {
      std::string expr = target.value("expr", "");
      ++queries;
      std::smatch m;
      ASSERT_TRUE(std::regex_search(expr, m, metric_ref)) << expr;
      const std::string metric = m[1];
      ASSERT_TRUE(served.count(metric)) << panel["title"] << ": " << metric << " is not served";
      std::string matchers = m[2];
      for (std::sregex_iterator it(matchers.begin(), matchers.end(), label), end; it != end; ++it) {
        EXPECT_TRUE(served[metric].count((*it)[1])) << expr << ": no label " << (*it)[1];
      }
      std::smatch b;
      ASSERT_TRUE(std::regex_search(expr, b, by)) << expr;
      for (absl::string_view name :
           absl::StrSplit(std::string(b[1]), ',', absl::SkipWhitespace())) {
        EXPECT_TRUE(served[metric].count(std::string(absl::StripAsciiWhitespace(name))))
            << expr << ": cannot group by " << name;
      }
    }
  }
  EXPECT_EQ(queries, 13);
  // The renderer of the README's picture understands every expression (its --check mode).
  if (PathExists("/usr/bin/python3")) {
    RunResult check = Exec({"/usr/bin/python3", kSrc + "/tools/dashboard/render.py", "--check"});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    EXPECT_THAT(check.out, HasSubstr("13 panels, every expression understood"));
  }
}

// --------------------------------------------------------------------------- CNI installer

TEST(CniInstaller, CopiesBothPluginsAndTheCliAtomicallyThenIdlesUntilTerm) {
  json ds = Find(Manifest("daemonset-cni-installer.yaml"), "DaemonSet", "rdmashare-cni-installer");
  json c = Container(ds);
  std::map<std::string, std::string> env;
  for (const json& e : c["env"]) env[e["name"]] = e["value"];
  EXPECT_EQ(env["PLUGINS"], "rdmashare-macvlan rdmashare-ipam");
  EXPECT_EQ(env["TOOLS"], "rdmashare");
  json m = MountAt(c, env["DEST_DIR"]);
  EXPECT_EQ(Volume(ds, m.value("name", ""))["hostPath"].value("path", ""), "/opt/cni/bin");

  TempDir dir;
  ASSERT_OK(MakeDirs(dir.Sub("src")));
  ASSERT_OK(MakeDirs(dir.Sub("dest")));
  std::map<std::string, std::string> bins = {{"rdmashare-macvlan", RS_MACVLAN_BIN},
                                             {"rdmashare-ipam", RS_IPAM_BIN},
                                             {"rdmashare", RS_CLI_BIN}};
  for (const auto& [name, path] : bins) {
    ASSERT_EQ(symlink(path.c_str(), dir.Sub("src/" + name).c_str()), 0);
  }
  // An old version in place must be replaced, not appended to.
  WriteTestFile(dir.Sub("dest/rdmashare-ipam"), "old");
  env["SRC_DIR"] = dir.Sub("src");
  env["DEST_DIR"] = dir.Sub("dest");
  Subprocess::Options o;
  o.argv = Strings(c["command"]);
  o.env = env;
  o.work_dir = dir.path();
  Subprocess installer(o);
  ASSERT_TRUE(installer.Start());
  ASSERT_TRUE(WaitFor(
      [&] {
        return installer.Stdout().find("installed " + dir.Sub("dest/rdmashare") + "\n") !=
               std::string::npos;
      },
      std::chrono::seconds(30)))
      << installer.Stdout() << installer.Stderr();
  for (const auto& [name, path] : bins) {
    std::string dest = dir.Sub("dest/" + name);
    EXPECT_EQ(Slurp(dest), Slurp(path)) << name;
    struct stat st {};
    ASSERT_EQ(stat(dest.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755u) << name;
  }
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> left, ListDir(dir.Sub("dest")));
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"rdmashare", "rdmashare-ipam", "rdmashare-macvlan"}));
  EXPECT_TRUE(installer.running()) << "a DaemonSet container must keep running";
  installer.Signal(SIGTERM);
  EXPECT_EQ(installer.Wait(std::chrono::seconds(10)), 0);
}

TEST(CniInstaller, RefusesABinaryThatDoesNotRun) {
  json c = Container(
      Find(Manifest("daemonset-cni-installer.yaml"), "DaemonSet", "rdmashare-cni-installer"));
  TempDir dir;
  ASSERT_OK(MakeDirs(dir.Sub("dest")));
  WriteTestFile(dir.Sub("src/rdmashare-macvlan"), "#!/bin/sh\nexit 1\n");
  chmod(dir.Sub("src/rdmashare-macvlan").c_str(), 0755);
  RunResult r = Exec(Strings(c["command"]), {{"SRC_DIR", dir.Sub("src")},
                                             {"DEST_DIR", dir.Sub("dest")},
                                             {"PLUGINS", "rdmashare-macvlan"}});
  EXPECT_NE(r.exit_code, 0);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> left, ListDir(dir.Sub("dest")));
  EXPECT_TRUE(left.empty());
}

// ------------------------------------------------------------------------- rail networks

class RailNetworkTest : public ::testing::TestWithParam<int> {};

TEST_P(RailNetworkTest, SelectsItsRailResourceAndParsesAsMacvlanAndIpamConfig) {
  const int k = GetParam();
  json nad = RailNetwork(k);
  ASSERT_FALSE(nad.is_null());
  EXPECT_EQ(nad["apiVersion"], "k8s.cni.cncf.io/v1");
  EXPECT_EQ(nad["metadata"]["annotations"].value("k8s.v1.cni.cncf.io/resourceName", ""),
            fmt::format("spidernet.io/shared_cx5_gpu{}", k));
  // The resource this network names is one the ConfigMap defines, for this rail's NIC.
  json cfg = json::parse(ConfigJson(), nullptr, false);
  ASSERT_TRUE(cfg.is_object());
  const json& entry = cfg["configList"][k - 1];
  EXPECT_EQ(entry["resourceName"], fmt::format("shared_cx5_gpu{}", k));
  EXPECT_EQ(entry["selectors"]["ifNames"], json::array({fmt::format("enp{}s0f0np0", 10 + k)}));

  std::string text = nad["spec"].value("config", "");
  ASSERT_OK_AND_ASSIGN(cni::NetConf conf, cni::ParseNetConf(text));
  EXPECT_EQ(conf.cni_version, "1.0.0");
  EXPECT_EQ(conf.type, "rdmashare-macvlan");
  EXPECT_EQ(conf.name, nad["metadata"]["name"]);
  ASSERT_OK_AND_ASSIGN(cni::macvlan::MacvlanConfig mc,
                       cni::macvlan::ParseMacvlanConfig(conf, {}, "/sys"));
  EXPECT_EQ(mc.master, RailHarness::RailNic(k));
  EXPECT_EQ(mc.route_table, std::optional<uint32_t>(100 + k - 1));
  EXPECT_EQ(mc.ipam_type, "rdmashare-ipam");
  ASSERT_OK_AND_ASSIGN(cni::ipam::IpamConfig ic, cni::ipam::ParseIpamConfig(conf.ipam));
  ASSERT_EQ(ic.pools.size(), 1u);
  EXPECT_EQ(ic.pools[0].ToString(),
            fmt::format("172.16.{0}.0/24 172.16.{0}.1-172.16.{0}.200", 10 + k));
  ASSERT_EQ(ic.pools[0].ranges.size(), 1u);
  EXPECT_EQ(ic.pools[0].ranges[0].gateway.ToString(), RailHarness::RailGateway(k));
}

INSTANTIATE_TEST_SUITE_P(Rails, RailNetworkTest, ::testing::Range(1, kRails + 1),
                         [](const auto& info) { return "Rail" + std::to_string(info.param); });

std::map<std::string, std::string> CniEnv(const std::string& cmd, const std::string& id,
                                          const std::string& netns, const std::string& ifname) {
  return {{"CNI_COMMAND", cmd},
          {"CNI_CONTAINERID", id},
          {"CNI_NETNS", netns},
          {"CNI_IFNAME", ifname},
          {"CNI_PATH", std::string(RS_IPAM_DIR) + ":/usr/lib/cni"}};
}

// What Multus does for the test workload: ADD all 8 networks as net1..net8, then DEL them.
TEST(RailNetworks, AllEightAttachToAPodOnTheWalkthroughRailsAndDetach) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (netns, macvlan)";
  RailHarness h(kRails);
  std::string pod = h.AddPod();
  TempDir data;
  const std::string id = fmt::format("manifests{}", getpid());
  std::vector<json> confs;
  for (int k = 1; k <= kRails; ++k) {
    json conf = json::parse(RailNetwork(k)["spec"].value("config", ""), nullptr, false);
    ASSERT_TRUE(conf.is_object());
    conf["ipam"]["dataDir"] = data.path();  // keep the test off the host's lease store
    confs.push_back(conf);
    const std::string ifname = fmt::format("net{}", k);
    PluginRun add = h.Run(RS_MACVLAN_BIN, CniEnv("ADD", id, pod, ifname), conf.dump());
    ASSERT_EQ(add.exit_code, 0) << ifname << ": " << add.stdout_data;
    EXPECT_EQ(add.json["ips"][0]["address"], fmt::format("172.16.{}.1/24", 10 + k));
    EXPECT_EQ(add.json["ips"][0]["gateway"], RailHarness::RailGateway(k));
    EXPECT_THAT(
        RailHarness::Ip(RailHarness::NsName(pod), fmt::format("route show table {}", 99 + k)),
        HasSubstr(fmt::format("default via {} dev {}", RailHarness::RailGateway(k), ifname)));
  }
  for (int k = 1; k <= kRails; ++k) {
    const std::string ifname = fmt::format("net{}", k);
    PluginRun del = h.Run(RS_MACVLAN_BIN, CniEnv("DEL", id, pod, ifname), confs[k - 1].dump());
    EXPECT_EQ(del.exit_code, 0) << ifname << ": " << del.stdout_data;
  }
  EXPECT_THAT(RailHarness::Ip(RailHarness::NsName(pod), "-o link show"), Not(HasSubstr("net1")));
}

// -------------------------------------------------------------------------- test workload

TEST(TestWorkload, RequestsEveryRailNetworkAndResourceWithIpcLock) {
  json ds = Find(Manifest("test-workload.yaml"), "DaemonSet", "rdma-tools");
  std::string nets =
      ds["spec"]["template"]["metadata"]["annotations"].value("k8s.v1.cni.cncf.io/networks", "");
  std::vector<std::string> want_nets;
  for (int k = 1; k <= kRails; ++k) {
    want_nets.push_back(
        fmt::format("rdmashare/{}", RailNetwork(k)["metadata"]["name"].get<std::string>()));
  }
  std::vector<std::string> got_nets;
  for (absl::string_view n : absl::StrSplit(nets, ',', absl::SkipWhitespace())) {
    got_nets.emplace_back(absl::StripAsciiWhitespace(n));
  }
  EXPECT_EQ(got_nets, want_nets);
  json c = Container(ds);
  for (int k = 1; k <= kRails; ++k) {
    EXPECT_EQ(c["resources"]["limits"].value(fmt::format("spidernet.io/shared_cx5_gpu{}", k), 0), 1)
        << k;
  }
  EXPECT_EQ(c["securityContext"]["capabilities"]["add"], json::array({"IPC_LOCK"}));
}

TEST(TestWorkload, ImageIsPinnedAndEveryResourceItUsesMountsTheCli) {
  json ds = Find(Manifest("test-workload.yaml"), "DaemonSet", "rdma-tools");
  std::string image = Container(ds).value("image", "");
  ASSERT_NE(image.find(':'), std::string::npos) << image;
  EXPECT_NE(image.substr(image.rfind(':')), ":latest") << image;
  // `rdmashare gid` inside the pod needs the CLI mounted: "mountCli" on each rail resource.
  json config = json::parse(ConfigJson(), nullptr, false);
  ASSERT_TRUE(config.is_object());
  std::set<std::string> mounted;
  for (const json& e : config["configList"]) {
    if (e.value("mountCli", false)) {
      mounted.insert(e.value("resourcePrefix", "") + "/" + e.value("resourceName", ""));
    }
  }
  json container = Container(ds);
  for (const auto& [name, value] : container["resources"]["limits"].items()) {
    if (name.find('/') == std::string::npos) continue;
    EXPECT_TRUE(mounted.count(name)) << name << " has no \"mountCli\": true in the ConfigMap";
  }
}

// ------------------------------------------------------------------------------ etcd

TEST(EtcdOverlay, EveryFlagIsOneEtcdKnows) {
  std::string etcd = Which("etcd");
  ASSERT_FALSE(etcd.empty()) << "etcd missing (Debian package etcd-server, tools/setup.sh)";
  RunResult help = Exec({etcd, "--help"});
  json sts = Find(Manifest("etcd/in-cluster/etcd.yaml"), "StatefulSet", "rdmashare-etcd");
  std::vector<std::string> args = Strings(Container(sts)["args"]);
  ASSERT_FALSE(args.empty());
  for (const std::string& a : args) {
    std::string flag = a.substr(0, a.find('='));
    EXPECT_THAT(help.out + help.err, HasSubstr(flag + " ")) << a;
  }
  EXPECT_THAT(help.out + help.err, Not(HasSubstr("--no-such-flag ")));
}

TEST(EtcdOverlay, OneMemberClusterNamesTheHeadlessServiceOfThePod) {
  json docs = Manifest("etcd/in-cluster/etcd.yaml");
  json sts = Find(docs, "StatefulSet", "rdmashare-etcd");
  json peer = Find(docs, "Service", sts["spec"].value("serviceName", ""));
  EXPECT_EQ(peer["spec"].value("clusterIP", ""), "None");
  std::string initial;
  for (const std::string& a : Strings(Container(sts)["args"])) {
    if (a.rfind("--initial-cluster=", 0) == 0) initial = a.substr(18);
  }
  EXPECT_EQ(initial, fmt::format("rdmashare-etcd-0=https://rdmashare-etcd-0.{}.rdmashare.svc:2380",
                                 peer["metadata"]["name"].get<std::string>()));
  EXPECT_EQ(sts["spec"].value("replicas", 0), 1);
}

TEST(EtcdOverlay, ServesTlsWithClientCertsFromTheServerSecret) {
  json sts = Find(Manifest("etcd/in-cluster/etcd.yaml"), "StatefulSet", "rdmashare-etcd");
  json c = Container(sts);
  std::map<std::string, std::string> flags;
  for (const std::string& a : Strings(c["args"])) {
    size_t eq = a.find('=');
    flags[a.substr(0, eq)] = eq == std::string::npos ? "" : a.substr(eq + 1);
  }
  for (const char* url : {"--listen-client-urls", "--advertise-client-urls", "--listen-peer-urls",
                          "--initial-advertise-peer-urls"}) {
    EXPECT_EQ(flags[url].rfind("https://", 0), 0u) << url << "=" << flags[url];
  }
  EXPECT_EQ(flags["--client-cert-auth"], "true");
  EXPECT_EQ(flags["--peer-client-cert-auth"], "true");
  // The certificate files are the server Secret's keys where it is mounted.
  json mount = MountAt(c, "/etc/etcd/tls");
  EXPECT_TRUE(mount.value("readOnly", false));
  EXPECT_EQ(Volume(sts, mount.value("name", ""))["secret"].value("secretName", ""),
            "rdmashare-etcd-server");
  for (const char* f : {"--cert-file", "--peer-cert-file"})
    EXPECT_EQ(flags[f], "/etc/etcd/tls/tls.crt");
  for (const char* f : {"--key-file", "--peer-key-file"})
    EXPECT_EQ(flags[f], "/etc/etcd/tls/tls.key");
  for (const char* f : {"--trusted-ca-file", "--peer-trusted-ca-file"}) {
    EXPECT_EQ(flags[f], "/etc/etcd/tls/ca.crt");
  }
  // Probes on the plain-http metrics listener (kubelet presents no client certificate).
  EXPECT_EQ(flags["--listen-metrics-urls"], "http://0.0.0.0:2381");
  EXPECT_EQ(c["readinessProbe"]["httpGet"].value("port", json()), "metrics");
}

// -------------------------------------------------------------------------- Containerfile

struct Copy {
  std::string from;  // stage, "" for the build context
  std::string src;
  std::string dst;
};

std::vector<Copy> Copies(const std::string& containerfile) {
  std::vector<Copy> out;
  for (absl::string_view line : absl::StrSplit(containerfile, '\n')) {
    std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (w.empty() || w[0] != "COPY") continue;
    Copy c;
    size_t i = 1;
    for (; i < w.size() && w[i].rfind("--", 0) == 0; ++i) {
      if (w[i].rfind("--from=", 0) == 0) c.from = w[i].substr(7);
    }
    EXPECT_EQ(w.size() - i, 2u) << "one source per COPY: " << line;
    if (w.size() - i != 2) continue;
    c.src = w[i];
    c.dst = w[i + 1];
    out.push_back(c);
  }
  return out;
}

TEST(Containerfile, CopiesExactlyTheShippedBinariesFromTheReleaseBuildTree) {
  // Target outputs relative to the build root (the build stage's tree has this layout).
  const std::string bin = RS_BINARY_DIR;
  std::map<std::string, std::string> shipped;
  for (const std::string& path : {std::string(RS_DP_BIN), std::string(RS_MACVLAN_BIN),
                                  std::string(RS_IPAM_BIN), std::string(RS_CLI_BIN)}) {
    ASSERT_EQ(path.rfind(bin + "/", 0), 0u) << path;
    shipped[path.substr(bin.size() + 1)] = path;
  }
  std::set<std::string> copied;
  for (const Copy& c : Copies(Slurp(kSrc + "/Containerfile"))) {
    if (c.from.empty()) {
      EXPECT_TRUE(PathExists(kSrc + "/" + c.src)) << "build context lacks " << c.src;
      continue;
    }
    EXPECT_EQ(c.from, "build");
    const std::string prefix = "/src/build-release/";
    ASSERT_EQ(c.src.rfind(prefix, 0), 0u) << c.src;
    std::string rel = c.src.substr(prefix.size());
    EXPECT_TRUE(shipped.count(rel)) << c.src << " is not a binary the build produces";
    EXPECT_TRUE(PathExists(bin + "/" + rel)) << rel << " missing from " << bin;
    EXPECT_EQ(BaseName(c.dst), BaseName(rel));
    copied.insert(rel);
  }
  for (const auto& [rel, path] : shipped) EXPECT_TRUE(copied.count(rel)) << rel << " not copied";
}

TEST(Containerfile, ImagePathsAreTheOnesTheManifestsRun) {
  std::map<std::string, std::string> dst;  // basename -> image path
  for (const Copy& c : Copies(Slurp(kSrc + "/Containerfile"))) {
    if (!c.from.empty()) dst[BaseName(c.dst)] = c.dst;
  }
  EXPECT_EQ(Strings(Container(DpDaemonSet())["command"])[0], dst["rdmashare-dp"]);
  json inst = Container(
      Find(Manifest("daemonset-cni-installer.yaml"), "DaemonSet", "rdmashare-cni-installer"));
  std::string src_dir;
  for (const json& e : inst["env"]) {
    if (e["name"] == "SRC_DIR") src_dir = e["value"];
  }
  EXPECT_EQ(dst["rdmashare-macvlan"], src_dir + "/rdmashare-macvlan");
  EXPECT_EQ(dst["rdmashare-ipam"], src_dir + "/rdmashare-ipam");
  EXPECT_EQ(dst["rdmashare"], src_dir + "/rdmashare");
}

// The Debian package owning shared library `soname` on this machine ("" when none).
std::string PackageOf(const std::string& soname) {
  RunResult ld = Exec({"/sbin/ldconfig", "-p"});
  std::string path;
  for (absl::string_view line : absl::StrSplit(ld.out, '\n')) {
    std::vector<std::string> w = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (!w.empty() && w[0] == soname) {
      path = w.back();
      break;
    }
  }
  if (path.empty()) return "";
  std::vector<std::string> candidates = {path, "/usr" + path};
  if (absl::StatusOr<std::string> real = RealPath(path); real.ok()) candidates.push_back(*real);
  for (const std::string& p : candidates) {
    RunResult r = Exec({Which("dpkg"), "-S", p});
    if (r.exit_code == 0) return r.out.substr(0, r.out.find(':'));
  }
  return "";
}

TEST(Containerfile, RuntimeStageInstallsThePackagesOfEveryLibraryRdmashareDpNeeds) {
  std::string cf = Slurp(kSrc + "/Containerfile");
  size_t runtime = cf.rfind("\nFROM ");
  ASSERT_NE(runtime, std::string::npos);
  std::string stage = cf.substr(runtime);
  RunResult elf = Exec({Which("readelf"), "-d", RS_DP_BIN});
  ASSERT_EQ(elf.exit_code, 0) << "readelf (binutils): " << elf.err;
  int needed = 0;
  for (absl::string_view line : absl::StrSplit(elf.out, '\n')) {
    size_t open = line.find("(NEEDED)");
    if (open == absl::string_view::npos) continue;
    size_t a = line.find('['), b = line.find(']');
    std::string soname(line.substr(a + 1, b - a - 1));
    ++needed;
    std::string pkg = PackageOf(soname);
    ASSERT_FALSE(pkg.empty()) << soname << " is not from a Debian package here";
    if (pkg == "libc6") continue;  // essential in every Debian image
    // Sanitizer runtimes appear only in the instrumented test builds (RDMASHARE_SANITIZE).
    if (absl::StartsWith(pkg, "libasan") || absl::StartsWith(pkg, "libubsan")) continue;
    EXPECT_THAT(stage, HasSubstr(" " + pkg + " ")) << soname << " needs package " << pkg;
  }
  EXPECT_GT(needed, 0);
}

}  // namespace
}  // namespace rdmashare
