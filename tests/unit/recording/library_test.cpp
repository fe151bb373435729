#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "../support/temp_dir.hpp"
#include "recording/library.hpp"

namespace fs = std::filesystem;
using namespace fc25::recording;
using fc25::testing::TempDir;

namespace {

// One ended stream of alice in a real SQLite store, and the library of node-a over `dir`.
struct Fixture {
  TempDir dir;
  std::unique_ptr<fc25::storage::Store> store = fc25::storage::open_sqlite_store(dir.path / "fc25.db");
  std::map<std::string, std::string> up{{"disk-b", "http://10.0.0.2:8000"}};
  Library lib{dir.path, [this](const std::string& id) -> std::optional<std::string> {
                auto it = up.find(id);
                return it == up.end() ? std::nullopt : std::optional<std::string>(it->second);
              }};
  fc25::storage::User alice = *store->create_user("alice", "x", 1);
  std::int64_t session = store->start_stream(alice.id, "tab", 100, "node-a").stream.session_id;

  Fixture() {
    fs::create_directories(lib.dir());
    store->end_stream(session, "user", 200);
  }
  Summary write(const fs::path& path, std::size_t samples) {
    auto w = WavWriter::create(path);
    std::vector<float> v(samples, 0.25F);
    w->write(v);
    return w->finish();
  }
  fc25::storage::Recording row_of(const std::string& disk, const std::string& path) {
    fc25::storage::Recording r;
    r.disk_id = disk;
    r.path = path;
    return r;
  }
};

}  // namespace

TEST(RecordingLibrary, ReadsBothNamesAFileCanHaveAndNothingElse) {
  auto f = parse_file_name("alice_42.wav");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->username, "alice");
  EXPECT_EQ(f->session_id, 42);
  EXPECT_FALSE(f->raw);
  auto r = parse_file_name("al_ice_7_raw.wav");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->username, "al_ice");
  EXPECT_EQ(r->session_id, 7);
  EXPECT_TRUE(r->raw);
  // The two names the server makes read back as what they were made from.
  auto made = parse_file_name(raw_twin(file_name("bob_x", 9)).string());
  ASSERT_TRUE(made);
  EXPECT_EQ(made->username, "bob_x");
  EXPECT_TRUE(made->raw);
  for (auto bad : {"alice.wav", "alice_.wav", "_5.wav", "alice_4x.wav", "alice_42.mp3", "alice_0.wav",
                   "alice_1234567890123456789.wav", "alice_42.wav.part", ".wav", "alice_42_raw"}) {
    EXPECT_FALSE(parse_file_name(bad)) << bad;
  }
}

TEST(RecordingLibrary, TheDiskIdIsMadeOnceAndKeptByTheDirectory) {
  TempDir d;
  Library first(d.path);
  EXPECT_EQ(first.disk_id().size(), 16u);
  EXPECT_TRUE(fs::is_regular_file(d.path / "streamed_audios" / ".disk-id"));
  Library again(d.path);   // the node restarted, or a second node shares the directory
  EXPECT_EQ(again.disk_id(), first.disk_id());
  TempDir other;
  EXPECT_NE(Library(other.path).disk_id(), first.disk_id());
}

