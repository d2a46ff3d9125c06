// Tuning tables: signatures, lookup, ranges from a sweep, and choosing a job's table from the
// file rank 0 read (the JSON form is in tuning_json.cc).
#include "src/tuning.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "src/bootstrap/store.h"
#include "src/bytes.h"
#include "src/config.h"

namespace plexus::internal {
namespace {

bool sameLink(const std::optional<LinkCost>& a, const std::optional<LinkCost>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->alphaUs == b->alphaUs && a->betaUsPerB == b->betaUsPerB);
}

// Logs `message` at `level` unless this process already did: the communicator, its node-local
// and cross-node sub-communicators all load the file, and one warning per process is enough.
void logOncePerProcess(LogLevel level, const std::string& message) {
  static std::mutex mu;
  static std::set<std::string> seen;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!seen.insert(message).second) return;
  }
  if (logEnabled(level)) logf(level, "%s", message.c_str());
}

}  // namespace

std::string TopologySignature::toString() const {
  std::string links;
  for (const auto& c : linkClasses) links += (links.empty() ? "" : "+") + c;
  auto orDash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  return "nodes=" + std::to_string(nodes) + " ranks_per_node=" + std::to_string(ranksPerNode) +
         " intra=" + orDash(intraTransport) + " inter=" + orDash(interTransport) +
         " links=" + orDash(links);
}

TopologySignature signatureOf(const JobTopology& topology, const std::string& intraSpec,
                              const std::string& interSpec) {
  TopologySignature sig;
  sig.nodes = topology.numNodes();
  sig.ranksPerNode = topology.localSize(0);
  for (int node = 1; node < sig.nodes; ++node) {
    if (static_cast<int>(topology.ranksOfNode(node).size()) != sig.ranksPerNode) {
      sig.ranksPerNode = 0;
    }
  }
  bool present[4] = {};
  for (int a = 0; a < topology.size(); ++a) {
    for (int b = a + 1; b < topology.size(); ++b) {
      present[static_cast<int>(topology.link(a, b))] = true;
    }
  }
  for (LinkClass c : {LinkClass::kSameProcess, LinkClass::kSameNode, LinkClass::kCrossNode}) {
    if (present[static_cast<int>(c)]) sig.linkClasses.push_back(linkClassName(c));
  }
  // A level no link uses does not matter, so it does not split signatures.
  if (present[static_cast<int>(LinkClass::kSameProcess)] ||
      present[static_cast<int>(LinkClass::kSameNode)]) {
    sig.intraTransport = intraSpec;
  }
  if (present[static_cast<int>(LinkClass::kCrossNode)]) sig.interTransport = interSpec;
  return sig;
}

CostModel TuningLinks::applyTo(CostModel m) const {
  if (intra) m.intra = *intra;
  if (inter) m.inter = *inter;
  if (gammaUsPerB) m.gammaUsPerB = *gammaUsPerB;
  m.alphaUs = m.intra.alphaUs;
  m.betaUsPerB = m.intra.betaUsPerB;
  return m;
}

bool operator==(const TuningLinks& a, const TuningLinks& b) {
  return sameLink(a.intra, b.intra) && sameLink(a.inter, b.inter) && a.gammaUsPerB == b.gammaUsPerB;
}

const TuningRange* TuningTable::lookup(CollectiveKind kind, size_t bytes) const {
  for (const CollectiveTuning& c : collectives) {
    if (c.kind != kind) continue;
    for (const TuningRange& r : c.ranges) {
      if (bytes >= r.lo && bytes < r.hi) return &r;
    }
  }
  return nullptr;
}

const TuningTable* TuningFile::find(const TopologySignature& signature) const {
  for (const TuningTable& t : tables) {
    if (t.signature == signature) return &t;
  }
  return nullptr;
}

void TuningFile::put(TuningTable table) {
  for (TuningTable& t : tables) {
    if (t.signature == table.signature) {
      t = std::move(table);
      return;
    }
  }
  tables.push_back(std::move(table));
}

Status checkAlgorithmNames(const TuningTable& table,
                           const std::vector<std::unique_ptr<Algorithm>>& algorithms) {
  for (const CollectiveTuning& c : table.collectives) {
    for (size_t i = 0; i < c.ranges.size(); ++i) {
      bool known = false;
      std::string names;
      for (const auto& a : algorithms) {
        if (a->collective() != c.kind) continue;
        known = known || c.ranges[i].algorithm == a->name();
        names += (names.empty() ? "" : ", ") + std::string(a->name());
      }
      if (!known) {
        return invalidArgument(std::string(collectiveName(c.kind)) + ".ranges[" +
                               std::to_string(i) + "]: no " + collectiveName(c.kind) +
                               " algorithm '" + c.ranges[i].algorithm + "' (known: " + names + ")");
      }
    }
  }
  return okStatus();
}

