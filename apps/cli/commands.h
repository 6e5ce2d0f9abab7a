// Subcommands of the `mmembed` CLI. Each registers its options on the app and returns the
// function that runs it; main() catches mmembed::Error and prints a one-line reason.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace mmembed::cli {

struct GlobalOptions {
  int threads = 0;  // 0: all hardware threads
  bool quiet = false, verbose = false;
};

using Runner = std::function<int()>;

Runner add_inspect(CLI::App& app, const GlobalOptions& global);
Runner add_similarity(CLI::App& app, const GlobalOptions& global);
Runner add_reduce(CLI::App& app, const GlobalOptions& global);
Runner add_embed(CLI::App& app, const GlobalOptions& global);
Runner add_match(CLI::App& app, const GlobalOptions& global);
Runner add_classify(CLI::App& app, const GlobalOptions& global);
Runner add_plot(CLI::App& app, const GlobalOptions& global);
Runner add_demo(CLI::App& app, const GlobalOptions& global);
Runner add_fetch(CLI::App& app, const GlobalOptions& global);
Runner add_completion(CLI::App& app, const GlobalOptions& global);
Runner add_manpage(CLI::App& app, const GlobalOptions& global);
Runner add_models(CLI::App& app, const GlobalOptions& global);
Runner add_index(CLI::App& app, const GlobalOptions& global);
Runner add_search(CLI::App& app, const GlobalOptions& global);
Runner add_recommend(CLI::App& app, const GlobalOptions& global);
Runner add_dedupe(CLI::App& app, const GlobalOptions& global);

}  // namespace mmembed::cli
