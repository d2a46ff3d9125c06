// Tuning tables (src/tuning.h) and the selector's use of them: the JSON schema round trip,
// signatures, every kind of bad file (each rejected with a message naming the file and the
// problem, never a crash), the selector's precedence forced > PLEXUS_ALGO > table > model, and
// plexus-tune writing a table that a later job loads.
#include "src/tuning.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "algorithms/builtin.h"
#include "algorithms/hierarchy.h"
#include "src/config.h"
#include "src/log.h"
#include "src/selector.h"

namespace plexus {
namespace {

using internal::TuningFile;
using internal::TuningOutcome;
using internal::TuningSource;
using internal::TuningTable;

// A job on one host whose rank r runs on emulated node layout[r] ("0011": 2 nodes × 2 ranks).
JobTopology jobOf(const std::string& layout) {
  std::vector<HostTopology> ranks(layout.size());
  for (size_t r = 0; r < layout.size(); ++r) {
    ranks[r].hostname = "vm";
    ranks[r].bootId = "boot";
    ranks[r].nodeId = std::string("node") + layout[r];
    ranks[r].nodeIdOverridden = true;
    ranks[r].pid = 1000 + static_cast<int64_t>(r);
  }
  auto job = JobTopology::build(std::move(ranks));
  EXPECT_TRUE(job.ok()) << job.status().toString();
  return std::move(job).value();
}

TuningTable sampleTable(const std::string& layout) {
  TuningTable t;
  t.signature = internal::signatureOf(jobOf(layout), "ucx", "ucx");
  t.created = "2024-01-01T00:00:00Z";
  t.tool = "plexus-tune -b 8 -e 1M";
  t.links.intra = LinkCost{3.25, 0.001};
  if (layout.find('1') != std::string::npos) t.links.inter = LinkCost{40, 0.008};
  t.links.gammaUsPerB = 0.0002;
  internal::CollectiveTuning all;
  all.ranges = {{0, 3072, "rhd"}, {3072, 1 << 20, "tree"}, {1 << 20, SIZE_MAX, "ring"}};
  all.measured = {{8, {{"rhd", 12.5}, {"ring", 31}, {"tree", 20.25}}}};
  internal::CollectiveTuning bcast;
  bcast.kind = CollectiveKind::kBroadcast;
  bcast.ranges = {{0, SIZE_MAX, "ring"}};
  t.collectives = {all, bcast};
  return t;
}

std::string sampleText() {
  TuningFile file;
  file.tables = {sampleTable("0000"), sampleTable("0011")};
  auto text = internal::formatTuningFile(file);
  EXPECT_TRUE(text.ok()) << text.status().toString();
  return text.ok() ? *text : "";
}

// The built-in algorithms, hier included (it runs the ring when nothing is composed).
const std::vector<std::unique_ptr<Algorithm>>& builtins() {
  static Hierarchy none;
  static const auto algos = builtinAlgorithms(&none, nullptr);
  return algos;
}

TuningOutcome choose(const std::string& text, const std::string& layout = "0000") {
  TuningSource src;
  src.path = "/cfg/tuning.json";
  src.found = true;
  src.text = text;
  return internal::chooseTuning(src, internal::signatureOf(jobOf(layout), "ucx", "ucx"),
                                builtins());
}

void replaceOnce(std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
}

// The tests that read or write JSON: skipped, saying why, in a build without nlohmann-json.
class TuningJson : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!internal::formatTuningFile({}).ok()) GTEST_SKIP() << "this build has no nlohmann-json";
  }
};

