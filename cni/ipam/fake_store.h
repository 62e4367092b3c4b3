// FakeStore: in-memory IpamStore for unit tests, with hooks to inject failures.
//
// Thread-safe (absl::Mutex); Lock() is a real per-network exclusive lock with a bounded wait, so
// concurrency tests exercise the same protocol as LocalStore.
#pragma once

#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "cni/ipam/store.h"

namespace rdmashare::cni::ipam {

class FakeStore : public IpamStore {
 public:
  absl::StatusOr<std::unique_ptr<StoreLock>> Lock(const std::string& network,
                                                  std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::vector<Reservation>> List(const std::string& network) override;
  absl::StatusOr<bool> Reserve(const std::string& network, const Reservation& r) override;
  absl::Status Release(const std::string& network, const std::string& ip) override;
  absl::StatusOr<std::string> LastReserved(const std::string& network, int pool_index) override;
  absl::Status SetLastReserved(const std::string& network, int pool_index,
                               const std::string& ip) override;

  // Test hooks.
  // Puts a record directly (bypasses Reserve's existence check).
  void Put(const std::string& network, const Reservation& r);
  // Makes every later Reserve fail with `status` (OK clears it).
  void FailReserves(absl::Status status);
  // Number of Reserve calls so far.
  int reserve_calls() const;

 private:
  friend class FakeStoreLock;
  void Unlock(const std::string& network);

  mutable absl::Mutex mu_;
  std::map<std::string, std::map<std::string, Reservation>> records_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int>, std::string> last_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> locked_ ABSL_GUARDED_BY(mu_);
  absl::Status reserve_failure_ ABSL_GUARDED_BY(mu_);
  int reserve_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rdmashare::cni::ipam
