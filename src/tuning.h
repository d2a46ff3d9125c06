// Tuning tables: which algorithm plexus-tune measured fastest for each collective and size range
// on one shape of job, with the link costs it measured, so that the selector can use
// measurements instead of the cost model's guesses.
//
// A tuning file is JSON. Schema "plexus-tuning", version 1 (a file of another version is
// rejected; a change that old readers would misread bumps it):
//
//   {
//     "schema": "plexus-tuning",
//     "version": 1,
//     "tables": [                           one per topology signature, at most one each
//       {
//         "signature": {                    what the table is valid for (TopologySignature)
//           "nodes": 1, "ranks_per_node": 4,
//           "intra_transport": "ucx",       spec of links inside a node; "" when none
//           "inter_transport": "",          spec of links between nodes; "" when none
//           "link_classes": ["node"]        classes of the job's links: process, node, network
//         },
//         "created": "...", "tool": "...",  optional free text
//         "links": {                        optional; each member optional (else the default)
//           "intra": {"alpha_us": 3.2, "beta_us_per_byte": 0.00093},
//           "inter": {"alpha_us": 41.0, "beta_us_per_byte": 0.0081},
//           "gamma_us_per_byte": 0.00021
//         },
//         "collectives": {                  keys: collective names (collectiveName)
//           "allreduce": {
//             "ranges": [                   ordered, non-overlapping [lo, hi) in bytes
//               {"lo": 0, "hi": 3072, "algorithm": "rhd"},
//               {"lo": 3072, "hi": "inf", "algorithm": "ring"}
//             ],
//             "measured": [                 optional: what plexus-tune saw (us per call)
//               {"bytes": 8, "us": {"ring": 31.5, "rhd": 12.2, "tree": 20.1}}
//             ]
//           }
//         }
//       }
//     ]
//   }
//
// Sizes are count × element size, as for PLEXUS_ALGO. Numbers must be finite and not negative;
// alpha at most 1e7 us, beta and gamma positive and at most 1e3 us per byte. Unknown keys
// outside "collectives" are ignored. Sizes no range covers fall back to the cost model.
//
// Where: PLEXUS_TUNING_FILE, else $XDG_CACHE_HOME/plexus/tuning.json, else
// $HOME/.cache/plexus/tuning.json. Rank 0 reads the file and shares its bytes with every rank
// through the bootstrap store, so all ranks choose alike even when their files differ.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "algorithms/algorithm.h"
#include "plexus/status.h"
#include "src/bootstrap/launch_env.h"
#include "src/log.h"
#include "src/topology.h"

namespace plexus {
struct Config;
namespace bootstrap {
class StoreClient;
}
}  // namespace plexus

namespace plexus::internal {

inline constexpr const char* kTuningSchema = "plexus-tuning";
inline constexpr int kTuningSchemaVersion = 1;
/// Files above this size are rejected unread (a table is a few kilobytes).
inline constexpr size_t kMaxTuningFileBytes = size_t{4} << 20;

/// The shape of a job a table is valid for.
struct TopologySignature {
  int nodes = 1;
  int ranksPerNode = 0;        ///< ranks on every node; 0 when nodes hold different numbers
  std::string intraTransport;  ///< levelSpec(0) when the job has links inside a node, else ""
  std::string interTransport;  ///< levelSpec(1) when the job has links between nodes, else ""
  std::vector<std::string> linkClasses;  ///< linkClassName of each class present, closest first

  /// "nodes=1 ranks_per_node=4 intra=ucx inter=- links=node", for messages.
  std::string toString() const;
  friend bool operator==(const TopologySignature&, const TopologySignature&) = default;
};

/// The signature of a job: its topology and the transport spec of each link level.
TopologySignature signatureOf(const JobTopology& topology, const std::string& intraSpec,
                              const std::string& interSpec);

/// Requests of [lo, hi) bytes run `algorithm`.
struct TuningRange {
  size_t lo = 0;
  size_t hi = SIZE_MAX;  ///< exclusive; SIZE_MAX is "inf"
  std::string algorithm;
  friend bool operator==(const TuningRange&, const TuningRange&) = default;
};

/// One size of plexus-tune's sweep: every candidate's time per call, in microseconds.
struct TuningSample {
  size_t bytes = 0;
  std::vector<std::pair<std::string, double>> us;
  friend bool operator==(const TuningSample&, const TuningSample&) = default;
};

struct CollectiveTuning {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  std::vector<TuningRange> ranges;
  std::vector<TuningSample> measured;
  friend bool operator==(const CollectiveTuning&, const CollectiveTuning&) = default;
};

/// Link costs plexus-tune measured; what it did not measure stays unset.
struct TuningLinks {
  std::optional<LinkCost> intra, inter;
  std::optional<double> gammaUsPerB;
  /// `defaults` with the measured values in place of its own.
  CostModel applyTo(CostModel defaults) const;
  friend bool operator==(const TuningLinks& a, const TuningLinks& b);
};

/// One signature's table.
struct TuningTable {
  TopologySignature signature;
  std::string created, tool;
  TuningLinks links;
  std::vector<CollectiveTuning> collectives;

