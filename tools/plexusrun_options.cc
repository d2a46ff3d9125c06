#include "tools/plexusrun_options.h"

#include <charconv>
#include <cmath>
#include <numeric>
#include <string_view>

namespace plexus::run {

const char* const kUsage =
    "usage: plexusrun -n N [--nodes K | --layout A,B,...] [--timeout SECONDS]\n"
    "                 [--bind core|none] [--tag-output | --no-tag-output] [--] PROGRAM [ARGS...]\n"
    "Launches N local ranks of PROGRAM with torchrun-style environment (RANK, WORLD_SIZE,\n"
    "LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT, PLEXUS_SECRET, ...).\n"
    "  -n N               number of ranks (>= 1)\n"
    "  --nodes K          emulate K nodes, ranks split into contiguous blocks (1 <= K <= N)\n"
    "  --layout A,B,...   explicit ranks per emulated node (each >= 1, summing to N)\n"
    "  --timeout SECONDS  stop the whole job after SECONDS and exit with 124\n"
    "  --bind core|none   core: rank i runs on the (i mod C)-th of the C CPUs plexusrun may use,\n"
    "                     as mpirun binds its ranks; none (the default): where the kernel puts it\n"
    "  --tag-output       prefix each output line with [rank] (the default)\n"
    "  --no-tag-output    print rank output unprefixed, still whole lines at a time\n"
    "  -h, --help         print this help\n"
    "Exit status: 0 when every rank succeeds, else the first failing rank's code (128+S for\n"
    "signal S), 124 on timeout, 126/127 when PROGRAM cannot be run, 2 for bad arguments.\n";

namespace {

// Past this, per-rank pipes exhaust a default descriptor limit long before anything useful
// happens; a typo such as -n 40000 deserves an error rather than 80000 pipes.
constexpr int kMaxRanks = 4096;
// chrono's nanosecond clock overflows near 292 years; anything this large is a typo anyway.
constexpr double kMaxTimeoutSeconds = 1e9;

Status badValue(std::string_view option, std::string_view expected, std::string_view got) {
  return invalidArgument(std::string(option) + " expects " + std::string(expected) + ", got '" +
                         std::string(got) + "'");
}

// Parses all of `text` as a base-10 int; rejects signs other than '-', spaces and trailing junk.
std::optional<int> parseInt(std::string_view text) {
  int value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

StatusOr<std::vector<int>> parseLayout(std::string_view text) {
  std::vector<int> layout;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view entry = text.substr(start, comma - start);
    std::optional<int> count = parseInt(entry);
    if (!count || *count < 1) {
      return badValue("--layout", "a comma-separated list of rank counts, each >= 1", text);
    }
    layout.push_back(*count);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return layout;
}

StatusOr<double> parseTimeout(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(value) || value <= 0 ||
      value > kMaxTimeoutSeconds) {
    return badValue("--timeout", "a positive number of seconds", text);
  }
  return value;
}

// Checks what no single option can: -n present, a program, a layout consistent with -n.
Status validate(LaunchOptions& options, std::optional<int> numNodes) {
  if (options.numRanks == 0) return invalidArgument("-n N is required");
  if (options.command.empty()) return invalidArgument("no program to launch");
  if (numNodes) {
    if (*numNodes > options.numRanks) {
      return invalidArgument("--nodes " + std::to_string(*numNodes) + " exceeds -n " +
                             std::to_string(options.numRanks) + ": a node would have no rank");
    }
    options.ranksPerNode = spreadOverNodes(options.numRanks, *numNodes);
  } else if (!options.ranksPerNode.empty()) {
    // Summing in 64 bits: 4096 entries of INT_MAX would overflow int.
    long long sum = std::accumulate(options.ranksPerNode.begin(), options.ranksPerNode.end(), 0LL);
    if (sum != options.numRanks) {
      return invalidArgument("--layout sums to " + std::to_string(sum) + " ranks but -n is " +
                             std::to_string(options.numRanks));
    }
  } else {
    options.ranksPerNode = {options.numRanks};
  }
  return okStatus();
}

}  // namespace

StatusOr<LaunchOptions> parseOptions(int argc, char** argv) {
  LaunchOptions options;
  std::optional<int> numNodes;
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // the program; "-" alone is a file name too

    // Split "--opt=value" and "-nVALUE"; a separate next argument is the value otherwise.
    std::string_view name = arg;
    std::optional<std::string_view> inlineValue;
    if (arg.starts_with("--")) {
      if (size_t eq = arg.find('='); eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        inlineValue = arg.substr(eq + 1);
      }
    } else if (arg.size() > 2) {
      name = arg.substr(0, 2);
      inlineValue = arg.substr(2);
    }
    auto takeValue = [&]() -> std::optional<std::string_view> {
      if (inlineValue) return inlineValue;
      if (i + 1 < argc) return std::string_view(argv[++i]);
      return std::nullopt;
    };
    const bool isFlag =
        name == "-h" || name == "--help" || name == "--tag-output" || name == "--no-tag-output";
    if (isFlag && inlineValue) {
      return invalidArgument("option " + std::string(name) + " takes no value");
    }

    if (name == "-h" || name == "--help") {
      options.showHelp = true;
      return options;
    } else if (name == "--tag-output") {
      options.tagOutput = true;
    } else if (name == "--no-tag-output") {
      options.tagOutput = false;
    } else if (name == "-n" || name == "--nodes" || name == "--layout" || name == "--timeout" ||
               name == "--bind") {
      std::optional<std::string_view> value = takeValue();
      if (!value) return invalidArgument("option " + std::string(name) + " needs a value");
      if (name == "-n") {
        std::optional<int> n = parseInt(*value);
        if (!n || *n < 1 || *n > kMaxRanks) {
          return badValue("-n", "a rank count from 1 to " + std::to_string(kMaxRanks), *value);
        }
        options.numRanks = *n;
      } else if (name == "--nodes") {
        std::optional<int> k = parseInt(*value);
        if (!k || *k < 1) return badValue("--nodes", "a node count >= 1", *value);
        numNodes = *k;
      } else if (name == "--layout") {
        StatusOr<std::vector<int>> layout = parseLayout(*value);
        if (!layout.ok()) return layout.status();
        options.ranksPerNode = std::move(*layout);
      } else if (name == "--bind") {
        if (*value != "core" && *value != "none") return badValue("--bind", "core or none", *value);
        options.bindCores = *value == "core";
      } else {
        StatusOr<double> timeout = parseTimeout(*value);
        if (!timeout.ok()) return timeout.status();
        options.timeoutSeconds = *timeout;
      }
    } else {
      return invalidArgument("unknown option '" + std::string(arg) + "'");
    }
  }
  if (numNodes && !options.ranksPerNode.empty()) {
    return invalidArgument("--nodes and --layout are exclusive; use one");
  }
  options.command.assign(argv + i, argv + argc);
  PLEXUS_TRY(validate(options, numNodes));
  return options;
}

std::vector<int> spreadOverNodes(int numRanks, int numNodes) {
  std::vector<int> counts(numNodes, 0);
  for (int rank = 0; rank < numRanks; ++rank) {
    // 64-bit product: 4096 * 4096 fits int, but the formula should not depend on the cap.
    ++counts[static_cast<long long>(rank) * numNodes / numRanks];
  }
  return counts;
}

std::vector<RankPlacement> placeRanks(const std::vector<int>& ranksPerNode) {
  const int worldSize = std::accumulate(ranksPerNode.begin(), ranksPerNode.end(), 0);
  const int numNodes = static_cast<int>(ranksPerNode.size());
  std::vector<RankPlacement> placements;
  placements.reserve(worldSize);
  for (int node = 0; node < numNodes; ++node) {
    for (int local = 0; local < ranksPerNode[node]; ++local) {
      placements.push_back({.rank = static_cast<int>(placements.size()),
                            .worldSize = worldSize,
                            .localRank = local,
                            .localWorldSize = ranksPerNode[node],
                            .node = node,
                            .numNodes = numNodes});
    }
  }
  return placements;
}

}  // namespace plexus::run