std::vector<TuningRange> rangesFromWinners(const std::vector<size_t>& sizes,
                                           const std::vector<std::string>& winners) {
  std::vector<TuningRange> ranges;
  for (size_t i = 0; i < sizes.size() && i < winners.size(); ++i) {
    if (!ranges.empty() && ranges.back().algorithm == winners[i]) continue;
    size_t lo = 0;
    if (!ranges.empty()) {
      // The geometric mean of the neighbours: the sweep's sizes grow geometrically, and so
      // does the error of a boundary placed anywhere between them.
      const double mid = std::sqrt(static_cast<double>(sizes[i - 1]) * sizes[i]);
      lo = std::max(static_cast<size_t>(std::llround(mid)), sizes[i - 1] + 1);
      lo = std::min(lo, sizes[i]);
      ranges.back().hi = lo;
    }
    ranges.push_back({lo, SIZE_MAX, winners[i]});
  }
  return ranges;
}

std::string defaultTuningPath(const bootstrap::EnvLookup& env) {
  auto xdg = env("XDG_CACHE_HOME");
  if (xdg && !xdg->empty()) return *xdg + "/plexus/tuning.json";
  auto home = env("HOME");
  if (home && !home->empty()) return *home + "/.cache/plexus/tuning.json";
  return "";
}

std::vector<uint8_t> TuningSource::encode() const {
  ByteWriter w;
  w.str(path);
  w.u32((explicitPath ? 1u : 0u) | (found ? 2u : 0u));
  w.str(text);
  w.str(readError);
  return w.take();
}

bool TuningSource::decode(const std::vector<uint8_t>& blob, TuningSource* out) {
  ByteReader r(blob);
  out->path = r.str(kMaxTuningFileBytes);
  const uint32_t flags = r.u32();
  out->text = r.str(kMaxTuningFileBytes);
  out->readError = r.str(kMaxTuningFileBytes);
  out->explicitPath = (flags & 1u) != 0;
  out->found = (flags & 2u) != 0;
  return r.ok() && r.atEnd();
}

TuningSource readTuningSource(const Config& config) {
  TuningSource src;
  src.path = config.tuningFile;
  src.explicitPath = config.tuningFileExplicit;
  if (src.path.empty()) return src;
  struct stat st {};
  if (::stat(src.path.c_str(), &st) != 0) {
    if (errno != ENOENT) src.readError = std::strerror(errno);
    return src;
  }
  if (!S_ISREG(st.st_mode)) {
    src.readError = "not a regular file";
  } else if (static_cast<size_t>(st.st_size) > kMaxTuningFileBytes) {
    src.readError = std::to_string(st.st_size) + " bytes is more than the " +
                    std::to_string(kMaxTuningFileBytes) + " a tuning file may hold";
  } else {
    std::ifstream in(src.path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in.good() && !in.eof()) {
      src.readError = "read failed";
    } else {
      src.text = text.str().substr(0, kMaxTuningFileBytes);
      src.found = true;
    }
  }
  return src;
}

TuningOutcome chooseTuning(const TuningSource& source, const TopologySignature& signature,
                           const std::vector<std::unique_ptr<Algorithm>>& algorithms) {
  TuningOutcome out;
  const std::string file = "tuning file " + source.path;
  auto warn = [&](const std::string& what) {
    out.level = LogLevel::kWarn;
    out.message = file + ": " + what + "; using the cost model";
    return out;
  };
  if (source.path.empty()) return out;
  if (!source.readError.empty()) return warn("cannot read it: " + source.readError);
  if (!source.found) {
    if (source.explicitPath) return warn("no such file (PLEXUS_TUNING_FILE names it)");
    return out;  // no default file: nothing was tuned, nothing to say
  }
  auto parsed = parseTuningFile(source.text);
  if (!parsed.ok()) return warn("rejected: " + parsed.status().message());
  const TuningTable* table = parsed->find(signature);
  if (table == nullptr) {
    std::string others;
    for (const TuningTable& t : parsed->tables) {
      others += (others.empty() ? "" : "; ") + t.signature.toString();
    }
    out.message = file + " has no table for this job (signature " + signature.toString() +
                  "; the file has: " + (others.empty() ? "none" : others) +
                  "); using the cost model";
    return out;
  }
  Status names = checkAlgorithmNames(*table, algorithms);
  if (!names.ok()) return warn("rejected: " + names.message());
  auto loaded = std::make_shared<LoadedTuning>();
  loaded->path = source.path;
  loaded->table = *table;
  loaded->reason = "tuning table " + source.path + " (signature " + signature.toString() + ")";
  out.message = "using " + loaded->reason;
  out.tuning = std::move(loaded);
  return out;
}

StatusOr<TuningOutcome> loadJobTuning(const Config& config, const TopologySignature& signature,
                                      const std::vector<std::unique_ptr<Algorithm>>& algorithms,
                                      bootstrap::StoreClient& store, const std::string& key,
                                      int rank, int size) {
  TuningSource source;
  if (rank == 0) {
    source = readTuningSource(config);
    if (size > 1) PLEXUS_TRY(store.set(key, source.encode()));
  } else {
    auto blob = store.get(key, config.timeout);
    if (!blob.ok()) return blob.status().withContext("waiting for rank 0's tuning table");
    if (!TuningSource::decode(*blob, &source)) {
      return invalidArgument("malformed tuning record from rank 0");
    }
  }
  TuningOutcome out = chooseTuning(source, signature, algorithms);
  if (rank == 0 && !out.message.empty()) logOncePerProcess(out.level, out.message);
  return out;
}

}  // namespace plexus::internal
