// GidRoomCheck: warns when the pods the resources sharing an RDMA port could place need more
// RoCE GID table entries than the port has free (each pod's macvlan address takes GID entries;
// a pod beyond the room fails to get one). Every resource selecting an HCA can place rdmaHcaMax
// pods on each of its ports. Each distinct situation is warned about once, and again only after
// it went away and came back.
//
// Ownership: holds the messages of the situations current at the last check. Reads the GID
// tables under `sys_root` at each check. Threading: one thread (the daemon's event loop).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "deviceplugin/resource_pool.h"

namespace rdmashare::deviceplugin {

class GidRoomCheck {
 public:
  explicit GidRoomCheck(std::string sys_root) : sys_root_(std::move(sys_root)) {}

  // Checks every port of every device in the pools' current snapshots.
  void Check(const std::vector<const ResourcePool*>& pools);

 private:
  const std::string sys_root_;
  std::set<std::string> warned_;
};

}  // namespace rdmashare::deviceplugin
