// `fc25 user create NAME` (the analogue of Django's createsuperuser) and `fc25 user list`.
#include <termios.h>
#include <unistd.h>

#include <iostream>

#include "app/commands.hpp"
#include "app/config.hpp"
#include "auth/auth.hpp"
#include "core/time.hpp"
#include "storage/store.hpp"

namespace fc25::app {
namespace {

std::string read_hidden(const char* prompt) {
  std::cerr << prompt << std::flush;
  termios old{};
  bool tty = tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~ECHO;
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
  }
  return line;
}

const char* kUserUsage = R"(usage:
  fc25 user create NAME [--password-stdin] [--db FILE | --data-dir DIR | --database-url URL]
  fc25 user list [--db FILE | --data-dir DIR | --database-url URL]
(FC25_DATABASE_URL, FC25_DB and FC25_DATA_DIR are read as by fc25 serve)
)";

}  // namespace

int run_user(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help") {
    std::cout << kUserUsage;
    return args.empty() ? 2 : 0;
  }
  std::string action = args[0], name;
  bool password_stdin = false;
  std::vector<std::string> config_args;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--password-stdin") password_stdin = true;
    else if (args[i] == "--db" || args[i] == "--data-dir" || args[i] == "--database-url") {
      if (i + 1 >= args.size()) { std::cerr << "fc25 user: " << args[i] << " needs a value\n"; return 2; }
      config_args.push_back(args[i]);
      config_args.push_back(args[++i]);
    } else if (name.empty() && args[i].rfind("--", 0) != 0) name = args[i];
    else { std::cerr << "fc25 user: unknown argument '" << args[i] << "'\n" << kUserUsage; return 2; }
  }
  try {
    auto config = load_config(config_args);
    init_libraries();
    auto store = open_store(config);
    if (action == "list") {
      for (auto& u : store->list_users()) std::cout << u.username << (u.is_streaming ? "\tlive" : "") << "\n";
      return 0;
    }
    if (action != "create" || name.empty()) { std::cerr << kUserUsage; return 2; }
    if (auto p = auth::username_problem(name); !p.empty()) { std::cerr << "fc25 user create: " << p << "\n"; return 2; }
    auto username = auth::normalise_username(name);
    if (store->user_by_name(username)) {
      std::cerr << "fc25 user create: the username '" << username << "' is taken\n";
      return 1;
    }
    std::string password;
    if (password_stdin) {
      std::getline(std::cin, password);
    } else {
      if (!isatty(STDIN_FILENO)) {
        std::cerr << "fc25 user create: no terminal to ask for the password; use --password-stdin\n";
        return 2;
      }
      password = read_hidden("Password: ");
      if (read_hidden("Password (again): ") != password) {
        std::cerr << "fc25 user create: the passwords do not match\n";
        return 1;
      }
    }
    if (auto p = auth::password_problem(password); !p.empty()) { std::cerr << "fc25 user create: " << p << "\n"; return 2; }
    if (!store->create_user(username, auth::hash_password(password), core::now_ms())) {
      std::cerr << "fc25 user create: the username '" << username << "' is taken\n";
      return 1;
    }
    std::cout << "created user " << username << " in " << config.db.string() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "fc25 user: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace fc25::app