TEST(RecordingLibrary, AFinishedRecordingsRowNamesThisDiskItsFileAndItsRawTwin) {
  Fixture x;
  auto clean = x.lib.file_for("alice", x.session);
  auto saved = x.write(clean, 48000);
  auto raw = x.write(raw_twin(clean), 48000);
  fc25::storage::Recording row;
  row.session_id = x.session;
  row.user_id = x.alice.id;
  auto r = x.lib.finish(*x.store, row, saved);
  EXPECT_GT(r.id, 0);
  EXPECT_EQ(r.disk_id, x.lib.disk_id());
  EXPECT_EQ(r.path, "streamed_audios/alice_" + std::to_string(x.session) + ".wav");
  EXPECT_EQ(r.duration_ms, 1000);
  EXPECT_EQ(r.bytes, static_cast<std::int64_t>(fs::file_size(clean)));
  ASSERT_TRUE(r.raw_bytes);
  EXPECT_EQ(*r.raw_bytes, raw.bytes);
  EXPECT_TRUE(x.lib.has_raw(r));
  EXPECT_TRUE(x.lib.holds(r));
  auto l = x.lib.locate(r, true);
  EXPECT_EQ(l.kind, Location::Kind::local);
  EXPECT_EQ(l.path, raw_twin(clean));
  // Removing it removes both files.
  EXPECT_TRUE(x.lib.remove(r));
  EXPECT_FALSE(fs::exists(clean));
  EXPECT_FALSE(fs::exists(raw_twin(clean)));
  EXPECT_EQ(x.lib.locate(r, false).kind, Location::Kind::missing) << "this node's own file, gone";
}

TEST(RecordingLibrary, ARecordingOnAnotherDiskIsReadFromItsNodeWhileThatIsUp) {
  Fixture x;
  auto of_b = x.row_of("disk-b", "streamed_audios/alice_5.wav");
  auto l = x.lib.locate(of_b, false);
  EXPECT_EQ(l.kind, Location::Kind::remote);
  EXPECT_EQ(l.node_url, "http://10.0.0.2:8000");
  EXPECT_FALSE(x.lib.holds(of_b)) << "not this node's to delete or expire";
  auto of_c = x.row_of("disk-c", "streamed_audios/alice_6.wav");
  auto down = x.lib.locate(of_c, false);
  EXPECT_EQ(down.kind, Location::Kind::unavailable);
  EXPECT_EQ(down.disk_id, "disk-c");
  x.up["disk-c"] = "http://10.0.0.3:8000";   // its node is back
  EXPECT_EQ(x.lib.locate(of_c, false).kind, Location::Kind::remote);
  // A file found here is read here, whatever the row says.
  x.write(x.dir.path / of_c.path, 480);
  EXPECT_EQ(x.lib.locate(of_c, false).kind, Location::Kind::local);
  EXPECT_FALSE(x.lib.has_raw(of_c));
  // This disk's own row whose file is gone, and a row from before clusters (no disk): missing, no node asked.
  EXPECT_EQ(x.lib.locate(x.row_of(x.lib.disk_id(), "streamed_audios/alice_8.wav"), false).kind,
            Location::Kind::missing);
  auto legacy = x.row_of("", "streamed_audios/alice_9.wav");
  EXPECT_EQ(x.lib.locate(legacy, false).kind, Location::Kind::missing);
  EXPECT_TRUE(x.lib.holds(legacy));
  // Outside a cluster no node is ever asked.
  Library single(x.dir.path);
  EXPECT_EQ(single.locate(of_b, false).kind, Location::Kind::missing);
}

TEST(RecordingLibrary, RepairsTheFileACrashLeftAndDropsOneWithoutAudio) {
  Fixture x;
  auto path = x.lib.file_for("alice", x.session);
  x.write(path, 4800);
  {
    // Audio that reached the disk after the last header update, as a crash leaves it.
    std::ofstream out(path, std::ios::binary | std::ios::app);
    std::vector<char> more(9600, 0x10);
    out.write(more.data(), static_cast<std::streamsize>(more.size()));
  }
  auto stale = x.lib.stale_files();
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].username, "alice");
  EXPECT_EQ(stale[0].session_id, x.session);
  auto saved = x.lib.repair_orphan("alice", x.session);
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->samples, 4800 + 4800);
  EXPECT_TRUE(x.lib.stale_files().empty());

  auto empty = x.lib.file_for("alice", x.session + 1);
  WavWriter::create(empty)->finish();
  EXPECT_FALSE(x.lib.repair_orphan("alice", x.session + 1));
  EXPECT_FALSE(fs::exists(empty)) << "a recording with no audio is not kept";
  EXPECT_FALSE(x.lib.repair_orphan("alice", 999)) << "no file, nothing to repair";
}
