#include "src/selector.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <limits>
#include <sstream>

#include "src/config.h"
#include "src/log.h"

namespace plexus::internal {
namespace {

constexpr const char* kSyntax =
    "expected rules like 'allreduce:0-64k:rhd;64k-inf:ring' (COLLECTIVE:LO-HI:ALGO, LO-HI:ALGO, "
    "COLLECTIVE:ALGO or ALGO, separated by ';')";

std::vector<std::string> splitOn(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  std::istringstream in(text);
  while (std::getline(in, cur, sep)) parts.push_back(cur);
  if (!text.empty() && text.back() == sep) parts.emplace_back();
  return parts;
}

bool hasAlgorithm(const std::vector<std::unique_ptr<Algorithm>>& algorithms, bool anyKind,
                  CollectiveKind kind, const std::string& name) {
  for (const auto& a : algorithms) {
    if ((anyKind || a->collective() == kind) && name == a->name()) return true;
  }
  return false;
}

std::string knownNames(const std::vector<std::unique_ptr<Algorithm>>& algorithms,
                       CollectiveKind kind) {
  std::string known;
  for (const auto& a : algorithms) {
    if (a->collective() != kind) continue;
    known += (known.empty() ? "" : ", ") + std::string(a->name());
  }
  return known;
}

bool parseRange(const std::string& text, size_t* lo, size_t* hi) {
  const size_t dash = text.find('-');
  if (dash == std::string::npos) return false;
  const std::string a = text.substr(0, dash), b = text.substr(dash + 1);
  if (!parseByteSize(a, lo)) return false;
  if (b == "inf") {
    *hi = SIZE_MAX;
  } else if (!parseByteSize(b, hi)) {
    return false;
  }
  return *lo < *hi;
}

}  // namespace

StatusOr<std::vector<AlgoRule>> parseAlgoRules(
    const std::string& spec, const std::vector<std::unique_ptr<Algorithm>>& algorithms) {
  std::vector<AlgoRule> rules;
  if (spec.empty()) return rules;
  bool haveKind = false;
  CollectiveKind lastKind = CollectiveKind::kAllReduce;
  for (const std::string& segment : splitOn(spec, ';')) {
    auto bad = [&](const std::string& why) {
      return invalidArgument("PLEXUS_ALGO='" + spec + "': in '" + segment + "': " + why + "; " +
                             kSyntax);
    };
    const std::vector<std::string> parts = splitOn(segment, ':');
    AlgoRule rule;
    CollectiveKind kind{};
    const std::string* range = nullptr;  // the LO-HI part, when there is one
    if (parts.size() == 1) {
      rule.anyCollective = true;
    } else if (parts.size() == 2 && parseCollectiveKind(parts[0], &kind)) {
      rule.kind = lastKind = kind;
      haveKind = true;
    } else if (parts.size() == 2) {
      if (!haveKind) return bad("a size range needs a collective first");
      rule.kind = lastKind;
      range = &parts[0];
    } else if (parts.size() == 3) {
      if (!parseCollectiveKind(parts[0], &kind))
        return bad("unknown collective '" + parts[0] + "'");
      rule.kind = lastKind = kind;
      haveKind = true;
      range = &parts[1];
    } else {
      return bad("too many ':'");
    }
    rule.algorithm = parts.back();
    if (range != nullptr && !parseRange(*range, &rule.lo, &rule.hi)) {
      return bad("'" + *range +
                 "' is not a size range LO-HI with LO < HI (sizes like 0, 64k, 4M; HI may be inf)");
    }
    if (!hasAlgorithm(algorithms, rule.anyCollective, rule.kind, rule.algorithm)) {
      if (rule.anyCollective) return bad("no collective has an algorithm '" + rule.algorithm + "'");
      return bad(std::string("no ") + collectiveName(rule.kind) + " algorithm '" + rule.algorithm +
                 "' (known: " + knownNames(algorithms, rule.kind) + ")");
    }
    rules.push_back(rule);
  }
  return rules;
}

// Intra-node defaults fitted to `plexusrun -n 4 plexus-perf allreduce -b 8 -e 64M -a
// ring|rhd|tree` on the development machine (2 shared cores, UCX shared memory, 4 ranks
// oversubscribed): the ring's 6 steps took 60-90 us at 8 B (α ≈ 15 us, mostly scheduling), its
// 64 MiB all-reduce ~116 ms (2 · 3/4 · 64 MiB · β ⇒ β ≈ 1 us/kB, 1 GB/s), and the unpipelined
// reductions about half the transfer cost (γ ≈ β/2). Inter-node defaults: 10 Gbit/s Ethernet
// through the kernel's TCP stack (1.25 GB/s, α ≈ 30 us). The tuning table (plexus-tune)
// replaces both with measurements of the job's own links.
CostModel defaultCostModel() {
  CostModel m;
  m.intra = {15.0, 1.0 / 1000.0};
  m.inter = {30.0, 1.0 / 1250.0};
  m.gammaUsPerB = 1.0 / 2000.0;
  m.alphaUs = m.intra.alphaUs;
  m.betaUsPerB = m.intra.betaUsPerB;
  return m;
}

CostModel costModelFor(const JobTopology& topology, CostModel m) {
  m.nodes = topology.numNodes();
  m.ranksPerNode = topology.localSize(0);
  for (int node = 1; node < m.nodes; ++node) {
    if (static_cast<int>(topology.ranksOfNode(node).size()) != m.ranksPerNode) m.ranksPerNode = 0;
  }
  m.alphaUs = m.intra.alphaUs;
  m.betaUsPerB = m.intra.betaUsPerB;
  if (m.nodes > 1) {
    m.alphaUs = std::max(m.intra.alphaUs, m.inter.alphaUs);
    m.betaUsPerB = std::max(m.intra.betaUsPerB, m.inter.betaUsPerB);
  }
  return m;
}

Selector::Selector(const std::vector<std::unique_ptr<Algorithm>>* algorithms,
                   std::vector<AlgoRule> rules, CostModel model, int worldSize,
                   std::shared_ptr<const LoadedTuning> tuning)
    : algorithms_(algorithms),
      rules_(std::move(rules)),
      model_(model),
      worldSize_(worldSize),
      tuning_(std::move(tuning)) {
  if (tuning_ == nullptr) return;
  // Names were checked when the table was loaded; one this list lacks is left out.
  for (const CollectiveTuning& c : tuning_->table.collectives) {
    for (const TuningRange& r : c.ranges) {
      for (const auto& algo : *algorithms_) {
        if (algo->collective() != c.kind || r.algorithm != algo->name()) continue;
        tuned_[static_cast<size_t>(c.kind) % kNumCollectiveKinds].push_back(
            {r.lo, r.hi, algo.get()});
        break;
      }
    }
  }
}

const Selector::TunedRange* Selector::tunedRange(CollectiveKind kind, size_t bytes) const {
  for (const TunedRange& r : tuned_[static_cast<size_t>(kind) % kNumCollectiveKinds]) {
    if (bytes >= r.lo && bytes < r.hi) return &r;
  }
  return nullptr;
}

StatusOr<Algorithm*> Selector::byName(const CollectiveRequest& req, std::string_view name,
                                      const char* why) const {
  for (const auto& algo : *algorithms_) {
    if (algo->collective() != req.kind || name != algo->name()) continue;
    Status s = algo->supports(req, worldSize_);
    if (!s.ok()) return s.withContext(std::string(why) + " '" + std::string(name) + "'");
    logChoice(req, *algo, why);
    return algo.get();
  }
  return invalidArgument(std::string("no ") + collectiveName(req.kind) + " algorithm named '" +
                         std::string(name) + "' (" + why +
                         "; known: " + knownNames(*algorithms_, req.kind) + ")");
}

StatusOr<Algorithm*> Selector::select(const CollectiveRequest& req, std::string_view forced) const {
  if (!forced.empty()) return byName(req, forced, "forced by the caller");
  const size_t bytes = req.bytes();
  for (const AlgoRule& rule : rules_) {
    if (rule.anyCollective) {
      if (!hasAlgorithm(*algorithms_, false, req.kind, rule.algorithm)) continue;
    } else if (rule.kind != req.kind || bytes < rule.lo || bytes >= rule.hi) {
      continue;
    }
    return byName(req, rule.algorithm, "chosen by PLEXUS_ALGO");
  }
  const TunedRange* tuned = tunedRange(req.kind, bytes);
  Status tunedStatus;  // why the table's algorithm cannot run the request
  if (tuned != nullptr) {
    tunedStatus = tuned->algorithm->supports(req, worldSize_);
    if (tunedStatus.ok()) {
      logChoice(req, *tuned->algorithm, tuning_->reason.c_str());
      return tuned->algorithm;
    }
  }
  Algorithm* best = cheapest(req);
  if (best == nullptr) {
    return unimplemented(std::string("no ") + collectiveName(req.kind) +
                         " algorithm supports this request (" + explain(req) + ")");
  }
  if (tuned != nullptr && logEnabled(LogLevel::kInfo)) {
    const std::string why = tuning_->reason + " names " + tuned->algorithm->name() +
                            ", which cannot run it (" + tunedStatus.message() +
                            "); falling back to the " + explain(req);
    logChoice(req, *best, why.c_str());
  } else {
    logChoice(req, *best);
  }
  return best;
}

namespace {

// A remembered choice, one word: [valid:1][algorithm index:8][kind:5][memory:2][bytes:48].
constexpr int kBytesBits = 48, kMemoryShift = 48, kKindShift = 50, kIndexShift = 55;
constexpr uint64_t kValid = uint64_t{1} << 63;
constexpr uint64_t kKeyMask = kValid | ((uint64_t{1} << kIndexShift) - 1);

}  // namespace

Algorithm* Selector::cheapest(const CollectiveRequest& req) const {
  const size_t bytes = req.bytes();
  static_assert(kNumCollectiveKinds <= 32);
  const bool cacheable = bytes < (uint64_t{1} << kBytesBits) &&
                         static_cast<unsigned>(req.memory) < 4 && algorithms_->size() <= 256;
  const uint64_t key = kValid | (uint64_t{static_cast<uint8_t>(req.kind)} << kKindShift) |
                       (uint64_t{static_cast<uint8_t>(req.memory)} << kMemoryShift) | bytes;
  const uint64_t hash = ((bytes * 0x9E3779B97F4A7C15ull) >> 58) ^ static_cast<uint8_t>(req.kind);
  auto& slot = choices_[hash % kChoiceSlots];
  if (cacheable) {
    const uint64_t word = slot.load(std::memory_order_relaxed);
    if ((word & kKeyMask) == key) return (*algorithms_)[(word >> kIndexShift) & 0xFF].get();
  }
  // The hot path only compares costs; the explanation (formatted floats, strings) is built
  // only when it is printed or returned.
  size_t best = SIZE_MAX;
  double bestUs = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < algorithms_->size(); ++i) {
    const Algorithm& algo = *(*algorithms_)[i];
    if (algo.collective() != req.kind || !algo.supports(req, worldSize_).ok()) continue;
    const double us = algo.estimateUs(req, worldSize_, model_);
    if (us < bestUs) {
      bestUs = us;
      best = i;
    }
  }
  if (best == SIZE_MAX) return nullptr;
  if (cacheable) slot.store(key | (uint64_t{best} << kIndexShift), std::memory_order_relaxed);
  return (*algorithms_)[best].get();
}

