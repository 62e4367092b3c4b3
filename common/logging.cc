#include "common/logging.h"

#include <cstdio>
#include <exception>
#include <memory>

#include "fmt/format.h"
#include "spdlog/sinks/basic_file_sink.h"
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

void SetupPluginLogging(const PluginLogOptions& options) {
  spdlog::sink_ptr sink;
  std::string level = options.stderr_level;
  if (!options.file.empty()) {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file);
      level = options.file_level;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n",
                   fmt::format("{}: cannot open logFile {}: {}; logging to stderr", options.program,
                               options.file, e.what())
                       .c_str());
    }
  }
  if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  // Not registered by name: a second call replaces the logger instead of throwing.
  auto logger = std::make_shared<spdlog::logger>(options.program, sink);
  logger->set_level(spdlog::level::from_str(level));
  logger->set_pattern(fmt::format("%Y-%m-%dT%H:%M:%S.%e %l {}[%P] %v", options.program));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace rdmashare
