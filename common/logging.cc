#include "common/logging.h"

#include "fmt/format.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace rdmashare {

absl::Status SetupLogging(const std::string& level) {
  spdlog::level::level_enum lvl = spdlog::level::from_str(level);
  // from_str maps unknown names to "off"; only accept "off" when it was asked for.
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(fmt::format(
        "--log-level: unknown level '{}' (want trace, debug, info, warn, error or off)", level));
  }
  auto logger = spdlog::stderr_logger_mt("rdmashare");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace rdmashare
