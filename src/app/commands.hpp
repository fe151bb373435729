#pragma once
// The fc25 subcommands. Each takes the arguments after its name and returns the process exit code.
#include <memory>
#include <string>
#include <vector>

#include "app/config.hpp"
#include "storage/store.hpp"

namespace fc25::app {

int run_serve(const std::vector<std::string>& args);
int run_user(const std::vector<std::string>& args);

// Library initialisation in one place, in a fixed order (libsodium, SQLite). Idempotent.
void init_libraries();

// The store the configuration names: PostgreSQL (database_url) or the SQLite file (db, its directory made).
std::unique_ptr<storage::Store> open_store(const Config& config);

}  // namespace fc25::app
