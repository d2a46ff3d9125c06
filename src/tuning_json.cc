// The JSON form of tuning files (schema in tuning.h), through nlohmann-json when the build has
// it. The parser checks every value it reads and reports the first problem with its path in
// the document; nlohmann's exceptions stay inside this file.
#include <cmath>
#include <limits>

#include "src/tuning.h"

#if PLEXUS_HAVE_NLOHMANN_JSON
#include <nlohmann/json.hpp>
#endif

namespace plexus::internal {

#if PLEXUS_HAVE_NLOHMANN_JSON
namespace {

// Insertion-ordered, so that files read in schema order: signature first, ranges before the
// measurements.
using json = nlohmann::ordered_json;

// Limits on measured numbers: anything outside them is not a measurement of this world.
constexpr double kMaxAlphaUs = 1e7;
constexpr double kMaxUsPerByte = 1e3;

// A check failed at `where`; parse() turns it into InvalidArgument.
struct Bad {
  std::string what;
};

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Bad{where + ": " + what};
}

const json& member(const json& obj, const std::string& where, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, std::string("missing \"") + key + "\"");
  return *it;
}

const json& objectAt(const json& v, const std::string& where) {
  if (!v.is_object()) fail(where, "expected an object");
  return v;
}

const json& arrayAt(const json& v, const std::string& where) {
  if (!v.is_array()) fail(where, "expected an array");
  return v;
}

std::string stringAt(const json& v, const std::string& where) {
  if (!v.is_string()) fail(where, "expected a string");
  return v.get<std::string>();
}

size_t sizeAt(const json& v, const std::string& where) {
  if (!v.is_number_unsigned()) fail(where, "expected a byte count (an integer >= 0)");
  return v.get<size_t>();
}

int countAt(const json& v, const std::string& where, int lo) {
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > (1 << 24)) {
    fail(where, "expected an integer >= " + std::to_string(lo));
  }
  return static_cast<int>(v.get<int64_t>());
}

// A finite number in [lo, hi]; `positive` also excludes 0.
double numberAt(const json& v, const std::string& where, double hi, bool positive) {
  if (!v.is_number()) fail(where, "expected a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < 0 || x > hi || (positive && x == 0)) {
    fail(where, std::string("expected a finite number ") + (positive ? "> 0" : ">= 0") +
                    " and <= " + json(hi).dump() + ", got " + v.dump());
  }
  return x;
}

LinkCost linkAt(const json& v, const std::string& where) {
  objectAt(v, where);
  LinkCost c;
  c.alphaUs = numberAt(member(v, where, "alpha_us"), where + ".alpha_us", kMaxAlphaUs, false);
  c.betaUsPerB = numberAt(member(v, where, "beta_us_per_byte"), where + ".beta_us_per_byte",
                          kMaxUsPerByte, true);
  return c;
}

// Every element of the array `v`, each read by `parse(element, its path)`.
template <typename Parse>
auto elementsAt(const json& v, const std::string& where, Parse parse) {
  arrayAt(v, where);
  std::vector<decltype(parse(v, where))> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(parse(v[i], where + "[" + std::to_string(i) + "]"));
  return out;
}

TopologySignature signatureAt(const json& v, const std::string& where) {
  objectAt(v, where);
  TopologySignature s;
  s.nodes = countAt(member(v, where, "nodes"), where + ".nodes", 1);
  s.ranksPerNode = countAt(member(v, where, "ranks_per_node"), where + ".ranks_per_node", 0);
  s.intraTransport = stringAt(member(v, where, "intra_transport"), where + ".intra_transport");
  s.interTransport = stringAt(member(v, where, "inter_transport"), where + ".inter_transport");
  s.linkClasses = elementsAt(member(v, where, "link_classes"), where + ".link_classes", stringAt);
  return s;
}

TuningRange rangeAt(const json& v, const std::string& where) {
  objectAt(v, where);
  TuningRange r;
  r.lo = sizeAt(member(v, where, "lo"), where + ".lo");
  const json& hi = member(v, where, "hi");
  if (hi.is_string() && hi.get<std::string>() != "inf") {
    fail(where + ".hi", "expected \"inf\" or a byte count");
  }
  r.hi = hi.is_string() ? SIZE_MAX : sizeAt(hi, where + ".hi");
  r.algorithm = stringAt(member(v, where, "algorithm"), where + ".algorithm");
  if (r.lo >= r.hi) fail(where, "lo must be below hi");
  return r;
}

std::vector<TuningRange> rangesAt(const json& v, const std::string& where) {
  std::vector<TuningRange> ranges = elementsAt(v, where, rangeAt);
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].lo < ranges[i - 1].hi) {
      fail(where + "[" + std::to_string(i) + "]",
           "starts at " + std::to_string(ranges[i].lo) +
               ", inside the previous range (ranges must be in ascending order and must not "
               "overlap)");
    }
  }
  return ranges;
}

TuningSample sampleAt(const json& v, const std::string& where) {
  objectAt(v, where);
  TuningSample s;
  s.bytes = sizeAt(member(v, where, "bytes"), where + ".bytes");
  const json& us = objectAt(member(v, where, "us"), where + ".us");
  for (auto it = us.begin(); it != us.end(); ++it) {
    s.us.emplace_back(it.key(), numberAt(it.value(), where + ".us." + it.key(),
                                         std::numeric_limits<double>::max(), false));
  }
  return s;
}

