// CNI error codes and the mapping between absl::Status and the CNI error JSON.
//
// A CNI error is an absl::Status whose payload carries the CNI code (and optional details), so
// errors travel through ordinary Status plumbing and `main` encodes them once. Statuses without
// a payload get a code derived from their absl code (see CniCode). Stateless; thread-safe.
//
// Contract for other modules (cni/macvlan): constants and function signatures here are stable;
// additions are announced in this comment.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace rdmashare::cni {

// --- Codes defined by the CNI specification (SPEC.md "Error" section). ---
// Incompatible CNI version (the config's cniVersion is not one we implement).
inline constexpr int kIncompatibleVersion = 1;
// A field of the network configuration is not supported (e.g. an unknown mode value is 7; this
// is for fields we recognise but do not implement).
inline constexpr int kUnsupportedField = 2;
// The container is unknown or does not exist (e.g. the netns path is gone on ADD/CHECK).
inline constexpr int kUnknownContainer = 3;
// Invalid or missing CNI_* environment variable (command, container id, ifname, netns, args).
inline constexpr int kInvalidEnv = 4;
// I/O failure (store files, netlink, exec of a delegated plugin) or another system failure.
inline constexpr int kIoFailure = 5;
// Failed to decode content (stdin is not JSON / not an object, plugin output unreadable).
inline constexpr int kDecodeFailure = 6;
// Invalid network configuration (missing or ill-typed fields, bad subnet, mixed IPAM forms).
inline constexpr int kInvalidNetworkConfig = 7;
// Try again later: a transient condition (store lock timeout, address conflict, silent gateway).
inline constexpr int kTryAgainLater = 11;
// STATUS: the plugin cannot service ADD requests (master missing or down, store unusable,
// pool exhausted).
inline constexpr int kPluginNotAvailable = 50;
// STATUS: the plugin cannot service ADD requests and existing pods have limited connectivity.
inline constexpr int kPluginNotAvailableLimitedConn = 51;

// --- Aliases the issue asks for; they are the spec's 11 ("try again later"). ---
// Another host answers ARP for the address we were about to assign (RFC 5227 probe).
inline constexpr int kAddressConflict = kTryAgainLater;
// The gateway did not answer the ARP/ND probe in time.
inline constexpr int kGatewayUnreachable = kTryAgainLater;

// --- rdmashare's own codes (the spec reserves 100+ for plugins). ---
// No free address left in the pool / range set (message names network and range).
inline constexpr int kPoolExhausted = 100;
// The macvlan master interface does not exist on the host.
inline constexpr int kMasterMissing = 101;
// CNI_IFNAME already exists in the pod netns (a duplicate ADD must not disturb the live pod).
inline constexpr int kIfnameInUse = 102;
// A requested address (CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips) is held by another
// container.
inline constexpr int kAddressInUse = 103;
// The master cannot carry macvlan for RDMA: not Ethernet-type, or its RDMA port is InfiniBand
// (macvlan needs RoCE).
inline constexpr int kMasterNotRoce = 104;
// A record of the IPAM store is unreadable (corrupted lease file); the message names the file.
inline constexpr int kStoreCorrupt = 105;

// Builds an error status carrying CNI `code`, message `msg` and `details` (may be empty). The
// absl code is derived from the CNI code (7 -> InvalidArgument, 11 -> Unavailable, ...), so
// non-CNI callers still see a meaningful code.
absl::Status CniError(int code, const std::string& msg, const std::string& details = "");

// The CNI code of a status: the payload when present, else derived from the absl code:
//   OK -> 0; InvalidArgument, OutOfRange -> 7; NotFound -> 3; Unavailable, DeadlineExceeded,
//   Aborted -> 11; ResourceExhausted -> 100; Unimplemented -> 2; every other code
//   (FailedPrecondition, AlreadyExists, PermissionDenied, Internal, DataLoss, Unknown,
//   Cancelled) -> 5 (the spec has no finer generic code for "the system is in the wrong state").
// Never returns 999.
int CniCode(const absl::Status& status);

// The details text stored by CniError, or "" when there is none.
std::string CniDetails(const absl::Status& status);

// Returns `status` with the CNI code made explicit and `context + ": "` prepended to the
// message (keeps code and details). OK stays OK.
absl::Status AnnotateCni(const absl::Status& status, const std::string& context);

// Encodes a (non-OK) status as the spec's error object:
//   {"cniVersion":..., "code":N, "msg":"...", "details":"..."}
// `details` is always present (empty string when there are none). An OK status is encoded with
// code 5 and msg "internal error: OK status reported as error" (a bug guard, never 0).
std::string EncodeError(const absl::Status& status, const std::string& cni_version);

}  // namespace rdmashare::cni
