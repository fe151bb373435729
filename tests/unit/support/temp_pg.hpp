#pragma once
// A PostgreSQL schema of its own for one test, in the cluster ctest's `postgres` fixture started
// (tests/support/postgres.sh; its URL in FC25_TEST_POSTGRES_URL, or in the file FC25_TEST_POSTGRES_URL_FILE names).
// The URL it gives sets the connection's search_path to that schema, so every test starts from an empty database.
// The schema is dropped afterwards. No cluster is an error, not a skip.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

#include "storage/detail/pg.hpp"

namespace fc25::testing {

inline std::string test_postgres_url() {
  if (const char* url = std::getenv("FC25_TEST_POSTGRES_URL"); url && *url) return url;
  const char* file = std::getenv("FC25_TEST_POSTGRES_URL_FILE");
  std::string url;
  if (file && *file) std::getline(std::ifstream(file), url);
  if (url.empty()) {
    throw std::runtime_error(std::string("no test PostgreSQL: run through ctest (its postgres fixture starts one), or "
                                         "set FC25_TEST_POSTGRES_URL; looked in ") + (file ? file : "(no file named)"));
  }
  return url;
}

struct TempPgSchema {
  std::string base;    // the cluster's database
  std::string schema;
  std::string url;     // base, with search_path = schema
  TempPgSchema() : base(test_postgres_url()) {
    static std::atomic<int> counter{0};
    schema = "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    storage::detail::PgConnection admin(base);
    admin.exec_script("DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema);
    url = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  }
  ~TempPgSchema() {
    try {
      storage::detail::PgConnection admin(base);
      admin.exec_script("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    } catch (...) {
    }
  }
};

}  // namespace fc25::testing