TEST_F(TuningJson, RoundTripsThroughJson) {
  const std::string text = sampleText();
  auto parsed = internal::parseTuningFile(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().toString();
  ASSERT_EQ(parsed->tables.size(), 2u);
  EXPECT_EQ(parsed->tables[0], sampleTable("0000"));
  EXPECT_EQ(parsed->tables[1], sampleTable("0011"));
  EXPECT_NE(text.find("\"hi\": \"inf\""), std::string::npos) << text;
  // put() replaces the table of its signature and keeps the others.
  TuningTable changed = sampleTable("0000");
  changed.collectives.pop_back();
  parsed->put(changed);
  ASSERT_EQ(parsed->tables.size(), 2u);
  EXPECT_EQ(parsed->tables[0], changed);
}

TEST(Tuning, RangesFromWinnersMergeAndSplitAtTheGeometricMean) {
  auto ranges =
      internal::rangesFromWinners({8, 32, 128, 512, 2048}, {"rhd", "rhd", "tree", "ring", "ring"});
  const std::vector<internal::TuningRange> want = {
      {0, 64, "rhd"}, {64, 256, "tree"}, {256, SIZE_MAX, "ring"}};
  EXPECT_EQ(ranges, want);
}

TEST(Tuning, SignatureDescribesNodesRanksTransportsAndLinks) {
  auto one = internal::signatureOf(jobOf("0000"), "ucx", "ofi");
  EXPECT_EQ(one.toString(), "nodes=1 ranks_per_node=4 intra=ucx inter=- links=node");
  auto two = internal::signatureOf(jobOf("0011"), "ucx", "ofi");
  EXPECT_EQ(two.toString(), "nodes=2 ranks_per_node=2 intra=ucx inter=ofi links=node+network");
  auto uneven = internal::signatureOf(jobOf("0001"), "ucx", "ucx");
  EXPECT_EQ(uneven.ranksPerNode, 0);
  EXPECT_FALSE(one == two);
  EXPECT_FALSE(internal::signatureOf(jobOf("0000"), "ucx:sm", "ucx") == one);
}

TEST_F(TuningJson, UsesTheTableOfItsSignature) {
  TuningOutcome out = choose(sampleText(), "0011");
  ASSERT_NE(out.tuning, nullptr) << out.message;
  EXPECT_EQ(out.level, LogLevel::kInfo);
  EXPECT_EQ(out.tuning->table, sampleTable("0011"));
  EXPECT_NE(out.tuning->reason.find("tuning table /cfg/tuning.json (signature nodes=2"),
            std::string::npos)
      << out.tuning->reason;
  const CostModel m = out.tuning->table.links.applyTo(internal::defaultCostModel());
  EXPECT_EQ(m.intra.alphaUs, 3.25);
  EXPECT_EQ(m.inter.betaUsPerB, 0.008);
  EXPECT_EQ(m.gammaUsPerB, 0.0002);
}

TEST_F(TuningJson, IgnoresAnotherTopologysTableWithAnInfoNamingBoth) {
  TuningFile file;
  file.tables = {sampleTable("0011")};
  TuningOutcome out = choose(internal::formatTuningFile(file).value(), "0000");
  EXPECT_EQ(out.tuning, nullptr);
  EXPECT_EQ(out.level, LogLevel::kInfo);
  EXPECT_NE(out.message.find("no table for this job (signature nodes=1 ranks_per_node=4"),
            std::string::npos)
      << out.message;
  EXPECT_NE(out.message.find("the file has: nodes=2 ranks_per_node=2"), std::string::npos)
      << out.message;
}

struct BadCase {
  const char* name;
  std::string from, to;  // the edit of the valid text
  const char* problem;   // what the message must say
};

TEST_F(TuningJson, RejectsEveryBadFileWithAWarningNamingFileAndProblem) {
  const std::string good = sampleText();
  const std::vector<BadCase> cases = {
      {"truncated", "\"tables\"", "\"tab", "not valid JSON"},
      {"not JSON", "{", "<xml>", "not valid JSON"},
      {"version", "\"version\": 1", "\"version\": 2", "this build reads version 1"},
      {"schema", "\"plexus-tuning\"", "\"other\"", "schema: expected \"plexus-tuning\""},
      {"collective", "\"allreduce\": {", "\"allreduz\": {", "allreduz: unknown collective"},
      {"algorithm", "\"algorithm\": \"rhd\"", "\"algorithm\": \"warp\"",
       "no allreduce algorithm 'warp'"},
      {"overlap", "\"lo\": 3072", "\"lo\": 3000", "inside the previous range"},
      {"empty range", "\"hi\": 3072", "\"hi\": 0", "lo must be below hi"},
      {"negative size", "\"lo\": 3072", "\"lo\": -1", "ranges[1].lo: expected a byte count"},
      {"bad hi", "\"hi\": \"inf\"", "\"hi\": \"big\"", "expected \"inf\" or a byte count"},
      {"negative alpha", "\"alpha_us\": 3.25", "\"alpha_us\": -3.25", "links.intra.alpha_us"},
      {"NaN", "\"alpha_us\": 3.25", "\"alpha_us\": NaN", "not valid JSON"},
      {"overflow", "\"alpha_us\": 3.25", "\"alpha_us\": 1e999", "number overflow parsing '1e999'"},
      {"absurd beta", "\"beta_us_per_byte\": 0.001", "\"beta_us_per_byte\": 1e300",
       "beta_us_per_byte: expected a finite number > 0"},
      {"zero gamma", "\"gamma_us_per_byte\": 0.0002", "\"gamma_us_per_byte\": 0", "gamma"},
      {"negative time", "\"rhd\": 12.5", "\"rhd\": -12.5", "measured[0].us.rhd"},
      {"type", "\"nodes\": 1", "\"nodes\": \"one\"", "signature.nodes: expected an integer"},
      {"missing", "\"ranges\"", "\"rangez\"", "missing \"ranges\""},
  };
  for (const BadCase& c : cases) {
    std::string text = good;
    replaceOnce(text, c.from, c.to);
    TuningOutcome out = choose(text);
    EXPECT_EQ(out.tuning, nullptr) << c.name;
    EXPECT_EQ(out.level, LogLevel::kWarn) << c.name;
    EXPECT_NE(out.message.find("tuning file /cfg/tuning.json: rejected"), std::string::npos)
        << c.name << ": " << out.message;
    EXPECT_NE(out.message.find(c.problem), std::string::npos) << c.name << ": " << out.message;
    EXPECT_NE(out.message.find("using the cost model"), std::string::npos) << c.name;
  }
  // Two tables for one signature.
  TuningFile twice;
  twice.tables = {sampleTable("0000"), sampleTable("0000")};
  TuningOutcome out = choose(internal::formatTuningFile(twice).value());
  EXPECT_NE(out.message.find("tables[1]: a second table for signature nodes=1"), std::string::npos)
      << out.message;
}

TEST(Tuning, MissingFilesAndDirectories) {
  TuningSource src;
  const auto sig = internal::signatureOf(jobOf("00"), "ucx", "ucx");
  src.path = "/nonexistent/tuning.json";
  EXPECT_TRUE(internal::chooseTuning(src, sig, builtins()).message.empty());  // default: silent
  src.explicitPath = true;
  TuningOutcome out = internal::chooseTuning(src, sig, builtins());
  EXPECT_EQ(out.level, LogLevel::kWarn);
  EXPECT_NE(out.message.find("/nonexistent/tuning.json: no such file"), std::string::npos)
      << out.message;
  // A directory where the file should be.
  Config dir;
  dir.tuningFile = ::testing::TempDir();
  src = internal::readTuningSource(dir);
  out = internal::chooseTuning(src, sig, builtins());
  EXPECT_EQ(out.level, LogLevel::kWarn);
  EXPECT_NE(out.message.find("cannot read it: not a regular file"), std::string::npos);
}

TEST_F(TuningJson, NeverCrashesOnTruncatedOrCorruptedFiles) {
  const std::string good = sampleText();
  for (size_t len = 0; len + 1 < good.size(); ++len) {  // all but the closing newline
    TuningOutcome out = choose(good.substr(0, len));
    ASSERT_EQ(out.tuning, nullptr) << "accepted a file cut at byte " << len;
    ASSERT_EQ(out.level, LogLevel::kWarn) << len;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string text = good;
    for (int flips = 1 + i % 4; flips > 0; --flips) {
      text[rng() % text.size()] = static_cast<char>(rng() % 256);
    }
    (void)choose(text);  // any outcome but a crash
  }
  // The blob rank 0 shares: every truncation decodes or fails cleanly.
  TuningSource src;
  src.path = "/x";
  src.found = true;
  src.text = good;
  const std::vector<uint8_t> blob = src.encode();
  TuningSource back;
  ASSERT_TRUE(TuningSource::decode(blob, &back));
  EXPECT_EQ(back.text, good);
  for (size_t len = 0; len < blob.size(); ++len) {
    EXPECT_FALSE(TuningSource::decode({blob.begin(), blob.begin() + len}, &back)) << len;
  }
}

TEST(Tuning, FileFromTheEnvironment) {
  auto cfg = Config::fromEnv(bootstrap::mapEnv({{"HOME", "/home/u"}}));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->tuningFile, "/home/u/.cache/plexus/tuning.json");
  EXPECT_FALSE(cfg->tuningFileExplicit);
  cfg = Config::fromEnv(bootstrap::mapEnv({{"HOME", "/home/u"}, {"XDG_CACHE_HOME", "/c"}}));
  EXPECT_EQ(cfg->tuningFile, "/c/plexus/tuning.json");
  cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_TUNING_FILE", "/t.json"}}));
  EXPECT_EQ(cfg->tuningFile, "/t.json");
  EXPECT_TRUE(cfg->tuningFileExplicit);
  cfg = Config::fromEnv(bootstrap::mapEnv({{"PLEXUS_TUNING_FILE", "none"}, {"HOME", "/h"}}));
  EXPECT_EQ(cfg->tuningFile, "");
}

