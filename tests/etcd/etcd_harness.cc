#include "tests/etcd/etcd_harness.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>

#include "cni/ipam/etcd_client.h"
#include "common/testing/temp_dir.h"
#include "common/testing/wait.h"
#include "fmt/format.h"

namespace rdmashare::testing {

TestPki::TestPki() {
  auto sub = [&](const char* f) { return dir_.Sub(f); };
  WriteTestFile(sub("server.ext"),
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:etcd.rdmashare.test\n");
  WriteTestFile(sub("client.ext"),
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature\n"
                "extendedKeyUsage=clientAuth\n");
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  auto req = [&](const std::string& name, const std::string& cn) {
    std::vector<std::string> a = {"req"};
    a.insert(a.end(), ec.begin(), ec.end());
    a.insert(a.end(), {"-keyout", sub((name + ".key").c_str()), "-out",
                       sub((name + ".csr").c_str()), "-subj", "/CN=" + cn});
    return Run(a);
  };
  auto sign = [&](const std::string& name) {
    return Run({"x509", "-req", "-in", sub((name + ".csr").c_str()), "-CA", sub("ca.crt"), "-CAkey",
                sub("ca.key"), "-CAcreateserial", "-days", "2", "-out",
                sub((name + ".crt").c_str()), "-extfile", sub((name + ".ext").c_str())});
  };
  auto ca = [&](const std::string& name, const std::string& cn) {
    std::vector<std::string> a = {"req", "-x509"};
    a.insert(a.end(), ec.begin(), ec.end());
    a.insert(a.end(), {"-keyout", sub((name + ".key").c_str()), "-out",
                       sub((name + ".crt").c_str()), "-days", "2", "-subj", "/CN=" + cn});
    return Run(a);
  };
  ok_ = ca("ca", "rdmashare test CA") && ca("other-ca", "unrelated CA") && req("server", "etcd") &&
        sign("server") && req("client", "rdmashare-ipam") && sign("client") &&
        req("client2", "rdmashare-ipam") &&
        Run({"x509", "-req", "-in", sub("client2.csr"), "-CA", sub("ca.crt"), "-CAkey",
             sub("ca.key"), "-CAcreateserial", "-days", "2", "-out", sub("client2.crt"), "-extfile",
             sub("client.ext")});
}

bool TestPki::Run(const std::vector<std::string>& args) {
  Subprocess::Options o;
  o.argv = {"/usr/bin/openssl"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.work_dir = dir_.path();
  RunResult r = RunProgram(o);
  if (r.exit_code != 0) {
    error_ = fmt::format("openssl {} failed: {}", args.front(), r.err);
    return false;
  }
  return true;
}

EtcdCluster::EtcdCluster(int members, EtcdTlsConfig tls) : tls_(std::move(tls)) {
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = fmt::format("m{}", i);
    m.client_port = FreeLoopbackPort();
    m.peer_port = FreeLoopbackPort();
    members_.push_back(std::move(m));
  }
  ok_ = true;
  for (int i = 0; i < members; ++i) ok_ = Start(i, true) && ok_;
  for (int i = 0; ok_ && i < members; ++i) {
    ok_ = WaitFor([&] { return Serving(i, 500); }, std::chrono::seconds(30));
  }
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
}

std::vector<std::string> EtcdCluster::Endpoints() const {
  std::vector<std::string> out;
  for (const Member& m : members_) {
    out.push_back(
        fmt::format("{}127.0.0.1:{}", tls_.cert.empty() ? "" : "https://", m.client_port));
  }
  return out;
}

bool EtcdCluster::Start(int i, bool new_cluster) {
  Member& m = members_[i];
  std::string initial;
  for (const Member& o : members_) {
    if (!initial.empty()) initial += ",";
    initial += fmt::format("{}=http://127.0.0.1:{}", o.name, o.peer_port);
  }
  std::string scheme = tls_.cert.empty() ? "http" : "https";
  Subprocess::Options o;
  o.argv = {kEtcdBinary,
            "--name",
            m.name,
            "--data-dir",
            dir_.Sub(m.name),
            "--listen-client-urls",
            fmt::format("{}://127.0.0.1:{}", scheme, m.client_port),
            "--advertise-client-urls",
            fmt::format("{}://127.0.0.1:{}", scheme, m.client_port),
            "--listen-peer-urls",
            fmt::format("http://127.0.0.1:{}", m.peer_port),
            "--initial-advertise-peer-urls",
            fmt::format("http://127.0.0.1:{}", m.peer_port),
            "--initial-cluster",
            initial,
            "--initial-cluster-state",
            new_cluster ? "new" : "existing",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
            "--log-level",
            "error"};
  if (!tls_.cert.empty()) {
    o.argv.insert(o.argv.end(), {"--cert-file", tls_.cert, "--key-file", tls_.key});
    // etcd asks every client for a certificate once it has a trusted CA: only for mutual TLS.
    if (tls_.client_cert_auth) {
      o.argv.insert(o.argv.end(), {"--trusted-ca-file", tls_.ca, "--client-cert-auth"});
    }
  }
  o.work_dir = dir_.path();
  m.proc = std::make_unique<Subprocess>(o);
  return m.proc->Start();
}

void EtcdCluster::Kill(int i) {
  Member& m = members_[i];
  if (m.proc && m.proc->running()) {
    m.proc->Signal(SIGKILL);
    m.proc->Wait(std::chrono::seconds(10));
  }
  m.proc.reset();
}

bool EtcdCluster::Restart(int i) {
  Kill(i);
  if (!Start(i, false)) return false;
  return WaitFor([&] { return Serving(i, 500); }, std::chrono::seconds(30));
}

bool EtcdCluster::RestartAll() {
  bool ok = true;
  for (int i = 0; i < size(); ++i) {
    Kill(i);
    ok = Start(i, false) && ok;
  }
  for (int i = 0; ok && i < size(); ++i) {
    ok = WaitFor([&] { return Serving(i, 500); }, std::chrono::seconds(30));
  }
  return ok;
}

bool EtcdCluster::Serving(int i, int timeout_ms) const {
  cni::ipam::EtcdOptions o;
  o.endpoints = {Endpoints()[i]};
  if (!tls_.cert.empty()) {
    o.tls.ca = tls_.ca;
    o.tls.cert = tls_.probe_cert;
    o.tls.key = tls_.probe_key;
  }
  o.dial_timeout = std::chrono::milliseconds(timeout_ms);
  o.request_timeout = std::chrono::milliseconds(timeout_ms);
  auto client = cni::ipam::EtcdClient::Create(o);
  return client.ok() && (*client)->Get("/health-probe").ok();
}

}  // namespace rdmashare::testing
