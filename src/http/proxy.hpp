#pragma once
// The client side of a proxied answer (http/exchange.hpp Proxy): one connection to another node, its answer read
// a piece at a time into a 64 KiB buffer that the session writes on to its client before the next piece is read,
// so that what a proxied download holds in memory does not depend on its size, and a slow client slows the node
// behind it rather than filling this one.
#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "http/exchange.hpp"

namespace fc25::http {

class Upstream : public std::enable_shared_from_this<Upstream> {
 public:
  using Done = std::function<void(boost::beast::error_code)>;
  using Message = bhttp::response<bhttp::buffer_body>;

  // `executor`: the client session's strand; every completion runs there.
  Upstream(boost::asio::any_io_executor executor, Proxy proxy);

  // Resolves and connects to the node, sends the request and reads the answer's header, all within the proxy's
  // timeout; then `done`. An error means the client should get unavailable().
  void start(Done done);
  // The answer: its header once start() succeeded; its body's buffer after each read_some().
  Message& message() { return parser_.get(); }
  // The next piece of the body into the buffer (body().data/size/more set for a serializer to write), each within
  // `timeout`; an empty last piece once the whole answer is read.
  void read_some(std::chrono::steady_clock::duration timeout, Done done);
  Response unavailable() { return std::move(proxy_.unavailable); }
  const Proxy& proxy() const { return proxy_; }

 private:
  Proxy proxy_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
  char buf_[64 * 1024];
};

}  // namespace fc25::http
