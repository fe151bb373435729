#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "app/commands.hpp"
#include "app/config.hpp"
#ifdef FC25_HAVE_DENOISE
#include "app/denoise_command.hpp"
#endif

namespace {
const char* kUsage = R"(fc25 — live, denoised audio among friends

usage:
  fc25 serve [options]                     run the server (fc25 serve --help for options)
  fc25 user create NAME [--password-stdin] create a user (prompts for the password otherwise)
  fc25 user list                           list users
  fc25 denoise IN OUT [options]            denoise an audio file (fc25 denoise --help)
  fc25 --help | --version
)";
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::cout << "fc25 " << FC25_VERSION << "\n";
    return 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "serve") {
    for (auto& a : rest)
      if (a == "--help" || a == "-h") { std::cout << fc25::app::serve_usage(); return 0; }
    return fc25::app::run_serve(rest);
  }
  if (args[0] == "user") return fc25::app::run_user(rest);
  if (args[0] == "denoise") {
#ifdef FC25_HAVE_DENOISE
    return fc25::app::run_denoise_command(argc - 1, argv + 1);
#else
    std::cerr << "fc25: this build has no denoise engine\n";
    return 2;
#endif
  }
  std::cerr << "fc25: unknown command '" << args[0] << "'\n\n" << kUsage;
  return 2;
}
