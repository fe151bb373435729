#pragma once
// A refusal the client must hear about: HTTP status, a stable machine code and a message naming the input.
// Services on the control path throw it; the HTTP plane turns it into {"error": {"code", "message"}}.
#include <stdexcept>
#include <string>

namespace fc25::core {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)), message_(message) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }
  // The whole message (what() stops at a NUL that a client's input may have put in it).
  const std::string& message() const { return message_; }

 private:
  int status_;
  std::string code_;
  std::string message_;
};

}  // namespace fc25::core