  /// The range covering `bytes` for `kind`, or null.
  const TuningRange* lookup(CollectiveKind kind, size_t bytes) const;
  friend bool operator==(const TuningTable&, const TuningTable&) = default;
};

struct TuningFile {
  std::vector<TuningTable> tables;
  /// The table of `signature`, or null.
  const TuningTable* find(const TopologySignature& signature) const;
  /// Replaces the table of `table.signature`, or adds it.
  void put(TuningTable table);
};

/// Parses and checks a tuning file: JSON syntax, schema name and version, types, collective
/// names, ranges (ordered, non-overlapping, lo < hi), numbers (finite, in range), one table per
/// signature. InvalidArgument says what and where ("tables[0].collectives.allreduce.ranges[1]:
/// ..."); Unimplemented when this build has no JSON parser. Never crashes on any input.
StatusOr<TuningFile> parseTuningFile(std::string_view text);
/// The file as JSON text (pretty-printed); Unimplemented without a JSON library.
StatusOr<std::string> formatTuningFile(const TuningFile& file);

/// InvalidArgument naming the first range whose algorithm `algorithms` has no entry for.
Status checkAlgorithmNames(const TuningTable& table,
                           const std::vector<std::unique_ptr<Algorithm>>& algorithms);

/// Ranges from a sweep: `winners[i]` won at `sizes[i]` (ascending). Adjacent sizes with the
/// same winner merge; a boundary between two measured sizes lies at their geometric mean; the
/// first range starts at 0 and the last ends at "inf".
std::vector<TuningRange> rangesFromWinners(const std::vector<size_t>& sizes,
                                           const std::vector<std::string>& winners);

/// $XDG_CACHE_HOME/plexus/tuning.json, else $HOME/.cache/plexus/tuning.json; "" when neither
/// variable is set.
std::string defaultTuningPath(const bootstrap::EnvLookup& env);

/// A tuning file as rank 0 read it.
struct TuningSource {
  std::string path;           ///< "": no file configured (PLEXUS_TUNING_FILE empty or "none")
  bool explicitPath = false;  ///< named by PLEXUS_TUNING_FILE
  bool found = false;         ///< it exists and was read into `text`
  std::string text;
  std::string readError;  ///< why an existing file could not be read

  std::vector<uint8_t> encode() const;
  /// False on a malformed blob.
  static bool decode(const std::vector<uint8_t>& blob, TuningSource* out);
};

/// Reads the file `config` names (bounded by kMaxTuningFileBytes).
TuningSource readTuningSource(const Config& config);

/// The table the selector uses and how messages name it.
struct LoadedTuning {
  std::string path;
  TuningTable table;
  /// "tuning table PATH (signature ...)": the selector's reason for its choices.
  std::string reason;
};

/// What choosing a table gave: the table (null: the cost model decides) and at most one
/// message to log (a WARN for a bad or missing explicit file, an INFO otherwise; empty for a
/// missing default file).
struct TuningOutcome {
  std::shared_ptr<const LoadedTuning> tuning;
  LogLevel level = LogLevel::kInfo;
  std::string message;
};

/// Picks `signature`'s table from `source`, checking its algorithms against `algorithms`.
TuningOutcome chooseTuning(const TuningSource& source, const TopologySignature& signature,
                           const std::vector<std::unique_ptr<Algorithm>>& algorithms);

/// Collective over a communicator being created: rank 0 reads the file and publishes it under
/// `key`, every rank chooses from those bytes, and rank 0 logs the outcome (each message once
/// per process). A store failure is returned; everything about the file itself only logs.
StatusOr<TuningOutcome> loadJobTuning(const Config& config, const TopologySignature& signature,
                                      const std::vector<std::unique_ptr<Algorithm>>& algorithms,
                                      bootstrap::StoreClient& store, const std::string& key,
                                      int rank, int size);

}  // namespace plexus::internal
