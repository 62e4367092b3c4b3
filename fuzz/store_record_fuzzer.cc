// libFuzzer target: IPAM store records. The local store's record files (host-local format,
// "containerID\r\nifname", legacy "containerID", "_quarantine\r\n<expiry>") through ParseRecord,
// and through LocalStore::List/Get on a real directory holding the bytes as a record next to a
// valid one. Invariants: a record is either valid (container id and ifname pass the CNI rules,
// it re-encodes to a record that parses to itself) or carries an error naming the file; a corrupt
// record never hides the valid one beside it.
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "cni/ipam/local_store.h"
#include "cni/protocol/request.h"
#include "common/files.h"
#include "fuzz/fuzz_check.h"

namespace {

using rdmashare::cni::ipam::LocalStore;
using rdmashare::cni::ipam::ParseRecord;
using rdmashare::cni::ipam::Reservation;

const std::string& StoreDir() {
  static const rdmashare::fuzz::ScratchDir dir("store");
  return dir.path();
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  return ParseRecord("10.0.0.5", rdmashare::fuzz::AsString(data, size), "/fuzz/10.0.0.5")
      .error.empty();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare;
  std::string content = fuzz::AsString(data, size);
  Reservation r = ParseRecord("10.0.0.5", content, "/fuzz/10.0.0.5");
  if (!r.error.empty()) {
    RS_FUZZ_CHECK(r.error.find("/fuzz/10.0.0.5") != std::string::npos);
  } else if (r.quarantined()) {
    RS_FUZZ_CHECK(r.quarantine_until >= 0);
  } else {
    RS_FUZZ_CHECK(cni::ValidateContainerId(r.container_id).ok());
    RS_FUZZ_CHECK(r.ifname.empty() || cni::ValidateIfName(r.ifname).ok());
    Reservation back = ParseRecord("10.0.0.5", cni::ipam::EncodeRecord(r), "/fuzz/10.0.0.5");
    RS_FUZZ_CHECK(back.error.empty() && back.container_id == r.container_id &&
                  back.ifname == r.ifname);
  }
  // The same bytes as a file in a real store directory, next to a valid record.
  LocalStore store(StoreDir(), /*durable=*/false);
  std::string net_dir = store.NetworkDir("fuzznet");
  RS_FUZZ_CHECK(MakeDirs(net_dir, 0700).ok());
  RS_FUZZ_CHECK(rdmashare::fuzz::WriteRaw(JoinPath(net_dir, "10.0.0.5"), content));
  RS_FUZZ_CHECK(rdmashare::fuzz::WriteRaw(JoinPath(net_dir, "10.0.0.6"), "good\r\nnet1"));
  auto all = store.List("fuzznet");
  RS_FUZZ_CHECK(all.ok() && all->size() == 2);
  for (const Reservation& got : *all) {
    if (got.ip == "10.0.0.6") {
      RS_FUZZ_CHECK(got.error.empty() && got.container_id == "good" && got.ifname == "net1");
    } else {
      RS_FUZZ_CHECK(got.ip == "10.0.0.5");
      // Records over 4 KiB are refused as unreadable by the store (never trusted).
      if (content.size() <= 4096) RS_FUZZ_CHECK(got.error.empty() == r.error.empty());
      if (content.size() > 4096) RS_FUZZ_CHECK(!got.error.empty());
    }
  }
  auto one = store.Get("fuzznet", "10.0.0.5");
  RS_FUZZ_CHECK(one.ok() || content.size() > 4096);
  if (content.size() <= 4096) RS_FUZZ_CHECK(one->error.empty() == r.error.empty());
  return 0;
}
