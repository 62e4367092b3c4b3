// Loopback HTTP helpers for tests that probe a server the way kubelet's httpGet probe does:
// a free TCP port on 127.0.0.1, and a one-shot "GET <path>" with "Connection: close".
// Stateless; thread-safe.
#pragma once

#include <string>

namespace rdmashare::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound, then released); 0 on failure.
int FreeLoopbackPort();

// GET http://127.0.0.1:<port><path>: the whole response (status line, headers, body), or ""
// when nothing accepts the connection.
std::string LoopbackHttpGet(int port, const std::string& path);

// The status code of an HTTP/1.1 response, or 0 when `response` is not one.
int HttpStatusOf(const std::string& response);

}  // namespace rdmashare::testing
