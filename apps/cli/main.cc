// mmembed: command-line front end. Thin client of the library: parses options, calls the
// library, prints results. Exit codes: 0 ok, 1 a reported error (bad input, bad file), 2 usage.
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <sstream>
#include <vector>

#include "cli_util.h"
#include "commands.h"
#include "core/file.h"
#include "core/log.h"
#include "core/output_file.h"
#include "core/thread_pool.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "mmembed/version.h"

namespace {

// What a command printed may still sit in stdio's buffer, written only at exit where a failure
// is lost: flushed and closed here and checked, so that `mmembed ... > /dev/full` (or a full
// disk) is an error, not exit 0 with nothing written. Returns false after reporting it.
bool close_stdout() {
  errno = 0;
  std::cout.flush();  // synced with stdio: its bytes are in stdout's buffer or already failed
  bool ok = std::fflush(stdout) == 0;
  ok = std::cout.good() && std::ferror(stdout) == 0 && ok;
  // A closed stdout (`>&-`) fails the close with EBADF; that is no error when nothing was
  // written to it (a write there would have failed above).
  ok = (std::fclose(stdout) == 0 || (ok && errno == EBADF)) && ok;
  if (ok) return true;
  const int err = errno;
  std::fprintf(stderr, "mmembed: error writing standard output%s%s\n", err ? ": " : "",
               err ? std::strerror(err) : "");
  return false;
}

int run_cli(int argc, char** argv) {
  using namespace mmembed;
  CLI::App app{"mmembed: multimodal (image + text) embeddings, natively.\n"
               "Loads Hugging Face checkpoints (safetensors or PyTorch .bin) with no Python.",
               "mmembed"};
  app.set_version_flag("--version", std::string("mmembed ") + MMEMBED_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'mmembed COMMAND --help' for the options of a command.");

  cli::GlobalOptions global;
  cli::bound(app.add_option("--threads", global.threads,
                            "Threads for compute (0 = all hardware threads; at most 1024)"),
             0, kMaxThreads)
      ->capture_default_str();
  CLI::Option* quiet = app.add_flag("-q,--quiet", global.quiet,
                                    "Say nothing on stderr but errors and warnings (no progress)");
  app.add_flag("-v,--verbose", global.verbose, "Say more on stderr (each phase, each batch)")
      ->excludes(quiet);
  // The global options may also come after the command (`mmembed embed ... --threads 1`): the
  // subcommands, made below, inherit this.
  app.fallthrough();

  // Each add_* registers one subcommand and returns what runs it.
  using Add = cli::Runner (*)(CLI::App&, const cli::GlobalOptions&);
  const std::pair<const char*, Add> registry[] = {
      {"inspect", cli::add_inspect}, {"similarity", cli::add_similarity},
      {"reduce", cli::add_reduce},   {"embed", cli::add_embed},
      {"match", cli::add_match},     {"classify", cli::add_classify},
      {"plot", cli::add_plot},       {"demo", cli::add_demo},
      {"fetch", cli::add_fetch},     {"models", cli::add_models},
      {"index", cli::add_index},     {"search", cli::add_search},
      {"recommend", cli::add_recommend}, {"dedupe", cli::add_dedupe},
      {"completion", cli::add_completion}, {"manpage", cli::add_manpage},
  };
  std::vector<std::pair<CLI::App*, cli::Runner>> commands;
  for (const auto& [name, add] : registry) {
    cli::Runner run = add(app, global);
    commands.emplace_back(app.get_subcommand(name), std::move(run));
  }
  cli::apply_option_rules(app);

  std::vector<std::string> args(argv, argv + argc);
  args = cli::normalize_arguments(app, std::move(args));
  std::vector<char*> normalized;
  for (std::string& a : args) normalized.push_back(a.data());
  try {
    app.parse(static_cast<int>(normalized.size()), normalized.data());
  } catch (const CLI::ParseError& e) {
    // Help, version or the usage error, written with checks as any other output. A usage
    // error can quote the user's value (CLI11's "... not expected: VALUE"): escaped like any
    // other error, so no control byte reaches the terminal.
    std::ostringstream out, err;
    const int rc = app.exit(e, out, err);
    std::fputs(printable_message(err.str()).c_str(), stderr);
    if (rc != 0) std::fputs(printable_message(cli::suggest_options(app, args)).c_str(), stderr);
    try {
      write_output_file("-", out.str());
    } catch (const Error& write_error) {
      std::fprintf(stderr, "mmembed: error: %s\n", printable_message(write_error.what()).c_str());
      return 1;
    }
    return rc == 0 ? 0 : 2;
  }

  try {
    core::set_log_level(global.quiet     ? core::LogLevel::kQuiet
                        : global.verbose ? core::LogLevel::kVerbose
                                         : core::LogLevel::kNormal);
    kernels::set_num_threads(global.threads);
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) return run();
    }
  } catch (const Error& e) {
    // Escaped as a whole: whatever path or field a message quotes, no control byte or invalid
    // UTF-8 from it reaches the terminal.
    std::fprintf(stderr, "mmembed: error: %s\n", printable_message(e.what()).c_str());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mmembed: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mmembed: error: %s\n", printable_message(e.what()).c_str());
    return 1;
  }
  return 2;
}

// A standard descriptor the caller closed (`>&-`) would be handed to the next file opened (a
// model, a temporary output file), and what is printed to stdout would land in that file. It
// gets /dev/null, opened in the other direction, so that a write to it still fails (EBADF).
void hold_closed_std_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      const int got = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
      if (got >= 0 && got != fd) ::close(got);  // fd was taken meanwhile; nothing to hold
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  hold_closed_std_fds();
  const int rc = run_cli(argc, argv);
  if (!close_stdout()) return rc == 0 ? 1 : rc;
  return rc;
}
