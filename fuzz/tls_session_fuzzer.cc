// libFuzzer target: the etcd client's TLS session cache files (tls_session_cache.h), read from
// the IPAM data directory. The bytes are (1) a cache file, parsed with ParseTlsSessionRecord and,
// when well-formed, checked with UsableTlsSession (which decodes the DER session with OpenSSL),
// and (2) a DER session on their own inside a well-formed record.
// Invariants: the format is canonical (a parsed record encodes back to the same bytes); every
// rejection names its cause; a session is only usable with its own binding and before its
// expiry; a usable session encodes again; nothing crashes.
#include <openssl/ssl.h>

#include <chrono>
#include <string>

#include "cni/ipam/tls_session_cache.h"
#include "fuzz/fuzz_check.h"

namespace {

using rdmashare::cni::ipam::EncodeTlsSessionRecord;
using rdmashare::cni::ipam::kMaxTlsSessionLifetime;
using rdmashare::cni::ipam::ParseTlsSessionRecord;
using rdmashare::cni::ipam::TlsSessionRecord;
using rdmashare::cni::ipam::UsableTlsSession;

const std::string kOtherBinding(64, 'a');

// Checks UsableTlsSession's rules on `r`; returns whether its session is usable.
bool CheckUsable(const TlsSessionRecord& r) {
  const int64_t now = r.expires - 1;
  auto usable = UsableTlsSession(r, r.binding, now, kMaxTlsSessionLifetime);
  if (usable.ok()) {
    RS_FUZZ_CHECK(*usable != nullptr);
    RS_FUZZ_CHECK(i2d_SSL_SESSION(usable->get(), nullptr) > 0);
  } else {
    RS_FUZZ_CHECK(rdmashare::fuzz::HasMessage(usable.status()));
  }
  if (r.binding != kOtherBinding) {
    RS_FUZZ_CHECK(!UsableTlsSession(r, kOtherBinding, now, kMaxTlsSessionLifetime).ok());
  }
  RS_FUZZ_CHECK(!UsableTlsSession(r, r.binding, r.expires, kMaxTlsSessionLifetime).ok());
  return usable.ok();
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  auto r = ParseTlsSessionRecord(rdmashare::fuzz::AsString(data, size));
  return r.ok() && r->expires > 0 &&
         UsableTlsSession(*r, r->binding, r->expires - 1, kMaxTlsSessionLifetime).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes = rdmashare::fuzz::AsString(data, size);
  auto r = ParseTlsSessionRecord(bytes);
  if (r.ok()) {
    RS_FUZZ_CHECK(EncodeTlsSessionRecord(*r) == bytes);
    RS_FUZZ_CHECK(r->binding.size() == 64 && !r->session.empty() && r->expires >= 0);
    if (r->expires > 0) CheckUsable(*r);
  } else {
    RS_FUZZ_CHECK(r.status().message().find("TLS session record") != std::string::npos);
  }
  if (!bytes.empty()) {
    TlsSessionRecord raw;
    raw.binding = std::string(64, '0');
    raw.expires = 1000;
    raw.session = bytes;
    CheckUsable(raw);
  }
  return 0;
}
