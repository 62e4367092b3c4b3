// LocalStore: IpamStore on the local disk, in host-local's layout, so leases written by the
// reference host-local plugin are honoured and vice versa:
//   <data_dir>/<network>/<ip>                 "containerID\r\nifname" (host-local record)
//   <data_dir>/<network>/last_reserved_ip.<N> last address handed out from pool N
//   <data_dir>/<network>/lock                 flock(2) target, exclusive per network
//   <data_dir>/<network>/.meta/<ip>           our sidecar JSON (netns, pod namespace/name/uid)
// Quarantined addresses are records "_quarantine\r\n<unix-expiry>".
// Directories are created 0700, files 0600; records are written atomically (temp file, fsync,
// link(2) so an existing record is never overwritten, fsync of the directory).
//
// Thread-safe and process-safe when callers hold Lock() as IpamStore requires.
#pragma once

#include <string>

#include "cni/ipam/store.h"

namespace rdmashare::cni::ipam {

class LocalStore : public IpamStore {
 public:
  explicit LocalStore(std::string data_dir);

  absl::StatusOr<std::unique_ptr<StoreLock>> Lock(const std::string& network,
                                                  std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::vector<Reservation>> List(const std::string& network) override;
  absl::StatusOr<bool> Reserve(const std::string& network, const Reservation& r) override;
  absl::Status Release(const std::string& network, const std::string& ip) override;
  absl::StatusOr<std::string> LastReserved(const std::string& network, int pool_index) override;
  absl::Status SetLastReserved(const std::string& network, int pool_index,
                               const std::string& ip) override;

  // <data_dir>/<network>.
  std::string NetworkDir(const std::string& network) const;

 private:
  absl::Status EnsureNetworkDir(const std::string& network);

  std::string data_dir_;
};

// Parses the content of a host-local record file (`path` only for messages). Accepts
// "id\r\nifname", the legacy "id" form and quarantine records; anything else sets
// Reservation::error.
Reservation ParseRecord(const std::string& ip, const std::string& content, const std::string& path);

// The record text for `r` ("id\r\nifname", or "_quarantine\r\n<expiry>").
std::string EncodeRecord(const Reservation& r);

}  // namespace rdmashare::cni::ipam