// A selector over the built-ins with `rules` and a table sending every all-reduce to `tuned`;
// returns the name it picks for `bytes` (with `forced`) and the INFO line it logs.
std::string pick(const std::string& rules, const std::string& tuned, size_t bytes,
                 const std::string& forced, std::string* log,
                 const std::vector<std::unique_ptr<Algorithm>>& algos = builtins()) {
  std::shared_ptr<internal::LoadedTuning> tuning;
  if (!tuned.empty()) {
    tuning = std::make_shared<internal::LoadedTuning>();
    tuning->table.collectives.push_back({CollectiveKind::kAllReduce, {{0, SIZE_MAX, tuned}}, {}});
    tuning->reason = "tuning table /t.json (signature s)";
  }
  auto parsed = internal::parseAlgoRules(rules, algos);
  EXPECT_TRUE(parsed.ok()) << parsed.status().toString();
  internal::Selector selector(&algos, *parsed, internal::defaultCostModel(), 4, tuning);
  CollectiveRequest req;
  req.count = bytes / 4;
  setLogLevel(LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  auto chosen = selector.select(req, forced);
  *log = ::testing::internal::GetCapturedStderr();
  setLogLevel(LogLevel::kWarn);
  EXPECT_TRUE(chosen.ok()) << chosen.status().toString();
  return chosen.ok() ? (*chosen)->name() : "";
}

TEST(TuningSelector, ForcedBeatsRulesBeatTableBeatsModel) {
  std::string log;
  EXPECT_EQ(pick("allreduce:0-1k:rhd", "tree", 64, "ring", &log), "ring");
  EXPECT_NE(log.find("forced by the caller"), std::string::npos) << log;
  EXPECT_EQ(pick("allreduce:0-1k:rhd", "tree", 64, "", &log), "rhd");
  EXPECT_NE(log.find("chosen by PLEXUS_ALGO"), std::string::npos) << log;
  EXPECT_EQ(pick("allreduce:0-1k:rhd", "tree", 64 << 10, "", &log), "tree");
  EXPECT_NE(log.find("(tuning table /t.json (signature s))"), std::string::npos) << log;
  EXPECT_EQ(pick("", "tree", 64, "", &log), "tree");  // the model would take rhd here
  pick("", "", 64, "", &log);
  EXPECT_NE(log.find("(cost model: "), std::string::npos) << log;
}

// An all-reduce that refuses every request: a table naming it must fall through to the model.
class Refusing final : public Algorithm {
 public:
  const char* name() const override { return "picky"; }
  const char* description() const override { return "refuses everything"; }
  CollectiveKind collective() const override { return CollectiveKind::kAllReduce; }
  Status supports(const CollectiveRequest&, int) const override {
    return unimplemented("picky cannot run this");
  }
  Status run(const CollectiveRequest&, CollectiveContext&) override {
    return internalError("never chosen");
  }
};

TEST(TuningSelector, AnEntryThatCannotRunFallsThroughToTheModel) {
  static Hierarchy none;
  std::vector<std::unique_ptr<Algorithm>> algos = builtinAlgorithms(&none, nullptr);
  algos.push_back(std::make_unique<Refusing>());
  std::string log, modelLog;
  const std::string modelChoice = pick("", "", 64, "", &modelLog);
  EXPECT_EQ(pick("", "picky", 64, "", &log, algos), modelChoice);
  EXPECT_NE(log.find("(tuning table /t.json (signature s) names picky, which cannot run it (picky "
                     "cannot run this); falling back to the cost model:"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("WARN"), std::string::npos) << log;
}

#if defined(PLEXUS_TUNE_PATH) && defined(PLEXUS_PERF_PATH) && defined(PLEXUSRUN_PATH)
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// plexus-tune on 2 ranks writes a table; plexus-perf on 2 ranks then decides by it.
TEST(TuneIntegration, TuneWritesATableThatTheNextJobUses) {
  const std::string dir = ::testing::TempDir() + "plexus_tune_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string table = dir + "/sub/tuning.json", out = dir + "/out", err = dir + "/err";
  const std::string env = "PLEXUS_TUNING_FILE=" + table + " ";
  std::string cmd =
      env + PLEXUSRUN_PATH + " --timeout 60 -n 2 " + PLEXUS_TUNE_PATH +
      " -b 8 -e 64k -f 16 -w 1 --reps 2 --min-seconds 0 --target-ms 1 --collectives allreduce" +
      " >" + out + " 2>" + err;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(out) << slurp(err);
  EXPECT_NE(slurp(out).find("ranges: [0, "), std::string::npos) << slurp(out);
  auto parsed = internal::parseTuningFile(slurp(table));
  ASSERT_TRUE(parsed.ok()) << parsed.status().toString();
  ASSERT_EQ(parsed->tables.size(), 1u);
  EXPECT_EQ(parsed->tables[0].signature.toString(),
            "nodes=1 ranks_per_node=2 intra=ucx inter=- links=node");
  EXPECT_TRUE(parsed->tables[0].links.intra.has_value());
  cmd = env + "PLEXUS_DEBUG=INFO " + PLEXUSRUN_PATH + " --timeout 60 -n 2 " + PLEXUS_PERF_PATH +
        " allreduce -b 8 -e 64k -f 16 -n 1 -w 0 >" + out + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(out);
  const std::string log = slurp(out);
  EXPECT_NE(log.find("using tuning table " + table), std::string::npos) << log;
  EXPECT_NE(log.find("(tuning table " + table + " (signature"), std::string::npos) << log;
  std::filesystem::remove_all(dir);
}

// plexus-tune --check times the selector's choice beside the forced algorithms and names the
// choice per size: with PLEXUS_ALGO sending every all-reduce to the ring, "ring" at every size.
TEST(TuneIntegration, CheckTimesTheSelectorsChoiceBesideTheForcedAlgorithms) {
  const std::string out = ::testing::TempDir() + "plexus_check_" + std::to_string(::getpid());
  const std::string tune = std::string(PLEXUSRUN_PATH) + " --timeout 60 -n 2 " + PLEXUS_TUNE_PATH;
  std::string cmd = "PLEXUS_TUNING_FILE=none PLEXUS_ALGO=allreduce:ring " + tune +
                    " --check 100 -a ring,rhd -b 8 -e 64k -f 16 -w 1 --reps 2 --min-seconds 0" +
                    " --target-ms 1 --collectives allreduce >" + out + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(out);
  const std::string text = slurp(out);
  EXPECT_NE(text.find("auto       ring        rhd    chosen   fastest"), std::string::npos) << text;
  // A row: bytes, auto, ring, rhd, the choice, the fastest forced one, fastest/auto, ring/rhd.
  const std::regex row(R"(\[0\]\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\S+)\s+(ring|rhd)\s+[\d.]+)");
  std::vector<std::string> sizes;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    sizes.push_back(m[1]);
    EXPECT_EQ(m[2], "ring") << line;
  }
  EXPECT_EQ(sizes, (std::vector<std::string>{"8", "128", "2048", "32768"})) << text;
  EXPECT_NE(text.find("allowed 100% slower: PASS"), std::string::npos) << text;
  // A check writes no table, so it takes no -o; a percentage above 100 is refused.
  for (const char* bad : {" --check 10 -o /tmp/x.json", " --check 101"}) {
    cmd = tune + bad + " >" + out + " 2>&1";
    EXPECT_NE(std::system(cmd.c_str()), 0) << bad;
    EXPECT_NE(slurp(out).find("usage: plexus-tune"), std::string::npos) << bad << slurp(out);
  }
  std::filesystem::remove(out);
}
#endif

}  // namespace
}  // namespace plexus
