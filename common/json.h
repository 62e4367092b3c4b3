// Bounded parsing of JSON from outside the process (CNI stdin, delegated plugin output, etcd
// values, state and config files): a size cap, a nesting-depth cap and the parser's own message
// on malformed input, without exceptions.
//
// The depth is checked by a SAX pass before any value is built: nlohmann::json copies values
// recursively, so a document nested a few hundred thousand levels deep (about 1 MB of '[')
// would otherwise crash whoever copies it (SIGSEGV, stack exhaustion). Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace rdmashare {

struct JsonLimits {
  // Deepest nesting of objects/arrays accepted (the top-level container is depth 1).
  size_t max_depth = 64;
  // Largest document accepted, in bytes.
  size_t max_bytes = 4 << 20;
};

// Parses `text` as one JSON document. InvalidArgument, its message starting with `what`
// ("stdin", a file name), when the text is larger than limits.max_bytes ("... bytes, more than
// the N allowed"), nests deeper than limits.max_depth ("... nested deeper than N levels"), or is
// not JSON (the parser's message: "... parse error at line 1, column 7: ...").
// nlohmann's parse error text without its "[json.exception.parse_error.101] " tag ("parse error
// at line 1, column 5: ...").
std::string JsonParseErrorText(const nlohmann::detail::exception& ex);

absl::StatusOr<nlohmann::json> ParseJsonBounded(std::string_view text, std::string_view what,
                                                const JsonLimits& limits = {});

}  // namespace rdmashare
