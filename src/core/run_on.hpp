#pragma once
// Work that may block (a database a network away) runs on a pool of its own when there is one, and at once on the
// calling thread otherwise (an embedded database answers in microseconds).
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace fc25::core {

template <class Fn>
void run_on(boost::asio::thread_pool* pool, Fn&& fn) {
  if (pool) boost::asio::post(*pool, std::forward<Fn>(fn));
  else std::forward<Fn>(fn)();
}

}  // namespace fc25::core
