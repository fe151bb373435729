#pragma once
// The fc25 subcommands. Each takes the arguments after its name and returns the process exit code.
#include <string>
#include <vector>

namespace fc25::app {

int run_serve(const std::vector<std::string>& args);
int run_user(const std::vector<std::string>& args);

// Library initialisation in one place, in a fixed order (libsodium, SQLite). Idempotent.
void init_libraries();

}  // namespace fc25::app