void Selector::forgetChoices() {
  for (auto& slot : choices_) slot.store(0, std::memory_order_relaxed);
}

std::string Selector::explain(const CollectiveRequest& req) const {
  std::string why = "cost model:";
  for (const auto& algo : *algorithms_) {
    if (algo->collective() != req.kind) continue;
    if (!algo->supports(req, worldSize_).ok()) {
      why += std::string(" ") + algo->name() + " cannot run it;";
      continue;
    }
    char line[96];
    std::snprintf(line, sizeof(line), " %s %.1f us;", algo->name(),
                  algo->estimateUs(req, worldSize_, model_));
    why += line;
  }
  return why;
}

void Selector::logChoice(const CollectiveRequest& req, const Algorithm& chosen,
                         const char* reason) const {
  if (!logEnabled(LogLevel::kInfo)) return;
  const int sizeClass = req.bytes() == 0 ? 0 : std::bit_width(req.bytes()) % 64;
  const uint64_t bit = uint64_t{1} << sizeClass;
  auto& seen = logged_[static_cast<size_t>(req.kind) % kNumCollectiveKinds];
  if ((seen.fetch_or(bit, std::memory_order_relaxed) & bit) != 0) return;
  PLEXUS_LOG(kInfo, "%s of %zu bytes on %d ranks: %s (%s)", collectiveName(req.kind), req.bytes(),
             worldSize_, chosen.name(), reason != nullptr ? reason : explain(req).c_str());
}

}  // namespace plexus::internal
