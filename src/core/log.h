// How much the tools say on stderr besides results and errors: progress, "wrote ..." lines and
// notes. One process-wide level, set once by the front end (the CLI's --quiet / --verbose).
//
//   core::set_log_level(core::LogLevel::kQuiet);
//   core::info("embedding 12 pairs ...");   // printed at kNormal and kVerbose
//   core::detail("batch 3 of 9");           // printed at kVerbose only
#pragma once

#include <string>

namespace mmembed::core {

enum class LogLevel { kQuiet, kNormal, kVerbose };

void set_log_level(LogLevel level);
LogLevel log_level();

// One line on stderr ("mmembed: " + message) when the level allows; thread-safe.
void info(const std::string& message);
void detail(const std::string& message);

}  // namespace mmembed::core