TuningTable tableAt(const json& v, const std::string& where) {
  objectAt(v, where);
  TuningTable t;
  t.signature = signatureAt(member(v, where, "signature"), where + ".signature");
  if (v.contains("created")) t.created = stringAt(v["created"], where + ".created");
  if (v.contains("tool")) t.tool = stringAt(v["tool"], where + ".tool");
  if (v.contains("links")) {
    const std::string at = where + ".links";
    const json& links = objectAt(v["links"], at);
    if (links.contains("intra")) t.links.intra = linkAt(links["intra"], at + ".intra");
    if (links.contains("inter")) t.links.inter = linkAt(links["inter"], at + ".inter");
    if (links.contains("gamma_us_per_byte")) {
      t.links.gammaUsPerB =
          numberAt(links["gamma_us_per_byte"], at + ".gamma_us_per_byte", kMaxUsPerByte, true);
    }
  }
  const json& colls = objectAt(member(v, where, "collectives"), where + ".collectives");
  for (auto it = colls.begin(); it != colls.end(); ++it) {
    const std::string at = where + ".collectives." + it.key();
    CollectiveTuning c;
    if (!parseCollectiveKind(it.key(), &c.kind)) fail(at, "unknown collective");
    objectAt(it.value(), at);
    c.ranges = rangesAt(member(it.value(), at, "ranges"), at + ".ranges");
    if (it.value().contains("measured")) {
      c.measured = elementsAt(it.value()["measured"], at + ".measured", sampleAt);
    }
    t.collectives.push_back(std::move(c));
  }
  return t;
}

TuningFile fileAt(const json& doc) {
  objectAt(doc, "the document");
  const json& schema = member(doc, "the document", "schema");
  if (!schema.is_string() || schema.get<std::string>() != kTuningSchema) {
    fail("schema", std::string("expected \"") + kTuningSchema + "\", got " + schema.dump());
  }
  const json& version = member(doc, "the document", "version");
  if (!version.is_number_integer() || version.get<int64_t>() != kTuningSchemaVersion) {
    fail("version", "this build reads version " + std::to_string(kTuningSchemaVersion) +
                        ", the file has " + version.dump() + " (run plexus-tune again)");
  }
  TuningFile file;
  const json& tables = arrayAt(member(doc, "the document", "tables"), "tables");
  for (size_t i = 0; i < tables.size(); ++i) {
    const std::string at = "tables[" + std::to_string(i) + "]";
    TuningTable t = tableAt(tables[i], at);
    if (file.find(t.signature) != nullptr) {
      fail(at, "a second table for signature " + t.signature.toString());
    }
    file.tables.push_back(std::move(t));
  }
  return file;
}

json linkJson(const LinkCost& c) {
  return {{"alpha_us", c.alphaUs}, {"beta_us_per_byte", c.betaUsPerB}};
}

json tableJson(const TuningTable& t) {
  json sig = {{"nodes", t.signature.nodes},
              {"ranks_per_node", t.signature.ranksPerNode},
              {"intra_transport", t.signature.intraTransport},
              {"inter_transport", t.signature.interTransport},
              {"link_classes", t.signature.linkClasses}};
  json links = json::object();
  if (t.links.intra) links["intra"] = linkJson(*t.links.intra);
  if (t.links.inter) links["inter"] = linkJson(*t.links.inter);
  if (t.links.gammaUsPerB) links["gamma_us_per_byte"] = *t.links.gammaUsPerB;
  json colls = json::object();
  for (const CollectiveTuning& c : t.collectives) {
    json ranges = json::array(), measured = json::array();
    for (const TuningRange& r : c.ranges) {
      json hi = r.hi == SIZE_MAX ? json("inf") : json(r.hi);
      ranges.push_back({{"lo", r.lo}, {"hi", hi}, {"algorithm", r.algorithm}});
    }
    for (const TuningSample& s : c.measured) {
      json us = json::object();
      for (const auto& [name, time] : s.us) us[name] = std::round(time * 1000) / 1000;
      measured.push_back({{"bytes", s.bytes}, {"us", us}});
    }
    colls[collectiveName(c.kind)] = {{"ranges", ranges}, {"measured", measured}};
  }
  return {{"signature", sig},
          {"created", t.created},
          {"tool", t.tool},
          {"links", links},
          {"collectives", colls}};
}

}  // namespace

StatusOr<TuningFile> parseTuningFile(std::string_view text) {
  try {
    return fileAt(json::parse(text));
  } catch (const Bad& bad) {
    return invalidArgument(bad.what);
  } catch (const json::exception& e) {
    // e.what() reads "[json.exception.parse_error.101] parse error at line 3, column 7: ..."
    // (or out_of_range.406 for a number beyond a double).
    std::string what = e.what();
    const size_t at = what.find("] ");
    return invalidArgument("not valid JSON: " +
                           (at == std::string::npos ? what : what.substr(at + 2)));
  } catch (const std::exception& e) {
    return invalidArgument(std::string("unreadable: ") + e.what());
  }
}

StatusOr<std::string> formatTuningFile(const TuningFile& file) {
  json tables = json::array();
  for (const TuningTable& t : file.tables) tables.push_back(tableJson(t));
  json doc = {{"schema", kTuningSchema}, {"version", kTuningSchemaVersion}, {"tables", tables}};
  return doc.dump(2) + "\n";
}

#else  // no nlohmann-json: tuning files cannot be read or written

namespace {
constexpr const char* kNoJson =
    "this build of Plexus has no JSON parser (install nlohmann-json3-dev and rebuild)";
}

StatusOr<TuningFile> parseTuningFile(std::string_view) { return unimplemented(kNoJson); }
StatusOr<std::string> formatTuningFile(const TuningFile&) { return unimplemented(kNoJson); }

#endif

}  // namespace plexus::internal
