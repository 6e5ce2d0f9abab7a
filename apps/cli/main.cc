// mmembed: command-line front end. Thin client of the library: parses options, calls the
// library, prints results. Exit codes: 0 ok, 1 a reported error (bad input, bad file), 2 usage.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <vector>

#include "commands.h"
#include "core/file.h"
#include "kernels/parallel.h"
#include "mmembed/error.h"
#include "mmembed/version.h"

int main(int argc, char** argv) {
  using namespace mmembed;
  CLI::App app{"mmembed: multimodal (image + text) embeddings, natively.\n"
               "Loads Hugging Face checkpoints (safetensors or PyTorch .bin) with no Python.",
               "mmembed"};
  app.set_version_flag("--version", std::string("mmembed ") + MMEMBED_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'mmembed COMMAND --help' for the options of a command.");

  cli::GlobalOptions global;
  app.add_option("--threads", global.threads,
                 "Threads for compute (0 = all hardware threads)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  // Each add_* registers one subcommand and returns what runs it.
  using Add = cli::Runner (*)(CLI::App&, const cli::GlobalOptions&);
  const std::pair<const char*, Add> registry[] = {
      {"inspect", cli::add_inspect}, {"similarity", cli::add_similarity},
      {"reduce", cli::add_reduce},   {"embed", cli::add_embed},
      {"match", cli::add_match},     {"classify", cli::add_classify},
      {"plot", cli::add_plot},       {"demo", cli::add_demo},
      {"fetch", cli::add_fetch},
  };
  std::vector<std::pair<CLI::App*, cli::Runner>> commands;
  for (const auto& [name, add] : registry) {
    cli::Runner run = add(app, global);
    commands.emplace_back(app.get_subcommand(name), std::move(run));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help, version or the usage error
    return rc == 0 ? 0 : 2;
  }

  try {
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
