// LocalStore: IpamStore on the local disk, in host-local's layout, so leases written by the
// reference host-local plugin are honoured and vice versa:
//   <data_dir>/<network>/<ip>                 "containerID\r\nifname" (host-local record)
//   <data_dir>/<network>/last_reserved_ip.<N> last address handed out from pool N
//   <data_dir>/<network>/lock                 flock(2) target, exclusive per network
//   <data_dir>/<network>/.meta/<ip>           our sidecar JSON (netns, pod namespace/name/uid)
// Quarantined addresses are records "_quarantine\r\n<unix-expiry>".
// Directories are created 0700, files 0600. Records are written atomically and durably: temp
// file, fdatasync (skipped with ipam "fsync": false), link(2) (so an existing record is never
// overwritten). The sidecar and last_reserved_ip are hints, replaced atomically (temp + rename)
// without fsync; the directory is not fsync'ed (a lease lost to a power cut belonged to a pod that
// did not survive it).
// Hostile entries: the network directory, `.meta`, the lock, records, sidecars and
// last_reserved_ip are opened relative to the network directory's descriptor and never followed
// when they are symlinks; a lock or hint that is not a regular file (symlink, FIFO, device) is
// refused with code 5, such a record reads as unreadable (Reservation::error), and no open can
// block on a FIFO. Temp files are ".tmp-<name>-<16 random hex digits>", created exclusively.
//
// Thread-safe and process-safe when callers hold Lock() as IpamStore requires.
#pragma once

#include <string>

#include "cni/ipam/store.h"
#include "common/unique_fd.h"

namespace rdmashare::cni::ipam {

class LocalStore : public IpamStore {
 public:
  // `durable` = fdatasync each record before it becomes visible (ipam "fsync", default true).
  explicit LocalStore(std::string data_dir, bool durable = true);

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

  // List also removes temp files (".tmp-*", here and in the sidecar dir) at least this old: a
  // writer killed between writing and linking/renaming one leaves it behind.
  static constexpr std::chrono::seconds kStaleTempAge{60};

  // One record with its sidecar metadata (List does not read sidecars: they are not needed to
  // allocate and reading them would double the ADD path's file reads). Code 3 when absent.
  absl::StatusOr<Reservation> Get(const std::string& network, const std::string& ip);

 private:
  // NetworkDir(network) opened as a directory (created 0700 first when `create`); a symlink
  // there is refused (code 5), never followed out of the data directory. NotFound (plain
  // status) when absent and `create` is false.
  absl::StatusOr<UniqueFd> OpenNetworkDir(const std::string& network, bool create);

  std::string data_dir_;
  bool durable_;
};

// Parses the content of a host-local record file (`path` only for messages). Accepts
// "id\r\nifname", the legacy "id" form and quarantine records; anything else sets
// Reservation::error.
Reservation ParseRecord(const std::string& ip, const std::string& content, const std::string& path);

// The record text for `r` ("id\r\nifname", or "_quarantine\r\n<expiry>").
std::string EncodeRecord(const Reservation& r);

}  // namespace rdmashare::cni::ipam
