// libFuzzer target: what the etcd IPAM store reads back from etcd. The bytes are (1) a range
// answer body of the JSON gateway, parsed with ParseEtcdRangeResponse and each key-value decoded
// as a reservation, and (2) a record value on their own, decoded under a well-formed key.
// Invariants: a decoded record is either valid (RecordProblem agrees, it re-encodes to a value
// that decodes to the same reservation, `foreign` says whether node/network differ from ours) or
// carries an error naming its key; nothing throws.
#include <cstdlib>
#include <string>

#include "cni/ipam/etcd_kv_json.h"
#include "cni/ipam/etcd_store.h"
#include "fuzz/fuzz_check.h"

namespace {

using rdmashare::cni::ipam::DecodeEtcdRecord;
using rdmashare::cni::ipam::EncodeEtcdRecord;
using rdmashare::cni::ipam::KeyValue;
using rdmashare::cni::ipam::RecordProblem;
using rdmashare::cni::ipam::Reservation;

constexpr char kIpsPrefix[] = "/rdmashare/ipam/pools/p/ips/";
constexpr char kNode[] = "worker1";
constexpr char kNetwork[] = "gpu1-net11";

// Decodes `kv` and checks the invariants; returns whether it is a valid reservation.
bool CheckRecord(const KeyValue& kv) {
  std::string ip = kv.key.size() > sizeof(kIpsPrefix) - 1 && kv.key.rfind(kIpsPrefix, 0) == 0
                       ? kv.key.substr(sizeof(kIpsPrefix) - 1)
                       : kv.key;
  Reservation r = DecodeEtcdRecord(kv, ip, kNode, kNetwork);
  if (!r.error.empty()) {
    RS_FUZZ_CHECK(r.error.find(kv.key) != std::string::npos);
    return false;
  }
  RS_FUZZ_CHECK(RecordProblem(kv.value).empty());
  RS_FUZZ_CHECK(!r.container_id.empty() && !r.node.empty());
  RS_FUZZ_CHECK(r.foreign == (r.node != kNode || r.owner_network != kNetwork));
  KeyValue again = kv;
  again.value = EncodeEtcdRecord(r);
  Reservation back = DecodeEtcdRecord(again, ip, kNode, kNetwork);
  RS_FUZZ_CHECK(back.error.empty());
  RS_FUZZ_CHECK(back.node == r.node && back.owner_network == r.owner_network &&
                back.container_id == r.container_id && back.ifname == r.ifname &&
                back.netns == r.netns && back.pod_namespace == r.pod_namespace &&
                back.pod_name == r.pod_name && back.pod_uid == r.pod_uid &&
                back.foreign == r.foreign);
  // A quarantine deadline survives only on quarantine records (EncodeEtcdRecord's rule).
  if (r.quarantined()) RS_FUZZ_CHECK(back.quarantine_until == r.quarantine_until);
  return true;
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  auto kvs = rdmashare::cni::ipam::ParseEtcdRangeResponse(rdmashare::fuzz::AsString(data, size));
  if (!kvs.ok() || kvs->empty()) return false;
  for (const KeyValue& kv : *kvs) {
    std::string ip =
        kv.key.rfind(kIpsPrefix, 0) == 0 ? kv.key.substr(sizeof(kIpsPrefix) - 1) : kv.key;
    if (!DecodeEtcdRecord(kv, ip, kNode, kNetwork).error.empty()) return false;
  }
  return true;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes = rdmashare::fuzz::AsString(data, size);
  auto kvs = rdmashare::cni::ipam::ParseEtcdRangeResponse(bytes);
  if (kvs.ok()) {
    for (const KeyValue& kv : *kvs) CheckRecord(kv);
  } else {
    RS_FUZZ_CHECK(kvs.status().message().find("etcd") != std::string::npos);
  }
  KeyValue raw;
  raw.key = std::string(kIpsPrefix) + "10.0.0.5";
  raw.value = bytes;
  CheckRecord(raw);
  return 0;
}
