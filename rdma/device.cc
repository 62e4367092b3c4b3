#include "rdma/device.h"

namespace rdmashare::rdma {

const char* LinkLayerName(LinkLayer layer) {
  switch (layer) {
    case LinkLayer::kEthernet:
      return "Ethernet";
    case LinkLayer::kInfiniBand:
      return "InfiniBand";
    case LinkLayer::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace rdmashare::rdma
