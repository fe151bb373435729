#include "http/proxy.hpp"

#include <limits>

#include <boost/asio/post.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace fc25::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

Upstream::Upstream(net::any_io_executor executor, Proxy proxy)
    : proxy_(std::move(proxy)), resolver_(executor), stream_(executor) {
  // A recording is as long as its stream was: no limit on the body (it is never held whole).
  parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (proxy_.request.method() == bhttp::verb::head) parser_.skip(true);
}

void Upstream::start(Done done) {
  auto self = shared_from_this();
  // One deadline for the whole exchange up to the answer's header.
  stream_.expires_after(proxy_.timeout);
  resolver_.async_resolve(proxy_.host, proxy_.port, [self, done](beast::error_code ec, tcp::resolver::results_type r) {
    if (ec) return done(ec);
    self->stream_.async_connect(r, [self, done](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return done(ec);
      beast::error_code ignored;
      self->stream_.socket().set_option(tcp::no_delay(true), ignored);
      bhttp::async_write(self->stream_, self->proxy_.request, [self, done](beast::error_code ec, std::size_t) {
        if (ec) return done(ec);
        bhttp::async_read_header(self->stream_, self->buffer_, self->parser_,
                                 [self, done](beast::error_code ec, std::size_t) {
                                   // Reads take what the buffer has room for: without this, the room the header
                                   // left (some hundred bytes) would make every read of the body that small.
                                   self->buffer_.reserve(sizeof(self->buf_));
                                   done(ec);
                                 });
      });
    });
  });
}

void Upstream::read_some(std::chrono::steady_clock::duration timeout, Done done) {
  auto& body = parser_.get().body();
  if (parser_.is_done()) {
    body.data = nullptr;
    body.size = 0;
    body.more = false;
    return net::post(stream_.get_executor(), [done] { done({}); });
  }
  body.data = buf_;
  body.size = sizeof(buf_);
  stream_.expires_after(timeout);
  bhttp::async_read(stream_, buffer_, parser_, [self = shared_from_this(), done](beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::need_buffer) ec = {};   // the buffer is full: a piece to write
    auto& b = self->parser_.get().body();
    b.size = sizeof(self->buf_) - b.size;
    b.data = self->buf_;
    b.more = !self->parser_.is_done();
    done(ec);
  });
}

}  // namespace fc25::http
