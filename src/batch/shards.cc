#include "batch/shards.h"

#include <stdexcept>

#include <fmt/format.h>

#include "batch/results_store.h"
#include "util/fs.h"

namespace kbrun::batch {

using nlohmann::json;

std::vector<Shard> PlanShards(const std::vector<Problem>& problems, int tasks) {
  std::vector<Shard> shards;
  if (problems.empty() || tasks < 1) return shards;
  size_t n = problems.size();
  size_t k = std::min(n, static_cast<size_t>(tasks));
  size_t begin = 0;
  for (size_t i = 0; i < k && begin < n; ++i) {
    // Shard i gets n / k problems, one more for the first n % k shards...
    size_t end = begin + n / k + (i < n % k ? 1 : 0);
    if (i + 1 == k) end = n;
    // ...and never splits a problem number between two shards.
    while (end < n && problems[end].number == problems[end - 1].number) ++end;
    Shard s;
    s.index = static_cast<int>(shards.size());
    s.first = problems[begin].number;
    s.last = problems[end - 1].number;
    for (size_t j = begin; j < end; ++j) s.problems.push_back(problems[j].name);
    shards.push_back(std::move(s));
    begin = end;
  }
  return shards;
}

fs::path SlurmDir(const fs::path& results) { return results / "slurm"; }
fs::path ManifestPath(const fs::path& results) { return SlurmDir(results) / "shards.json"; }
fs::path ShardResultsDir(const fs::path& results, int index) { return results / "shards" / std::to_string(index); }

const Shard* ShardManifest::Find(int index) const {
  for (const auto& s : shards) {
    if (s.index == index) return &s;
  }
  return nullptr;
}

std::vector<std::string> ShardManifest::JobIds() const {
  std::vector<std::string> ids;
  for (const auto& s : submissions) ids.push_back(s.job_id);
  return ids;
}

json ManifestJson(const ShardManifest& m) {
  json shards = json::array();
  for (const auto& s : m.shards) {
    shards.push_back({{"index", s.index}, {"first", s.first}, {"last", s.last}, {"problems", s.problems}});
  }
  json submissions = json::array();
  for (const auto& s : m.submissions) {
    submissions.push_back({{"job_id", s.job_id}, {"tasks", s.tasks}, {"submitted_at", s.submitted_at}});
  }
  return {{"kbrun_version", KBRUN_VERSION},
          {"problems_dir", m.problems_dir.string()},
          {"first", m.first},
          {"last", m.last},
          {"compile_cache", m.compile_cache.empty() ? json(nullptr) : json(m.compile_cache.string())},
          {"shards", shards},
          {"submissions", submissions}};
}

ShardManifest ParseManifest(const json& doc) {
  auto need = [](bool ok, const char* what) {
    if (!ok) throw std::runtime_error(fmt::format("the shard manifest has no valid {}", what));
  };
  need(doc.is_object(), "object");
  ShardManifest m;
  need(doc.contains("problems_dir") && doc["problems_dir"].is_string(), "problems_dir");
  m.problems_dir = doc["problems_dir"].get<std::string>();
  need(doc.contains("first") && doc["first"].is_number_integer(), "first");
  need(doc.contains("last") && doc["last"].is_number_integer(), "last");
  m.first = doc["first"].get<int>();
  m.last = doc["last"].get<int>();
  if (doc.contains("compile_cache") && doc["compile_cache"].is_string()) {
    m.compile_cache = doc["compile_cache"].get<std::string>();
  }
  need(doc.contains("shards") && doc["shards"].is_array() && !doc["shards"].empty(), "shards");
  for (const auto& s : doc["shards"]) {
    need(s.is_object() && s.contains("index") && s["index"].is_number_integer() && s.contains("first") &&
             s["first"].is_number_integer() && s.contains("last") && s["last"].is_number_integer() &&
             s.contains("problems") && s["problems"].is_array(),
         "shard entry");
    Shard shard;
    shard.index = s["index"].get<int>();
    shard.first = s["first"].get<int>();
    shard.last = s["last"].get<int>();
    for (const auto& p : s["problems"]) {
      need(p.is_string(), "problem name");
      shard.problems.push_back(p.get<std::string>());
    }
    need(shard.index == static_cast<int>(m.shards.size()), "shard index (0, 1, ... in order)");
    m.shards.push_back(std::move(shard));
  }
  if (doc.contains("submissions") && doc["submissions"].is_array()) {
    for (const auto& s : doc["submissions"]) {
      need(s.is_object() && s.contains("job_id") && s["job_id"].is_string(), "submission");
      Submission sub;
      sub.job_id = s["job_id"].get<std::string>();
      if (s.contains("tasks") && s["tasks"].is_array()) {
        for (const auto& t : s["tasks"]) {
          if (t.is_number_integer()) sub.tasks.push_back(t.get<int>());
        }
      }
      sub.submitted_at = s.value("submitted_at", 0.0);
      m.submissions.push_back(std::move(sub));
    }
  }
  return m;
}

std::optional<ShardManifest> LoadManifest(const fs::path& results) {
  fs::path path = ManifestPath(results);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  auto text = ReadFile(path);
  if (!text) throw std::runtime_error(fmt::format("cannot read {}", path.string()));
  json doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded()) throw std::runtime_error(fmt::format("{} is not JSON", path.string()));
  try {
    return ParseManifest(doc);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}: {}", path.string(), e.what()));
  }
}

void SaveManifest(const fs::path& results, const ShardManifest& manifest) {
  fs::create_directories(SlurmDir(results));
  WriteFileAtomic(ManifestPath(results), JsonText(ManifestJson(manifest)) + "\n");
}

ShardStatus ReadShardStatus(const fs::path& results, const Shard& shard) {
  ShardStatus st;
  st.index = shard.index;
  st.problems = static_cast<int>(shard.problems.size());
  ResultsStore store(ShardResultsDir(results, shard.index));
  ResultsStore::SummaryFile summary = store.LoadSummary();
  if (summary.state == ResultsStore::SummaryFile::State::kMissing) {
    st.state = "not_started";
    return st;
  }
  if (summary.state == ResultsStore::SummaryFile::State::kDamaged) {
    st.state = "damaged";
    return st;
  }
  const json& doc = summary.doc;
  st.state = doc.contains("state") && doc["state"].is_string() ? doc["state"].get<std::string>() : "damaged";
  st.host = doc.contains("host") && doc["host"].is_string() ? doc["host"].get<std::string>() : "";
  if (doc.contains("totals") && doc["totals"].is_object()) {
    const json& t = doc["totals"];
    auto count = [&](const char* key) { return t.contains(key) && t[key].is_number_integer() ? t[key].get<int>() : 0; };
    st.problems_done = count("solved") + count("unsolved");
  }
  return st;
}

}  // namespace kbrun::batch
