#include "cni/ipam/fake_store.h"

#include "cni/protocol/error.h"
#include "fmt/format.h"

namespace rdmashare::cni::ipam {

class FakeStoreLock : public StoreLock {
 public:
  FakeStoreLock(FakeStore* store, std::string network)
      : store_(store), network_(std::move(network)) {}
  ~FakeStoreLock() override { store_->Unlock(network_); }

 private:
  FakeStore* store_;
  std::string network_;
};

absl::StatusOr<std::unique_ptr<StoreLock>> FakeStore::Lock(const std::string& network,
                                                           std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  auto free = [this, &network]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return locked_.count(network) == 0; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&free),
                            absl::Milliseconds(static_cast<int64_t>(timeout.count())))) {
    return CniError(kTryAgainLater, fmt::format("fake store: network {} still locked after {} ms",
                                                network, timeout.count()));
  }
  locked_.insert(network);
  return std::unique_ptr<StoreLock>(new FakeStoreLock(this, network));
}

void FakeStore::Unlock(const std::string& network) {
  absl::MutexLock lock(&mu_);
  locked_.erase(network);
}

absl::StatusOr<std::vector<Reservation>> FakeStore::List(const std::string& network) {
  absl::MutexLock lock(&mu_);
  std::vector<Reservation> out;
  auto it = records_.find(network);
  if (it == records_.end()) return out;
  for (const auto& [ip, r] : it->second) out.push_back(r);
  return out;
}

absl::StatusOr<bool> FakeStore::Reserve(const std::string& network, const Reservation& r) {
  absl::MutexLock lock(&mu_);
  ++reserve_calls_;
  if (!reserve_failure_.ok()) return reserve_failure_;
  return records_[network].emplace(r.ip, r).second;
}

absl::Status FakeStore::Release(const std::string& network, const std::string& ip) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(network);
  if (it != records_.end()) it->second.erase(ip);
  return absl::OkStatus();
}

absl::StatusOr<std::string> FakeStore::LastReserved(const std::string& network, int pool_index) {
  absl::MutexLock lock(&mu_);
  auto it = last_.find({network, pool_index});
  return it == last_.end() ? std::string() : it->second;
}

absl::Status FakeStore::SetLastReserved(const std::string& network, int pool_index,
                                        const std::string& ip) {
  absl::MutexLock lock(&mu_);
  last_[{network, pool_index}] = ip;
  return absl::OkStatus();
}

void FakeStore::Put(const std::string& network, const Reservation& r) {
  absl::MutexLock lock(&mu_);
  records_[network][r.ip] = r;
}

void FakeStore::FailReserves(absl::Status status) {
  absl::MutexLock lock(&mu_);
  reserve_failure_ = std::move(status);
}

int FakeStore::reserve_calls() const {
  absl::MutexLock lock(&mu_);
  return reserve_calls_;
}

}  // namespace rdmashare::cni::ipam
