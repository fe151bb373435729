#include <gtest/gtest.h>

#include "cluster/membership.hpp"

namespace fc25::cluster {
namespace {

TEST(Lease, ReadsBackWhatANodeWrote) {
  NodeInfo n{"n1", "http://10.0.0.2:8000", "203.0.113.7", "d41e", "box", 42, 1000, 2000, 3, 17};
  auto back = parse_lease(lease_json(n));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->node_id, "n1");
  EXPECT_EQ(back->url, "http://10.0.0.2:8000");
  EXPECT_EQ(back->media_address, "203.0.113.7");
  EXPECT_EQ(back->disk_id, "d41e");
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->renewed_at, 2000);
  EXPECT_EQ(back->live_streams, 3);
  EXPECT_EQ(back->listeners, 17);
  EXPECT_EQ(lease_key("n1"), "fc25:node:n1");
}

TEST(Lease, AValueOfAnotherShapeIsNoNode) {
  for (const char* bad : {"", "not json", "[]", "{}", R"({"node_id": 5})", R"({"node_id": "x", "pid": "many"})",
                          R"({"node_id": "x", "url": ["a"]})"}) {
    EXPECT_FALSE(parse_lease(bad)) << bad;
  }
  EXPECT_TRUE(parse_lease(R"({"node_id": "x"})")) << "fields a newer node adds or an older one lacks are fine";
}

TEST(Membership, WithoutRedisItKnowsItselfOnly) {
  Options o;
  o.redis_port = 1;   // nothing listens there
  o.node_id = "solo";
  o.url = "http://127.0.0.1:9";
  Membership m(o, [] { return Load{2, 5}; });
  m.start();
  auto nodes = m.nodes();
  m.stop();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].node_id, "solo");
  EXPECT_FALSE(m.connected());
}

}  // namespace
}  // namespace fc25::cluster
